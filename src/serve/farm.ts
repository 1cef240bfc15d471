/**
 * The build farm's server side (docs/farm.md): the build policy (which indexed versions are evaluated and built,
 * for which systems), the enqueueing that follows each index pass, lease expiry, and the job views the API shows.
 *
 * The default policy of `cpr serve --build SYSTEM` is the newest version of every atom of every indexed set whose
 * manifest has a `[compose]` other than static; `[registry.builds]` refines it (sets, labels, newest N versions or
 * every version, priority).
 */
import { randomBytes } from "node:crypto";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import { CprError } from "../protocol/errors.js";
import { isSystem, type JobView } from "../protocol/farm.js";
import { newestFirst, type RegistryDb } from "./db.js";
import type { JobRow, NewJob } from "./jobs-db.js";

export interface BuildPolicy {
  /** Systems to build for; none: the policy is off (workers still take jobs other servers enqueue). */
  readonly systems: readonly string[];
  /** Set roots to build; null: every indexed set. */
  readonly sets: readonly string[] | null;
  /** Labels to build; null: every atom. */
  readonly labels: readonly string[] | null;
  /** The newest N versions of each atom, or every version. */
  readonly newest: number | "all";
  /** Higher first. */
  readonly priority: number;
}

export const DEFAULT_LEASE_SECONDS = 60;

export const NO_POLICY: BuildPolicy = { systems: [], sets: null, labels: null, newest: 1, priority: 0 };

/** Checks a policy's values (systems, roots, newest). */
export function checkPolicy(p: BuildPolicy, where: string): BuildPolicy {
  for (const s of p.systems)
    if (!isSystem(s)) throw new CprError("farm.policy", `${where}: ${JSON.stringify(s)} is not a system like x86_64-linux`, { where });
  for (const r of p.sets ?? [])
    if (!/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(r))
      throw new CprError("farm.policy", `${where}: sets holds ${JSON.stringify(r)}, not a set root (40 or 64 hex digits)`, { where });
  if (p.newest !== "all" && (!Number.isSafeInteger(p.newest) || p.newest < 1))
    throw new CprError("farm.policy", `${where}: versions must be a positive whole number or "all", got ${JSON.stringify(p.newest)}`, {
      where,
    });
  return p;
}

export interface FarmLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface FarmOptions {
  readonly db: RegistryDb;
  readonly policy: BuildPolicy;
  readonly leaseSeconds: number;
  readonly log: FarmLog;
}

/** The versions of a set that the policy wants built, as jobs. */
export async function wantedJobs(db: RegistryDb, root: string, policy: BuildPolicy): Promise<NewJob[]> {
  if (policy.systems.length === 0) return [];
  if (policy.sets && !policy.sets.includes(root)) return [];
  const ids = [...new Set((await db.indexedVersions(root)).map((v) => v.id))];
  const jobs: NewJob[] = [];
  for (const id of ids) {
    const found = await db.atom(id);
    if (!found) continue;
    const { atom } = found;
    if (policy.labels && !policy.labels.includes(atom.label)) continue;
    const versions = newestFirst(found.versions);
    const chosen = policy.newest === "all" ? versions : versions.slice(0, policy.newest);
    for (const v of chosen) {
      if (!buildable(v.manifest, `${atom.label} ${v.version}`)) continue;
      for (const system of policy.systems) {
        jobs.push({ kind: "eval", atomId: id, root, label: atom.label, version: v.version, rev: v.rev, system, priority: policy.priority });
      }
    }
  }
  return jobs;
}

/** Does the published manifest have a `[compose]` other than static? */
function buildable(manifest: string, what: string): boolean {
  if (!manifest) return false;
  try {
    const m = parseAtomManifest(manifest, what, "evaluate");
    return m.compose !== null && m.compose.kind !== "static";
  } catch {
    return false;
  }
}

export class Farm {
  readonly db: RegistryDb;
  readonly policy: BuildPolicy;
  readonly leaseSeconds: number;
  private readonly log: FarmLog;
  private timer: NodeJS.Timeout | null = null;
  private lastReap = 0;

  constructor(opts: FarmOptions) {
    this.db = opts.db;
    this.policy = opts.policy;
    this.leaseSeconds = opts.leaseSeconds;
    this.log = opts.log;
  }

  /** Starts the lease-expiry timer (every quarter lease). */
  start(): void {
    const every = Math.max(250, (this.leaseSeconds * 1000) / 4);
    this.timer = setInterval(() => void this.reap(true), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Returns expired leases' jobs to the queue (at most once a second unless forced). */
  async reap(force = false): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastReap < 1000) return;
    this.lastReap = now;
    try {
      const n = await this.db.jobs.requeueExpired(now);
      if (n) this.log.warn({ jobs: n }, "leases expired: jobs back in the queue");
    } catch (e) {
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, "lease expiry failed");
    }
  }

  /** Enqueues what the policy wants of the set (idempotent). */
  async enqueueSet(root: string): Promise<number> {
    const jobs = await wantedJobs(this.db, root, this.policy);
    const n = await this.db.jobs.enqueue(jobs, Date.now());
    if (n) this.log.info({ root, jobs: n }, "jobs enqueued");
    return n;
  }

  newLease(): { lease: string; expires: number } {
    return { lease: randomBytes(18).toString("base64url"), expires: Date.now() + this.leaseSeconds * 1000 };
  }
}

/** The API's view of a job. */
export function jobView(j: JobRow, position: number | null): JobView {
  return {
    id: j.jobId,
    kind: j.kind,
    state: j.state,
    atom: { id: j.atomId, label: j.label, set: j.root },
    version: j.version,
    rev: j.rev,
    system: j.system,
    priority: j.priority,
    drv: j.drv,
    outputs: j.outputs,
    parent: j.parent,
    attempts: j.attempts,
    worker: j.worker,
    position,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    leaseExpiresAt: j.leaseExpires,
    error: j.error,
    buildId: j.buildId,
  };
}
