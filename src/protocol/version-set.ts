import type { Comparator, Requirement } from "./requirement.js";
import { compareVersions, makeVersion, type Version } from "./version.js";

/**
 * Version sets for the PubGrub solver.
 *
 * Cargo's pre-release rule makes the versions a requirement matches no finite union of intervals over the total
 * order of versions: `^1.2.3` holds for 1.2.3, 1.2.4, 1.3.0 … but for none of the pre-releases between them. So a
 * VersionSet keeps two interval lists: `intervals`, whose **release** versions (no pre-release) are in the set,
 * and `prereleaseIntervals`, whose **pre-release** versions are. Each list is canonical (sorted, disjoint, not
 * touching, non-empty, lower bounds inclusive, upper bounds exclusive, `null` for unbounded), so `equals` is
 * structural and every operation is exact. Build metadata is ignored throughout.
 */
export interface Bound {
  readonly version: Version;
  readonly inclusive: boolean;
}
export interface Interval {
  /** null = unbounded below */
  readonly lower: Bound | null;
  /** null = unbounded above */
  readonly upper: Bound | null;
}

/** A canonical segment: [lo, hi) with null for unbounded. */
type Segment = readonly [Version | null, Version | null];
type Space = "release" | "prerelease";

const MIN_RELEASE = makeVersion(0, 0, 0);
const MIN_PRERELEASE = makeVersion(0, 0, 0, [0]);

function isPre(v: Version): boolean {
  return v.prerelease.length > 0;
}
function releaseOf(v: Version): Version {
  return makeVersion(v.major, v.minor, v.patch);
}
function stripBuild(v: Version): Version {
  return v.build.length === 0 ? v : makeVersion(v.major, v.minor, v.patch, v.prerelease);
}
/** The least pre-release of the next patch: the first version after every `M.m.p[-…]`. */
function afterPatch(v: Version): Version {
  return makeVersion(v.major, v.minor, v.patch + 1, [0]);
}
/** The immediate successor of a pre-release: `1.0.0-alpha` → `1.0.0-alpha.0`. */
function nextPrerelease(v: Version): Version {
  return makeVersion(v.major, v.minor, v.patch, [...v.prerelease, 0]);
}

/** The canonical inclusive lower bound of a space's part of an interval; null when unbounded (or the minimum). */
function lowerIn(space: Space, b: Bound | null): Version | null {
  if (b === null) return null;
  const v = b.version;
  let lo: Version;
  if (space === "release") lo = isPre(v) || b.inclusive ? releaseOf(v) : releaseOf(afterPatch(v));
  else lo = !isPre(v) ? afterPatch(v) : b.inclusive ? stripBuild(v) : nextPrerelease(v);
  return compareVersions(lo, space === "release" ? MIN_RELEASE : MIN_PRERELEASE) === 0 ? null : lo;
}

/** The canonical exclusive upper bound of a space's part of an interval; null when unbounded. */
function upperIn(space: Space, b: Bound | null): Version | null {
  if (b === null) return null;
  const v = b.version;
  if (space === "release") return isPre(v) || !b.inclusive ? releaseOf(v) : releaseOf(afterPatch(v));
  return !isPre(v) ? afterPatch(v) : b.inclusive ? nextPrerelease(v) : stripBuild(v);
}

function cmpLower(a: Version | null, b: Version | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  return compareVersions(a, b);
}
function cmpUpper(a: Version | null, b: Version | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  return compareVersions(a, b);
}
/** Whether an upper bound reaches a lower bound, so the two segments overlap or touch. */
function reaches(hi: Version | null, lo: Version | null): boolean {
  return hi === null || lo === null || compareVersions(hi, lo) >= 0;
}

function segmentIn(space: Space, interval: Interval | null): Segment[] {
  if (interval === null) return [];
  const lo = lowerIn(space, interval.lower);
  const hi = upperIn(space, interval.upper);
  const min = space === "release" ? MIN_RELEASE : MIN_PRERELEASE;
  if (hi !== null && compareVersions(lo ?? min, hi) >= 0) return [];
  return [[lo, hi]];
}

function unionSegments(a: readonly Segment[], b: readonly Segment[]): Segment[] {
  const all = [...a, ...b].sort((x, y) => cmpLower(x[0], y[0]));
  const out: Array<[Version | null, Version | null]> = [];
  for (const [lo, hi] of all) {
    const last = out[out.length - 1];
    if (last && reaches(last[1], lo)) {
      if (cmpUpper(hi, last[1]) > 0) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

function intersectSegments(a: readonly Segment[], b: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [alo, ahi] = a[i]!;
    const [blo, bhi] = b[j]!;
    const lo = cmpLower(alo, blo) >= 0 ? alo : blo;
    const hi = cmpUpper(ahi, bhi) <= 0 ? ahi : bhi;
    if (lo === null || hi === null || compareVersions(lo, hi) < 0) out.push([lo, hi]);
    if (cmpUpper(ahi, bhi) <= 0) i++;
    else j++;
  }
  return out;
}

function complementSegments(a: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  let from: Version | null = null;
  for (const [lo, hi] of a) {
    if (lo !== null) out.push([from, lo]);
    if (hi === null) return out;
    from = hi;
  }
  out.push([from, null]);
  return out;
}

function segmentsContain(segments: readonly Segment[], v: Version): boolean {
  return segments.some(([lo, hi]) => (lo === null || compareVersions(v, lo) >= 0) && (hi === null || compareVersions(v, hi) < 0));
}

function segmentsEqual(a: readonly Segment[], b: readonly Segment[]): boolean {
  return a.length === b.length && a.every((s, i) => cmpLower(s[0], b[i]![0]) === 0 && cmpUpper(s[1], b[i]![1]) === 0);
}

function toInterval([lo, hi]: Segment): Interval {
  return { lower: lo === null ? null : { version: lo, inclusive: true }, upper: hi === null ? null : { version: hi, inclusive: false } };
}

function segmentText([lo, hi]: Segment): string {
  if (lo === null && hi === null) return "*";
  if (lo !== null && hi !== null) {
    const single = isPre(lo) ? nextPrerelease(lo) : afterPatch(lo);
    if (compareVersions(hi, isPre(lo) ? single : releaseOf(single)) === 0) return `=${lo.text}`;
    return `>=${lo.text}, <${hi.text}`;
  }
  return lo !== null ? `>=${lo.text}` : `<${hi!.text}`;
}

const inclusive = (version: Version): Bound => ({ version, inclusive: true });
const exclusive = (version: Version): Bound => ({ version, inclusive: false });

interface ComparatorParts {
  /** The interval whose releases the comparator matches, or null for none. */
  readonly release: Interval | null;
  /** The interval whose pre-releases the comparator matches (before the pre-release rule), or null for none. */
  readonly prerelease: Interval | null;
}

const both = (interval: Interval): ComparatorParts => ({ release: interval, prerelease: interval });

/** `=v`: the single version, in the part its kind belongs to. */
function exactly(v: Version): ComparatorParts {
  const point: Interval = { lower: inclusive(v), upper: inclusive(v) };
  return isPre(v) ? { release: null, prerelease: point } : { release: point, prerelease: null };
}

/**
 * The versions one comparator matches (matchesComparator), as intervals. A full comparator matches an interval of
 * the total order; a partial one (`=1.2`, `>=1`, `~1.2`, …) may match a release range but fewer pre-releases.
 */
function comparatorParts(c: Comparator): ComparatorParts {
  const { major: M, minor: m, patch: p } = c;
  const at = m !== null && p !== null ? makeVersion(M, m, p, c.prerelease) : null;
  const first = makeVersion(M, m ?? 0, 0);
  const firstPre = makeVersion(M, m ?? 0, 0, [0]);
  const beyond = m === null ? makeVersion(M + 1, 0, 0, [0]) : makeVersion(M, m + 1, 0, [0]);
  switch (c.op) {
    case "=":
    case "*":
      if (at === null) return { release: { lower: inclusive(first), upper: exclusive(beyond) }, prerelease: null };
      return exactly(at);
    case ">":
      return both({ lower: at ? exclusive(at) : inclusive(beyond), upper: null });
    case ">=":
      if (at) return both({ lower: inclusive(at), upper: null });
      return { release: { lower: inclusive(first), upper: null }, prerelease: { lower: inclusive(beyond), upper: null } };
    case "<":
      return both({ lower: null, upper: exclusive(at ?? firstPre) });
    case "<=":
      if (at) return both({ lower: null, upper: inclusive(at) });
      return { release: { lower: null, upper: exclusive(beyond) }, prerelease: { lower: null, upper: exclusive(firstPre) } };
    case "~":
      if (at) return both({ lower: inclusive(at), upper: exclusive(makeVersion(M, m! + 1, 0, [0])) });
      return { release: { lower: inclusive(first), upper: exclusive(beyond) }, prerelease: null };
    case "^":
      return both({ lower: inclusive(at ?? firstPre), upper: exclusive(caretEnd(c)) });
  }
}

/** The first version past a caret comparator's range (as a `-0` pre-release). */
function caretEnd(c: Comparator): Version {
  if (c.major > 0 || c.minor === null) return makeVersion(c.major + 1, 0, 0, [0]);
  if (c.minor > 0 || c.patch === null) return makeVersion(0, c.minor + 1, 0, [0]);
  return makeVersion(0, 0, c.patch + 1, [0]);
}

/** A set of versions; see the interface notes above `Bound`. Immutable. */
export class VersionSet {
  /** No version. */
  static readonly empty: VersionSet = new VersionSet([], []);
  /** Every version, releases and pre-releases. */
  static readonly full: VersionSet = new VersionSet([[null, null]], [[null, null]]);
  /** Every release (what `*` matches). */
  static readonly releases: VersionSet = new VersionSet([[null, null]], []);

  /** The release part: the set's releases are exactly the releases inside these intervals. */
  readonly intervals: readonly Interval[];
  /** The pre-release part: the set's pre-releases are exactly the pre-releases inside these intervals. */
  readonly prereleaseIntervals: readonly Interval[];

  private constructor(
    private readonly rel: readonly Segment[],
    private readonly pre: readonly Segment[],
  ) {
    this.intervals = rel.map(toInterval);
    this.prereleaseIntervals = pre.map(toInterval);
  }

  /** Just `v` (and its build-metadata variants). */
  static exact(v: Version): VersionSet {
    return VersionSet.interval(inclusive(v), inclusive(v));
  }

  /** Every version, release or pre-release, between the bounds (null = unbounded). */
  static interval(lower: Bound | null, upper: Bound | null): VersionSet {
    const iv: Interval = { lower, upper };
    return new VersionSet(segmentIn("release", iv), segmentIn("prerelease", iv));
  }

  /** Exactly the versions `matches(req, ·)` accepts, Cargo's pre-release rule included. */
  static fromRequirement(req: Requirement): VersionSet {
    let rel: readonly Segment[] = [[null, null]];
    let pre: readonly Segment[] = [[null, null]];
    let allowedPre: Segment[] = [];
    for (const c of req.comparators) {
      const parts = comparatorParts(c);
      rel = intersectSegments(rel, segmentIn("release", parts.release));
      pre = intersectSegments(pre, segmentIn("prerelease", parts.prerelease));
      if (c.patch !== null && c.prerelease.length > 0) {
        const triple = makeVersion(c.major, c.minor!, c.patch);
        const ofTriple: Interval = { lower: inclusive(makeVersion(c.major, c.minor!, c.patch, [0])), upper: exclusive(triple) };
        allowedPre = unionSegments(allowedPre, segmentIn("prerelease", ofTriple));
      }
    }
    return new VersionSet(rel, intersectSegments(pre, allowedPre));
  }

  contains(v: Version): boolean {
    return segmentsContain(isPre(v) ? this.pre : this.rel, v);
  }

  union(other: VersionSet): VersionSet {
    return new VersionSet(unionSegments(this.rel, other.rel), unionSegments(this.pre, other.pre));
  }

  intersect(other: VersionSet): VersionSet {
    return new VersionSet(intersectSegments(this.rel, other.rel), intersectSegments(this.pre, other.pre));
  }

  complement(): VersionSet {
    return new VersionSet(complementSegments(this.rel), complementSegments(this.pre));
  }

  isEmpty(): boolean {
    return this.rel.length === 0 && this.pre.length === 0;
  }

  isSubsetOf(other: VersionSet): boolean {
    return this.intersect(other).equals(this);
  }

  equals(other: VersionSet): boolean {
    return segmentsEqual(this.rel, other.rel) && segmentsEqual(this.pre, other.pre);
  }

  /**
   * Requirement-like text: release ranges joined by ` || `, then pre-release ranges as `pre(…)`; `∅` when empty.
   * E.g. `>=1.2.3, <2.0.0 || pre(>=1.2.3-rc.1, <1.2.4-0)`.
   */
  toString(): string {
    if (this.isEmpty()) return "∅";
    const parts = this.rel.map(segmentText);
    for (const s of this.pre) parts.push(`pre(${segmentText(s)})`);
    return parts.join(" || ");
  }
}
