/**
 * Loopback git servers for the discovery benchmark: `git daemon` (git://) and lighttpd running `git http-backend`
 * through mod_cgi (smart HTTP). Each is started on a free 127.0.0.1 port and stopped by its process id.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, connect } from "node:net";
import { chmodSync, chownSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { benchEnv, BenchError, ensureDir, findTool, run } from "./lib.js";

export interface GitServer {
  readonly kind: "git" | "http";
  readonly port: number;
  /** URL of repository `name` (a directory under the served root) on `port` (default: the server's own). */
  url(name: string, port?: number): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the usual bind-then-close race is acceptable for a benchmark). */
export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolvePromise(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const sock = connect(port, "127.0.0.1");
    sock.once("connect", () => {
      sock.destroy();
      resolvePromise(true);
    });
    sock.once("error", () => resolvePromise(false));
  });
}

export async function waitForPort(port: number, child: ChildProcess, what: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new BenchError(`${what} exited early (${child.exitCode}): ${stderr()}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new BenchError(`${what} did not listen on 127.0.0.1:${port} within 10 s: ${stderr()}`);
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  return new Promise((resolvePromise) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolvePromise();
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolvePromise();
    });
    child.kill(signal);
  });
}

/** `git daemon` serving every repository under `root` (git://127.0.0.1:PORT/<name>). */
export async function startGitDaemon(root: string): Promise<GitServer> {
  const port = await freePort();
  const child = spawn(
    "git",
    ["daemon", `--base-path=${root}`, "--export-all", "--reuseaddr", "--informative-errors", "--listen=127.0.0.1", `--port=${port}`, root],
    { env: benchEnv(), stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  await waitForPort(port, child, "git daemon", () => err);
  return {
    kind: "git",
    port,
    url: (name, p = port) => `git://127.0.0.1:${p}/${name}`,
    stop: () => stopChild(child),
  };
}

/** lighttpd + mod_cgi running `git http-backend` for every repository under `root` (http://127.0.0.1:PORT/git/<name>). */
export async function startHttpBackend(root: string, workDir: string): Promise<GitServer> {
  const lighttpd = findTool("lighttpd");
  const backend = findTool("git-http-backend");
  if (!lighttpd) throw new BenchError("lighttpd is not installed (Debian: apt-get install lighttpd)");
  if (!backend) throw new BenchError("git-http-backend not found (it ships with git, under git --exec-path)");
  const port = await freePort();
  const dir = ensureDir(workDir);
  const conf = join(dir, "lighttpd.conf");
  const q = (s: string) => JSON.stringify(s);
  writeFileSync(
    conf,
    [
      `server.modules = ("mod_alias", "mod_setenv", "mod_cgi")`,
      `server.document-root = ${q(dir)}`,
      `server.bind = "127.0.0.1"`,
      `server.port = ${port}`,
      `server.errorlog = ${q(join(dir, "error.log"))}`,
      `server.max-request-size = 0`,
      `server.stream-response-body = 2`,
      `server.stream-request-body = 2`,
      `alias.url = ("/git" => ${q(backend)})`,
      `$HTTP["url"] =~ "^/git" {`,
      `  cgi.assign = ("" => "")`,
      `  setenv.add-environment = ("GIT_PROJECT_ROOT" => ${q(root)}, "GIT_HTTP_EXPORT_ALL" => "1", "GIT_CONFIG_NOSYSTEM" => "1", "GIT_CONFIG_GLOBAL" => "/dev/null")`,
      `}`,
      "",
    ].join("\n"),
  );
  const child = spawn(lighttpd, ["-D", "-f", conf], { env: benchEnv(), stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  await waitForPort(port, child, "lighttpd", () => err);
  return {
    kind: "http",
    port,
    url: (name, p = port) => `http://127.0.0.1:${p}/git/${name}`,
    stop: () => stopChild(child),
  };
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
  const child = spawn(nginx, ["-p", dir, "-c", conf], { env: benchEnv(), stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  await waitForPort(port, child, "nginx", () => err);
  return { port, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  readonly version: string;
  stop(): Promise<void>;
}

/** The newest /usr/lib/postgresql/<major>/bin holding `postgres`, or a `postgres` in PATH. */
function postgresBin(): string | null {
  const base = "/usr/lib/postgresql";
  try {
    const majors = readdirSync(base)
      .filter((d) => /^\d+$/.test(d) && existsSync(join(base, d, "bin", "postgres")))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return join(base, majors[0], "bin");
  } catch {
    /* not Debian's layout */
  }
  const p = findTool("postgres");
  return p ? dirname(p) : null;
}

/**
 * A throwaway PostgreSQL server: `initdb` (trust authentication, user `postgres`) in `workDir/data`, then `postgres`
 * on a free loopback port with its socket in `workDir`. PostgreSQL refuses to run as root, so as root both run as
 * the `postgres` system user (Debian's postgresql package creates it) and `workDir` is handed to that user. The
 * server runs with fsync, synchronous_commit and full_page_writes off: the data is generated, so durability only
 * slows loading it; reads are not affected.
 */
export async function startPostgres(workDir: string): Promise<PostgresServer> {
  const bin = postgresBin();
  if (!bin) throw new BenchError("PostgreSQL is not installed (Debian: apt-get install postgresql)");
  const dir = ensureDir(workDir);
  const data = join(dir, "data");
  let ids: { uid: number; gid: number } | null = null;
  if (process.getuid?.() === 0) {
    const r = await run("id", ["-u", "postgres"], { check: false });
    const g = await run("id", ["-g", "postgres"], { check: false });
    if (r.code !== 0) throw new BenchError("running as root and there is no postgres user to run PostgreSQL as");
    ids = { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
    chmodSync(dir, 0o755);
    chownSync(dir, ids.uid, ids.gid);
  }
  const env = { ...benchEnv(), LC_ALL: "C", HOME: dir };
  const as = ids ? { uid: ids.uid, gid: ids.gid } : {};
  const user = ids ? "postgres" : userInfo().username;
  await new Promise<void>((resolvePromise, reject) => {
    const c = spawn(join(bin, "initdb"), ["-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"], { env, cwd: dir, stdio: ["ignore", "pipe", "pipe"], ...as });
    let out = "";
    c.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    c.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    c.on("error", reject);
    c.on("close", (code) => (code === 0 ? resolvePromise() : reject(new BenchError(`initdb exited with ${code}: ${out.trim().slice(-2000)}`))));
  });
  const port = await freePort();
  const child = spawn(
    join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=100", "-c", "shared_buffers=256MB"],
    { env, cwd: dir, stdio: ["ignore", "ignore", "pipe"], ...as },
  );
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-8000)));
  await waitForPort(port, child, "postgres", () => err);
  // Listening is not ready: wait until it accepts a query.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await run(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-U", user], { env, check: false });
    if (r.code === 0) break;
    if (Date.now() > deadline) throw new BenchError(`postgres did not become ready: ${err}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
  const version = (await run(join(bin, "postgres"), ["--version"], { env, check: false })).stdout.trim();
  return { url: `postgres://${user}@127.0.0.1:${port}/postgres`, port, version, stop: () => stopChild(child, "SIGINT") }; // SIGINT: fast shutdown (SIGTERM waits for clients)
}
