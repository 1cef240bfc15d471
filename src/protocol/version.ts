/**
 * Versions with Cargo (Rust `semver` crate) semantics, docs/formats.md §3.1: parsing, precedence, formatting. Versions
 * are scanned strictly here and cross-checked with the `semver` package. Requirements (requirement.ts) have their own
 * parser, because node-semver's ranges mean something else, and reuse this file's number and identifier scanners;
 * version-set.ts holds the solver's sets of versions.
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

/** Longest version text accepted (the `semver` package's limit). */
export const MAX_VERSION_LENGTH = 256;

const VERSION_HINT = "versions are strict SemVer: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 1.2.3 or 0.1.0-rc.1";

// ---------------------------------------------------------------------------------------------------------------
// Scanning (the exported pieces are shared with requirement.ts's scanner)
// ---------------------------------------------------------------------------------------------------------------

/** A syntax error found while scanning; turned into a CprError naming the whole input. */
export class SyntaxFail extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export type Part = "major" | "minor" | "patch" | "pre-release" | "build metadata";

function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= "0" && ch <= "9";
}

function isIdentChar(ch: string | undefined): boolean {
  return ch !== undefined && /^[0-9A-Za-z-]$/.test(ch);
}

/** A character for messages: `'x'`, or `end of input`. */
export function show(ch: string | undefined): string {
  return ch === undefined ? "end of input" : `'${ch}'`;
}

function vPrefixHint(ch: string | undefined): string | undefined {
  return ch === "v" || ch === "V" ? "drop the leading 'v': write 1.2.3, not v1.2.3" : undefined;
}

/** A decimal number without leading zeros, at most 2^53 - 1. Returns the value and the position after it. */
export function scanNumber(text: string, pos: number, part: Part): [number, number] {
  let end = pos;
  while (isDigit(text[end])) end++;
  if (end === pos) {
    const ch = text[pos];
    const what = ch === undefined ? "unexpected end of input" : `unexpected character ${show(ch)}`;
    throw new SyntaxFail(`${what} while parsing the ${part} version number`, vPrefixHint(ch));
  }
  const digits = text.slice(pos, end);
  if (digits.length > 1 && digits.startsWith("0")) {
    throw new SyntaxFail(
      `invalid leading zero in the ${part} version number '${digits}'`,
      "write numbers without leading zeros, e.g. 1.2.3",
    );
  }
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) {
    throw new SyntaxFail(`the ${part} version number ${digits} is too large (cpr allows at most ${Number.MAX_SAFE_INTEGER})`);
  }
  return [value, end];
}

/** Dot-separated identifiers of `[0-9A-Za-z-]`; numeric pre-release identifiers become numbers. */
export function scanIdentifiers(text: string, pos: number, part: "pre-release" | "build metadata"): [(string | number)[], number] {
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
    throw new SyntaxFail(
      `invalid leading zero in the pre-release identifier '${id}'`,
      "numeric pre-release identifiers have no leading zeros: write rc.1, not rc.01",
    );
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
