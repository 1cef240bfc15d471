/**
 * The git-backed PubGrub provider (issue 3): its packages are AtomIds, its versions come from ls-refs listings of
 * every mirror of a set, and its dependencies come from manifest blobs fetched alone (never atom content or history)
 * into the shared cache. Lazy and parallel: labels asked for in one tick are listed in one exchange per mirror, and
 * manifests wanted in one tick are fetched in one exchange per mirror. Each mirror has one connection for the whole
 * run (connections.ts); right after a set's first mirror listed some labels, the manifests of the versions the solver
 * will most likely pick are fetched on that same connection (our own protocol v2 fetch, no git process), so a level
 * of the graph costs one listing exchange and one manifest fetch per mirror.
 */
import { join } from "node:path";
import { CprError } from "../protocol/errors.js";
import { atomIdsOf } from "../protocol/id.js";
import { sortMirrors, type LockerSpec } from "../protocol/lock.js";
import { parseAtomManifest, type AtomManifest } from "../protocol/atom-manifest.js";
import { manifestRef } from "../protocol/refs.js";
import { parseYankRecord, reasonLine, yankRef } from "../protocol/yank.js";
import type { Reporter } from "../protocol/report.js";
import type { Requirement } from "../protocol/requirement.js";
import { VersionSet } from "../protocol/version-set.js";
import { compareVersions, parseVersion, type Version } from "../protocol/version.js";
import type { PartialVersions, Provider } from "./pubgrub.js";
import { ListingCache, ManifestStore } from "./cache.js";
import { Connections, newStats, type NetStats } from "./connections.js";
import { ROOT_PKG, type GraphEdge } from "./graph.js";
import { listingPrefix, prefixSet, MirroredSet, type ListedLabel, type MirrorContext, type SetAtom } from "./mirrors.js";
import type { UploadPackConnection } from "../git/lsrefs.js";
import type { LocalSet, Project } from "./project.js";

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

const idMakers = new Map<string, (label: string) => string>();
const atomIds = new Map<string, string>();

/**
 * AtomIds, computed once per (root, label) in a run (keyed BLAKE3 is not free, and the same ids recur), with one
 * keyed hasher per root (atomIdsOf).
 */
export function cachedAtomId(root: string, label: string): string {
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
  readonly sets: Set<MirroredSet>;
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

export interface Candidate {
  readonly version: Version;
  readonly local: boolean;
  readonly atom: SetAtom | null;
}

/** Resolver state for one run. */
export class GitProvider implements Provider {
  readonly stats: NetStats;
  readonly cache: ListingCache;
  readonly store: ManifestStore;
  readonly connections: Connections;
  private readonly ctx: MirrorContext;
  private readonly remoteSets = new Map<string, MirroredSet>();
  readonly pkgs = new Map<string, PkgInfo>();
  /** Per package: listing prefix → its candidates. */
  private readonly candidates = new Map<string, Map<string, Promise<Candidate[]>>>();
  private readonly deps = new Map<string, Promise<Map<string, { set: VersionSet; req: Requirement }>>>();
  /** root → lock [sets] entry (first writer wins; the project's own tags are registered first). */
  readonly setEntries = new Map<string, { tag: string; mirrors: Set<string> }>();
  private readonly pendingFetch = new Map<MirroredSet, PendingFetch[]>();
  private fetchScheduled = new Set<MirroredSet>();
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

  remoteSet(mirrors: readonly string[]): MirroredSet {
    const key = mirrorsKey(mirrors.filter((m) => m !== "::"));
    let s = this.remoteSets.get(key);
    if (!s) {
      s = new MirroredSet(mirrors, this.ctx);
      this.remoteSets.set(key, s);
    }
    return s;
  }

  /** Roots the lock already knows are what the mirrors of the project's own tags must report. */
  expectLockedRoots(): void {
    const project = this.project;
    if (!project.lock) return;
    for (const [root, s] of Object.entries(project.lock.sets)) {
      const tagMirrors = project.manifest.package.sets[s.tag];
      if (tagMirrors && mirrorsKey(tagMirrors.filter((m) => m !== "::")) === mirrorsKey(s.mirrors.filter((m) => m !== "::"))) {
        this.remoteSet(tagMirrors).expectedRoot = root;
      }
    }
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

  /** Label → yanked versions left out of the candidates (for the hint of a failed resolution). */
  readonly skippedYanked = new Map<string, Set<string>>();

  /**
   * Warn (resolve.yanked) for every yanked version of the solution (only a version the lock pinned can be one),
   * naming the reason read from its yank record (from the cache, else fetched like a manifest).
   */
  async warnYanked(versions: Iterable<readonly [string, Version]>): Promise<void> {
    for (const [pkg, version] of versions) {
      if (pkg === ROOT_PKG) continue;
      const c = await this.candidate(pkg, version);
      if (!c.atom?.yank) continue;
      const info = this.pkgs.get(pkg)!;
      let reason: string;
      try {
        reason = reasonLine(await this.yankReason(info, c.atom));
      } catch (e) {
        reason = `(its yank record could not be read: ${e instanceof Error ? e.message : String(e)})`;
      }
      this.opts.reporter.warn(
        "resolve.yanked",
        `the lock pins ${info.label} ${version.text}, which is yanked: ${reason}; it is kept, and \`cpr update ${info.label}\` moves off it`,
      );
    }
  }

  private async yankReason(info: PkgInfo, atom: SetAtom): Promise<string> {
    const where = `${yankRef(info.label, atom.version)} (${atom.mirrors.join(", ")})`;
    const [cached] = await this.store.read([atom.yank!]);
    if (cached != null) return parseYankRecord(cached, where).reason;
    if (this.ctx.offline) throw new CprError("resolve.offline", "offline, and it is not in the cache");
    const set = [...info.sets].find((s) => s.mirrors.some((m) => atom.mirrors.includes(m)))!;
    const oid = await this.queueFetch(set, yankRef(info.label, atom.version), atom);
    const [text] = await this.store.read([oid]);
    if (text == null) throw new CprError("resolve.fetch", `the yank record ${oid} was not received`);
    return parseYankRecord(text, where).reason;
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
            throw new CprError(
              "resolve.rev-mismatch",
              `${info.label} ${a.version} has rev ${seen.atom.rev} on ${seen.atom.mirrors.join(", ")} but ${a.rev} on ${a.mirrors.join(", ")}; refusing them as possible tampering`,
            );
          }
          if (seen) continue;
          // A yanked version is never picked for a new lock; the version this lock pins is kept (with a warning).
          if (a.yank && !(this.preferredVersions.has(pkg) && compareVersions(this.preferredVersions.get(pkg)!, v) === 0)) {
            const skipped = this.skippedYanked.get(info.label) ?? new Set<string>();
            skipped.add(v.text);
            this.skippedYanked.set(info.label, skipped);
            continue;
          }
          byVersion.set(v.text, { version: v, local: false, atom: a });
        }
      } catch (e) {
        if (e instanceof CprError && (e.code === "resolve.root-mismatch" || e.code === "resolve.rev-mismatch")) throw e;
        errors.push(e);
      }
    }
    if (info.local) {
      const v = info.local.manifest.package.version;
      // A version published under the same number wins: it has a rev. Otherwise the work tree's is a candidate.
      if (![...byVersion.values()].some((c) => compareVersions(c.version, v) === 0))
        byVersion.set(v.text, { version: v, local: true, atom: null });
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
        throw new CprError(
          "resolve.manifest-mismatch",
          `the manifest published for ${info.label} ${version.text} says ${manifest.package.label} ${manifest.package.version.text}`,
        );
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
    const id = cachedAtomId(this.tagRoots.get(c.from)!, c.label);
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
  async depsOf(
    manifest: AtomManifest,
    self: MirroredSet | null,
    from: string,
  ): Promise<Map<string, { set: VersionSet; req: Requirement }>> {
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
            throw new CprError(
              "resolve.no-local",
              `[package.sets].${tag} names "::" (this repository), but ${this.project.dir} is not in a git repository with commits`,
            );
          }
          root = this.local.root;
          set.expectedRoot = root;
        } else if (hasLocal && self) {
          root = (await set.list(labels[0]!, listingPrefix(VersionSet.fromRequirement(reqs[labels[0]!]!)))).root;
        } else {
          if (mirrors.length === 0) throw new CprError("resolve.no-mirror", `[package.sets].${tag} has no mirror`);
          for (const l of labels)
            this.noteWanted(l, listingPrefix(VersionSet.fromRequirement(reqs[l]!)), VersionSet.fromRequirement(reqs[l]!));
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
          const id = cachedAtomId(root, label);
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
            throw new CprError(
              "resolve.local-missing",
              `${label}: no atom with this label in the work tree of this repository, and [package.sets].${tag} has no URL to find it published`,
            );
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
  private async prefetchManifests(
    set: MirroredSet,
    mirror: string,
    conn: UploadPackConnection,
    root: string,
    listed: readonly ListedLabel[],
  ): Promise<void> {
    if (this.ctx.offline) return;
    const refs: string[] = [];
    for (const { label, prefix, atoms } of listed) {
      const within = this.wanted.get(`${label} ${prefix}`) ?? prefixSet(prefix);
      const pref = this.preferredVersions.get(cachedAtomId(root, label)) ?? null;
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
    for (const ref of refs)
      this.prefetched.set(
        `${mirror}\0${ref}`,
        done.then(
          (m) => m?.get(ref) ?? null,
          () => null,
        ),
      );
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

  private queueFetch(set: MirroredSet, ref: string, atom: SetAtom): Promise<string> {
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
  private async runFetch(set: MirroredSet, batch: PendingFetch[]): Promise<void> {
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
          else
            b.reject(
              new CprError("resolve.no-manifest", `${set.display(mirror)} has no ${b.ref}`, {
                hint: "republish it with cpr publish, which writes the meta refs",
              }),
            );
        }
        remaining = remaining.filter((b) => !here.includes(b));
      } catch (e) {
        lastError = e;
        this.opts.reporter.warn(
          "resolve.mirror-failed",
          `mirror ${set.display(mirror)}: ${e instanceof Error ? e.message : String(e)}; trying the next mirror`,
        );
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
