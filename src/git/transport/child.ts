import { spawnChild, type Child } from "../../process/run.js";
import { remoteError } from "./errors.js";
import { StreamSession, StreamSource } from "./stream.js";
import type { Session, TransportContext } from "./types.js";

/** How to run the process that speaks to upload-pack on its stdin/stdout, and how to read its failures. */
export interface ChildSpec {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Program name for messages, e.g. `git upload-pack` or `ssh`. */
  readonly program: string;
  /** Turn the collected stderr and exit status into an error, for an unexpected end of the conversation. */
  classify(what: string, stderr: string, exit: ChildExit): Error;
}

/** How a child ended: exit code, or the signal that killed it. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Keep at most this much stderr (the tail matters most). */
const STDERR_LIMIT = 64 * 1024;
/** Time a child gets to exit by itself once its input is closed. */
const GRACE_MS = 3000;

/** Spawn the child and wrap it as a Session; every path ends with the child reaped or killed. */
export function spawnSession(spec: ChildSpec, ctx: TransportContext): Session {
  const child = spawnChild(spec.file, spec.args, { env: spec.env, cwd: spec.cwd });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s: string) => {
    stderr = (stderr + s).slice(-STDERR_LIMIT);
  });
  let spawnError: Error | null = null;
  const exited = new Promise<ChildExit>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal }));
    child.on("error", () => resolve({ code: null, signal: null }));
  });
  const timeout = (): Error =>
    remoteError(
      "remote.unreachable",
      ctx.display,
      `${ctx.display}: no reply from ${spec.program} within ${ctx.timeoutMs / 1000}s`,
      "check the connection and that the server is up",
    );
  const source = new StreamSource(child.stdout, ctx.timeoutMs, timeout, (e) =>
    remoteError("remote.unreachable", ctx.display, `${ctx.display}: reading from ${spec.program} failed: ${e.message}`, undefined, e),
  );
  child.on("error", (e: NodeJS.ErrnoException) => {
    spawnError = remoteError(
      "remote.unreachable",
      ctx.display,
      `${ctx.display}: could not run ${spec.program} (${spec.file}): ${e.code === "ENOENT" ? "command not found" : e.message}`,
      `install ${spec.program} or fix PATH`,
      e,
    );
    source.fail(spawnError);
  });
  return new StreamSession({
    source,
    writable: child.stdin,
    explain: async (what) => {
      const exit = await waitOrKill(child, exited, GRACE_MS);
      return spawnError ?? spec.classify(what, stderr, exit);
    },
    dispose: async (force) => {
      await waitOrKill(child, exited, force ? 0 : GRACE_MS);
    },
  });
}

/** Wait up to `graceMs` for the child to end, then SIGTERM, then SIGKILL. Resolves once it has ended. */
async function waitOrKill(child: Child, exited: Promise<ChildExit>, graceMs: number): Promise<ChildExit> {
  const first = await raceTimeout(exited, graceMs);
  if (first) return first;
  child.kill("SIGTERM");
  const second = await raceTimeout(exited, 1000);
  if (second) return second;
  child.kill("SIGKILL");
  child.stdout.destroy();
  child.stderr.destroy();
  child.stdin.destroy();
  return exited;
}

/** The promise's value, or null when `ms` pass first. */
function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    void p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}
