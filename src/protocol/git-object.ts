/**
 * Git objects (gitformat-loose, git's hash-function-transition doc): object ids, the `<type> <size>\0<body>` header
 * they hash, the SHA-1 and SHA-256 object formats, and tree objects (entries `<mode> SP <name> NUL <raw id>`, sorted
 * the way git sorts them). The one place cpr knows these bytes; commit.ts builds atom commits on top, pack.ts packs.
 * Pure: no I/O.
 */
import { createHash } from "node:crypto";
import { CprError } from "./errors.js";

export type ObjectFormat = "sha1" | "sha256";
export type ObjectType = "commit" | "tree" | "blob" | "tag";

const HEX_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** True for a lowercase hex object id of SHA-1 (40) or SHA-256 (64) length. */
export function isObjectId(text: string): boolean {
  return HEX_ID.test(text);
}

/** The object format an id belongs to, from its length; throws CprError `commit.bad-id` for anything else. */
export function objectFormatOf(id: string): ObjectFormat {
  if (!isObjectId(id)) {
    throw new CprError("commit.bad-id", `expected a lowercase hex object id of 40 or 64 digits, got ${JSON.stringify(id)}`, {
      hint: "pass the full object id, e.g. from `git rev-parse`",
    });
  }
  return id.length === 40 ? "sha1" : "sha256";
}

/** Length of a raw (binary) object id: 20 bytes for SHA-1, 32 for SHA-256. Hex ids are twice as long. */
export function hashLength(format: ObjectFormat): number {
  return format === "sha1" ? 20 : 32;
}

/** The header git hashes before an object's body: `<type> SP <size in decimal> NUL`. */
export function objectHeader(type: ObjectType, size: number): string {
  return `${type} ${size}\0`;
}

/** git object id: hash of `<type> <len>\0<body>` with SHA-1 or SHA-256. */
export function gitObjectId(type: ObjectType, body: Uint8Array, format: ObjectFormat = "sha1"): string {
  return createHash(format).update(objectHeader(type, body.byteLength), "utf8").update(body).digest("hex");
}

/** One entry of a tree object: mode as git writes it (`40000` for a tree, no leading zero), name, hex id. */
export interface TreeItem {
  readonly mode: string;
  readonly name: string;
  readonly oid: string;
}

/** The modes git writes in trees: directory, file, executable, symlink, gitlink (submodule). */
const TREE_MODES = new Set(["40000", "100644", "100755", "120000", "160000"]);

function treeError(why: string, hint: string): CprError {
  return new CprError("tree.malformed", `malformed tree object: ${why}`, { hint });
}

/**
 * The entries of a raw tree object, in their order. Throws CprError `tree.malformed` when the bytes do not split into
 * `<mode> SP <name> NUL <raw id>` records with ids of the format's length.
 */
export function parseTree(data: Uint8Array, format: ObjectFormat): TreeItem[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const rawLen = hashLength(format);
  const out: TreeItem[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nul = buf.indexOf(0, pos);
    const sp = nul < 0 ? -1 : buf.subarray(pos, nul).indexOf(0x20);
    if (sp <= 0 || nul + 1 + rawLen > buf.length) {
      throw treeError(
        `the entry at byte ${pos} is not \`<mode> <name>\\0<${rawLen}-byte id>\``,
        `the object is damaged or not a ${format} tree; run \`git fsck\``,
      );
    }
    out.push({
      mode: buf.toString("latin1", pos, pos + sp),
      name: buf.toString("utf8", pos + sp + 1, nul),
      oid: buf.toString("hex", nul + 1, nul + 1 + rawLen),
    });
    pos = nul + 1 + rawLen;
  }
  return out;
}

/** The name git sorts a tree entry by: a directory compares as `name/`. */
function sortKey(e: TreeItem): Buffer {
  return Buffer.from(e.mode === "40000" ? `${e.name}/` : e.name, "utf8");
}

/**
 * The bytes of a tree object holding `entries`, sorted as git sorts them (byte order, a directory as `name/`), so
 * that its id is the one git gives the same tree. Throws CprError `tree.bad-entry` for a mode git does not write,
 * a name that is empty, `.`, `..` or holds `/` or NUL, an id of another format, or a name given twice.
 */
export function encodeTree(entries: readonly TreeItem[], format: ObjectFormat = "sha1"): Buffer {
  const idLen = hashLength(format) * 2;
  const bad = (e: TreeItem, why: string): CprError =>
    new CprError("tree.bad-entry", `tree entry ${JSON.stringify(e.name)} (${e.mode} ${e.oid}): ${why}`, {
      hint: "pass git's own modes (40000, 100644, 100755, 120000, 160000), one path component per name and full ids",
    });
  const names = new Set<string>();
  for (const e of entries) {
    if (!TREE_MODES.has(e.mode)) throw bad(e, "not a mode git writes in trees");
    if (e.name === "" || e.name === "." || e.name === ".." || /[/\0]/.test(e.name)) throw bad(e, "not a single path component");
    if (e.oid.length !== idLen || !isObjectId(e.oid)) throw bad(e, `not a ${format} object id`);
    if (names.has(e.name)) throw bad(e, "the name is in the tree twice");
    names.add(e.name);
  }
  const sorted = [...entries].sort((a, b) => Buffer.compare(sortKey(a), sortKey(b)));
  return Buffer.concat(sorted.flatMap((e) => [Buffer.from(`${e.mode} ${e.name}\0`, "utf8"), Buffer.from(e.oid, "hex")]));
}
