/**
 * Nix's export format (`nix-store --export`, read by `nix-store --import`; Nix 2.8 export-import.cc), streamed:
 *
 *   export   = { u64(1) NAR u64(0x4558494e) str(path) u64(#refs) { str(ref) } str(deriver or "") u64(0) } u64(0)
 *
 * with u64 little-endian and str(s) as in a NAR (length, bytes, zero padding to 8). The trailing u64(0) of each path
 * says "no legacy signature". `nix-store --import` needs root or a trusted user, and the references valid first.
 */
import { CprError } from "../protocol/errors.js";
import { parseStorePath, STORE_DIR } from "../protocol/narinfo.js";

const EXPORT_MAGIC = 0x4558494e;

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const pad = (8 - (b.length % 8)) % 8;
  return Buffer.concat([u64(b.length), b, Buffer.alloc(pad)]);
}

/** One path to export: its full store path, references (full paths), deriver, and its NAR as a stream. */
export interface ExportItem {
  readonly path: string;
  readonly references: readonly string[];
  readonly deriver?: string | null;
  readonly nar: AsyncIterable<Uint8Array> | Uint8Array;
}

/** The bytes after a path's NAR: magic, path, sorted references, deriver, no signature. */
export function exportTrailer(item: Omit<ExportItem, "nar">, storeDir: string = STORE_DIR): Buffer {
  const path = parseStorePath(item.path, { storeDir }).path;
  const refs = [...new Set(item.references.map((r) => parseStorePath(r, { storeDir }).path))].sort();
  const deriver = item.deriver ? parseStorePath(item.deriver, { storeDir }).path : "";
  const magic = Buffer.alloc(8);
  magic.writeUInt32LE(EXPORT_MAGIC, 0);
  return Buffer.concat([magic, str(path), u64(refs.length), ...refs.map(str), str(deriver), u64(0)]);
}

/**
 * The export stream of `items`, in the order given (Nix imports in that order, so put references first). NARs are
 * passed through as they are; an item whose NAR is empty is refused.
 */
export async function* exportPaths(
  items: Iterable<ExportItem> | AsyncIterable<ExportItem>,
  storeDir: string = STORE_DIR,
): AsyncGenerator<Buffer, void, undefined> {
  for await (const item of items) {
    yield u64(1);
    let size = 0;
    if (item.nar instanceof Uint8Array) {
      size = item.nar.length;
      yield Buffer.from(item.nar);
    } else {
      for await (const c of item.nar) {
        size += c.length;
        yield Buffer.isBuffer(c) ? c : Buffer.from(c);
      }
    }
    if (size === 0)
      throw new CprError("nar.export-empty", `the NAR of ${item.path} is empty`, {
        where: item.path,
        hint: "a NAR starts with nix-archive-1: dump the path again",
      });
    yield exportTrailer(item, storeDir);
  }
  yield u64(0);
}
