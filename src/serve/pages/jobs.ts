/**
 * The /jobs pages: the build farm's queue, running jobs (with their live log) and failures (with the end of their
 * log), read through PageHooks.jobs (hooks.ts). Without that hook the pages say the build farm is not enabled.
 *
 * NOTE FOR THE INTEGRATOR: the build farm's tables and /api/v1/jobs routes live on another branch. To show them
 * here, build a JobsSource over the database (list one page per state, get one job with the end of its log) in
 * server.ts and pass it as `hooks.jobs` to pageRoutes(); nothing else in this file needs to change. The job page's
 * JSON answer (`Accept: application/json`) is the JobDetail itself, which site.js polls while the job runs.
 */
import type { JobDetail, JobState, JobsSource, JobView } from "./hooks.js";
import { html, href, isoTime, withQuery, type Html } from "./html.js";
import { layout, type AssetUrls } from "./render.js";

/** Jobs per state on /jobs, and per page of /jobs?state=… */
export const JOBS_PAGE = 25;
/** Characters of a failed job's log shown in lists. */
export const LOG_TAIL_CHARS = 2000;

const SECTIONS: { state: JobState; title: string }[] = [
  { state: "running", title: "Running" },
  { state: "queued", title: "Queued" },
  { state: "failed", title: "Failed" },
  { state: "succeeded", title: "Succeeded" },
];

export interface JobsView {
  readonly enabled: boolean;
  /** One page of jobs per state (only `state` when one is asked for). */
  readonly states: { state: JobState; jobs: JobView[]; page: number; more: boolean }[];
}

export async function jobsView(source: JobsSource | undefined, state: JobState | null, page: number): Promise<JobsView> {
  if (!source) return { enabled: false, states: [] };
  const wanted = state ? SECTIONS.filter((s) => s.state === state) : SECTIONS;
  const states = await Promise.all(
    wanted.map(async (s) => {
      const p = state ? page : 1;
      const rows = await source.list(s.state, JOBS_PAGE + 1, (p - 1) * JOBS_PAGE);
      return { state: s.state, jobs: rows.slice(0, JOBS_PAGE), page: p, more: rows.length > JOBS_PAGE };
    }),
  );
  return { enabled: true, states };
}

export function isJobState(s: string): s is JobState {
  return ["queued", "running", "succeeded", "failed", "cancelled"].includes(s);
}

function jobLine(j: JobView): Html {
  const when = j.finishedAt ?? j.startedAt ?? j.createdAt;
  return html`<li class="job ${j.state}">
    <a href="${href("jobs", j.id)}">Job ${j.id}</a>: <a href="${href("atoms", j.atomId, j.version)}">${j.label} ${j.version}</a> for
    ${j.system} <span class="muted">${isoTime(when)}</span>${j.state === "failed" && j.logTail
      ? html`<pre class="log" aria-label="End of the log of job ${j.id}"><code>${j.logTail.slice(-LOG_TAIL_CHARS)}</code></pre>`
      : ""}
  </li>`;
}

export function renderJobs(v: JobsView, assets: AssetUrls): string {
  if (!v.enabled) {
    return layout(
      { title: "Jobs", assets },
      html`<h1>Jobs</h1>
        <p>The build farm is not enabled on this registry: builds are recorded by <code>cpr build --push</code>.</p>`,
    );
  }
  const titles = new Map(SECTIONS.map((s) => [s.state, s.title]));
  const body = html`<h1>Jobs</h1>
    ${v.states.map(
      (s) =>
        html`<section id="${s.state}" aria-labelledby="${s.state}-h">
          <h2 id="${s.state}-h">${titles.get(s.state) ?? s.state}</h2>
          ${s.jobs.length
            ? html`<ul class="jobs">
                ${s.jobs.map(jobLine)}
              </ul>`
            : html`<p>None.</p>`}
          ${s.more ? html`<p><a href="${withQuery("/jobs", { state: s.state, page: s.page + 1 })}">More ${s.state} jobs</a></p>` : ""}
        </section>`,
    )}`;
  return layout({ title: "Jobs", assets }, body);
}

export function renderJob(j: JobDetail, assets: AssetUrls): string {
  const live = j.state === "running" || j.state === "queued";
  const body = html`<h1>Job ${j.id}</h1>
    <dl class="facts">
      <dt>Builds</dt>
      <dd><a href="${href("atoms", j.atomId, j.version)}">${j.label} ${j.version}</a> for ${j.system}</dd>
      <dt>State</dt>
      <dd><span class="state" data-field="state">${j.state}</span></dd>
      <dt>Queued</dt>
      <dd>${isoTime(j.createdAt)}</dd>
      <dt>Started</dt>
      <dd>${j.startedAt === null ? "not yet" : isoTime(j.startedAt)}</dd>
      <dt>Finished</dt>
      <dd>${j.finishedAt === null ? "not yet" : isoTime(j.finishedAt)}</dd>
    </dl>
    <section aria-labelledby="log-h">
      <h2 id="log-h">Log${j.logTruncated ? " (the end)" : ""}</h2>
      <pre class="log" data-field="log"><code>${j.log}</code></pre>
      ${live ? html`<p class="muted">This page follows the log while the job runs (with JavaScript; otherwise reload it).</p>` : ""}
    </section>`;
  return layout({ title: `Job ${j.id}`, assets, ...(live ? { live: "job" } : {}) }, body);
}
