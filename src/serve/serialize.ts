/**
 * The JSON shapes of the catalogue, one function per shape: the API (routes-api.ts) and the pages' JSON answers
 * (pages/, content negotiation) both serialize through here, so a page and the API never disagree.
 */
import { redactUrl } from "../protocol/uri.js";
import type { AtomRow, BuildRow, SearchHit, SetRow } from "./db.js";

/** A search result, as in `GET /api/v1/search`. */
export function searchHitJson(h: SearchHit) {
  return { id: h.id, label: h.label, set: h.root, description: h.description, tags: h.tags, versions: h.versions };
}

/** A set, as in `GET /api/v1/sets` (mirror URLs without credentials). */
export function setJson(s: SetRow) {
  return {
    root: s.root,
    mirrors: s.mirrors.map(redactUrl),
    indexedAt: s.indexedAt === null ? null : new Date(s.indexedAt).toISOString(),
  };
}

/** An atom with its versions (in the order given), as in `GET /api/v1/atoms/<id>`; `manifest` only where present. */
export function atomJson<V extends { version: string; rev: string; origin: string | null; manifest?: string }>(
  atom: AtomRow,
  versions: readonly V[],
  yanks: readonly { readonly version: string; readonly reason: string | null }[],
) {
  const yanked = new Map(yanks.map((y) => [y.version, y.reason]));
  return {
    id: atom.id,
    label: atom.label,
    set: atom.root,
    description: atom.description,
    tags: atom.tags,
    versions: versions.map((v) => ({
      version: v.version,
      rev: v.rev,
      origin: v.origin,
      ...(v.manifest === undefined ? {} : { manifest: v.manifest }),
      yanked: yanked.has(v.version) ? { reason: yanked.get(v.version)! } : null,
    })),
  };
}

/** A build record as the API's resolve answers it (without the label and set, which the caller adds). */
export function buildJson(b: BuildRow) {
  return {
    buildId: b.buildId,
    version: b.version,
    rev: b.rev,
    system: b.system,
    configHash: b.configHash,
    drv: b.drv,
    outputs: b.outputs,
    createdAt: new Date(b.createdAt).toISOString(),
  };
}
