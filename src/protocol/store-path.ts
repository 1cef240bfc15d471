/**
 * Nix store path computation, pure (Nix manual, "Store Path Specification"; libstore store-api.cc `makeStorePath`,
 * `makeType`, `makeFixedOutputPath`, `makeTextPath`, as in Nix 2.8):
 *
 *   path        = <storeDir> "/" <hash part> "-" <name>
 *   hash part   = nix32(fold20(sha256(fingerprint)))                32 characters
 *   fingerprint = <type> ":sha256:" <inner digest, lower-case hex> ":" <storeDir> ":" <name>
 *   fold20(h)   = 20 bytes, out[i % 20] ^= h[i] for i in 0..31      (Nix's compressHash)
 *
 * The types Nix uses, and the inner digest each one hashes:
 * - `text{:<ref>}`: `builtins.toFile`, `.drv` files; sha256 of the file's contents; refs are full store paths.
 * - `source{:<ref>}[:self]`: `nix-store --add`, `--add-fixed --recursive sha256`, and every content-addressed path
 *   whose hash is the sha256 of its NAR (`nix store make-content-addressed` included); sha256 of the NAR.
 * - `output:out` over sha256(`fixed:out:` [`r:`] <algo> `:` <hex> `:`): every other fixed-output path
 *   (`--add-fixed sha256 FILE` flat, `--add-fixed --recursive sha1 DIR`, …). Such a path has no references.
 * - `output:<id>` over the derivation modulo fixed outputs: input-addressed derivation outputs (not computed here).
 * References are written as full store paths, sorted (Nix keeps them in an ordered set of store paths, ordered by
 * basename, and with one store directory that is the order of the full paths).
 *
 * Parsing and validating a path or basename is `parseStorePath` in narinfo.ts, re-exported here.
 */
import { createHash } from "node:crypto";
import { CprError } from "./errors.js";
import { MAX_STORE_NAME_LENGTH, STORE_DIR, STORE_HASH_LENGTH, parseStorePath, type StorePath } from "./narinfo.js";
import { toHex, toNix32 } from "./nix-hash.js";

export { MAX_STORE_NAME_LENGTH, STORE_DIR, STORE_HASH_LENGTH, parseStorePath, type StorePath };

/** Hash algorithms a fixed-output path may name. */
export type FixedHashAlgo = "md5" | "sha1" | "sha256" | "sha512";
const DIGEST_BYTES: Record<FixedHashAlgo, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

/** XOR-folds a digest into `size` bytes: out[i % size] ^= h[i] (Nix's compressHash). */
export function foldHash(digest: Uint8Array, size = 20): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < digest.length; i++) out[i % size]! ^= digest[i]!;
  return out;
}

/** Checks a store path name the way Nix 2.8 does (non-empty, at most 211 characters, no leading '.', [A-Za-z0-9+-._?=]). */
export function checkStorePathName(name: string): string {
  const bad = (why: string): CprError =>
    new CprError("store-path.name", `invalid store path name ${JSON.stringify(name)}: ${why}`, {
      where: name,
      hint: "a store path name is 1 to 211 characters of A-Z a-z 0-9 + - . _ ? = and does not start with '.'",
    });
  if (name.length === 0) throw bad("it is empty");
  if (name.length > MAX_STORE_NAME_LENGTH) throw bad(`it is ${name.length} characters long; Nix allows ${MAX_STORE_NAME_LENGTH}`);
  if (name.startsWith(".")) throw bad("it starts with '.'");
  if (!/^[A-Za-z0-9+\-._?=]+$/.test(name)) throw bad("it contains a character other than A-Z a-z 0-9 + - . _ ? =");
  return name;
}

function checkStoreDir(storeDir: string): void {
  if (!storeDir.startsWith("/") || storeDir.length < 2 || storeDir.endsWith("/") || storeDir.includes(":")) {
    throw new CprError("store-path.store-dir", `invalid store directory ${JSON.stringify(storeDir)}`, {
      where: storeDir,
      hint: "give an absolute directory without a trailing slash, e.g. /nix/store",
    });
  }
}

/** The fingerprint string a store path hashes: `<type>:sha256:<hex>:<storeDir>:<name>`. */
export function storePathFingerprint(type: string, innerHashHex: string, name: string, storeDir: string = STORE_DIR): string {
  if (!/^[0-9a-f]{64}$/.test(innerHashHex)) {
    throw new CprError(
      "store-path.inner-hash",
      `invalid inner hash ${JSON.stringify(innerHashHex)}: expected 64 lower-case hex digits (a sha256)`,
      {
        where: innerHashHex,
        hint: "pass the sha256 digest in lower-case hex",
      },
    );
  }
  if (type === "" || /[\n\0]/.test(type))
    throw new CprError("store-path.type", `invalid store path type ${JSON.stringify(type)}`, { where: type });
  checkStoreDir(storeDir);
  checkStorePathName(name);
  return `${type}:sha256:${innerHashHex}:${storeDir}:${name}`;
}

/** The hash part of the store path of `fingerprint`: nix32(fold20(sha256(fingerprint))). */
export function storePathHashPart(fingerprint: string): string {
  return toNix32(foldHash(createHash("sha256").update(fingerprint, "utf8").digest()));
}

/** `<storeDir>/<nix32(fold20(sha256("<type>:sha256:<hex>:<storeDir>:<name>")))>-<name>` (Nix's makeStorePath). */
export function makeStorePath(type: string, innerHashHex: string, name: string, storeDir: string = STORE_DIR): string {
  return `${storeDir}/${storePathHashPart(storePathFingerprint(type, innerHashHex, name, storeDir))}-${name}`;
}

/** Full store paths, validated, sorted and without repeats. */
function sortedRefs(references: Iterable<string>, storeDir: string): string[] {
  const out = new Set<string>();
  for (const r of references) out.add(parseStorePath(r, { storeDir }).path);
  return [...out].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `<base>{:<ref>}[:self]` (Nix's makeType): references as sorted full store paths. */
export function makeType(base: "text" | "source", references: Iterable<string>, self = false, storeDir: string = STORE_DIR): string {
  if (base === "text" && self) {
    throw new CprError("store-path.text-self", "a text store path cannot refer to itself", {
      hint: "text paths (builtins.toFile, .drv) have no self-reference",
    });
  }
  let type = base;
  for (const r of sortedRefs(references, storeDir)) type += `:${r}`;
  if (self) type += ":self";
  return type;
}

function digestBytes(what: string, digest: Uint8Array, algo: FixedHashAlgo = "sha256"): string {
  if (digest.length !== DIGEST_BYTES[algo]) {
    throw new CprError("store-path.digest", `${what} is ${digest.length} bytes long; a ${algo} digest has ${DIGEST_BYTES[algo]}`, {
      where: what,
    });
  }
  return toHex(digest);
}

/** A text path (`builtins.toFile`, a `.drv`): `text{:<ref>}` over the sha256 of the contents. */
export function makeTextPath(
  name: string,
  contentSha256: Uint8Array,
  references: Iterable<string> = [],
  storeDir: string = STORE_DIR,
): string {
  return makeStorePath(makeType("text", references, false, storeDir), digestBytes("the content hash", contentSha256), name, storeDir);
}

/**
 * A NAR-hashed content-addressed path (`nix-store --add`, `--add-fixed --recursive sha256`, make-content-addressed):
 * `source{:<ref>}[:self]` over the sha256 of the NAR (for a self-referencing path: the hash modulo its own hash
 * part, see HashModulo in content-address.ts).
 */
export function makeSourcePath(
  name: string,
  narSha256: Uint8Array,
  references: Iterable<string> = [],
  self = false,
  storeDir: string = STORE_DIR,
): string {
  return makeStorePath(makeType("source", references, self, storeDir), digestBytes("the NAR hash", narSha256), name, storeDir);
}

/** How a fixed-output path was hashed: `flat` (a single file's bytes) or `recursive` (its NAR). */
export type FileIngestionMethod = "flat" | "recursive";

/**
 * Nix's makeFixedOutputPath: NAR + sha256 is a `source` path (references allowed); everything else is `output:out`
 * over sha256(`fixed:out:[r:]<algo>:<hex>:`) and has no references.
 */
export function makeFixedOutputPath(
  name: string,
  ca: { method: FileIngestionMethod; algo: FixedHashAlgo; digest: Uint8Array },
  references: Iterable<string> = [],
  self = false,
  storeDir: string = STORE_DIR,
): string {
  if (ca.method === "recursive" && ca.algo === "sha256") return makeSourcePath(name, ca.digest, references, self, storeDir);
  if (self || sortedRefs(references, storeDir).length > 0) {
    throw new CprError(
      "store-path.fixed-refs",
      `a fixed-output path hashed ${ca.method === "flat" ? "flat" : "recursively"} with ${ca.algo} cannot have references`,
      {
        where: name,
        hint: "only NAR + sha256 content addressing (a `source` path) records references",
      },
    );
  }
  const inner = `fixed:out:${ca.method === "recursive" ? "r:" : ""}${ca.algo}:${digestBytes("the fixed-output hash", ca.digest, ca.algo)}:`;
  return makeStorePath("output:out", createHash("sha256").update(inner, "utf8").digest("hex"), name, storeDir);
}
