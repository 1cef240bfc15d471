/**
 * `atom.lock`, version 1 (spec §10, §13): read every lock eka writes (with or without [locker], every dep type),
 * verify each id against (set, label) on read, and write deterministically.
 */

/** An atom entry: [locker], [compose] use = "atom", and [[deps]] type = "atom". */
export interface LockAtom {
  readonly label: string;
  readonly version: string;
  /** Root, 40 or 64 hex. */
  readonly set: string;
  /** Atom commit id; null for a local-only dependency (version has prerelease `local`). */
  readonly rev: string | null;
  readonly mirror: string | null;
  readonly id: string;
}

export type LockCompose =
  | { readonly use: "nix"; readonly entry: string }
  | ({ readonly use: "atom"; readonly entry: string } & LockAtom)
  | { readonly use: "static" };

export type LockDep =
  | ({ readonly type: "atom" } & LockAtom)
  | { readonly type: "nix"; readonly name: string; readonly url: string; readonly hash: string }
  | { readonly type: "nix+tar"; readonly name: string; readonly url: string; readonly hash: string }
  | { readonly type: "nix+src"; readonly name: string; readonly url: string; readonly hash: string; readonly unpack: boolean }
  | { readonly type: "nix+git"; readonly name: string; readonly url: string; readonly version: string | null; readonly rev: string };

export interface LockSet {
  readonly tag: string;
  /** "::" and/or URLs. */
  readonly mirrors: readonly string[];
}

export interface Lockfile {
  readonly version: 1;
  /** root hex → set */
  readonly sets: Readonly<Record<string, LockSet>>;
  /** null when the file had no [locker] (§13.8); the writer then fills in the default. */
  readonly locker: LockAtom | null;
  readonly compose: LockCompose;
  readonly deps: readonly LockDep[];
}

/** Parse and validate; CprError with file:line:col where possible; id mismatches name the entry and both ids. */
export declare function parseLock(text: string, file: string): Lockfile;
/** Deterministic bytes per §10 (ordering, layout, @generated header). `locker` null → the default locker. */
export declare function formatLock(lock: Lockfile): string;
