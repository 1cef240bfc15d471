/**
 * INTEGRATION HOOKS of the pages: what other features (yanked versions, grafts, the build farm's jobs) give the pages.
 * Each hook is optional; without it, its section says the feature is not enabled on this registry (or is left
 * out). To plug a feature in, build its hook from the database in server.ts and pass it to `pageRoutes(app, ctx,
 * hooks)`; the renderers (render.ts, jobs.ts) already show what a hook returns. Every hook must answer from
 * bounded queries (one atom, one version, one page of jobs).
 */

/** Why a version was yanked (null reason: yanked without one). */
export interface YankMark {
  readonly reason: string | null;
}

/** One graft of a version's build, as the graft list shows it. */
export interface GraftView {
  /** A short name of the graft (e.g. what it replaces). */
  readonly name: string;
  /** The system of the grafted build. */
  readonly system: string;
  /** The store path the graft starts from and the one it produced. */
  readonly from: string;
  readonly to: string;
  /** Unix ms. */
  readonly createdAt: number;
}

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** One build-farm job, as the jobs pages list it. */
export interface JobView {
  readonly id: string;
  readonly state: JobState;
  /** AtomId, label, version and system of what the job builds. */
  readonly atomId: string;
  readonly label: string;
  readonly version: string;
  readonly system: string;
  /** Unix ms; null when not reached yet. */
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** The build record a succeeded job made, when known. */
  readonly buildId: number | null;
  /** For failed jobs in lists: the end of the log (a few KiB at most). */
  readonly logTail: string | null;
}

/** One job with the end of its log (bounded by the source, e.g. the last 64 KiB). */
export interface JobDetail extends JobView {
  readonly log: string;
  /** Whether `log` is only the end of a longer log. */
  readonly logTruncated: boolean;
}

/** What the /jobs pages read: the build farm's queue. */
export interface JobsSource {
  /** One page of jobs in `state`, newest first for finished states, oldest first for the queue. */
  list(state: JobState, limit: number, offset: number): Promise<JobView[]>;
  /** One job, or null when unknown. */
  get(id: string): Promise<JobDetail | null>;
}

export interface PageHooks {
  /** Yank marks of an atom's versions: version → mark, for the yanked ones only. */
  readonly yanks?: (atomId: string) => Promise<ReadonlyMap<string, YankMark>>;
  /** Grafts of one version's builds. */
  readonly grafts?: (atomId: string, version: string) => Promise<readonly GraftView[]>;
  /** The build farm's jobs (the /jobs pages). */
  readonly jobs?: JobsSource;
}
