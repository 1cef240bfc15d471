/**
 * Versions and requirements with Cargo (Rust `semver` crate) semantics, spec §11. Built on the `semver` package
 * for version parsing/comparison, with our own requirement parser (node-semver's ranges have different meaning).
 */

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

/** Parse strictly (no `v`, no leading zeros, three parts). Throws CprError `version.invalid` naming the input. */
export declare function parseVersion(text: string): Version;
export declare function tryParseVersion(text: string): Version | null;
/** SemVer precedence; build metadata ignored. */
export declare function compareVersions(a: Version, b: Version): number;

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

/** Parse a Cargo requirement: a bare version means caret; `||` and hyphen ranges are errors with a hint. */
export declare function parseRequirement(text: string): Requirement;
/** Cargo matching, including the prerelease rule (spec §11). */
export declare function matches(req: Requirement, v: Version): boolean;
/** `^<version>`, what cpr records when the user gave no requirement. */
export declare function caretOf(v: Version): Requirement;

/**
 * Version sets as unions of half-open intervals over the total order of versions, for the PubGrub solver.
 * Prereleases: an interval set built from a requirement excludes prereleases the requirement would not match.
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
export declare class VersionSet {
  static readonly empty: VersionSet;
  static readonly full: VersionSet;
  static exact(v: Version): VersionSet;
  static fromRequirement(req: Requirement): VersionSet;
  readonly intervals: readonly Interval[];
  contains(v: Version): boolean;
  union(other: VersionSet): VersionSet;
  intersect(other: VersionSet): VersionSet;
  complement(): VersionSet;
  isEmpty(): boolean;
  isSubsetOf(other: VersionSet): boolean;
  equals(other: VersionSet): boolean;
  toString(): string;
}
