/**
 * The build farm's wire protocol (docs/farm.md): what `cpr worker` and the registry's job API (`/api/v1/jobs…`)
 * send each other, typed and validated on receipt by both sides. Pure: no I/O.
 *
 * Every message carries `protocol` (FARM_PROTOCOL). A side that receives another version refuses the message with
 * `farm.protocol` (a worker and a server of different cpr releases must be upgraded together); any other malformed
 * message is `farm.invalid`, naming the field.
 */
import { CprError } from "./errors.js";
import { isProgramName } from "./build-record.js";

/** The version of the worker protocol this cpr speaks. Bumped on any incompatible change. */
export const FARM_PROTOCOL = 1;

/** What a job does: evaluate an atom version to its derivation, or build that derivation and record the build. */
export type JobKind = "eval" | "build";
export const JOB_KINDS: readonly JobKind[] = ["eval", "build"];

/** A job's life: queued → running → succeeded | failed; queued/running → cancelled; failed/cancelled → queued (retry). */
export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const JOB_STATES: readonly JobState[] = ["queued", "running", "succeeded", "failed", "cancelled"];

/** `POST /api/v1/jobs/claim` */
export interface ClaimRequest {
  readonly protocol: number;
  /** The worker's name (shown in job status); `host-pid` by default. */
  readonly worker: string;
  /** Systems this worker builds for (Nix system doubles). */
  readonly systems: readonly string[];
}

/** A claimed job, as the worker receives it. */
export interface ClaimedJob {
  readonly id: number;
  readonly kind: JobKind;
  /** The lease's secret: heartbeats, logs and the outcome must quote it. */
  readonly lease: string;
  /** Unix ms at which the lease expires unless a heartbeat extends it. */
  readonly leaseExpiresAt: number;
  readonly attempt: number;
  readonly atom: { readonly id: string; readonly label: string; readonly set: string };
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  /** The set's mirror URLs, as the registry indexes them. */
  readonly mirrors: readonly string[];
  /** build jobs: the derivation the evaluation found, and its outputs. */
  readonly drv: string | null;
  readonly outputs: Readonly<Record<string, string>> | null;
}

export interface ClaimResponse {
  readonly protocol: number;
  /** null: nothing to do now. */
  readonly job: ClaimedJob | null;
  /** Seconds a lease lasts without a heartbeat. */
  readonly leaseSeconds: number;
}

/** `POST /api/v1/jobs/<id>/heartbeat`, `…/release` (`reason`) */
export interface LeaseRequest {
  readonly protocol: number;
  readonly lease: string;
  readonly reason?: string;
}

export interface HeartbeatResponse {
  readonly protocol: number;
  readonly leaseExpiresAt: number;
}

/** `POST /api/v1/jobs/<id>/complete`: the derivation and its outputs (built and uploaded, for a build job). */
export interface CompleteRequest {
  readonly protocol: number;
  readonly lease: string;
  readonly drv: string;
  readonly outputs: Readonly<Record<string, string>>;
  /**
   * `meta.mainProgram` of the evaluated value, when it declares one (an evaluation; a build job sends what it knows,
   * and the registry keeps what the evaluation said). Optional: a registry of the same protocol that does not know
   * the field ignores it.
   */
  readonly mainProgram?: string | null;
}

export interface CompleteResponse {
  readonly protocol: number;
  /** The build record made (a build job, or an evaluation whose outputs were already in the cache), or null. */
  readonly buildId: number | null;
  /** The build job queued after an evaluation, or null. */
  readonly buildJob: number | null;
}

/** `POST /api/v1/jobs/<id>/fail`: the job failed for good (until a new version or a retry). */
export interface FailRequest {
  readonly protocol: number;
  readonly lease: string;
  readonly error: string;
}

/** `POST /api/v1/jobs/<id>/log`: appends text to the current attempt's log. */
export interface LogRequest {
  readonly protocol: number;
  readonly lease: string;
  readonly text: string;
}

/** A job as `GET /api/v1/jobs` and `GET /api/v1/jobs/<id>` show it. */
export interface JobView {
  readonly id: number;
  readonly kind: JobKind;
  readonly state: JobState;
  readonly atom: { readonly id: string; readonly label: string; readonly set: string };
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  readonly priority: number;
  readonly drv: string | null;
  readonly outputs: Readonly<Record<string, string>> | null;
  /** The evaluation job a build job follows, or null. */
  readonly parent: number | null;
  readonly attempts: number;
  readonly worker: string | null;
  /** Queued jobs ahead of this one for its system (queued jobs only), else null. */
  readonly position: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly leaseExpiresAt: number | null;
  readonly error: string | null;
  readonly buildId: number | null;
}

/** Longest worker name and log append accepted. */
export const MAX_WORKER_NAME = 200;
export const MAX_LOG_APPEND = 1024 * 1024;
export const MAX_ERROR_TEXT = 64 * 1024;

const SYSTEM = /^[A-Za-z0-9_.+-]+-[A-Za-z0-9_.+-]+$/;
const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/;

function invalid(what: string, field: string, why: string): CprError {
  return new CprError("farm.invalid", `${what}: ${field} ${why}`, {
    where: what,
    hint: "worker and registry exchange the messages of docs/farm.md; a cpr of the same release on both sides sends them right",
  });
}

function object(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalid(what, "the body", "must be a JSON object");
  return body as Record<string, unknown>;
}

/** Checks the `protocol` field: a number equal to FARM_PROTOCOL. */
export function checkProtocol(body: unknown, what: string): Record<string, unknown> {
  const o = object(body, what);
  const v = o.protocol;
  if (v !== FARM_PROTOCOL) {
    const said = typeof v === "number" ? `protocol ${v}` : v === undefined ? "no protocol version" : `protocol ${JSON.stringify(v)}`;
    throw new CprError("farm.protocol", `${what}: the other side speaks ${said}, this cpr speaks worker protocol ${FARM_PROTOCOL}`, {
      where: what,
      hint: "run the same cpr release on the workers and the registry servers (`cpr --version`)",
    });
  }
  return o;
}

function str(o: Record<string, unknown>, key: string, what: string, max = 10_000): string {
  const v = o[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max)
    throw invalid(what, key, `must be a non-empty string (at most ${max} characters)`);
  return v;
}

function int(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw invalid(what, key, "must be a non-negative integer");
  return v;
}

function nullable<T>(o: Record<string, unknown>, key: string, f: () => T): T | null {
  return o[key] === null || o[key] === undefined ? null : f();
}

function storePath(v: unknown, what: string, field: string, drv = false): string {
  if (typeof v !== "string" || !STORE_PATH.test(v) || (drv && !v.endsWith(".drv")))
    throw invalid(what, field, `must be a store path${drv ? " of a .drv" : ""}, got ${JSON.stringify(v)}`);
  return v;
}

function outputs(v: unknown, what: string): Record<string, string> {
  const o = typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  if (!o || Object.keys(o).length === 0) throw invalid(what, "outputs", "must be an object of output name → store path");
  const out: Record<string, string> = {};
  for (const [k, p] of Object.entries(o)) {
    if (!/^[A-Za-z0-9_+\-.]+$/.test(k)) throw invalid(what, "outputs", `has an invalid output name ${JSON.stringify(k)}`);
    out[k] = storePath(p, what, `outputs.${k}`);
  }
  return out;
}

function systems(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 64) throw invalid(what, "systems", "must be a non-empty array of systems");
  return v.map((s) => {
    if (typeof s !== "string" || !SYSTEM.test(s))
      throw invalid(what, "systems", `holds ${JSON.stringify(s)}, not a system like x86_64-linux`);
    return s;
  });
}

export function parseClaimRequest(body: unknown): ClaimRequest {
  const what = "claim request";
  const o = checkProtocol(body, what);
  return { protocol: FARM_PROTOCOL, worker: str(o, "worker", what, MAX_WORKER_NAME), systems: systems(o.systems, what) };
}

export function parseLeaseRequest(body: unknown, what = "lease request"): LeaseRequest {
  const o = checkProtocol(body, what);
  const reason = o.reason === undefined ? undefined : str(o, "reason", what, MAX_ERROR_TEXT);
  return { protocol: FARM_PROTOCOL, lease: str(o, "lease", what, 200), ...(reason === undefined ? {} : { reason }) };
}

export function parseCompleteRequest(body: unknown): CompleteRequest {
  const what = "complete request";
  const o = checkProtocol(body, what);
  const mainProgram = o.mainProgram ?? null;
  if (mainProgram !== null && !isProgramName(mainProgram))
    throw invalid(what, "mainProgram", 'must be a file name in bin/ (no "/") or null');
  return {
    protocol: FARM_PROTOCOL,
    lease: str(o, "lease", what, 200),
    drv: storePath(o.drv, what, "drv", true),
    outputs: outputs(o.outputs, what),
    mainProgram,
  };
}

export function parseFailRequest(body: unknown): FailRequest {
  const what = "fail request";
  const o = checkProtocol(body, what);
  return { protocol: FARM_PROTOCOL, lease: str(o, "lease", what, 200), error: str(o, "error", what, MAX_ERROR_TEXT) };
}

export function parseLogRequest(body: unknown): LogRequest {
  const what = "log request";
  const o = checkProtocol(body, what);
  const text = o.text;
  if (typeof text !== "string" || text.length > MAX_LOG_APPEND)
    throw invalid(what, "text", `must be a string of at most ${MAX_LOG_APPEND} characters`);
  return { protocol: FARM_PROTOCOL, lease: str(o, "lease", what, 200), text };
}

function atomOf(v: unknown, what: string): ClaimedJob["atom"] {
  const a = object(v, what);
  return { id: str(a, "id", what, 100), label: str(a, "label", what, 500), set: str(a, "set", what, 64) };
}

function kind(v: unknown, what: string): JobKind {
  if (v !== "eval" && v !== "build") throw invalid(what, "kind", `must be "eval" or "build", got ${JSON.stringify(v)}`);
  return v;
}

export function parseClaimResponse(body: unknown): ClaimResponse {
  const what = "claim response";
  const o = checkProtocol(body, what);
  const leaseSeconds = int(o, "leaseSeconds", what);
  if (o.job === null) return { protocol: FARM_PROTOCOL, job: null, leaseSeconds };
  const j = object(o.job, what);
  const mirrors = j.mirrors;
  if (!Array.isArray(mirrors) || mirrors.some((m) => typeof m !== "string")) throw invalid(what, "job.mirrors", "must be an array of URLs");
  const k = kind(j.kind, what);
  const job: ClaimedJob = {
    id: int(j, "id", what),
    kind: k,
    lease: str(j, "lease", what, 200),
    leaseExpiresAt: int(j, "leaseExpiresAt", what),
    attempt: int(j, "attempt", what),
    atom: atomOf(j.atom, what),
    version: str(j, "version", what, 300),
    rev: str(j, "rev", what, 64),
    system: str(j, "system", what, 100),
    mirrors: mirrors as string[],
    drv: nullable(j, "drv", () => storePath(j.drv, what, "job.drv", true)),
    outputs: nullable(j, "outputs", () => outputs(j.outputs, what)),
  };
  if (k === "build" && (job.drv === null || job.outputs === null)) throw invalid(what, "job.drv", "is required for a build job");
  return { protocol: FARM_PROTOCOL, job, leaseSeconds };
}

export function parseHeartbeatResponse(body: unknown): HeartbeatResponse {
  const what = "heartbeat response";
  const o = checkProtocol(body, what);
  return { protocol: FARM_PROTOCOL, leaseExpiresAt: int(o, "leaseExpiresAt", what) };
}

export function parseCompleteResponse(body: unknown): CompleteResponse {
  const what = "complete response";
  const o = checkProtocol(body, what);
  return {
    protocol: FARM_PROTOCOL,
    buildId: nullable(o, "buildId", () => int(o, "buildId", what)),
    buildJob: nullable(o, "buildJob", () => int(o, "buildJob", what)),
  };
}

/** A job view from the API (used by `cpr jobs` and `cpr get`); checks the fields those read. */
export function parseJobView(body: unknown): JobView {
  const what = "job";
  const o = object(body, what);
  const state = o.state;
  if (typeof state !== "string" || !(JOB_STATES as readonly string[]).includes(state))
    throw invalid(what, "state", `is not a job state: ${JSON.stringify(state)}`);
  kind(o.kind, what);
  int(o, "id", what);
  atomOf(o.atom, what);
  str(o, "version", what, 300);
  str(o, "system", what, 100);
  return o as unknown as JobView;
}

/** Is `s` a Nix system double (x86_64-linux)? */
export function isSystem(s: string): boolean {
  return SYSTEM.test(s);
}
