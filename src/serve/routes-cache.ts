/**
 * The Nix binary cache protocol: `/nix-cache-info`, `/<hash>.narinfo` and `/nar/<file>`.
 *
 * The narinfo is rendered and signed once, when the path is inserted, and stored with the row: a lookup is one
 * primary-key read of that text. A row never changes once visible, so positive answers are kept in a bounded
 * in-process cache (narinfo-cache.ts; a miss is never cached: the path may be uploaded through another server a moment later).
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { FastifyInstance, FastifyReply } from "fastify";
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
      const file = NAR_FILE.test(name) ? ctx.artifacts.filePath(`nar/${name}`) : null;
      if (!file) return sendError(reply, 404, `no such file: nar/${name}`);
      let size: number;
      try {
        const st = await stat(file);
        if (!st.isFile()) return sendError(reply, 404, `no such file: nar/${name}`);
        size = st.size;
      } catch {
        return sendError(reply, 404, `no such file: nar/${name}`);
      }
      void reply
        .header("content-type", "application/x-nix-nar")
        .header("content-length", size)
        .header("cache-control", "public, max-age=31536000, immutable");
      if (req.method === "HEAD") return reply.send();
      return reply.send(createReadStream(file));
    },
  });
}
