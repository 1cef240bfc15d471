import { lsRefs, UploadPackConnection, type LsRefsOptions } from "./lsrefs.js";
import { groupListing, listingPrefixes, type ListedAtom, type ListedSet } from "../protocol/refs.js";
import { parseYankRecord, yankRef, type YankRecord } from "../protocol/yank.js";
import type { GitUrl } from "../protocol/uri.js";

/**
 * Listing a remote set: ONE ls-refs exchange with prefixes narrowed to the labels asked for (or the whole atom
 * namespace when there are very many, or none were given), grouped into atoms by (label, version).
 */

/** Above this many labels, ask for the whole namespace instead of one prefix per label. */
const MAX_NARROWED_LABELS = 2000;

export interface RemoteSet {
  readonly listing: ListedSet;
  /** Every listed ref (lsRefs keeps only those matching the prefixes): name → direct object id. */
  readonly refs: ReadonlyMap<string, string>;
}

export interface ListOptions extends LsRefsOptions {
  /** Also list the legacy `refs/atoms/` layouts (default false). */
  legacy?: boolean;
}

/** List the atoms of `labels` (all atoms when omitted) on a remote, with its `refs/ekala/init`. */
export async function listRemoteSet(url: GitUrl, labels: readonly string[] | undefined, opts: ListOptions = {}): Promise<RemoteSet> {
  const narrowed = labels !== undefined && labels.length <= MAX_NARROWED_LABELS ? labels : undefined;
  const prefixes = listingPrefixes(narrowed, { meta: true, legacy: opts.legacy ?? false });
  const { refs } = await lsRefs(url, prefixes, opts);
  return { listing: groupListing(refs, labels), refs: new Map(refs.map((r) => [r.name, r.oid])) };
}

/** A listed version's yank record, read: the record, or why it could not be read. */
export type YankInfo = { readonly record: YankRecord; readonly error: null } | { readonly record: null; readonly error: string };

/**
 * The yank records (docs/formats.md §15.5) of the yanked versions in `atoms`, keyed `label@version`: their blobs
 * fetched by id on ONE connection (our protocol v2 fetch, nothing written anywhere). A server that cannot fetch that
 * way, or a record that does not parse, gives an error text instead of a record.
 */
export async function readYanks(url: GitUrl, atoms: readonly ListedAtom[], opts: LsRefsOptions = {}): Promise<Map<string, YankInfo>> {
  const out = new Map<string, YankInfo>();
  const yanked = atoms.filter((a) => a.yank !== null);
  if (yanked.length === 0) return out;
  let texts = new Map<string, string>();
  let failure: string | null = null;
  try {
    const conn = await UploadPackConnection.open(url, opts);
    try {
      if (!conn.canFetch) failure = "the server cannot send single objects (git protocol v2 fetch)";
      else {
        const { objects } = await conn.fetchObjects([...new Set(yanked.map((a) => a.yank!))], { maxPackBytes: 16 << 20 });
        texts = new Map([...objects.values()].map((o) => [o.oid, o.data.toString("utf8")]));
      }
    } finally {
      await conn.close();
    }
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
  }
  for (const a of yanked) {
    const key = `${a.label}@${a.version}`;
    const text = texts.get(a.yank!);
    if (text === undefined) {
      out.set(key, { record: null, error: failure ?? `the record ${a.yank!} was not received` });
      continue;
    }
    try {
      out.set(key, { record: parseYankRecord(text, yankRef(a.label, a.version)), error: null });
    } catch (e) {
      out.set(key, { record: null, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}
