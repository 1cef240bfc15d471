/**
 * The benchmarks' servers. git daemon, lighttpd running `git http-backend`, and PostgreSQL are the test suite's own
 * launchers (test/support/servers.ts, test/support/postgres.ts), run with the benchmark's environment and settings;
 * only what the tests never start lives here: nginx serving static files, the registry benchmark's reference.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  freePort,
  startGitDaemon as startTestGitDaemon,
  startHttpBackend as startTestHttpBackend,
  startListening,
  type TestServer,
} from "../test/support/servers.js";
import { launchPostgres, postgresBinDir, PostgresUnavailable } from "../test/support/postgres.js";
import { benchEnv, BenchError, ensureDir, findTool, run } from "./lib.js";

/** A loopback git server: `git daemon` (git://) or lighttpd + git http-backend (smart HTTP). */
export interface GitServer extends TestServer {
  readonly kind: "git" | "http";
}

/** The URL of `server`'s repository `name` reached through `port` instead (a Relay in front of the server). */
export function urlVia(server: TestServer, name: string, port: number | undefined): string {
  const url = new URL(server.url(name));
  if (port !== undefined) url.port = String(port);
  return url.href;
}

/** `git daemon` serving every repository under `root` (git://127.0.0.1:PORT/<name>), without the user's git config. */
export async function startGitDaemon(root: string): Promise<GitServer> {
  return { kind: "git", ...(await startTestGitDaemon(root, { env: benchEnv() })) };
}

/** lighttpd + mod_cgi running `git http-backend` for every repository under `root` (http://127.0.0.1:PORT/git/<name>), bodies streamed. */
export async function startHttpBackend(root: string): Promise<GitServer> {
  if (!findTool("lighttpd")) throw new BenchError("lighttpd is not installed (Debian: apt-get install lighttpd)");
  if (!findTool("git-http-backend")) throw new BenchError("git-http-backend not found (it ships with git, under git --exec-path)");
  return { kind: "http", ...(await startTestHttpBackend(root, { stream: true })) };
}

// ---------------------------------------------------------------------------------------------------------------
// The registry benchmark: nginx serving static files, PostgreSQL as a throwaway server.

export interface StaticServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * nginx (`nginx -g 'daemon off;'`) serving `root` as static files on a free loopback port, with its own prefix and
 * config under `workDir`: one worker process (to match the one Node process of `cpr serve`), no access log,
 * keep-alive connections never closed by request count (wrk reuses its connections, as Node's server allows), and
 * `.narinfo` served as `text/x-nix-narinfo`. Otherwise nginx's defaults (sendfile on; no open_file_cache).
 */
export async function startNginx(root: string, workDir: string): Promise<StaticServer> {
  const nginx = findTool("nginx");
  if (!nginx) throw new BenchError("nginx is not installed (Debian: apt-get install nginx-light)");
  const port = await freePort();
  const dir = ensureDir(workDir);
  for (const d of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) ensureDir(join(dir, "tmp", d));
  const conf = join(dir, "nginx.conf");
  const isRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    [
      // As root the worker would otherwise switch to nobody, who may not read a private checkout's files.
      ...(isRoot ? ["user root;"] : []),
      "worker_processes 1;",
      "daemon off;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")} warn;`,
      "events { worker_connections 4096; }",
      "http {",
      "  access_log off;",
      "  sendfile on;",
      "  tcp_nopush on;",
      "  keepalive_requests 10000000;",
      "  keepalive_timeout 75s;",
      "  types { text/x-nix-narinfo narinfo; text/plain nix-cache-info; }",
      "  default_type application/octet-stream;",
      `  client_body_temp_path ${join(dir, "tmp", "client_body")};`,
      `  proxy_temp_path ${join(dir, "tmp", "proxy")};`,
      `  fastcgi_temp_path ${join(dir, "tmp", "fastcgi")};`,
      `  uwsgi_temp_path ${join(dir, "tmp", "uwsgi")};`,
      `  scgi_temp_path ${join(dir, "tmp", "scgi")};`,
      "  server {",
      `    listen 127.0.0.1:${port};`,
      `    root ${root};`,
      "    location / { }",
      "  }",
      "}",
      "",
    ].join("\n"),
  );
  const { stop } = await startListening("nginx", nginx, ["-p", dir, "-c", conf], port, { env: benchEnv() });
  return { port, url: `http://127.0.0.1:${port}`, stop };
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  readonly version: string;
  /** The postmaster's process id. */
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL server (the tests' launcher) with its data under `workDir`, tuned for loading generated data:
 * no fsync, synchronous_commit or full_page_writes (durability only slows loading; reads are not affected), 100
 * connections, 256MB of shared buffers.
 */
export async function startPostgres(workDir: string): Promise<PostgresServer> {
  const parent = ensureDir(workDir);
  chmodSync(parent, 0o755); // as root, PostgreSQL runs as the postgres user, who must reach its directory inside
  let server;
  try {
    server = await launchPostgres({ parent, settings: { max_connections: "100", shared_buffers: "256MB" } });
  } catch (err) {
    if (err instanceof PostgresUnavailable) throw new BenchError(`PostgreSQL cannot be started: ${err.message}`);
    throw err;
  }
  const version = (await run(join(postgresBinDir()!, "postgres"), ["--version"], { check: false })).stdout.trim();
  const pid = server.postmasterPid();
  if (pid === undefined) throw new BenchError("PostgreSQL started but its postmaster.pid cannot be read");
  return { url: server.url, port: server.port, version, pid, stop: () => server.stop() };
}
