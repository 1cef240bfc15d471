/**
 * The build farm's API under /api/v1/jobs (docs/farm.md). Workers (worker-scoped tokens) claim jobs, send
 * heartbeats and logs, and report outcomes; everyone may read jobs and their logs; write tokens of a set may retry
 * and cancel its jobs. Every worker message is validated (src/protocol/farm.ts) before anything is stored.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { canonicalJson, configHash } from "../protocol/build-record.js";
import { CprError } from "../protocol/errors.js";
import {
  FARM_PROTOCOL,
  JOB_KINDS,
  JOB_STATES,
  parseClaimRequest,
  parseCompleteRequest,
  parseFailRequest,
  parseLeaseRequest,
  parseLogRequest,
  type ClaimResponse,
  type CompleteResponse,
  type JobKind,
  type JobState,
} from "../protocol/farm.js";
import { isAtomId } from "../protocol/id.js";
import { parseStorePath } from "../protocol/narinfo.js";
import { redactUrl } from "../protocol/uri.js";
import { sendError, type RegistryContext } from "./context.js";
import type { TokenRow } from "./db.js";
import { jobView } from "./farm.js";
import type { JobOutcome, JobRow } from "./jobs-db.js";
import { authorize } from "./tokens.js";

/** How often a followed log looks for new chunks. */
const LOG_POLL_MS = 300;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A farm message that does not validate: 400, with `protocol` so that the other side can tell a version mismatch. */
function badMessage(reply: FastifyReply, e: unknown): FastifyReply {
  const code = e instanceof CprError ? e.code : "farm.invalid";
  return reply
    .code(400)
    .header("cache-control", "no-store")
    .send({ error: message(e), code, protocol: FARM_PROTOCOL });
}

function leaseLost(reply: FastifyReply, id: number): FastifyReply {
  return reply
    .code(409)
    .header("cache-control", "no-store")
    .send({
      error: `job ${id}: this lease is no longer the job's (it expired, or the job was cancelled)`,
      code: "farm.lease-lost",
      protocol: FARM_PROTOCOL,
    });
}

function jobId(text: string): number | null {
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

export function jobRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  const { db } = ctx;

  /** The worker token of the request, or null after answering 401/403. */
  async function worker(req: FastifyRequest, reply: FastifyReply): Promise<TokenRow | null> {
    const token = await authorize(ctx, req, reply);
    if (!token) return null;
    if (token.scope !== "worker") {
      void sendError(reply, 403, "this is not a worker token: create one with `cpr registry token create --worker --set ROOT`");
      return null;
    }
    return token;
  }

  /** The job, checked against the worker token's sets; null after answering. */
  async function workerJob(req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, token: TokenRow): Promise<JobRow | null> {
    const id = jobId(req.params.id);
    const job = id === null ? null : await db.jobs.get(id);
    if (!job) {
      void sendError(reply, 404, `unknown job ${req.params.id}`);
      return null;
    }
    if (!token.sets.includes(job.root)) {
      void sendError(reply, 403, `this worker token may not build set ${job.root}`);
      return null;
    }
    return job;
  }

  // Workers are marked seen at most every few seconds each, and set mirrors are read at most every few seconds:
  // neither needs a database round trip on every claim.
  const touched = new Map<string, number>();
  async function touch(name: string, now: number): Promise<void> {
    if (now - (touched.get(name) ?? 0) < Math.min(5000, (ctx.farm.leaseSeconds * 1000) / 4)) return;
    touched.set(name, now);
    if (touched.size > 10_000) touched.clear();
    await db.jobs.touchWorker(name, now);
  }
  const mirrors = new Map<string, { at: number; list: string[] }>();
  async function mirrorsOf(root: string, now: number): Promise<string[]> {
    const hit = mirrors.get(root);
    if (hit && now - hit.at < 5000) return hit.list;
    const list = ((await db.getSet(root))?.mirrors ?? []).map(redactUrl);
    mirrors.set(root, { at: now, list });
    return list;
  }

  function finished(job: JobRow, outcome: string): void {
    if (job.startedAt !== null) ctx.metrics.jobDone(job.kind, outcome, Math.max(0, Date.now() - job.startedAt) / 1000);
  }

  app.post("/api/v1/jobs/claim", async (req, reply) => {
    const token = await worker(req, reply);
    if (!token) return reply;
    let claim;
    try {
      claim = parseClaimRequest(req.body);
    } catch (e) {
      return badMessage(reply, e);
    }
    await ctx.farm.reap();
    const now = Date.now();
    await touch(claim.worker, now);
    const { lease, expires } = ctx.farm.newLease();
    const job = await db.jobs.claim({ worker: claim.worker, systems: claim.systems, roots: token.sets, lease, leaseExpires: expires, now });
    let body: ClaimResponse;
    if (!job) body = { protocol: FARM_PROTOCOL, job: null, leaseSeconds: ctx.farm.leaseSeconds };
    else {
      body = {
        protocol: FARM_PROTOCOL,
        leaseSeconds: ctx.farm.leaseSeconds,
        job: {
          id: job.jobId,
          kind: job.kind,
          lease,
          leaseExpiresAt: expires,
          attempt: job.attempts,
          atom: { id: job.atomId, label: job.label, set: job.root },
          version: job.version,
          rev: job.rev,
          system: job.system,
          mirrors: await mirrorsOf(job.root, now),
          drv: job.drv,
          outputs: job.outputs,
        },
      };
      req.log.info(
        { job: job.jobId, kind: job.kind, label: job.label, version: job.version, worker: claim.worker, attempt: job.attempts },
        "job claimed",
      );
    }
    return reply.header("cache-control", "no-store").send(body);
  });

  app.post<{ Params: { id: string } }>("/api/v1/jobs/:id/heartbeat", async (req, reply) => {
    const token = await worker(req, reply);
    if (!token) return reply;
    let msg;
    try {
      msg = parseLeaseRequest(req.body, "heartbeat request");
    } catch (e) {
      return badMessage(reply, e);
    }
    const job = await workerJob(req, reply, token);
    if (!job) return reply;
    const now = Date.now();
    const expires = now + ctx.farm.leaseSeconds * 1000;
    if (!(await db.jobs.heartbeat(job.jobId, msg.lease, expires, now))) return leaseLost(reply, job.jobId);
    if (job.worker) await touch(job.worker, now);
    return reply.header("cache-control", "no-store").send({ protocol: FARM_PROTOCOL, leaseExpiresAt: expires });
  });

  app.post<{ Params: { id: string } }>("/api/v1/jobs/:id/release", async (req, reply) => {
    const token = await worker(req, reply);
    if (!token) return reply;
    let msg;
    try {
      msg = parseLeaseRequest(req.body, "release request");
    } catch (e) {
      return badMessage(reply, e);
    }
    const job = await workerJob(req, reply, token);
    if (!job) return reply;
    if (!(await db.jobs.release(job.jobId, msg.lease, msg.reason ?? "released by the worker", Date.now())))
      return leaseLost(reply, job.jobId);
    finished(job, "released");
    req.log.info({ job: job.jobId, worker: job.worker }, "job released");
    return reply.header("cache-control", "no-store").send({ protocol: FARM_PROTOCOL });
  });

  app.post<{ Params: { id: string } }>("/api/v1/jobs/:id/log", async (req, reply) => {
    const token = await worker(req, reply);
    if (!token) return reply;
    let msg;
    try {
      msg = parseLogRequest(req.body);
    } catch (e) {
      return badMessage(reply, e);
    }
    const job = await workerJob(req, reply, token);
    if (!job) return reply;
    if (msg.text.length > 0 && !(await db.jobs.appendLog(job.jobId, msg.lease, gzipSync(Buffer.from(msg.text, "utf8")), Date.now())))
      return leaseLost(reply, job.jobId);
    return reply.header("cache-control", "no-store").send({ protocol: FARM_PROTOCOL });
  });

  app.post<{ Params: { id: string } }>("/api/v1/jobs/:id/fail", async (req, reply) => {
    const token = await worker(req, reply);
    if (!token) return reply;
    let msg;
    try {
      msg = parseFailRequest(req.body);
    } catch (e) {
      return badMessage(reply, e);
    }
    const job = await workerJob(req, reply, token);
    if (!job) return reply;
    if (!(await db.jobs.fail(job.jobId, msg.lease, msg.error, Date.now()))) return leaseLost(reply, job.jobId);
    finished(job, "failed");
    req.log.warn({ job: job.jobId, kind: job.kind, label: job.label, version: job.version, worker: job.worker }, "job failed");
    return reply.header("cache-control", "no-store").send({ protocol: FARM_PROTOCOL });
  });

  app.post<{ Params: { id: string } }>("/api/v1/jobs/:id/complete", async (req, reply) => {
    const token = await worker(req, reply);
    if (!token) return reply;
    let msg;
    try {
      msg = parseCompleteRequest(req.body);
    } catch (e) {
      return badMessage(reply, e);
    }
    const job = await workerJob(req, reply, token);
    if (!job) return reply;
    if (job.state !== "running" || job.lease !== msg.lease) return leaseLost(reply, job.jobId);
    if (job.kind === "build" && job.drv !== msg.drv)
      return sendError(reply, 409, `job ${job.jobId}: the build produced ${msg.drv}, but the evaluation recorded ${job.drv}`);
    const outputs = Object.entries(msg.outputs);
    const missing = new Set(await db.missingPaths(outputs.map(([, p]) => parseStorePath(p).hash)));
    const absent = outputs.filter(([, p]) => missing.has(parseStorePath(p).hash));
    if (job.kind === "build" && absent.length)
      return sendError(reply, 409, `output paths not in the cache (upload them first): ${absent.map(([n, p]) => `${n}=${p}`).join(" ")}`);
    const config = { system: job.system };
    // What the evaluation said: in this message (an evaluation), or kept on the build job that followed it.
    const mainProgram = msg.mainProgram ?? job.mainProgram;
    const outcome: JobOutcome =
      absent.length === 0
        ? {
            drv: msg.drv,
            outputs: msg.outputs,
            build: {
              id: job.atomId,
              version: job.version,
              rev: job.rev,
              system: job.system,
              configHash: configHash(config),
              config: canonicalJson(config),
              drv: msg.drv,
              outputs: msg.outputs,
              createdAt: Date.now(),
              mainProgram,
            },
          }
        : {
            drv: msg.drv,
            outputs: msg.outputs,
            followUp: {
              kind: "build",
              atomId: job.atomId,
              root: job.root,
              label: job.label,
              version: job.version,
              rev: job.rev,
              system: job.system,
              priority: job.priority,
              drv: msg.drv,
              outputs: msg.outputs,
              parent: job.jobId,
              mainProgram,
            },
          };
    const done = await db.jobs.complete(job.jobId, msg.lease, outcome, Date.now());
    if (!done) return leaseLost(reply, job.jobId);
    finished(job, "succeeded");
    req.log.info(
      { job: job.jobId, kind: job.kind, label: job.label, version: job.version, buildId: done.buildId, buildJob: done.buildJob },
      done.buildId !== null
        ? job.kind === "eval"
          ? "evaluated: outputs already cached, build recorded"
          : "built and recorded"
        : "evaluated",
    );
    const body: CompleteResponse = { protocol: FARM_PROTOCOL, buildId: done.buildId, buildJob: done.buildJob };
    return reply.header("cache-control", "no-store").send(body);
  });

  // ── reading and managing jobs ──

  app.get<{ Querystring: { state?: string; atom?: string; system?: string; version?: string; kind?: string; limit?: string } }>(
    "/api/v1/jobs",
    async (req, reply) => {
      const q = req.query;
      if (q.state !== undefined && !(JOB_STATES as readonly string[]).includes(q.state))
        return sendError(reply, 400, `state must be one of ${JOB_STATES.join(", ")}, got ${JSON.stringify(q.state)}`);
      if (q.kind !== undefined && !(JOB_KINDS as readonly string[]).includes(q.kind))
        return sendError(reply, 400, `kind must be eval or build, got ${JSON.stringify(q.kind)}`);
      if (q.atom !== undefined && !isAtomId(q.atom)) return sendError(reply, 400, `atom must be an AtomId, got ${JSON.stringify(q.atom)}`);
      if (q.limit !== undefined && (!/^\d{1,6}$/.test(q.limit) || Number(q.limit) < 1))
        return sendError(reply, 400, `limit must be a positive integer, got ${JSON.stringify(q.limit)}`);
      const rows = await db.jobs.list({
        ...(q.state ? { state: q.state as JobState } : {}),
        ...(q.atom ? { atomId: q.atom } : {}),
        ...(q.system ? { system: q.system } : {}),
        ...(q.version ? { version: q.version } : {}),
        ...(q.kind ? { kind: q.kind as JobKind } : {}),
        limit: Math.min(Number(q.limit ?? 100), 1000),
      });
      const jobs = await Promise.all(rows.map(async (j) => jobView(j, j.state === "queued" ? await db.jobs.position(j) : null)));
      return reply.header("cache-control", "no-store").send({ jobs });
    },
  );

  app.get<{ Params: { id: string } }>("/api/v1/jobs/:id", async (req, reply) => {
    const id = jobId(req.params.id);
    const job = id === null ? null : await db.jobs.get(id);
    if (!job) return sendError(reply, 404, `unknown job ${req.params.id}`);
    const attempts = await db.jobs.attempts(job.jobId);
    return reply
      .header("cache-control", "no-store")
      .send({ ...jobView(job, job.state === "queued" ? await db.jobs.position(job) : null), attemptList: attempts });
  });

  app.get<{ Params: { id: string }; Querystring: { attempt?: string; follow?: string } }>("/api/v1/jobs/:id/log", async (req, reply) => {
    const id = jobId(req.params.id);
    const job = id === null ? null : await db.jobs.get(id);
    if (!job) return sendError(reply, 404, `unknown job ${req.params.id}`);
    let attempt = job.attempts;
    if (req.query.attempt !== undefined) {
      if (!/^\d{1,6}$/.test(req.query.attempt))
        return sendError(reply, 400, `attempt must be a number, got ${JSON.stringify(req.query.attempt)}`);
      attempt = Number(req.query.attempt);
    }
    const follow = req.query.follow !== "0" && req.query.follow !== "false";
    async function* chunks(): AsyncGenerator<Buffer> {
      let seq = 0;
      for (;;) {
        for (const c of await db.jobs.log(job!.jobId, attempt, seq)) {
          seq = c.seq;
          yield gunzipSync(c.chunk);
        }
        if (!follow) return;
        const now = await db.jobs.get(job!.jobId);
        if (!now || now.state !== "running" || now.attempts !== attempt) {
          // One last read: chunks appended just before the job ended.
          for (const c of await db.jobs.log(job!.jobId, attempt, seq)) yield gunzipSync(c.chunk);
          return;
        }
        await new Promise((r) => setTimeout(r, LOG_POLL_MS));
      }
    }
    return reply.header("cache-control", "no-store").type("text/plain; charset=utf-8").send(Readable.from(chunks()));
  });

  /** A write token (not a worker one) of the job's set; null after answering. */
  async function manager(req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<JobRow | null> {
    const token = await authorize(ctx, req, reply);
    if (!token) return null;
    const id = jobId(req.params.id);
    const job = id === null ? null : await db.jobs.get(id);
    if (!job) {
      void sendError(reply, 404, `unknown job ${req.params.id}`);
      return null;
    }
    if (token.scope === "worker") {
      void sendError(reply, 403, "a worker token may not retry or cancel jobs: use a write token of the set");
      return null;
    }
    if (!token.sets.includes(job.root)) {
      void sendError(reply, 403, `this token may not write set ${job.root}`);
      return null;
    }
    return job;
  }

  // Retry and cancel carry no body; whatever is sent is ignored.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, payload, done) => {
      payload.resume();
      done(null, undefined);
    });
    scope.post<{ Params: { id: string } }>("/api/v1/jobs/:id/retry", async (req, reply) => {
      const job = await manager(req, reply);
      if (!job) return reply;
      const again = await db.jobs.retry(job.jobId, Date.now());
      if (!again) return sendError(reply, 409, `job ${job.jobId} is ${job.state}: only a failed or cancelled job can be retried`);
      req.log.info({ job: job.jobId }, "job retried");
      return reply.send(jobView(again, await db.jobs.position(again)));
    });
    scope.post<{ Params: { id: string } }>("/api/v1/jobs/:id/cancel", async (req, reply) => {
      const job = await manager(req, reply);
      if (!job) return reply;
      const cancelled = await db.jobs.cancel(job.jobId, Date.now());
      if (!cancelled) return sendError(reply, 409, `job ${job.jobId} is ${job.state}: only a queued or running job can be cancelled`);
      if (job.state === "running") finished(job, "cancelled");
      req.log.info({ job: job.jobId }, "job cancelled");
      return reply.send(jobView(cancelled, null));
    });
  });
}
