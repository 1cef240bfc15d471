/**
 * Shared helpers for the benchmark suite: paths, a seeded PRNG, child processes with wall-clock timing, small stats.
 * Nothing here depends on cpr's own sources (src/), so the benchmarks keep working while the CLI changes; the PRNG,
 * the tool lookup and the servers (servers.ts) are the test suite's (test/support/).
 */
import { spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../test/support/random.js";
import { findTool } from "../test/support/tools.js";

/** Absolute path of a tool in PATH or the usual sbin/libexec places; null when absent (the tests' lookup). */
export { findTool };

/** The repository root (this file runs as dist/bench/lib.js). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BENCH_DIR = join(REPO_ROOT, "bench");
export const OUT_DIR = join(BENCH_DIR, "out");
export const CPR_BIN = join(REPO_ROOT, "bin", "cpr");
export const BASELINE_PUBLISH = join(BENCH_DIR, "baseline", "publish.sh");

/**
 * Scratch space for work repositories and temporary files: CPR_BENCH_TMP, else /dev/shm when it is a writable
 * directory, else bench/out/tmp. A tmpfs keeps the figures about git and cpr rather than about the disk: on ext4,
 * creating the tens of thousands of loose-ref directories of a 10,000-atom publish costs seconds, and more after
 * many deletions (ext4's inode allocator), which would swamp what is being compared.
 */
export function scratchRoot(): string {
  const env = process.env.CPR_BENCH_TMP;
  if (env) return ensureDir(env);
  try {
    accessSync("/dev/shm", constants.W_OK);
    return ensureDir(join("/dev/shm", `cpr-bench-${process.getuid?.() ?? 0}`));
  } catch {
    return ensureDir(join(OUT_DIR, "tmp"));
  }
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Environment for every git and cpr process of the suite: no user or system git config (so a developer's settings
 * cannot change the figures), fixed identity and dates for the few commits the harness writes itself.
 */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_AUTHOR_NAME: "Bench",
    GIT_AUTHOR_EMAIL: "bench@example.org",
    GIT_COMMITTER_NAME: "Bench",
    GIT_COMMITTER_EMAIL: "bench@example.org",
    GIT_AUTHOR_DATE: "1700000000 +0000",
    GIT_COMMITTER_DATE: "1700000000 +0000",
    GIT_TERMINAL_PROMPT: "0",
    NO_COLOR: "1",
    LC_ALL: "C",
    ...extra,
  };
  delete env.GIT_DIR;
  delete env.GIT_WORK_TREE;
  delete env.GIT_INDEX_FILE;
  return env;
}

/** The tests' seeded PRNG (test/support/random.ts, mulberry32) with the helpers the generators use. */
export class Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed >>> 0 || 0x9e3779b9);
  }
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean;
  /** Kill the process (SIGKILL) after this many milliseconds; it then counts as failed. */
  timeoutMs?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

/** Run a command to completion, capturing output and timing it (spawn to exit, wall clock). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? benchEnv(), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.stdin.on("error", () => {});
    let timedOut = false;
    const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), child.kill("SIGKILL")), opts.timeoutMs) : null;
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut) err.push(Buffer.from(`\n[bench] killed after ${opts.timeoutMs} ms`));
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const r: RunResult = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms,
      };
      if ((opts.check ?? true) && r.code !== 0) {
        reject(
          new BenchError(
            `${cmd} ${args.join(" ")} exited with ${r.code}${signal ? ` (${signal})` : ""}\n${r.stderr.trim()}\n${r.stdout.trim().slice(0, 2000)}`,
          ),
        );
      } else resolvePromise(r);
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** `git <args>` with the bench environment; returns trimmed stdout. */
export async function git(cwd: string, args: readonly string[], opts: Omit<RunOptions, "cwd"> = {}): Promise<string> {
  const r = await run("git", args, { ...opts, cwd, env: opts.env ?? benchEnv() });
  return r.stdout.trim();
}

/** A correctness failure: the run stops and says so loudly (timings never fail a run). */
export class BenchError extends Error {
  override name = "BenchError";
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Integer from the environment, with a default. */
export function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new BenchError(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/**
 * Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in bench/README.md (NAME is `figures`,
 * `fetch-figures`, `resolve-figures`…), leaving the rest of the file as it is.
 */
export function rewriteReadmeSection(name: string, section: string): void {
  const file = join(BENCH_DIR, "README.md");
  const text = readFileSync(file, "utf8");
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new BenchError(`bench/README.md has no ${start} … ${end} section to rewrite`);
  writeFileSync(file, `${text.slice(0, a + start.length)}\n${section}\n${text.slice(b)}`);
  log(`rewrote the ${name} section of bench/README.md`);
}

/** A figures section for bench/README.md: a "Measured …" line, the table, then one note per figure that has one. */
export function figuresSection(measured: string, rows: readonly string[][], notes: readonly string[]): string {
  return [
    `Measured ${new Date().toISOString().replace(/\.\d+Z$/, "Z")} ${measured}`,
    "",
    "| figure | cpr | baseline | ratio | target | |",
    "|---|---:|---:|---:|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    ...notes,
  ].join("\n");
}
