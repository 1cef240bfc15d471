/**
 * Ref names (spec §6) and grouping an ls-refs listing into atoms. Refs that do not parse are skipped and counted,
 * never a crash.
 */

export const INIT_REF = "refs/ekala/init";
export const ATOMS_PREFIX = "refs/eka/atoms/";
export const META_PREFIX = "refs/eka/meta/";
export const LEGACY_ATOMS_PREFIX = "refs/atoms/";

export declare function atomRef(label: string, version: string): string;
export declare function manifestRef(label: string, version: string): string;
export declare function originRef(label: string, version: string): string;
/** git check-ref-format rules (e.g. no component ending in `.lock`, no `..`, no control chars, no `~^:?*[\\`). */
export declare function isValidRefName(name: string): boolean;

/** A ref as listed by ls-refs. */
export interface ListedRef {
  readonly name: string;
  readonly oid: string;
  /** `peeled:` id when the ref points at a tag object. */
  readonly peeled?: string | undefined;
}

export interface ListedAtom {
  readonly label: string;
  readonly version: string;
  /** Atom commit (peeled id when present). */
  readonly rev: string;
  /** Blob id from refs/eka/meta/<label>/<version>/manifest, if listed. */
  readonly manifest: string | null;
  /** Origin commit from refs/eka/meta/<label>/<version>/origin, if listed. */
  readonly origin: string | null;
  /** Ref layout: `pre1` for refs/eka/atoms/…, `legacy` for refs/atoms/… layouts. */
  readonly format: "pre1" | "legacy";
}

export interface ListedSet {
  /** Direct value of refs/ekala/init, or null when the remote is not initialised. */
  readonly root: string | null;
  /** True when refs/ekala/init was advertised with a peeled id (an annotated tag: invalid marker). */
  readonly rootIsTag: boolean;
  /** Sorted by label (UTF-8 byte order), then semver. */
  readonly atoms: readonly ListedAtom[];
  /** Refs under the atom prefixes that did not parse (bad label/version/shape). */
  readonly skipped: number;
}

/**
 * Group a listing into atoms. `labels`, when given, keeps only those labels (the server may send more than asked).
 * The same (label, version) under both layouts: pre1 wins.
 */
export declare function groupListing(refs: readonly ListedRef[], labels?: readonly string[]): ListedSet;
/** The ls-refs prefixes for a set of labels (or all atoms when omitted), always including refs/ekala/init. */
export declare function listingPrefixes(labels?: readonly string[], opts?: { legacy?: boolean; meta?: boolean }): string[];
