/**
 * The build farm's tables (docs/farm.md): jobs, their attempts, their logs, and the workers seen. One interface,
 * implemented by both database drivers (jobs-sqlite.ts, jobs-postgres.ts) and reached as `RegistryDb.jobs`.
 *
 * A job is one (kind, atom, version, system): enqueueing is idempotent, and a job already recorded as built (a row
 * in `builds` for the atom, version and system) is not enqueued. Claiming is one statement (PostgreSQL: FOR UPDATE
 * SKIP LOCKED; SQLite: UPDATE … RETURNING inside the write transaction), so any number of servers share the queue.
 * A claim makes a lease (a random secret and an expiry); every later step quotes it, and a job whose lease expired
 * goes back to the queue (requeueExpired) with its open attempt marked `expired`. The outcome of a job and the build
 * record it makes are written in one transaction: nothing is half-recorded.
 */
import type { JobKind, JobState } from "../protocol/farm.js";

export interface JobRow {
  readonly jobId: number;
  readonly kind: JobKind;
  readonly state: JobState;
  /** AtomId, set root and label. */
  readonly atomId: string;
  readonly root: string;
  readonly label: string;
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  readonly priority: number;
  readonly drv: string | null;
  readonly outputs: Readonly<Record<string, string>> | null;
  readonly parent: number | null;
  /** Claims so far (the current attempt's number while running). */
  readonly attempts: number;
  readonly worker: string | null;
  readonly lease: string | null;
  readonly leaseExpires: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly error: string | null;
  readonly buildId: number | null;
  /** `meta.mainProgram` the evaluation reported (a build job), or null. */
  readonly mainProgram: string | null;
}

/** A job to enqueue. */
export interface NewJob {
  readonly kind: JobKind;
  readonly atomId: string;
  readonly root: string;
  readonly label: string;
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  readonly priority: number;
  readonly drv?: string | null;
  readonly outputs?: Readonly<Record<string, string>> | null;
  readonly parent?: number | null;
  /** `meta.mainProgram` of the evaluated value (a build job after an evaluation). */
  readonly mainProgram?: string | null;
}

/** How one claim of a job ended (or `null` while it runs). */
export type AttemptOutcome = "succeeded" | "failed" | "expired" | "released" | "cancelled";

export interface AttemptRow {
  readonly jobId: number;
  readonly attempt: number;
  readonly worker: string;
  readonly claimedAt: number;
  readonly finishedAt: number | null;
  readonly outcome: AttemptOutcome | null;
  readonly error: string | null;
}

export interface ClaimQuery {
  readonly worker: string;
  readonly systems: readonly string[];
  /** Set roots the worker's token may build. */
  readonly roots: readonly string[];
  /** The new lease's secret. */
  readonly lease: string;
  readonly leaseExpires: number;
  readonly now: number;
}

export interface JobFilter {
  readonly state?: JobState;
  readonly atomId?: string;
  readonly system?: string;
  readonly version?: string;
  readonly kind?: JobKind;
  /** Newest first; at most this many (default 100). */
  readonly limit?: number;
}

/** A build record to insert (db.ts BuildRow without its id; repeated here so that db.ts and this file do not import each other). */
export interface JobBuildRecord {
  readonly id: string;
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  readonly configHash: string;
  readonly config: string;
  readonly drv: string;
  readonly outputs: Readonly<Record<string, string>>;
  readonly createdAt: number;
  /** `meta.mainProgram` the evaluation reported (farm.ts CompleteRequest). */
  readonly mainProgram?: string | null;
}

/** What completing a job records, in one transaction with the job's success. */
export interface JobOutcome {
  readonly drv: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** The build record to insert (a build job; an evaluation whose outputs are all in the cache). */
  readonly build?: JobBuildRecord;
  /** The build job that follows an evaluation. */
  readonly followUp?: NewJob;
}

export interface JobStore {
  /** Inserts the jobs not present yet (same kind, atom, version, system) and not already built; returns how many. */
  enqueue(jobs: readonly NewJob[], now: number): Promise<number>;
  /** Returns every running job whose lease expired before `now` to the queue; returns how many. */
  requeueExpired(now: number): Promise<number>;
  /** Claims the first queued job (priority, then age) the query allows, in one statement; null when there is none. */
  claim(q: ClaimQuery): Promise<JobRow | null>;
  /** Extends the lease; false when the lease is not the job's current one (expired and re-claimed, cancelled…). */
  heartbeat(jobId: number, lease: string, leaseExpires: number, now: number): Promise<boolean>;
  /** Records the job's success (and its build record / follow-up job); null when the lease is not current. */
  complete(
    jobId: number,
    lease: string,
    outcome: JobOutcome,
    now: number,
  ): Promise<{ buildId: number | null; buildJob: number | null } | null>;
  /** Records the job's failure; false when the lease is not current. */
  fail(jobId: number, lease: string, error: string, now: number): Promise<boolean>;
  /** Gives the job back to the queue (the worker stops); false when the lease is not current. */
  release(jobId: number, lease: string, reason: string, now: number): Promise<boolean>;
  /** failed or cancelled → queued; returns the job, or null when it is in another state (or unknown). */
  retry(jobId: number, now: number): Promise<JobRow | null>;
  /** queued or running → cancelled; returns the job, or null when it is in another state (or unknown). */
  cancel(jobId: number, now: number): Promise<JobRow | null>;
  get(jobId: number): Promise<JobRow | null>;
  list(filter: JobFilter): Promise<JobRow[]>;
  /** Queued jobs for the same system that a claim would take before this one. */
  position(job: JobRow): Promise<number>;
  attempts(jobId: number): Promise<AttemptRow[]>;
  /** Appends a compressed (gzip member) chunk to the current attempt's log; false when the lease is not current. */
  appendLog(jobId: number, lease: string, chunk: Buffer, now: number): Promise<boolean>;
  /** The log chunks of an attempt after `afterSeq` (0: all), in order. */
  log(jobId: number, attempt: number, afterSeq: number): Promise<{ seq: number; chunk: Buffer }[]>;
  /** Jobs by state. */
  countByState(): Promise<Record<JobState, number>>;
  /** Marks a worker seen. */
  touchWorker(name: string, now: number): Promise<void>;
  /** Workers seen at or after `since`. */
  liveWorkers(since: number): Promise<number>;
}

export function emptyCounts(): Record<JobState, number> {
  return { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
}
