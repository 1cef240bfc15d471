/**
 * Starting a registry server (used by `cpr serve`, the tests, the bench and the demo).
 *
 *     const reg = await startRegistry({ dataDir, listen: "127.0.0.1:0", sets: [mirrorUrl], log: false });
 *     reg.url; reg.publicKey; await reg.close();
 *
 * At start: the data directory and signing key (created at first start), the database (migrated), the NAR
 * storage (the data directory, or S3 with `storeUrl`: leftover partial uploads removed, the bucket checked), then the configured sets are listed and indexed, and only then does the
 * server listen. Sets are re-indexed every `refreshSeconds` and on POST /api/v1/sets/<root>/refresh.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { cacheRootFromEnv } from "../config/paths.js";
import { CprError } from "../protocol/errors.js";
import { ArtifactStore, DEFAULT_MAX_NAR_SIZE, type Compression, type NarStorage } from "./artifacts.js";
import { S3ArtifactStore } from "./artifacts-s3.js";
import { Catalogue, type IndexResult } from "./catalogue.js";
import type { RegistryDb } from "./db.js";
import { openDb } from "./db-open.js";
import { loadOrCreateSigningKey } from "./keys.js";
import { createMetrics } from "./metrics.js";
import { checkPolicy, DEFAULT_LEASE_SECONDS, Farm, NO_POLICY, type BuildPolicy } from "./farm.js";
import type { RegistryContext } from "./context.js";
import { NarInfoCache } from "./narinfo-cache.js";
import { parseS3Url, resolveCredentials, S3Client } from "./s3.js";
import { buildServer } from "./server.js";
import type { PageHooks } from "./pages/hooks.js";

export interface ServeOptions {
  /** `sqlite:PATH`, a path, or `postgres://…`; default `<dataDir>/registry.sqlite`. */
  readonly db?: string;
  readonly dataDir: string;
  /** `HOST:PORT`; port 0 picks a free one. Default 127.0.0.1:8080. */
  readonly listen?: string;
  /** Set mirror URLs to index. */
  readonly sets?: readonly string[];
  /** Seconds between scheduled re-indexing passes; 0 disables the schedule. Default 300. */
  readonly refreshSeconds?: number;
  /** Name of the signing key created at first start (default `cpr-registry-1`). */
  readonly keyName?: string;
  /** false silences the JSON request log (stderr by default). */
  readonly log?: boolean | NodeJS.WritableStream;
  /** Environment for git (cache dir, credentials). */
  readonly env?: NodeJS.ProcessEnv;
  /** The git cache for manifest blobs (default: CPR_CACHE_DIR of `env`, else the default cache root; cacheRootFromEnv). */
  readonly cacheDir?: string;
  /** Base of relative set paths (default process.cwd()). */
  readonly cwd?: string;
  /** Largest NAR an upload may declare, bytes (default: the artifact store's, 4 GiB). */
  readonly maxNarSize?: number;
  /** Largest JSON body, bytes (default 8 MiB). */
  readonly jsonBodyLimit?: number;
  /** How uploaded NARs are stored (default: the artifact store's default, xz). */
  readonly compression?: Compression;
  /** Positive narinfo answers kept in memory (default 100000; 0 disables). */
  readonly narinfoCacheSize?: number;
  /** The build farm's policy (`--build SYSTEM`, `[registry.builds]`); default none: nothing is enqueued. */
  readonly builds?: BuildPolicy;
  /** Seconds a job's lease lasts without a heartbeat (default 60). */
  readonly leaseSeconds?: number;
  /**
   * Where NARs are kept: `s3://BUCKET/PREFIX?endpoint=…` (artifacts-s3.ts; credentials from the AWS variables and
   * files of `env`), or absent for the data directory.
   */
  readonly storeUrl?: string;
  /** Bytes per part of an S3 multipart upload (default 8 MiB; at least 5 MiB). */
  readonly s3PartSize?: number;
  /** What yanks, grafts and the build farm give the web pages (pages/hooks.ts). */
  readonly pages?: PageHooks;
}

export interface RunningRegistry {
  /** Base URL, `http://HOST:PORT`. */
  readonly url: string;
  /** `name:base64` */
  readonly publicKey: string;
  /** The data directory. */
  readonly dataDir: string;
  /** Where NARs are kept, in words (`data directory …` or `s3://… at ENDPOINT`). */
  readonly storage: string;
  /** The database (shared with the server; closed by close()). */
  readonly db: RegistryDb;
  /** What the indexing at start found, one entry per set indexed. */
  readonly indexed: readonly IndexResult[];
  /** Sets given in `sets` that could not be reached at start (they are retried on schedule). */
  readonly unreachable: readonly { readonly url: string; readonly error: string }[];
  /** Re-indexes every set now. */
  refresh(): Promise<IndexResult[]>;
  /** Stops listening, waits for requests and indexing passes in flight, closes the database. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_LISTEN = "127.0.0.1:8080";
export const DEFAULT_REFRESH_SECONDS = 300;

/** `HOST:PORT`, `[v6]:PORT`, `:PORT` (all interfaces) or `PORT` (loopback). */
export function parseListen(text: string): { host: string; port: number } {
  let host: string;
  let port: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (v6) [host, port] = [v6[1]!, v6[2]!];
  else if (/^\d+$/.test(text)) [host, port] = ["127.0.0.1", text];
  else {
    const i = text.lastIndexOf(":");
    if (i < 0)
      throw new CprError("registry.listen", `--listen wants HOST:PORT, got ${JSON.stringify(text)}`, {
        hint: "e.g. 127.0.0.1:8080, 0.0.0.0:80 or 127.0.0.1:0",
      });
    host = text.slice(0, i) || "0.0.0.0";
    port = text.slice(i + 1);
  }
  const n = Number(port);
  if (!/^\d+$/.test(port) || n > 65535)
    throw new CprError("registry.listen", `--listen: invalid port ${JSON.stringify(port)}`, {
      hint: "a port is 0-65535; 0 picks a free one",
    });
  return { host, port: n };
}

function hostForUrl(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

/** The data directory's store, or S3's for a `storeUrl`. */
function openNarStorage(opts: ServeOptions, dataDir: string, maxNarSize: number, env: NodeJS.ProcessEnv): NarStorage {
  const compression = opts.compression ? { compression: opts.compression } : {};
  if (opts.storeUrl === undefined) return new ArtifactStore({ dataDir, maxNarSize, ...compression });
  const location = parseS3Url(opts.storeUrl, env);
  const client = new S3Client(location, resolveCredentials(location, env));
  return new S3ArtifactStore({ client, maxNarSize, ...compression, ...(opts.s3PartSize ? { partSize: opts.s3PartSize } : {}) });
}

export async function startRegistry(opts: ServeOptions): Promise<RunningRegistry> {
  const dataDir = opts.dataDir;
  const env = opts.env ?? process.env;
  const { host, port } = parseListen(opts.listen ?? DEFAULT_LISTEN);
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (e) {
    throw new CprError("registry.data", `cannot use ${dataDir} as the registry's data directory: ${(e as Error).message}`, {
      where: dataDir,
      hint: "pass --data DIR (or config registry.data) naming a directory this user may create and write",
      cause: e,
    });
  }
  const key = await loadOrCreateSigningKey(dataDir, opts.keyName);
  const db = await openDb(opts.db ?? join(dataDir, "registry.sqlite"));
  let app: FastifyInstance | null = null;
  let catalogue: Catalogue | null = null;
  let farmRef: Farm | null = null;
  try {
    await db.migrate();
    const maxNarSize = opts.maxNarSize ?? DEFAULT_MAX_NAR_SIZE;
    const artifacts = openNarStorage(opts, dataDir, maxNarSize, env);
    await artifacts.init();
    const leaseSeconds = opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    const metrics = createMetrics(db, { leaseSeconds });
    const policy = checkPolicy(opts.builds ?? NO_POLICY, "the build policy");
    // The app exists before the catalogue so that indexing logs through the same logger.
    const ctxRef: { catalogue: Catalogue | null; farm: Farm | null } = { catalogue: null, farm: null };
    const ctx: RegistryContext = {
      db,
      artifacts,
      key,
      get catalogue(): Catalogue {
        return ctxRef.catalogue!;
      },
      metrics,
      narinfoCache: new NarInfoCache(opts.narinfoCacheSize ?? 100_000),
      maxNarSize,
      get farm(): Farm {
        return ctxRef.farm!;
      },
    };
    app = buildServer(ctx, { log: opts.log, jsonBodyLimit: opts.jsonBodyLimit, pages: opts.pages });
    const farm = new Farm({ db, policy, leaseSeconds, log: app.log });
    ctxRef.farm = farm;
    farmRef = farm;
    catalogue = new Catalogue({
      db,
      cacheDir: opts.cacheDir ?? cacheRootFromEnv(env, opts.cwd ?? process.cwd()),
      env,
      cwd: opts.cwd ?? process.cwd(),
      log: app.log,
      onIndexed: (r) => farm.enqueueSet(r.root),
    });
    ctxRef.catalogue = catalogue;
    farm.start();

    const configured = await catalogue.configure(opts.sets ?? []);
    const indexed = await catalogue.indexAll();
    try {
      await app.listen({ host, port });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === "EADDRINUSE"
          ? "the address is already in use"
          : code === "EACCES"
            ? "permission denied"
            : code === "EADDRNOTAVAIL"
              ? "no interface has that address"
              : (e as Error).message;
      throw new CprError("registry.listen", `cannot listen on ${host}:${port}: ${why}`, {
        where: `${host}:${port}`,
        hint:
          code === "EADDRINUSE"
            ? "stop the other server or pick another port (--listen HOST:PORT; port 0 picks a free one)"
            : "check --listen (config registry.listen)",
        cause: e,
      });
    }
    const addr = app.server.address();
    const actualPort = typeof addr === "object" && addr ? addr.port : port;
    const url = `http://${hostForUrl(host)}:${actualPort}`;

    const refreshSeconds = opts.refreshSeconds ?? DEFAULT_REFRESH_SECONDS;
    const cat = catalogue;
    let timer: NodeJS.Timeout | null = null;
    let scheduled: Promise<unknown> | null = null;
    // Set URLs that could not be reached yet: asked again for their root at every scheduled pass.
    let pending = configured.failed.map((f) => f.url);
    if (refreshSeconds > 0) {
      timer = setInterval(() => {
        if (scheduled) return; // the previous pass is still running
        scheduled = (async () => {
          if (pending.length) {
            const again = await cat.configure(pending).catch(() => null);
            if (again) pending = again.failed.map((f) => f.url);
          }
          await cat.indexAll();
        })().finally(() => {
          scheduled = null;
        });
      }, refreshSeconds * 1000);
      timer.unref();
    }
    const server = app;
    let closing: Promise<void> | null = null;
    return {
      url,
      publicKey: key.publicKey,
      dataDir,
      storage: artifacts.description,
      db,
      indexed,
      unreachable: configured.failed,
      refresh: () => cat.indexAll(),
      close() {
        closing ??= (async () => {
          if (timer) clearInterval(timer);
          farm.stop();
          await server.close();
          await cat.close();
          if (scheduled) await scheduled.catch(() => undefined);
          await db.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    farmRef?.stop();
    await app?.close().catch(() => undefined);
    await catalogue?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw e;
  }
}
