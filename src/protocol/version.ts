/**
 * Versions and requirements with Cargo (Rust `semver` crate) semantics, docs/formats.md §3. Versions are scanned strictly
 * here and cross-checked with the `semver` package; requirements have our own parser, because node-semver's ranges
 * mean something else (a bare `1.2.3` is exact there, a caret here; node-semver has `||` and hyphen ranges, Cargo
 * has neither).
 *
 * Deliberate limits compared with the Rust crate: numbers (major, minor, patch and numeric pre-release
 * identifiers) must be at most 2^53 - 1, and a version at most 256 characters long.
 */
// Only `valid` is used: its own module loads a handful of files, where the package index loads about fifty.
import semverValid from "semver/functions/valid.js";
import { CprError } from "./errors.js";

/** A strict SemVer 2.0 version. Build metadata is kept in `text` but ignored by compare/matching. */
export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly prerelease: readonly (string | number)[];
  readonly build: readonly string[];
  /** Canonical text, e.g. `1.2.3-rc.1+build.5`. */
  readonly text: string;
}

export type Op = "=" | ">" | ">=" | "<" | "<=" | "~" | "^" | "*";

/** One comparator as written, with partial parts kept (e.g. `^1.2`, `1.*`). */
export interface Comparator {
  readonly op: Op;
  readonly major: number;
  readonly minor: number | null;
  readonly patch: number | null;
  readonly prerelease: readonly (string | number)[];
}

/** An AND of comparators. `*` is the empty list. */
export interface Requirement {
  readonly comparators: readonly Comparator[];
  /** Canonical Cargo text: explicit operators, `, ` joins; `*` when empty. E.g. `^0.2`, `>=1.2, <1.5`. */
  readonly text: string;
}

/** Longest version text accepted (the `semver` package's limit). */
export const MAX_VERSION_LENGTH = 256;
/** Most comparators in one requirement (the Rust crate's limit). */
export const MAX_COMPARATORS = 32;

const VERSION_HINT = "versions are strict SemVer: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 1.2.3 or 0.1.0-rc.1";
const REQUIREMENT_HINT =
  "a requirement is `*` or comparators joined by `,` (all must hold): e.g. `^1.2`, `~0.3.1`, `>=1.2, <1.5`, `=2.0.0`, `1.*`";

// ---------------------------------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------------------------------

/** A syntax error found while scanning; turned into a CprError naming the whole input. */
class SyntaxFail extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

type Part = "major" | "minor" | "patch" | "pre-release" | "build metadata";

function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= "0" && ch <= "9";
}

function isIdentChar(ch: string | undefined): boolean {
  return ch !== undefined && /^[0-9A-Za-z-]$/.test(ch);
}

function isWildcard(ch: string | undefined): boolean {
  return ch === "*" || ch === "x" || ch === "X";
}

function show(ch: string | undefined): string {
  return ch === undefined ? "end of input" : `'${ch}'`;
}

function vPrefixHint(ch: string | undefined): string | undefined {
  return ch === "v" || ch === "V" ? "drop the leading 'v': write 1.2.3, not v1.2.3" : undefined;
}

/** A decimal number without leading zeros, at most 2^53 - 1. Returns the value and the position after it. */
function scanNumber(text: string, pos: number, part: Part): [number, number] {
  let end = pos;
  while (isDigit(text[end])) end++;
  if (end === pos) {
    const ch = text[pos];
    const what = ch === undefined ? "unexpected end of input" : `unexpected character ${show(ch)}`;
    throw new SyntaxFail(`${what} while parsing the ${part} version number`, vPrefixHint(ch));
  }
  const digits = text.slice(pos, end);
  if (digits.length > 1 && digits.startsWith("0")) {
    throw new SyntaxFail(`invalid leading zero in the ${part} version number '${digits}'`, "write numbers without leading zeros, e.g. 1.2.3");
  }
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) {
    throw new SyntaxFail(`the ${part} version number ${digits} is too large (cpr allows at most ${Number.MAX_SAFE_INTEGER})`);
  }
  return [value, end];
}

/** Dot-separated identifiers of `[0-9A-Za-z-]`; numeric pre-release identifiers become numbers. */
function scanIdentifiers(text: string, pos: number, part: "pre-release" | "build metadata"): [(string | number)[], number] {
  const ids: (string | number)[] = [];
  for (;;) {
    let end = pos;
    while (isIdentChar(text[end])) end++;
    if (end === pos) throw new SyntaxFail(`empty identifier segment in the ${part}`);
    const id = text.slice(pos, end);
    ids.push(part === "pre-release" && /^[0-9]+$/.test(id) ? numericIdentifier(id) : id);
    if (text[end] !== ".") return [ids, end];
    pos = end + 1;
  }
}

function numericIdentifier(id: string): number {
  if (id.length > 1 && id.startsWith("0")) {
    throw new SyntaxFail(`invalid leading zero in the pre-release identifier '${id}'`, "numeric pre-release identifiers have no leading zeros: write rc.1, not rc.01");
  }
  const value = Number(id);
  if (!Number.isSafeInteger(value)) {
    throw new SyntaxFail(`the pre-release identifier ${id} is too large (cpr allows at most ${Number.MAX_SAFE_INTEGER})`);
  }
  return value;
}

function expectDot(text: string, pos: number, after: Part): number {
  if (text[pos] === ".") return pos + 1;
  throw new SyntaxFail(
    `expected '.' after the ${after} version number, found ${show(text[pos])}`,
    "a version has all three parts MAJOR.MINOR.PATCH, e.g. 1.2.0 (partial versions are for requirements only)",
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------------------------

function versionText(major: number, minor: number, patch: number, pre: readonly (string | number)[], build: readonly string[]): string {
  let text = `${major}.${minor}.${patch}`;
  if (pre.length > 0) text += `-${pre.join(".")}`;
  if (build.length > 0) text += `+${build.join(".")}`;
  return text;
}

/**
 * Build a Version from its parts without validation: parts must be well-formed, and numeric pre-release
 * identifiers must be numbers (as parseVersion makes them), or they compare as text.
 */
export function makeVersion(
  major: number,
  minor: number,
  patch: number,
  prerelease: readonly (string | number)[] = [],
  build: readonly string[] = [],
): Version {
  return { major, minor, patch, prerelease, build, text: versionText(major, minor, patch, prerelease, build) };
}

function scanVersion(text: string): Version {
  if (text.length > MAX_VERSION_LENGTH) throw new SyntaxFail(`it is longer than ${MAX_VERSION_LENGTH} characters`);
  const [major, p1] = scanNumber(text, 0, "major");
  const [minor, p2] = scanNumber(text, expectDot(text, p1, "major"), "minor");
  const [patch, p3] = scanNumber(text, expectDot(text, p2, "minor"), "patch");
  let pos = p3;
  let pre: (string | number)[] = [];
  let build: string[] = [];
  if (text[pos] === "-") [pre, pos] = scanIdentifiers(text, pos + 1, "pre-release");
  if (text[pos] === "+") {
    let ids: (string | number)[];
    [ids, pos] = scanIdentifiers(text, pos + 1, "build metadata");
    build = ids.map(String);
  }
  if (pos < text.length) {
    const ch = text[pos];
    const hint = ch === " " ? "remove the whitespace" : undefined;
    throw new SyntaxFail(`unexpected character ${show(ch)} after the version`, hint);
  }
  return makeVersion(major, minor, patch, pre, build);
}

/** Parse strictly (no `v`, no leading zeros, three parts). Throws CprError `version.invalid` naming the input. */
export function parseVersion(text: string): Version {
  let version: Version;
  try {
    version = scanVersion(text);
  } catch (err) {
    if (!(err instanceof SyntaxFail)) throw err;
    throw new CprError("version.invalid", `invalid version ${JSON.stringify(text)}: ${err.message}`, { hint: err.hint ?? VERSION_HINT });
  }
  // Cross-check with node-semver (whose strict mode still allows a leading `v`, which the scanner rejected).
  if (semverValid(text) === null) {
    throw new CprError("version.invalid", `invalid version ${JSON.stringify(text)}`, { hint: VERSION_HINT });
  }
  return version;
}

/** parseVersion, or null instead of an error. */
export function tryParseVersion(text: string): Version | null {
  try {
    return parseVersion(text);
  } catch {
    return null;
  }
}

/** SemVer precedence of two pre-release identifiers: numbers before strings, numbers numerically, strings in ASCII order. */
function compareIdentifier(a: string | number, b: string | number): number {
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Pre-release precedence; the empty pre-release (a release) is greater than any other. */
export function comparePrerelease(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareIdentifier(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return Math.sign(a.length - b.length);
}

function compareNumber(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SemVer precedence; build metadata ignored. */
export function compareVersions(a: Version, b: Version): number {
  return (
    compareNumber(a.major, b.major) ||
    compareNumber(a.minor, b.minor) ||
    compareNumber(a.patch, b.patch) ||
    comparePrerelease(a.prerelease, b.prerelease)
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Requirements
// ---------------------------------------------------------------------------------------------------------------

function skipSpaces(text: string, pos: number): number {
  while (text[pos] === " ") pos++;
  return pos;
}

/** The operator at `pos`, and the position after it; `null` when there is none (a bare version: caret). */
function scanOp(text: string, pos: number): [Op | null, number] {
  const two = text.slice(pos, pos + 2);
  if (two === ">=" || two === "<=") return [two, pos + 2];
  const one = text[pos];
  if (one === "=" || one === ">" || one === "<" || one === "~" || one === "^") return [one, pos + 1];
  return [null, pos];
}

interface Scanned {
  readonly comparator: Comparator;
  /** Position after the comparator and any spaces. */
  readonly end: number;
  /** The last part read, for "expected comma after …" messages. */
  readonly last: Part;
}

/** One comparator, as the Rust crate reads it (spaces allowed after the operator and after the version). */
function scanComparator(text: string, start: number): Scanned {
  const [written, afterOp] = scanOp(text, start);
  let op: Op | null = written;
  let pos = skipSpaces(text, afterOp);
  let last: Part = "major";
  const [major, p1] = scanNumber(text, pos, "major");
  pos = p1;
  let minor: number | null = null;
  let patch: number | null = null;
  let wildcard = false;
  if (text[pos] === ".") {
    last = "minor";
    if (isWildcard(text[pos + 1])) {
      wildcard = true;
      op ??= "*";
      pos += 2;
    } else {
      [minor, pos] = scanNumber(text, pos + 1, "minor");
    }
  }
  if (text[pos] === ".") {
    last = "patch";
    if (isWildcard(text[pos + 1])) {
      op ??= "*";
      pos += 2;
    } else if (wildcard) {
      throw new SyntaxFail("unexpected character after wildcard in version req", "after a wildcard nothing may follow: write 1.*, not 1.*.2");
    } else {
      [patch, pos] = scanNumber(text, pos + 1, "patch");
    }
  }
  let prerelease: (string | number)[] = [];
  if (patch !== null && text[pos] === "-") {
    last = "pre-release";
    [prerelease, pos] = scanIdentifiers(text, pos + 1, "pre-release");
  }
  if (patch !== null && text[pos] === "+") {
    last = "build metadata";
    [, pos] = scanIdentifiers(text, pos + 1, "build metadata");
  }
  return { comparator: { op: op ?? "^", major, minor, patch, prerelease }, end: skipSpaces(text, pos), last };
}

function hyphenRangeHint(text: string): string {
  const m = /^ *([0-9][^ ]*) +- +([0-9][^ ]*) *$/.exec(text);
  const example = m ? `\`>=${m[1]}, <=${m[2]}\`` : "`>=1.0.0, <=2.0.0`";
  return `hyphen ranges do not exist in Cargo requirements; write ${example} instead`;
}

function expectedComma(text: string, pos: number, last: Part): SyntaxFail {
  const ch = text[pos];
  const message = `expected comma after the ${last}${last === "pre-release" || last === "build metadata" ? "" : " version number"}, found ${show(ch)}`;
  if (ch === "|") {
    return new SyntaxFail(message, "Cargo requirements have no `||`: a requirement is one range whose comparators all hold; pick one, e.g. `^2`");
  }
  if (ch === "-") return new SyntaxFail(message, hyphenRangeHint(text));
  return new SyntaxFail(message, "separate comparators with a comma, e.g. `>=1.2, <1.5`");
}

function wildcardNotAlone(ch: string): SyntaxFail {
  return new SyntaxFail(
    `wildcard req (${ch}) must be the only comparator in the version req`,
    "`*` alone accepts every release; drop either the `*` or the other comparators",
  );
}

/** Whether `text` at `pos` is a lone wildcard followed by the end or a comma. */
function loneWildcardAt(text: string, pos: number): boolean {
  if (!isWildcard(text[pos])) return false;
  const after = skipSpaces(text, pos + 1);
  return after === text.length || text[after] === ",";
}

function scanRequirement(text: string): Comparator[] {
  const start = skipSpaces(text, 0);
  if (start === text.length) throw new SyntaxFail("it is empty", "write `*` to accept any release");
  if (isWildcard(text[start])) {
    const after = skipSpaces(text, start + 1);
    if (after === text.length) return [];
    if (text[after] === ",") throw wildcardNotAlone(text[start]!);
    throw new SyntaxFail("unexpected character after wildcard in version req", REQUIREMENT_HINT);
  }
  const comparators: Comparator[] = [];
  let pos = start;
  for (;;) {
    let scanned: Scanned;
    try {
      scanned = scanComparator(text, pos);
    } catch (err) {
      if (err instanceof SyntaxFail && loneWildcardAt(text, pos)) throw wildcardNotAlone(text[pos]!);
      throw err;
    }
    comparators.push(scanned.comparator);
    if (scanned.end === text.length) return comparators;
    if (text[scanned.end] !== ",") throw expectedComma(text, scanned.end, scanned.last);
    if (comparators.length === MAX_COMPARATORS) {
      throw new SyntaxFail(`excessive number of version comparators (at most ${MAX_COMPARATORS})`);
    }
    pos = skipSpaces(text, scanned.end + 1);
  }
}

/** Canonical text of one comparator, as the Rust crate displays it (`^1.2`, `=1.2.3-rc.1`, `1.*`, `1.2.*`). */
export function formatComparator(c: Comparator): string {
  let text = (c.op === "*" ? "" : c.op) + String(c.major);
  if (c.minor === null) return c.op === "*" ? `${text}.*` : text;
  text += `.${c.minor}`;
  if (c.patch === null) return c.op === "*" ? `${text}.*` : text;
  text += `.${c.patch}`;
  return c.prerelease.length > 0 ? `${text}-${c.prerelease.join(".")}` : text;
}

/** A Requirement from comparators, with its canonical text. */
export function requirementOf(comparators: readonly Comparator[]): Requirement {
  return { comparators, text: comparators.length === 0 ? "*" : comparators.map(formatComparator).join(", ") };
}

/** Parse a Cargo requirement: a bare version means caret; `||` and hyphen ranges are errors with a hint. */
export function parseRequirement(text: string): Requirement {
  try {
    return requirementOf(scanRequirement(text));
  } catch (err) {
    if (!(err instanceof SyntaxFail)) throw err;
    throw new CprError("requirement.invalid", `invalid version requirement ${JSON.stringify(text)}: ${err.message}`, {
      hint: err.hint ?? REQUIREMENT_HINT,
    });
  }
}

/** parseRequirement, or null instead of an error. */
export function tryParseRequirement(text: string): Requirement | null {
  try {
    return parseRequirement(text);
  } catch {
    return null;
  }
}

/** `^<version>`, what cpr records when the user gave no requirement. */
export function caretOf(v: Version): Requirement {
  return requirementOf([{ op: "^", major: v.major, minor: v.minor, patch: v.patch, prerelease: v.prerelease }]);
}

// ---------------------------------------------------------------------------------------------------------------
// Matching (the Rust crate's rules, comparator by comparator)
// ---------------------------------------------------------------------------------------------------------------

function samePrerelease(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function matchesExact(c: Comparator, v: Version): boolean {
  if (v.major !== c.major) return false;
  if (c.minor !== null && v.minor !== c.minor) return false;
  if (c.patch !== null && v.patch !== c.patch) return false;
  return samePrerelease(v.prerelease, c.prerelease);
}

function matchesGreater(c: Comparator, v: Version): boolean {
  if (v.major !== c.major) return v.major > c.major;
  if (c.minor === null) return false;
  if (v.minor !== c.minor) return v.minor > c.minor;
  if (c.patch === null) return false;
  if (v.patch !== c.patch) return v.patch > c.patch;
  return comparePrerelease(v.prerelease, c.prerelease) > 0;
}

function matchesLess(c: Comparator, v: Version): boolean {
  if (v.major !== c.major) return v.major < c.major;
  if (c.minor === null) return false;
  if (v.minor !== c.minor) return v.minor < c.minor;
  if (c.patch === null) return false;
  if (v.patch !== c.patch) return v.patch < c.patch;
  return comparePrerelease(v.prerelease, c.prerelease) < 0;
}

function matchesTilde(c: Comparator, v: Version): boolean {
  if (v.major !== c.major) return false;
  if (c.minor !== null && v.minor !== c.minor) return false;
  if (c.patch !== null && v.patch !== c.patch) return v.patch > c.patch;
  return comparePrerelease(v.prerelease, c.prerelease) >= 0;
}

function matchesCaret(c: Comparator, v: Version): boolean {
  if (v.major !== c.major) return false;
  if (c.minor === null) return true;
  if (c.patch === null) return c.major > 0 ? v.minor >= c.minor : v.minor === c.minor;
  if (c.major > 0) {
    if (v.minor !== c.minor) return v.minor > c.minor;
    if (v.patch !== c.patch) return v.patch > c.patch;
  } else if (c.minor > 0) {
    if (v.minor !== c.minor) return false;
    if (v.patch !== c.patch) return v.patch > c.patch;
  } else if (v.minor !== c.minor || v.patch !== c.patch) {
    return false;
  }
  return comparePrerelease(v.prerelease, c.prerelease) >= 0;
}

/** Whether one comparator holds, before the pre-release rule. */
export function matchesComparator(c: Comparator, v: Version): boolean {
  switch (c.op) {
    case "=":
    case "*":
      return matchesExact(c, v);
    case ">":
      return matchesGreater(c, v);
    case ">=":
      return matchesExact(c, v) || matchesGreater(c, v);
    case "<":
      return matchesLess(c, v);
    case "<=":
      return matchesExact(c, v) || matchesLess(c, v);
    case "~":
      return matchesTilde(c, v);
    case "^":
      return matchesCaret(c, v);
  }
}

/** A comparator that lets pre-releases of `v`'s major.minor.patch through: same triple, own pre-release. */
function allowsPrereleaseOf(c: Comparator, v: Version): boolean {
  return c.major === v.major && c.minor === v.minor && c.patch === v.patch && c.prerelease.length > 0;
}

/** Cargo matching, including the prerelease rule (docs/formats.md §3.3). */
export function matches(req: Requirement, v: Version): boolean {
  if (!req.comparators.every((c) => matchesComparator(c, v))) return false;
  return v.prerelease.length === 0 || req.comparators.some((c) => allowsPrereleaseOf(c, v));
}

/** The highest version that `req` matches, or null. */
export function maxSatisfying(versions: Iterable<Version>, req: Requirement): Version | null {
  let best: Version | null = null;
  for (const v of versions) {
    if (matches(req, v) && (best === null || compareVersions(v, best) > 0)) best = v;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// Version sets
// ---------------------------------------------------------------------------------------------------------------

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
