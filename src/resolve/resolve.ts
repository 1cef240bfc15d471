/**
 * Dependency resolution over git (issue 3): a PubGrub Provider whose packages are AtomIds, whose versions come
 * from ls-refs listings of every mirror of a set, and whose dependencies come from manifest blobs fetched alone
 * (never atom content or history) into the shared cache. Lazy and parallel: labels asked for in one tick are listed
 * in one exchange per mirror, and manifests wanted in one tick are fetched in one exchange per mirror. Each mirror
 * has one connection for the whole run (connections.ts); right after a set's first mirror listed some labels, the
 * manifests of the versions the solver will most likely pick are fetched on that same connection (our own protocol
 * v2 fetch, no git process), so a level of the graph costs one listing exchange and one manifest fetch per mirror.
 *
 * Then the lock: atom entries for every resolved atom, sets, the composer, direct Nix entries (kept when they
 * still match, else prefetched), and the locker (kept, else the configured one: by default docs/formats.md §11.9's nix-lock
 * 0.1.6 at its published rev, with no network; a configured locker without a rev has it listed from its mirror).
 *
 * Listings come from the cache while fresh (the TTL). A version published since may be missing from them: when
 * resolution then fails, the sets whose listings came from the cache are listed again from the network and the
 * resolution is retried once before the failure is reported, as cargo refreshes its index (never under --offline,
 * whose error then says the listings may be stale).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheLayout } from "../config/paths.js";
import { CprError } from "../protocol/errors.js";
import { atomIdsOf } from "../protocol/id.js";
import {
  DEFAULT_LOCKER_SPEC,
  formatLock,
  lockerEntry,
  sortMirrors,
  type LockAtom,
  type LockCompose,
  type LockDep,
  type LockDirectDep,
  type LockerSpec,
  type LockSet,
  type Lockfile,
} from "../protocol/lock.js";
import { checkLock, directMatches, directUrl, localVersionText, unlocal, type LockedVersionOf } from "../protocol/lock-check.js";
import { parseAtomManifest, type AtomManifest, type DirectNixDep } from "../protocol/manifest.js";
import { manifestRef } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import { compareVersions, makeVersion, matches, parseVersion, VersionSet, type Requirement, type Version } from "../protocol/version.js";
import { ResolutionError, solve, type PartialVersions, type Provider } from "./pubgrub.js";
import { ListingCache, ManifestStore, newStats, type NetStats } from "./cache.js";
import { Connections } from "./connections.js";
import { listingPrefix, prefixSet, RemoteSet, type ListedLabel, type MirrorContext, type SetAtom, type SetListing } from "./mirrors.js";
import type { UploadPackConnection } from "../git/lsrefs.js";
import { loadLocalSet, type LocalSet, type Project } from "./project.js";

export const ROOT_PKG = "<root>";

export interface ResolveOptions {
  readonly cacheDir: string;
  readonly listingTtl: number;
  readonly env: NodeJS.ProcessEnv;
  readonly reporter: Reporter;
  readonly offline?: boolean;
  /** Labels to move to their newest allowed versions (update); `true` for all. */
  readonly update?: readonly string[] | true;
  /** Counters to add network activity to (tests, benchmarks). */
  readonly stats?: NetStats;
  /** The locker a new lock names (config's [locker]); default docs/formats.md §11.9's. */
  readonly locker?: LockerSpec;
}

/** An edge of the resolved graph: `from` requires `dep` with `req`. */
export interface GraphEdge {
  readonly dep: string;
  readonly req: string;
}

export interface Resolution {
  readonly lock: Lockfile;
  readonly lockText: string;
  /** AtomId (or ROOT_PKG) → its requirements, for tree/why. */
  readonly edges: Readonly<Record<string, readonly GraphEdge[]>>;
  readonly stats: NetStats;
}

const idMakers = new Map<string, (label: string) => string>();
const atomIds = new Map<string, string>();

/**
 * AtomIds, computed once per (root, label) in a run (keyed BLAKE3 is not free, and the same ids recur), with one
 * keyed hasher per root (atomIdsOf).
 */
function atomId(root: string, label: string): string {
  const key = `${root}\0${label}`;
  let id = atomIds.get(key);
  if (id === undefined) {
    let make = idMakers.get(root);
    if (make === undefined) idMakers.set(root, (make = atomIdsOf(root)));
    atomIds.set(key, (id = make(label)));
  }
  return id;
}

function mirrorsKey(mirrors: readonly string[]): string {
  return JSON.stringify(sortMirrors(mirrors));
}

interface PkgInfo {
  readonly label: string;
  readonly root: string;
  readonly sets: Set<RemoteSet>;
  /** A work-tree atom of the project's own repository (the "::" set), if any. */
  local: { manifestText: string; manifest: AtomManifest; file: string } | null;
  /** Tag and mirrors to record in the lock's [sets] for this root. */
}

interface PendingFetch {
  readonly ref: string;
  readonly atom: SetAtom;
  resolve(oid: string): void;
  reject(e: unknown): void;
}

interface Candidate {
  readonly version: Version;
  readonly local: boolean;
  readonly atom: SetAtom | null;
}

/** Resolver state for one run. */
class GitProvider implements Provider {
  readonly stats: NetStats;
  readonly cache: ListingCache;
  readonly store: ManifestStore;
  readonly connections: Connections;
  private readonly ctx: MirrorContext;
  private readonly remoteSets = new Map<string, RemoteSet>();
  readonly pkgs = new Map<string, PkgInfo>();
  /** Per package: listing prefix → its candidates. */
  private readonly candidates = new Map<string, Map<string, Promise<Candidate[]>>>();
  private readonly deps = new Map<string, Promise<Map<string, { set: VersionSet; req: Requirement }>>>();
  /** root → lock [sets] entry (first writer wins; the project's own tags are registered first). */
  readonly setEntries = new Map<string, { tag: string; mirrors: Set<string> }>();
  private readonly pendingFetch = new Map<RemoteSet, PendingFetch[]>();
  private fetchScheduled = new Set<RemoteSet>();
  readonly edges = new Map<string, GraphEdge[]>();
  /** The project's own `[package.sets]` tags → the root their mirrors report (for `from_version`). */
  readonly tagRoots = new Map<string, string>();
  /** Mirrors whose listings were taken from the cache in this run. */
  readonly fromCache = new Set<string>();

  constructor(
    readonly project: Project,
    readonly local: LocalSet | null,
    private readonly preferredVersions: ReadonlyMap<string, Version>,
    private readonly opts: ResolveOptions,
    /** Mirrors whose listings this run must not take from the cache (listed again after a failure). */
    relist: ReadonlySet<string> = new Set(),
  ) {
    this.stats = opts.stats ?? newStats();
    this.cache = new ListingCache(opts.cacheDir, opts.listingTtl);
    this.connections = new Connections({ env: opts.env, cwd: project.dir, reporter: opts.reporter, stats: this.stats });
    this.store = new ManifestStore(opts.cacheDir, opts.env, this.stats, this.connections);
    this.ctx = {
      cache: this.cache,
      stats: this.stats,
      connections: this.connections,
      reporter: opts.reporter,
      env: opts.env,
      cwd: project.dir,
      offline: opts.offline === true,
      refresh: opts.update !== undefined,
      relist,
      fromCache: this.fromCache,
      beforeNetwork: () => this.store.warmUp(),
      afterListing: (set, mirror, conn, root, listed) => this.prefetchManifests(set, mirror, conn, root, listed),
    };
  }

  remoteSet(mirrors: readonly string[]): RemoteSet {
    const key = mirrorsKey(mirrors.filter((m) => m !== "::"));
    let s = this.remoteSets.get(key);
    if (!s) {
      s = new RemoteSet(mirrors, this.ctx);
      this.remoteSets.set(key, s);
    }
    return s;
  }

  name(pkg: string): string {
    if (pkg === ROOT_PKG) return this.project.manifest.package.label;
    return this.pkgs.get(pkg)?.label ?? pkg;
  }

  preferred(pkg: string): Version | null {
    return this.preferredVersions.get(pkg) ?? null;
  }

  /**
   * Versions, listed lazily and narrowly: the solver asks for the versions of a package inside a set (the
   * requirements on it seen so far), and only `refs/eka/atoms/<label>/<prefix>` is listed, the prefix being the
   * longest version text that every version of the set starts with, cut at a `.` or a whole version
   * (listingPrefix). A wider set later lists the missing prefix; a listing covers every narrower prefix. The
   * answer says which versions it is complete for (the union of the prefixes listed), so the solver claims nothing
   * about the others. (No prefetch hook: the solver's own look-ahead lists with the requirement it has.)
   */
  async versions(pkg: string, within: VersionSet = VersionSet.full): Promise<readonly Version[] | PartialVersions> {
    if (pkg === ROOT_PKG) return [this.project.manifest.package.version];
    const { cands, cover } = await this.listed(pkg, within);
    return { versions: cands.map((c) => c.version), cover };
  }

  /** The candidates listed so far for `pkg`, after listing what `within` needs; newest first. */
  private async listed(pkg: string, within: VersionSet): Promise<{ cands: Candidate[]; cover: VersionSet }> {
    const prefix = listingPrefix(within);
    let byPrefix = this.candidates.get(pkg);
    if (!byPrefix) {
      byPrefix = new Map();
      this.candidates.set(pkg, byPrefix);
    }
    if (![...byPrefix.keys()].some((q) => prefix.startsWith(q))) {
      byPrefix.set(prefix, this.loadCandidates(pkg, prefix, within));
      this.merged.delete(pkg);
    }
    // The merged answer is the same until another prefix is listed: build it once (the solver asks often).
    let merged = this.merged.get(pkg);
    if (!merged) {
      const snapshot = [...byPrefix];
      merged = Promise.all(snapshot.map(([, p]) => p)).then((lists) => {
        const byVersion = new Map<string, Candidate>();
        for (const list of lists) {
          for (const c of list) {
            const seen = byVersion.get(c.version.text);
            if (!seen || (seen.local && !c.local)) byVersion.set(c.version.text, c);
          }
        }
        let cover = VersionSet.empty;
        for (const [q] of snapshot) cover = cover.union(prefixSet(q));
        return { cands: [...byVersion.values()].sort((a, b) => compareVersions(b.version, a.version)), cover };
      });
      this.merged.set(pkg, merged);
    }
    return merged;
  }

  /** Per package: the merged candidates of every prefix listed so far (see listed). */
  private readonly merged = new Map<string, Promise<{ cands: Candidate[]; cover: VersionSet }>>();

  private async loadCandidates(pkg: string, prefix: string, within?: VersionSet): Promise<Candidate[]> {
    const info = this.pkgs.get(pkg);
    if (!info) throw new Error(`internal: unknown package ${pkg}`);
    if (within) this.noteWanted(info.label, prefix, within);
    const byVersion = new Map<string, Candidate>();
    const errors: unknown[] = [];
    for (const set of info.sets) {
      if (set.mirrors.length === 0) continue;
      try {
        const listing = await set.list(info.label, prefix);
        if (listing.root !== info.root) continue;
        for (const a of listing.atoms) {
          const v = parseVersion(a.version);
          const seen = byVersion.get(v.text);
          if (seen?.atom && seen.atom.rev !== a.rev) {
            throw new CprError("resolve.rev-mismatch", `${info.label} ${a.version} has rev ${seen.atom.rev} on ${seen.atom.mirrors.join(", ")} but ${a.rev} on ${a.mirrors.join(", ")}; refusing them as possible tampering`);
          }
          if (!seen) byVersion.set(v.text, { version: v, local: false, atom: a });
        }
      } catch (e) {
        if (e instanceof CprError && (e.code === "resolve.root-mismatch" || e.code === "resolve.rev-mismatch")) throw e;
        errors.push(e);
      }
    }
    if (info.local) {
      const v = info.local.manifest.package.version;
      // A version published under the same number wins: it has a rev. Otherwise the work tree's is a candidate.
      if (![...byVersion.values()].some((c) => compareVersions(c.version, v) === 0)) byVersion.set(v.text, { version: v, local: true, atom: null });
    } else if (byVersion.size === 0 && errors.length > 0) {
      throw errors[0];
    }
    return [...byVersion.values()].sort((a, b) => compareVersions(b.version, a.version));
  }

  async candidate(pkg: string, version: Version): Promise<Candidate> {
    const c = (await this.listed(pkg, VersionSet.exact(version))).cands.find((x) => compareVersions(x.version, version) === 0);
    if (!c) throw new Error(`internal: ${this.name(pkg)} has no version ${version.text}`);
    return c;
  }

  async dependencies(pkg: string, version: Version): Promise<ReadonlyMap<string, VersionSet>> {
    const m = await this.depsWithReqs(pkg, version);
    return new Map([...m].map(([k, v]) => [k, v.set]));
  }

  depsWithReqs(pkg: string, version: Version): Promise<Map<string, { set: VersionSet; req: Requirement }>> {
    const key = `${pkg}@${version.text}`;
    let p = this.deps.get(key);
    if (!p) {
      p = this.loadDeps(pkg, version);
      this.deps.set(key, p);
    }
    return p;
  }

  private async loadDeps(pkg: string, version: Version): Promise<Map<string, { set: VersionSet; req: Requirement }>> {
    if (pkg === ROOT_PKG) return this.rootDeps();
    const info = this.pkgs.get(pkg)!;
    const cand = await this.candidate(pkg, version);
    let manifest: AtomManifest;
    if (cand.local) manifest = info.local!.manifest;
    else {
      const text = await this.manifestText(info, cand.atom!);
      manifest = parseAtomManifest(text, `${info.label} ${version.text} (${manifestRef(info.label, version.text)})`, "full");
      if (manifest.package.label !== info.label || compareVersions(manifest.package.version, version) !== 0) {
        throw new CprError("resolve.manifest-mismatch", `the manifest published for ${info.label} ${version.text} says ${manifest.package.label} ${manifest.package.version.text}`);
      }
    }
    const selfSet = [...info.sets][0] ?? null;
    return this.depsOf(manifest, selfSet, pkg);
  }

  /** AtomId of the composer (`[compose.with.*]`), once the project's dependencies are known. */
  composerId: string | null = null;

  /**
   * The project's dependencies: its `[deps.from.*]` plus the composer, a package like any other (its own
   * dependencies are resolved and unify with the rest). A composer also listed in `[deps.from.*]` must satisfy both.
   */
  private async rootDeps(): Promise<Map<string, { set: VersionSet; req: Requirement }>> {
    const manifest = this.project.manifest;
    const c = manifest.compose;
    if (!c || c.kind !== "with") return this.depsOf(manifest, null, ROOT_PKG);
    const own = manifest.depsFrom[c.from]?.[c.label];
    const depsFrom = { ...manifest.depsFrom, [c.from]: { ...(manifest.depsFrom[c.from] ?? {}), [c.label]: own ?? c.requirement } };
    const out = await this.depsOf({ ...manifest, depsFrom }, null, ROOT_PKG);
    const id = atomId(this.tagRoots.get(c.from)!, c.label);
    this.composerId = id;
    const composerSet = VersionSet.fromRequirement(c.requirement);
    const dep = out.get(id)!;
    if (own) out.set(id, { set: dep.set.intersect(composerSet), req: dep.req });
    return out;
  }

  /**
   * A manifest's `[deps.from.<tag>]` as AtomId → requirement. `"::"` means the project's own repository for the
   * project and its local atoms, and the atom's own set (`self`) for a published atom.
   */
  async depsOf(manifest: AtomManifest, self: RemoteSet | null, from: string): Promise<Map<string, { set: VersionSet; req: Requirement }>> {
    const out = new Map<string, { set: VersionSet; req: Requirement }>();
    const isLocalContext = self === null || (this.pkgs.get(from)?.local !== null && this.pkgs.get(from)?.local !== undefined);
    const edges: GraphEdge[] = [];
    await Promise.all(
      Object.entries(manifest.depsFrom).map(async ([tag, reqs]) => {
        const labels = Object.keys(reqs);
        if (labels.length === 0) return;
        const written = manifest.package.sets[tag] ?? [];
        const hasLocal = written.includes("::");
        let mirrors = written.filter((m) => m !== "::");
        if (hasLocal && !isLocalContext && self) mirrors = [...new Set([...mirrors, ...self.mirrors])];
        const set = this.remoteSet(mirrors);
        let root: string;
        if (hasLocal && isLocalContext) {
          if (!this.local) {
            throw new CprError("resolve.no-local", `[package.sets].${tag} names "::" (this repository), but ${this.project.dir} is not in a git repository with commits`);
          }
          root = this.local.root;
          set.expectedRoot = root;
        } else if (hasLocal && self) {
          root = (await set.list(labels[0]!, listingPrefix(VersionSet.fromRequirement(reqs[labels[0]!]!)))).root;
        } else {
          if (mirrors.length === 0) throw new CprError("resolve.no-mirror", `[package.sets].${tag} has no mirror`);
          for (const l of labels) this.noteWanted(l, listingPrefix(VersionSet.fromRequirement(reqs[l]!)), VersionSet.fromRequirement(reqs[l]!));
          const listed = await set.listMany(labels.map((l) => [l, listingPrefix(VersionSet.fromRequirement(reqs[l]!))] as const));
          root = listed.get(labels[0]!)!.root;
        }
        if (from === ROOT_PKG) this.tagRoots.set(tag, root);
        if (!this.setEntries.has(root)) {
          this.setEntries.set(root, { tag, mirrors: new Set(hasLocal && isLocalContext ? ["::", ...mirrors] : mirrors) });
        } else if (from === ROOT_PKG) {
          // The project's own tag wins.
          this.setEntries.set(root, { tag, mirrors: new Set(hasLocal && isLocalContext ? ["::", ...mirrors] : mirrors) });
        }
        for (const label of labels) {
          const id = atomId(root, label);
          let info = this.pkgs.get(id);
          if (!info) {
            info = { label, root, sets: new Set(), local: null };
            this.pkgs.set(id, info);
          }
          if (set.mirrors.length > 0) info.sets.add(set);
          if (hasLocal && isLocalContext && this.local && !info.local) {
            const la = this.local.atoms.get(label);
            if (la) info.local = { manifestText: la.manifestText, manifest: la.manifest, file: join(la.dir, "atom.toml") };
          }
          if (hasLocal && isLocalContext && !info.local && set.mirrors.length === 0) {
            throw new CprError("resolve.local-missing", `${label}: no atom with this label in the work tree of this repository, and [package.sets].${tag} has no URL to find it published`);
          }
          const req = reqs[label]!;
          out.set(id, { set: VersionSet.fromRequirement(req), req });
          edges.push({ dep: id, req: req.text });
        }
      }),
    );
    this.edges.set(from, edges);
    return out;
  }

  /** `label prefix` → the versions the requirement that listed it allows (for guessing the version picked). */
  private readonly wanted = new Map<string, VersionSet>();
  /** `mirror \0 manifest ref` → the blob id fetched speculatively (null when that failed). */
  private readonly prefetched = new Map<string, Promise<string | null>>();

  private noteWanted(label: string, prefix: string, set: VersionSet): void {
    const key = `${label} ${prefix}`;
    if (!this.wanted.has(key)) this.wanted.set(key, set);
  }

  /**
   * Right after a set's first mirror listed some labels, on the same connection: fetch the manifests of the
   * versions the solver will most likely pick (the locked one if listed and allowed, else the newest the
   * requirement that asked for the listing allows), unless already cached. The solver would ask for exactly these
   * next (it fetches the likely version of every newly mentioned package speculatively too); asking now saves the
   * wait for it and a connection. A wrong guess costs one small blob; the solver then fetches what it needs.
   */
  private async prefetchManifests(set: RemoteSet, mirror: string, conn: UploadPackConnection, root: string, listed: readonly ListedLabel[]): Promise<void> {
    if (this.ctx.offline) return;
    const refs: string[] = [];
    for (const { label, prefix, atoms } of listed) {
      const within = this.wanted.get(`${label} ${prefix}`) ?? prefixSet(prefix);
      const pref = this.preferredVersions.get(atomId(root, label)) ?? null;
      let best: { atom: (typeof atoms)[number]; version: Version } | null = null;
      for (const a of atoms) {
        const v = parseVersion(a.version);
        if (!within.contains(v)) continue;
        if (pref !== null && compareVersions(v, pref) === 0) {
          best = { atom: a, version: v };
          break;
        }
        if (best === null || compareVersions(v, best.version) > 0) best = { atom: a, version: v };
      }
      if (best === null || (best.atom.manifest ?? this.store.manifestOfRev(best.atom.rev)) !== null) continue;
      const ref = manifestRef(label, best.atom.version);
      if (!this.prefetched.has(`${mirror}\0${ref}`)) refs.push(ref);
    }
    if (refs.length === 0) return;
    const done = this.store.fetchOn(conn, set.display(mirror), refs);
    for (const ref of refs) this.prefetched.set(`${mirror}\0${ref}`, done.then((m) => m?.get(ref) ?? null, () => null));
    await done;
  }

  /**
   * A manifest blob: from the cache (its id known from the listing or from the rev index), else fetched (batched
   * per mirror) by its ref `refs/eka/meta/<label>/<version>/manifest`.
   */
  private async manifestText(info: PkgInfo, atom: SetAtom): Promise<string> {
    const known = atom.manifest ?? this.store.manifestOfRev(atom.rev);
    if (known !== null) {
      this.store.noteRev(atom.rev, known);
      const [cached] = await this.store.read([known]);
      if (cached != null) return cached;
    }
    if (this.ctx.offline) {
      throw new CprError("resolve.offline", `offline: the manifest of ${info.label} ${atom.version} is not in the cache`, {
        hint: "run `cpr resolve` once with network access to fill the cache",
      });
    }
    const set = [...info.sets].find((s) => s.mirrors.some((m) => atom.mirrors.includes(m)))!;
    const ref = manifestRef(info.label, atom.version);
    const early = await this.prefetched.get(`${atom.mirrors[0]}\0${ref}`);
    const oid = early ?? (await this.queueFetch(set, ref, atom));
    this.store.noteRev(atom.rev, oid);
    const [text] = await this.store.read([oid]);
    if (text == null) throw new CprError("resolve.fetch", `the manifest blob ${oid} of ${info.label} ${atom.version} was not received`);
    return text;
  }

  private queueFetch(set: RemoteSet, ref: string, atom: SetAtom): Promise<string> {
    return new Promise((resolve, reject) => {
      let q = this.pendingFetch.get(set);
      if (!q) {
        q = [];
        this.pendingFetch.set(set, q);
      }
      q.push({ ref, atom, resolve, reject });
      if (!this.fetchScheduled.has(set)) {
        this.fetchScheduled.add(set);
        setImmediate(() => {
          this.fetchScheduled.delete(set);
          const batch = this.pendingFetch.get(set) ?? [];
          this.pendingFetch.delete(set);
          this.runFetch(set, batch).catch(() => {});
        });
      }
    });
  }

  /** One fetch per mirror; wanted blobs go to the first mirror (in set order) that listed them; failures move on. */
  private async runFetch(set: RemoteSet, batch: PendingFetch[]): Promise<void> {
    let remaining = batch;
    let lastError: unknown = null;
    for (const mirror of set.mirrors) {
      const here = remaining.filter((b) => b.atom.mirrors.includes(mirror));
      if (here.length === 0) continue;
      try {
        const oids = await this.store.fetch(mirror, set.url(mirror), set.display(mirror), here);
        for (const b of here) {
          const oid = oids.get(b.ref);
          if (oid) b.resolve(oid);
          else b.reject(new CprError("resolve.no-manifest", `${set.display(mirror)} has no ${b.ref}`, { hint: "republish it with cpr publish, which writes the meta refs" }));
        }
        remaining = remaining.filter((b) => !here.includes(b));
      } catch (e) {
        lastError = e;
        this.opts.reporter.warn(`mirror ${set.display(mirror)}: ${e instanceof Error ? e.message : String(e)}; trying the next mirror`);
      }
      if (remaining.length === 0) break;
    }
    for (const b of remaining) b.reject(lastError ?? new CprError("resolve.fetch", `no mirror could serve ${b.ref}`));
  }

  async close(): Promise<void> {
    // The solver and prefetch may leave speculative listings/fetches running: let them settle before closing.
    const pending = (): Promise<unknown>[] => [...this.deps.values(), ...[...this.candidates.values()].flatMap((m) => [...m.values()])];
    for (let n = -1; n !== pending().length; ) {
      const all = pending();
      n = all.length;
      await Promise.allSettled(all);
    }
    this.cache.flush();
    // Speculative fetches still under way write to the store: let them finish first.
    await this.connections.settle();
    // Connections end in the background (the process lives until they are closed): each waits for its server to
    // hang up, which nothing here needs to wait for.
    void this.connections.close();
    await this.store.close();
  }
}

/** The locked versions to prefer: every atom entry still in the lock, unless it is being updated. */
function preferredFromLock(lock: Lockfile | null, update: readonly string[] | true | undefined): Map<string, Version> {
  const out = new Map<string, Version>();
  if (!lock || update === true) return out;
  const skip = new Set(update ?? []);
  for (const d of lock.deps) {
    if (d.type !== "atom" || skip.has(d.label)) continue;
    out.set(d.id, unlocal(d.version).version);
  }
  if (lock.compose.use === "atom" && !skip.has(lock.compose.label) && !out.has(lock.compose.id)) out.set(lock.compose.id, unlocal(lock.compose.version).version);
  return out;
}

/**
 * Resolve the project's whole graph and compute its new lock (nothing is written here). A failure that listings
 * taken from the cache may explain (a version published since they were listed) is retried once with those sets
 * listed again from the network; under --offline its hint says so instead.
 */
export async function resolveProject(project: Project, opts: ResolveOptions): Promise<Resolution> {
  const local = needsLocal(project.manifest) ? await loadLocalSet(project.dir, opts.env, opts.reporter) : null;
  const run = { ...opts, stats: opts.stats ?? newStats() };
  const locker = opts.locker ?? DEFAULT_LOCKER_SPEC;
  const first = new GitProvider(project, local, preferredFromLock(project.lock, opts.update), run);
  try {
    return await resolveWith(first, run, locker);
  } catch (e) {
    const stale = staleListings(e, first.fromCache, locker);
    if (stale.size === 0) throw e;
    const mirrors = [...stale].map((m) => first.remoteSet([m]).display(m)).join(", ");
    if (opts.offline) throw withHint(e, `the listings of ${mirrors} came from the cache and may be stale: run without --offline to list them again`);
    opts.reporter.info(`listing ${mirrors} again: the cached listing${stale.size === 1 ? "" : "s"} may miss a version published since`);
    return await resolveWith(new GitProvider(project, local, preferredFromLock(project.lock, opts.update), run, stale), run, locker);
  }
}

/**
 * The mirrors whose cached listings may explain a failure: every one a failed resolution used (a newer version
 * may satisfy), or the locker's mirror when the locker's version was not in its cached listing.
 */
function staleListings(e: unknown, fromCache: ReadonlySet<string>, locker: LockerSpec): Set<string> {
  if (e instanceof ResolutionError) return new Set(fromCache);
  if (e instanceof CprError && e.code === "resolve.locker" && fromCache.has(locker.mirror)) return new Set([locker.mirror]);
  return new Set();
}

/** The same failure, with a note added to its hint. */
function withHint(e: unknown, note: string): unknown {
  if (e instanceof ResolutionError) return new ResolutionError(e.explanation, e.hint ? `${e.hint.trim()}\nNote: ${note}` : note, e.incompatibility);
  if (e instanceof CprError) return new CprError(e.code, e.message, { hint: e.hint ? `${e.hint}; ${note}` : note, cause: e, ...(e.where !== undefined ? { where: e.where } : {}) });
  return e;
}

/** One resolution with `provider`, closed at the end. */
async function resolveWith(provider: GitProvider, opts: ResolveOptions, lockerSpec: LockerSpec): Promise<Resolution> {
  const project = provider.project;
  try {
    // Roots the lock already knows are what the mirrors must report.
    if (project.lock) {
      for (const [root, s] of Object.entries(project.lock.sets)) {
        const tagMirrors = project.manifest.package.sets[s.tag];
        if (tagMirrors && mirrorsKey(tagMirrors.filter((m) => m !== "::")) === mirrorsKey(s.mirrors.filter((m) => m !== "::"))) {
          provider.remoteSet(tagMirrors).expectedRoot = root;
        }
      }
    }
    const solution = await solve(provider, ROOT_PKG, project.manifest.package.version);
    const deps: LockDep[] = [];
    const usedRoots = new Set<string>();
    // The composer is locked in [compose]; in [[deps]] too only when the project or another atom depends on it.
    const c = project.manifest.compose;
    let composerInDeps = c?.kind === "with" && Object.hasOwn(project.manifest.depsFrom[c.from] ?? {}, c.label);
    for (const [pkg, version] of solution.versions) {
      if (pkg === ROOT_PKG || composerInDeps) continue;
      if ((await provider.depsWithReqs(pkg, version)).has(provider.composerId ?? "")) composerInDeps = true;
    }
    for (const [pkg, version] of solution.versions) {
      if (pkg === ROOT_PKG) continue;
      if (pkg === provider.composerId && !composerInDeps) continue;
      const info = provider.pkgs.get(pkg)!;
      const cand = await provider.candidate(pkg, version);
      usedRoots.add(info.root);
      const atom: LockAtom = cand.local
        ? { label: info.label, version: localVersionText(version), set: info.root, rev: null, mirror: null, id: pkg }
        : { label: info.label, version: version.text, set: info.root, rev: cand.atom!.rev, mirror: firstUrlMirror(cand.atom!.mirrors), id: pkg };
      deps.push({ type: "atom", ...atom });
      if (cand.atom?.manifest) provider.store.noteRev(cand.atom.rev, cand.atom.manifest);
    }
    const compose = await composeEntry(project, provider, solution);
    if (provider.composerId) usedRoots.add(provider.pkgs.get(provider.composerId)!.root);
    const lockedVersion = (tag: string, label: string): string | null => {
      const root = provider.tagRoots.get(tag);
      return root === undefined ? null : (solution.versions.get(atomId(root, label))?.text ?? null);
    };
    deps.push(...(await directEntries(project, opts, lockedVersion)));
    const sets: Record<string, LockSet> = {};
    for (const root of [...usedRoots].sort()) {
      const e = provider.setEntries.get(root);
      if (e) sets[root] = { tag: e.tag, mirrors: sortMirrors([...e.mirrors]) };
    }
    const locker = project.lock?.locker ?? (await lockerOf(provider, lockerSpec));
    const lock: Lockfile = { version: 1, sets, locker, compose, deps };
    const lockText = formatLock(lock);
    const edges: Record<string, GraphEdge[]> = {};
    for (const [pkg, version] of solution.versions) {
      const d = await provider.depsWithReqs(pkg, version);
      edges[pkg] = [...d].map(([dep, v]) => ({ dep, req: v.req.text }));
    }
    return { lock, lockText, edges, stats: provider.stats };
  } finally {
    await provider.close();
  }
}

function firstUrlMirror(mirrors: readonly string[]): string | null {
  return mirrors.find((m) => m !== "::") ?? null;
}

function needsLocal(m: AtomManifest): boolean {
  return Object.values(m.package.sets).some((ms) => ms.includes("::"));
}

/** The composer's [compose] entry: the version the solver chose for it (docs/formats.md §11.4). */
async function composeEntry(project: Project, provider: GitProvider, solution: { versions: ReadonlyMap<string, Version> }): Promise<LockCompose> {
  const c = project.manifest.compose;
  if (!c || c.kind === "static") return { use: "static" };
  if (c.kind === "nix") return { use: "nix", entry: c.path };
  const id = provider.composerId!;
  const version = solution.versions.get(id)!;
  const info = provider.pkgs.get(id)!;
  const cand = await provider.candidate(id, version);
  const atom: LockAtom = cand.local
    ? { label: info.label, version: localVersionText(version), set: info.root, rev: null, mirror: null, id }
    : { label: info.label, version: version.text, set: info.root, rev: cand.atom!.rev, mirror: firstUrlMirror(cand.atom!.mirrors), id };
  return { use: "atom", ...atom, entry: c.entry };
}

async function directEntries(project: Project, opts: ResolveOptions, lockedVersion: LockedVersionOf): Promise<LockDirectDep[]> {
  const old = (project.lock?.deps ?? []).filter((d): d is LockDirectDep => d.type !== "atom");
  const out: LockDirectDep[] = [];
  for (const d of project.manifest.directNix) {
    const url = directUrl(d, lockedVersion);
    const kept = old.find((e) => directMatches(d, e, url));
    if (kept && !(opts.update === true || (Array.isArray(opts.update) && opts.update.includes(d.name)))) {
      out.push(kept);
      continue;
    }
    if (opts.offline) throw new CprError("resolve.offline", `offline: the direct Nix dependency ${d.name} is not locked yet`, { hint: "run without --offline" });
    out.push(await prefetchEntry(d, project.dir, opts, url));
  }
  return out;
}

export async function prefetchEntry(d: DirectNixDep, cwd: string, opts: { env: NodeJS.ProcessEnv; reporter: Reporter }, url: string = d.url): Promise<LockDirectDep> {
  const { prefetchDirect } = await import("../nix/prefetch.js");
  const popts = {
    cwd,
    env: opts.env,
    git: { env: opts.env, reporter: opts.reporter },
    ...(d.kind === "build" && d.unpack ? { unpack: true } : {}),
    ...(d.kind === "git" && d.ref !== null ? { ref: d.ref } : {}),
    ...(d.kind === "git" && d.requirement !== null ? { version: d.requirement.text } : {}),
  };
  const r = await prefetchDirect(d.kind, url, popts);
  switch (r.type) {
    case "nix":
      return { type: "nix", name: d.name, url, hash: r.hash! };
    case "nix+tar":
      return { type: "nix+tar", name: d.name, url, hash: r.hash! };
    case "nix+src":
      return { type: "nix+src", name: d.name, url, hash: r.hash!, unpack: r.unpack === true };
    case "nix+git":
      return { type: "nix+git", name: d.name, url, version: r.version ?? null, rev: r.rev! };
  }
}

/**
 * The [locker] of a new lock (docs/formats.md §11.9): the configured locker at its rev; without one (a configured label, version,
 * set or mirror), the rev of refs/eka/atoms/<label>/<version> as its mirror lists it. Never invented.
 */
async function lockerOf(provider: GitProvider, spec: LockerSpec): Promise<LockAtom> {
  if (spec.rev !== null) return lockerEntry({ ...spec, rev: spec.rev });
  const ref = `refs/eka/atoms/${spec.label}/${spec.version}`;
  const set = provider.remoteSet([spec.mirror]);
  const where = set.display(spec.mirror);
  const hint = `set locker.rev (CPR_LOCKER_REV) to the commit id of ${ref}, or locker.mirror (CPR_LOCKER_MIRROR) to a mirror that has it; \`cpr config list\` shows the locker configured`;
  let listing: SetListing;
  try {
    listing = await set.list(spec.label, spec.version);
  } catch (e) {
    throw new CprError("resolve.locker", `cannot write a lock: the locker's rev (${ref}) could not be listed from ${where}: ${e instanceof Error ? e.message : String(e)}`, { where, hint, cause: e });
  }
  if (listing.root !== spec.set) {
    throw new CprError("resolve.locker", `cannot write a lock: the locker's mirror ${where} is the set with root ${listing.root}, not locker.set ${spec.set}`, {
      where,
      hint: "set locker.set to the root of the locker's set, or locker.mirror to a mirror of that set",
    });
  }
  const a = listing.atoms.find((x) => x.version === spec.version);
  if (!a) throw new CprError("resolve.locker", `cannot write a lock: the locker's mirror ${where} has no ${ref}`, { where, hint });
  return lockerEntry({ ...spec, rev: a.rev });
}

// ---------------------------------------------------------------------------------------------------------------
// The graph beside the lock (for tree/why with no network), keyed by the lock's bytes.

function graphFile(cacheDir: string, lockText: string): string {
  return cacheLayout(cacheDir).graph(createHash("sha256").update(lockText).digest("hex").slice(0, 40));
}

export function saveGraph(cacheDir: string, lockText: string, edges: Readonly<Record<string, readonly GraphEdge[]>>): void {
  const f = graphFile(cacheDir, lockText);
  mkdirSync(cacheLayout(cacheDir).graphs, { recursive: true });
  writeFileSync(f, JSON.stringify(edges));
}

export function loadGraph(cacheDir: string, lockText: string): Record<string, GraphEdge[]> | null {
  try {
    return JSON.parse(readFileSync(graphFile(cacheDir, lockText), "utf8")) as Record<string, GraphEdge[]>;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// No-op check: does the lock already satisfy the manifest? (No network, no git.)

export function lockSatisfies(project: Project, cacheDir: string): boolean {
  const { manifest, lock, lockText } = project;
  if (!lock || lockText === null) return false;
  const { mismatches, direct } = checkLock(manifest, lock);
  if (mismatches.length > 0) return false;
  // Every atom entry must still be needed (reachable from the project) when the graph is known.
  const graph = loadGraph(cacheDir, lockText);
  if (!graph) return true;
  const seen = new Set<string>();
  const todo = [...direct];
  while (todo.length) {
    const id = todo.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of graph[id] ?? []) todo.push(e.dep);
  }
  return lock.deps.every((d) => d.type !== "atom" || seen.has(d.id));
}
