/**
 * The web pages' hooks (pages/hooks.ts) built from the registry's own database: yank marks from the catalogue's
 * yank records, graft lists from graft records, and the /jobs pages from the build farm's queue. Every read is
 * bounded (one atom, one version's builds, one page of jobs, the end of one log).
 */
import { gunzipSync } from "node:zlib";
import type { RegistryDb } from "./db.js";
import type { JobRow } from "./jobs-db.js";
import type { GraftView, JobDetail, JobState, JobView, PageHooks } from "./pages/hooks.js";

/** The end of a job's log the pages show. */
const LOG_TAIL_BYTES = 64 * 1024;
/** The end of a failed job's log in lists. */
const LIST_TAIL_BYTES = 2 * 1024;

function jobView(j: JobRow, logTail: string | null): JobView {
  return {
    id: String(j.jobId),
    state: j.state,
    atomId: j.atomId,
    label: j.label,
    version: j.version,
    system: j.system,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    buildId: j.buildId,
    logTail,
  };
}

async function logText(db: RegistryDb, j: JobRow): Promise<string> {
  if (j.attempts < 1) return "";
  const chunks = await db.jobs.log(j.jobId, j.attempts, 0);
  return Buffer.concat(chunks.map((c) => gunzipSync(c.chunk))).toString("utf8");
}

export function databasePageHooks(db: RegistryDb): PageHooks {
  return {
    yanks: async (atomId) => new Map((await db.yanks(atomId)).map((y) => [y.version, { reason: y.reason }])),
    grafts: async (atomId, version) => {
      const views: GraftView[] = [];
      for (const g of await db.graftsOfAtom(atomId)) {
        if (g.version !== version) continue;
        const out = Object.entries(g.outputs)[0];
        const from = out ? (g.paths.find((p) => p.new === out[1])?.old ?? "") : "";
        views.push({
          name: g.replacements.map((r) => `${r.label} ${r.from} → ${r.to}`).join(", "),
          system: g.system,
          from,
          to: out?.[1] ?? "",
          createdAt: g.createdAt,
        });
      }
      return views;
    },
    jobs: {
      async list(state: JobState, limit: number, offset: number): Promise<JobView[]> {
        const rows = (await db.jobs.list({ state, limit: offset + limit })).slice(offset, offset + limit);
        return Promise.all(rows.map(async (j) => jobView(j, j.state === "failed" ? (await logText(db, j)).slice(-LIST_TAIL_BYTES) : null)));
      },
      async get(id: string): Promise<JobDetail | null> {
        if (!/^\d{1,15}$/.test(id)) return null;
        const j = await db.jobs.get(Number(id));
        if (!j) return null;
        const log = await logText(db, j);
        return { ...jobView(j, null), log: log.slice(-LOG_TAIL_BYTES), logTruncated: log.length > LOG_TAIL_BYTES };
      },
    },
  };
}
