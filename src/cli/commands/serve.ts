import { flag, str, strs, type Command } from "../command.js";
import { loadConfig } from "../../config/config.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { redactUrl } from "../../protocol/uri.js";
import { parseS3Url } from "../../serve/s3.js";
import { DEFAULT_LISTEN, DEFAULT_REFRESH_SECONDS, startRegistry } from "../../serve/serve.js";
import { DEFAULT_LEASE_SECONDS } from "../../serve/farm.js";
import { isSystem } from "../../protocol/farm.js";
import { dataDirOf, dbOf } from "../shared.js";

/** `cpr serve`: run the registry until SIGINT/SIGTERM. */
export const command: Command = {
  name: "serve",
  usage:
    "cpr serve [--db URL] [--data DIR] [--store-url s3://…] [--listen ADDR] [--set URL]... [--refresh SECONDS] [--build SYSTEM]... [--lease SECONDS] [--json]",
  summary: "Run the registry: catalogue, build records and a Nix binary cache",
  help: `Serves the registry's HTTP interface (docs/registry.md): the Nix binary cache (/nix-cache-info,
/<hash>.narinfo, /nar/…), signed with the server's ed25519 key, and the JSON API under /api/v1 (search, atoms,
sets, uploads, build records, resolve), /healthz and /metrics; and web pages to search and browse the registry
(/, /search?q=, /sets/<root>, /atoms/<AtomId>[/<version>], /jobs), which answer JSON with Accept: application/json.

At start the signing key is created if there is none, database migrations run, partial uploads left by an
interrupted server are removed, and the sets are indexed (from ls-refs and manifest blobs only). The sets are
re-indexed every --refresh seconds and on POST /api/v1/sets/<root>/refresh. Several servers may share one
PostgreSQL database and one data directory, or one S3 bucket (--store-url).

NARs are kept in the data directory unless --store-url names S3-compatible object storage (AWS S3, Ceph RGW,
MinIO, …): s3://BUCKET/PREFIX?endpoint=http://HOST:PORT (optional: region=, profile=, path-style=true|false;
path-style is the default with an endpoint). Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN, else from the profile (AWS_PROFILE, default "default") in ~/.aws/credentials or ~/.aws/config
(AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE); the region from region=, AWS_REGION or the profile. Uploads stream
to S3 as multipart uploads completed only once the NAR hash checks; /nar/… streams objects through the server.

With --build SYSTEM (or config [registry.builds]), the server runs a build farm's queue (docs/farm.md): after each
index pass it enqueues an evaluation job per system for the newest version of every atom whose [compose] is not
static ([registry.builds] refines: sets, labels, newest N versions or all, priority), which \`cpr worker\`
processes take. Jobs live in the database, so every server sharing it serves the same queue.

Request logs are JSON lines on stderr. SIGINT or SIGTERM stops the server cleanly (requests in flight finish).

Options:
  --data DIR        Data directory: signing key, NARs, temporary uploads, default SQLite database
                    (config registry.data; default $XDG_DATA_HOME/cpr/registry)
  --store-url URL   Keep NARs on S3: s3://BUCKET/PREFIX?endpoint=URL (config registry.store; default: the data
                    directory, which still holds the signing key and the default SQLite database)
  --db URL          sqlite:PATH, a path, or postgres://user@host:port/db (config registry.db;
                    default DIR/registry.sqlite)
  --listen ADDR     HOST:PORT to listen on; port 0 picks a free one (config registry.listen;
                    default ${DEFAULT_LISTEN})
  --set URL         A set to index, by any mirror URL; repeatable (config registry.sets)
  --refresh SECONDS Seconds between re-indexing passes, 0 for none (config registry.refresh; default
                    ${DEFAULT_REFRESH_SECONDS})
  --build SYSTEM    Evaluate and build published versions for SYSTEM with the build farm (repeatable;
                    config registry.builds.systems)
  --lease SECONDS   How long a worker's job lease lasts without a heartbeat (config registry.builds.lease;
                    default ${DEFAULT_LEASE_SECONDS})
  --json            Print {"listening":"http://HOST:PORT","publicKey":"name:base64"} on stdout once ready

Exit codes: 0 stopped by a signal, 1 could not start (the address is in use, the data directory, the database or
the S3 bucket cannot be used, no S3 credentials), 2 usage error (including a --store-url that is not s3://…).
`,
  options: {
    db: { type: "string" },
    data: { type: "string" },
    "store-url": { type: "string" },
    listen: { type: "string" },
    set: { type: "string", multiple: true },
    refresh: { type: "string" },
    build: { type: "string", multiple: true },
    lease: { type: "string" },
  },
  maxPositionals: 0,
  async run(ctx, args) {
    const { config, warnings } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    for (const w of warnings) ctx.term.warn(w.code, w.message);
    const refreshArg = str(args, "refresh");
    let refreshSeconds = config.registry.refresh;
    if (refreshArg !== undefined) {
      if (!/^\d{1,9}$/.test(refreshArg))
        throw new UsageError(`--refresh wants a whole number of seconds, got ${JSON.stringify(refreshArg)}`);
      refreshSeconds = Number(refreshArg);
    }
    const setArgs = strs(args, "set");
    const sets = setArgs.length ? setArgs : [...config.registry.sets];
    const dataDir = dataDirOf(ctx, str(args, "data"), config);
    const db = dbOf(ctx, str(args, "db"), config);
    const listen = str(args, "listen") ?? config.registry.listen;
    const policy = config.registry.builds;
    const buildArgs = strs(args, "build");
    for (const s of buildArgs) if (!isSystem(s)) throw new UsageError(`--build wants a system like x86_64-linux, got ${JSON.stringify(s)}`);
    const systems = buildArgs.length ? buildArgs : [...policy.systems];
    const leaseArg = str(args, "lease");
    if (leaseArg !== undefined && (!/^\d{1,6}$/.test(leaseArg) || Number(leaseArg) < 1))
      throw new UsageError(`--lease wants a positive whole number of seconds, got ${JSON.stringify(leaseArg)}`);
    const leaseSeconds = leaseArg !== undefined ? Number(leaseArg) : policy.lease;
    const storeUrl = str(args, "store-url") ?? config.registry.store ?? undefined;
    if (storeUrl !== undefined) {
      // A URL that cannot name a bucket is a usage error, as an unknown --db scheme is; credentials are checked at start.
      try {
        parseS3Url(storeUrl, ctx.env);
      } catch (e) {
        if (e instanceof CprError) throw new UsageError(e.message, { ...(e.hint ? { hint: e.hint } : {}) });
        throw e;
      }
    }

    const reg = await startRegistry({
      dataDir,
      ...(db !== undefined ? { db } : {}),
      listen,
      ...(storeUrl !== undefined ? { storeUrl } : {}),
      sets,
      refreshSeconds,
      env: ctx.env,
      cwd: ctx.cwd,
      cacheDir: config.cacheDir,
      log: process.stderr,
      builds: { systems, sets: policy.sets, labels: policy.labels, newest: policy.versions, priority: policy.priority },
      leaseSeconds,
    });
    const retry = refreshSeconds > 0 ? `retried every ${refreshSeconds} s` : "--refresh 0: not retried until a restart";
    for (const u of reg.unreachable)
      ctx.term.warn("serve.set-unindexed", `set ${redactUrl(u.url)} could not be indexed yet (${retry}): ${u.error}`);
    if (flag(args, "json")) ctx.term.json({ listening: reg.url, publicKey: reg.publicKey }, { line: true });
    ctx.term.info(`listening on ${reg.url}`);
    ctx.term.info(`public key ${reg.publicKey}`);
    ctx.term.info(`NARs in ${reg.storage}`);

    await new Promise<void>((done) => {
      const stop = (signal: NodeJS.Signals): void => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        ctx.term.info(`${signal}: stopping`);
        reg.close().then(done, (e: unknown) => {
          ctx.term.error(`while stopping: ${e instanceof Error ? e.message : String(e)}`);
          done();
        });
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    return 0;
  },
};
