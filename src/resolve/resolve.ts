/**
 * Dependency resolution over git (issue 3): the git-backed provider (provider.ts) answers the PubGrub solver
 * (pubgrub.ts), preferring the versions of the existing lock (preferences.ts); the solution becomes the new lock
 * (lock-assembly.ts) and the resolved graph, which lock-project.ts records beside it (graph.ts).
 *
 * Listings come from the cache while fresh (the TTL). A version published since may be missing from them: when
 * resolution then fails, the sets whose listings came from the cache are listed again from the network and the
 * resolution is retried once before the failure is reported, as cargo refreshes its index (never under --offline,
 * whose error then says the listings may be stale).
 */
import { CprError } from "../protocol/errors.js";
import { DEFAULT_LOCKER_SPEC, formatLock, type LockerSpec, type Lockfile } from "../protocol/lock.js";
import type { AtomManifest } from "../protocol/atom-manifest.js";
import { ResolutionError, solve } from "./pubgrub.js";
import { newStats, type NetStats } from "./connections.js";
import { ROOT_PKG, type GraphEdge } from "./graph.js";
import { assembleLock } from "./lock-assembly.js";
import { preferredFromLock } from "./preferences.js";
import { GitProvider, type ResolveOptions } from "./provider.js";
import { loadLocalSet, type Project } from "./project.js";

export interface Resolution {
  readonly lock: Lockfile;
  readonly lockText: string;
  /** AtomId (or ROOT_PKG) → its requirements, for tree/why. */
  readonly edges: Readonly<Record<string, readonly GraphEdge[]>>;
  readonly stats: NetStats;
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
    if (opts.offline)
      throw withHint(e, `the listings of ${mirrors} came from the cache and may be stale: run without --offline to list them again`);
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
  if (e instanceof ResolutionError)
    return new ResolutionError(e.explanation, e.hint ? `${e.hint.trim()}\nNote: ${note}` : note, e.incompatibility);
  if (e instanceof CprError)
    return new CprError(e.code, e.message, {
      hint: e.hint ? `${e.hint}; ${note}` : note,
      cause: e,
      ...(e.where !== undefined ? { where: e.where } : {}),
    });
  return e;
}

/** One resolution with `provider`, closed at the end. */
async function resolveWith(provider: GitProvider, opts: ResolveOptions, lockerSpec: LockerSpec): Promise<Resolution> {
  const project = provider.project;
  try {
    provider.expectLockedRoots();
    let solution;
    try {
      solution = await solve(provider, ROOT_PKG, project.manifest.package.version);
    } catch (e) {
      throw withYankHint(e, provider.skippedYanked);
    }
    await provider.warnYanked(solution.versions);
    const lock = await assembleLock(provider, solution, opts, lockerSpec);
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

/** A failed resolution that left yanked versions out says so: one of them may be the only match. */
function withYankHint(e: unknown, skipped: ReadonlyMap<string, ReadonlySet<string>>): unknown {
  if (!(e instanceof ResolutionError) || skipped.size === 0) return e;
  const list = [...skipped].map(([label, versions]) => `${label} ${[...versions].join(", ")}`).join("; ");
  return withHint(e, `yanked versions are never picked for a new lock, and these were left out: ${list}`);
}

function needsLocal(m: AtomManifest): boolean {
  return Object.values(m.package.sets).some((ms) => ms.includes("::"));
}
