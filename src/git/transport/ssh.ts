import { basename } from "node:path";
import { gitEnv, runGit } from "../exec.js";
import { classifyStderr, remoteError, stderrTail, type RemoteErrorCode } from "./errors.js";
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

/** Guess the variant from the program's name, as git does for `ssh.variant=auto`. */
export function guessVariant(program: string): SshVariant {
  const name = basename(program).toLowerCase().replace(/\.exe$/, "");
  if (name === "plink") return "plink";
  if (name === "tortoiseplink") return "tortoiseplink";
  if (name === "putty") return "putty";
  return "ssh";
}

/** `core.sshCommand` and `ssh.variant` from git config (only read when the environment names no ssh). */
async function sshConfig(ctx: TransportContext): Promise<{ command: string | null; variant: string | null }> {
  try {
    const r = await runGit(["config", "-z", "--get-regexp", "^(core\\.sshcommand|ssh\\.variant)$"], { cwd: ctx.cwd, env: ctx.env, okCodes: [0, 1] });
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

/** Which ssh to run: GIT_SSH_COMMAND, else GIT_SSH, else core.sshCommand, else `ssh`; variant from GIT_SSH_VARIANT/ssh.variant or the name. */
export async function resolveSshProgram(ctx: TransportContext): Promise<SshProgram> {
  const env = ctx.env;
  const fromEnv = env.GIT_SSH_COMMAND ? { command: env.GIT_SSH_COMMAND, shell: true } : env.GIT_SSH ? { command: env.GIT_SSH, shell: false } : null;
  const config = fromEnv && env.GIT_SSH_VARIANT ? { command: null, variant: null } : await sshConfig(ctx);
  const chosen = fromEnv ?? (config.command ? { command: config.command, shell: true } : { command: "ssh", shell: false });
  const explicit = env.GIT_SSH_VARIANT ?? config.variant;
  const firstWord = chosen.shell ? (chosen.command.trim().split(/\s+/)[0] ?? "") : chosen.command;
  const variant = explicit && VARIANTS.has(explicit) ? (explicit as SshVariant) : guessVariant(firstWord);
  return { ...chosen, variant };
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
  if (host === "" || host.startsWith("-")) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: refusing strange ssh host name ${JSON.stringify(host)}`);
  if ((url.user ?? "").startsWith("-")) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: refusing strange ssh user name ${JSON.stringify(url.user)}`);
  if (path.startsWith("-")) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: refusing strange repository path ${JSON.stringify(path)}`);
  const program = await resolveSshProgram(ctx);
  if (program.variant === "simple" && url.port !== null) {
    throw remoteError("remote.protocol", ctx.display, `${ctx.display}: ssh variant 'simple' does not support setting a port`, "set GIT_SSH_VARIANT or ssh.variant to ssh, plink, putty or tortoiseplink");
  }
  const args = sshArgs(program.variant, url, `git-upload-pack ${shellQuote(path)}`);
  const [file, argv] = program.shell ? ["sh", ["-c", `${program.command} "$@"`, program.command, ...args]] : [program.command, args];
  return spawnSession(
    {
      file,
      args: argv,
      env: { ...gitEnv(ctx.env), GIT_PROTOCOL: "version=2" },
      cwd: ctx.cwd,
      program: "ssh",
      classify: (what, stderr, exit) => classifySsh(ctx, what, stderr, exit),
    },
    ctx,
  );
}

const SSH_HINTS: Readonly<Record<RemoteErrorCode, string>> = {
  "remote.auth": "check that your ssh key is loaded (ssh-add -l) and authorised on the server, and the host key is known",
  "remote.not-found": "check the repository path and your access to it",
  "remote.unreachable": "check the host name, port and network",
  "remote.protocol": "make sure git is installed on the server",
};

function classifySsh(ctx: TransportContext, what: string, stderr: string, exit: ChildExit): Error {
  const detail = stderrTail(stderr) || `ssh exited with ${exit.code ?? exit.signal ?? "?"}`;
  const known = classifyStderr(stderr);
  const code: RemoteErrorCode = known ?? (/command not found|not found$/m.test(stderr) ? "remote.protocol" : exit.code === 255 ? "remote.unreachable" : "remote.protocol");
  const lead =
    code === "remote.auth" ? "ssh authentication failed" : code === "remote.not-found" ? "repository not found" : code === "remote.unreachable" ? "cannot connect over ssh" : `ssh ${what}`;
  return remoteError(code, ctx.display, `${ctx.display}: ${lead} (${detail})`, SSH_HINTS[code]);
}
