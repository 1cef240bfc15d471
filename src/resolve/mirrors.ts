/**
 * One set as seen through its mirrors. Labels asked for in the same tick are listed together: every mirror is
 * asked concurrently with ONE ls-refs exchange (`refs/eka/atoms/<label>/<prefix>` for each label, and
 * `refs/ekala/init`), on that mirror's connection of the run (connections.ts). Resolution goes on while at least one
 * consistent mirror answers (a warning per dead one); mirrors with different roots, or the same version with
 * different revs, are refused as possible tampering.
 */
import { displayUrl, parseRemoteUrl } from "../git/remote.js";
import { CprError } from "../protocol/errors.js";
import { ATOMS_PREFIX, groupListing, INIT_REF, YANK_REFS_PREFIX } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import type { GitUrl } from "../protocol/uri.js";
import { VersionSet } from "../protocol/version-set.js";
import { compareVersions, makeVersion, type Version } from "../protocol/version.js";
import { listingKey, type CachedAtom, type ListingCache } from "./cache.js";
import type { Connections, NetStats } from "./connections.js";
import type { UploadPackConnection } from "../git/lsrefs.js";
import type { ListedRef } from "../protocol/refs.js";

/** A version of a label on a set, with the mirrors (URL text) that listed it, in mirror order. */
export interface SetAtom extends CachedAtom {
  readonly mirrors: readonly string[];
}

export interface SetListing {
  readonly root: string;
  readonly atoms: readonly SetAtom[];
}

/**
 * The versions whose text starts with `prefix`, for the prefixes listingPrefix makes: `""` (all), `M.` (major M),
 * `M.m.` (minor M.m) or `M.m.p` (that release and its pre-releases and builds; a listing of it may also hold
 * `M.m.p0…`, which is harmless).
 */
export function prefixSet(prefix: string): VersionSet {
  let set = prefixSets.get(prefix);
  if (set === undefined) prefixSets.set(prefix, (set = makePrefixSet(prefix)));
  return set;
}

const prefixSets = new Map<string, VersionSet>();

function makePrefixSet(prefix: string): VersionSet {
  if (prefix === "") return VersionSet.full;
  const parts = prefix.replace(/\.$/, "").split(".").map(Number);
  const [M, m, p] = parts as [number, number | undefined, number | undefined];
  const lo = makeVersion(M, m ?? 0, p ?? 0, [0]);
  const hi =
    m === undefined ? makeVersion(M + 1, 0, 0, [0]) : p === undefined ? makeVersion(M, m + 1, 0, [0]) : makeVersion(M, m, p + 1, [0]);
  return VersionSet.interval({ version: lo, inclusive: true }, { version: hi, inclusive: false });
}

/**
 * The narrowest listing prefix under `refs/eka/atoms/<label>/` that holds every version of `set`: a whole
 * version `M.m.p` (`=1.2.3`), a minor `M.m.` (`^0.3.1`, `~1.2`), a major `M.` (`^1.2`, `>=1.2, <1.5`), or `""`
 * (`*`, `>=1`). A prefix always ends at a `.` or a whole version: `1` would also match `10.0.0`.
 */
export function listingPrefix(set: VersionSet): string {
  let p = listingPrefixes.get(set);
  if (p === undefined) listingPrefixes.set(set, (p = computeListingPrefix(set)));
  return p;
}

/** VersionSets are immutable: the prefix of one is computed once. */
const listingPrefixes = new WeakMap<VersionSet, string>();

function computeListingPrefix(set: VersionSet): string {
  if (set.isEmpty()) return "";
  let lo: Version | null = null;
  for (const iv of [...set.intervals, ...set.prereleaseIntervals]) {
    const v = iv.lower?.version ?? makeVersion(0, 0, 0);
    if (lo === null || compareVersions(v, lo) < 0) lo = v;
  }
  for (const p of [`${lo!.major}.${lo!.minor}.${lo!.patch}`, `${lo!.major}.${lo!.minor}.`, `${lo!.major}.`]) {
    if (set.isSubsetOf(prefixSet(p))) return p;
  }
  return "";
}

export interface MirrorContext {
  readonly cache: ListingCache;
  readonly stats: NetStats;
  /** Open connections to mirrors, reused by listings and manifest fetches. */
  readonly connections: Connections;
  readonly reporter: Reporter;
  readonly env: NodeJS.ProcessEnv;
  /** Base for relative mirror paths. */
  readonly cwd: string;
  readonly offline: boolean;
  /** Refresh listings even when the cache is fresh (update). */
  readonly refresh: boolean;
  /** Mirrors whose cached listings must not be used (a set with one of them is listed from the network). */
  readonly relist?: ReadonlySet<string>;
  /** Gets the mirrors of every set answered from the cache (a failure may then be a stale listing). */
  readonly fromCache?: Set<string>;
  /** Called before a listing goes out to the network (the resolver starts what it will need meanwhile). */
  readonly beforeNetwork?: () => void;
  /**
   * Called with the listing of the set's first mirror as soon as it is read, on the connection it came over, before
   * that connection serves anything else: the resolver fetches there, speculatively, the manifests of the versions
   * it will most likely pick (saving a round of exchanges per level of the graph). Errors are its own business.
   */
  readonly afterListing?: (
    set: MirroredSet,
    mirror: string,
    conn: UploadPackConnection,
    root: string,
    listed: readonly ListedLabel[],
  ) => Promise<void>;
}

/** What one mirror listed for a label under a prefix. */
export interface ListedLabel {
  readonly label: string;
  readonly prefix: string;
  readonly atoms: readonly CachedAtom[];
}

interface Pending {
  /** listingKey → what to list */
  wanted: Map<string, { label: string; prefix: string }>;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

export class MirroredSet {
  /** URL mirrors (never "::"), as written. */
  readonly mirrors: readonly string[];
  private readonly urls: Map<string, GitUrl>;
  /** label → prefix → listing (or why it failed). */
  private readonly results = new Map<string, Map<string, SetListing | CprError>>();
  private pending: Pending | null = null;
  private inflight = new Map<string, Promise<void>>();
  /** The root this set must have (from the lock, or another source), if known. */
  expectedRoot: string | null = null;
  private warnedDead = new Set<string>();

  constructor(
    mirrors: readonly string[],
    private readonly ctx: MirrorContext,
  ) {
    this.mirrors = [...new Set(mirrors.filter((m) => m !== "::"))];
    this.urls = new Map(this.mirrors.map((m) => [m, parseRemoteUrl(m, ctx.cwd, "mirror")]));
  }

  /** The parsed URL of mirror `m`. */
  url(m: string): GitUrl {
    return this.urls.get(m)!;
  }

  display(m: string): string {
    const u = this.urls.get(m);
    return u ? displayUrl(u) : m;
  }

  /**
   * The consistent listing of the versions of `label` whose text starts with `prefix` (versions on any answering
   * mirror): only `refs/eka/atoms/<label>/<prefix>` is asked for, unless a listing of a shorter prefix (which
   * covers it) is already at hand.
   */
  async list(label: string, prefix = ""): Promise<SetListing> {
    for (;;) {
      const done = this.resultFor(label, prefix);
      if (done) {
        if (done instanceof CprError) throw done;
        return done;
      }
      const fromCache = this.fromCache(label, prefix);
      if (fromCache) {
        this.setResult(label, prefix, fromCache);
        return fromCache;
      }
      // A listing of this prefix or of a shorter one already on its way: wait for it, then look again.
      let waiting: Promise<void> | null = null;
      for (let n = 0; n <= prefix.length && !waiting; n++) waiting = this.inflight.get(listingKey(label, prefix.slice(0, n))) ?? null;
      if (!waiting) {
        const key = listingKey(label, prefix);
        waiting = this.enqueue(label, prefix).finally(() => this.inflight.delete(key));
        this.inflight.set(key, waiting);
      }
      await waiting;
      const r = this.results.get(label)?.get(prefix);
      if (r instanceof CprError) throw r;
    }
  }

  /** Many labels at once, each with its prefix (one exchange per mirror for those not cached). */
  async listMany(wanted: readonly (readonly [string, string])[]): Promise<Map<string, SetListing>> {
    const out = await Promise.all(wanted.map(async ([l, p]) => [l, await this.list(l, p)] as const));
    return new Map(out);
  }

  private setResult(label: string, prefix: string, r: SetListing | CprError): void {
    let m = this.results.get(label);
    if (!m) {
      m = new Map();
      this.results.set(label, m);
    }
    m.set(prefix, r);
  }

  /** A listing of `prefix`, or one of a shorter prefix cut down to it; an error only for this very prefix. */
  private resultFor(label: string, prefix: string): SetListing | CprError | null {
    const m = this.results.get(label);
    if (!m) return null;
    const exact = m.get(prefix);
    if (exact) return exact;
    for (let n = prefix.length - 1; n >= 0; n--) {
      const r = m.get(prefix.slice(0, n));
      if (r && !(r instanceof CprError)) return { root: r.root, atoms: r.atoms.filter((a) => a.version.startsWith(prefix)) };
    }
    return null;
  }

  private fromCache(label: string, prefix: string): SetListing | null {
    if (this.mirrors.length === 0) return null;
    const entries = this.mirrors.map((m) => [m, this.ctx.cache.get(m, label, prefix)] as const);
    if (this.ctx.offline) {
      const have = entries.filter(([, e]) => e !== null);
      if (have.length === 0) {
        throw new CprError(
          "resolve.offline",
          `offline: no cached listing of '${label}' from ${this.mirrors.map((m) => this.display(m)).join(", ")}`,
          { hint: "run `cpr resolve` once with network access to fill the cache" },
        );
      }
      const listing = this.combine(
        label,
        have.map(([m, e]) => ({ mirror: m, root: e!.root, atoms: e!.atoms })),
        false,
      );
      for (const [m] of have) this.ctx.fromCache?.add(m);
      return listing;
    }
    if (this.ctx.refresh || this.mirrors.some((m) => this.ctx.relist?.has(m))) return null;
    if (entries.every(([, e]) => e !== null && e.fresh)) {
      const listing = this.combine(
        label,
        entries.map(([m, e]) => ({ mirror: m, root: e!.root, atoms: e!.atoms })),
        false,
      );
      for (const m of this.mirrors) this.ctx.fromCache?.add(m);
      return listing;
    }
    return null;
  }

  private enqueue(label: string, prefix: string): Promise<void> {
    if (!this.pending) {
      const pending: Pending = { wanted: new Map(), waiters: [] };
      this.pending = pending;
      setImmediate(() => {
        this.pending = null;
        this.query([...pending.wanted.values()]).then(
          () => pending.waiters.forEach((w) => w.resolve()),
          (e) => pending.waiters.forEach((w) => w.reject(e)),
        );
      });
    }
    const pending = this.pending;
    pending.wanted.set(listingKey(label, prefix), { label, prefix });
    return new Promise((resolve, reject) => pending.waiters.push({ resolve, reject }));
  }

  private async query(wanted: { label: string; prefix: string }[]): Promise<void> {
    const labels = [...new Set(wanted.map((w) => w.label))];
    if (this.mirrors.length === 0) {
      for (const w of wanted)
        this.setResult(w.label, w.prefix, new CprError("resolve.no-mirror", `'${w.label}': its set has no mirror to list it from`));
      return;
    }
    // Atom refs and the root only: manifests are fetched by ref name later (the meta refs would triple the bytes).
    // Per label only the versions its requirement can allow: refs/eka/atoms/<label>/<prefix> (e.g. `1.` for ^1.2),
    // and the yank records of the same versions (refs/eka/yank/<label>/<prefix>: nothing at all when none is yanked).
    const prefixes = [
      ...new Set(wanted.flatMap((w) => [`${ATOMS_PREFIX}${w.label}/${w.prefix}`, `${YANK_REFS_PREFIX}${w.label}/${w.prefix}`])),
      INIT_REF,
    ];
    const parse = (refs: readonly ListedRef[]): { root: string | null; byKey: Map<string, CachedAtom[]> } => {
      const listing = groupListing(refs, labels);
      const byLabel = new Map<string, CachedAtom[]>(labels.map((l) => [l, []]));
      for (const at of listing.atoms) {
        if (at.format !== "pre1") continue;
        byLabel.get(at.label)?.push({ version: at.version, rev: at.rev, manifest: at.manifest, ...(at.yank ? { yank: at.yank } : {}) });
      }
      const byKey = new Map<string, CachedAtom[]>();
      for (const w of wanted)
        byKey.set(
          listingKey(w.label, w.prefix),
          (byLabel.get(w.label) ?? []).filter((x) => x.version.startsWith(w.prefix)),
        );
      return { root: listing.root, byKey };
    };
    this.ctx.beforeNetwork?.();
    const answers = await Promise.all(
      this.mirrors.map(async (m, i) => {
        try {
          const hook = i === 0 ? this.ctx.afterListing : undefined;
          let parsed: ReturnType<typeof parse> | null = null;
          let early: ((refs: readonly ListedRef[]) => void) | null = null;
          const listed = new Promise<readonly ListedRef[]>((resolve) => (early = resolve));
          const done = this.ctx.connections.use(m, this.urls.get(m)!, async (c) => {
            const refs = await c.lsRefs(prefixes);
            if (!hook) return refs;
            // The listing goes on at once; the connection stays with the hook until it is done.
            early!(refs);
            parsed = parse(refs);
            if (parsed.root !== null) {
              const root = parsed.root;
              const byKey = parsed.byKey;
              await hook(
                this,
                m,
                c,
                root,
                wanted.map((w) => ({ label: w.label, prefix: w.prefix, atoms: byKey.get(listingKey(w.label, w.prefix)) ?? [] })),
              ).catch(() => {});
            }
            return refs;
          });
          done.catch(() => {});
          const refs = await Promise.race([listed, done]);
          return { mirror: m, refs, parsed: parsed as ReturnType<typeof parse> | null, error: null };
        } catch (e) {
          return { mirror: m, refs: null, parsed: null, error: e };
        }
      }),
    );
    const ok: { mirror: string; root: string | null; atoms: CachedAtom[]; byLabel: Map<string, CachedAtom[]> }[] = [];
    for (const a of answers) {
      if (a.refs === null) {
        this.warnDead(a.mirror, a.error instanceof Error ? a.error.message : String(a.error));
        continue;
      }
      const { root, byKey } = a.parsed ?? parse(a.refs);
      // A listing is complete and answers this request (lsrefs.ts; anything else failed as remote.transport), so a
      // missing refs/ekala/init really means an uninitialized set.
      if (root === null) {
        this.warnDead(a.mirror, "it is not an initialized atom set (no refs/ekala/init)");
        continue;
      }
      this.ctx.cache.put(a.mirror, root, byKey);
      ok.push({ mirror: a.mirror, root, atoms: [], byLabel: byKey });
    }
    if (ok.length === 0) {
      const err = new CprError(
        "resolve.mirrors-down",
        `no mirror of the set answered: ${this.mirrors.map((m) => this.display(m)).join(", ")}`,
        {
          hint: "check the URLs in [package.sets], or use --offline to resolve from the cache",
        },
      );
      for (const w of wanted) this.setResult(w.label, w.prefix, err);
      return;
    }
    for (const w of wanted) {
      const k = listingKey(w.label, w.prefix);
      try {
        this.setResult(
          w.label,
          w.prefix,
          this.combine(
            w.label,
            ok.map((o) => ({ mirror: o.mirror, root: o.root, atoms: o.byLabel.get(k) ?? [] })),
            true,
          ),
        );
      } catch (e) {
        if (e instanceof CprError) this.setResult(w.label, w.prefix, e);
        else throw e;
      }
    }
  }

  private warnDead(mirror: string, why: string): void {
    if (this.warnedDead.has(mirror)) return;
    this.warnedDead.add(mirror);
    this.ctx.reporter.warn("resolve.mirror-down", `mirror ${this.display(mirror)} did not answer, going on without it: ${why}`);
  }

  /** Check roots and revs across mirrors and merge their versions. */
  private combine(
    label: string,
    parts: readonly { mirror: string; root: string | null; atoms: readonly CachedAtom[] }[],
    live: boolean,
  ): SetListing {
    void live;
    let root: string | null = this.expectedRoot;
    let rootFrom = this.expectedRoot === null ? null : "the lock";
    for (const p of parts) {
      if (p.root === null) continue;
      if (root === null) {
        root = p.root;
        rootFrom = this.display(p.mirror);
      } else if (p.root !== root) {
        throw new CprError(
          "resolve.root-mismatch",
          `mirrors disagree about the set's root: ${rootFrom} has ${root}, ${this.display(p.mirror)} has ${p.root}; refusing them as possible tampering`,
          { hint: "remove the wrong mirror from [package.sets], or fix its refs/ekala/init" },
        );
      }
    }
    if (root === null) throw new CprError("resolve.no-root", `no mirror of '${label}' reported a set root`);
    const byVersion = new Map<string, { atom: CachedAtom; mirrors: string[] }>();
    for (const p of parts) {
      for (const a of p.atoms) {
        const seen = byVersion.get(a.version);
        if (!seen) byVersion.set(a.version, { atom: a, mirrors: [p.mirror] });
        else if (seen.atom.rev !== a.rev) {
          throw new CprError(
            "resolve.rev-mismatch",
            `${label} ${a.version} has rev ${seen.atom.rev} on ${this.display(seen.mirrors[0]!)} but ${a.rev} on ${this.display(p.mirror)}; refusing them as possible tampering`,
            { hint: "a published version never changes: one of these mirrors was rewritten; remove it from [package.sets]" },
          );
        } else {
          seen.mirrors.push(p.mirror);
          if (seen.atom.manifest === null && a.manifest !== null) seen.atom = { ...a, ...(seen.atom.yank ? { yank: seen.atom.yank } : {}) };
          // Yanked on any mirror is yanked.
          if (a.yank && !seen.atom.yank) seen.atom = { ...seen.atom, yank: a.yank };
        }
      }
    }
    return { root, atoms: [...byVersion.values()].map((v) => ({ ...v.atom, mirrors: v.mirrors })) };
  }

  /** The root from any cached listing, or null. */
  cachedRoot(): string | null {
    for (const m of this.mirrors) {
      const r = this.ctx.cache.root(m);
      if (r) return r;
    }
    return null;
  }
}
