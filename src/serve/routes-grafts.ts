/**
 * The graft API (docs/registry.md, "Grafts"; docs/grafts.md): `POST /api/v1/grafts` (Bearer token for the grafted
 * atom's set), `GET /api/v1/grafts/<graftId>`, `GET /api/v1/atoms/<id>/grafts`, and the answer of
 * `GET /api/v1/resolve/<id>/<req>?system=S&with=<depId>@<version>` (resolveWith, called by routes-api.ts).
 */
import type { FastifyInstance } from "fastify";
import { CprError } from "../protocol/errors.js";
import { isAtomId } from "../protocol/id.js";
import { matches, type Requirement } from "../protocol/requirement.js";
import { tryParseVersion } from "../protocol/version.js";
import { sendError, type RegistryContext } from "./context.js";
import { graftRecordDoc, GraftRequestError, parseGraftRequest, requestGraft, withKeyOf, type GraftRequest } from "./grafts.js";
import { authorize } from "./tokens.js";

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `with=<depId>@<version>` values (repeatable), or an error text. */
export function parseWith(value: unknown): { id: string; version: string }[] | string {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const out: { id: string; version: string }[] = [];
  for (const w of list) {
    const m = typeof w === "string" ? /^([^@]+)@(.+)$/.exec(w) : null;
    const v = m ? tryParseVersion(m[2]!) : null;
    if (!m || !isAtomId(m[1]!) || !v) return `with must be <AtomId>@<version>, got ${JSON.stringify(w)}`;
    out.push({ id: m[1]!, version: v.text });
  }
  return out;
}

/**
 * The resolve answer for `?with=`: the newest version of the atom matching `requirement` whose build for `system`
 * has a recorded graft onto exactly those dependency versions. Null when there is none.
 */
export async function resolveWith(
  ctx: RegistryContext,
  id: string,
  requirement: Requirement,
  system: string,
  withs: readonly { id: string; version: string }[],
): Promise<Record<string, unknown> | null> {
  const found = await ctx.db.atom(id);
  if (!found) return null;
  const key = withKeyOf(withs);
  const builds = await ctx.db.builds(id, system);
  for (const v of found.versions) {
    const parsed = tryParseVersion(v.version);
    if (!parsed || !matches(requirement, parsed)) continue;
    for (const b of builds.filter((x) => x.version === v.version && x.rev === v.rev)) {
      const g = (await ctx.db.graftsOfBuild(b.buildId)).find((x) => x.withKey === key);
      if (!g) continue;
      return {
        id,
        label: found.atom.label,
        set: found.atom.root,
        version: v.version,
        rev: v.rev,
        system: b.system,
        configHash: b.configHash,
        drv: b.drv,
        outputs: g.outputs,
        graft: graftRecordDoc(g, found.atom.label),
      };
    }
  }
  return null;
}

export function graftRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.post("/api/v1/grafts", async (req, reply) => {
    let request: GraftRequest;
    try {
      request = parseGraftRequest(req.body);
    } catch (e) {
      return sendError(reply, 400, message(e));
    }
    // A dry run reads and writes nothing: it needs no token.
    if (!request.dryRun) {
      const token = await authorize(ctx, req, reply);
      if (!token) return reply;
      if (token.scope === "worker") return sendError(reply, 403, "a worker token may not ask for grafts");
      const atom = await ctx.db.atom(request.id);
      if (!atom) return sendError(reply, 404, `unknown atom ${request.id}`);
      if (!token.sets.includes(atom.atom.root)) return sendError(reply, 403, `this token may not write set ${atom.atom.root}`);
    }
    try {
      const outcome = await requestGraft(ctx, request);
      if (outcome.status === 422) {
        const reasons = outcome.doc.refusals;
        return reply
          .code(422)
          .header("cache-control", "no-store")
          .send({ error: `the graft is refused: ${reasons.map((r) => r.message).join("; ")}`, reasons, ...outcome.doc });
      }
      if (outcome.status === 201)
        req.log.info({ graftId: outcome.doc.graftId, id: request.id, version: outcome.doc.atom.version }, "graft recorded");
      return reply.code(outcome.status).send(outcome.doc);
    } catch (e) {
      if (e instanceof GraftRequestError) return sendError(reply, e.status, e.message);
      req.log.error({ err: message(e) }, "graft failed");
      const code = e instanceof CprError ? ` (${e.code})` : "";
      return sendError(reply, 500, `the graft failed${code}: ${message(e)}`);
    }
  });

  app.get<{ Params: { graftId: string } }>("/api/v1/grafts/:graftId", async (req, reply) => {
    if (!/^\d{1,15}$/.test(req.params.graftId)) return sendError(reply, 400, `not a graft id: ${JSON.stringify(req.params.graftId)}`);
    const g = await ctx.db.graft(Number(req.params.graftId));
    if (!g) return sendError(reply, 404, `no graft ${req.params.graftId}`);
    const atom = await ctx.db.atom(g.id);
    return reply.send(graftRecordDoc(g, atom?.atom.label ?? g.id));
  });

  app.get<{ Params: { id: string } }>("/api/v1/atoms/:id/grafts", async (req, reply) => {
    const id = req.params.id;
    if (!isAtomId(id)) return sendError(reply, 400, `not an AtomId: ${JSON.stringify(id)}`);
    const atom = await ctx.db.atom(id);
    if (!atom) return sendError(reply, 404, `unknown atom ${id}`);
    const grafts = await ctx.db.graftsOfAtom(id);
    return reply.send({ grafts: grafts.map((g) => graftRecordDoc(g, atom.atom.label)) });
  });
}
