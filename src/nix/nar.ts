/**
 * Nix Archive (NAR) serialisation of a file system tree, and the hashes Nix prints for it. Used for the NAR sha256
 * of unpacked sources (`cpr add --nix … --tar|--unpack`) and, later, by the binary cache.
 *
 * Format (Nix manual, "Nix Archive (NAR) format"; Dolstra's thesis fig. 5.2): every token is str(s) = the length of s
 * as a 64-bit little-endian integer, then s, then zero bytes up to a multiple of 8.
 *   nar       = str("nix-archive-1") node
 *   node      = str("(") str("type") ( regular | symlink | directory ) str(")")
 *   regular   = str("regular") [ str("executable") str("") ] str("contents") str(<bytes>)
 *   symlink   = str("symlink") str("target") str(<target>)
 *   directory = str("directory") { str("entry") str("(") str("name") str(<name>) str("node") node str(")") }
 * Directory entries are sorted by name, compared as bytes. Only the owner-executable bit is recorded; other metadata
 * (times, owners, other permission bits) is not.
 */
import { createHash } from "node:crypto";
import { lstat, open, readdir, readlink } from "node:fs/promises";
import { CprError } from "../protocol/errors.js";

export interface NarOptions {
  /** Called with each chunk of the NAR stream, in order. Chunks are not reused after the call. */
  onChunk?: (chunk: Uint8Array) => void;
}

/** What narHash returns: the sha256 digest of the NAR bytes and their count. */
export interface NarResult {
  sha256: Uint8Array;
  size: number;
}

const FLUSH_AT = 64 * 1024;
const READ_CHUNK = 256 * 1024;

/** Buffers small tokens, hashes everything, hands chunks to the caller. */
class NarSink {
  private readonly hash = createHash("sha256");
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  size = 0;

  constructor(private readonly onChunk: ((chunk: Uint8Array) => void) | undefined) {}

  write(b: Buffer): void {
    if (b.length === 0) return;
    this.size += b.length;
    if (b.length >= FLUSH_AT) {
      this.flush();
      this.emit(b);
      return;
    }
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= FLUSH_AT) this.flush();
  }

  private emit(b: Buffer): void {
    this.hash.update(b);
    this.onChunk?.(b);
  }

  flush(): void {
    if (this.pendingBytes === 0) return;
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.emit(b);
  }

  digest(): Uint8Array {
    this.flush();
    return new Uint8Array(this.hash.digest());
  }

  int(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.write(b);
  }

  pad(len: number): void {
    const r = len % 8;
    if (r !== 0) this.write(Buffer.alloc(8 - r));
  }

  str(s: string | Buffer): void {
    const b = typeof s === "string" ? Buffer.from(s, "utf8") : s;
    this.int(b.length);
    this.write(b);
    this.pad(b.length);
  }
}

function byteCompare(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

function joinPath(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from("/"), name]);
}

async function regular(sink: NarSink, path: Buffer, display: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    const st = await fh.stat();
    if ((st.mode & 0o100) !== 0) {
      sink.str("executable");
      sink.str("");
    }
    sink.str("contents");
    const size = st.size;
    sink.int(size);
    let done = 0;
    while (done < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - done));
      const { bytesRead } = await fh.read(buf, 0, buf.length, done);
      if (bytesRead === 0) throw new CprError("nar.changed", `file shrank while being archived: ${display}`, { where: display });
      sink.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      done += bytesRead;
    }
    sink.pad(size);
  } finally {
    await fh.close();
  }
}

async function node(sink: NarSink, path: Buffer): Promise<void> {
  const display = path.toString("utf8");
  const st = await lstat(path);
  sink.str("(");
  sink.str("type");
  if (st.isFile()) {
    sink.str("regular");
    await regular(sink, path, display);
  } else if (st.isSymbolicLink()) {
    sink.str("symlink");
    sink.str("target");
    sink.str(await readlink(path, { encoding: "buffer" }));
  } else if (st.isDirectory()) {
    sink.str("directory");
    const names = (await readdir(path, { encoding: "buffer" })).sort(byteCompare);
    for (const name of names) {
      sink.str("entry");
      sink.str("(");
      sink.str("name");
      sink.str(name);
      sink.str("node");
      await node(sink, joinPath(path, name));
      sink.str(")");
    }
  } else {
    throw new CprError("nar.unsupported", `cannot archive ${display}: not a regular file, directory or symlink`, {
      where: display,
      hint: "NARs hold only regular files, directories and symlinks; remove sockets, FIFOs and device files",
    });
  }
  sink.str(")");
}

/** Serialise `path` (file, executable, symlink or directory) as a NAR; returns its sha256 digest and size. */
export async function narHash(path: string, opts: NarOptions = {}): Promise<NarResult> {
  const sink = new NarSink(opts.onChunk);
  sink.str("nix-archive-1");
  try {
    await node(sink, Buffer.from(path.length > 1 ? path.replace(/\/+$/, "") : path, "utf8"));
  } catch (e) {
    if (e instanceof CprError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new CprError("nar.read", `cannot archive ${path}: ${err.message}`, { where: path, cause: e });
  }
  const sha256 = sink.digest();
  return { sha256, size: sink.size };
}

/** The whole NAR of `path` in memory (for tests and small trees). */
export async function narBytes(path: string): Promise<{ bytes: Buffer; sha256: Uint8Array; size: number }> {
  const chunks: Buffer[] = [];
  const r = await narHash(path, { onChunk: (c) => chunks.push(Buffer.from(c)) });
  return { bytes: Buffer.concat(chunks), ...r };
}
