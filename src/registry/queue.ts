/**
 * What `cpr get` knows of the registry's build farm (docs/farm.md): when no build of a matching version is recorded,
 * whether one is queued or being built (its place in the queue, its worker, for how long), waiting for it, and a
 * failed build reported with the end of its log.
 */
import { CprError } from "../protocol/errors.js";
import type { JobView } from "../protocol/farm.js";
import type { Reporter } from "../protocol/report.js";
import { matches, parseRequirement } from "../protocol/requirement.js";
import { compareVersions, tryParseVersion } from "../protocol/version.js";
import type { RegistryClient, ResolvedBuild } from "./client.js";
import { resolveBuild, type Located } from "./get.js";

/** Lines of a failed job's log shown by `cpr get`. */
const LOG_TAIL_LINES = 25;

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** One line on a job's state: queued (position), running (worker, how long), or how it ended. */
export function describeJob(j: JobView, now: number): string {
  const what = j.kind === "eval" ? "evaluation" : "build";
  switch (j.state) {
    case "queued":
      return `${what} queued${j.position !== null ? `, ${j.position} job(s) ahead` : ""} (for ${duration(now - j.createdAt)})`;
    case "running":
      return `${what} running on ${j.worker ?? "a worker"} for ${duration(now - (j.startedAt ?? now))} (attempt ${j.attempts})`;
    case "succeeded":
      return `${what} succeeded${j.buildId !== null ? `, build ${j.buildId} recorded` : ""}`;
    case "failed":
      return `${what} failed${j.error ? `: ${j.error.split("\n")[0]}` : ""}`;
    case "cancelled":
      return `${what} cancelled`;
  }
}

/** The job that says where the newest matching version stands: its build job if there is one, else its evaluation. */
export async function currentJob(located: Located, system: string): Promise<{ job: JobView; registry: RegistryClient } | null> {
  const req = parseRequirement(located.requirement);
  let best: { job: JobView; registry: RegistryClient } | null = null;
  for (const registry of located.registries) {
    let jobs: JobView[];
    try {
      jobs = await registry.jobs({ atom: located.id, system, limit: 200 });
    } catch {
      continue; // an older registry without a build farm
    }
    for (const job of jobs) {
      const v = tryParseVersion(job.version);
      if (!v || !matches(req, v)) continue;
      if (!best) {
        best = { job, registry };
        continue;
      }
      const bv = tryParseVersion(best.job.version)!;
      const c = compareVersions(v, bv);
      if (c > 0 || (c === 0 && job.kind === "build" && best.job.kind === "eval")) best = { job, registry };
    }
  }
  return best;
}

/** The end of a job's log, or "" when it cannot be read. */
export async function logTail(registry: RegistryClient, id: number, lines = LOG_TAIL_LINES): Promise<string> {
  try {
    const text = await registry.jobLog(id);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export interface WaitOptions {
  /** Wait for a queued or running job instead of failing. */
  readonly wait: boolean;
  readonly reporter: Reporter;
  /** Milliseconds between looks (default 1000). */
  readonly pollMs?: number;
}

/**
 * No build is recorded: looks at the farm's queue. Returns the build once recorded (waiting with `wait`), or null
 * when no job is known for a matching version; throws when the job failed or was cancelled, or (without `wait`)
 * when it is still queued or running.
 */
export async function awaitQueuedBuild(
  located: Located,
  system: string,
  opts: WaitOptions,
): Promise<{ build: ResolvedBuild; registry: RegistryClient } | null> {
  const poll = opts.pollMs ?? 1000;
  let said = "";
  for (;;) {
    const found = await resolveBuild(located, system);
    if (found) return found;
    const current = await currentJob(located, system);
    if (!current) return null;
    const { job, registry } = current;
    const text = `${located.label} ${job.version} for ${system}: ${describeJob(job, Date.now())}`;
    if (job.state === "failed") {
      const tail = await logTail(registry, job.id);
      throw new CprError(
        "get.build-failed",
        `${text}${tail ? `\nthe end of its log (job ${job.id}):\n${tail.replace(/^/gm, "    ")}` : ""}`,
        {
          where: registry.url,
          hint: `the whole log: cpr jobs log ${job.id} --registry ${registry.url}; rerun it with cpr jobs retry ${job.id}`,
        },
      );
    }
    if (job.state === "cancelled") {
      throw new CprError("get.build-cancelled", text, {
        where: registry.url,
        hint: `queue it again with cpr jobs retry ${job.id} --registry ${registry.url}, or build it locally with --build`,
      });
    }
    if (!opts.wait && job.state !== "succeeded") {
      throw new CprError("get.no-build", `no build of ${located.label} for ${system} is recorded yet: ${text}`, {
        where: registry.url,
        hint: "pass --wait to wait for it, or --build to build it locally",
      });
    }
    // Show what changed (state, worker, queue position), not every look.
    const key = `${job.id} ${job.state} ${job.worker ?? ""} ${job.position ?? ""}`;
    if (key !== said) {
      opts.reporter.info(`waiting: ${text}`);
      said = key;
    }
    await new Promise((r) => setTimeout(r, poll));
  }
}
