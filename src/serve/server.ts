/**
 * The registry's HTTP application (fastify 5): the Nix binary cache (routes-cache.ts), the JSON API
 * (routes-api.ts) and the web pages (pages/routes.ts), with one JSON request log line per request, Prometheus metrics by route pattern and status, and
 * errors always as `{"error": "<message>"}`.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { CprError } from "../protocol/errors.js";
import { sendError, type RegistryContext } from "./context.js";
import { apiRoutes } from "./routes-api.js";
import { cacheRoutes } from "./routes-cache.js";
import { graftRoutes } from "./routes-grafts.js";
import { jobRoutes } from "./routes-jobs.js";
import type { PageHooks } from "./pages/hooks.js";
import { pageRoutes } from "./pages/routes.js";
import { databasePageHooks } from "./page-hooks.js";

export interface ServerOptions {
  /** false: no request log; a stream: JSON lines there; true/undefined: JSON lines on stderr. */
  readonly log?: boolean | NodeJS.WritableStream;
  /** Largest JSON request body, in bytes (413 above it). */
  readonly jsonBodyLimit?: number;
  /** What yanks, grafts and the build farm give the web pages (pages/hooks.ts). */
  readonly pages?: PageHooks;
}

/** Default largest JSON body: 8 MiB (a `paths/missing` query of ~100k paths). */
export const DEFAULT_JSON_BODY_LIMIT = 8 * 1024 * 1024;

/** Builds the application (not listening yet). */
export function buildServer(ctx: RegistryContext, opts: ServerOptions = {}): FastifyInstance {
  const logging = opts.log !== false;
  const app = Fastify({
    logger: logging ? { level: "info", stream: opts.log === true || opts.log === undefined ? process.stderr : opts.log } : false,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.jsonBodyLimit ?? DEFAULT_JSON_BODY_LIMIT,
    exposeHeadRoutes: true,
    // URL-encoded requirements in /api/v1/resolve/<id>/<req> may be long.
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
  });

  // One log line and one metrics observation per answered request.
  app.addHook("onResponse", (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const route = req.routeOptions.url ?? "unmatched";
    const seconds = reply.elapsedTime / 1000;
    ctx.metrics.observe(req.method, route, reply.statusCode, seconds);
    if (logging) {
      req.log.info(
        { method: req.method, url: req.url, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 },
        "request",
      );
    }
    done();
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    // The NAR storage (S3) not answering or refusing is the server's dependency being unavailable: 503, as for the database.
    const storage = err instanceof CprError && (err.code === "registry.storage-unreachable" || err.code === "registry.storage-error");
    const status = storage
      ? 503
      : typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 600
        ? err.statusCode
        : 500;
    if (status >= 500) req.log.error({ err }, "request failed");
    let text = err.message;
    // The storage's address and answer are for the operator (the log line above), not for every client.
    if (storage) text = `the registry's NAR storage is unavailable (${err.code}); the server's log has the details`;
    else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") text = "request body too large";
    else if (status === 400 && err instanceof SyntaxError) text = `malformed JSON body: ${err.message}`;
    void sendError(reply, status, text);
  });
  app.setNotFoundHandler((req, reply) => {
    void sendError(reply, 404, `not found: ${req.method} ${req.url.split("?")[0]}`);
  });

  // JSON only (a text/plain body is 415, not a string handed to a route).
  app.removeContentTypeParser("text/plain");

  cacheRoutes(app, ctx);
  apiRoutes(app, ctx);
  graftRoutes(app, ctx);
  jobRoutes(app, ctx);
  pageRoutes(app, ctx, opts.pages ?? databasePageHooks(ctx.db));
  return app;
}
