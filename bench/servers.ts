/**
 * Loopback git servers for the discovery benchmark: `git daemon` (git://) and lighttpd running `git http-backend`
 * through mod_cgi (smart HTTP). Each is started on a free 127.0.0.1 port and stopped by its process id.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, connect } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchEnv, BenchError, ensureDir, findTool } from "./lib.js";

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

async function waitForPort(port: number, child: ChildProcess, what: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new BenchError(`${what} exited early (${child.exitCode}): ${stderr()}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new BenchError(`${what} did not listen on 127.0.0.1:${port} within 10 s: ${stderr()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolvePromise) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolvePromise();
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolvePromise();
    });
    child.kill("SIGTERM");
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
