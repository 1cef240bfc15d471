/**
 * The registry's web pages, served by `cpr serve` itself: `/` (home), `/search?q=`, `/sets/<root>`,
 * `/atoms/<AtomId>[/<version>]`, `/jobs`, `/jobs/<id>`, and their static files under `/static/`. Every page URL
 * answers JSON (the page's view, data.ts) when the request prefers `application/json`, else HTML. Pages carry a
 * strict Content-Security-Policy: scripts and styles from this server's files only, nothing inline.
 *
 * server.ts registers these with `pageRoutes(app, ctx, hooks)`; `hooks` (hooks.ts) is where yanks, grafts and the
 * build farm's jobs plug in.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isAtomId } from "../../protocol/id.js";
import type { RegistryContext } from "../context.js";
import { atomView, ClosureCache, homeView, searchView, setView } from "./data.js";
import type { PageHooks } from "./hooks.js";
import { loadAssets } from "./assets.js";
import { isJobState, jobsView, renderJob, renderJobs } from "./jobs.js";
import { renderAtom, renderError, renderHome, renderSearch, renderSet } from "./render.js";

/** The pages' Content-Security-Policy: nothing inline, nothing from elsewhere. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ROOT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** Highest page number a query may ask for (deeper pages: narrow the search). */
const MAX_PAGE = 1000;

/** Whether the request prefers JSON to HTML (by Accept q-values; equal or absent: HTML). */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  let json = 0;
  let htmlQ = 0;
  for (const part of accept.split(",")) {
    const [type, ...params] = part.trim().toLowerCase().split(";");
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === "application/json") json = Math.max(json, q);
    else if (type === "text/html" || type === "application/xhtml+xml") htmlQ = Math.max(htmlQ, q);
  }
  return json > htmlQ;
}

/** A page number from the query (1 when absent), or null when it is not one. */
function pageParam(v: unknown): number | null {
  if (v === undefined) return 1;
  if (typeof v !== "string" || !/^[1-9]\d{0,5}$/.test(v)) return null;
  const n = Number(v);
  return n <= MAX_PAGE ? n : null;
}

export function pageRoutes(app: FastifyInstance, ctx: RegistryContext, hooks: PageHooks = {}): void {
  const { files, urls: assets } = loadAssets();
  const closures = new ClosureCache();

  const headers = (reply: FastifyReply, json: boolean): FastifyReply =>
    reply
      .header("vary", "Accept")
      .header("cache-control", "no-cache")
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("content-security-policy", json ? "default-src 'none'; frame-ancestors 'none'" : PAGE_CSP);

  /** Answers `view` as JSON or as the HTML `render` makes of it. */
  const answer = <V>(req: FastifyRequest, reply: FastifyReply, view: V, render: (v: V) => string): FastifyReply => {
    const json = wantsJson(req.headers.accept);
    headers(reply, json);
    if (json) return reply.send(view);
    return reply.type("text/html; charset=utf-8").send(render(view));
  };

  /** An error, as `{"error"}` JSON or as an HTML page. */
  const fail = (req: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply => {
    const json = wantsJson(req.headers.accept);
    headers(reply, json).header("cache-control", "no-store").code(status);
    if (json) return reply.send({ error: message });
    return reply.type("text/html; charset=utf-8").send(renderError(status, message, assets));
  };

  app.get<{ Params: { name: string }; Querystring: { v?: string } }>("/static/:name", async (req, reply) => {
    const f = files.get(req.params.name);
    if (!f) return fail(req, reply, 404, `no static file ${req.params.name}`);
    return reply
      .type(f.type)
      .header("x-content-type-options", "nosniff")
      .header("cache-control", req.query.v === f.hash ? "public, max-age=31536000, immutable" : "no-cache")
      .header("etag", `"${f.hash}"`)
      .send(f.body);
  });

  app.get("/", async (req, reply) => answer(req, reply, await homeView(ctx.db), (v) => renderHome(v, assets)));

  app.get<{ Querystring: { q?: string; page?: string } }>("/search", async (req, reply) => {
    const q = typeof req.query.q === "string" ? req.query.q.trim() : "";
    if (q.length > 200) return fail(req, reply, 400, "the search text is longer than 200 characters");
    const page = pageParam(req.query.page);
    if (page === null) return fail(req, reply, 400, `page must be a number from 1 to ${MAX_PAGE}`);
    return answer(req, reply, await searchView(ctx.db, q, page), (v) => renderSearch(v, assets));
  });

  app.get<{ Params: { root: string }; Querystring: { page?: string } }>("/sets/:root", async (req, reply) => {
    const root = req.params.root.toLowerCase();
    if (!ROOT.test(root)) return fail(req, reply, 404, `not a set root: ${req.params.root}`);
    const page = pageParam(req.query.page);
    if (page === null) return fail(req, reply, 400, `page must be a number from 1 to ${MAX_PAGE}`);
    const view = await setView(ctx.db, root, page);
    if (!view) return fail(req, reply, 404, `this registry does not index set ${root}`);
    return answer(req, reply, view, (v) => renderSet(v, assets));
  });

  const atomPage = async (
    req: FastifyRequest<{ Params: { id: string; version?: string }; Querystring: { dependents?: string; versions?: string } }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> => {
    const { id, version } = req.params;
    if (!isAtomId(id)) return fail(req, reply, 404, `not an AtomId: ${id}`);
    const dependentsPage = pageParam(req.query.dependents);
    if (dependentsPage === null) return fail(req, reply, 400, `dependents must be a page number from 1 to ${MAX_PAGE}`);
    const view = await atomView(
      ctx.db,
      hooks,
      id,
      {
        version: version ?? null,
        dependentsPage,
        allVersions: req.query.versions === "all",
        registry: `${req.protocol}://${req.host}`,
      },
      closures,
    );
    if (!view) return fail(req, reply, 404, version === undefined ? `unknown atom ${id}` : `unknown version ${version} of atom ${id}`);
    return answer(req, reply, view, (v) => renderAtom(v, assets));
  };
  app.get("/atoms/:id", atomPage);
  app.get("/atoms/:id/:version", atomPage);

  app.get<{ Querystring: { state?: string; page?: string } }>("/jobs", async (req, reply) => {
    const state = req.query.state ?? null;
    if (state !== null && !isJobState(state)) return fail(req, reply, 400, `unknown job state ${state}`);
    const page = pageParam(req.query.page);
    if (page === null) return fail(req, reply, 400, `page must be a number from 1 to ${MAX_PAGE}`);
    return answer(req, reply, await jobsView(hooks.jobs, state, page), (v) => renderJobs(v, assets));
  });

  app.get<{ Params: { id: string } }>("/jobs/:id", async (req, reply) => {
    if (!hooks.jobs) return fail(req, reply, 404, "the build farm is not enabled on this registry");
    const job = await hooks.jobs.get(req.params.id);
    if (!job) return fail(req, reply, 404, `unknown job ${req.params.id}`);
    return answer(req, reply, job, (v) => renderJob(v, assets));
  });
}
