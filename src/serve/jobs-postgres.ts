/**
 * The build farm's tables on PostgreSQL (jobs-db.ts). The claim is one statement: the first queued job is picked
 * with FOR UPDATE SKIP LOCKED (concurrent claims from any number of servers skip each other's rows instead of
 * waiting), updated, and its attempt row inserted, in one CTE.
 */
import type pg from "pg";
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

type Big = string | number;

interface JobRec {
  job_id: Big;
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
  outputs: Record<string, string> | null;
  parent: Big | null;
  attempts: number;
  worker: string | null;
  lease_id: string | null;
  lease_expires: Big | null;
  created_at: Big;
  started_at: Big | null;
  finished_at: Big | null;
  error: string | null;
  build_id: Big | null;
  main_program: string | null;
}

const num = (v: Big | null): number | null => (v === null ? null : Number(v));

const jobRow = (r: JobRec): JobRow => ({
  jobId: Number(r.job_id),
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
  outputs: r.outputs,
  parent: num(r.parent),
  attempts: r.attempts,
  worker: r.worker,
  lease: r.lease_id,
  leaseExpires: num(r.lease_expires),
  createdAt: Number(r.created_at),
  startedAt: num(r.started_at),
  finishedAt: num(r.finished_at),
  error: r.error,
  buildId: num(r.build_id),
  mainProgram: r.main_program ?? null,
});

type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

export class PostgresJobs implements JobStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  private q<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(name ? { name, text, values } : { text, values });
  }

  async enqueue(jobs: readonly NewJob[], now: number): Promise<number> {
    if (jobs.length === 0) return 0;
    const rows = jobs.map((j) => ({
      kind: j.kind,
      atom_id: j.atomId,
      root: j.root,
      label: j.label,
      version: j.version,
      rev: j.rev,
      system: j.system,
      priority: j.priority,
      drv: j.drv ?? null,
      outputs: j.outputs ?? null,
      parent: j.parent ?? null,
    }));
    const res = await this.q(
      `INSERT INTO jobs (kind, state, atom_id, root, label, version, rev, system, priority, drv, outputs, parent, attempts, created_at)
       SELECT j.kind, 'queued', j.atom_id, j.root, j.label, j.version, j.rev, j.system, j.priority, j.drv, j.outputs, j.parent, 0, $2
       FROM jsonb_to_recordset($1::jsonb) AS j(kind text, atom_id text, root text, label text, version text, rev text, system text,
         priority int, drv text, outputs jsonb, parent bigint)
       WHERE NOT EXISTS (SELECT 1 FROM builds b WHERE b.atom_id = j.atom_id AND b.version = j.version AND b.system = j.system)
       ON CONFLICT (kind, atom_id, version, system) DO NOTHING`,
      [JSON.stringify(rows), now],
    );
    return res.rowCount ?? 0;
  }

  async requeueExpired(now: number): Promise<number> {
    const res = await this.q(
      `WITH expired AS (
         UPDATE jobs SET state = 'queued', worker = NULL, lease_id = NULL, lease_expires = NULL
         WHERE state = 'running' AND lease_expires < $1 RETURNING job_id, attempts),
       closed AS (
         UPDATE job_attempts a SET outcome = 'expired', finished_at = $1 FROM expired e
         WHERE a.job_id = e.job_id AND a.attempt = e.attempts AND a.outcome IS NULL)
       SELECT COUNT(*) AS n FROM expired`,
      [now],
      "cpr_jobs_requeue",
    );
    return Number((res.rows[0] as { n: Big }).n);
  }

  async claim(q: ClaimQuery): Promise<JobRow | null> {
    const res = await this.q<JobRec>(
      `WITH picked AS (
         SELECT job_id FROM jobs WHERE state = 'queued' AND system = ANY($1::text[]) AND root = ANY($2::text[])
         ORDER BY priority DESC, job_id LIMIT 1 FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE jobs j SET state = 'running', worker = $3, lease_id = $4, lease_expires = $5, attempts = j.attempts + 1,
           started_at = $6, error = NULL
         FROM picked WHERE j.job_id = picked.job_id RETURNING j.*),
       attempt AS (
         INSERT INTO job_attempts (job_id, attempt, worker, claimed_at) SELECT job_id, attempts, $3, $6 FROM claimed)
       SELECT * FROM claimed`,
      [[...q.systems], [...q.roots], q.worker, q.lease, q.leaseExpires, q.now],
      "cpr_jobs_claim",
    );
    const r = res.rows[0];
    return r ? jobRow(r) : null;
  }

  async heartbeat(jobId: number, lease: string, leaseExpires: number, _now: number): Promise<boolean> {
    const res = await this.q(
      "UPDATE jobs SET lease_expires = $1 WHERE job_id = $2 AND lease_id = $3 AND state = 'running'",
      [leaseExpires, jobId, lease],
      "cpr_jobs_heartbeat",
    );
    return res.rowCount === 1;
  }

  private async leased(c: pg.PoolClient, jobId: number, lease: string): Promise<JobRec | undefined> {
    return (
      await c.query<JobRec>("SELECT * FROM jobs WHERE job_id = $1 AND lease_id = $2 AND state = 'running' FOR UPDATE", [jobId, lease])
    ).rows[0];
  }

  private async finish(c: pg.PoolClient, job: JobRec, state: JobState, outcome: string, error: string | null, now: number): Promise<void> {
    await c.query(
      `UPDATE jobs SET state = $1, lease_id = NULL, lease_expires = NULL, finished_at = $2, error = $3${state === "queued" ? ", worker = NULL" : ""}
       WHERE job_id = $4`,
      [state, state === "queued" ? null : now, error, job.job_id],
    );
    await c.query(
      "UPDATE job_attempts SET outcome = $1, finished_at = $2, error = $3 WHERE job_id = $4 AND attempt = $5 AND outcome IS NULL",
      [outcome, now, error, job.job_id, job.attempts],
    );
  }

  async complete(
    jobId: number,
    lease: string,
    o: JobOutcome,
    now: number,
  ): Promise<{ buildId: number | null; buildJob: number | null } | null> {
    return this.tx(async (c) => {
      const job = await this.leased(c, jobId, lease);
      if (!job) return null;
      let buildId: number | null = null;
      let buildJob: number | null = null;
      if (o.build) {
        const b = o.build;
        const res = await c.query<{ build_id: Big }>(
          `INSERT INTO builds (atom_id, version, rev, system, config_hash, config, drv, outputs, created_at, main_program)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) RETURNING build_id`,
          [b.id, b.version, b.rev, b.system, b.configHash, b.config, b.drv, JSON.stringify(b.outputs), b.createdAt, b.mainProgram ?? null],
        );
        buildId = Number(res.rows[0]!.build_id);
        // The reverse index of build outputs (path → build), kept with every build record (grafts).
        await c.query("INSERT INTO build_outputs (path, build_id) SELECT DISTINCT unnest($1::text[]), $2::bigint ON CONFLICT DO NOTHING", [
          Object.values(b.outputs),
          buildId,
        ]);
      }
      if (o.followUp) {
        const f = o.followUp;
        const res = await c.query<{ job_id: Big }>(
          `INSERT INTO jobs (kind, state, atom_id, root, label, version, rev, system, priority, drv, outputs, parent, attempts, created_at,
             main_program)
           VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, 0, $12, $13)
           ON CONFLICT (kind, atom_id, version, system) DO UPDATE SET state = 'queued', rev = excluded.rev, drv = excluded.drv,
             outputs = excluded.outputs, parent = excluded.parent, error = NULL, finished_at = NULL, worker = NULL,
             main_program = excluded.main_program
             WHERE jobs.state IN ('failed', 'cancelled', 'succeeded')
           RETURNING job_id`,
          [
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
          ],
        );
        const id =
          res.rows[0]?.job_id ??
          (
            await c.query<{ job_id: Big }>("SELECT job_id FROM jobs WHERE kind = $1 AND atom_id = $2 AND version = $3 AND system = $4", [
              f.kind,
              f.atomId,
              f.version,
              f.system,
            ])
          ).rows[0]?.job_id;
        buildJob = id === undefined ? null : Number(id);
      }
      await this.finish(c, job, "succeeded", "succeeded", null, now);
      await c.query("UPDATE jobs SET drv = $1, outputs = $2::jsonb, build_id = $3 WHERE job_id = $4", [
        o.drv,
        JSON.stringify(o.outputs),
        buildId,
        jobId,
      ]);
      return { buildId, buildJob };
    });
  }

  async fail(jobId: number, lease: string, error: string, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const job = await this.leased(c, jobId, lease);
      if (!job) return false;
      await this.finish(c, job, "failed", "failed", error, now);
      return true;
    });
  }

  async release(jobId: number, lease: string, reason: string, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const job = await this.leased(c, jobId, lease);
      if (!job) return false;
      await this.finish(c, job, "queued", "released", reason, now);
      await c.query("UPDATE jobs SET error = NULL WHERE job_id = $1", [jobId]);
      return true;
    });
  }

  async retry(jobId: number, _now: number): Promise<JobRow | null> {
    const r = (
      await this.q<JobRec>(
        `UPDATE jobs SET state = 'queued', error = NULL, finished_at = NULL, worker = NULL WHERE job_id = $1 AND state IN ('failed', 'cancelled') RETURNING *`,
        [jobId],
      )
    ).rows[0];
    return r ? jobRow(r) : null;
  }

  async cancel(jobId: number, now: number): Promise<JobRow | null> {
    return this.tx(async (c) => {
      const job = (await c.query<JobRec>("SELECT * FROM jobs WHERE job_id = $1 AND state IN ('queued', 'running') FOR UPDATE", [jobId]))
        .rows[0];
      if (!job) return null;
      await this.finish(c, job, "cancelled", "cancelled", "cancelled", now);
      return jobRow((await c.query<JobRec>("SELECT * FROM jobs WHERE job_id = $1", [jobId])).rows[0]!);
    });
  }

  async get(jobId: number): Promise<JobRow | null> {
    const r = (await this.q<JobRec>("SELECT * FROM jobs WHERE job_id = $1", [jobId], "cpr_jobs_get")).rows[0];
    return r ? jobRow(r) : null;
  }

  async list(f: JobFilter): Promise<JobRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace("?", `$${args.length}`));
    };
    if (f.state) add("state = ?", f.state);
    if (f.atomId) add("atom_id = ?", f.atomId);
    if (f.system) add("system = ?", f.system);
    if (f.version) add("version = ?", f.version);
    if (f.kind) add("kind = ?", f.kind);
    args.push(Math.max(1, Math.floor(f.limit ?? 100)));
    const sql = `SELECT * FROM jobs${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY job_id DESC LIMIT $${args.length}`;
    return (await this.q<JobRec>(sql, args)).rows.map(jobRow);
  }

  async position(job: JobRow): Promise<number> {
    const res = await this.q<{ n: Big }>(
      "SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued' AND system = $1 AND (priority > $2 OR (priority = $2 AND job_id < $3))",
      [job.system, job.priority, job.jobId],
    );
    return Number(res.rows[0]!.n);
  }

  async attempts(jobId: number): Promise<AttemptRow[]> {
    const res = await this.q<{
      job_id: Big;
      attempt: number;
      worker: string;
      claimed_at: Big;
      finished_at: Big | null;
      outcome: AttemptRow["outcome"];
      error: string | null;
    }>("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt", [jobId]);
    return res.rows.map((r) => ({
      jobId: Number(r.job_id),
      attempt: r.attempt,
      worker: r.worker,
      claimedAt: Number(r.claimed_at),
      finishedAt: num(r.finished_at),
      outcome: r.outcome,
      error: r.error,
    }));
  }

  async appendLog(jobId: number, lease: string, chunk: Buffer, now: number): Promise<boolean> {
    const res = await this.q(
      `INSERT INTO job_logs (job_id, attempt, chunk, created_at)
       SELECT job_id, attempts, $1, $2 FROM jobs WHERE job_id = $3 AND lease_id = $4 AND state = 'running'`,
      [chunk, now, jobId, lease],
      "cpr_jobs_log_append",
    );
    return res.rowCount === 1;
  }

  async log(jobId: number, attempt: number, afterSeq: number): Promise<{ seq: number; chunk: Buffer }[]> {
    const res = await this.q<{ seq: Big; chunk: Buffer }>(
      "SELECT seq, chunk FROM job_logs WHERE job_id = $1 AND attempt = $2 AND seq > $3 ORDER BY seq",
      [jobId, attempt, afterSeq],
      "cpr_jobs_log",
    );
    return res.rows.map((r) => ({ seq: Number(r.seq), chunk: r.chunk }));
  }

  async countByState(): Promise<Record<JobState, number>> {
    const out = emptyCounts();
    for (const r of (await this.q<{ state: JobState; n: Big }>("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")).rows)
      out[r.state] = Number(r.n);
    return out;
  }

  async touchWorker(name: string, now: number): Promise<void> {
    await this.q(
      "INSERT INTO workers (name, last_seen) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET last_seen = GREATEST(workers.last_seen, excluded.last_seen)",
      [name, now],
      "cpr_jobs_touch_worker",
    );
  }

  async liveWorkers(since: number): Promise<number> {
    return Number((await this.q<{ n: Big }>("SELECT COUNT(*) AS n FROM workers WHERE last_seen >= $1", [since])).rows[0]!.n);
  }
}
