/**
 * The one way cpr starts another program (git, nix, ssh, gpg, ssh-keygen, tar, xz…): nothing else in src/ imports
 * node:child_process (test/layers.test.ts checks it).
 *
 * - `run`: to completion, stdout collected (up to `maxStdout` bytes), stderr kept (its last `stderrLimit`
 *   characters) and optionally passed on as it arrives, stdin from bytes or a stream (none: /dev/null).
 * - `start`: the same child with its stdout as a stream, for output too large to hold (NARs, compressed uploads).
 * - `spawnChild`: a bare child with piped stdio, for long-lived conversations (git cat-file --batch, upload-pack);
 *   `spawnFailure` names its start-up errors as `run` does.
 * - `runSync`: a short synchronous query (once per process, e.g. git's list of repository variables).
 *
 * A program that cannot be started is a CprError: "<program> was not found on PATH" with a hint to install it when
 * it is missing (ENOENT), "could not run <program>: …" otherwise. An exit outside `okCodes` is a CprError naming
 * the command and its status, with the end of its stderr. Each caller names the codes (`errors`), so that a git
 * failure stays `git.failed` and a Nix one `nix.failed`. Whose environment a child gets is the caller's concern
 * (git's rules are gitEnv in src/git/exec.ts); the default is this process's.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import { Readable } from "node:stream";
import { CprError, type ErrorCode } from "../protocol/errors.js";

/** How a child ended: its exit code (null when a signal killed it), the signal, and the end of its stderr. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** What the errors of a child are called. */
export interface ProcessErrors {
  /** The command as messages name it (default the program, e.g. `git fetch` for git). */
  readonly name?: string;
  /** Code of a program that cannot be started (default `process.spawn`). */
  readonly spawn?: ErrorCode;
  /** Code of a program that is not on PATH (default: `spawn`'s). */
  readonly missing?: ErrorCode;
  /** Hint for a program that is not on PATH (default "install <program> and make sure it is on PATH"). */
  readonly hint?: string;
  /** Code of an exit outside okCodes (default `process.failed`). */
  readonly failed?: ErrorCode;
  /** `where` of every error (default the working directory, for failures). */
  readonly where?: string;
  /** The error for an exit outside okCodes, replacing the default one. */
  readonly failure?: (exit: ProcessExit) => Error;
}

export interface ProcessOptions {
  readonly cwd?: string;
  /** The child's whole environment (default this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Its stdin: bytes, or a stream piped in; absent: none (/dev/null). */
  readonly input?: string | Buffer | Readable;
  /** Receives stderr as it arrives (decoded as UTF-8); it is kept for the result and errors too. */
  readonly onStderr?: (text: string) => void;
  /** How much of stderr is kept, in characters: the last ones (default 1 MiB). */
  readonly stderrLimit?: number;
  /** Exit codes that are not failures (default [0]); "any": the caller reads the exit itself. */
  readonly okCodes?: readonly number[] | "any";
  readonly errors?: ProcessErrors;
  /** Aborting it sends the child SIGTERM (its exit is then a failure as usual). */
  readonly signal?: AbortSignal;
}

export interface RunOptions extends ProcessOptions {
  /** At most this many bytes of stdout are collected (default 1 GiB): more kills the child and is an error. */
  readonly maxStdout?: number;
  /** "ignore": stdout is not read (default "collect"). */
  readonly stdout?: "collect" | "ignore";
}

export interface RunResult extends ProcessExit {
  readonly stdout: Buffer;
}

/** A started child: its stdout, and its exit (rejected with the start-up error or the failure, as `run`'s). */
export interface Running {
  readonly stdout: Readable;
  readonly exit: Promise<ProcessExit>;
  kill(signal?: NodeJS.Signals): void;
}

/** The end of stderr a failure message quotes. */
export const STDERR_TAIL = 8000;
const DEFAULT_STDERR_LIMIT = 1024 * 1024;
const DEFAULT_MAX_STDOUT = 1024 * 1024 * 1024;

/** The error for a child that could not be started (`error` event of spawn). */
export function spawnFailure(program: string, e: NodeJS.ErrnoException, errors: ProcessErrors = {}): CprError {
  const where = errors.where === undefined ? {} : { where: errors.where };
  if (e.code === "ENOENT") {
    return new CprError(errors.missing ?? errors.spawn ?? "process.spawn", `${program} was not found on PATH`, {
      ...where,
      hint: errors.hint ?? `install ${program} and make sure it is on PATH`,
      cause: e,
    });
  }
  return new CprError(errors.spawn ?? "process.spawn", `could not run ${program}: ${e.message}`, { ...where, cause: e });
}

/** The last `max` characters of `text`, trimmed. */
export function tail(text: string, max = STDERR_TAIL): string {
  const t = text.trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}

/** The default error for an exit outside okCodes: "<name> failed (exit N): <end of stderr>". */
function exitFailure(program: string, exit: ProcessExit, errors: ProcessErrors, cwd: string | undefined): Error {
  if (errors.failure) return errors.failure(exit);
  const status = exit.signal ? `killed by ${exit.signal}` : `exit ${exit.code}`;
  const where = errors.where ?? cwd;
  return new CprError(
    errors.failed ?? "process.failed",
    `${errors.name ?? program} failed (${status}): ${tail(exit.stderr) || "(no output)"}`,
    where === undefined ? {} : { where },
  );
}

/** A child with stdin, stdout and stderr piped (spawnChild). */
export type Child = ChildProcessWithoutNullStreams;

/** A child with stdin, stdout and stderr piped: the caller speaks to it (long-lived conversations). */
export function spawnChild(program: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Child {
  return spawn(program, [...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
}

/** Start `program`; its stdout is a stream, its exit a promise (see Running). */
export function start(
  program: string,
  args: readonly string[],
  opts: ProcessOptions & { readonly stdout?: "pipe" | "ignore" } = {},
): Running {
  const errors = opts.errors ?? {};
  const child = spawn(program, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: [opts.input === undefined ? "ignore" : "pipe", opts.stdout === "ignore" ? "ignore" : "pipe", "pipe"],
  });
  const limit = opts.stderrLimit ?? DEFAULT_STDERR_LIMIT;
  const decoder = new StringDecoder("utf8");
  let stderr = "";
  const keep = (s: string): void => {
    if (s === "") return;
    opts.onStderr?.(s);
    stderr += s;
    if (stderr.length > 2 * limit) stderr = stderr.slice(-limit);
  };
  child.stderr!.on("data", (b: Buffer) => keep(decoder.write(b)));
  let startError: CprError | null = null;
  const exit = new Promise<ProcessExit>((resolve, reject) => {
    child.on("error", (e: NodeJS.ErrnoException) => {
      startError ??= spawnFailure(program, e, errors);
      // A child that never started emits no "close" when it has no stdio left to close.
      if (child.pid === undefined) reject(startError);
    });
    child.on("close", (code, signal) => {
      if (startError) return reject(startError);
      keep(decoder.end());
      const result: ProcessExit = { code, signal, stderr: stderr.length > limit ? stderr.slice(-limit) : stderr };
      const ok = opts.okCodes === "any" || (code !== null && (opts.okCodes ?? [0]).includes(code));
      if (ok) resolve(result);
      else reject(exitFailure(program, result, errors, opts.cwd));
    });
  });
  exit.catch(() => {}); // the caller may look at it only after reading stdout
  if (child.stdin) {
    child.stdin.on("error", () => {}); // a child that exits without reading its input: its exit says what happened
    const input = opts.input;
    if (typeof input === "string" || Buffer.isBuffer(input)) child.stdin.end(input);
    else if (input) {
      input.on("error", (e) => child.stdin!.destroy(e));
      input.pipe(child.stdin);
    }
  }
  if (opts.signal) {
    const signal = opts.signal;
    const abort = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
    if (signal.aborted) abort();
    else {
      signal.addEventListener("abort", abort, { once: true });
      child.on("close", () => signal.removeEventListener("abort", abort));
    }
  }
  const stdout = child.stdout ?? Readable.from([]);
  return {
    stdout,
    exit,
    kill: (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Run `program` to completion: stdout collected, stderr kept; failures as described at the top. */
export async function run(program: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const ignore = opts.stdout === "ignore";
  const child = start(program, args, { ...opts, stdout: ignore ? "ignore" : "pipe" });
  const max = opts.maxStdout ?? DEFAULT_MAX_STDOUT;
  const chunks: Buffer[] = [];
  let size = 0;
  let overflow = false;
  if (!ignore) {
    child.stdout.on("data", (b: Buffer) => {
      if (overflow) return;
      size += b.length;
      if (size > max) {
        overflow = true;
        chunks.length = 0;
        child.kill("SIGKILL");
      } else chunks.push(b);
    });
  }
  let exit: ProcessExit;
  try {
    exit = await child.exit;
  } catch (e) {
    if (!overflow) throw e;
    exit = { code: null, signal: "SIGKILL", stderr: "" };
  }
  if (overflow) {
    const errors = opts.errors ?? {};
    const where = errors.where ?? opts.cwd;
    throw new CprError(
      errors.failed ?? "process.failed",
      `${errors.name ?? program} printed more than ${max} bytes on stdout; it was stopped`,
      {
        ...(where === undefined ? {} : { where }),
        hint: "this output is larger than cpr expects here; report it if the command is right",
      },
    );
  }
  return { ...exit, stdout: Buffer.concat(chunks) };
}

/** Run a short query synchronously: its stdout, or null when it cannot be started or exits non-zero. */
export function runSync(program: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string | null {
  const r = spawnSync(program, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return r.error || r.status !== 0 ? null : r.stdout;
}

/** Signals a foreground child gets from us: forwarded as they arrive (see runForeground). */
const FORWARDED: readonly NodeJS.Signals[] = ["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"];

/**
 * Run `program` in the foreground (`cpr run`, `cpr shell`): stdin, stdout and stderr are this process's, and the
 * signals sent to cpr are passed on to it while it runs: SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 always; SIGINT and
 * SIGQUIT only when stdin is not a terminal (from a terminal, Ctrl-C already reaches the whole foreground process
 * group, the child included). Resolves with how it ended; a program that cannot be started is a CprError.
 */
export function runForeground(
  program: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; errors?: ProcessErrors } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: "inherit" });
    const fromTerminal = process.stdin.isTTY === true;
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const s of FORWARDED) {
      const h = (): void => {
        if ((s === "SIGINT" || s === "SIGQUIT") && fromTerminal) return;
        if (child.exitCode === null && child.signalCode === null) child.kill(s);
      };
      handlers.set(s, h);
      process.on(s, h);
    }
    const done = (): void => {
      for (const [s, h] of handlers) process.off(s, h);
    };
    child.on("error", (e: NodeJS.ErrnoException) => {
      done();
      reject(spawnFailure(program, e, opts.errors ?? {}));
    });
    child.on("exit", (code, signal) => {
      done();
      resolve({ code, signal });
    });
  });
}
