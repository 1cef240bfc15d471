/**
 * Streaming NAR reader: the entries of a NAR (format in nar.ts) from a stream of chunks, in order, with each regular
 * file's contents handed over as a stream of its own, so that a multi-GiB NAR is read in constant memory.
 *
 * The reader checks what Nix's parseDump checks (Nix 2.8 archive.cc): the magic, the token sequence, zero padding,
 * entry names (non-empty, not `.` or `..`, no `/` or NUL) strictly ascending as bytes, and nothing after the root
 * node. A violation is a CprError `nar.invalid` naming the byte offset and the entry.
 */
import { CprError } from "../protocol/errors.js";

/** Longest name, symlink target or token accepted (the contents of regular files are streamed, not bounded). */
const MAX_SMALL_STRING = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export interface NarDirectory {
  readonly type: "directory";
  /** Path inside the NAR, `""` for the root, components joined with `/` (names decoded as UTF-8). */
  readonly path: string;
  /** The entry's name as its bytes (empty for the root). */
  readonly name: Buffer;
}

export interface NarSymlink {
  readonly type: "symlink";
  readonly path: string;
  readonly name: Buffer;
  readonly target: Buffer;
}

export interface NarRegular {
  readonly type: "regular";
  readonly path: string;
  readonly name: Buffer;
  readonly executable: boolean;
  readonly size: number;
  /** Offset of the first content byte in the NAR. */
  readonly offset: number;
  /**
   * The contents, in chunks (views into the reader's buffers: copy what you keep). Read them before asking for the
   * next entry, or not at all: whatever is left unread is skipped when the next entry is requested.
   */
  readonly contents: AsyncIterable<Buffer>;
}

export type NarEntry = NarDirectory | NarSymlink | NarRegular;

/** Byte source over an async iterator of chunks, with exact reads and bounded streaming. */
class Source {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Bytes consumed so far (the NAR offset of the next byte). */
  offset = 0;
  private done = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async more(): Promise<boolean> {
    if (this.done) return false;
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      const c = r.value;
      if (c.length === 0) continue;
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
      this.pos = 0;
      return true;
    }
  }

  /** Exactly n bytes (n small); a view valid until the next read. */
  async exact(n: number, what: string): Promise<Buffer> {
    while (this.buf.length - this.pos < n) {
      if (!(await this.more()))
        throw invalid(`unexpected end of the NAR while reading ${what}`, this.offset + (this.buf.length - this.pos));
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  /** Up to `max` bytes that are available (reading more if none is), never past the end. */
  async some(max: number, what: string): Promise<Buffer> {
    if (this.pos >= this.buf.length && !(await this.more())) throw invalid(`unexpected end of the NAR in ${what}`, this.offset);
    const n = Math.min(max, this.buf.length - this.pos);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    return this.pos >= this.buf.length && !(await this.more());
  }
}

function invalid(why: string, offset: number, path?: string): CprError {
  return new CprError(
    "nar.invalid",
    `invalid NAR: ${why} (at byte ${offset}${path !== undefined ? `, entry ${JSON.stringify(path === "" ? "/" : path)}` : ""})`,
    {
      where: `NAR byte ${offset}`,
      hint: "the NAR is corrupt or truncated: fetch or dump it again (nix-store --dump PATH)",
    },
  );
}

async function u64(src: Source, what: string): Promise<number> {
  const at = src.offset;
  const b = await src.exact(8, what);
  const n = b.readBigUInt64LE(0);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${what} is too large (${n})`, at);
  return Number(n);
}

async function padding(src: Source, len: number, path: string): Promise<void> {
  const r = len % 8;
  if (r === 0) return;
  const at = src.offset;
  const pad = await src.exact(8 - r, "padding");
  for (const byte of pad) if (byte !== 0) throw invalid("non-zero padding", at, path);
}

async function str(src: Source, what: string, path: string): Promise<Buffer> {
  const at = src.offset;
  const len = await u64(src, `the length of ${what}`);
  if (len > MAX_SMALL_STRING) throw invalid(`${what} is ${len} bytes long (at most ${MAX_SMALL_STRING})`, at, path);
  const b = Buffer.from(await src.exact(len, what)); // copied: later reads may replace the buffer
  await padding(src, len, path);
  return b;
}

async function expect(src: Source, token: string, path: string): Promise<void> {
  const at = src.offset;
  const got = await str(src, `"${token}"`, path);
  if (got.toString("latin1") !== token)
    throw invalid(`expected "${token}", found ${JSON.stringify(got.toString("latin1").slice(0, 40))}`, at, path);
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/**
 * The entries of the NAR read from `input`, depth first in NAR order (a directory before its entries). Throws
 * CprError `nar.invalid` on a malformed NAR; an error of `input` is passed through.
 */
export async function* readNar(input: AsyncIterable<Uint8Array>): AsyncGenerator<NarEntry, void, undefined> {
  const it = input[Symbol.asyncIterator]();
  const src = new Source(it);
  try {
    await expect(src, "nix-archive-1", "");
    yield* node(src, "", EMPTY);
    if (!(await src.atEnd())) throw invalid("data after the end of the archive", src.offset);
  } finally {
    await it.return?.();
  }
}

async function* node(src: Source, path: string, entryName: Buffer): AsyncGenerator<NarEntry, void, undefined> {
  await expect(src, "(", path);
  await expect(src, "type", path);
  const typeAt = src.offset;
  const type = (await str(src, "the node type", path)).toString("latin1");
  if (type === "regular") {
    let executable = false;
    let tagAt = src.offset;
    let tag = (await str(src, "a regular file's tag", path)).toString("latin1");
    if (tag === "executable") {
      executable = true;
      const emptyAt = src.offset;
      if ((await str(src, "the executable marker", path)).length !== 0) throw invalid('expected "" after "executable"', emptyAt, path);
      tagAt = src.offset;
      tag = (await str(src, "a regular file's tag", path)).toString("latin1");
    }
    if (tag !== "contents") throw invalid(`expected "contents", found ${JSON.stringify(tag.slice(0, 40))}`, tagAt, path);
    const size = await u64(src, "the file size");
    const offset = src.offset;
    let left = size;
    const contents: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        while (left > 0) {
          const b = await src.some(Math.min(left, 1 << 20), `the contents of ${path === "" ? "/" : path}`);
          left -= b.length;
          yield b;
        }
      },
    };
    yield { type: "regular", path, name: entryName, executable, size, offset, contents };
    while (left > 0) left -= (await src.some(Math.min(left, 1 << 20), `the contents of ${path === "" ? "/" : path}`)).length;
    await padding(src, size, path);
    await expect(src, ")", path);
  } else if (type === "symlink") {
    await expect(src, "target", path);
    const target = await str(src, "the symlink target", path);
    yield { type: "symlink", path, name: entryName, target };
    await expect(src, ")", path);
  } else if (type === "directory") {
    yield { type: "directory", path, name: entryName };
    let prev: Buffer | null = null;
    for (;;) {
      const at = src.offset;
      const tok = (await str(src, '"entry" or ")"', path)).toString("latin1");
      if (tok === ")") break;
      if (tok !== "entry") throw invalid(`expected "entry" or ")", found ${JSON.stringify(tok.slice(0, 40))}`, at, path);
      await expect(src, "(", path);
      await expect(src, "name", path);
      const nameAt = src.offset;
      const name = await str(src, "an entry name", path);
      const shown = name.toString("utf8");
      if (name.length === 0 || shown === "." || shown === ".." || name.includes(0x2f) || name.includes(0)) {
        throw invalid(`invalid entry name ${JSON.stringify(shown)}`, nameAt, path);
      }
      if (prev !== null && Buffer.compare(prev, name) >= 0) {
        throw invalid(
          `entry ${JSON.stringify(shown)} is not after ${JSON.stringify(prev.toString("utf8"))}: directory entries must be sorted and unique`,
          nameAt,
          path,
        );
      }
      prev = name;
      await expect(src, "node", path);
      yield* node(src, join(path, shown), name);
      await expect(src, ")", path);
    }
  } else {
    throw invalid(`unknown node type ${JSON.stringify(type.slice(0, 40))}`, typeAt, path);
  }
}
