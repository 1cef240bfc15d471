import { flag, str, strs, type Command } from "../command.js";
import { loadConfig } from "../../config/config.js";
import { UsageError } from "../../protocol/errors.js";
import { redactUrl } from "../../protocol/uri.js";
import { DEFAULT_LISTEN, DEFAULT_REFRESH_SECONDS, startRegistry } from "../../serve/serve.js";
import { dataDirOf, dbOf } from "../shared.js";

/** `cpr serve`: run the registry until SIGINT/SIGTERM. */
export const command: Command = {
  name: "serve",
  usage: "cpr serve [--db URL] [--data DIR] [--listen ADDR] [--set URL]... [--refresh SECONDS] [--json]",
  summary: "Run the registry: catalogue, build records and a Nix binary cache",
  help: `Serves the registry's HTTP interface (docs/registry.md): the Nix binary cache (/nix-cache-info,
/<hash>.narinfo, /nar/…), signed with the server's ed25519 key, and the JSON API under /api/v1 (search, atoms,
sets, uploads, build records, resolve), /healthz and /metrics; and web pages to search and browse the registry
(/, /search?q=, /sets/<root>, /atoms/<AtomId>[/<version>], /jobs), which answer JSON with Accept: application/json.

At start the signing key is created if there is none, database migrations run, partial uploads left by an
interrupted server are removed, and the sets are indexed (from ls-refs and manifest blobs only). The sets are
re-indexed every --refresh seconds and on POST /api/v1/sets/<root>/refresh. Several servers may share one
PostgreSQL database and one data directory.

Request logs are JSON lines on stderr. SIGINT or SIGTERM stops the server cleanly (requests in flight finish).

Options:
  --data DIR        Data directory: signing key, NARs, temporary uploads, default SQLite database
                    (config registry.data; default $XDG_DATA_HOME/cpr/registry)
  --db URL          sqlite:PATH, a path, or postgres://user@host:port/db (config registry.db;
                    default DIR/registry.sqlite)
  --listen ADDR     HOST:PORT to listen on; port 0 picks a free one (config registry.listen;
                    default ${DEFAULT_LISTEN})
  --set URL         A set to index, by any mirror URL; repeatable (config registry.sets)
  --refresh SECONDS Seconds between re-indexing passes, 0 for none (config registry.refresh; default
                    ${DEFAULT_REFRESH_SECONDS})
  --json            Print {"listening":"http://HOST:PORT","publicKey":"name:base64"} on stdout once ready

Exit codes: 0 stopped by a signal, 1 could not start (the address is in use, the data directory or the database
cannot be used), 2 usage error.
`,
  options: {
    db: { type: "string" },
    data: { type: "string" },
    listen: { type: "string" },
    set: { type: "string", multiple: true },
    refresh: { type: "string" },
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

    const reg = await startRegistry({
      dataDir,
      ...(db !== undefined ? { db } : {}),
      listen,
      sets,
      refreshSeconds,
      env: ctx.env,
      cwd: ctx.cwd,
      cacheDir: config.cacheDir,
      log: process.stderr,
    });
    const retry = refreshSeconds > 0 ? `retried every ${refreshSeconds} s` : "--refresh 0: not retried until a restart";
    for (const u of reg.unreachable)
      ctx.term.warn("serve.set-unindexed", `set ${redactUrl(u.url)} could not be indexed yet (${retry}): ${u.error}`);
    if (flag(args, "json")) ctx.term.json({ listening: reg.url, publicKey: reg.publicKey }, { line: true });
    ctx.term.info(`listening on ${reg.url}`);
    ctx.term.info(`public key ${reg.publicKey}`);

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
