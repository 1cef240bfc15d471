/**
 * What each page shows, read from the database with bounded queries (one page of rows, one atom, one version) and
 * serialized with the API's own functions (../serialize.ts). A view is both the JSON a page answers with
 * `Accept: application/json` and what its HTML renders, so the two cannot disagree.
 */
import { atomId } from "../../protocol/id.js";
import { redactUrl } from "../../protocol/uri.js";
import type { ClosureSize, DependentRow, RegistryCounts, RegistryDb } from "../db.js";
import { parsePublishedManifest } from "../dependencies.js";
import { atomJson, buildJson, searchHitJson, setJson } from "../serialize.js";
import type { GraftView, PageHooks, YankMark } from "./hooks.js";
import { shellWord } from "./html.js";

/** Rows per page. */
export const PAGE_SIZE = { search: 20, setAtoms: 50, dependents: 25, versions: 100, sets: 50 } as const;
/** Newest build records of one version the atom page reads (grouped by system). */
export const BUILDS_WINDOW = 100;

export interface Paged {
  /** 1-based. */
  readonly page: number;
  /** Whether a next page exists. */
  readonly more: boolean;
}

/** One page of rows from a query asked for `size + 1` rows. */
function paged<T>(rows: T[], size: number, page: number): { results: T[] } & Paged {
  return { results: rows.slice(0, size), page, more: rows.length > size };
}

export interface HomeView {
  readonly counts: RegistryCounts;
  readonly sets: ReturnType<typeof setJson>[];
}

export async function homeView(db: RegistryDb): Promise<HomeView> {
  const [counts, sets] = await Promise.all([db.counts(), db.listSets()]);
  return { counts, sets: sets.slice(0, PAGE_SIZE.sets).map(setJson) };
}

export interface SearchView extends Paged {
  readonly q: string;
  readonly results: ReturnType<typeof searchHitJson>[];
}

export async function searchView(db: RegistryDb, q: string, page: number): Promise<SearchView> {
  const size = PAGE_SIZE.search;
  const hits = await db.searchPage(q, size + 1, (page - 1) * size);
  return { q, ...paged(hits.map(searchHitJson), size, page) };
}

export interface SetView extends Paged {
  readonly set: ReturnType<typeof setJson>;
  readonly atoms: ReturnType<typeof searchHitJson>[];
}

export async function setView(db: RegistryDb, root: string, page: number): Promise<SetView | null> {
  const set = await db.getSet(root);
  if (!set) return null;
  const size = PAGE_SIZE.setAtoms;
  const atoms = await db.setAtoms(root, size + 1, (page - 1) * size);
  const p = paged(atoms.map(searchHitJson), size, page);
  return { set: setJson(set), atoms: p.results, page: p.page, more: p.more };
}

export interface DependencyView {
  readonly tag: string;
  readonly label: string;
  readonly requirement: string;
  /** The tag's mirrors as the manifest writes them (`"::"`: the atom's own set), credentials removed. */
  readonly mirrors: string[];
  /** The atom in each set of this registry the tag names (by root or mirror). */
  readonly atoms: { id: string; set: string }[];
}

export interface SystemBuilds {
  readonly system: string;
  /** Build records of this version for the system, among the newest BUILDS_WINDOW of the version. */
  readonly records: number;
  readonly newest: ReturnType<typeof buildJson>;
  /** The closure of the newest record's outputs in this registry's cache. */
  readonly closure: ClosureSize;
}

export interface InstallLines {
  /** The atom URI, with an exact requirement. */
  readonly uri: string;
  readonly get: string;
  readonly add: string;
}

export interface AtomView extends Omit<ReturnType<typeof atomJson>, "versions"> {
  readonly versions: {
    version: string;
    rev: string;
    origin: string | null;
    built: boolean;
    yanked: YankMark | null;
  }[];
  /** Whether `versions` is only the newest PAGE_SIZE.versions (all: `?versions=all`). */
  readonly moreVersions: boolean;
  readonly selected: {
    readonly version: string;
    readonly rev: string;
    readonly origin: string | null;
    readonly yanked: YankMark | null;
    readonly manifest: string;
    readonly dependencies: DependencyView[];
    readonly dependents: { results: DependentRow[] } & Paged;
    readonly builds: SystemBuilds[];
    /** null: grafts are not tracked by this registry (no hook). */
    readonly grafts: readonly GraftView[] | null;
    readonly install: InstallLines | null;
  };
}

/**
 * Closure sizes by output hash parts. A path is stored only after every path it references (routes-api.ts answers
 * 409 otherwise) and never changes, so the closure of present paths never changes either: complete answers are kept
 * (oldest dropped first); one with missing paths is not.
 */
export class ClosureCache {
  private readonly map = new Map<string, ClosureSize>();
  constructor(readonly capacity = 100_000) {}
  async get(db: RegistryDb, hashParts: string[]): Promise<ClosureSize> {
    const key = [...hashParts].sort().join(",");
    const hit = this.map.get(key);
    if (hit) return hit;
    const size = await db.closureSize(hashParts);
    if (size.missing === 0 && this.capacity > 0) {
      if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!);
      this.map.set(key, size);
    }
    return size;
  }
}

export interface AtomQuery {
  /** The version asked for, or null for the newest (not yanked). */
  readonly version: string | null;
  readonly dependentsPage: number;
  readonly allVersions: boolean;
  /** This registry's base URL, for `cpr get --registry`. */
  readonly registry: string;
}

/** The atom page's view; null when the atom (or the version asked for) is unknown. */
export async function atomView(
  db: RegistryDb,
  hooks: PageHooks,
  id: string,
  q: AtomQuery,
  closures: ClosureCache = new ClosureCache(0),
): Promise<AtomView | null> {
  const found = await db.atomVersions(id);
  if (!found || found.versions.length === 0) return null;
  const { atom } = found;
  const [yanks, built, set] = await Promise.all([
    hooks.yanks ? hooks.yanks(id) : Promise.resolve(new Map<string, YankMark>()),
    db.builtVersions(id),
    db.getSet(atom.root),
  ]);
  const builtSet = new Set(built);
  const all = found.versions;
  const chosen = q.version === null ? (all.find((v) => !yanks.has(v.version)) ?? all[0]!) : all.find((v) => v.version === q.version);
  if (!chosen) return null;
  const shown = q.allVersions ? all : all.slice(0, PAGE_SIZE.versions);
  if (!shown.includes(chosen)) shown.push(chosen);

  const size = PAGE_SIZE.dependents;
  const sets = [atom.root, ...(set?.mirrors ?? [])];
  const [manifest, builds, dependents, grafts] = await Promise.all([
    db.versionManifest(id, chosen.version),
    db.versionBuilds(id, chosen.version, BUILDS_WINDOW),
    db.dependents(atom.label, sets, size + 1, (q.dependentsPage - 1) * size),
    hooks.grafts ? hooks.grafts(id, chosen.version) : Promise.resolve(null),
  ]);

  // Builds per system: the newest record of each, with its closure.
  const bySystem = new Map<string, { records: number; newest: (typeof builds)[number] }>();
  for (const b of builds) {
    const s = bySystem.get(b.system);
    if (s) s.records++;
    else bySystem.set(b.system, { records: 1, newest: b });
  }
  const systems = [...bySystem.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sizes = await Promise.all(
    systems.map(([, s]) =>
      closures.get(
        db,
        Object.values(s.newest.outputs).map((p) => p.slice("/nix/store/".length, "/nix/store/".length + 32)),
      ),
    ),
  );

  const base = atomJson(atom, shown, []);
  return {
    ...base,
    versions: shown.map((v) => ({
      version: v.version,
      rev: v.rev,
      origin: v.origin,
      built: builtSet.has(v.version),
      yanked: yanks.get(v.version) ?? null,
    })),
    moreVersions: shown.length < all.length,
    selected: {
      version: chosen.version,
      rev: chosen.rev,
      origin: chosen.origin,
      yanked: yanks.get(chosen.version) ?? null,
      manifest: manifest ?? "",
      dependencies: await dependencyViews(db, manifest ?? "", atom.root),
      dependents: paged(dependents, size, q.dependentsPage),
      builds: systems.map(([system, s], i) => ({ system, records: s.records, newest: buildJson(s.newest), closure: sizes[i]! })),
      grafts,
      install: installLines(set?.mirrors[0] ?? null, atom.label, chosen.version, q.registry),
    },
  };
}

/** The manifest's atom dependencies, each with the atoms of this registry it names. */
async function dependencyViews(db: RegistryDb, manifest: string, root: string): Promise<DependencyView[]> {
  const parsed = parsePublishedManifest(manifest);
  if (!parsed) return [];
  const urls = Object.values(parsed.package.sets).flatMap((ms) => ms.filter((m) => m !== "::"));
  const known = await db.setsByMirror(urls);
  const out: DependencyView[] = [];
  for (const [tag, labels] of Object.entries(parsed.depsFrom)) {
    const mirrors = parsed.package.sets[tag] ?? [];
    const roots = new Set<string>();
    for (const m of mirrors) {
      if (m === "::") roots.add(root);
      else for (const s of known) if (s.mirrors.includes(m)) roots.add(s.root);
    }
    for (const [label, requirement] of Object.entries(labels)) {
      out.push({
        tag,
        label,
        requirement: requirement.text,
        mirrors: mirrors.map((m) => (m === "::" ? m : redactUrl(m))),
        atoms: [...roots].sort().map((r) => ({ id: atomId(r, label), set: r })),
      });
    }
  }
  return out;
}

/** `cpr get`, the atom URI and `cpr add` for one version, from the set's first mirror; null without a mirror. */
export function installLines(mirror: string | null, label: string, version: string, registry: string): InstallLines | null {
  if (mirror === null) return null;
  const at = `${redactUrl(mirror)}::${label}`;
  const uri = `${at}@=${version.replace(/\+.*$/, "")}`;
  const caret = version.replace(/\+.*$/, "");
  return {
    uri,
    get: `cpr get ${shellWord(uri)} --registry ${shellWord(registry)}`,
    add: `cpr add ${shellWord(`${at}@^${caret}`)}`,
  };
}
