/**
 * Requirements with Cargo (Rust `semver` crate) semantics, docs/formats.md §3.2–§3.5: parsing, canonical display and
 * matching. Our own parser, because node-semver's ranges mean something else (a bare `1.2.3` is exact there, a caret
 * here; node-semver has `||` and hyphen ranges, Cargo has neither).
 */
import { CprError } from "./errors.js";
import { comparePrerelease, compareVersions, scanIdentifiers, scanNumber, show, SyntaxFail, type Part, type Version } from "./version.js";

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

/** Most comparators in one requirement (the Rust crate's limit). */
export const MAX_COMPARATORS = 32;

const REQUIREMENT_HINT =
  "a requirement is `*` or comparators joined by `,` (all must hold): e.g. `^1.2`, `~0.3.1`, `>=1.2, <1.5`, `=2.0.0`, `1.*`";

// ---------------------------------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------------------------------

function isWildcard(ch: string | undefined): boolean {
  return ch === "*" || ch === "x" || ch === "X";
}

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
      throw new SyntaxFail(
        "unexpected character after wildcard in version req",
        "after a wildcard nothing may follow: write 1.*, not 1.*.2",
      );
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
    return new SyntaxFail(
      message,
      "Cargo requirements have no `||`: a requirement is one range whose comparators all hold; pick one, e.g. `^2`",
    );
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
