/** Shared helpers of the build farm tests: real `cpr worker` processes, and waiting for a condition. */
import { spawn, type ChildProcess } from "node:child_process";
import { CPR_BIN } from "../support/cli.js";

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** A real `cpr worker` process taking jobs from `urls` (in that order of preference). */
export function startWorker(
  urls: readonly string[],
  token: string,
  name: string,
  env: NodeJS.ProcessEnv,
  extra: readonly string[] = [],
): WorkerProcess {
  const args = [CPR_BIN, "worker", ...urls.flatMap((u) => ["--registry", u]), "--token", token, "--name", name, "--poll", "1", ...extra];
  const child = spawn(process.execPath, args, { env: { ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => out };
}

/** Polls `check` every 200 ms until it returns a truthy value; fails naming `what` (and `detail()`) after `seconds`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | null | undefined | false>,
  seconds = 180,
  detail?: () => string,
): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `\n${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
