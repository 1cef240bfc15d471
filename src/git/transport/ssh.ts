import { basename } from "node:path";
import { start } from "../../process/run.js";
import { gitEnv, runGit } from "../exec.js";
import { classifyStderr, remoteError, stderrTail, transportError, type RemoteErrorCode } from "./errors.js";
import { spawnSession, type ChildExit } from "./child.js";
import { bareHost } from "./daemon.js";
import type { Session, TransportContext } from "./types.js";

/** The ssh client families git knows, which differ in how they take a port and whether they can send env. */
export type SshVariant = "ssh" | "plink" | "putty" | "tortoiseplink" | "simple";

/** The ssh program to run and how. */
export interface SshProgram {
  /** A shell command (GIT_SSH_COMMAND, core.sshCommand), run as `sh -c '<cmd> "$@"'`, or a program (GIT_SSH, ssh). */
  readonly command: string;
  readonly shell: boolean;
  readonly variant: SshVariant;
}

const VARIANTS: ReadonlySet<string> = new Set(["ssh", "plink", "putty", "tortoiseplink", "simple"]);

/** The variant a program's name implies, as git decides it; null when the name says nothing (git's `auto`). */
export function guessVariant(program: string): SshVariant | null {
  const name = basename(program)
    .toLowerCase()
    .replace(/\.exe$/, "");
  if (name === "ssh") return "ssh";
  if (name === "plink") return "plink";
  if (name === "tortoiseplink") return "tortoiseplink";
  if (name === "putty") return "putty";
  return null;
}

/**
 * git's `auto` detection for an ssh program with an unknown name: OpenSSH-compatible if `<ssh> -G <host>` (print
 * the configuration, connect nowhere) succeeds, otherwise `simple` (no options at all).
 */
function probeVariant(command: string, shell: boolean, host: string, env: NodeJS.ProcessEnv): Promise<SshVariant> {
  const [file, args] = shell ? ["sh", ["-c", `${command} "$@"`, command, "-G", host]] : [command, ["-G", host]];
  const child = start(file, args, { env, stdout: "ignore", okCodes: "any" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  return child.exit.then(
    (e) => {
      clearTimeout(timer);
      return e.code === 0 ? "ssh" : "simple";
    },
    () => {
      clearTimeout(timer);
      return "simple";
    },
  );
}

/** `core.sshCommand` and `ssh.variant` from git config (only read when the environment names no ssh). */
async function sshConfig(ctx: TransportContext): Promise<{ command: string | null; variant: string | null }> {
  try {
    const r = await runGit(["config", "-z", "--get-regexp", "^(core\\.sshcommand|ssh\\.variant)$"], {
      cwd: ctx.cwd,
      env: ctx.env,
      repo: "user",
      okCodes: [0, 1],
    });
    let command: string | null = null;
    let variant: string | null = null;
    for (const entry of r.stdout.toString("utf8").split("\0")) {
      const nl = entry.indexOf("\n");
      if (nl < 0) continue;
      const key = entry.slice(0, nl).toLowerCase();
      if (key === "core.sshcommand") command = entry.slice(nl + 1);
      else if (key === "ssh.variant") variant = entry.slice(nl + 1);
    }
    return { command, variant };
  } catch {
    return { command: null, variant: null };
  }
}

/**
 * Which ssh to run, in git's order: GIT_SSH_COMMAND, core.sshCommand (both shell commands), GIT_SSH (a program),
 * `ssh`. The variant comes from GIT_SSH_VARIANT or ssh.variant, else from the program's name, else a probe.
 */
export async function resolveSshProgram(ctx: TransportContext): Promise<SshProgram> {
  const env = ctx.env;
  const needConfig = !env.GIT_SSH_COMMAND || !env.GIT_SSH_VARIANT;
  const config = needConfig ? await sshConfig(ctx) : { command: null, variant: null };
  const shellCommand = env.GIT_SSH_COMMAND || config.command;
  const chosen = shellCommand ? { command: shellCommand, shell: true } : { command: env.GIT_SSH || "ssh", shell: false };
  const explicit = env.GIT_SSH_VARIANT ?? config.variant;
  if (explicit && VARIANTS.has(explicit)) return { ...chosen, variant: explicit as SshVariant };
  // The program is the first word of a shell command when it is a plain path; anything fancier is probed, as in git.
  const firstWord = chosen.shell ? (/^[\w./+-]+(?=\s|$)/.exec(chosen.command.trim())?.[0] ?? "") : chosen.command;
  const named = guessVariant(firstWord);
  return {
    ...chosen,
    variant: named ?? (await probeVariant(chosen.command, chosen.shell, bareHost(ctx.url.host ?? "localhost"), gitEnv(env, "remote"))),
  };
}

/** Quote for the remote shell as git does (sq_quote): single quotes, with `'` and `!` escaped outside them. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''").replace(/!/g, "'\\!'")}'`;
}

/**
 * The path to give git-upload-pack. For scp-like `[user@]host:path`, the path exactly as written after the colon
 * (relative paths are relative to the remote home, as with git). For ssh:// URLs, the URL path, with the leading
 * `/` dropped before `~` (`ssh://host/~user/repo`).
 */
export function sshPath(url: TransportContext["url"]): string {
  if (url.scpLike && !url.url.includes("://")) {
    const m = /^(?:[^@/]*@)?(\[[^\]]*\]|[^:/]*):(?:\d+:)?(.*)$/s.exec(url.url);
    if (m && m[2] !== undefined && m[2] !== "") return m[2];
  }
  if (url.scpLike) return (url.path.startsWith("//") ? url.path.slice(1) : url.path.replace(/^\//, "")) || ".";
  return url.path.startsWith("/~") ? url.path.slice(1) : url.path || "/";
}

/** ssh arguments: options for the variant, port, `[user@]host`, then the remote command. */
export function sshArgs(variant: SshVariant, url: TransportContext["url"], remoteCommand: string): string[] {
  const args: string[] = [];
  if (variant === "ssh") args.push("-o", "SendEnv=GIT_PROTOCOL");
  if (variant === "tortoiseplink") args.push("-batch");
  if (url.port !== null) {
    if (variant === "ssh") args.push("-p", String(url.port));
    else if (variant !== "simple") args.push("-P", String(url.port));
  }
  const host = bareHost(url.host ?? "");
  args.push(url.user ? `${url.user}@${host}` : host, remoteCommand);
  return args;
}

/** Run ssh to the host with `git-upload-pack '<path>'`, asking for v2 through GIT_PROTOCOL. */
export async function openSsh(ctx: TransportContext): Promise<Session> {
  const { url } = ctx;
  const host = url.host ?? "";
  const path = sshPath(url);
  if (host === "" || host.startsWith("-"))
    throw remoteError("remote.protocol", ctx.display, `${ctx.display}: refusing strange ssh host name ${JSON.stringify(host)}`);
  if ((url.user ?? "").startsWith("-"))
    throw remoteError("remote.protocol", ctx.display, `${ctx.display}: refusing strange ssh user name ${JSON.stringify(url.user)}`);
  if (path.startsWith("-"))
    throw remoteError("remote.protocol", ctx.display, `${ctx.display}: refusing strange repository path ${JSON.stringify(path)}`);
  const program = await resolveSshProgram(ctx);
  if (program.variant === "simple" && url.port !== null) {
    throw remoteError(
      "remote.protocol",
      ctx.display,
      `${ctx.display}: ssh variant 'simple' does not support setting a port`,
      "set GIT_SSH_VARIANT or ssh.variant to ssh, plink, putty or tortoiseplink",
    );
  }
  const args = sshArgs(program.variant, url, `git-upload-pack ${shellQuote(path)}`);
  const [file, argv] = program.shell ? ["sh", ["-c", `${program.command} "$@"`, program.command, ...args]] : [program.command, args];
  return spawnSession(
    {
      file,
      args: argv,
      env: { ...gitEnv(ctx.env, "remote"), GIT_PROTOCOL: "version=2" },
      cwd: ctx.cwd,
      program: "ssh",
      classify: (what, stderr, exit) => classifySsh(ctx, what, stderr, exit),
    },
    ctx,
  );
}

const SSH_HINTS: Readonly<Record<Exclude<RemoteErrorCode, "remote.transport">, string>> = {
  "remote.auth": "check that your ssh key is loaded (ssh-add -l) and authorised on the server, and the host key is known",
  "remote.not-found": "check the repository path and your access to it",
  "remote.unreachable": "check the host name, port and network",
  "remote.protocol": "make sure git is installed on the server",
};

function classifySsh(ctx: TransportContext, what: string, stderr: string, exit: ChildExit): Error {
  const detail = stderrTail(stderr) || `ssh exited with ${exit.code ?? exit.signal ?? "?"}`;
  const known = classifyStderr(stderr);
  const code =
    known ?? (/command not found|not found$/m.test(stderr) ? "remote.protocol" : exit.code === 255 ? "remote.unreachable" : null);
  // Nothing recognised: the conversation broke off.
  if (code === null || code === "remote.transport") return transportError(ctx.display, `ssh ${what} (${detail})`);
  const lead =
    code === "remote.auth"
      ? "ssh authentication failed"
      : code === "remote.not-found"
        ? "repository not found"
        : code === "remote.unreachable"
          ? "cannot connect over ssh"
          : `ssh ${what}`;
  return remoteError(code, ctx.display, `${ctx.display}: ${lead} (${detail})`, SSH_HINTS[code]);
}
