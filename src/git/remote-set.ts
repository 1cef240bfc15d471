import { lsRefs, type LsRefsOptions } from "./lsrefs.js";
import { groupListing, listingPrefixes, type ListedSet } from "../protocol/refs.js";
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
