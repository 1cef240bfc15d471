import type { Version, VersionSet } from "../protocol/version.js";

/**
 * PubGrub version solving (Natalie Weizenbaum's algorithm, as in Dart's pub), asynchronous: candidate versions and
 * their dependencies come from a Provider that may hit the network, lazily and with prefetching in parallel.
 * Packages are opaque string keys (cpr uses AtomIds); `name(pkg)` gives the human name used in explanations.
 */
export interface Provider {
  /** The human name of a package for messages, e.g. `foo` or `foo (from gh:owner/repo)`. */
  name(pkg: string): string;
  /** All known versions of a package (any order). May fetch. */
  versions(pkg: string): Promise<readonly Version[]>;
  /** Dependencies of one version: package → allowed versions. May fetch. */
  dependencies(pkg: string, version: Version): Promise<ReadonlyMap<string, VersionSet>>;
  /** Preferred version (e.g. the locked one) to try first when it is allowed; else the newest allowed is tried. */
  preferred?(pkg: string): Version | null;
  /** Hint that these packages' versions/dependencies will be needed soon (start fetching in parallel). */
  prefetch?(pkgs: readonly string[]): void;
}

export interface Solution {
  /** package → chosen version (one per package). The root package is included. */
  readonly versions: ReadonlyMap<string, Version>;
}

/** Thrown when no solution exists; `explanation` is the plain-words derivation, with the chain named. */
export declare class ResolutionError extends Error {
  readonly explanation: string;
}

/** Solve for `root` at `rootVersion`. */
export declare function solve(provider: Provider, root: string, rootVersion: Version): Promise<Solution>;
