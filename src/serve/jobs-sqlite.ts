/**
 * The build farm's tables on SQLite (jobs-db.ts). Every write runs in a write transaction (BEGIN IMMEDIATE), so
 * several processes sharing the file serialise on SQLite's lock; the claim itself is one UPDATE … RETURNING, walking
 * the partial index of queued jobs in claim order (INDEXED BY: the planner would otherwise take jobs_state and sort).
 */
import type Database from "better-sqlite3";
import type { JobState } from "../protocol/farm.js";
import {
  emptyCounts,
  type AttemptRow,
  type ClaimQuery,
  type JobFilter,
  type JobOutcome,
  type JobRow,
  type JobStore,
  type NewJob,
} from "./jobs-db.js";

interface JobRec {
  job_id: number;
  kind: JobRow["kind"];
  state: JobState;
  atom_id: string;
  root: string;
  label: string;
  version: string;
  rev: string;
  system: string;
  priority: number;
  drv: string | null;
  outputs: string | null;
  parent: number | null;
  attempts: number;
  worker: string | null;
  lease_id: string | null;
  lease_expires: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  build_id: number | null;
  main_program: string | null;
}

const jobRow = (r: JobRec): JobRow => ({
  jobId: r.job_id,
  kind: r.kind,
  state: r.state,
  atomId: r.atom_id,
  root: r.root,
  label: r.label,
  version: r.version,
  rev: r.rev,
  system: r.system,
  priority: r.priority,
  drv: r.drv,
  outputs: r.outputs === null ? null : (JSON.parse(r.outputs) as Record<string, string>),
  parent: r.parent,
  attempts: r.attempts,
  worker: r.worker,
  lease: r.lease_id,
  leaseExpires: r.lease_expires,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  error: r.error,
  buildId: r.build_id,
  mainProgram: r.main_program ?? null,
});

const INSERT_JOB = `INSERT INTO jobs (kind, state, atom_id, root, label, version, rev, system, priority, drv, outputs, parent, attempts, created_at)
  SELECT ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?
  WHERE NOT EXISTS (SELECT 1 FROM builds WHERE atom_id = ? AND version = ? AND system = ?)
  ON CONFLICT (kind, atom_id, version, system) DO NOTHING`;

export class SqliteJobs implements JobStore {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private st(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  /** Forgets prepared statements (after migrations). */
  reset(): void {
    this.cache.clear();
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private insertArgs(j: NewJob, now: number): unknown[] {
    return [
      j.kind,
      j.atomId,
      j.root,
      j.label,
      j.version,
      j.rev,
      j.system,
      j.priority,
      j.drv ?? null,
      j.outputs ? JSON.stringify(j.outputs) : null,
      j.parent ?? null,
      now,
      j.atomId,
      j.version,
      j.system,
    ];
  }

  async enqueue(jobs: readonly NewJob[], now: number): Promise<number> {
    if (jobs.length === 0) return 0;
    const insert = this.st(INSERT_JOB);
    return this.tx(() => {
      let n = 0;
      for (const j of jobs) n += insert.run(...this.insertArgs(j, now)).changes;
      return n;
    });
  }

  private requeueSync(now: number): number {
    this.st(
      `UPDATE job_attempts SET outcome = 'expired', finished_at = ?
       WHERE outcome IS NULL AND (job_id, attempt) IN (SELECT job_id, attempts FROM jobs WHERE state = 'running' AND lease_expires < ?)`,
    ).run(now, now);
    return this.st(
      "UPDATE jobs SET state = 'queued', worker = NULL, lease_id = NULL, lease_expires = NULL WHERE state = 'running' AND lease_expires < ?",
    ).run(now).changes;
  }

  async requeueExpired(now: number): Promise<number> {
    return this.tx(() => this.requeueSync(now));
  }

  async claim(q: ClaimQuery): Promise<JobRow | null> {
    const claim = this.st(
      `UPDATE jobs SET state = 'running', worker = ?, lease_id = ?, lease_expires = ?, attempts = attempts + 1, started_at = ?,
         error = NULL
       WHERE job_id = (SELECT job_id FROM jobs INDEXED BY jobs_queue WHERE state = 'queued'
           AND system IN (SELECT value FROM json_each(?)) AND root IN (SELECT value FROM json_each(?))
           ORDER BY priority DESC, job_id LIMIT 1)
       RETURNING *`,
    );
    const attempt = this.st("INSERT INTO job_attempts (job_id, attempt, worker, claimed_at) VALUES (?, ?, ?, ?)");
    return this.tx(() => {
      const r = claim.get(q.worker, q.lease, q.leaseExpires, q.now, JSON.stringify(q.systems), JSON.stringify(q.roots)) as
        | JobRec
        | undefined;
      if (!r) return null;
      attempt.run(r.job_id, r.attempts, q.worker, q.now);
      return jobRow(r);
    });
  }

  async heartbeat(jobId: number, lease: string, leaseExpires: number, _now: number): Promise<boolean> {
    return (
      this.st("UPDATE jobs SET lease_expires = ? WHERE job_id = ? AND lease_id = ? AND state = 'running'").run(leaseExpires, jobId, lease)
        .changes === 1
    );
  }

  /** The running job holding `lease`, inside a transaction. */
  private leased(jobId: number, lease: string): JobRec | undefined {
    return this.st("SELECT * FROM jobs WHERE job_id = ? AND lease_id = ? AND state = 'running'").get(jobId, lease) as JobRec | undefined;
  }

  private finish(job: JobRec, state: JobState, outcome: string, error: string | null, now: number): void {
    this.st(
      `UPDATE jobs SET state = ?, lease_id = NULL, lease_expires = NULL, finished_at = ?, error = ?${state === "queued" ? ", worker = NULL" : ""}
       WHERE job_id = ?`,
    ).run(state, state === "queued" ? null : now, error, job.job_id);
    this.st("UPDATE job_attempts SET outcome = ?, finished_at = ?, error = ? WHERE job_id = ? AND attempt = ? AND outcome IS NULL").run(
      outcome,
      now,
      error,
      job.job_id,
      job.attempts,
    );
  }

  async complete(
    jobId: number,
    lease: string,
    o: JobOutcome,
    now: number,
  ): Promise<{ buildId: number | null; buildJob: number | null } | null> {
    return this.tx(() => {
      const job = this.leased(jobId, lease);
      if (!job) return null;
      let buildId: number | null = null;
      let buildJob: number | null = null;
      if (o.build) {
        const b = o.build;
        buildId = Number(
          this.st(
            `INSERT INTO builds (atom_id, version, rev, system, config_hash, config, drv, outputs, created_at, main_program)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            b.id,
            b.version,
            b.rev,
            b.system,
            b.configHash,
            b.config,
            b.drv,
            JSON.stringify(b.outputs),
            b.createdAt,
            b.mainProgram ?? null,
          ).lastInsertRowid,
        );
        // The reverse index of build outputs (path → build), kept with every build record (grafts).
        const out = this.st("INSERT OR IGNORE INTO build_outputs (path, build_id) VALUES (?, ?)");
        for (const p of new Set(Object.values(b.outputs))) out.run(p, buildId);
      }
      if (o.followUp) {
        const f = o.followUp;
        const row = this.st(
          `INSERT INTO jobs (kind, state, atom_id, root, label, version, rev, system, priority, drv, outputs, parent, attempts, created_at,
             main_program)
           VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
           ON CONFLICT (kind, atom_id, version, system) DO UPDATE SET state = 'queued', rev = excluded.rev, drv = excluded.drv,
             outputs = excluded.outputs, parent = excluded.parent, error = NULL, finished_at = NULL, worker = NULL,
             main_program = excluded.main_program
             WHERE jobs.state IN ('failed', 'cancelled', 'succeeded')
           RETURNING job_id`,
        ).get(
          f.kind,
          f.atomId,
          f.root,
          f.label,
          f.version,
          f.rev,
          f.system,
          f.priority,
          f.drv ?? null,
          f.outputs ? JSON.stringify(f.outputs) : null,
          f.parent ?? null,
          now,
          f.mainProgram ?? null,
        ) as { job_id: number } | undefined;
        buildJob =
          row?.job_id ??
          (
            this.st("SELECT job_id FROM jobs WHERE kind = ? AND atom_id = ? AND version = ? AND system = ?").get(
              f.kind,
              f.atomId,
              f.version,
              f.system,
            ) as { job_id: number } | undefined
          )?.job_id ??
          null;
      }
      this.finish(job, "succeeded", "succeeded", null, now);
      this.st("UPDATE jobs SET drv = ?, outputs = ?, build_id = ? WHERE job_id = ?").run(o.drv, JSON.stringify(o.outputs), buildId, jobId);
      return { buildId, buildJob };
    });
  }

  async fail(jobId: number, lease: string, error: string, now: number): Promise<boolean> {
    return this.tx(() => {
      const job = this.leased(jobId, lease);
      if (!job) return false;
      this.finish(job, "failed", "failed", error, now);
      return true;
    });
  }

  async release(jobId: number, lease: string, reason: string, now: number): Promise<boolean> {
    return this.tx(() => {
      const job = this.leased(jobId, lease);
      if (!job) return false;
      this.finish(job, "queued", "released", reason, now);
      this.st("UPDATE jobs SET error = NULL WHERE job_id = ?").run(jobId);
      return true;
    });
  }

  async retry(jobId: number, _now: number): Promise<JobRow | null> {
    const r = this.st(
      `UPDATE jobs SET state = 'queued', error = NULL, finished_at = NULL, worker = NULL WHERE job_id = ? AND state IN ('failed', 'cancelled') RETURNING *`,
    ).get(jobId) as JobRec | undefined;
    return r ? jobRow(r) : null;
  }

  async cancel(jobId: number, now: number): Promise<JobRow | null> {
    return this.tx(() => {
      const job = this.st("SELECT * FROM jobs WHERE job_id = ? AND state IN ('queued', 'running')").get(jobId) as JobRec | undefined;
      if (!job) return null;
      this.finish(job, "cancelled", "cancelled", "cancelled", now);
      return jobRow(this.st("SELECT * FROM jobs WHERE job_id = ?").get(jobId) as JobRec);
    });
  }

  async get(jobId: number): Promise<JobRow | null> {
    const r = this.st("SELECT * FROM jobs WHERE job_id = ?").get(jobId) as JobRec | undefined;
    return r ? jobRow(r) : null;
  }

  async list(f: JobFilter): Promise<JobRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.state) (where.push("state = ?"), args.push(f.state));
    if (f.atomId) (where.push("atom_id = ?"), args.push(f.atomId));
    if (f.system) (where.push("system = ?"), args.push(f.system));
    if (f.version) (where.push("version = ?"), args.push(f.version));
    if (f.kind) (where.push("kind = ?"), args.push(f.kind));
    args.push(Math.max(1, Math.floor(f.limit ?? 100)));
    const sql = `SELECT * FROM jobs${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY job_id DESC LIMIT ?`;
    return (this.st(sql).all(...args) as JobRec[]).map(jobRow);
  }

  async position(job: JobRow): Promise<number> {
    return (
      this.st(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued' AND system = ? AND (priority > ? OR (priority = ? AND job_id < ?))",
      ).get(job.system, job.priority, job.priority, job.jobId) as { n: number }
    ).n;
  }

  async attempts(jobId: number): Promise<AttemptRow[]> {
    const rows = this.st("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY attempt").all(jobId) as {
      job_id: number;
      attempt: number;
      worker: string;
      claimed_at: number;
      finished_at: number | null;
      outcome: AttemptRow["outcome"];
      error: string | null;
    }[];
    return rows.map((r) => ({
      jobId: r.job_id,
      attempt: r.attempt,
      worker: r.worker,
      claimedAt: r.claimed_at,
      finishedAt: r.finished_at,
      outcome: r.outcome,
      error: r.error,
    }));
  }

  async appendLog(jobId: number, lease: string, chunk: Buffer, now: number): Promise<boolean> {
    const info = this.st(
      `INSERT INTO job_logs (job_id, attempt, chunk, created_at)
       SELECT job_id, attempts, ?, ? FROM jobs WHERE job_id = ? AND lease_id = ? AND state = 'running'`,
    ).run(chunk, now, jobId, lease);
    return info.changes === 1;
  }

  async log(jobId: number, attempt: number, afterSeq: number): Promise<{ seq: number; chunk: Buffer }[]> {
    return this.st("SELECT seq, chunk FROM job_logs WHERE job_id = ? AND attempt = ? AND seq > ? ORDER BY seq").all(
      jobId,
      attempt,
      afterSeq,
    ) as {
      seq: number;
      chunk: Buffer;
    }[];
  }

  async countByState(): Promise<Record<JobState, number>> {
    const out = emptyCounts();
    for (const r of this.st("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all() as { state: JobState; n: number }[])
      out[r.state] = r.n;
    return out;
  }

  async touchWorker(name: string, now: number): Promise<void> {
    this.st("INSERT INTO workers (name, last_seen) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen").run(
      name,
      now,
    );
  }

  async liveWorkers(since: number): Promise<number> {
    return (this.st("SELECT COUNT(*) AS n FROM workers WHERE last_seen >= ?").get(since) as { n: number }).n;
  }
}
