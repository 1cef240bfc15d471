/**
 * The graft rewrite as a stream (docs/grafts.md): a Node Transform that replaces each old byte string (old store
 * basenames, `<32-char hash>-<name>`) by its new one of the same length, across chunk boundaries, in one pass and
 * constant memory (StreamRewriter in src/protocol/byte-rewrite.ts keeps a tail of maxLen − 1 bytes), and hashes and
 * counts what it writes: the sha256 and size of the output NAR are the NarHash and NarSize of the grafted path.
 *
 * Rewriting a whole NAR byte stream is the same as rewriting each file's contents, symlink target and entry name:
 * a basename is printable and cannot span the NAR's framing (lengths have zero bytes, padding is zeros). Entry names
 * that change may change a directory's sort order; the residue scan, which parses the output, catches that.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback, type Writable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { StreamRewriter, type BytePair } from "../protocol/byte-rewrite.js";
import { CprError } from "../protocol/errors.js";
import { toNix32Hash } from "../protocol/nix-hash.js";
import { Channel } from "./channel.js";
import { scanResidue, type ResidueOptions, type ResidueReport } from "./residue.js";

/** An old → new pair: strings are taken as UTF-8 (store basenames are ASCII). */
export interface Rewrite {
  readonly from: string | Uint8Array;
  readonly to: string | Uint8Array;
}

export interface RewriteResult {
  /** sha256 of the output, `sha256:<nix32>` (the narinfo's NarHash). */
  readonly narHash: string;
  readonly sha256: Uint8Array;
  /** Bytes written (= bytes read). */
  readonly narSize: number;
  /** How many times each `from` was replaced, in the order given. */
  readonly counts: readonly number[];
}

const bytes = (s: string | Uint8Array): Uint8Array => (typeof s === "string" ? Buffer.from(s, "utf8") : s);

export class RewriteStream extends Transform {
  private readonly rewriter: StreamRewriter;
  private readonly hash: Hash = createHash("sha256");
  private size = 0;
  private done: RewriteResult | null = null;

  /** Throws CprError `rewrite.length` when an old and a new string differ in length (and on empty or repeated ones). */
  constructor(rewrites: readonly Rewrite[]) {
    super();
    const pairs: BytePair[] = rewrites.map((r) => ({ from: bytes(r.from), to: bytes(r.to) }));
    this.rewriter = new StreamRewriter(pairs);
  }

  private emit1(b: Buffer): void {
    if (b.length === 0) return;
    this.hash.update(b);
    this.size += b.length;
    this.push(b);
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.emit1(this.rewriter.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk).out);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.emit1(this.rewriter.end().out);
      const sha256 = new Uint8Array(this.hash.digest());
      this.done = { narHash: toNix32Hash("sha256", sha256), sha256, narSize: this.size, counts: [...this.rewriter.counts] };
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  /** Hash, size and counts of the output; available once the stream has ended. */
  get result(): RewriteResult {
    if (!this.done) throw new CprError("rewrite.unfinished", "the rewrite has not finished: read the stream to its end first");
    return this.done;
  }
}

/** Writes `b` to `w`, waiting for drain when its buffer is full; rejects on a stream error. */
function write(w: Writable, b: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      w.off("drain", onDrain);
      reject(e);
    };
    const onDrain = (): void => {
      w.off("error", onError);
      resolve();
    };
    w.once("error", onError);
    if (w.write(b)) {
      w.off("error", onError);
      resolve();
    } else w.once("drain", onDrain);
  });
}

export interface RewriteNarOptions {
  /** Where the rewritten NAR goes (ended when done); omit to only hash (and scan). */
  readonly output?: Writable;
  /** Scan the output for these old hash parts while it flows (the residue scan), with these limits. */
  readonly scan?: { readonly hashParts: readonly string[] } & ResidueOptions;
}

/**
 * One pass over a NAR: rewrite, write, hash and (optionally) scan for residue, with backpressure all the way.
 * Rejects with the input's, the output's or the NAR parser's error (a CprError `nar.invalid` for a rewrite that
 * broke the NAR, e.g. reordered entry names).
 */
export async function rewriteNar(
  input: AsyncIterable<Uint8Array>,
  rewrites: readonly Rewrite[],
  opts: RewriteNarOptions = {},
): Promise<RewriteResult & { residue: ResidueReport | null }> {
  const stream = new RewriteStream(rewrites);
  const channel = opts.scan ? new Channel<Buffer>() : null;
  const scanning = channel && opts.scan ? scanResidue(channel, opts.scan.hashParts, opts.scan) : null;
  // Keep a scan failure from going unhandled while the rewrite is still running; it is rethrown below.
  scanning?.catch(() => {});
  const out = opts.output;
  try {
    await pipeline(input, stream, async (source: AsyncIterable<Buffer>) => {
      for await (const b of source) {
        if (out) await write(out, b);
        if (channel) await channel.push(b);
      }
    });
  } catch (e) {
    if (channel) channel.close();
    if (out) out.destroy();
    throw e;
  }
  if (channel) channel.close();
  if (out) {
    out.end();
    await finished(out);
  }
  const residue = scanning ? await scanning : null;
  return { ...stream.result, residue };
}
