/**
 * Content-addressed rewriting of one store path, streamed, as Nix 2.8's `nix store make-content-addressed` does it
 * (src/protocol/content-address.ts has the computation and its steps). This is the fallback for a local graft by a
 * user the Nix daemon does not trust: a content-addressed path needs no signature. What a registry serves is
 * addressed by the graft descriptor instead (docs/grafts.md explains why).
 *
 * Two passes over the original NAR, constant memory: the first rewrites the references and hashes the result modulo
 * the path's own hash part, which gives the new path; the second rewrites the references and the own hash part and
 * yields the NAR to store, with its NarHash and NarSize.
 */
import { HashModulo, contentAddressedPath } from "../protocol/content-address.js";
import { StreamRewriter, type BytePair } from "../protocol/byte-rewrite.js";
import { toNix32 } from "../protocol/nix-hash.js";
import { STORE_DIR, parseStorePath } from "../protocol/store-path.js";
import { rewriteNar, type Rewrite, type RewriteNarOptions, type RewriteResult } from "./rewrite.js";
import type { ResidueReport } from "./residue.js";

export interface ContentAddressInput {
  /** The original full store path. */
  readonly original: string;
  /** Whether the original refers to itself (its recorded references include it). */
  readonly self: boolean;
  /** Its references after the rewrite, full paths, without itself. */
  readonly references: readonly string[];
  /**
   * Rewrites of its references, old → new (make-content-addressed rewrites full paths `/nix/store/<hash>-<name>`;
   * a graft rewrites basenames). Not its own path: that is handled here.
   */
  readonly rewrites: readonly Rewrite[];
  /** Opens the original NAR (called twice). */
  readonly nar: () => AsyncIterable<Uint8Array>;
  readonly storeDir?: string;
  /** Hash the self-reference offsets, as Nix ≤ 2.16 and ≥ 2.35 do (default); false for Nix 2.17 to 2.34. */
  readonly hashOffsets?: boolean;
}

export interface ContentAddressedPath {
  readonly path: string;
  /** The narinfo CA field: `fixed:r:sha256:<nix32 of the hash modulo>`. */
  readonly ca: string;
  /** Where the own hash part occurred in the NAR (after the references were rewritten). */
  readonly selfOffsets: readonly number[];
  /** Rewrites for the second pass: the references' and the own hash part's. */
  readonly rewrites: readonly Rewrite[];
}

/** Pass one: the new path (and the rewrites pass two needs). */
export async function contentAddressedPathOf(input: ContentAddressInput): Promise<ContentAddressedPath> {
  const storeDir = input.storeDir ?? STORE_DIR;
  const orig = parseStorePath(input.original, { storeDir });
  const modulo = new HashModulo(orig.hash, { offsets: input.hashOffsets ?? true });
  const refs =
    input.rewrites.length > 0
      ? new StreamRewriter(input.rewrites.map((r): BytePair => ({ from: Buffer.from(r.from), to: Buffer.from(r.to) })))
      : null;
  for await (const chunk of input.nar()) modulo.update(refs ? refs.push(chunk).out : chunk);
  if (refs) modulo.update(refs.end().out);
  const digest = modulo.digest();
  const path = contentAddressedPath(orig.path, digest.sha256, input.references, input.self, storeDir);
  const newHash = parseStorePath(path, { storeDir }).hash;
  return {
    path,
    ca: `fixed:r:sha256:${toNix32(digest.sha256)}`,
    selfOffsets: digest.selfOffsets,
    rewrites: [...input.rewrites, { from: orig.hash, to: newHash }],
  };
}

/** Both passes: the new path, and its NAR written to `opts.output` (hashed, and scanned when asked). */
export async function contentAddress(
  input: ContentAddressInput,
  opts: RewriteNarOptions = {},
): Promise<ContentAddressedPath & RewriteResult & { residue: ResidueReport | null }> {
  const first = await contentAddressedPathOf(input);
  const second = await rewriteNar(input.nar(), first.rewrites, opts);
  return { ...first, ...second };
}
