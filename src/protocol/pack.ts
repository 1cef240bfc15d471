/**
 * The git packfile format (gitformat-pack), in memory, both ways. A pack is `PACK`, version 2 or 3, the object
 * count, the objects (each a type-and-size header, an OFS_DELTA offset or REF_DELTA base id, then a zlib stream),
 * and the trailing checksum of everything before it.
 *
 * - parsePack reads one: deltas are resolved against objects of the same pack only (a pack fetched without `have`s
 *   and without `thin-pack` is self-contained), and every object's id is computed from its content here, so a
 *   caller that asked for ids learns whether it got exactly those objects. packIndex builds its version 2 index.
 * - encodePack writes one: whole objects, no deltas, for `git index-pack --stdin` to store.
 *
 * Pure: bytes in, bytes out (zlib and hashing in memory, no I/O).
 */
import { createHash } from "node:crypto";
import { crc32, deflateSync, inflateSync } from "node:zlib";
import { gitObjectId, hashLength, type ObjectFormat, type ObjectType } from "./git-object.js";

export interface PackObject {
  readonly oid: string;
  readonly type: ObjectType;
  readonly data: Buffer;
}

/** An object of a parsed pack, with where its entry starts and the CRC-32 of the entry's bytes (for an index). */
export interface PackEntry extends PackObject {
  readonly offset: number;
  readonly crc32: number;
}

/** A malformed pack; callers turn it into a CprError naming where the pack came from. */
export class PackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PackError";
  }
}

const TYPES: Readonly<Record<number, ObjectType>> = { 1: "commit", 2: "tree", 3: "blob", 4: "tag" };
const TYPE_CODES: Readonly<Record<ObjectType, number>> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const OFS_DELTA = 6;
const REF_DELTA = 7;
/** Longest chain of deltas followed (git's default pack.depth is 50; anything near this is hostile). */
const MAX_DELTA_DEPTH = 10_000;

interface Entry {
  readonly offset: number;
  readonly crc32: number;
  readonly kind: number;
  readonly size: number;
  /** Inflated data: the object itself, or the delta. */
  readonly data: Buffer;
  readonly baseOffset?: number;
  readonly baseOid?: string;
}

/**
 * Parse a whole pack; throws PackError on anything malformed (bad checksum, truncated zlib, unresolvable delta, an
 * object twice). The entries come in pack order.
 */
export function parsePack(pack: Buffer, algo: ObjectFormat = "sha1"): PackEntry[] {
  const hashLen = hashLength(algo);
  if (pack.length < 12 + hashLen || pack.toString("latin1", 0, 4) !== "PACK") throw new PackError("not a packfile (no PACK header)");
  const version = pack.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new PackError(`unsupported pack version ${version}`);
  const count = pack.readUInt32BE(8);
  const end = pack.length - hashLen;
  const sum = createHash(algo).update(pack.subarray(0, end)).digest();
  if (!sum.equals(pack.subarray(end))) throw new PackError("pack checksum mismatch");
  const entries: Entry[] = [];
  const byOffset = new Map<number, Entry>();
  let pos = 12;
  for (let i = 0; i < count; i++) {
    if (pos >= end) throw new PackError(`pack ends after ${i} of ${count} objects`);
    const offset = pos;
    let c = pack[pos++]!;
    const kind = (c >> 4) & 7;
    let size = c & 15;
    let shift = 4;
    while (c & 0x80) {
      if (pos >= end || shift > 49) throw new PackError("bad object header");
      c = pack[pos++]!;
      size += (c & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let baseOffset: number | undefined;
    let baseOid: string | undefined;
    if (kind === OFS_DELTA) {
      c = pack[pos++]!;
      let off = c & 0x7f;
      while (c & 0x80) {
        if (pos >= end || off > 2 ** 40) throw new PackError("bad delta offset");
        c = pack[pos++]!;
        off = (off + 1) * 128 + (c & 0x7f);
      }
      baseOffset = offset - off;
      if (baseOffset < 12 || baseOffset >= offset) throw new PackError("delta base offset outside the pack");
    } else if (kind === REF_DELTA) {
      if (pos + hashLen > end) throw new PackError("truncated delta base id");
      baseOid = pack.toString("hex", pos, pos + hashLen);
      pos += hashLen;
    } else if (!TYPES[kind]) throw new PackError(`unknown object type ${kind}`);
    let data: Buffer;
    let used: number;
    try {
      const r = inflateSync(pack.subarray(pos, end), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      data = r.buffer;
      used = r.engine.bytesWritten;
    } catch (e) {
      throw new PackError(`object ${i + 1} of ${count}: bad zlib data (${e instanceof Error ? e.message : String(e)})`);
    }
    if (data.length !== size) throw new PackError(`object ${i + 1} of ${count}: ${data.length} bytes, header says ${size}`);
    pos += used;
    const e: Entry = {
      offset,
      crc32: crc32(pack.subarray(offset, pos)),
      kind,
      size,
      data,
      ...(baseOffset === undefined ? {} : { baseOffset }),
      ...(baseOid === undefined ? {} : { baseOid }),
    };
    entries.push(e);
    byOffset.set(offset, e);
  }
  if (pos !== end) throw new PackError(`${end - pos} unexpected bytes after the last object`);

  const resolved = new Map<Entry, PackObject>();
  const byOid = new Map<string, PackObject>();
  for (const e of entries) {
    if (e.kind !== OFS_DELTA && e.kind !== REF_DELTA) {
      const o = { oid: gitObjectId(TYPES[e.kind]!, e.data, algo), type: TYPES[e.kind]!, data: e.data };
      resolved.set(e, o);
      byOid.set(o.oid, o);
    }
  }
  // Deltas: follow each chain down to a resolved base (REF_DELTA bases may come later in the pack).
  let progress = true;
  while (progress && resolved.size < entries.length) {
    progress = false;
    for (const e of entries) {
      if (resolved.has(e)) continue;
      const chain: Entry[] = [];
      let cur: Entry | undefined = e;
      let base: PackObject | undefined;
      while (cur && !base) {
        if (chain.length > MAX_DELTA_DEPTH) throw new PackError("delta chain too long (or a cycle)");
        chain.push(cur);
        const next: Entry | undefined = cur.baseOffset !== undefined ? byOffset.get(cur.baseOffset) : undefined;
        if (cur.baseOffset !== undefined && !next) throw new PackError("delta base offset does not start an object");
        if (next) {
          base = resolved.get(next);
          cur = base ? undefined : next;
        } else {
          base = byOid.get(cur.baseOid!);
          cur = undefined;
        }
      }
      if (!base) continue; // a REF_DELTA whose base is itself a later delta: another pass
      for (let k = chain.length - 1; k >= 0; k--) {
        const d = chain[k]!;
        const data = applyDelta(base.data, d.data);
        const o: PackObject = { oid: gitObjectId(base.type, data, algo), type: base.type, data };
        resolved.set(d, o);
        byOid.set(o.oid, o);
        base = o;
      }
      progress = true;
    }
  }
  if (resolved.size < entries.length) throw new PackError(`${entries.length - resolved.size} delta(s) refer to objects not in the pack`);
  const out = entries.map((e) => ({ ...resolved.get(e)!, offset: e.offset, crc32: e.crc32 }));
  if (new Set(out.map((o) => o.oid)).size !== out.length) throw new PackError("an object is in the pack twice");
  return out;
}

/**
 * The version 2 index of a parsed pack (gitformat-pack): fan-out table, sorted ids, CRC-32s, offsets (with the
 * 64-bit table for offsets past 2 GiB), the pack's checksum, and the index's own checksum.
 */
export function packIndex(pack: Buffer, entries: readonly PackEntry[], algo: ObjectFormat = "sha1"): Buffer {
  const hashLen = hashLength(algo);
  const sorted = [...entries].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const n = sorted.length;
  const large = sorted.filter((e) => e.offset >= 0x80000000);
  const buf = Buffer.alloc(8 + 256 * 4 + n * (hashLen + 8) + large.length * 8 + 2 * hashLen);
  buf.writeUInt32BE(0xff744f63, 0);
  buf.writeUInt32BE(2, 4);
  const fan = new Array<number>(256).fill(0);
  for (const e of sorted) fan[parseInt(e.oid.slice(0, 2), 16)]!++;
  let total = 0;
  for (let i = 0; i < 256; i++) {
    total += fan[i]!;
    buf.writeUInt32BE(total, 8 + i * 4);
  }
  let pos = 8 + 256 * 4;
  for (const e of sorted) pos += buf.write(e.oid, pos, "hex");
  for (const e of sorted) pos = buf.writeUInt32BE(e.crc32 >>> 0, pos);
  let li = 0;
  for (const e of sorted) pos = buf.writeUInt32BE(e.offset >= 0x80000000 ? (0x80000000 | li++) >>> 0 : e.offset, pos);
  for (const e of large) pos = buf.writeBigUInt64BE(BigInt(e.offset), pos);
  pos += pack.copy(buf, pos, pack.length - hashLen);
  createHash(algo).update(buf.subarray(0, pos)).digest().copy(buf, pos);
  return buf;
}

/** Apply a git delta (source size, target size, then copy/insert instructions) to `base`. */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    let c: number;
    do {
      if (pos >= delta.length || shift > 49) throw new PackError("truncated delta header");
      c = delta[pos++]!;
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80);
    return v;
  };
  const srcSize = varint();
  const dstSize = varint();
  if (srcSize !== base.length) throw new PackError(`delta expects a base of ${srcSize} bytes, not ${base.length}`);
  const out = Buffer.allocUnsafe(dstSize);
  let o = 0;
  while (pos < delta.length) {
    const cmd = delta[pos++]!;
    if (cmd & 0x80) {
      let off = 0;
      let size = 0;
      for (let b = 0; b < 4; b++) if (cmd & (1 << b)) off += delta[pos++]! * 2 ** (8 * b);
      for (let b = 0; b < 3; b++) if (cmd & (0x10 << b)) size += delta[pos++]! * 2 ** (8 * b);
      if (size === 0) size = 0x10000;
      if (pos > delta.length || off + size > base.length || o + size > dstSize) throw new PackError("delta copy out of range");
      base.copy(out, o, off, off + size);
      o += size;
    } else if (cmd !== 0) {
      if (pos + cmd > delta.length || o + cmd > dstSize) throw new PackError("delta insert out of range");
      delta.copy(out, o, pos, pos + cmd);
      pos += cmd;
      o += cmd;
    } else throw new PackError("delta opcode 0 is reserved");
  }
  if (o !== dstSize) throw new PackError(`delta produced ${o} bytes, header says ${dstSize}`);
  return out;
}

/** An object to pack: its id (what duplicates are recognised by), type and body. */
export interface PackInput {
  readonly oid: string;
  readonly type: ObjectType;
  readonly data: Uint8Array;
}

/**
 * A version 2 pack of whole objects (no deltas) in the given order, an object whose id came before dropped, with the
 * trailing checksum of `format`. Each body is deflated at level 1: the pack is stored by `git index-pack`, which
 * keeps it as it is, and speed matters more here than a few percent of size.
 */
export function encodePack(objects: readonly PackInput[], format: ObjectFormat = "sha1"): Buffer {
  const seen = new Set<string>();
  const unique = objects.filter((o) => !seen.has(o.oid) && seen.add(o.oid));
  const head = Buffer.alloc(12);
  head.write("PACK", 0, "ascii");
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(unique.length, 8);
  const parts: Buffer[] = [head];
  for (const o of unique) parts.push(entryHeader(TYPE_CODES[o.type], o.data.byteLength), deflateSync(o.data, { level: 1 }));
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash(format).update(body).digest()]);
}

/** A pack entry header: type and size, the size in 4 bits then 7-bit groups, least significant first. */
function entryHeader(typeCode: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (typeCode << 4) | (size & 0x0f);
  size = Math.floor(size / 16);
  while (size > 0) {
    bytes.push(byte | 0x80);
    byte = size & 0x7f;
    size = Math.floor(size / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}
