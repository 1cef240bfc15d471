/**
 * Nix binary-cache metadata, pure: store paths, narinfo text and the fingerprint narinfo signatures sign.
 * (STUB: signatures fixed; bodies are being written.)
 */
import { CprError } from "./errors.js";

export const STORE_DIR = "/nix/store";

export interface StorePath {
  /** 32-char nix32 hash part. */
  readonly hash: string;
  readonly name: string;
  /** `<hash>-<name>` */
  readonly basename: string;
  /** `<storeDir>/<hash>-<name>` */
  readonly path: string;
}

export interface NarInfo {
  readonly storePath: string;
  readonly url: string;
  readonly compression: string;
  /** `sha256:<nix32>`; optional in Nix's format. */
  readonly fileHash: string | null;
  readonly fileSize: number | null;
  /** `sha256:<nix32>` */
  readonly narHash: string;
  readonly narSize: number;
  /** Basenames, sorted. */
  readonly references: readonly string[];
  /** Basename, or null. */
  readonly deriver: string | null;
  readonly system: string | null;
  readonly sigs: readonly string[];
  readonly ca: string | null;
}

/** Parses `/nix/store/<32 nix32>-<name>` (or a basename when `basename` is set); throws CprError naming the input. */
export function parseStorePath(text: string, opts: { storeDir?: string; basename?: boolean } = {}): StorePath {
  void opts;
  throw new CprError("narinfo.stub", `not implemented: ${text}`);
}

/** Renders a narinfo exactly as Nix writes one (field order StorePath, URL, Compression, FileHash, FileSize, NarHash, NarSize, References, Deriver, System, Sig, CA). */
export function formatNarInfo(info: NarInfo): string {
  void info;
  throw new CprError("narinfo.stub", "not implemented");
}

/** Parses narinfo text; unknown keys are ignored, missing required ones are errors. */
export function parseNarInfo(text: string, where?: string): NarInfo {
  void text;
  throw new CprError("narinfo.stub", `not implemented ${where ?? ""}`);
}

/** `1;<storePath>;<narHash>;<narSize>;<comma-separated full reference paths>` */
export function narInfoFingerprint(info: Pick<NarInfo, "storePath" | "narHash" | "narSize" | "references">, storeDir: string = STORE_DIR): string {
  void info;
  void storeDir;
  throw new CprError("narinfo.stub", "not implemented");
}

/** Accepts `sha256:<nix32>`, `sha256:<hex>` or SRI `sha256-<base64>`; returns `sha256:<nix32>`. */
export function normalizeSha256(text: string, what: string): string {
  void what;
  throw new CprError("narinfo.stub", `not implemented ${text}`);
}
