/**
 * Real git servers on loopback for the transport tests: `git daemon`, lighttpd running `git http-backend` as CGI,
 * and OpenSSH's `sshd`. Each serves a directory of bare repositories and is started in its own process group, so
 * that `stop()` (and, as a last resort, process exit) kills the server and everything it forked.
 *
 * Debian packages: git (git daemon, git-http-backend), lighttpd (and lighttpd-mod-openssl, with openssl, for https),
 * openssh-server (sshd), openssh-client (ssh, ssh-keygen), tinyproxy-bin (a forward proxy).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer, type Socket } from "node:net";
import { createGzip } from "node:zlib";
import { userInfo } from "node:os";
import { join } from "node:path";
import { findTool } from "./tools.js";
import { tempDir } from "./repo.js";
import { decodePkt, encodeLine, FLUSH_PKT } from "../../src/git/pktline.js";
import { canConnect, freePort } from "../../scripts/lib/net.js";

export { freePort };

/** A running server. */
export interface TestServer {
  /** URL of the repository `name` (a directory under the served base, e.g. `atoms.git`). */
  url(name: string): string;
  /** The loopback port it listens on. */
  readonly port: number;
  /** Everything the server wrote to stdout/stderr so far (for failure messages). */
  log(): string;
  /** Kill the server's process group and wait for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** An sshd, plus what a client needs to reach it. */
export interface SshTestServer extends TestServer {
  /** For GIT_SSH_COMMAND: ssh with the client key, no config files, no host key checks, batch mode, and `-p <port>`. */
  readonly sshCommand: string;
  /** Private key file of the authorised client key. */
  readonly clientKey: string;
  /** The login user (the current user). */
  readonly user: string;
  /** scp-like form `user@127.0.0.1:<abs path>` (needs the port from sshCommand). */
  scpUrl(name: string): string;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) killGroup(child, "SIGKILL");
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Start `cmd` in its own process group, collecting its output. */
function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; log: () => string } {
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
  live.add(child);
  let out = "";
  const add = (b: Buffer): void => {
    out = (out + b.toString("utf8")).slice(-32768);
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  child.on("exit", () => live.delete(child));
  child.on("error", (e) => {
    out += `\nspawn error: ${e.message}`;
    live.delete(child);
  });
  return { child, log: () => out };
}

/** Resolve once `port` accepts a TCP connection; reject when the process dies or after `ms`. */
async function waitForPort(port: number, child: ChildProcess, log: () => string, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited early (${child.exitCode ?? child.signalCode}):\n${log()}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} within ${ms} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * SIGTERM the group, then SIGKILL if it lingers; resolves once the leader has exited. A child not started in a group
 * of its own gets the signals alone.
 */
export function stopper(child: ChildProcess): () => Promise<void> {
  let stopping: Promise<void> | null = null;
  return () => {
    stopping ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 2000);
      child.once("exit", () => {
        clearTimeout(timer);
        killGroup(child, "SIGKILL");
        resolve();
      });
      killGroup(child, "SIGTERM");
    });
    return stopping;
  };
}

/**
 * Start `cmd` (startProcess) and wait until it listens on `port` (waitForPort, whose failure message adds
 * `extraLog`, e.g. a log file the server writes); if it does not, stop it and throw. Returns its log and `stop`.
 */
export async function startListening(
  what: string,
  cmd: string,
  args: string[],
  port: number,
  opts: { env?: NodeJS.ProcessEnv; extraLog?: () => string } = {},
): Promise<{ child: ChildProcess; log: () => string; stop: () => Promise<void> }> {
  const { child, log } = startProcess(cmd, args, opts.env);
  const stop = stopper(child);
  try {
    await waitForPort(port, child, opts.extraLog ? () => log() + opts.extraLog!() : log, what);
  } catch (e) {
    await stop();
    throw e;
  }
  return { child, log, stop };
}

function requireTool(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} is not installed (use needTools() in the test to skip cleanly)`);
  return p;
}

/**
 * `git daemon` serving every repository under `base` (receive-pack enabled) as `git://127.0.0.1:<port>/<name>`.
 * `opts.port` reuses a port (e.g. one a stopped daemon listened on, to restart it under the same URLs); `opts.env`
 * is the daemon's environment (default: this process's), e.g. one without the user's git config.
 */
export async function startGitDaemon(base: string, opts: { port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<TestServer> {
  requireTool("git-daemon");
  const port = opts.port ?? (await freePort());
  const args = [
    "daemon",
    "--reuseaddr",
    `--base-path=${base}`,
    "--export-all",
    "--enable=receive-pack",
    "--listen=127.0.0.1",
    `--port=${port}`,
    base,
  ];
  const { log, stop } = await startListening("git daemon", "git", args, port, opts.env ? { env: opts.env } : {});
  return { port, url: (name) => `git://127.0.0.1:${port}/${name}`, log, stop };
}

/** Options for startHttpBackend. */
export interface HttpBackendOptions {
  /** Require HTTP Basic auth with this user and password (lighttpd mod_auth, plain user file). */
  readonly auth?: { readonly user: string; readonly password: string };
  /**
   * Serve https with a self-signed certificate for 127.0.0.1 made by `openssl` (lighttpd's mod_openssl, Debian
   * package lighttpd-mod-openssl); its PEM file is `caFile`.
   */
  readonly tls?: boolean;
  /**
   * Stream request and response bodies through lighttpd as they come, instead of buffering whole bodies first, with
   * no limit on a request's size (what the discovery benchmark measures with).
   */
  readonly stream?: boolean;
}

/** lighttpd serving git over HTTP. */
export interface HttpTestServer extends TestServer {
  /** With `tls`: the server's self-signed certificate (PEM), to trust through GIT_SSL_CAINFO. */
  readonly caFile?: string;
  /**
   * The same repository as static files (`http://127.0.0.1:<port>/static/<name>`): git's "dumb" HTTP protocol,
   * which needs `git update-server-info` in the repository first.
   */
  dumbUrl(name: string): string;
}

/**
 * lighttpd running `git http-backend` as CGI for every repository under `base`, at
 * `http://127.0.0.1:<port>/git/<name>`. Pushes are allowed (http.receivepack=true through the CGI environment).
 */
export async function startHttpBackend(base: string, opts: HttpBackendOptions = {}): Promise<HttpTestServer> {
  const lighttpd = requireTool("lighttpd");
  const backend = requireTool("git-http-backend");
  const dir = tempDir("cpr-lighttpd-");
  const port = await freePort();
  const conf = join(dir, "lighttpd.conf");
  let pem: string | undefined;
  if (opts.tls) {
    pem = join(dir, "server.pem");
    const key = join(dir, "server.key");
    const cert = join(dir, "server.crt");
    execFileSync(
      requireTool("openssl"),
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      { stdio: "ignore" },
    );
    writeFileSync(pem, readFileSync(cert, "utf8") + readFileSync(key, "utf8"));
    writeFileSync(join(dir, "ca.pem"), readFileSync(cert));
  }
  writeFileSync(
    conf,
    lighttpdConfig({
      base,
      backend,
      dir,
      port,
      stream: opts.stream === true,
      ...(opts.auth ? { auth: opts.auth } : {}),
      ...(pem ? { pem } : {}),
    }),
  );
  const { log, stop } = await startListening("lighttpd", lighttpd, ["-D", "-f", conf], port);
  const scheme = opts.tls ? "https" : "http";
  return {
    port,
    url: (name) => `${scheme}://127.0.0.1:${port}/git/${name}`,
    dumbUrl: (name) => `${scheme}://127.0.0.1:${port}/static/${name}`,
    ...(opts.tls ? { caFile: join(dir, "ca.pem") } : {}),
    log: () => log() + readLog(join(dir, "error.log")),
    stop,
  };
}

function readLog(path: string): string {
  try {
    return execFileSync("tail", ["-n", "50", path], { encoding: "utf8" });
  } catch {
    return "";
  }
}

/** A lighttpd config string; quoting follows lighttpd's string syntax. */
function lighttpdConfig(o: {
  base: string;
  backend: string;
  dir: string;
  port: number;
  stream: boolean;
  auth?: { user: string; password: string };
  pem?: string;
}): string {
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    `server.modules = ( "mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi"${o.pem ? `, "mod_openssl"` : ""} )`,
    ...(o.pem ? [`ssl.engine = "enable"`, `ssl.pemfile = ${q(o.pem)}`] : []),
    `server.document-root = ${q(o.dir)}`,
    `server.bind = "127.0.0.1"`,
    `server.port = ${o.port}`,
    `server.errorlog = ${q(join(o.dir, "error.log"))}`,
    `server.upload-dirs = ( ${q(o.dir)} )`,
    ...(o.stream ? [`server.max-request-size = 0`, `server.stream-response-body = 2`, `server.stream-request-body = 2`] : []),
    `alias.url = ( "/git" => ${q(o.backend)}, "/static" => ${q(o.base)} )`,
    `$HTTP["url"] =~ "^/git" {`,
    `  cgi.assign = ( "" => "" )`,
    `  setenv.add-environment = (`,
    `    "GIT_PROJECT_ROOT" => ${q(o.base)},`,
    `    "GIT_HTTP_EXPORT_ALL" => "1",`,
    `    "GIT_CONFIG_COUNT" => "1",`,
    `    "GIT_CONFIG_KEY_0" => "http.receivepack",`,
    `    "GIT_CONFIG_VALUE_0" => "true",`,
    `    "GIT_CONFIG_NOSYSTEM" => "1",`,
    `    "HOME" => ${q(o.dir)},`,
    `  )`,
    `}`,
  ];
  if (o.auth) {
    const users = join(o.dir, "users");
    writeFileSync(users, `${o.auth.user}:${o.auth.password}\n`);
    lines.push(
      `auth.backend = "plain"`,
      `auth.backend.plain.userfile = ${q(users)}`,
      `auth.require = ( "/git" => ( "method" => "basic", "realm" => "cpr-test", "require" => "valid-user" ) )`,
      // lighttpd otherwise waits before answering a bad password, which only slows the tests down.
      `server.feature-flags = ( "auth.delay-invalid-creds" => "disable" )`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Options for startSshd. */
export interface SshdOptions {
  /**
   * Accept `GIT_PROTOCOL` from clients (default true). Without it the server's git-upload-pack never sees the
   * v2 request and answers with the v0 advertisement, as many real OpenSSH servers do.
   */
  readonly acceptEnv?: boolean;
}

/**
 * OpenSSH's sshd on loopback, logging in as the current user with a generated client key. Runs as root (this
 * needs /run/sshd, created here if missing, and PermitRootLogin) or as an ordinary user (sshd then skips privilege
 * separation and can only log in that user). Repositories are reached by absolute path under `base`.
 */
export async function startSshd(base: string, opts: SshdOptions = {}): Promise<SshTestServer> {
  const sshd = requireTool("sshd");
  const keygen = requireTool("ssh-keygen");
  const ssh = requireTool("ssh");
  const dir = tempDir("cpr-sshd-");
  const port = await freePort();
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  execFileSync(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "cpr-test-host", "-f", hostKey]);
  execFileSync(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "cpr-test-client", "-f", clientKey]);
  execFileSync("cp", [`${clientKey}.pub`, join(dir, "authorized_keys")]);
  const root = process.getuid?.() === 0;
  if (root && !existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755, recursive: true });
  const conf = join(dir, "sshd_config");
  writeFileSync(conf, sshdConfig({ dir, port, hostKey, acceptEnv: opts.acceptEnv ?? true }));
  const { log, stop } = await startListening("sshd", sshd, ["-D", "-e", "-f", conf], port);
  const user = userInfo().username;
  const sshCommand = [
    ssh,
    "-F",
    "/dev/null",
    "-i",
    clientKey,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(port),
  ].join(" ");
  return {
    port,
    user,
    clientKey,
    sshCommand,
    url: (name) => `ssh://${user}@127.0.0.1:${port}${join(base, name)}`,
    scpUrl: (name) => `${user}@127.0.0.1:${join(base, name)}`,
    log,
    stop,
  };
}

function sshdConfig(o: { dir: string; port: number; hostKey: string; acceptEnv: boolean }): string {
  return [
    `Port ${o.port}`,
    `ListenAddress 127.0.0.1`,
    `HostKey ${o.hostKey}`,
    `PidFile ${join(o.dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(o.dir, "authorized_keys")}`,
    `StrictModes no`,
    `UsePAM no`,
    `PermitRootLogin yes`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `PrintMotd no`,
    `LogLevel ERROR`,
    ...(o.acceptEnv ? [`AcceptEnv GIT_PROTOCOL`] : []),
    "",
  ].join("\n");
}

/** A reverse proxy in front of a test server. */
export interface TestProxy extends TestServer {
  /** How many responses were sent gzipped. */
  gzipped(): number;
}

/** What the proxy changes on the way through. */
export interface ProxyOptions {
  /** Gzip every response body when the client accepts gzip (Debian's lighttpd has no mod_deflate). */
  readonly gzip?: boolean;
  /** Request headers to drop, lower case; e.g. `git-protocol`, to make git http-backend answer v0. */
  readonly dropRequestHeaders?: readonly string[];
}

/** Start a small Node reverse proxy on loopback that forwards to `target` (same paths), changing what `opts` asks. */
export async function startProxy(target: TestServer, opts: ProxyOptions = {}): Promise<TestProxy> {
  let count = 0;
  const server = http.createServer((req, res) => {
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: `127.0.0.1:${target.port}`, "accept-encoding": "identity" };
    for (const h of opts.dropRequestHeaders ?? []) delete headers[h];
    const upstream = http.request({ host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers }, (up) => {
      const out = { ...up.headers };
      const gzip = opts.gzip === true && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
      if (gzip) {
        delete out["content-length"];
        out["content-encoding"] = "gzip";
        count += 1;
      }
      res.writeHead(up.statusCode ?? 502, out);
      (gzip ? up.pipe(createGzip()) : up).pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  let stopping: Promise<void> | null = null;
  return {
    port,
    url: (name) => `http://127.0.0.1:${port}/git/${name}`,
    log: () => "",
    gzipped: () => count,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/** tinyproxy on loopback. */
export interface TinyproxyServer extends TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly proxyUrl: string;
  /** The request lines tinyproxy logged so far (`GET http://…`, `CONNECT host:port`). */
  requests(): string[];
}

/**
 * tinyproxy (Debian package tinyproxy-bin), a real forward proxy: absolute-form HTTP requests, and CONNECT tunnels
 * to `connectPorts`; with `auth`, Basic proxy authentication.
 */
export async function startTinyproxy(
  opts: { connectPorts?: readonly number[]; auth?: { user: string; password: string } } = {},
): Promise<TinyproxyServer> {
  const tinyproxy = requireTool("tinyproxy");
  const dir = tempDir("cpr-tinyproxy-");
  const port = await freePort();
  const logFile = join(dir, "tinyproxy.log");
  const conf = [
    `Port ${port}`,
    `Listen 127.0.0.1`,
    `Timeout 60`,
    `LogFile "${logFile}"`,
    `LogLevel Info`,
    `MaxClients 50`,
    `Allow 127.0.0.1`,
    `DisableViaHeader Yes`,
    ...(opts.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
    ...(opts.auth ? [`BasicAuth ${opts.auth.user} ${opts.auth.password}`] : []),
  ];
  writeFileSync(join(dir, "tinyproxy.conf"), `${conf.join("\n")}\n`);
  const { log, stop } = await startListening("tinyproxy", tinyproxy, ["-d", "-c", join(dir, "tinyproxy.conf")], port, {
    extraLog: () => readLog(logFile),
  });
  const requests = (): string[] => {
    let text = "";
    try {
      text = readFileSync(logFile, "utf8");
    } catch {
      /* nothing logged yet */
    }
    return [...text.matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)].map((m) => m[1]!);
  };
  return {
    port,
    proxyUrl: `http://127.0.0.1:${port}`,
    url: () => `http://127.0.0.1:${port}`,
    requests,
    log: () => log() + readLog(logFile),
    stop,
  };
}

/** One command request a ScriptedDaemon received. */
export interface ScriptedRequest {
  /** The command, e.g. `ls-refs`. */
  readonly command: string;
  /** The argument lines after the delimiter, without their LF (e.g. `peel`, `ref-prefix refs/ekala/init`). */
  readonly args: readonly string[];
  /** Which connection it came on: 0 for the first one accepted. */
  readonly connection: number;
  /** Its place on that connection: 0 for the first request. */
  readonly index: number;
}

/**
 * What a ScriptedDaemon sends for a request, in order: bytes as they are, a pause, a wait until request number
 * `untilRequest` of the connection has arrived (e.g. the nudge a client sends when a reply is incomplete), or the
 * end of the connection.
 */
export type ScriptStep = Buffer | { readonly pauseMs: number } | { readonly untilRequest: number } | "close";

export interface ScriptedDaemon extends TestServer {
  /** Connections accepted so far. */
  connections(): number;
  /** Every command request received so far. */
  requests(): ScriptedRequest[];
}

/**
 * Whether a request is one of the client's nudges (lsrefs.ts: an ls-refs of refs/cpr/nudge/none/, which git answers
 * with a bare flush).
 */
export function isNudge(req: ScriptedRequest): boolean {
  return req.command === "ls-refs" && prefixesOf(req).includes("refs/cpr/nudge/none/");
}

/** The ref-prefix arguments of a request. */
export function prefixesOf(req: ScriptedRequest): string[] {
  return req.args.filter((a) => a.startsWith("ref-prefix ")).map((a) => a.slice("ref-prefix ".length));
}

/**
 * A git:// server that sends crafted bytes, for the replies a real git daemon does not send on demand (cut short,
 * out of step, for another request). It reads the git:// request line, sends a protocol v2 capability
 * advertisement as git 2.39 does (`agent=git/2.39.5`, ls-refs, fetch, sha1), then answers each command request
 * (read up to its flush; a bare flush ends the session) with the steps `answer` returns, one request after the
 * other, as upload-pack does.
 */
export async function startScriptedDaemon(answer: (req: ScriptedRequest) => readonly ScriptStep[]): Promise<ScriptedDaemon> {
  const advertisement = Buffer.concat([
    ...["version 2", "agent=git/2.39.5", "ls-refs=unborn", "fetch=shallow wait-for-done", "server-option", "object-format=sha1"].map((l) =>
      encodeLine(l),
    ),
    FLUSH_PKT,
  ]);
  const all: ScriptedRequest[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    const connection = accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let buf = Buffer.alloc(0);
    let greeted = false;
    let lines: string[] = [];
    let args: string[] | null = null;
    const received: ScriptedRequest[] = [];
    let arrived: (() => void) | null = null;
    let chain: Promise<void> = Promise.resolve();
    const until = async (n: number): Promise<void> => {
      while (received.length <= n && !socket.destroyed) await new Promise<void>((r) => (arrived = r));
    };
    const run = async (steps: readonly ScriptStep[]): Promise<void> => {
      for (const s of steps) {
        if (socket.destroyed) return;
        if (s === "close") socket.destroy();
        else if (Buffer.isBuffer(s)) socket.write(s);
        else if ("pauseMs" in s) await new Promise((r) => setTimeout(r, s.pauseMs));
        else await until(s.untilRequest);
      }
    };
    socket.on("close", () => arrived?.());
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (let r = decodePkt(buf); r; r = decodePkt(buf)) {
        buf = buf.subarray(r.next);
        const p = r.pkt;
        if (!greeted) {
          greeted = true;
          socket.write(advertisement);
        } else if (p.kind === "data") {
          (args ?? lines).push(p.data.toString("utf8").replace(/\n$/, ""));
        } else if (p.kind === "delim") {
          args = [];
        } else if (p.kind === "flush") {
          if (lines.length === 0) {
            socket.end(); // a bare flush: the client ends the session
            continue;
          }
          const req: ScriptedRequest = {
            command: (lines[0] ?? "").replace(/^command=/, ""),
            args: args ?? [],
            connection,
            index: received.length,
          };
          lines = [];
          args = null;
          received.push(req);
          all.push(req);
          const wake = arrived;
          arrived = null;
          wake?.();
          const steps = answer(req);
          chain = chain.then(() => run(steps));
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  let stopping: Promise<void> | null = null;
  return {
    port,
    url: (name) => `git://127.0.0.1:${port}/${name}`,
    log: () => all.map((r) => `${r.connection}.${r.index} ${r.command} ${r.args.join(" | ")}`).join("\n"),
    connections: () => accepted,
    requests: () => [...all],
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })),
  };
}
