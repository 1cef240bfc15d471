/**
 * NARs on S3-compatible object storage (`cpr serve --store-url s3://BUCKET/PREFIX?endpoint=…`): the same contract as
 * the data directory (artifacts.ts), with objects `PREFIX/nar/<nar hash nix32>.nar.xz` instead of files.
 *
 * An upload streams through: the request body is hashed and counted on its way into the compressor (`xz`/`zstd`
 * reading stdin), whose output is hashed and cut into parts of `partSize` bytes. A NAR whose compressed form fits in
 * one part is sent with one PUT once the body has been checked; a larger one goes up as a multipart upload, part
 * by part while the body is still arriving, and is completed only after the NAR hash and size have been checked.
 * Anything else (a mismatch, a body cut short, a compressor or storage failure) aborts the upload, and S3 shows
 * nothing under the key: an object is always whole. Up to `partsInFlight` parts (4) are sent at once while the body
 * goes on arriving, so memory per upload is about five parts (40 MiB).
 *
 * Objects are named by the NAR hash, which is declared before the upload starts, so that the multipart upload can
 * target the final key (S3 has no rename). Two uploads of the same NAR write the same name; with the same
 * compressor and settings they write the same bytes (xz and zstd are deterministic), as two servers renaming the same
 * file into a shared data directory do. Uploads left in progress by a killed server are invisible and are aborted by
 * `init()` once a day old (a bucket lifecycle rule `AbortIncompleteMultipartUpload` does the same on the S3 side).
 *
 * Serving streams the object through the server rather than redirecting to a presigned URL: clients need to reach
 * only the registry (the bucket stays private, its endpoint may be a loopback or internal address), Nix fetches
 * `/nar/…` like any binary cache, and a missing object is reported by the registry in its own words.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, type Writable } from "node:stream";
import { toNix32 } from "../nix/hash.js";
import { CprError } from "../protocol/errors.js";
import {
  checkExpect,
  DEFAULT_MAX_NAR_SIZE,
  EXTENSION,
  FILE_URL,
  IngestError,
  startCompressor,
  type Compression,
  type IngestExpect,
  type IngestedNar,
  type NarStorage,
  type StoredNar,
} from "./artifacts.js";
import { S3Client } from "./s3.js";

/** S3's smallest part (but the last): 5 MiB. */
export const MIN_PART_SIZE = 5 * 1024 ** 2;
/** Default part size: 8 MiB (at most 10,000 parts: NARs up to 78 GiB). */
export const DEFAULT_PART_SIZE = 8 * 1024 ** 2;
/** Uploads in progress older than this are leftovers of a killed server (default). */
export const STALE_UPLOAD_MS = 24 * 3600 * 1000;

export interface S3ArtifactStoreOptions {
  readonly client: S3Client;
  readonly compression?: Compression;
  readonly maxNarSize?: number;
  /** Bytes per part (default 8 MiB, at least 5 MiB). */
  readonly partSize?: number;
  /** Parts sent at once while the body goes on arriving (default 4). */
  readonly partsInFlight?: number;
  /** Uploads under `nar/` in progress for longer than this are aborted by init() (default a day). */
  readonly staleUploadMs?: number;
}

const CONTENT_TYPE: Record<Compression, string> = {
  xz: "application/x-xz",
  zstd: "application/zstd",
  none: "application/x-nix-nar",
};

export class S3ArtifactStore implements NarStorage {
  readonly client: S3Client;
  readonly compression: Compression;
  readonly maxNarSize: number;
  readonly partSize: number;
  readonly partsInFlight: number;
  private readonly staleUploadMs: number;

  constructor(opts: S3ArtifactStoreOptions) {
    this.client = opts.client;
    this.compression = opts.compression ?? "xz";
    this.maxNarSize = opts.maxNarSize ?? DEFAULT_MAX_NAR_SIZE;
    this.partSize = Math.max(opts.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.partsInFlight = Math.max(1, opts.partsInFlight ?? 4);
    this.staleUploadMs = opts.staleUploadMs ?? STALE_UPLOAD_MS;
  }

  get description(): string {
    return this.client.describe();
  }

  /** Checks the bucket (fails at start rather than at the first upload) and aborts stale uploads of ours. */
  async init(): Promise<void> {
    await this.client.checkBucket();
    const now = Date.now();
    for (const u of await this.client.listMultipart(this.client.key("nar/"))) {
      if (Number.isFinite(u.initiated) && now - u.initiated >= this.staleUploadMs) await this.client.abortMultipart(u.key, u.uploadId);
    }
  }

  // ── NARs the server computes itself (grafts): staged in a local temporary file, then uploaded as an ingest ──

  async stage(): Promise<{ file: string; output: Writable }> {
    const dir = await mkdtemp(join(tmpdir(), "cpr-graft-stage-"));
    const file = join(dir, "nar");
    const output = createWriteStream(file, { flags: "wx", mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      output.once("open", () => resolve());
      output.once("error", reject);
    });
    return { file, output };
  }

  async commitStaged(file: string, narSha256: Uint8Array, narSize: number): Promise<IngestedNar> {
    try {
      return await this.ingest(createReadStream(file), { storePath: file, narHash: `sha256:${toNix32(narSha256)}`, narSize });
    } finally {
      await this.discardStaged(file);
    }
  }

  async discardStaged(file: string): Promise<void> {
    await rm(join(file, ".."), { recursive: true, force: true });
  }

  openStored(url: string): Readable {
    const out = new PassThrough();
    this.open(url).then(
      (stored) => {
        if (!stored?.body) {
          out.destroy(
            new CprError("registry.storage-missing", `the stored NAR ${url} is missing from ${this.description}`, {
              where: url,
              hint: "push the path again",
            }),
          );
          return;
        }
        stored.body.on("error", (e) => out.destroy(e));
        stored.body.pipe(out);
      },
      (e: Error) => out.destroy(e),
    );
    return out;
  }

  async open(url: string, opts: { head?: boolean } = {}): Promise<StoredNar | null> {
    if (!FILE_URL.test(url)) return null;
    const key = this.client.key(url);
    if (opts.head) {
      const h = await this.client.head(key);
      return h ? { size: h.size, body: null } : null;
    }
    return this.client.get(key);
  }

  async ingest(body: Readable, expect: IngestExpect): Promise<IngestedNar> {
    const expected = checkExpect(expect, this.maxNarSize);
    const url = `nar/${toNix32(expected)}${EXTENSION[this.compression]}`;
    const key = this.client.key(url);

    // The body, hashed and counted on its way through. A body longer than declared stops here (413) without
    // destroying the request stream, so that the server can still answer on the connection.
    const narHasher = createHash("sha256");
    let count = 0;
    let inputError: unknown = null;
    const narSize = expect.narSize;
    async function* checked(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of body.iterator({ destroyOnReturn: false })) {
          const buf: Buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
          count += buf.length;
          if (count > narSize) throw new IngestError(413, `body is longer than the declared NAR size of ${narSize} bytes`);
          narHasher.update(buf);
          yield buf;
        }
      } catch (e) {
        inputError ??= e;
        throw e;
      }
    }
    const input = Readable.from(checked(), { objectMode: false });
    const child = this.compression === "none" ? null : startCompressor(this.compression, input);
    const output: Readable = child ? child.stdout : input;

    const fileHasher = createHash("sha256");
    let fileSize = 0;
    let pending: Buffer[] = [];
    let pendingSize = 0;
    let uploadId: string | null = null;
    const etags: string[] = [];
    let parts = 0;
    // Parts being sent; reading goes on meanwhile, until `partsInFlight` are on their way.
    const inFlight: Promise<void>[] = [];
    const contentType = CONTENT_TYPE[this.compression];
    const flushPart = async (): Promise<void> => {
      const part = Buffer.concat(pending, pendingSize);
      pending = [];
      pendingSize = 0;
      const n = ++parts;
      uploadId ??= await this.client.createMultipart(key, contentType);
      const sent = this.client.uploadPart(key, uploadId, n, part).then((etag) => {
        etags[n - 1] = etag;
      });
      sent.catch(() => undefined); // awaited below, or settled before the abort
      inFlight.push(sent);
      if (inFlight.length >= this.partsInFlight) await inFlight.shift();
    };
    const abort = async (): Promise<void> => {
      await Promise.allSettled(inFlight);
      if (uploadId) await this.client.abortMultipart(key, uploadId).catch(() => undefined);
    };

    try {
      try {
        for await (const chunk of output) {
          const buf = chunk as Buffer;
          fileHasher.update(buf);
          fileSize += buf.length;
          pending.push(buf);
          pendingSize += buf.length;
          if (pendingSize >= this.partSize) await flushPart();
        }
      } catch (e) {
        if (!inputError) throw e; // a storage failure, or the compressor's output broke
      }
      if (inputError) throw inputError;
      if (child) await child.exit;
      if (count !== narSize) throw new IngestError(400, `body has ${count} bytes but the declared NAR size is ${narSize}`);
      const got = narHasher.digest();
      if (!got.equals(Buffer.from(expected))) {
        throw new IngestError(400, `NAR hash mismatch for ${expect.storePath}: declared ${expect.narHash}, got sha256:${toNix32(got)}`);
      }
      if (child && fileSize === 0)
        throw new CprError("registry.compress", `${this.compression} wrote no output for an upload`, {
          where: this.compression,
          hint: "check the compressor on this server",
        });
      // Checked: only now does anything become visible under the key.
      if (uploadId === null) {
        await this.client.put(key, Buffer.concat(pending, pendingSize), contentType);
      } else {
        if (pendingSize > 0) await flushPart();
        await Promise.all(inFlight);
        await this.client.completeMultipart(key, uploadId, etags);
      }
    } catch (e) {
      child?.kill("SIGKILL");
      input.destroy();
      await abort();
      throw e;
    }
    const fileHash = `sha256:${toNix32(this.compression === "none" ? expected : fileHasher.digest())}`;
    return { fileHash, fileSize, compression: this.compression, url };
  }
}
