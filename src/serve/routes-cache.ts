/**
 * The Nix binary cache protocol: `/nix-cache-info`, `/<hash>.narinfo` and `/nar/<file>`.
 *
 * The narinfo is rendered and signed once, when the path is inserted, and stored with the row: a lookup is one
 * primary-key read of that text. A row never changes once visible, so positive answers are kept in a bounded
 * in-process cache (narinfo-cache.ts; a miss is never cached: the path may be uploaded through another server a moment later).
 *
 * `/nar/…` streams the file from the storage (the data directory or S3, artifacts.ts). A file that a narinfo names
 * but the storage does not have is a 500 with `registry.storage-missing` and an error log line (the registry lost
 * it; a 404 would tell Nix it was never there); storage that does not answer is a 503; a name no narinfo has is a 404.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { CprError } from "../protocol/errors.js";
import { sendError, type RegistryContext } from "./context.js";

export const NIX_CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n";

/** A nix32 hash part: 32 characters of Nix's base-32 alphabet (no e, o, u, t). */
export const HASH_PART = /^[0-9a-df-np-sv-z]{32}$/;

const NAR_FILE = /^[0-9a-df-np-sv-z]{52}\.nar(?:\.xz|\.zst|\.bz2)?$/;

export function cacheRoutes(app: FastifyInstance, ctx: RegistryContext): void {
  app.get("/nix-cache-info", (_req, reply) => {
    void reply.header("content-type", "text/x-nix-cache-info").send(NIX_CACHE_INFO);
  });

  // Hot path: a cache hit is answered synchronously (no promise, no database); a miss is one primary-key read.
  const sendNarinfo = (reply: FastifyReply, text: string): void => {
    void reply.header("content-type", "text/x-nix-narinfo").header("cache-control", "public, max-age=86400").send(text);
  };
  app.get<{ Params: { hash: string } }>("/:hash.narinfo", (req, reply) => {
    const hash = req.params.hash;
    const cached = ctx.narinfoCache.get(hash);
    if (cached !== undefined) {
      ctx.metrics.narinfoCache(true);
      sendNarinfo(reply, cached);
      return;
    }
    if (!HASH_PART.test(hash)) {
      void sendError(reply, 404, `not a store path hash: ${hash}`);
      return;
    }
    ctx.metrics.narinfoCache(false);
    return ctx.db.getNarinfo(hash).then((text) => {
      if (text === null) return sendError(reply, 404, `no such path: ${hash}`);
      ctx.narinfoCache.set(hash, text);
      sendNarinfo(reply, text);
      return reply;
    });
  });

  // GET and HEAD (HEAD answers the file's length without reading it).
  app.route<{ Params: { file: string } }>({
    method: ["GET", "HEAD"],
    url: "/nar/:file",
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const name = req.params.file;
      if (!NAR_FILE.test(name)) return sendError(reply, 404, `no such file: nar/${name}`);
      const url = `nar/${name}`;
      let file;
      try {
        file = await ctx.artifacts.open(url, { head: req.method === "HEAD" });
      } catch (e) {
        // The storage did not answer, or refused: the file may well exist, so not a 404 (Nix would call it absent).
        const code = e instanceof CprError ? e.code : "internal";
        req.log.error(
          { err: e, url, storage: ctx.artifacts.description, code },
          `cannot read ${url}: ${e instanceof Error ? e.message : String(e)}`,
        );
        // The storage's address and answer go to the log (for the operator), not to every client.
        return sendError(
          reply,
          503,
          `cannot read nar/${name}: the registry's NAR storage is unavailable (${code}); the server's log has the details`,
        );
      }
      if (!file) {
        if (await ctx.db.hasNarUrl(url)) {
          const err = new CprError(
            "registry.storage-missing",
            `nar/${name} is named by a narinfo but is missing from ${ctx.artifacts.description}`,
            {
              where: url,
              hint: "restore the file from a backup (or copy the path again after removing its row): the registry never deletes NARs",
            },
          );
          req.log.error({ err, url, storage: ctx.artifacts.description, code: err.code }, err.message);
          return sendError(
            reply,
            500,
            `nar/${name} is named by a narinfo but is missing from the registry's storage (${err.code}); the server's log has the details`,
          );
        }
        return sendError(reply, 404, `no such file: nar/${name}`);
      }
      void reply
        .header("content-type", "application/x-nix-nar")
        .header("content-length", file.size)
        .header("cache-control", "public, max-age=31536000, immutable");
      if (req.method === "HEAD" || !file.body) return reply.send();
      return reply.send(file.body);
    },
  });
}
