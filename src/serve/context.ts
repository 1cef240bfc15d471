/**
 * What the routes of the registry server share (routes-cache.ts, routes-api.ts): the context built once at start
 * (serve.ts) and handed to every route by server.ts, and the one way every route answers an error. Routes import
 * this module, never server.ts, so the application and its routes do not import each other.
 */
import type { FastifyReply } from "fastify";
import type { NarStorage } from "./artifacts.js";
import type { Catalogue } from "./catalogue.js";
import type { RegistryDb } from "./db.js";
import type { Farm } from "./farm.js";
import type { SigningKey } from "./keys.js";
import type { Metrics } from "./metrics.js";
import type { NarInfoCache } from "./narinfo-cache.js";

/** Everything the routes share. Servers keep no state of their own beyond immutable caches (narinfoCache). */
export interface RegistryContext {
  readonly db: RegistryDb;
  /** Where NARs are kept: the data directory, or S3 (artifacts-s3.ts). */
  readonly artifacts: NarStorage;
  readonly key: SigningKey;
  readonly catalogue: Catalogue;
  readonly metrics: Metrics;
  readonly narinfoCache: NarInfoCache;
  /** Largest NAR an upload may declare, in bytes. */
  readonly maxNarSize: number;
  /** The build farm: policy, leases (farm.ts). */
  readonly farm: Farm;
}

/** Sends `{"error": message}` with `status`. */
export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header("cache-control", "no-store").send({ error: message });
}
