/**
 * PubGrub terms over cpr's exact VersionSets, and the Cargo-ish text used for them in explanations.
 *
 * A term is a statement about one package. Its `set` is always the set of versions the term *allows when the
 * package is selected*: a positive term `foo ^1` means "foo is selected, at a version in ^1"; a negative term
 * `not foo ^1` is stored with `set = complement(^1)` and means "foo is not selected, or is at a version outside
 * ^1". Storing allowed sets makes intersection one VersionSet intersection whatever the signs.
 */
import { VersionSet, type Interval } from "../protocol/version-set.js";
import { compareVersions, makeVersion, type Version } from "../protocol/version.js";

export interface Term {
  readonly pkg: string;
  readonly positive: boolean;
  /** The versions allowed when the package is selected (see the module notes). */
  readonly set: VersionSet;
}

export const positiveTerm = (pkg: string, set: VersionSet): Term => ({ pkg, positive: true, set });
export const negativeTerm = (pkg: string, excluded: VersionSet): Term => ({ pkg, positive: false, set: excluded.complement() });

export function negate(t: Term): Term {
  return { pkg: t.pkg, positive: !t.positive, set: t.set.complement() };
}

/** Both terms hold (same package). */
export function intersectTerms(a: Term, b: Term): Term {
  return { pkg: a.pkg, positive: a.positive || b.positive, set: a.set.intersect(b.set) };
}

/** Every state allowed by `acc` satisfies `t` (same package). */
export function satisfies(acc: Term, t: Term): boolean {
  if (t.positive && !acc.positive) return false; // "not selected" is allowed by acc but not by t
  return acc.set.isSubsetOf(t.set);
}

/** No state allowed by `acc` satisfies `t` (same package). */
export function contradicts(acc: Term, t: Term): boolean {
  if (!acc.positive && !t.positive) return false; // both allow "not selected"
  return acc.set.intersect(t.set).isEmpty();
}

export function termsEqual(a: Term, b: Term): boolean {
  return a.pkg === b.pkg && a.positive === b.positive && a.set.equals(b.set);
}

// ---------------------------------------------------------------------------------------------------------------
// Readable ranges
// ---------------------------------------------------------------------------------------------------------------

const eq = (a: Version | null, b: Version | null): boolean => a !== null && b !== null && compareVersions(a, b) === 0;

/** `1.0.0` → `1`, `1.2.0` → `1.2`, else the full text (for caret/tilde display). */
function short(v: Version): string {
  if (v.prerelease.length > 0) return v.text.replace(/\+.*$/, "");
  if (v.patch !== 0) return `${v.major}.${v.minor}.${v.patch}`;
  if (v.minor !== 0 || v.major === 0) return `${v.major}.${v.minor}`;
  return `${v.major}`;
}
const plain = (v: Version): string => v.text.replace(/\+.*$/, "");

/** The exclusive end of a caret range starting at `lo` (release space: a release version). */
function caretEnd(lo: Version): Version {
  if (lo.major > 0) return makeVersion(lo.major + 1, 0, 0);
  if (lo.minor > 0) return makeVersion(0, lo.minor + 1, 0);
  return makeVersion(0, 0, lo.patch + 1);
}

/** One canonical release interval [lo, hi) as Cargo-ish text; `preLo` replaces lo when pre-releases of lo's triple join. */
function releaseIntervalText(iv: Interval, preLo: Version | null): string {
  const lo = iv.lower?.version ?? null;
  const hi = iv.upper?.version ?? null;
  const from = preLo ?? lo;
  if (lo === null && hi === null) return "*";
  if (hi === null) return `>=${plain(from!)}`;
  if (lo === null) return `<${plain(hi)}`;
  if (preLo === null && eq(hi, makeVersion(lo.major, lo.minor, lo.patch + 1))) return plain(lo);
  if (eq(hi, caretEnd(lo)) && !(lo.major === 0 && lo.minor === 0)) return `^${short(from!)}`;
  if (lo.major > 0 && eq(hi, makeVersion(lo.major, lo.minor + 1, 0))) return `~${short(from!)}`;
  return `>=${plain(from!)}, <${plain(hi)}`;
}

function prereleaseIntervalText(iv: Interval): string {
  const lo = iv.lower?.version ?? null;
  const hi = iv.upper?.version ?? null;
  if (lo !== null && hi !== null && eq(hi, makeVersion(lo.major, lo.minor, lo.patch, [...lo.prerelease, 0]))) return plain(lo);
  if (lo === null && hi === null) return "any pre-release";
  if (hi === null) return `pre-releases >=${plain(lo!)}`;
  if (lo === null) return `pre-releases <${plain(hi)}`;
  // `<1.0.1-0` in the pre-release space is "below 1.0.0's release", i.e. the pre-releases of 1.0.0 from lo on.
  if (eq(hi, makeVersion(lo.major, lo.minor, lo.patch + 1, [0]))) return `>=${plain(lo)}, <${lo.major}.${lo.minor}.${lo.patch}`;
  return `pre-releases >=${plain(lo)}, <${plain(hi)}`;
}

/** Whether a set is "any version" for display (every release; pre-releases either all or none). */
export function isAny(set: VersionSet): boolean {
  return set.equals(VersionSet.full) || set.equals(VersionSet.releases);
}

/**
 * Cargo-ish text for a set: `^1`, `~1.2`, `1.0.0`, `>=1.0.0, <1.5.0`, `<1.1.0`, `^1.0.0-rc.1`, `1.0.0-rc.1`;
 * several ranges are joined with ` or `.
 */
export function rangeText(set: VersionSet): string {
  if (set.isEmpty()) return "no version";
  if (isAny(set)) return "*";
  const rel = set.intervals;
  const pre = [...set.prereleaseIntervals];
  const parts: string[] = [];
  rel.forEach((iv) => {
    let preLo: Version | null = null;
    // `^1.0.0-rc.1`-shaped: the pre-releases of lo's triple from some pre-release on, then the release range.
    const lo = iv.lower?.version ?? null;
    if (lo !== null) {
      const end = makeVersion(lo.major, lo.minor, lo.patch + 1, [0]); // canonical end of lo's triple's pre-releases
      const k = pre.findIndex((p) => p.lower !== null && p.upper !== null && (eq(p.upper.version, lo) || eq(p.upper.version, end)));
      if (k >= 0) {
        const p = pre[k]!;
        const pl = p.lower!.version;
        if (pl.major === lo.major && pl.minor === lo.minor && pl.patch === lo.patch) {
          preLo = pl;
          pre.splice(k, 1);
        }
      }
    }
    parts.push(releaseIntervalText(iv, preLo));
  });
  // Pre-release parts that only repeat what an open-ended release range implies (e.g. from `>=1.1.0`) are noise.
  for (const p of pre) {
    const covered = rel.some(
      (r) =>
        r.upper === null &&
        r.lower !== null &&
        p.upper === null &&
        p.lower !== null &&
        compareVersions(p.lower.version, r.lower.version) >= 0,
    );
    if (!covered) parts.push(prereleaseIntervalText(p));
  }
  return parts.join(" or ");
}

export type Namer = (pkg: string) => string;

/** `foo ^1`, `foo` (any version), `foo 1.0.0`; `every version of foo` when `every` and the set is any. */
export function termText(t: Term, name: Namer, opts: { every?: boolean; root?: string } = {}): string {
  const n = name(t.pkg);
  if (t.pkg === opts.root && t.positive && isAny(t.set)) return n; // "app depends on …", not "every version of app"
  if (t.positive) {
    if (opts.every && isAny(t.set)) return `every version of ${n}`;
    if (t.set.equals(VersionSet.releases)) return `${n} *`;
    if (t.set.equals(VersionSet.full)) return `${n} (any version, pre-releases included)`;
    return `${n} ${rangeText(t.set)}`;
  }
  const excluded = t.set.complement();
  if (excluded.isEmpty()) return `${n} (any state)`;
  if (isAny(excluded)) return `not ${n}`;
  return `not ${n} ${rangeText(excluded)}`;
}
