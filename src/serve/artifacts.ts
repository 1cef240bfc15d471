/**
 * Where the registry keeps NARs: the `NarStorage` interface, and its default, the data directory (`ArtifactStore`):
 * compressed NARs under `<data>/nar/`, partial uploads under `<data>/tmp/`. The other is S3-compatible object
 * storage (artifacts-s3.ts, `cpr serve --store-url s3://…`). Both stream both ways, check the declared NAR hash and
 * size before anything becomes visible, and never show a partial file.
 *
 * An upload is streamed to `tmp/` while it is hashed and counted, checked against the declared NAR hash and size,
 * compressed with the real `xz` (or `zstd`) binary into a second temporary file that is hashed as it is written,
 * fsynced, and renamed to `nar/<filehash nix32>.nar.xz`. The name is the content's hash, so two identical uploads
 * racing each other rename the same bytes onto the same name, which is harmless; and a file in `nar/` is always
 * complete. Whatever fails, the temporary files are removed; a process killed mid-upload leaves only temporary files,
 * which `init()` removes at the next start.
 *
 * Temporary names carry the host name and process id (`<host>~<pid>~<random>.…`), so that servers sharing one data
 * directory do not delete each other's uploads in progress: `init()` removes files of this host whose process is gone
 * (or is this very process, a previous incarnation with the same pid), and other hosts' files untouched for a day.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants, createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { toNix32, parseNixHash } from "../nix/hash.js";
import { start, type Running } from "../process/run.js";
import { CprError } from "../protocol/errors.js";

export type Compression = "xz" | "zstd" | "none";

export interface IngestExpect {
  /** Full store path. */
  readonly storePath: string;
  /** `sha256:<nix32>` */
  readonly narHash: string;
  readonly narSize: number;
}

export interface IngestedNar {
  /** `sha256:<nix32>` of the compressed file. */
  readonly fileHash: string;
  readonly fileSize: number;
  readonly compression: Compression;
  /** `nar/<filehash nix32>.nar.xz` (relative URL, also the path under the data dir). */
  readonly url: string;
}

/** Raised for a NAR that does not match what was declared: HTTP status and a message for the client. */
export class IngestError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
    this.name = "IngestError";
  }
}

/** A stored file opened for serving: its size, and its bytes (null when only the size was asked for). */
export interface StoredNar {
  readonly size: number;
  readonly body: Readable | null;
}

/** What the routes need of the storage of NARs. */
export interface NarStorage {
  readonly compression: Compression;
  readonly maxNarSize: number;
  /** Where the files are, for logs and messages. */
  readonly description: string;
  /** Prepares the storage (directories, a reachable bucket) and removes leftovers of interrupted uploads. */
  init(): Promise<void>;
  /**
   * Streams `body` into the storage, checking it against `expect`; rejects with an IngestError when it does not
   * match (nothing is stored then). The returned `url` names the file for `open`.
   */
  ingest(body: Readable, expect: IngestExpect): Promise<IngestedNar>;
  /**
   * The stored file for a relative url (`nar/…`), or null when there is none (or the name is not one of ours);
   * `head` asks only for its size. Throws a CprError when the storage cannot be asked.
   */
  open(url: string, opts?: { head?: boolean }): Promise<StoredNar | null>;

  // ── NARs the server computes itself (grafts, docs/grafts.md) ──
  /** A temporary local file for a NAR the server writes itself; then `commitStaged` or `discardStaged`. */
  stage(): Promise<{ file: string; output: Writable }>;
  /** Compresses and stores a staged NAR (hash and size known from the writer); the staged file is removed. */
  commitStaged(file: string, narSha256: Uint8Array, narSize: number): Promise<IngestedNar>;
  /** Removes a staged NAR. */
  discardStaged(file: string): Promise<void>;
  /** The stored (compressed) file of `url` as a stream; the caller decompresses it. */
  openStored(url: string): Readable;
}

/** The checked form of an upload's declaration: the NAR hash's bytes, or an IngestError. */
export function checkExpect(expect: IngestExpect, maxNarSize: number): Uint8Array {
  let expected: Uint8Array;
  try {
    expected = parseNixHash(expect.narHash).bytes;
  } catch (err) {
    throw new IngestError(400, `invalid NAR hash ${JSON.stringify(expect.narHash)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Number.isSafeInteger(expect.narSize) || expect.narSize < 0) {
    throw new IngestError(400, `invalid NAR size ${JSON.stringify(expect.narSize)}: expected a whole number of bytes`);
  }
  if (expect.narSize > maxNarSize) {
    throw new IngestError(413, `NAR of ${expect.narSize} bytes exceeds this server's limit of ${maxNarSize} bytes`);
  }
  return expected;
}

export interface ArtifactStoreOptions {
  readonly dataDir: string;
  readonly compression?: Compression;
  /** Largest NAR accepted, in bytes. */
  readonly maxNarSize?: number;
}

/** Default limit on one NAR: 4 GiB. */
export const DEFAULT_MAX_NAR_SIZE = 4 * 1024 ** 3;

export const EXTENSION: Record<Compression, string> = { xz: ".nar.xz", zstd: ".nar.zst", none: ".nar" };
export const FILE_URL = /^nar\/[0123456789abcdfghijklmnpqrsvwxyz]{52}\.nar(\.xz|\.zst)?$/;
/** Other hosts' temporary files older than this are leftovers. */
const FOREIGN_TMP_AGE_MS = 24 * 3600 * 1000;

const HOST = encodeURIComponent(hostname()).replace(/~/g, "%7E");

/** Compressor command lines; each reads the file named last (or stdin when there is none) and writes to stdout. */
function compressorArgv(compression: "xz" | "zstd", input: string | null): [string, string[]] {
  const file = input === null ? [] : ["--", input];
  return compression === "xz" ? ["xz", ["-T1", "-6", "-c", ...file]] : ["zstd", ["-q", "-T1", "-3", "-c", ...file]];
}

/** Starts the compressor over a file, or over a stream piped to its stdin; its errors are `registry.compress`. */
export function startCompressor(compression: "xz" | "zstd", input: string | Readable): Running {
  const [cmd, args] = compressorArgv(compression, typeof input === "string" ? input : null);
  return start(cmd, args, {
    ...(typeof input === "string" ? {} : { input }),
    stderrLimit: 4000,
    errors: {
      spawn: "registry.compress",
      where: cmd,
      hint: `install ${cmd} (Debian: ${cmd === "xz" ? "xz-utils" : "zstd"}) or choose another compression`,
      failure: (e) =>
        new CprError(
          "registry.compress",
          `${cmd} failed to compress an upload (${e.signal ? `killed by ${e.signal}` : `exit ${e.code}`})${e.stderr.trim() ? `: ${e.stderr.trim()}` : ""}`,
          {
            where: cmd,
            hint: "check the server's disk space and the compressor's message",
          },
        ),
    },
  });
}

export class ArtifactStore implements NarStorage {
  readonly dataDir: string;
  readonly compression: Compression;
  readonly maxNarSize: number;
  private readonly narDir: string;
  private readonly tmpDir: string;

  constructor(opts: ArtifactStoreOptions) {
    this.dataDir = opts.dataDir;
    this.compression = opts.compression ?? "xz";
    this.maxNarSize = opts.maxNarSize ?? DEFAULT_MAX_NAR_SIZE;
    this.narDir = join(this.dataDir, "nar");
    this.tmpDir = join(this.dataDir, "tmp");
  }

  /** Creates the directories and removes leftovers of interrupted uploads in tmp/. */
  async init(): Promise<void> {
    await mkdir(this.narDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    for (const name of await readdir(this.tmpDir)) {
      if (await this.isLeftover(name)) await rm(join(this.tmpDir, name), { recursive: true, force: true });
    }
  }

  private async isLeftover(name: string): Promise<boolean> {
    const m = /^([^~]*)~(\d+)~/.exec(name);
    if (!m) return true; // not one of ours in the current naming: nothing uses it
    const [, host, pidText] = m;
    if (host === HOST) {
      const pid = Number(pidText);
      if (pid === process.pid) return true; // we have not started any upload yet: a previous run with our pid
      try {
        process.kill(pid, 0);
        return false; // another live process on this host, e.g. a second server on the same data directory
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === "ESRCH";
      }
    }
    try {
      return Date.now() - (await stat(join(this.tmpDir, name))).mtimeMs > FOREIGN_TMP_AGE_MS;
    } catch {
      return false;
    }
  }

  private tmpName(suffix: string): string {
    return join(this.tmpDir, `${HOST}~${process.pid}~${randomBytes(9).toString("base64url")}${suffix}`);
  }

  /**
   * Streams `body` to a temporary file while hashing and counting it; rejects (IngestError, and removes the temporary
   * file) when it is longer than declared or than maxNarSize (413) or when its size or hash differ (400). Then
   * compresses it and renames the compressed file into place under its own hash. Never leaves a partial file
   * visible.
   *
   * On an IngestError the body is not read further and not destroyed: the caller decides whether to drain it or
   * close the connection. A stream error (client gone) is rethrown as it is.
   */
  async ingest(body: Readable, expect: IngestExpect): Promise<IngestedNar> {
    const expected = checkExpect(expect, this.maxNarSize);

    const narTmp = this.tmpName(".nar");
    const temps = [narTmp];
    try {
      await this.receive(body, expect, expected, narTmp);
      if (this.compression === "none") {
        const fh = await open(narTmp, "r");
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        const fileHash = `sha256:${toNix32(expected)}`;
        return await this.publish(narTmp, fileHash, expect.narSize, "none");
      }
      const packed = this.tmpName(EXTENSION[this.compression]);
      temps.push(packed);
      const { hash, size } = await this.compress(narTmp, packed);
      return await this.publish(packed, `sha256:${toNix32(hash)}`, size, this.compression);
    } finally {
      // After a successful publish the renamed file is no longer at its temporary name; rm(force) ignores it.
      await Promise.all(temps.map((p) => rm(p, { force: true })));
    }
  }

  /** Copies the body into `dest`, hashing and counting; checks size and hash. */
  private async receive(body: Readable, expect: IngestExpect, expected: Uint8Array, dest: string): Promise<void> {
    const hasher = createHash("sha256");
    let count = 0;
    const fh = await open(dest, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    try {
      // destroyOnReturn false: leaving the loop early (too long) must not destroy the request stream, so the server
      // can still answer 413 on the same connection.
      for await (const chunk of body.iterator({ destroyOnReturn: false })) {
        const buf: Buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
        count += buf.length;
        if (count > expect.narSize) {
          throw new IngestError(413, `body is longer than the declared NAR size of ${expect.narSize} bytes`);
        }
        hasher.update(buf);
        await writeAll(fh, buf);
      }
    } finally {
      await fh.close();
    }
    if (count !== expect.narSize) {
      throw new IngestError(400, `body has ${count} bytes but the declared NAR size is ${expect.narSize}`);
    }
    const got = hasher.digest();
    if (!got.equals(Buffer.from(expected))) {
      throw new IngestError(400, `NAR hash mismatch for ${expect.storePath}: declared ${expect.narHash}, got sha256:${toNix32(got)}`);
    }
  }

  /** Runs the compressor over `input` into `output`, hashing what it writes; fsyncs the result. */
  private async compress(input: string, output: string): Promise<{ hash: Buffer; size: number }> {
    const cmd = this.compression;
    // The output file is opened before the compressor starts: between spawn and the first read of its stdout there
    // must be no await, or a small input's whole output can come and go before anyone reads it.
    const fh = await open(output, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    const child = startCompressor(this.compression as "xz" | "zstd", input);
    const hasher = createHash("sha256");
    let size = 0;
    try {
      try {
        for await (const chunk of child.stdout) {
          const buf = chunk as Buffer;
          size += buf.length;
          hasher.update(buf);
          await writeAll(fh, buf);
        }
      } catch (err) {
        child.kill("SIGKILL");
        throw err;
      }
      await child.exit;
      // xz and zstd never write an empty stream, even for empty input: an empty file means the compressor did not
      // see its input, and must never be published under the hash of nothing.
      if (size === 0)
        throw new CprError("registry.compress", `${cmd} wrote no output for an upload`, {
          where: cmd,
          hint: "check the server's disk space and its tmp/ directory",
        });
      await fh.sync();
    } finally {
      await fh.close();
    }
    return { hash: hasher.digest(), size };
  }

  /** Renames a complete, synced temporary file to its content-addressed name, and syncs the directory. */
  private async publish(file: string, fileHash: string, fileSize: number, compression: Compression): Promise<IngestedNar> {
    const url = `nar/${fileHash.slice("sha256:".length)}${EXTENSION[compression]}`;
    await rename(file, join(this.dataDir, url));
    await syncDir(this.narDir);
    return { fileHash, fileSize, compression, url };
  }

  // ── NARs the server computes itself (grafts, docs/grafts.md) ──

  /**
   * A temporary file for a NAR the server writes itself (a graft): the writer streams the NAR into it, then
   * `commitStaged` compresses and publishes it, or `discardStaged` removes it. Leftovers are removed by `init()`.
   */
  async stage(): Promise<{ file: string; output: Writable }> {
    const file = this.tmpName(".nar");
    const output = createWriteStream(file, { flags: "wx", mode: 0o644 });
    await new Promise<void>((resolve, reject) => {
      output.once("open", () => resolve());
      output.once("error", reject);
    });
    return { file, output };
  }

  /** Compresses and publishes a staged NAR (its hash and size known from the writer); the staged file is removed. */
  async commitStaged(file: string, narSha256: Uint8Array, narSize: number): Promise<IngestedNar> {
    const temps = [file];
    try {
      if (this.compression === "none") {
        const fh = await open(file, "r");
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        return await this.publish(file, `sha256:${toNix32(narSha256)}`, narSize, "none");
      }
      const packed = this.tmpName(EXTENSION[this.compression]);
      temps.push(packed);
      const { hash, size } = await this.compress(file, packed);
      return await this.publish(packed, `sha256:${toNix32(hash)}`, size, this.compression);
    } finally {
      await Promise.all(temps.map((p) => rm(p, { force: true })));
    }
  }

  /** Removes a staged NAR. */
  async discardStaged(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  /** The stored (compressed) file of `url` as a stream; the caller decompresses it. */
  openStored(url: string): Readable {
    const file = this.filePath(url);
    if (!file)
      throw new CprError("graft.source-hash", `the stored NAR ${url} is not a file of this artifact store`, {
        where: url,
        hint: "the path row names a file the server did not write; push the path again",
      });
    return createReadStream(file);
  }

  /** Absolute path of a stored file for a relative url (`nar/…`), or null when the name is not one of ours. */
  filePath(url: string): string | null {
    return FILE_URL.test(url) ? join(this.dataDir, url) : null;
  }

  get description(): string {
    return `data directory ${this.dataDir}`;
  }

  async open(url: string, opts: { head?: boolean } = {}): Promise<StoredNar | null> {
    const file = this.filePath(url);
    if (!file) return null;
    try {
      const st = await stat(file);
      if (!st.isFile()) return null;
      return { size: st.size, body: opts.head ? null : createReadStream(file) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      throw new CprError("registry.data", `cannot read ${file}: ${(e as Error).message}`, {
        where: file,
        hint: "check the permissions of the data directory's nar/",
        cause: e,
      });
    }
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    /* some filesystems cannot fsync a directory; the rename itself is still atomic */
  } finally {
    await fh?.close();
  }
}
