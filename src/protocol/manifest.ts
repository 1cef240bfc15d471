import type { Requirement, Version } from "./version.js";

/**
 * `atom.toml` (spec §5.1) and `ekala.toml` (§5.2). Parse errors are CprErrors whose `where` is
 * `<file>:<line>:<col>` when the position is known, and whose message says what was expected.
 */

export interface PackageSection {
  /** NFKC-normalised. */
  readonly label: string;
  readonly version: Version;
  readonly description: string | null;
  readonly tags: readonly string[];
  /** tag → mirrors (`"::"` or git URL text), in file order. */
  readonly sets: Readonly<Record<string, readonly string[]>>;
}

export type Compose =
  | { readonly kind: "with"; readonly label: string; readonly from: string; readonly requirement: Requirement; readonly entry: string }
  | { readonly kind: "nix"; readonly path: string }
  | { readonly kind: "static" };

export type DirectNixDep =
  | { readonly kind: "url"; readonly name: string; readonly url: string; readonly fromVersion: readonly [string, string] | null }
  | { readonly kind: "tar"; readonly name: string; readonly url: string; readonly fromVersion: readonly [string, string] | null }
  | { readonly kind: "build"; readonly name: string; readonly url: string; readonly unpack: boolean; readonly fromVersion: readonly [string, string] | null }
  | {
      readonly kind: "git";
      readonly name: string;
      readonly url: string;
      readonly ref: string | null;
      readonly requirement: Requirement | null;
      readonly fromVersion: readonly [string, string] | null;
    };

export interface AtomManifest {
  readonly package: PackageSection;
  /** null when parsed in "publish" mode without [compose]. */
  readonly compose: Compose | null;
  /** set tag → label → requirement */
  readonly depsFrom: Readonly<Record<string, Readonly<Record<string, Requirement>>>>;
  readonly directNix: readonly DirectNixDep[];
}

export type ManifestMode =
  /** Publishing: only `[package]` is read and validated; other tables (even unknown ones) are ignored. */
  | "publish"
  /** Resolving/locking: the whole file is validated, `[compose]` required, unknown top-level keys rejected. */
  | "full";

/** `file` is used only for messages (`where`). */
export declare function parseAtomManifest(text: string, file: string, mode?: ManifestMode): AtomManifest;

export interface SetManifest {
  /** Relative atom directories, normalised (no `./`, no trailing `/`), unique, never escaping or the root. */
  readonly packages: readonly string[];
  readonly tags: readonly string[];
}

export declare function parseSetManifest(text: string, file: string): SetManifest;
/** Exactly `[set]\npackages = []\n\n[metadata]\ntags = []\n` for a new set; packages one per line otherwise. */
export declare function formatSetManifest(m: SetManifest): string;
