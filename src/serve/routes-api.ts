/**
 * The JSON API under /api/v1, plus /healthz and /metrics. Reads are public; writes need `Authorization: Bearer
 * <token>`, scoped to set roots. Every write is checked completely before anything is stored, so a 4xx stores
 * nothing.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { CprError } from "../protocol/errors.js";
import { atomId, isAtomId } from "../protocol/id.js";
import { canonicalJson, configHash, parseBuildRecord, type BuildRecord } from "../protocol/build-record.js";
import { formatNarInfo, narInfoFingerprint, normalizeSha256, parseStorePath, type StorePath } from "../protocol/narinfo.js";
import { signDetached } from "../protocol/nix-key.js";
import { matches, parseRequirement, type Requirement } from "../protocol/requirement.js";
import { tryParseVersion } from "../protocol/version.js";
import { IngestError } from "./artifacts.js";
import { newestFirst, type PathRow, type VersionRow } from "./db.js";
import { sendError, type RegistryContext } from "./context.js";
import { atomJson, searchHitJson, setJson } from "./serialize.js";
import { HASH_PART } from "./routes-cache.js";
import { parseWith, resolveWith } from "./routes-grafts.js";
import { authorize } from "./tokens.js";

const ROOT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** Most store paths one `paths/missing` query may ask about. */
const MAX_MISSING_QUERY = 100_000;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A request body that must be a JSON object. */
export function jsonObject(body: unknown): Record<string, unknown> | null {
  return typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
}

export function apiRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get("/healthz", async (req, reply) => {
    try {
      await ctx.db.ping();
      return reply.header("cache-control", "no-store").send({ status: "ok" });
    } catch (e) {
      req.log.error({ err: message(e) }, "database unreachable");
      return reply
        .code(503)
        .header("cache-control", "no-store")
        .send({ status: "unavailable", error: `database unreachable: ${message(e)}` });
    }
  });

  app.get("/metrics", async (_req, reply) => {
    const text = await ctx.metrics.text();
    return reply.header("content-type", ctx.metrics.contentType).header("cache-control", "no-store").send(text);
  });

  // ── catalogue ──

  app.get<{ Querystring: { q?: string; limit?: string } }>("/api/v1/search", async (req, reply) => {
    const q = typeof req.query.q === "string" ? req.query.q.trim() : "";
    let limit = 20;
    if (req.query.limit !== undefined) {
      if (typeof req.query.limit !== "string" || !/^\d{1,6}$/.test(req.query.limit) || Number(req.query.limit) < 1) {
        return sendError(reply, 400, `limit must be a positive integer, got ${JSON.stringify(req.query.limit)}`);
      }
      limit = Math.min(Number(req.query.limit), 200);
    }
    if (q.length > 200) return sendError(reply, 400, "q is longer than 200 characters");
    const hits = await ctx.db.search(q, limit);
    return reply.send({ results: hits.map(searchHitJson) });
  });

  app.get<{ Params: { id: string } }>("/api/v1/atoms/:id", async (req, reply) => {
    const id = req.params.id;
    if (!isAtomId(id)) return sendError(reply, 400, `not an AtomId: ${JSON.stringify(id)}`);
    const found = await ctx.db.atom(id);
    if (!found) return sendError(reply, 404, `unknown atom ${id}`);
    const yanks = await ctx.db.yanks(id);
    return reply.send(atomJson(found.atom, newestFirst(found.versions), yanks));
  });

  app.get("/api/v1/sets", async (_req, reply) => {
    const sets = await ctx.db.listSets();
    return reply.send({ sets: sets.map(setJson) });
  });

  // The refresh request carries no body; whatever is sent (even an empty JSON body) is ignored.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, payload, done) => {
      payload.resume();
      done(null, undefined);
    });
    scope.post<{ Params: { root: string } }>("/api/v1/sets/:root/refresh", async (req, reply) => {
      const token = await authorize(ctx, req, reply);
      if (!token) return reply;
      if (token.scope === "worker") return sendError(reply, 403, "a worker token may not refresh sets");
      const root = req.params.root.toLowerCase();
      if (!ROOT.test(root) || !(await ctx.db.getSet(root))) return sendError(reply, 404, `unknown set ${req.params.root}`);
      if (!token.sets.includes(root)) return sendError(reply, 403, `this token may not write set ${root}`);
      try {
        const r = await ctx.catalogue.indexSet(root);
        return reply.send({ root: r.root, atoms: r.atoms, versions: r.versions, added: r.added });
      } catch (e) {
        req.log.error({ root, err: message(e) }, "refresh failed");
        return sendError(reply, 502, `indexing set ${root} failed: ${message(e)}`);
      }
    });
  });

  app.get<{ Params: { id: string; req: string }; Querystring: { system?: string; with?: string | string[] } }>(
    "/api/v1/resolve/:id/:req",
    async (req, reply) => {
      const id = req.params.id;
      if (!isAtomId(id)) return sendError(reply, 400, `not an AtomId: ${JSON.stringify(id)}`);
      const system = req.query.system;
      if (typeof system !== "string" || !/^[A-Za-z0-9_.+-]+-[A-Za-z0-9_.+-]+$/.test(system)) {
        return sendError(reply, 400, "the query parameter system is required, e.g. ?system=x86_64-linux");
      }
      let requirement: Requirement;
      try {
        requirement = parseRequirement(req.params.req);
      } catch (e) {
        return sendError(reply, 400, message(e));
      }
      const found = await ctx.db.atom(id);
      if (!found) return sendError(reply, 404, `unknown atom ${id}`);
      // ?with=<depId>@<version> (repeatable): a recorded graft onto those versions (routes-grafts.ts).
      if (req.query.with !== undefined) {
        const withs = parseWith(req.query.with);
        if (typeof withs === "string") return sendError(reply, 400, withs);
        const grafted = await resolveWith(ctx, id, requirement, system, withs);
        if (grafted) return reply.send(grafted);
        return sendError(
          reply,
          404,
          `no recorded graft of ${found.atom.label} ${requirement.text} for ${system} onto ${withs.map((w) => `${w.id}@${w.version}`).join(", ")}: ask for one with POST /api/v1/grafts (cpr graft)`,
        );
      }
      const builds = await ctx.db.builds(id, system);
      const matching = newestFirst(found.versions).filter((v) => {
        const parsed = tryParseVersion(v.version);
        return parsed !== null && matches(requirement, parsed);
      });
      // A yanked version is never chosen (as the resolver never picks one for a new lock).
      const yanked = new Set((await ctx.db.yanks(id)).map((y) => y.version));
      const candidates = matching.filter((v) => !yanked.has(v.version));
      for (const v of candidates) {
        const b = builds.find((x) => x.version === v.version && x.rev === v.rev);
        if (!b) continue;
        return reply.send({
          id,
          label: found.atom.label,
          set: found.atom.root,
          version: v.version,
          rev: v.rev,
          system: b.system,
          configHash: b.configHash,
          drv: b.drv,
          outputs: b.outputs,
          ...(b.mainProgram ? { mainProgram: b.mainProgram } : {}),
        });
      }
      const why =
        candidates.length === 0
          ? matching.length > 0
            ? `every version of ${found.atom.label} matching ${requirement.text} is yanked (${matching.map((v) => v.version).join(", ")})`
            : `no published version of ${found.atom.label} matches ${requirement.text}`
          : `no build for ${system} of ${found.atom.label} ${requirement.text} (versions ${candidates.map((v) => v.version).join(", ")})`;
      return sendError(reply, 404, why);
    },
  );

  // ── binary cache writes ──

  app.post("/api/v1/paths/missing", async (req, reply) => {
    const token = await authorize(ctx, req, reply);
    if (!token) return reply;
    const body = jsonObject(req.body);
    const paths = body?.paths;
    if (!Array.isArray(paths)) return sendError(reply, 400, 'the body must be {"paths": ["/nix/store/…", …]}');
    if (paths.length > MAX_MISSING_QUERY) return sendError(reply, 413, `at most ${MAX_MISSING_QUERY} paths per query`);
    const parsed: StorePath[] = [];
    for (const p of paths) {
      if (typeof p !== "string") return sendError(reply, 400, `paths must be strings, got ${JSON.stringify(p)}`);
      try {
        parsed.push(parseStorePath(p));
      } catch (e) {
        return sendError(reply, 400, message(e));
      }
    }
    const missing = new Set(await ctx.db.missingPaths([...new Set(parsed.map((p) => p.hash))]));
    const out: string[] = [];
    const seen = new Set<string>();
    for (const p of parsed) {
      if (missing.has(p.hash) && !seen.has(p.path)) {
        seen.add(p.path);
        out.push(p.path);
      }
    }
    return reply.send({ missing: out });
  });

  // Uploads: the body is the raw NAR, streamed into the artifact store, never buffered by a parser.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null, undefined));
    scope.put<{ Params: { hash: string } }>("/api/v1/paths/:hash", async (req, reply) => {
      const token = await authorize(ctx, req, reply);
      if (!token) return reply;
      const hash = req.params.hash;
      if (!HASH_PART.test(hash)) return sendError(reply, 400, `not a store path hash: ${JSON.stringify(hash)}`);
      let storePath: StorePath;
      let narHash: string;
      let narSize: number;
      const references: StorePath[] = [];
      let deriver: StorePath | null = null;
      try {
        const sp = header(req, "x-nix-store-path");
        if (!sp) throw new CprError("upload.header", "missing header X-Nix-Store-Path");
        storePath = parseStorePath(sp);
        if (storePath.hash !== hash)
          throw new CprError("upload.header", `X-Nix-Store-Path ${sp} does not have the hash part ${hash} of the URL`);
        const nh = header(req, "x-nix-nar-hash");
        if (!nh) throw new CprError("upload.header", "missing header X-Nix-Nar-Hash");
        narHash = normalizeSha256(nh, "X-Nix-Nar-Hash");
        const ns = header(req, "x-nix-nar-size");
        if (!ns || !/^\d{1,15}$/.test(ns))
          throw new CprError("upload.header", `X-Nix-Nar-Size must be a byte count, got ${JSON.stringify(ns ?? null)}`);
        narSize = Number(ns);
        const refs = header(req, "x-nix-references");
        if (refs === undefined)
          throw new CprError("upload.header", "missing header X-Nix-References (space-separated basenames, may be empty)");
        for (const r of refs.split(/\s+/).filter(Boolean)) references.push(parseStorePath(r, { basename: true }));
        const dv = header(req, "x-nix-deriver");
        if (dv) {
          deriver = parseStorePath(dv, { basename: true });
          if (!deriver.name.endsWith(".drv")) throw new CprError("upload.header", `X-Nix-Deriver must name a .drv, got ${dv}`);
        }
      } catch (e) {
        return sendError(reply, 400, message(e));
      }
      if (narSize > ctx.maxNarSize)
        return sendError(reply, 413, `the NAR (${narSize} bytes) is larger than this server accepts (${ctx.maxNarSize} bytes)`);

      const existing = await ctx.db.getPath(hash);
      if (existing) {
        if (existing.storePath !== storePath.path) return sendError(reply, 409, `${hash} is already in the cache as ${existing.storePath}`);
        drain(req);
        return reply.code(200).send({ narinfo: existing.narinfo });
      }
      const refHashes = [...new Set(references.map((r) => r.hash).filter((h) => h !== hash))];
      const missing = await ctx.db.missingPaths(refHashes);
      if (missing.length) {
        const names = references.filter((r) => missing.includes(r.hash)).map((r) => r.basename);
        return sendError(reply, 409, `references not in the cache yet (upload in dependency order): ${[...new Set(names)].join(" ")}`);
      }

      let nar;
      try {
        nar = await ctx.artifacts.ingest(req.raw, { storePath: storePath.path, narHash, narSize });
      } catch (e) {
        drain(req);
        if (e instanceof IngestError) return sendError(reply, e.status, e.message);
        throw e;
      }
      const refBasenames = [...new Set(references.map((r) => r.basename))].sort();
      const base = {
        storePath: storePath.path,
        url: nar.url,
        compression: nar.compression,
        fileHash: nar.fileHash,
        fileSize: nar.fileSize,
        narHash,
        narSize,
        references: refBasenames,
        deriver: deriver?.basename ?? null,
        system: null,
        ca: null,
      };
      const sig = signDetached(ctx.key.secret, narInfoFingerprint(base));
      const narinfo = formatNarInfo({ ...base, sigs: [sig] });
      const row: PathRow = {
        hashPart: hash,
        storePath: storePath.path,
        narHash,
        narSize,
        fileHash: nar.fileHash,
        fileSize: nar.fileSize,
        compression: nar.compression,
        url: nar.url,
        references: refBasenames,
        deriver: base.deriver,
        sigs: [sig],
        narinfo,
        createdAt: Date.now(),
      };
      if (!(await ctx.db.insertPath(row))) {
        const winner = await ctx.db.getPath(hash);
        return reply.code(200).send({ narinfo: winner?.narinfo ?? narinfo });
      }
      ctx.metrics.uploaded(narSize);
      req.log.info({ storePath: storePath.path, narSize, fileSize: nar.fileSize }, "path uploaded");
      return reply.code(201).send({ narinfo });
    });
  });

  // ── build records ──

  app.post("/api/v1/builds", async (req, reply) => {
    const token = await authorize(ctx, req, reply);
    if (!token) return reply;
    let rec: BuildRecord;
    let hash: string;
    try {
      rec = parseBuildRecord(req.body);
      hash = configHash(rec.config);
    } catch (e) {
      return sendError(reply, 400, message(e));
    }
    const root = rec.set.toLowerCase();
    let expectedId: string;
    try {
      expectedId = atomId(root, rec.label);
    } catch (e) {
      return sendError(reply, 400, message(e));
    }
    if (expectedId !== rec.id)
      return sendError(reply, 400, `id ${rec.id} is not the AtomId of ${rec.label} in set ${root} (that is ${expectedId})`);
    if (!(await ctx.db.getSet(root))) return sendError(reply, 404, `unknown set ${root}`);
    if (!token.sets.includes(root)) return sendError(reply, 403, `this token may not write set ${root}`);

    let published = await publishedVersion(ctx, rec.id, rec.version);
    if (!published || published.rev !== rec.rev) {
      // Maybe published after the last pass: re-index once.
      try {
        await ctx.catalogue.indexSet(root);
      } catch (e) {
        req.log.warn({ root, err: message(e) }, "re-indexing for a build record failed");
      }
      published = await publishedVersion(ctx, rec.id, rec.version);
    }
    if (!published) return sendError(reply, 422, `${rec.label} ${rec.version} is not published in set ${root}`);
    if (published.rev !== rec.rev) {
      return sendError(reply, 409, `${rec.label} ${rec.version} is published with rev ${published.rev}, not ${rec.rev}`);
    }
    const outputs = Object.entries(rec.outputs);
    const outPaths: StorePath[] = [];
    try {
      for (const [, p] of outputs) outPaths.push(parseStorePath(p));
    } catch (e) {
      return sendError(reply, 400, message(e));
    }
    const missing = new Set(await ctx.db.missingPaths([...new Set(outPaths.map((p) => p.hash))]));
    const absent = outputs.filter((_, i) => missing.has(outPaths[i]!.hash));
    if (absent.length) {
      return sendError(
        reply,
        409,
        `output paths not in the cache (upload them first): ${absent.map(([name, p]) => `${name}=${p}`).join(" ")}`,
      );
    }
    const buildId = await ctx.db.insertBuild({
      id: rec.id,
      version: rec.version,
      rev: rec.rev,
      system: rec.system,
      configHash: hash,
      config: canonicalJson(rec.config),
      drv: rec.drv,
      outputs: rec.outputs,
      mainProgram: rec.mainProgram ?? null,
      createdAt: Date.now(),
    });
    req.log.info({ buildId, id: rec.id, label: rec.label, version: rec.version, system: rec.system }, "build recorded");
    return reply.code(201).send({ buildId });
  });
}

/** The indexed row of (id, version), or null. */
async function publishedVersion(ctx: RegistryContext, id: string, version: string): Promise<VersionRow | null> {
  const found = await ctx.db.atom(id);
  return found?.versions.find((v) => v.version === version) ?? null;
}

/** Lets the rest of an unread request body flow away, so that the answer can be sent on a kept-alive connection. */
function drain(req: FastifyRequest): void {
  if (!req.raw.readableEnded && !req.raw.destroyed) req.raw.resume();
}
