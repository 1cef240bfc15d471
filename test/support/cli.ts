/**
 * The real `bin/cpr` as a child process, the way a user runs it. Every test that runs the CLI goes through here;
 * a test with an environment of its own (a private HOME, cache or config, Nix settings) passes it in `env`.
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Absolute path of `bin/cpr` (this file runs as dist/test/support/cli.js). */
export const CPR_BIN = fileURLToPath(new URL("../../../bin/cpr", import.meta.url));

/** What a cpr run gave: its exit code (-1 when a signal ended it), stdout and stderr. */
export interface CprRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CprOptions {
  /** Working directory (default: this process's). */
  readonly cwd?: string;
  /** The whole environment of the run (default: this process's); NO_COLOR=1 is always added. */
  readonly env?: NodeJS.ProcessEnv;
  /** Written to cpr's stdin (default: nothing, stdin closed). */
  readonly input?: string;
}

function cprEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  return { ...(env ?? process.env), NO_COLOR: "1" };
}

/** Runs `cpr ARGS…` to completion. */
export function runCpr(args: readonly string[], opts: CprOptions = {}): CprRun {
  const r = spawnSync(process.execPath, [CPR_BIN, ...args], {
    cwd: opts.cwd,
    env: cprEnv(opts.env),
    input: opts.input ?? "",
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** runCpr without blocking this process: for tests whose servers (a registry, an HTTP server) run in this process. */
export function runCprAsync(args: readonly string[], opts: CprOptions = {}): Promise<CprRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CPR_BIN, ...args], { cwd: opts.cwd, env: cprEnv(opts.env), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.on("error", () => {}); // cpr may exit without reading its input
    child.stdin.end(opts.input ?? "");
  });
}

/** The JSON document a run wrote on stdout; an error showing stdout and stderr when it is not JSON. */
export function cprJson<T = Record<string, unknown>>(r: Pick<CprRun, "stdout" | "stderr">): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}
