/**
 * One set as seen through its mirrors. Labels asked for in the same tick are listed together: every mirror is
 * asked concurrently with ONE ls-refs exchange (`refs/eka/atoms/<label>/` for each label, and `refs/ekala/init`). Resolution goes on while at least one consistent mirror answers (a warning per dead one);
 * mirrors with different roots, or the same version with different revs, are refused as possible tampering.
 */
import { lsRefs } from "../git/lsrefs.js";
import { displayUrl, parseRemoteUrl } from "../git/remote.js";
import { CprError } from "../protocol/errors.js";
import { groupListing, listingPrefixes } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import type { GitUrl } from "../protocol/uri.js";
import type { CachedAtom, ListingCache, NetStats } from "./cache.js";

/** A version of a label on a set, with the mirrors (URL text) that listed it, in mirror order. */
export interface SetAtom extends CachedAtom {
  readonly mirrors: readonly string[];
}

export interface SetListing {
  readonly root: string;
  readonly atoms: readonly SetAtom[];
}

export interface MirrorContext {
  readonly cache: ListingCache;
  readonly stats: NetStats;
  readonly reporter: Reporter;
  readonly env: NodeJS.ProcessEnv;
  /** Base for relative mirror paths. */
  readonly cwd: string;
  readonly offline: boolean;
  /** Refresh listings even when the cache is fresh (update). */
  readonly refresh: boolean;
}

interface Pending {
  labels: Set<string>;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

export class RemoteSet {
  /** URL mirrors (never "::"), as written. */
  readonly mirrors: readonly string[];
  private readonly urls: Map<string, GitUrl>;
  private readonly results = new Map<string, SetListing | CprError>();
  private pending: Pending | null = null;
  private inflight = new Map<string, Promise<void>>();
  /** The root this set must have (from the lock, or another source), if known. */
  expectedRoot: string | null = null;
  private warnedDead = new Set<string>();

  constructor(mirrors: readonly string[], private readonly ctx: MirrorContext) {
    this.mirrors = [...new Set(mirrors.filter((m) => m !== "::"))];
    this.urls = new Map(this.mirrors.map((m) => [m, parseRemoteUrl(m, ctx.cwd, "mirror")]));
  }

  display(m: string): string {
    const u = this.urls.get(m);
    return u ? displayUrl(u) : m;
  }

  /** The consistent listing of `label` (versions on any answering mirror). */
  async list(label: string): Promise<SetListing> {
    const done = this.results.get(label);
    if (done) {
      if (done instanceof CprError) throw done;
      return done;
    }
    const fromCache = this.fromCache(label);
    if (fromCache) {
      this.results.set(label, fromCache);
      return fromCache;
    }
    let p = this.inflight.get(label);
    if (!p) {
      p = this.enqueue(label);
      this.inflight.set(label, p);
    }
    await p;
    const r = this.results.get(label)!;
    if (r instanceof CprError) throw r;
    return r;
  }

  /** Many labels at once (one exchange per mirror when none is cached). */
  async listMany(labels: readonly string[]): Promise<Map<string, SetListing>> {
    const out = await Promise.all(labels.map(async (l) => [l, await this.list(l)] as const));
    return new Map(out);
  }

  private fromCache(label: string): SetListing | null {
    if (this.mirrors.length === 0) return null;
    const entries = this.mirrors.map((m) => [m, this.ctx.cache.get(m, label)] as const);
    if (this.ctx.offline) {
      const have = entries.filter(([, e]) => e !== null);
      if (have.length === 0) {
        throw new CprError(
          "resolve.offline",
          `offline: no cached listing of '${label}' from ${this.mirrors.map((m) => this.display(m)).join(", ")}`,
          { hint: "run `cpr resolve` once with network access to fill the cache" },
        );
      }
      return this.combine(label, have.map(([m, e]) => ({ mirror: m, root: e!.root, atoms: e!.atoms })), false);
    }
    if (this.ctx.refresh) return null;
    if (entries.every(([, e]) => e !== null && e.fresh)) {
      return this.combine(label, entries.map(([m, e]) => ({ mirror: m, root: e!.root, atoms: e!.atoms })), false);
    }
    return null;
  }

  private enqueue(label: string): Promise<void> {
    if (!this.pending) {
      const pending: Pending = { labels: new Set(), waiters: [] };
      this.pending = pending;
      setImmediate(() => {
        this.pending = null;
        this.query([...pending.labels]).then(
          () => pending.waiters.forEach((w) => w.resolve()),
          (e) => pending.waiters.forEach((w) => w.reject(e)),
        );
      });
    }
    const pending = this.pending;
    pending.labels.add(label);
    return new Promise((resolve, reject) => pending.waiters.push({ resolve, reject }));
  }

  private async query(labels: string[]): Promise<void> {
    if (this.mirrors.length === 0) {
      for (const l of labels) this.results.set(l, new CprError("resolve.no-mirror", `'${l}': its set has no mirror to list it from`));
      return;
    }
    // Atom refs and the root only: manifests are fetched by ref name later (the meta refs would triple the bytes).
    const prefixes = listingPrefixes(labels, { meta: false });
    const answers = await Promise.all(
      this.mirrors.map(async (m) => {
        this.ctx.stats.connections += 1;
        try {
          const r = await lsRefs(this.urls.get(m)!, prefixes, { env: this.ctx.env, cwd: this.ctx.cwd, reporter: this.ctx.reporter });
          this.ctx.stats.roundTrips += r.roundTrips;
          this.ctx.stats.bytesReceived += r.bytesReceived;
          return { mirror: m, refs: r.refs, error: null };
        } catch (e) {
          return { mirror: m, refs: null, error: e };
        }
      }),
    );
    const ok: { mirror: string; root: string | null; atoms: CachedAtom[]; byLabel: Map<string, CachedAtom[]> }[] = [];
    for (const a of answers) {
      if (a.refs === null) {
        this.warnDead(a.mirror, a.error instanceof Error ? a.error.message : String(a.error));
        continue;
      }
      const listing = groupListing(a.refs, labels);
      if (listing.root === null) {
        this.warnDead(a.mirror, "it is not an initialized atom set (no refs/ekala/init)");
        continue;
      }
      const byLabel = new Map<string, CachedAtom[]>(labels.map((l) => [l, []]));
      for (const at of listing.atoms) {
        if (at.format !== "pre1") continue;
        byLabel.get(at.label)?.push({ version: at.version, rev: at.rev, manifest: at.manifest });
      }
      this.ctx.cache.put(a.mirror, listing.root, byLabel);
      ok.push({ mirror: a.mirror, root: listing.root, atoms: [], byLabel });
    }
    if (ok.length === 0) {
      const err = new CprError("resolve.mirrors-down", `no mirror of the set answered: ${this.mirrors.map((m) => this.display(m)).join(", ")}`, {
        hint: "check the URLs in [package.sets], or use --offline to resolve from the cache",
      });
      for (const l of labels) this.results.set(l, err);
      return;
    }
    for (const l of labels) {
      try {
        this.results.set(l, this.combine(l, ok.map((o) => ({ mirror: o.mirror, root: o.root, atoms: o.byLabel.get(l) ?? [] })), true));
      } catch (e) {
        if (e instanceof CprError) this.results.set(l, e);
        else throw e;
      }
    }
  }

  private warnDead(mirror: string, why: string): void {
    if (this.warnedDead.has(mirror)) return;
    this.warnedDead.add(mirror);
    this.ctx.reporter.warn(`mirror ${this.display(mirror)} did not answer, going on without it: ${why}`);
  }

  /** Check roots and revs across mirrors and merge their versions. */
  private combine(label: string, parts: readonly { mirror: string; root: string | null; atoms: readonly CachedAtom[] }[], live: boolean): SetListing {
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
          if (seen.atom.manifest === null && a.manifest !== null) seen.atom = a;
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
