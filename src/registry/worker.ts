/**
 * `cpr worker`: the build farm's worker (docs/farm.md). It claims jobs from a registry (any of several servers
 * sharing one database), evaluates and builds them with exactly the code `cpr build` runs (evaluateAtom,
 * buildAtom), uploads the output closure (pushClosure, as `cpr build --push`) and reports the outcome, which the
 * registry records together with the build record in one transaction.
 *
 * While a job runs, a heartbeat extends its lease and Nix's output is sent as the job's log. A registry that cannot
 * be reached (or answers 5xx/429) is a transient failure: the worker moves to the next URL and retries with
 * exponential backoff. A failed evaluation or build is reported as the job's failure, with its log. A lease lost
 * (expired, or the job cancelled) stops the job's Nix processes and abandons it. Stopping (`stop()`, SIGTERM in the
 * CLI) releases running jobs back to the queue.
 */
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { CprError } from "../protocol/errors.js";
import type { ClaimedJob } from "../protocol/farm.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import { parseAtomUri } from "../protocol/uri.js";
import type { Cache } from "../git/cache.js";
import { buildAtom, evaluateAtom, type BuildResult } from "../build/build.js";
import { realise } from "../nix/store.js";
import type { RegistryClient } from "./client.js";
import { pushClosure } from "./push.js";

export interface WorkerOptions {
  /** Registries to take jobs from, in order of preference: servers sharing one database. */
  readonly registries: readonly RegistryClient[];
  /** Shown in job status (default `<host>-<pid>`). */
  readonly name?: string;
  /** Systems this worker builds for. */
  readonly systems: readonly string[];
  /** Jobs run at once (default 1). */
  readonly jobs?: number;
  /** Nix's `builders` (remote builders), passed through NIX_CONFIG. */
  readonly builders?: string;
  readonly cache: Cache;
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Seconds between claims when the queue is empty (default 2). */
  readonly pollSeconds?: number;
  /** Stop once the queue has nothing for this worker (benchmarks, one-shot runs). */
  readonly exitWhenIdle?: boolean;
  /** What the worker does, for humans. */
  readonly reporter?: Reporter;
  /** Nix's store (`--store`), for tests. */
  readonly store?: string;
}

export interface WorkerStats {
  succeeded: number;
  failed: number;
  released: number;
  lost: number;
}

/** Longest backoff between retries of an unreachable registry. */
const MAX_BACKOFF_MS = 30_000;
/** A job's log is sent at least this often while it runs, and whenever this much is buffered. */
const LOG_FLUSH_MS = 1000;
const LOG_FLUSH_BYTES = 64 * 1024;

/** Is this failure worth retrying against (another) registry? Network errors, 5xx and 429. */
export function isTransient(e: unknown): boolean {
  if (!(e instanceof CprError)) return false;
  return (
    e.code === "registry.unreachable" ||
    e.code === "registry.http-429" ||
    e.code === "registry.http-500" ||
    e.code === "registry.http-502" ||
    e.code === "registry.http-503" ||
    e.code === "registry.http-504" ||
    e.code === "registry.malformed"
  );
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export class Worker {
  readonly name: string;
  readonly stats: WorkerStats = { succeeded: 0, failed: 0, released: 0, lost: 0 };
  private readonly opts: WorkerOptions;
  private readonly reporter: Reporter;
  private readonly stopping = new AbortController();
  /** Index of the registry in use. */
  private current = 0;
  private readonly running = new Set<Promise<void>>();

  constructor(opts: WorkerOptions) {
    if (opts.registries.length === 0) throw new CprError("usage", "a worker needs at least one registry");
    this.opts = opts;
    this.name = opts.name ?? `${hostname()}-${process.pid}`;
    this.reporter = opts.reporter ?? silentReporter;
  }

  /** Stops claiming; running jobs are stopped and released. run() then returns. */
  stop(): void {
    this.stopping.abort();
  }

  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /**
   * Runs `fn` against the current registry; a transient failure moves to the next registry and retries after a
   * backoff (0.5 s doubling to 30 s), until it succeeds, fails otherwise, or `signal` aborts (then the last error).
   */
  async withRegistry<T>(what: string, fn: (c: RegistryClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const regs = this.opts.registries;
    let delay = 500;
    for (let tries = 0; ; tries++) {
      const client = regs[this.current % regs.length]!;
      try {
        return await fn(client);
      } catch (e) {
        if (!isTransient(e)) throw e;
        if (signal?.aborted) throw e;
        this.current = (this.current + 1) % regs.length;
        const next = regs[this.current]!;
        this.reporter.info(
          `${what}: ${message(e)}; ${regs.length > 1 ? `trying ${next.url}` : "retrying"} in ${(delay / 1000).toFixed(1)} s`,
        );
        // Every registry failed once in a row: back off before going round again.
        if (tries % regs.length === regs.length - 1 || regs.length === 1) {
          await sleep(delay, signal ?? this.stopping.signal);
          delay = Math.min(delay * 2, MAX_BACKOFF_MS);
        }
        if (signal?.aborted) throw e;
      }
    }
  }

  /** Claims and runs jobs until stopped (or, with exitWhenIdle, until nothing is left). */
  async run(): Promise<WorkerStats> {
    const slots = Math.max(1, this.opts.jobs ?? 1);
    const poll = (this.opts.pollSeconds ?? 2) * 1000;
    this.reporter.info(
      `worker ${this.name}: ${slots} job(s) at once for ${this.opts.systems.join(", ")} from ${this.opts.registries.map((r) => r.url).join(", ")}`,
    );
    while (!this.stopped) {
      if (this.running.size >= slots) {
        await Promise.race(this.running);
        continue;
      }
      let claimed: ClaimedJob | null;
      try {
        claimed = (await this.withRegistry("claiming a job", (c) => c.claim(this.name, this.opts.systems), this.stopping.signal)).job;
      } catch (e) {
        if (this.stopped) break;
        throw e;
      }
      if (!claimed) {
        if (this.opts.exitWhenIdle && this.running.size === 0) break;
        if (this.running.size > 0) await Promise.race([...this.running, sleep(poll, this.stopping.signal)]);
        else await sleep(poll, this.stopping.signal);
        continue;
      }
      const p: Promise<void> = this.runJob(claimed).finally(() => this.running.delete(p));
      this.running.add(p);
    }
    await Promise.allSettled(this.running);
    return this.stats;
  }

  /** Runs one claimed job to its outcome. Never throws. */
  private async runJob(job: ClaimedJob): Promise<void> {
    const what = `job ${job.id} (${job.kind} ${job.atom.label} ${job.version} for ${job.system}, attempt ${job.attempt})`;
    this.reporter.info(`${what}: started`);
    const lost = new AbortController();
    const abort = AbortSignal.any([lost.signal, this.stopping.signal]);
    let log = "";
    let flushing: Promise<void> = Promise.resolve();
    const flush = (): Promise<void> => {
      flushing = flushing.then(async () => {
        if (!log || lost.signal.aborted) return;
        const text = log;
        log = "";
        try {
          await this.withRegistry(`${what}: sending its log`, (c) => c.appendLog(job.id, job.lease, text), abort);
        } catch (e) {
          if (e instanceof CprError && e.code === "farm.lease-lost") lost.abort();
        }
      });
      return flushing;
    };
    const append = (text: string): void => {
      log += text;
      if (log.length >= LOG_FLUSH_BYTES) void flush();
    };
    const leaseMs = Math.max(1000, job.leaseExpiresAt - Date.now());
    // Set once the outcome is being reported: a heartbeat answered after it finds the lease gone, as it should.
    let reporting = false;
    const beat = setInterval(
      () => {
        void this.withRegistry(`${what}: heartbeat`, (c) => c.heartbeat(job.id, job.lease), abort).catch((e: unknown) => {
          if (e instanceof CprError && e.code === "farm.lease-lost" && !reporting) {
            this.reporter.info(`${what}: lease lost (expired or cancelled); abandoning it`);
            lost.abort();
          }
        });
      },
      Math.max(200, Math.floor(leaseMs / 3)),
    );
    const flusher = setInterval(() => void flush(), LOG_FLUSH_MS);
    try {
      const result = await this.work(job, append, abort);
      clearInterval(flusher);
      await flush();
      if (lost.signal.aborted) throw new CprError("farm.lease-lost", `${what}: the lease was lost`);
      reporting = true;
      clearInterval(beat);
      const done = await this.withRegistry(`${what}: reporting success`, (c) =>
        c.completeJob(job.id, job.lease, result.drv, result.outputs, result.mainProgram),
      );
      this.stats.succeeded++;
      this.reporter.info(
        `${what}: done${done.buildId !== null ? `, build ${done.buildId} recorded` : ""}${done.buildJob !== null ? `, build job ${done.buildJob} queued` : ""}`,
      );
    } catch (e) {
      clearInterval(flusher);
      const leaseLost = lost.signal.aborted || (e instanceof CprError && e.code === "farm.lease-lost");
      reporting = true;
      clearInterval(beat);
      if (leaseLost) {
        this.stats.lost++;
        this.reporter.info(`${what}: abandoned (lease lost)`);
      } else if (this.stopped) {
        await this.withRegistry(
          `${what}: releasing it`,
          (c) => c.releaseJob(job.id, job.lease, "the worker stopped"),
          AbortSignal.timeout(10_000),
        ).then(
          () => {
            this.stats.released++;
            this.reporter.info(`${what}: released (the worker is stopping)`);
          },
          (err: unknown) => this.reporter.info(`${what}: could not release it (${message(err)}); its lease will expire`),
        );
      } else if (isTransient(e)) {
        // Pushing or fetching failed for network reasons on every registry: give the job back for a later try.
        await this.withRegistry(
          `${what}: releasing it`,
          (c) => c.releaseJob(job.id, job.lease, message(e)),
          AbortSignal.timeout(60_000),
        ).catch(() => undefined);
        this.stats.released++;
        this.reporter.info(`${what}: released after a transient failure: ${message(e)}`);
      } else {
        append(`\ncpr worker: ${message(e)}\n`);
        await flush();
        await this.withRegistry(`${what}: reporting failure`, (c) => c.failJob(job.id, job.lease, message(e))).then(
          () => {
            this.stats.failed++;
            this.reporter.info(`${what}: failed: ${message(e).split("\n")[0]}`);
          },
          (err: unknown) => this.reporter.info(`${what}: could not report its failure (${message(err)}); its lease will expire`),
        );
      }
    } finally {
      clearInterval(beat);
      clearInterval(flusher);
    }
  }

  /** Evaluates (eval job) or builds and uploads (build job), as `cpr build` does. */
  private async work(job: ClaimedJob, append: (text: string) => void, signal: AbortSignal): Promise<BuildResult> {
    const env = { ...(this.opts.env ?? process.env) };
    if (this.opts.builders !== undefined) env.NIX_CONFIG = `${env.NIX_CONFIG ? `${env.NIX_CONFIG}\n` : ""}builders = ${this.opts.builders}`;
    // Nix's advice about --add-root is noise here, as in `cpr build` (the outputs are uploaded, not kept).
    const onStderr = (text: string): void => {
      const kept = text.replace(/^warning: you did not specify '--add-root'.*\n?/gm, "");
      if (kept) append(kept);
    };
    const nix = { env, onStderr, signal, ...(this.opts.store ? { store: this.opts.store } : {}) };
    const reporter: Reporter = {
      info: (m) => append(`${m}\n`),
      warn: (_c, m) => append(`warning: ${m}\n`),
      progress: silentReporter.progress,
    };
    const ctx = { cache: this.opts.cache, cwd: this.opts.cwd, env, reporter, system: job.system, nix };
    // A build job whose evaluation is known (the registry keeps the evaluation's meta.mainProgram itself).
    const known = (drv: string): BuildResult => ({
      label: job.atom.label,
      version: job.version,
      id: job.atom.id,
      set: job.atom.set,
      rev: job.rev,
      system: job.system,
      drv,
      outputs: job.outputs!,
      mainProgram: null,
      expression: "",
    });
    if (job.kind === "build" && job.drv && job.outputs) {
      // Another build (of another version or atom) may have uploaded these outputs since the evaluation: then
      // there is nothing to build, and the registry records the build as it stands.
      const outputs = job.outputs;
      const missing = await this.withRegistry(`job ${job.id}: checking the cache`, (c) => c.missing(Object.values(outputs)), signal);
      if (missing.length === 0) {
        append(`cpr worker: the outputs of ${job.drv} are in the registry's cache already: nothing to build\n`);
        return known(job.drv);
      }
    }
    if (job.kind === "build" && job.drv && job.outputs && !this.opts.store && existsSync(job.drv)) {
      // The derivation is in this machine's store (this worker evaluated it, or built it before): build it as
      // `cpr build` does after its evaluation, without evaluating again.
      const outputs = job.outputs;
      append(`cpr worker: building ${job.drv} (evaluated already)\n`);
      await realise([job.drv], { ...nix, system: job.system });
      append(`cpr worker: built ${Object.values(outputs).join(" ")}\n`);
      const pushed = await this.withRegistry(
        `job ${job.id}: uploading its closure`,
        (c) => pushClosure(c, outputs, { nix, reporter }),
        signal,
      );
      append(`cpr worker: uploaded ${pushed.uploaded.length} path(s), ${pushed.present} already in the cache\n`);
      return known(job.drv);
    }
    if (job.mirrors.length === 0) throw new CprError("farm.invalid", `job ${job.id}: the registry knows no mirror of set ${job.atom.set}`);
    let last: unknown = null;
    for (const mirror of job.mirrors) {
      if (signal.aborted) break;
      const uri = parseAtomUri(`${mirror}::${job.atom.label}@=${job.version}`);
      try {
        append(
          `cpr worker: ${job.kind === "eval" ? "evaluating" : "building"} ${job.atom.label} ${job.version} for ${job.system} from ${mirror}\n`,
        );
        const result = job.kind === "eval" ? await evaluateAtom(ctx, uri) : await buildAtom(ctx, uri);
        if (result.rev !== job.rev) {
          throw new CprError(
            "farm.rev-mismatch",
            `${job.atom.label} ${job.version} is ${result.rev} at ${mirror}, but the registry indexed ${job.rev}`,
            {
              where: mirror,
            },
          );
        }
        if (job.kind === "build") {
          if (result.drv !== job.drv) {
            throw new CprError(
              "farm.eval-mismatch",
              `${job.atom.label} ${job.version} evaluated to ${result.drv} here, but to ${job.drv} in its evaluation job`,
              {
                hint: "the evaluation is not reproducible across workers (impure Nix code, or workers with different Nix versions or settings)",
              },
            );
          }
          append(`cpr worker: built ${Object.values(result.outputs).join(" ")}\n`);
          const pushed = await this.withRegistry(
            `job ${job.id}: uploading its closure`,
            (c) => pushClosure(c, result.outputs, { nix, reporter }),
            signal,
          );
          append(`cpr worker: uploaded ${pushed.uploaded.length} path(s), ${pushed.present} already in the cache\n`);
        } else append(`cpr worker: ${result.drv}\n`);
        return result;
      } catch (e) {
        // Only fetching may be retried on the next mirror; Nix failures are the job's.
        if (e instanceof CprError && (e.code.startsWith("fetch.") || e.code === "build.fetch") && !signal.aborted) {
          append(`cpr worker: ${message(e)}\n`);
          last = e;
          continue;
        }
        throw e;
      }
    }
    throw last ?? new CprError("farm.lease-lost", `job ${job.id} was stopped`);
  }
}
