/**
 * The locked graph of an atom, read the way its locker reads it (docs/evaluation.md; docs/formats.md §12).
 *
 * Every atom is evaluated from its own tree and its own `atom.lock`: the lock's `[compose]` says how its value is
 * made, and each of its `[[deps]]` becomes a value under `deps` (`from.<tag>.<label>`, `pins.<name>`,
 * `get.<name>`). What cpr does differently from nix-lock, and only this:
 *
 * - versions are unified: every (set, label) an atom's lock names is taken at the version the top atom's lock pins
 *   (it lists the whole graph), and only what the top lock does not name falls back to the dependent's own lock
 *   (docs/formats.md §12.4);
 * - atoms are fetched by cpr into its cache (level by level, one fetch per mirror list) instead of one
 *   `builtins.fetchGit` per atom; the expression then adds each tree with `builtins.path { name = <label>; }`,
 *   which is the store path `builtins.fetchGit` gives the same tree (docs/formats.md §12.5).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CprError } from "../protocol/errors.js";
import { parseLock, type LockAtom, type LockDirectDep, type Lockfile } from "../protocol/lock.js";
import { parseAtomManifest, type AtomManifest } from "../protocol/atom-manifest.js";
import { fetchLock, lockAtoms, type FetchContext } from "../store/fetch.js";

/** How an atom's value is made (its lock's `[compose]`). */
export type GraphCompose =
  | { readonly use: "nix"; readonly entry: string }
  | { readonly use: "atom"; readonly entry: string; readonly composer: string }
  | { readonly use: "static" };

/** One atom of the graph, fetched and read. */
export interface GraphAtom {
  /** Unique key (AtomId, version, rev): the attribute name in the generated expression. */
  readonly key: string;
  readonly label: string;
  readonly version: string;
  readonly set: string;
  readonly rev: string;
  readonly id: string;
  /** Where its tree is (read-only, in the cache). */
  readonly path: string;
  readonly manifest: AtomManifest;
  /** Null only for a static atom published without one. */
  readonly lock: Lockfile | null;
  readonly compose: GraphCompose;
  /** `deps.from.<tag>.<label>` → key of that atom. */
  readonly from: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Direct Nix dependencies: `deps.pins.<name>` (nix, nix+tar, nix+git) and `deps.get.<name>` (nix+src). */
  readonly direct: readonly LockDirectDep[];
}

export interface LockedGraph {
  readonly atoms: ReadonlyMap<string, GraphAtom>;
  readonly topKey: string;
}

/** An atom to load: where it is pinned, and the mirrors to fetch it from. */
interface Pin extends LockAtom {
  readonly rev: string;
}

export const graphKey = (a: { id: string; version: string; rev: string }) => `${a.id}-${a.version}-${a.rev.slice(0, 12)}`;

const RESOLVE_HINT = "run `cpr resolve` in the atom, commit its atom.lock and publish a new version";

/**
 * Reads the top atom (already fetched at `top.path`) and everything its lock needs, fetching the pinned atoms level
 * by level. Every atom needs an `atom.lock` (a static atom may do without). A static top atom has nothing to build,
 * and is refused unless `staticTop` (its value is wanted).
 */
export async function loadGraph(
  ctx: FetchContext,
  top: { label: string; version: string; set: string; rev: string; id: string; path: string; url: string },
  opts: { staticTop?: boolean } = {},
): Promise<LockedGraph> {
  const atoms = new Map<string, GraphAtom>();
  const setUrls = new Map<string, string[]>([[top.set, [top.url]]]);
  const topKey = graphKey(top);
  const paths = new Map<string, string>([[topKey, top.path]]);
  const topRead = await readAtom(top.path, `${top.label} ${top.version}`);
  const unified = new Map<string, LockAtom>();
  for (const a of topRead.lock ? lockAtoms(topRead.lock) : []) unified.set(`${a.set}\0${a.label}`, a);

  const queued = new Set<string>([topKey]);
  let level: { pin: Pin; read: Read }[] = [{ pin: { ...top, mirror: top.url }, read: topRead }];
  while (level.length) {
    // Every atom this level's locks name, at its unified version; fetch those not in hand yet.
    const plans = level.map(({ pin, read }) => plan(pin, read, unified));
    const wanted = new Map<string, { atom: Pin; mirrors: string[] }>();
    for (const p of plans) {
      for (const a of p.needs) {
        const key = graphKey(a);
        if (!paths.has(key) && !wanted.has(key)) wanted.set(key, { atom: a, mirrors: mirrorList(a, p.read.lock, setUrls) });
      }
    }
    for (const [key, f] of await fetchPinned(ctx, [...wanted.values()])) {
      paths.set(key, f.path);
      const urls = setUrls.get(f.set) ?? [];
      if (f.url && !urls.includes(f.url)) setUrls.set(f.set, [...urls, f.url]);
    }
    const next: { pin: Pin; read: Read }[] = [];
    for (const p of plans) {
      for (const a of p.needs) {
        const key = graphKey(a);
        if (queued.has(key)) continue;
        queued.add(key);
        next.push({ pin: a, read: await readAtom(paths.get(key)!, `${a.label} ${a.version}`) });
      }
      const key = graphKey(p.pin);
      atoms.set(key, {
        key,
        ...pick(p.pin),
        path: paths.get(key)!,
        manifest: p.read.manifest,
        lock: p.read.lock,
        compose: p.compose,
        from: p.from,
        direct: p.direct,
      });
    }
    level = next;
  }
  for (const a of atoms.values()) {
    if (a.compose.use !== "atom") continue;
    const c = atoms.get(a.compose.composer)!;
    if (c.compose.use === "static") {
      throw new CprError(
        "build.composer",
        `${a.label} ${a.version} is composed with ${c.label} ${c.version}, a static atom, whose value is not a function`,
        {
          where: join(c.path, "atom.toml"),
          hint: "a composer atom's [compose] must make a function (e.g. [compose.as] nix)",
        },
      );
    }
  }
  const t = atoms.get(topKey)!;
  if (t.compose.use === "static" && !opts.staticTop) {
    throw new CprError("build.static", `${top.label} ${top.version} is a static atom ([compose.as] static): there is nothing to build`, {
      where: join(top.path, "atom.toml"),
    });
  }
  return { atoms, topKey };
}

interface Read {
  readonly manifest: AtomManifest;
  readonly lock: Lockfile | null;
}

function pick(a: Pin) {
  return { label: a.label, version: a.version, set: a.set, rev: a.rev, id: a.id };
}

/** What one atom's lock asks for: its compose, its dependencies by tag, the atoms to load. */
function plan(pin: Pin, read: Read, unified: ReadonlyMap<string, LockAtom>) {
  const where = `${pin.label} ${pin.version}`;
  const { manifest, lock } = read;
  if (!lock) {
    if (manifest.compose?.kind === "static") {
      return { pin, read, compose: { use: "static" } as GraphCompose, from: {}, direct: [], needs: [] as Pin[] };
    }
    throw new CprError(
      "build.no-lock",
      `${where} has no atom.lock in its published tree, so it cannot be evaluated: every dependency is read from its own lock`,
      {
        where: `${pin.label} ${pin.version} (${pin.rev})`,
        hint: RESOLVE_HINT,
      },
    );
  }
  const needs: Pin[] = [];
  const pinned = (a: LockAtom, what: string): Pin => {
    const u = unified.get(`${a.set}\0${a.label}`) ?? a;
    if (u.rev === null) {
      throw new CprError(
        "build.local-dep",
        `${where}: ${what} ${u.label} ${u.version} is locked as a local-only dependency (no rev), which cannot be fetched`,
        {
          hint: "publish the dependency, then `cpr resolve` and publish a new version of this atom",
        },
      );
    }
    const p = { ...u, rev: u.rev };
    needs.push(p);
    return p;
  };
  let compose: GraphCompose;
  const c = lock.compose;
  if (c.use === "atom") compose = { use: "atom", entry: c.entry, composer: graphKey(pinned(c, "its composer")) };
  else if (c.use === "nix") compose = { use: "nix", entry: c.entry };
  else compose = { use: "static" };
  const from: Record<string, Record<string, string>> = {};
  const direct: LockDirectDep[] = [];
  for (const d of lock.deps) {
    if (d.type !== "atom") {
      direct.push(d);
      continue;
    }
    const tag = lock.sets[d.set]?.tag;
    if (tag === undefined) {
      throw new CprError("build.lock-set", `${where}: atom.lock pins ${d.label} from set ${d.set}, which its [sets] does not list`, {
        hint: RESOLVE_HINT,
      });
    }
    (from[tag] ??= {})[d.label] = graphKey(pinned(d, "its dependency"));
  }
  return { pin, read, compose, from, direct, needs };
}

async function readAtom(path: string, what: string): Promise<Read> {
  const mfile = join(path, "atom.toml");
  let mtext: string;
  try {
    mtext = await readFile(mfile, "utf8");
  } catch (e) {
    throw new CprError("build.no-manifest", `${what}: cannot read ${mfile}: ${(e as Error).message}`, { where: mfile, cause: e });
  }
  const manifest = parseAtomManifest(mtext, mfile, "full");
  const lfile = join(path, "atom.lock");
  const lock = existsSync(lfile) ? parseLock(await readFile(lfile, "utf8"), lfile) : null;
  return { manifest, lock };
}

/** The mirrors to fetch a pinned atom from: its entry's mirror, its set's mirrors in the lock ("::" = the URLs the set is known by). */
function mirrorList(a: LockAtom, lock: Lockfile | null, setUrls: ReadonlyMap<string, readonly string[]>): string[] {
  const known = setUrls.get(a.set) ?? [];
  const listed = lock?.sets[a.set]?.mirrors ?? [];
  return [
    ...new Set([...(a.mirror && a.mirror !== "::" ? [a.mirror] : []), ...listed.flatMap((m) => (m === "::" ? known : [m])), ...known]),
  ];
}

/** Fetches pinned atoms with fetchLock (mirrors in order, revs checked); returns key → fetched atom. */
async function fetchPinned(
  ctx: FetchContext,
  pins: readonly { atom: Pin; mirrors: string[] }[],
): Promise<Map<string, { set: string; url: string; path: string }>> {
  const out = new Map<string, { set: string; url: string; path: string }>();
  // fetchLock takes mirrors per set; atoms of one set may come from different dependents' locks, so one call per
  // distinct mirror list.
  const groups = new Map<string, { atom: Pin; mirrors: string[] }[]>();
  for (const p of pins) {
    const k = `${p.atom.set}\0${p.mirrors.join("\0")}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const set = group[0]!.atom.set;
      const lock: Lockfile = {
        version: 1,
        sets: { [set]: { tag: "build", mirrors: group[0]!.mirrors } },
        locker: null,
        compose: { use: "static" },
        deps: group.map((p) => ({ type: "atom" as const, ...p.atom, mirror: null })),
      };
      const r = await fetchLock(ctx, lock);
      if (r.failed.length) {
        const f = r.failed.map((x) => `${x.label} ${x.version}: ${x.error}`).join("; ");
        throw new CprError("build.fetch", `could not fetch the locked atoms ${f}`, {
          hint: `mirrors tried: ${group[0]!.mirrors.join(", ") || "(none)"}`,
        });
      }
      for (const a of r.fetched) out.set(graphKey({ id: a.id, version: a.version, rev: a.rev }), { set: a.root, url: a.url, path: a.path });
    }),
  );
  return out;
}
