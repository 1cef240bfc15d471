/**
 * Content-addressed store paths as `nix store make-content-addressed` (Nix 2.8, libstore make-content-addressed.cc)
 * computes them, pure. cpr uses them only for a local graft by a user the Nix daemon does not trust (a
 * content-addressed path needs no signature); what a registry serves is addressed by the graft descriptor instead
 * (graft.ts), because for self-referencing paths this computation is not stable across Nix versions.
 *
 * For each path of the closure, dependencies first:
 * 1. its NAR, with every reference already remapped rewritten (full store paths old → new);
 * 2. the hash modulo its own hash part (Nix's HashModuloSink): sha256 over the NAR in which every occurrence of the
 *    path's old 32-character hash part is replaced by 32 zero bytes, followed by `|<offset>` (decimal) for each
 *    occurrence, in order, the offsets being those in the NAR. Nix 2.17 to 2.34 lost the offsets by accident
 *    (NixOS/nix#15931 restored them): their paths for self-referencing content differ, and each version refuses the
 *    other's at import ("ca hash mismatch"); `offsets: false` computes theirs;
 * 3. the new path: makeFixedOutputPath(recursive, sha256, that hash, name, the remapped references, self) = a `source`
 *    path with `:self` when the path referred to itself;
 * 4. the final NAR: the NAR of step 1 with the old hash part replaced by the new one; its sha256 is the NarHash.
 */
import { createHash, type Hash } from "node:crypto";
import { StreamRewriter } from "./byte-rewrite.js";
import { CprError } from "./errors.js";
import { STORE_HASH_LENGTH, makeSourcePath, parseStorePath, STORE_DIR } from "./store-path.js";

/** sha256 of a NAR with one hash part replaced by zeros, plus the offsets of the replacements (Nix's HashModuloSink). */
export class HashModulo {
  private readonly rewriter: StreamRewriter;
  private readonly hash: Hash = createHash("sha256");
  private readonly offsets: number[] = [];
  private done = false;

  private readonly hashOffsets: boolean;

  /**
   * `modulus` is the 32-character hash part to hash modulo. `offsets` (default true: Nix ≤ 2.16 and ≥ 2.35) hashes
   * the offsets of the occurrences after the data; Nix 2.17 to 2.34 do not.
   */
  constructor(modulus: string, opts: { offsets?: boolean } = {}) {
    this.hashOffsets = opts.offsets ?? true;
    if (!/^[0123456789abcdfghijklmnpqrsvwxyz]{32}$/.test(modulus)) {
      throw new CprError("content-address.modulus", `invalid hash part ${JSON.stringify(modulus)}`, {
        hint: `give the ${STORE_HASH_LENGTH}-character hash part of the path`,
      });
    }
    const from = Buffer.from(modulus, "latin1");
    this.rewriter = new StreamRewriter([{ from, to: Buffer.alloc(from.length) }]);
  }

  update(chunk: Uint8Array): this {
    if (this.done) throw new CprError("content-address.ended", "update after digest");
    const s = this.rewriter.push(chunk);
    this.hash.update(s.out);
    for (const m of s.matches) this.offsets.push(m.offset);
    return this;
  }

  /** The digest, the number of bytes hashed (the NAR size) and where the hash part occurred. */
  digest(): { sha256: Uint8Array; size: number; selfOffsets: readonly number[] } {
    if (this.done) throw new CprError("content-address.ended", "digest called twice");
    this.done = true;
    const s = this.rewriter.end();
    this.hash.update(s.out);
    for (const m of s.matches) this.offsets.push(m.offset);
    if (this.hashOffsets) for (const off of this.offsets) this.hash.update(`|${off}`, "latin1");
    return { sha256: new Uint8Array(this.hash.digest()), size: this.rewriter.emitted, selfOffsets: this.offsets };
  }
}

/**
 * The path make-content-addressed gives `original`, from the hash modulo of its NAR (after its references were
 * remapped) and its remapped references (full paths, without itself); `self` when the NAR mentions its own hash part
 * (Nix takes it from the path's recorded references: pass whether the original referred to itself).
 */
export function contentAddressedPath(
  original: string,
  moduloSha256: Uint8Array,
  references: Iterable<string>,
  self: boolean,
  storeDir: string = STORE_DIR,
): string {
  const p = parseStorePath(original, { storeDir });
  const refs = [...references].filter((r) => parseStorePath(r, { storeDir }).path !== p.path);
  return makeSourcePath(p.name, moduloSha256, refs, self, storeDir);
}
