/**
 * Build records as the registry API carries them, pure: validation, canonical JSON and the config hash.
 * (STUB: signatures fixed; bodies are being written.)
 */
import { CprError } from "./errors.js";

export interface BuildRecord {
  /** Set root, 40 or 64 lowercase hex. */
  readonly set: string;
  readonly label: string;
  /** AtomId; must equal the digest of (set, label). */
  readonly id: string;
  readonly version: string;
  /** Atom commit id. */
  readonly rev: string;
  readonly system: string;
  /** Evaluation inputs, e.g. {"system":"x86_64-linux"}. */
  readonly config: Readonly<Record<string, unknown>>;
  /** /nix/store/…drv */
  readonly drv: string;
  /** Output name → store path. */
  readonly outputs: Readonly<Record<string, string>>;
}

/** JSON with object keys sorted by UTF-16 code units, no whitespace; rejects non-finite numbers and undefined. */
export function canonicalJson(value: unknown): string {
  void value;
  throw new CprError("build.stub", "not implemented");
}

/** Hex SHA-256 of canonicalJson(config). */
export function configHash(config: unknown): string {
  void config;
  throw new CprError("build.stub", "not implemented");
}

/** Validates a decoded JSON body; throws CprError (code `build.invalid`) naming the bad field. */
export function parseBuildRecord(json: unknown): BuildRecord {
  void json;
  throw new CprError("build.stub", "not implemented");
}
