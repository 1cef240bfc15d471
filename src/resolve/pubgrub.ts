import { CprError } from "../protocol/errors.js";
import { VersionSet } from "../protocol/version-set.js";
import { compareVersions, type Version } from "../protocol/version.js";
import { explain } from "./explain.js";
import { Incompatibility } from "./incompatibility.js";
import { contradicts, intersectTerms, negate, negativeTerm, positiveTerm, satisfies, type Term } from "./term.js";

/**
 * PubGrub version solving (Natalie Weizenbaum's algorithm, as in Dart's pub), asynchronous: candidate versions and
 * their dependencies come from a Provider that may hit the network, lazily and with prefetching in parallel.
 * Packages are opaque string keys (cpr uses AtomIds); `name(pkg)` gives the human name used in explanations.
 *
 * Outline (pub's solver.md): the partial solution is a list of assignments (decisions, and derivations each with
 * the incompatibility that forced it) at decision levels. Unit propagation derives the negation of the one
 * undecided term of any incompatibility whose other terms are satisfied; a fully satisfied incompatibility is a
 * conflict, resolved by walking back through the satisfiers' causes to learn a new incompatibility (kept for the
 * rest of the solve) and backjumping to the level where it becomes a unit. Decision making then picks a package.
 *
 * Heuristics:
 * - **Which package**: among the packages required (positively derived) but undecided, the one with the fewest
 *   candidate versions left in its allowed set, as pub does. Packages with no candidates come first (they fail
 *   fast), a single candidate is a forced move, and conflicts are met while few alternatives are at stake. Ties
 *   go to the package required first (stable, breadth-first-ish order).
 * - **Which version**: the provider's `preferred(pkg)` (the locked version) when still allowed, else the newest
 *   allowed version. Pre-releases are only candidates when a requirement allows them (the sets are exact).
 * - **Dependency ranges**: the incompatibility "foo X depends on bar R" is widened to the run of neighbouring
 *   versions of foo already fetched with the same requirement on bar (as pub does with its full listing), which
 *   is what lets explanations say "every version of foo" or "foo <1.1.0". Only manifests already fetched are used:
 *   cpr never fetches manifests just to make a message shorter.
 * - **Fetching**: each package's version list is fetched once per solve, started as soon as the package is first
 *   mentioned by a dependency (together with `provider.prefetch` of every newly mentioned package), and, once
 *   its versions are known, the manifest of the version most likely to be chosen is fetched speculatively. So a
 *   whole level of the graph is in flight at once.
 */
export interface Provider {
  /** The human name of a package for messages, e.g. `foo` or `foo (from gh:owner/repo)`. */
  name(pkg: string): string;
  /**
   * The versions of a package (any order): at least every existing one inside `within` (default: all of them).
   * The solver asks again with a wider set when a requirement on the package widens, and claims nothing about
   * versions outside the sets it asked for. May fetch. Resolve to `[]` for a package that does not exist
   * (it becomes part of the explanation: "no versions of X exist"); reject only for real failures (no mirror
   * answered, offline and not cached…), which abort the solve with that error, not an explanation.
   */
  versions(pkg: string, within?: VersionSet): Promise<readonly Version[] | PartialVersions>;
  /** Dependencies of one version: package → allowed versions. May fetch. Called at most once per version per solve. */
  dependencies(pkg: string, version: Version): Promise<ReadonlyMap<string, VersionSet>>;
  /** Preferred version (e.g. the locked one) to try first when it is allowed; else the newest allowed is tried. */
  preferred?(pkg: string): Version | null;
  /**
   * Hint that these packages' versions/dependencies will be needed soon (start fetching in parallel). Called once
   * per package per solve, with all the packages a manifest newly mentions; the solver then calls `versions()` for
   * each of them at once, and `dependencies()` for the version it expects to pick, without waiting.
   */
  prefetch?(pkgs: readonly string[]): void;
}

/** Versions complete for `cover` only (a provider that lists part of a package's versions). */
export interface PartialVersions {
  readonly versions: readonly Version[];
  readonly cover: VersionSet;
}

interface VersionList {
  readonly list: readonly Version[];
  /** The versions the list is complete for. */
  readonly cover: VersionSet;
}

export interface Solution {
  /** package → chosen version (one per package). The root package is included. */
  readonly versions: ReadonlyMap<string, Version>;
  /** Statistics: decisions made, conflicts resolved, incompatibilities learned. */
  readonly stats: { readonly decisions: number; readonly conflicts: number; readonly learned: number };
}

/**
 * Thrown when no solution exists: a CprError (code `resolve.conflict`, exit code 1) whose message is
 * "version solving failed:" then the explanation, and whose hint lists what the user could change.
 */
export class ResolutionError extends CprError {
  /** The derivation in plain words, one sentence per line (or a line per link of a long chain), numbered where a line is referred to later. */
  readonly explanation: string;
  /** The final incompatibility (its derivation graph), for callers that want to render it differently. */
  readonly incompatibility: Incompatibility;

  constructor(explanation: string, hint: string, incompatibility: Incompatibility) {
    super("resolve.conflict", `version solving failed:\n${explanation}`, hint === "" ? {} : { hint });
    this.name = "ResolutionError";
    this.explanation = explanation;
    this.incompatibility = incompatibility;
  }
}

export { Incompatibility } from "./incompatibility.js";
export type { Term } from "./term.js";

interface Assignment {
  readonly term: Term;
  readonly level: number;
  /** null for a decision. */
  readonly cause: Incompatibility | null;
  readonly index: number;
}

type Relation = { kind: "satisfied" } | { kind: "contradicted" } | { kind: "almost"; term: Term } | { kind: "none" };

/** How long the solver computes before it lets pending I/O run (see Solver.run). */
const YIELD_EVERY_MS = 3;

/** Solve for `root` at `rootVersion`. */
export function solve(provider: Provider, root: string, rootVersion: Version): Promise<Solution> {
  return new Solver(provider, root, rootVersion).run();
}

class Solver {
  private readonly incompatibilities = new Map<string, Incompatibility[]>();
  private readonly assignments: Assignment[] = [];
  private readonly byPkg = new Map<string, Assignment[]>();
  private readonly accumulated = new Map<string, Term>();
  private readonly decisions = new Map<string, Version>();
  private level = 0;
  /** Version lists (sorted ascending, deduplicated), as promises and as resolved values. */
  /** Per package: the latest listing asked for, and the set of versions it is complete for. */
  private readonly versionPromises = new Map<string, Promise<VersionList>>();
  private readonly covered = new Map<string, VersionSet>();
  /** The set versionsOf was last asked with per package (the same object again needs no set arithmetic). */
  private readonly lastWant = new Map<string, VersionSet>();
  /** Settled version lists, so that decide() need not wait a tick per decision for lists already known. */
  private readonly versionValues = new WeakMap<Promise<VersionList>, VersionList>();
  /**
   * Per package: the version list decide() last used, for the set it was asked with (a settled list for the same
   * set object stays valid: versionsOf would return the same promise).
   */
  private readonly scan = new Map<string, { set: VersionSet; value: VersionList; count: number }>();
  private readonly depPromises = new Map<string, Promise<ReadonlyMap<string, VersionSet>>>();
  private readonly depValues = new Map<string, ReadonlyMap<string, VersionSet>>();
  private readonly mentioned = new Set<string>();
  /** The dependency incompatibilities already added, per `pkg\0version`. */
  private readonly dependencyIncompatibilities = new Map<string, Incompatibility[]>();
  private readonly stats = { decisions: 0, conflicts: 0, learned: 0 };

  constructor(
    private readonly provider: Provider,
    private readonly root: string,
    private readonly rootVersion: Version,
  ) {
    this.mentioned.add(root);
    const rootList = [rootVersion];
    this.versionPromises.set(root, Promise.resolve({ list: rootList, cover: VersionSet.full }));
    this.covered.set(root, VersionSet.full);
  }

  async run(): Promise<Solution> {
    this.addIncompatibility(new Incompatibility([negativeTerm(this.root, VersionSet.exact(this.rootVersion))], { kind: "root" }));
    let next: string | null = this.root;
    let ran = performance.now();
    while (next !== null) {
      this.propagate(next);
      next = await this.decide();
      // While everything it needs is at hand the solver runs on microtasks alone: let I/O and the fetches it
      // scheduled (speculative listings and manifests) go out every few milliseconds, not only when it blocks.
      if (performance.now() - ran > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        ran = performance.now();
      }
    }
    return { versions: new Map(this.decisions), stats: { ...this.stats } };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Fetching
  // -------------------------------------------------------------------------------------------------------------

  /**
   * The versions of `pkg`, complete at least inside `want`. A package is listed for the union of the sets asked
   * for so far: one outside it asks the provider for that set (the provider lists only what it is missing and
   * says which versions all its listings so far cover), and the lists are merged.
   */
  private versionsOf(pkg: string, want: VersionSet): Promise<VersionList> {
    const prev = this.versionPromises.get(pkg);
    if (prev !== undefined && this.lastWant.get(pkg) === want) return prev;
    this.lastWant.set(pkg, want);
    const cov = this.covered.get(pkg);
    if (prev !== undefined && cov !== undefined && want.isSubsetOf(cov)) return prev;
    const asked = cov === undefined ? want : cov.union(want);
    this.covered.set(pkg, asked);
    const p = Promise.all([
      prev ? prev.catch(() => ({ list: [] as readonly Version[] })) : { list: [] as readonly Version[] },
      this.provider.versions(pkg, want),
    ]).then(([old, answer]) => {
      const list = "cover" in answer ? answer.versions : answer;
      const cover = "cover" in answer ? answer.cover : VersionSet.full;
      if (asked.isSubsetOf(cover)) this.covered.set(pkg, cover.union(this.covered.get(pkg) ?? VersionSet.empty));
      const sorted = [...old.list, ...list].sort(compareVersions).filter((v, i, a) => i === 0 || compareVersions(a[i - 1]!, v) !== 0);
      const value = { list: sorted, cover };
      this.versionValues.set(p, value);
      return value;
    });
    this.versionPromises.set(pkg, p);
    this.scan.delete(pkg);
    return p;
  }

  private depsOf(pkg: string, v: Version): Promise<ReadonlyMap<string, VersionSet>> {
    const key = `${pkg}\0${v.text}`;
    let p = this.depPromises.get(key);
    if (p === undefined) {
      p = this.provider.dependencies(pkg, v).then((deps) => {
        this.depValues.set(key, deps);
        return deps;
      });
      this.depPromises.set(key, p);
    }
    return p;
  }

  private cachedDeps(pkg: string, v: Version): ReadonlyMap<string, VersionSet> | undefined {
    return this.depValues.get(`${pkg}\0${v.text}`);
  }

  /** The version we would pick for `pkg` if `set` were all we knew. */
  private likelyVersion(pkg: string, list: readonly Version[], set: VersionSet): Version | null {
    const pref = this.provider.preferred?.(pkg) ?? null;
    if (pref !== null && set.contains(pref) && list.some((v) => compareVersions(v, pref) === 0)) return pref;
    for (let i = list.length - 1; i >= 0; i--) if (set.contains(list[i]!)) return list[i]!;
    return null;
  }

  /** Start fetching the packages a dependency list mentions for the first time (versions, then a likely manifest). */
  private mention(deps: ReadonlyMap<string, VersionSet>): void {
    const fresh = [...deps.keys()].filter((d) => !this.mentioned.has(d));
    if (fresh.length === 0) return;
    for (const d of fresh) this.mentioned.add(d);
    this.provider.prefetch?.(fresh);
    for (const d of fresh) {
      const set = deps.get(d)!;
      this.versionsOf(d, set)
        .then(({ list }) => {
          const v = this.likelyVersion(d, list, set);
          if (v !== null) this.depsOf(d, v).catch(() => {}); // speculative; a real failure surfaces when awaited
        })
        .catch(() => {}); // surfaces when the solver awaits it
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Partial solution
  // -------------------------------------------------------------------------------------------------------------

  private assign(term: Term, cause: Incompatibility | null): void {
    const a: Assignment = { term, level: this.level, cause, index: this.assignments.length };
    this.assignments.push(a);
    let list = this.byPkg.get(term.pkg);
    if (!list) this.byPkg.set(term.pkg, (list = []));
    list.push(a);
    const prev = this.accumulated.get(term.pkg);
    this.accumulated.set(term.pkg, prev ? intersectTerms(prev, term) : term);
  }

  private backtrack(level: number): void {
    const touched = new Set<string>();
    while (this.assignments.length > 0 && this.assignments[this.assignments.length - 1]!.level > level) {
      const a = this.assignments.pop()!;
      touched.add(a.term.pkg);
      this.byPkg.get(a.term.pkg)!.pop();
      if (a.cause === null) this.decisions.delete(a.term.pkg);
    }
    for (const pkg of touched) {
      const list = this.byPkg.get(pkg)!;
      if (list.length === 0) {
        this.accumulated.delete(pkg);
        this.byPkg.delete(pkg);
      } else {
        this.accumulated.set(pkg, list.map((a) => a.term).reduce(intersectTerms));
      }
    }
    this.level = level;
  }

  private relation(inc: Incompatibility): Relation {
    let unsatisfied: Term | null = null;
    for (const t of inc.terms) {
      const acc = this.accumulated.get(t.pkg);
      if (acc !== undefined) {
        if (satisfies(acc, t)) continue;
        if (contradicts(acc, t)) return { kind: "contradicted" };
      }
      if (unsatisfied !== null) return { kind: "none" };
      unsatisfied = t;
    }
    return unsatisfied === null ? { kind: "satisfied" } : { kind: "almost", term: unsatisfied };
  }

  /** The earliest assignment after which the partial solution satisfies `t`. */
  private satisfier(t: Term): Assignment {
    let acc: Term | null = null;
    for (const a of this.byPkg.get(t.pkg) ?? []) {
      acc = acc ? intersectTerms(acc, a.term) : a.term;
      if (satisfies(acc, t)) return a;
    }
    throw new Error(`internal error: ${t.pkg} is not satisfied by the partial solution`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Incompatibilities, propagation, conflict resolution
  // -------------------------------------------------------------------------------------------------------------

  private addIncompatibility(inc: Incompatibility): void {
    for (const t of inc.terms) {
      let list = this.incompatibilities.get(t.pkg);
      if (!list) this.incompatibilities.set(t.pkg, (list = []));
      list.push(inc);
    }
  }

  private propagate(start: string): void {
    const changed = new Set<string>([start]);
    while (changed.size > 0) {
      const pkg: string = changed.values().next().value!;
      changed.delete(pkg);
      const list = this.incompatibilities.get(pkg) ?? [];
      // Newest first: learned incompatibilities are the most informative.
      for (let i = list.length - 1; i >= 0; i--) {
        const inc = list[i]!;
        const rel = this.relation(inc);
        if (rel.kind === "satisfied") {
          const rootCause = this.resolveConflict(inc);
          const r = this.relation(rootCause);
          if (r.kind !== "almost") throw new Error("internal error: a learned incompatibility is not almost satisfied after backjumping");
          this.assign(negate(r.term), rootCause);
          changed.clear();
          changed.add(r.term.pkg);
          break;
        }
        if (rel.kind === "almost") {
          this.assign(negate(rel.term), inc);
          changed.add(rel.term.pkg);
        }
      }
    }
  }

  private isFailure(inc: Incompatibility): boolean {
    return inc.terms.length === 0 || (inc.terms.length === 1 && inc.terms[0]!.pkg === this.root && inc.terms[0]!.positive);
  }

  private resolveConflict(conflict: Incompatibility): Incompatibility {
    this.stats.conflicts++;
    let inc = conflict;
    let learned = false;
    while (!this.isFailure(inc)) {
      let satisfier: Assignment | null = null;
      let term: Term | null = null;
      let previousLevel = 1;
      for (const t of inc.terms) {
        const s = this.satisfier(t);
        if (satisfier === null || s.index > satisfier.index) {
          if (satisfier !== null) previousLevel = Math.max(previousLevel, satisfier.level);
          satisfier = s;
          term = t;
        } else {
          previousLevel = Math.max(previousLevel, s.level);
        }
      }
      // The satisfier alone may not satisfy its term: then what it leaves over was satisfied earlier.
      if (!satisfies(satisfier!.term, term!)) {
        const difference = intersectTerms(satisfier!.term, negate(term!));
        previousLevel = Math.max(previousLevel, this.satisfier(negate(difference)).level);
      }
      if (satisfier!.cause === null || previousLevel < satisfier!.level) {
        if (learned) {
          this.addIncompatibility(inc);
          this.stats.learned++;
        }
        this.backtrack(previousLevel);
        return inc;
      }
      const cause = satisfier!.cause;
      const terms: Term[] = [...inc.terms.filter((t) => t.pkg !== term!.pkg), ...cause.terms.filter((t) => t.pkg !== term!.pkg)];
      if (!satisfies(satisfier!.term, term!)) terms.push(negate(intersectTerms(satisfier!.term, negate(term!))));
      inc = new Incompatibility(terms, { kind: "derived", left: inc, right: cause }, this.root);
      learned = true;
    }
    const { explanation, hint } = explain(inc, { name: (p) => this.provider.name(p), root: this.root, rootVersion: this.rootVersion });
    throw new ResolutionError(explanation, hint, inc);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Decision making
  // -------------------------------------------------------------------------------------------------------------

  /** Choose and decide the next package; returns it (to propagate from), or null when the solution is complete. */
  private async decide(): Promise<string | null> {
    // The package with the fewest allowed versions; ties go to the one required first (accumulated's order).
    // Most candidates are unchanged since the last decision: their list and count are remembered for their set.
    let pkg: string | null = null;
    let chosen: VersionList | null = null;
    let bestCount = Infinity;
    let stale = false;
    // forEach: no [key, value] pair allocated per entry (this loop runs once per decision over every package).
    this.accumulated.forEach((acc, p) => {
      if (stale || !acc.positive || this.decisions.has(p)) return;
      const seen = this.scan.get(p);
      if (seen === undefined || seen.set !== acc.set) {
        stale = true;
        return;
      }
      if (seen.count < bestCount) {
        pkg = p;
        chosen = seen.value;
        bestCount = seen.count;
      }
    });
    if (stale) {
      const candidates: string[] = [];
      const sets: VersionSet[] = [];
      for (const [p, acc] of this.accumulated) {
        if (acc.positive && !this.decisions.has(p)) {
          candidates.push(p);
          sets.push(acc.set);
        }
      }
      const pending = candidates.map((p, i) => this.versionsOf(p, sets[i]!));
      const known = pending.map((p) => this.versionValues.get(p));
      const listed = known.every((l) => l !== undefined) ? (known as VersionList[]) : await Promise.all(pending);
      pkg = null;
      bestCount = Infinity;
      for (let i = 0; i < candidates.length; i++) {
        const p = candidates[i]!;
        let count = 0;
        for (const v of listed[i]!.list) if (sets[i]!.contains(v)) count++;
        // Remembered only while versionsOf would still answer with this very list.
        if (this.versionValues.get(pending[i]!) === listed[i]) this.scan.set(p, { set: sets[i]!, value: listed[i]!, count });
        if (count < bestCount) {
          pkg = p;
          chosen = listed[i]!;
          bestCount = count;
        }
      }
    }
    if (pkg === null || chosen === null) return null;
    const list = chosen.list;
    const acc = this.accumulated.get(pkg)!;
    const version = this.likelyVersion(pkg, list, acc.set);
    if (version === null) {
      this.addIncompatibility(new Incompatibility([positiveTerm(pkg, acc.set)], { kind: "noVersions", total: list.length }));
      return pkg;
    }
    const key = `${pkg}\0${version.text}`;
    let incs = this.dependencyIncompatibilities.get(key);
    if (incs === undefined) {
      // First time this version is tried in this solve: its dependencies become incompatibilities, kept for good.
      const deps = await this.depsOf(pkg, version);
      this.mention(deps);
      incs = [];
      for (const [dep, set] of deps) {
        if (dep === pkg && set.contains(version)) continue; // a version depending on itself is harmless
        let range = this.dependerRange(pkg, list, version, dep, set);
        if (!chosen.cover.equals(VersionSet.full)) range = range.intersect(chosen.cover);
        incs.push(new Incompatibility([positiveTerm(pkg, range), negativeTerm(dep, set)], { kind: "dependency" }));
      }
      for (const inc of incs) this.addIncompatibility(inc);
      this.dependencyIncompatibilities.set(key, incs);
    }
    // Would deciding `version` immediately satisfy one of them? Then let propagation find the conflict instead.
    const conflict = incs.some((inc) =>
      inc.terms.every((t) => t.pkg === pkg || (this.accumulated.has(t.pkg) && satisfies(this.accumulated.get(t.pkg)!, t))),
    );
    if (!conflict) {
      this.level++;
      this.stats.decisions++;
      this.assign(positiveTerm(pkg, VersionSet.exact(version)), null);
      this.decisions.set(pkg, version);
    }
    return pkg;
  }

  /** The run of versions around `version` already known to depend on `dep` with the same set, as a range. */
  private dependerRange(pkg: string, list: readonly Version[], version: Version, dep: string, set: VersionSet): VersionSet {
    const at = list.findIndex((v) => compareVersions(v, version) === 0);
    if (at < 0) return VersionSet.exact(version);
    const same = (v: Version): boolean => {
      const deps = this.cachedDeps(pkg, v);
      const s = deps?.get(dep);
      return s !== undefined && s.equals(set);
    };
    let lo = at;
    let hi = at;
    while (lo > 0 && same(list[lo - 1]!)) lo--;
    while (hi < list.length - 1 && same(list[hi + 1]!)) hi++;
    const lower = lo === 0 ? null : { version: list[lo]!, inclusive: true };
    const upper = hi === list.length - 1 ? null : { version: list[hi + 1]!, inclusive: false };
    let range = VersionSet.interval(lower, upper);
    if (list.slice(lo, hi + 1).every((v) => v.prerelease.length === 0)) range = range.intersect(VersionSet.releases);
    return range;
  }
}
