import { CprError } from "../protocol/errors.js";
import { compareVersions, tryParseVersion, type Version } from "../protocol/version.js";
import type { JobStore } from "./jobs-db.js";

/**
 * The registry's database: one interface, two drivers (SQLite through better-sqlite3, the embedded default; and
 * PostgreSQL through pg, for several stateless servers sharing one database). Schema migrations run in `migrate()`,
 * which every server calls at start; it is safe to run concurrently from several instances.
 *
 * Everything the server stores goes through here. Artifacts (compressed NARs) live on the filesystem (artifacts.ts);
 * a path row is inserted only after its file is complete and verified, so a row's presence is what makes a path
 * visible in the binary cache.
 */

/** A set (repository of atoms) the server indexes. */
export interface SetRow {
  /** Root commit, 40 or 64 lowercase hex. */
  readonly root: string;
  /** Mirror URLs, in the order configured. */
  readonly mirrors: readonly string[];
  /** Unix ms of the last successful index, or null. */
  readonly indexedAt: number | null;
}

/** An atom known from a set's published refs. */
export interface AtomRow {
  /** AtomId (52-char nix32 form, as in atom.lock's `id`). */
  readonly id: string;
  readonly root: string;
  readonly label: string;
  readonly description: string | null;
  readonly tags: readonly string[];
}

/** One published version of an atom. */
export interface VersionRow {
  readonly id: string;
  readonly version: string;
  /** The atom commit id. */
  readonly rev: string;
  /** The origin commit id (refs/eka/meta/<label>/<version>/origin), or null when the set does not publish it. */
  readonly origin: string | null;
  /** The manifest blob's text (atom.toml as published). */
  readonly manifest: string;
}

/** A store path in the binary cache. */
export interface PathRow {
  /** The 32-char nix32 hash part of the store path (the narinfo's file name). */
  readonly hashPart: string;
  /** Full store path, /nix/store/<hash>-<name>. */
  readonly storePath: string;
  /** `sha256:<nix32>` of the uncompressed NAR. */
  readonly narHash: string;
  readonly narSize: number;
  /** `sha256:<nix32>` of the compressed file. */
  readonly fileHash: string;
  readonly fileSize: number;
  readonly compression: "xz" | "zstd" | "none";
  /** Relative URL of the file, e.g. `nar/<filehash-nix32>.nar.xz`. */
  readonly url: string;
  /** References as store path basenames (`<hash>-<name>`), sorted. */
  readonly references: readonly string[];
  /** Deriver basename (`<hash>-<name>.drv`), or null. */
  readonly deriver: string | null;
  /** Signatures, `<key-name>:<base64>`. */
  readonly sigs: readonly string[];
  /** The full narinfo text served at /<hashPart>.narinfo, rendered once at insert. */
  readonly narinfo: string;
  readonly createdAt: number;
}

/** A build record: what an atom version evaluated and built to, for one evaluation config. */
export interface BuildRow {
  /** Database id, assigned at insert. */
  readonly buildId: number;
  /** AtomId. */
  readonly id: string;
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  /** Hex SHA-256 of the canonical JSON of `config`. */
  readonly configHash: string;
  /** The evaluation inputs (canonical JSON text). */
  readonly config: string;
  /** Derivation path, /nix/store/…drv. */
  readonly drv: string;
  /** Output name → store path. */
  readonly outputs: Readonly<Record<string, string>>;
  /** `meta.mainProgram` of the derivation, when the record carries one (schema version 4). */
  readonly mainProgram?: string | null;
  readonly createdAt: number;
}

export interface TokenRow {
  /** Hex SHA-256 of the token text; the token itself is never stored. */
  readonly hash: string;
  /** Set roots this token may write. */
  readonly sets: readonly string[];
  readonly note: string | null;
  readonly createdAt: number;
  /** "write" (uploads, build records, refresh) or "worker" (claims jobs and records their builds only); default "write". */
  readonly scope?: TokenScope;
}

/** What a token may do: see TokenRow.scope. */
export type TokenScope = "write" | "worker";
/** A yanked version, as the catalogue last listed it (refs/eka/yank/<label>/<version>, docs/formats.md §15.5). */
export interface YankRow {
  readonly id: string;
  readonly version: string;
  /** The yank record's blob id. */
  readonly record: string;
  /** The reason it gives, or null when the record could not be read. */
  readonly reason: string | null;
}

export interface SearchHit extends AtomRow {
  /** Every indexed version, newest first (semver order). */
  readonly versions: readonly string[];
}

/** One replacement of a graft record, at the atom level. */
export interface GraftReplacementRow {
  /** AtomId of the dependency. */
  readonly id: string;
  readonly label: string;
  /** The version in the original closure, and the one grafted onto. */
  readonly from: string;
  readonly to: string;
}

/** A graft record (docs/grafts.md, "Records"): immutable once inserted. */
export interface GraftRow {
  /** Database id, assigned at insert. */
  readonly graftId: number;
  /** Hex SHA-256 of the canonical request: one record per request. */
  readonly key: string;
  /** The build grafted. */
  readonly buildId: number;
  /** The atom grafted (the dependent): AtomId, version, system. */
  readonly id: string;
  readonly version: string;
  readonly system: string;
  /** `<depId>@<version>` of every replacement, sorted, comma-separated: what `resolve ?with=` matches. */
  readonly withKey: string;
  /** Sorted by dependency id. */
  readonly replacements: readonly GraftReplacementRow[];
  /** `cpr-graft-v1` */
  readonly algorithm: string;
  /** Output name → grafted store path. */
  readonly outputs: Readonly<Record<string, string>>;
  /** Every path that changed, old → new (the requested replacements, aliases, and every grafted member). */
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  /** Warnings the graft was made with (overridden rules): code, message, and the flag that overrode it. */
  readonly warnings: readonly { readonly code: string; readonly message: string; readonly override: string | null }[];
  readonly createdAt: number;
}

export interface RegistryDb {
  readonly kind: "sqlite" | "postgres";
  /** Creates or upgrades the schema. Idempotent; safe to run from several instances at once. */
  migrate(): Promise<void>;
  /** Cheap round trip, for /healthz. */
  ping(): Promise<void>;
  close(): Promise<void>;

  // ── catalogue ──
  /** Adds the set, or replaces its mirror list. */
  upsertSet(root: string, mirrors: readonly string[]): Promise<void>;
  listSets(): Promise<SetRow[]>;
  getSet(root: string): Promise<SetRow | null>;
  /**
   * Records what one index pass found, in one transaction: atoms are upserted (description and tags replaced),
   * versions inserted (an existing (id, version) keeps its row), and the set's indexedAt set to `at`.
   */
  recordIndex(root: string, atoms: readonly AtomRow[], versions: readonly VersionRow[], at: number): Promise<void>;
  /** (id, version, rev) of every version already indexed for the set, for incremental re-indexing. */
  indexedVersions(root: string): Promise<{ id: string; version: string; rev: string }[]>;
  /** Case-insensitive match of `q` against label, description and tags; exact label matches first. */
  search(q: string, limit: number): Promise<SearchHit[]>;
  atom(id: string): Promise<{ atom: AtomRow; versions: VersionRow[] } | null>;
  /** Replaces the set's yanked versions with these, in one transaction. */
  recordYanks(root: string, yanks: readonly YankRow[]): Promise<void>;
  /** The yanked versions of an atom. */
  yanks(id: string): Promise<YankRow[]>;

  // ── binary cache ──
  getPath(hashPart: string): Promise<PathRow | null>;
  /** Just the stored narinfo text of a path (the /<hash>.narinfo hot path), or null when absent. */
  getNarinfo(hashPart: string): Promise<string | null>;
  /** Inserts the row unless the hash part is already present. Returns false when it was already there. */
  insertPath(row: PathRow): Promise<boolean>;
  /** The subset of `hashParts` not present. */
  missingPaths(hashParts: readonly string[]): Promise<string[]>;
  countPaths(): Promise<number>;
  /** Whether some path's narinfo names the file `url` (`nar/…`): tells a lost file from one never stored. */
  hasNarUrl(url: string): Promise<boolean>;

  // ── builds ──
  insertBuild(row: Omit<BuildRow, "buildId">): Promise<number>;
  /** Every build of the atom for `system`, newest record first. */
  builds(id: string, system: string): Promise<BuildRow[]>;
  countBuilds(): Promise<number>;

  // ── grafts (docs/grafts.md) ──
  /** The build records one of whose outputs is each of `paths` (full store paths), any atom, any system. */
  buildsByOutputs(paths: readonly string[]): Promise<{ path: string; build: BuildRow }[]>;
  /**
   * Inserts the grafted paths (each unless already present) and the graft record, in one transaction. When a record
   * with the same key exists, nothing is inserted and that record is returned with created false.
   */
  insertGraft(row: Omit<GraftRow, "graftId">, paths: readonly PathRow[]): Promise<{ graft: GraftRow; created: boolean }>;
  graftByKey(key: string): Promise<GraftRow | null>;
  graft(graftId: number): Promise<GraftRow | null>;
  /** Every graft of the atom, newest first. */
  graftsOfAtom(id: string): Promise<GraftRow[]>;
  /** Every graft of the build, newest first. */
  graftsOfBuild(buildId: number): Promise<GraftRow[]>;

  // ── tokens ──
  insertToken(row: TokenRow): Promise<void>;
  tokenByHash(hash: string): Promise<TokenRow | null>;

  // ── jobs ──
  /** The build farm's queue (jobs-db.ts). */
  readonly jobs: JobStore;
  // ── pages (src/serve/pages/): bounded reads for the web pages, and the dependency index ──
  /** How many sets, atoms, versions and build records the registry holds. */
  counts(): Promise<RegistryCounts>;
  /** search() with an offset: one page of hits, in the same order. */
  searchPage(q: string, limit: number, offset: number): Promise<SearchHit[]>;
  /** One page of a set's atoms, by label, each with its versions newest first. */
  setAtoms(root: string, limit: number, offset: number): Promise<SearchHit[]>;
  /** An atom and its versions newest first, without their manifests; null when unknown. */
  atomVersions(id: string): Promise<{ atom: AtomRow; versions: VersionSummary[] } | null>;
  /** The manifest text of one version, or null. */
  versionManifest(id: string, version: string): Promise<string | null>;
  /** Which of the atom's versions have at least one build record. */
  builtVersions(id: string): Promise<string[]>;
  /** The newest `limit` build records of one version (any system), newest first. */
  versionBuilds(id: string, version: string, limit: number): Promise<BuildRow[]>;
  /** Paths and NAR bytes of the closure of `hashParts` in the cache (references followed; absent ones counted). */
  closureSize(hashParts: readonly string[]): Promise<ClosureSize>;
  /** The sets that list any of `mirrors` (URL texts, compared exactly) among their mirrors. */
  setsByMirror(mirrors: readonly string[]): Promise<SetRow[]>;
  /** Up to `limit` versions of the set whose dependencies are not indexed yet (new, or indexed before schema 5). */
  versionsWithoutDependencies(root: string, limit: number): Promise<VersionRow[]>;
  /** Records the atom dependencies of each version (replacing any) and marks them indexed, in one transaction. */
  recordDependencies(entries: readonly { id: string; version: string; deps: readonly DependencyRow[] }[]): Promise<void>;
  /**
   * One page of the versions, across every set, whose manifest depends on `label` from a set named by one of `sets`
   * (the set's root, which `"::"` deps are recorded as, and its mirror URLs), by label, root, id, version.
   */
  dependents(label: string, sets: readonly string[], limit: number, offset: number): Promise<DependentRow[]>;
}

// ── pages' rows ──

export interface RegistryCounts {
  readonly sets: number;
  readonly atoms: number;
  readonly versions: number;
  readonly builds: number;
}

/** A version without its manifest. */
export interface VersionSummary {
  readonly version: string;
  readonly rev: string;
  readonly origin: string | null;
}

/** One `[deps.from.<tag>] <label> = "<requirement>"` entry of a manifest, once per mirror of the tag. */
export interface DependencyRow {
  readonly tag: string;
  readonly label: string;
  readonly requirement: string;
  /** The mirror: the depending atom's own root for `"::"`, else the URL text as the manifest writes it. */
  readonly set: string;
}

/** A version that depends on an atom. */
export interface DependentRow {
  /** The dependent's AtomId, set root and label. */
  readonly id: string;
  readonly root: string;
  readonly label: string;
  readonly version: string;
  /** The requirement it puts on the atom. */
  readonly requirement: string;
}

export interface ClosureSize {
  /** Paths of the closure present in the cache. */
  readonly paths: number;
  /** Sum of their NAR sizes, in bytes. */
  readonly narSize: number;
  /** Paths of the closure referenced but not in the cache. */
  readonly missing: number;
}

// ── helpers shared by the drivers ──

/** The lower-cased text search() matches against: label, description and tags, one per line. */
export function searchText(atom: Pick<AtomRow, "label" | "description" | "tags">): string {
  return [atom.label, atom.description ?? "", ...atom.tags].join("\n").toLowerCase();
}

/** Newest first by SemVer precedence; text that is not a version sorts after every version, by text. */
function compareParsedDesc(a: string, va: Version | null, b: string, vb: Version | null): number {
  if (va && vb) return compareVersions(vb, va) || (a < b ? -1 : a > b ? 1 : 0);
  if (va) return -1;
  if (vb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Version texts newest first (as newestFirst). */
export function versionsNewestFirst(texts: readonly string[]): string[] {
  return newestFirst(texts.map((version) => ({ version }))).map((v) => v.version);
}

/** Versions parsed before, by text (pages sort the same few thousand version texts again and again). */
const PARSED = new Map<string, Version | null>();
const PARSED_MAX = 10_000;

function parsedVersion(text: string): Version | null {
  let v = PARSED.get(text);
  if (v === undefined) {
    v = tryParseVersion(text);
    if (PARSED.size >= PARSED_MAX) PARSED.delete(PARSED.keys().next().value!);
    PARSED.set(text, v);
  }
  return v;
}

/**
 * `rows` newest first by their versions (compareParsedDesc), in a new array, parsing each version once (a sort
 * compares each element about log n times; parsing in the comparator was most of a search page's time).
 */
export function newestFirst<T extends { version: string }>(rows: readonly T[]): T[] {
  const keyed = rows.map((row) => ({ row, parsed: parsedVersion(row.version) }));
  keyed.sort((x, y) => compareParsedDesc(x.row.version, x.parsed, y.row.version, y.parsed));
  return keyed.map((k) => k.row);
}

/**
 * One page of dependents from per-set lists, each already in page order (label, root, id, version) and holding at
 * least its first offset + limit rows: merged, each version once (the lowest requirement text), then cut.
 */
export function dependentsPage(lists: readonly (readonly DependentRow[])[], limit: number, offset: number): DependentRow[] {
  const key = (d: DependentRow) => [d.label, d.root, d.id, d.version] as const;
  const byVersion = new Map<string, DependentRow>();
  for (const list of lists)
    for (const d of list) {
      const k = `${d.id}\0${d.version}`;
      const had = byVersion.get(k);
      if (!had || d.requirement < had.requirement) byVersion.set(k, d);
    }
  const cmp = (a: DependentRow, b: DependentRow): number => {
    const ka = key(a);
    const kb = key(b);
    // Byte order of the UTF-8 text, as the databases' index order (SQLite BINARY, PostgreSQL "C").
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return Buffer.compare(Buffer.from(ka[i]!), Buffer.from(kb[i]!));
    return 0;
  };
  return [...byVersion.values()].sort(cmp).slice(offset, offset + limit);
}

/** The search tiers after the exact label: labels containing the text, then descriptions or tags containing it. */
export type SearchTier = "label" | "rest";

/**
 * Rows [offset, offset + limit) of the search order: the exact label (`exact`), then each tier in label order, each
 * read only as far as the page needs (`tier(t, n)`: the first n rows of tier t). Both drivers' searchPage.
 */
export async function searchInTiers<T>(
  limit: number,
  offset: number,
  exact: () => Promise<T[]> | T[],
  tier: (t: SearchTier, n: number) => Promise<T[]> | T[],
): Promise<T[]> {
  const wanted = offset + limit;
  if (limit <= 0) return [];
  const rows = (await exact()).slice(0, wanted);
  for (const t of ["label", "rest"] as const) if (rows.length < wanted) rows.push(...(await tier(t, wanted - rows.length)));
  return rows.slice(offset);
}

/** `text` for a LIKE pattern with `\` as the escape: its own `%`, `_` and `\` match themselves. */
export function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, "\\$&");
}

/** RegistryCounts from the `row_counts` table's rows (a table without a row counts 0). */
export function countsOf(rows: readonly { name: string; n: number }[]): RegistryCounts {
  const n = (name: string): number => rows.find((r) => r.name === name)?.n ?? 0;
  return { sets: n("sets"), atoms: n("atoms"), versions: n("versions"), builds: n("builds") };
}

/** Unique values of `items`, first occurrence order. */
export function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

export function unknownSetError(root: string): CprError {
  return new CprError("registry.unknown-set", `set ${root} is not in the registry database`, {
    where: root,
    hint: "add the set (upsertSet) before recording what indexing found",
  });
}

export function buildVersionError(id: string, version: string, cause: unknown): CprError {
  return new CprError("registry.build-unknown-version", `cannot record a build of ${id}@${version}: that version is not indexed`, {
    where: `${id}@${version}`,
    hint: "index the set (recordIndex) so the version is known before recording builds of it",
    cause,
  });
}

export function indexReferenceError(root: string, cause: unknown): CprError {
  return new CprError("registry.index-reference", `index of set ${root} names a version of an atom that is not recorded`, {
    where: root,
    hint: "pass every atom whose versions are recorded in the same recordIndex call (or an earlier one)",
    cause,
  });
}

export function tokenExistsError(hash: string): CprError {
  return new CprError("registry.token-exists", "a token with this hash is already stored", {
    where: hash,
    hint: "create a new token; token texts are random and never reused",
  });
}
