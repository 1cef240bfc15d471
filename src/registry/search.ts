/**
 * `cpr search`: every configured registry's catalogue, plus the sets listed in config `registry.sets` read directly
 * (ls-refs for the versions, the newest version's manifest blob for description and tags, fetched into the shared
 * cache), merged by AtomId. Label, description and tags match case-insensitively; exact label matches come first.
 */
import type { Cache } from "../git/cache.js";
import { parseRemoteUrl } from "../git/remote.js";
import { listRemoteSet } from "../git/remote-set.js";
import { CprError } from "../protocol/errors.js";
import { atomId } from "../protocol/id.js";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import { manifestRef } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import { compareVersions, tryParseVersion } from "../protocol/version.js";
import type { RegistryClient, SearchResult } from "./client.js";

/** A search result as the API answers it (`versions`: every version any source knows, newest first), merged. */
export interface SearchHit extends SearchResult {
  /** Where it was found: registry URLs and set mirror URLs. */
  readonly sources: readonly string[];
}

export interface SearchFailure {
  readonly source: string;
  readonly error: string;
}

export interface SearchContext {
  readonly cache: Cache;
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly reporter?: Reporter;
}

/** Case-insensitive match of `text` in the label, the description or a tag. */
export function matchesText(text: string, a: { label: string; description: string | null; tags: readonly string[] }): boolean {
  const q = text.toLowerCase();
  return (
    a.label.toLowerCase().includes(q) || (a.description ?? "").toLowerCase().includes(q) || a.tags.some((t) => t.toLowerCase().includes(q))
  );
}

/** The atoms of one set matching `text`, read over git (no server). */
export async function searchSet(ctx: SearchContext, mirror: string, text: string): Promise<SearchHit[]> {
  const url = parseRemoteUrl(mirror, ctx.cwd, "set");
  const { listing } = await listRemoteSet(url, undefined, { env: ctx.env, reporter: ctx.reporter, cwd: ctx.cwd });
  if (listing.root === null)
    throw new CprError("search.not-initialized", `${url.url} is not an initialized atom set (it has no refs/ekala/init)`, {
      where: url.url,
    });
  const root = listing.root;
  const byLabel = new Map<string, { version: string; manifest: string | null }[]>();
  for (const a of listing.atoms) {
    if (a.format !== "pre1" || !tryParseVersion(a.version)) continue;
    byLabel.set(a.label, [...(byLabel.get(a.label) ?? []), { version: a.version, manifest: a.manifest }]);
  }
  const newest = [...byLabel].map(([label, vs]) => {
    const sorted = vs.sort((x, y) => compareVersions(tryParseVersion(y.version)!, tryParseVersion(x.version)!));
    return { label, versions: sorted.map((v) => v.version), top: sorted[0]! };
  });
  // The newest manifests, fetched in one git fetch when the cache lacks them.
  const blobs = newest.map((n) => n.top.manifest).filter((m): m is string => m !== null);
  const have = await ctx.cache.has(blobs);
  const missing = newest.filter((n) => n.top.manifest !== null && !have.has(n.top.manifest));
  if (missing.length)
    await ctx.cache.fetchRefs(
      url.url,
      missing.map((n) => manifestRef(n.label, n.top.version)),
      { env: ctx.env },
    );
  const read = await ctx.cache.repo.readObjects(blobs);
  const objects = new Map(blobs.map((b, i) => [b, read[i]]));
  const hits: SearchHit[] = [];
  newest.forEach((n) => {
    const o = n.top.manifest === null ? undefined : objects.get(n.top.manifest);
    let description: string | null = null;
    let tags: readonly string[] = [];
    if (o?.type === "blob") {
      try {
        const m = parseAtomManifest(Buffer.from(o.data).toString("utf8"), `${url.url} ${manifestRef(n.label, n.top.version)}`, "publish");
        description = m.package.description;
        tags = m.package.tags;
      } catch {
        /* an unreadable manifest still lists the atom, without description */
      }
    }
    const hit = { id: atomId(root, n.label), label: n.label, set: root, description, tags, versions: n.versions, sources: [url.url] };
    if (matchesText(text, hit)) hits.push(hit);
  });
  return hits;
}

/** Queries every registry and set; a source that fails is reported in `failures`, the others still answer. */
export async function searchEverywhere(
  ctx: SearchContext,
  text: string,
  sources: { readonly registries: readonly RegistryClient[]; readonly sets: readonly string[]; readonly limit?: number },
): Promise<{ hits: SearchHit[]; failures: SearchFailure[] }> {
  const failures: SearchFailure[] = [];
  const lists = await Promise.all([
    ...sources.registries.map(async (c): Promise<SearchHit[]> => {
      try {
        const results = await c.search(text, sources.limit);
        return results.map((r) => ({
          id: r.id,
          label: r.label,
          set: r.set,
          description: r.description ?? null,
          tags: r.tags ?? [],
          versions: r.versions ?? [],
          sources: [c.url],
        }));
      } catch (e) {
        failures.push({ source: c.url, error: e instanceof Error ? e.message : String(e) });
        return [];
      }
    }),
    ...sources.sets.map(async (mirror): Promise<SearchHit[]> => {
      try {
        return await searchSet(ctx, mirror, text);
      } catch (e) {
        failures.push({ source: mirror, error: e instanceof Error ? e.message : String(e) });
        return [];
      }
    }),
  ]);
  return { hits: mergeHits(lists.flat(), text), failures };
}

/** Merges hits by AtomId (versions united, newest first; the first description and tags found) and sorts them. */
export function mergeHits(hits: readonly SearchHit[], text: string): SearchHit[] {
  const byId = new Map<string, SearchHit>();
  for (const h of hits) {
    const had = byId.get(h.id);
    if (!had) {
      byId.set(h.id, { ...h, versions: [...h.versions], sources: [...h.sources] });
      continue;
    }
    const versions = [...new Set([...had.versions, ...h.versions])];
    byId.set(h.id, {
      ...had,
      description: had.description ?? h.description,
      tags: had.tags.length ? had.tags : h.tags,
      versions,
      sources: [...new Set([...had.sources, ...h.sources])],
    });
  }
  const q = text.toLowerCase();
  const newestFirst = (vs: readonly string[]) =>
    [...vs].sort((a, b) => {
      const va = tryParseVersion(a);
      const vb = tryParseVersion(b);
      return va && vb ? compareVersions(vb, va) : a < b ? 1 : -1;
    });
  return [...byId.values()]
    .map((h) => ({ ...h, versions: newestFirst(h.versions) }))
    .sort((a, b) => {
      const ea = a.label.toLowerCase() === q ? 0 : 1;
      const eb = b.label.toLowerCase() === q ? 0 : 1;
      if (ea !== eb) return ea - eb;
      if (a.label !== b.label) return a.label < b.label ? -1 : 1;
      return a.set < b.set ? -1 : a.set > b.set ? 1 : 0;
    });
}
