import { blake3 } from "@noble/hashes/blake3.js";
import { CprError } from "./errors.js";
import { META_PREFIX } from "./refs.js";

/**
 * Signatures of published atoms (no I/O): the ref a signature tag lives under, the tag's text, and the BLAKE3 tree
 * digest it carries. Signing and checking with keys is done by the publish and store capabilities.
 */

/** `refs/eka/meta/<label>/<version>/sig`: an annotated, signed tag pointing at the atom commit. */
export function sigRef(label: string, version: string): string {
  return `${META_PREFIX}${label}/${version}/sig`;
}

export interface SignAtom {
  readonly label: string;
  readonly version: string;
  readonly commit: string;
}

/** The unsigned tag body for one atom version. */
export function signaturePayload(a: SignAtom, digest: string, tagger: string): string {
  return [
    `object ${a.commit}`,
    "type commit",
    `tag ${a.label}/${a.version}`,
    `tagger ${tagger}`,
    "",
    `publish(${a.label}): ${a.version}`,
    "",
    `tree-digest: ${digest}`,
    `digest-format: ${TREE_DIGEST_FORMAT}`,
    "",
  ].join("\n");
}

export interface SignatureTag {
  readonly object: string | null;
  readonly digest: string | null;
}

export function parseSignatureTag(body: Uint8Array): SignatureTag {
  const text = Buffer.from(body).toString("utf8");
  return {
    object: /^object ([0-9a-f]{40,64})$/m.exec(text)?.[1] ?? null,
    digest: /^tree-digest: (blake3:[0-9a-f]{64})$/m.exec(text)?.[1] ?? null,
  };
}

/**
 * The BLAKE3 tree digest carried by signatures (docs/tree-digest.md): a content hash of an atom's tree that does not
 * depend on git's object ids (SHA-1 alone is not a security boundary).
 *
 *   stream = "cpr-tree-digest-v1" LF
 *            then, for every non-tree entry of the tree, recursively, in byte order of its full path:
 *              kind (1 byte: 'f' file 100644, 'x' executable 100755, 'l' symlink 120000, 'c' gitlink 160000)
 *              u64 big-endian byte length of the path, the path (UTF-8, '/'-separated, relative to the atom)
 *              u64 big-endian byte length of the content, the content (file bytes; symlink target; gitlink: hex id)
 *   digest = BLAKE3(stream), 32 bytes, written as `blake3:<64 lowercase hex>`
 */
export const TREE_DIGEST_FORMAT = "cpr-tree-digest-v1";

export interface DigestEntry {
  readonly mode: string;
  readonly path: string;
  readonly content: Uint8Array;
}

const KINDS: Record<string, string> = { "100644": "f", "100755": "x", "120000": "l", "160000": "c" };

function u64(n: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Digest of a list of entries (any order; sorted here). */
export function treeDigestOf(entries: readonly DigestEntry[]): string {
  const h = blake3.create({});
  h.update(Buffer.from(`${TREE_DIGEST_FORMAT}\n`));
  const sorted = [...entries]
    .map((e) => ({ ...e, pathBytes: Buffer.from(e.path, "utf8") }))
    .sort((a, b) => Buffer.compare(a.pathBytes, b.pathBytes));
  for (const e of sorted) {
    const kind = KINDS[e.mode];
    if (!kind) throw new CprError("digest.mode", `cannot digest tree entry ${e.path} with mode ${e.mode}`);
    h.update(Buffer.from(kind));
    h.update(u64(e.pathBytes.length));
    h.update(e.pathBytes);
    h.update(u64(e.content.length));
    h.update(e.content);
  }
  return `blake3:${Buffer.from(h.digest()).toString("hex")}`;
}
