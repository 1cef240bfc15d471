/**
 * Ref names (docs/formats.md §8) and grouping an ls-refs listing into atoms. Refs that do not parse are skipped and counted,
 * never a crash.
 */
import { normalizeLabel } from "./label.js";
import { compareVersions, tryParseVersion, type Version } from "./version.js";

export const INIT_REF = "refs/ekala/init";
export const ATOMS_PREFIX = "refs/eka/atoms/";
export const META_PREFIX = "refs/eka/meta/";
export const LEGACY_ATOMS_PREFIX = "refs/atoms/";
/** Yank records (docs/formats.md §15.5; src/protocol/yank.ts writes and reads them). */
export const YANK_REFS_PREFIX = "refs/eka/yank/";

/** `refs/eka/atoms/<label>/<version>`. Inputs are used as given; check the result with isValidRefName. */
export function atomRef(label: string, version: string): string {
  return `${ATOMS_PREFIX}${label}/${version}`;
}
/** `refs/eka/meta/<label>/<version>/manifest`: the atom.toml blob at the origin. */
export function manifestRef(label: string, version: string): string {
  return `${META_PREFIX}${label}/${version}/manifest`;
}
/** `refs/eka/meta/<label>/<version>/origin`: the origin commit. */
export function originRef(label: string, version: string): string {
  return `${META_PREFIX}${label}/${version}/origin`;
}

/** Characters git never allows in a ref name: controls, DEL, space, `~^:?*[\`. */
const FORBIDDEN_CHARS = /[\x00-\x20\x7f~^:?*[\\]/;
/** A lone UTF-16 surrogate cannot be sent as UTF-8, so no git ref can hold it. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * git check-ref-format rules (without `--allow-onelevel`, `--refspec-pattern` or `--normalize`): at least two
 * `/`-separated components, none empty, none starting with `.` or ending with `.lock`; no `..`, no `@{`, not `@`
 * alone, not ending in `.` or `/`, and no control characters, space or any of `~^:?*[\`.
 */
export function isValidRefName(name: string): boolean {
  if (name === "" || name === "@") return false;
  if (FORBIDDEN_CHARS.test(name) || LONE_SURROGATE.test(name)) return false;
  if (name.includes("..") || name.includes("@{")) return false;
  if (name.endsWith(".")) return false;
  const parts = name.split("/");
  if (parts.length < 2) return false;
  return parts.every((c) => c !== "" && !c.startsWith(".") && !c.endsWith(".lock"));
}

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
  /** The yank record (a blob id) from refs/eka/yank/<label>/<version>, if listed: the version is yanked. */
  readonly yank: string | null;
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
 * Compare strings by their UTF-8 bytes (the same as comparing code points, unlike JS `<` on UTF-16 units), without
 * encoding them: sorts call this O(n log n) times. At the first differing UTF-16 unit, surrogates (code points
 * above U+FFFF) must sort after U+E000-U+FFFF, so both ranges are shifted before comparing. A lone surrogate
 * (which UTF-8 cannot hold) goes through the encoder, as before.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x - y;
    if (LONE_SURROGATE_UNIT.test(a) || LONE_SURROGATE_UNIT.test(b)) return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
    return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

const LONE_SURROGATE_UNIT = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** UTF-16 unit → a rank in code point order: U+E000-U+FFFF below the surrogates (U+10000 and above). */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

function memo<T>(cache: Map<string, T>, key: string, compute: (key: string) => T): T {
  let v = cache.get(key);
  if (v === undefined && !cache.has(key)) cache.set(key, (v = compute(key)));
  return v as T;
}

/** The label if it is valid and already in NFKC form (ref names hold the normalised label), else null. */
function checkedRefLabel(text: string): string | null {
  try {
    return normalizeLabel(text, "label") === text ? text : null;
  } catch {
    return null;
  }
}

/** The version if it is strict SemVer written canonically, else null. */
function checkedRefVersion(text: string): Version | null {
  const v = tryParseVersion(text);
  return v !== null && v.text === text ? v : null;
}

interface Candidate {
  label: string;
  version: Version;
  rev: string;
  format: "pre1" | "legacy";
}

/** Sub-refs of the legacy layouts that are valid but not the atom's content ref (docs/formats.md §8.3). */
const LEGACY_AUX_DIRS = new Set(["_specs", "_srcs"]);
const LEGACY_AUX_LEAVES = new Set(["spec", "src"]);

/**
 * Group a listing into atoms. `labels`, when given, keeps only those labels (the server may send more than asked).
 * The same (label, version) under both layouts: pre1 wins. Within one layout the first listed ref wins.
 */
export function groupListing(refs: readonly ListedRef[], labels?: readonly string[]): ListedSet {
  const wanted = labels ? new Set(labels.map((l) => l.normalize("NFKC"))) : null;
  let root: string | null = null;
  let rootIsTag = false;
  let skipped = 0;
  const atoms = new Map<string, Candidate>();
  const meta = new Map<string, { manifest: string | null; origin: string | null }>();
  const yanks = new Map<string, string>();
  const key = (label: string, version: string) => `${label}\0${version}`;
  // A label appears in three refs per version and a version text in many labels: check each text once.
  const labelCache = new Map<string, string | null>();
  const versionCache = new Map<string, Version | null>();
  const refLabel = (text: string): string | null => memo(labelCache, text, checkedRefLabel);
  const refVersion = (text: string): Version | null => memo(versionCache, text, checkedRefVersion);

  const add = (labelText: string, versionText: string, rev: string, format: "pre1" | "legacy"): void => {
    const label = refLabel(labelText);
    const version = refVersion(versionText);
    if (label === null || version === null) {
      skipped++;
      return;
    }
    if (wanted && !wanted.has(label)) return;
    const k = key(label, version.text);
    const existing = atoms.get(k);
    if (!existing || (existing.format === "legacy" && format === "pre1")) atoms.set(k, { label, version, rev, format });
  };

  for (const ref of refs) {
    const id = ref.peeled ?? ref.oid;
    if (ref.name === INIT_REF) {
      if (root === null) {
        root = ref.oid;
        rootIsTag = ref.peeled !== undefined;
      }
    } else if (ref.name.startsWith(ATOMS_PREFIX)) {
      const parts = ref.name.slice(ATOMS_PREFIX.length).split("/");
      if (parts.length === 2) add(parts[0]!, parts[1]!, id, "pre1");
      else skipped++;
    } else if (ref.name.startsWith(META_PREFIX)) {
      const [l, v, kind, ...rest] = ref.name.slice(META_PREFIX.length).split("/");
      const label = l === undefined ? null : refLabel(l);
      const version = v === undefined ? null : refVersion(v);
      if (kind === "sig" && rest.length === 0 && label !== null && version !== null) continue; // signature tag (cpr publish --sign)
      if (rest.length > 0 || label === null || version === null || (kind !== "manifest" && kind !== "origin")) {
        skipped++;
        continue;
      }
      const k = key(label, version.text);
      const entry = meta.get(k) ?? { manifest: null, origin: null };
      if (entry[kind] === null) entry[kind] = id;
      meta.set(k, entry);
    } else if (ref.name.startsWith(YANK_REFS_PREFIX)) {
      const parts = ref.name.slice(YANK_REFS_PREFIX.length).split("/");
      const label = parts.length === 2 ? refLabel(parts[0]!) : null;
      const version = parts.length === 2 ? refVersion(parts[1]!) : null;
      if (label === null || version === null) skipped++;
      else if (!yanks.has(key(label, version.text))) yanks.set(key(label, version.text), ref.oid);
    } else if (ref.name.startsWith(LEGACY_ATOMS_PREFIX)) {
      const parts = ref.name.slice(LEGACY_ATOMS_PREFIX.length).split("/");
      const [a, b, c] = parts;
      if (parts.length === 2)
        add(a!, b!, id, "legacy"); // format 1 content ref
      else if (parts.length === 3 && c === "atom")
        add(a!, b!, id, "legacy"); // short-lived variant
      else if (parts.length === 3 && (LEGACY_AUX_DIRS.has(b!) || LEGACY_AUX_LEAVES.has(c!))) continue;
      else skipped++;
    }
  }

  const list: ListedAtom[] = [...atoms.values()]
    .sort((x, y) => compareUtf8(x.label, y.label) || compareVersions(x.version, y.version) || compareUtf8(x.version.text, y.version.text))
    .map((c) => {
      const m = c.format === "pre1" ? meta.get(key(c.label, c.version.text)) : undefined;
      return {
        label: c.label,
        version: c.version.text,
        rev: c.rev,
        manifest: m?.manifest ?? null,
        origin: m?.origin ?? null,
        format: c.format,
        yank: c.format === "pre1" ? (yanks.get(key(c.label, c.version.text)) ?? null) : null,
      };
    });
  return { root, rootIsTag, atoms: list, skipped };
}

/**
 * The ls-refs prefixes for a set of labels (or all atoms when omitted), always including refs/ekala/init; with
 * `meta`, the meta refs and yank records too.
 */
export function listingPrefixes(labels?: readonly string[], opts: { legacy?: boolean; meta?: boolean } = {}): string[] {
  const roots = [ATOMS_PREFIX];
  if (opts.meta) roots.push(META_PREFIX, YANK_REFS_PREFIX);
  if (opts.legacy) roots.push(LEGACY_ATOMS_PREFIX);
  const out: string[] = [];
  if (labels === undefined) out.push(...roots);
  else {
    const unique = [...new Set(labels)];
    for (const prefix of roots) for (const label of unique) out.push(`${prefix}${label}/`);
  }
  out.push(INIT_REF);
  return out;
}
