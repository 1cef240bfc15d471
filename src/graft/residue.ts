/**
 * The residue scan (docs/grafts.md): after a graft rewrote a NAR, no old hash part may remain anywhere in it. The
 * scanner reads the NAR as a stream (src/nix/nar-read.ts) and looks for every old 32-character hash part in entry
 * names, symlink targets and file contents, and inside the compressed data it recognises by its magic bytes at the
 * start of a file or member: gzip, xz, zstd (streamed through the decompressor) and zip (buffered up to the cap, its
 * stored and deflated members read through the central directory), nested up to `maxDepth` levels.
 *
 * Decompression is capped (`maxDecompressed` bytes per member, and a zip file is read only up to that size): a member
 * that is larger, corrupt, encrypted or compressed with a method not handled is reported as unscanned, with the
 * reason, so that the caller can refuse or warn; it is never silently passed. Zip members are also checked against
 * their CRC-32: a stored member rewritten in place no longer matches it (reported as damaged).
 */
import { crc32 } from "node:zlib";
import { CprError } from "../protocol/errors.js";
import { StreamRewriter } from "../protocol/byte-rewrite.js";
import { STORE_HASH_LENGTH } from "../protocol/store-path.js";
import { decompress, sniffContainer, SNIFF_BYTES, type StreamCompression } from "../nix/compression.js";
import { readNar } from "../nix/nar-read.js";
import { Channel } from "./channel.js";

/** An old hash part found. */
export interface ResidueHit {
  /** File path inside the NAR (`""` for a NAR whose root is the file). */
  readonly path: string;
  /**
   * Where inside the file: `[]` for its raw bytes, `["name"]` for the entry's name, `["target"]` for a symlink's
   * target, else the chain of containers, e.g. `["gzip"]`, `["zip:lib/a.jar", "zip:META-INF/x.gz", "gzip"]`.
   */
  readonly member: readonly string[];
  /** The 32-character hash part. */
  readonly hash: string;
  /** Offset in the innermost data (the raw file, the name, the decompressed member). */
  readonly offset: number;
  /** Offset in the NAR, for hits in a file's raw bytes. */
  readonly narOffset?: number;
}

/** A member the scan could not look into, and why. */
export interface Unscanned {
  readonly path: string;
  readonly member: readonly string[];
  readonly reason: string;
}

export interface ResidueReport {
  readonly hits: readonly ResidueHit[];
  readonly unscanned: readonly Unscanned[];
  /**
   * Zip members whose CRC-32 does not match their data: changed in place, typically by a rewrite of a stored
   * (uncompressed) member, which leaves an archive that unzip and the JVM refuse.
   */
  readonly damaged: readonly Unscanned[];
  /** Regular files read. */
  readonly files: number;
  /** Compressed members decompressed and scanned. */
  readonly members: number;
}

export interface ResidueOptions {
  /** Most bytes one compressed member may decompress to (and largest zip file read); default 256 MiB. */
  readonly maxDecompressed?: number;
  /** Nesting of containers looked into (a gzip in a zip is 2); default 4. */
  readonly maxDepth?: number;
}

export const DEFAULT_MAX_DECOMPRESSED = 256 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 4;

const HASH_PART = /^[0123456789abcdfghijklmnpqrsvwxyz]{32}$/;

interface Where {
  readonly path: string;
  readonly member: readonly string[];
}

class Scan {
  readonly hits: ResidueHit[] = [];
  readonly unscanned: Unscanned[] = [];
  readonly damaged: Unscanned[] = [];
  files = 0;
  members = 0;
  private readonly pairs: { from: Buffer; to: null }[];

  constructor(
    readonly hashes: readonly string[],
    readonly maxDecompressed: number,
    readonly maxDepth: number,
  ) {
    this.pairs = hashes.map((h) => ({ from: Buffer.from(h, "latin1"), to: null }));
  }

  finder(): StreamRewriter {
    return new StreamRewriter(this.pairs);
  }

  bytes(data: Uint8Array, where: Where): void {
    const f = this.finder();
    const a = f.push(data);
    const b = f.end();
    for (const m of [...a.matches, ...b.matches]) this.hits.push({ ...where, hash: this.hashes[m.index]!, offset: m.offset });
  }

  skip(where: Where, reason: string): void {
    this.unscanned.push({ ...where, reason });
  }

  /**
   * Scans a stream: its raw bytes (unless `rawDone`, when the bytes were scanned as part of their container), and
   * whatever compressed data it starts with, concurrently, as it flows.
   */
  async content(src: AsyncIterable<Buffer>, where: Where, depth: number, narOffset: number | null, rawDone = false): Promise<void> {
    const finder = rawDone ? null : this.finder();
    const record = (ms: readonly { index: number; offset: number }[]): void => {
      for (const m of ms) {
        this.hits.push({
          ...where,
          hash: this.hashes[m.index]!,
          offset: m.offset,
          ...(narOffset !== null ? { narOffset: narOffset + m.offset } : {}),
        });
      }
    };
    let head: Buffer[] | null = [];
    let headSize = 0;
    let channel: Channel<Buffer> | null = null;
    let inner: Promise<void> | null = null;
    let zip: Buffer[] | null = null;
    let zipSize = 0;
    let zipTooBig = false;

    const decide = async (): Promise<void> => {
      const pending = head!;
      head = null;
      const kind = sniffContainer(Buffer.concat(pending));
      if (kind === null) return;
      if (depth >= this.maxDepth) {
        this.skip(where, `${kind} data nested deeper than ${this.maxDepth} levels`);
        return;
      }
      if (kind === "zip") {
        zip = pending;
        zipSize = headSize;
        return;
      }
      this.members++;
      const ch = new Channel<Buffer>();
      channel = ch;
      const task = this.decompressed(kind, ch, { path: where.path, member: [...where.member, kind] }, depth + 1);
      task.catch(() => {}); // awaited (and its error rethrown) below, once the input is read; not unhandled meanwhile
      inner = task;
      for (const c of pending) await ch.push(c);
    };

    for await (const c of src) {
      if (finder) record(finder.push(c).matches);
      if (head) {
        const copy = Buffer.from(c); // the reader may hand out views; keep what is held back
        head.push(copy);
        headSize += copy.length;
        if (headSize >= SNIFF_BYTES) await decide();
        continue;
      }
      if (channel) await (channel as Channel<Buffer>).push(c);
      if (zip && !zipTooBig) {
        zipSize += c.length;
        if (zipSize > this.maxDecompressed) {
          zipTooBig = true;
          zip = null;
          this.skip(where, `zip data larger than ${this.maxDecompressed} bytes was not opened`);
        } else (zip as Buffer[]).push(Buffer.from(c));
      }
    }
    if (head) await decide();
    if (finder) record(finder.end().matches);
    if (channel) (channel as Channel<Buffer>).close();
    if (inner) await inner;
    if (zip) await this.zipFile(Buffer.concat(zip), where, depth + 1);
  }

  /** Scans the decompressed data; with `crc`, also checks its CRC-32 (a zip member's) once it was read whole. */
  private async decompressed(
    kind: StreamCompression,
    input: AsyncIterable<Buffer>,
    where: Where,
    depth: number,
    crc?: number,
  ): Promise<void> {
    try {
      const out = decompress(kind, input, { maxOutput: this.maxDecompressed, what: describe(where) });
      if (crc === undefined) await this.content(out, where, depth, null);
      else {
        let sum = 0;
        await this.content(
          (async function* () {
            for await (const c of out) {
              sum = crc32(c, sum);
              yield c;
            }
          })(),
          where,
          depth,
          null,
        );
        if (sum !== crc) this.damaged.push({ ...where, reason: crcReason(crc, sum) });
      }
    } catch (e) {
      if (!(e instanceof CprError)) throw e;
      this.skip(where, e.message);
    } finally {
      // Whatever happened, stop taking input, so that the producer is never left waiting.
      await input[Symbol.asyncIterator]().return?.();
    }
  }

  /** A zip file: its members through the central directory; stored ones for nested containers, deflated ones inflated. */
  private async zipFile(data: Buffer, where: Where, depth: number): Promise<void> {
    let entries: ZipEntry[];
    try {
      entries = zipEntries(data);
    } catch (e) {
      if (!(e instanceof CprError)) throw e;
      this.skip({ path: where.path, member: [...where.member, "zip"] }, e.message);
      return;
    }
    for (const e of entries) {
      const w: Where = { path: where.path, member: [...where.member, `zip:${e.name}`] };
      if (e.encrypted) {
        this.skip(w, "encrypted zip member");
        continue;
      }
      const body = data.subarray(e.dataStart, e.dataStart + e.compressedSize);
      if (e.method === 0) {
        // Stored: its bytes were scanned as the zip's; look only for containers inside.
        const sum = crc32(body);
        if (sum !== e.crc) this.damaged.push({ ...w, reason: crcReason(e.crc, sum) });
        await this.content(once(body), w, depth, null, true);
      } else if (e.method === 8) {
        this.members++;
        await this.decompressed("deflate-raw", once(body), w, depth, e.crc);
      } else {
        this.skip(w, `zip compression method ${e.method} is not supported (only stored and deflate)`);
      }
    }
  }
}

function crcReason(expected: number, got: number): string {
  const hex = (n: number): string => n.toString(16).padStart(8, "0");
  return `CRC-32 mismatch (recorded ${hex(expected)}, data ${hex(got)}): the member was changed in place, and the archive no longer opens`;
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  if (b.length > 0) yield b;
}

function describe(where: Where): string {
  return [where.path === "" ? "/" : where.path, ...where.member].join(" → ");
}

interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc: number;
  readonly encrypted: boolean;
  readonly compressedSize: number;
  readonly dataStart: number;
}

/** The members of a zip file, from its central directory (APPNOTE.TXT §4.3); zip64 archives are refused. */
export function zipEntries(data: Buffer): ZipEntry[] {
  const bad = (why: string): CprError =>
    new CprError("zip.invalid", `cannot read the zip archive: ${why}`, {
      hint: "the file starts like a zip archive but is not a readable one",
    });
  // End of central directory: 22 bytes plus a comment of up to 65535, at the very end.
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 65535); i--) {
    if (data.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad("no end of central directory record");
  const count = data.readUInt16LE(eocd + 10);
  const cdSize = data.readUInt32LE(eocd + 12);
  const cdOffset = data.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw bad("zip64 archives are not supported");
  if (cdOffset + cdSize > eocd) throw bad("the central directory lies outside the file");
  const out: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > data.length || data.readUInt32LE(p) !== 0x02014b50) throw bad(`central directory entry ${i} is malformed`);
    const flags = data.readUInt16LE(p + 8);
    const method = data.readUInt16LE(p + 10);
    const crc = data.readUInt32LE(p + 16);
    const compressedSize = data.readUInt32LE(p + 20);
    const nameLen = data.readUInt16LE(p + 28);
    const extraLen = data.readUInt16LE(p + 30);
    const commentLen = data.readUInt16LE(p + 32);
    const local = data.readUInt32LE(p + 42);
    const name = data.subarray(p + 46, p + 46 + nameLen).toString("utf8");
    p += 46 + nameLen + extraLen + commentLen;
    if (compressedSize === 0xffffffff || local === 0xffffffff) throw bad("zip64 archives are not supported");
    if (local + 30 > data.length || data.readUInt32LE(local) !== 0x04034b50)
      throw bad(`the local header of ${JSON.stringify(name)} is missing`);
    const dataStart = local + 30 + data.readUInt16LE(local + 26) + data.readUInt16LE(local + 28);
    if (dataStart + compressedSize > data.length) throw bad(`the data of ${JSON.stringify(name)} runs past the end of the file`);
    if (name.endsWith("/") && compressedSize === 0) continue; // a directory
    out.push({ name, method, crc, encrypted: (flags & 1) !== 0, compressedSize, dataStart });
  }
  return out;
}

function byHit(a: ResidueHit, b: ResidueHit): number {
  const ka = [a.path, a.member.join("\0")];
  const kb = [b.path, b.member.join("\0")];
  for (let i = 0; i < 2; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return a.offset - b.offset;
}

/**
 * Scans a NAR for the given old hash parts (32 nix32 characters each). The NAR must be valid (a CprError
 * `nar.invalid` otherwise); decompression problems are reported in `unscanned`, not thrown.
 */
export async function scanResidue(
  nar: AsyncIterable<Uint8Array>,
  hashParts: readonly string[],
  opts: ResidueOptions = {},
): Promise<ResidueReport> {
  const hashes = [...new Set(hashParts)];
  for (const h of hashes) {
    if (!HASH_PART.test(h)) {
      throw new CprError("graft.hash-part", `invalid hash part ${JSON.stringify(h)}`, {
        where: h,
        hint: `a store path's hash part is ${STORE_HASH_LENGTH} characters of 0-9 a-z except e o u t`,
      });
    }
  }
  const scan = new Scan(hashes, opts.maxDecompressed ?? DEFAULT_MAX_DECOMPRESSED, opts.maxDepth ?? DEFAULT_MAX_DEPTH);
  if (hashes.length === 0) {
    for await (const e of readNar(nar)) if (e.type === "regular") for await (const _ of e.contents) void _;
    return { hits: [], unscanned: [], damaged: [], files: 0, members: 0 };
  }
  for await (const e of readNar(nar)) {
    if (e.name.length > 0) scan.bytes(e.name, { path: e.path, member: ["name"] });
    if (e.type === "symlink") scan.bytes(e.target, { path: e.path, member: ["target"] });
    else if (e.type === "regular") {
      scan.files++;
      await scan.content(e.contents, { path: e.path, member: [] }, 0, e.offset);
    }
  }
  return { hits: [...scan.hits].sort(byHit), unscanned: scan.unscanned, damaged: scan.damaged, files: scan.files, members: scan.members };
}

/** One line per hit and per unscanned member, for humans. */
export function describeResidue(report: ResidueReport): string[] {
  const at = (path: string, member: readonly string[]): string => [path === "" ? "/" : path, ...member].join(" → ");
  return [
    ...report.hits.map((h) => `${at(h.path, h.member)}: old hash ${h.hash} at offset ${h.offset}`),
    ...report.unscanned.map((u) => `${at(u.path, u.member)}: not checked: ${u.reason}`),
    ...report.damaged.map((u) => `${at(u.path, u.member)}: damaged: ${u.reason}`),
  ];
}
