import type { Readable, Writable } from "node:stream";
import { FLUSH_PKT, PktReader, type ByteSource } from "../pktline.js";
import type { Session } from "./types.js";

/**
 * A ByteSource over a Node Readable: queues chunks, counts bytes, and fails a pending read after `timeoutMs`
 * without data. `fail()` makes every pending and later read reject with the given error; stream errors go through
 * `mapError` first (e.g. to turn ECONNREFUSED into a CprError naming the remote).
 */
export class StreamSource implements ByteSource {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private error: Error | null = null;
  private waiter: { resolve: (b: Buffer | null) => void; reject: (e: Error) => void } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private count = 0;
  /** Called after each chunk is queued (see StreamSession.onChunk). */
  onChunk: ((chunk: Buffer) => void) | null = null;

  constructor(
    stream: Readable,
    private readonly timeoutMs: number,
    private readonly onTimeout: () => Error,
    mapError: (e: Error) => Error = (e) => e,
  ) {
    stream.on("data", (chunk: Buffer) => this.push(chunk));
    stream.on("end", () => this.finish());
    stream.on("close", () => this.finish());
    stream.on("error", (e: Error) => this.fail(mapError(e)));
  }

  /** True once a read failed (error, timeout). */
  get failed(): boolean {
    return this.error !== null;
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.count;
  }

  next(): Promise<Buffer | null> {
    if (this.error) return Promise.reject(this.error);
    const chunk = this.chunks.shift();
    if (chunk) return Promise.resolve(chunk);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.timer = setTimeout(() => this.fail(this.onTimeout()), this.timeoutMs);
    });
  }

  /** Make pending and later reads fail with `err` (the first error wins). */
  fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    const w = this.takeWaiter();
    if (w) w.reject(err);
  }

  private push(chunk: Buffer): void {
    this.count += chunk.length;
    const w = this.takeWaiter();
    if (w) w.resolve(chunk);
    else this.chunks.push(chunk);
    this.onChunk?.(chunk);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    const w = this.takeWaiter();
    if (w) w.resolve(null);
  }

  private takeWaiter(): { resolve: (b: Buffer | null) => void; reject: (e: Error) => void } | null {
    const w = this.waiter;
    this.waiter = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return w;
  }
}

/** The parts a connection-oriented transport supplies to StreamSession. */
export interface StreamParts {
  readonly source: StreamSource;
  readonly writable: Writable;
  /** See Session.explain. */
  explain(what: string): Promise<Error>;
  /** Release the process or socket after the input was ended, at once when `force`; must not throw. */
  dispose(force: boolean): Promise<void>;
  /** A TCP connection straight to the server process (git daemon): see Session.nudge. */
  readonly tcp?: boolean;
}

/** A Session over one bidirectional byte stream (stdin/stdout of a process, or a socket). */
export class StreamSession implements Session {
  readonly advertisement: PktReader;
  private trips = 1;
  private closed = false;

  constructor(private readonly parts: StreamParts) {
    this.advertisement = new PktReader(parts.source);
    parts.writable.on("error", () => {
      /* EPIPE when the server went away: the read side reports it. */
    });
  }

  request(body: Buffer): Promise<PktReader> {
    this.trips += 1;
    this.parts.writable.write(body);
    return Promise.resolve(this.advertisement);
  }

  get nudgeable(): boolean {
    return this.parts.tcp === true;
  }

  nudge(body: Buffer): void {
    if (!this.closed) this.parts.writable.write(body);
  }

  onChunk(listener: ((chunk: Buffer) => void) | null): void {
    this.parts.source.onChunk = listener;
  }

  explain(what: string): Promise<Error> {
    return this.parts.explain(what);
  }

  bytesReceived(): number {
    return this.parts.source.bytes;
  }

  roundTrips(): number {
    return this.trips;
  }

  /** Send a flush (v2: end of session; v0: "no wants") and end our side, then dispose. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const force = this.parts.source.failed;
    const w = this.parts.writable;
    if (!force && !w.destroyed && !w.writableEnded) {
      try {
        w.end(FLUSH_PKT);
      } catch {
        /* already gone */
      }
    }
    await this.parts.dispose(force);
  }
}
