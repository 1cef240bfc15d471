/**
 * A one-slot async channel: the producer awaits `push` until the consumer (an async iteration) has taken the item,
 * so one stream can feed a second reader (a scanner, a decompressor) with backpressure and without buffering. When
 * the consumer stops early, pushes resolve at once and their items are dropped.
 */
export class Channel<T> implements AsyncIterable<T> {
  private item: { value: T; taken: () => void } | null = null;
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private closed = false;
  private stopped = false;

  /** Hands `value` to the consumer; resolves when it was taken (or dropped because the consumer stopped). */
  push(value: T): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.closed) throw new Error("push after close");
    return new Promise<void>((taken) => {
      const w = this.waiting;
      if (w) {
        this.waiting = null;
        w({ value, done: false });
        taken();
      } else {
        this.item = { value, taken };
      }
    });
  }

  /** No more items: the consumer's iteration ends after the pending one. */
  close(): void {
    this.closed = true;
    if (this.item === null && this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w({ value: undefined, done: true });
    }
  }

  /** True once the consumer stopped reading. */
  get abandoned(): boolean {
    return this.stopped;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.item) {
          const { value, taken } = this.item;
          this.item = null;
          taken();
          return Promise.resolve({ value, done: false });
        }
        if (this.closed || this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
      return: () => {
        this.stopped = true;
        if (this.item) {
          this.item.taken();
          this.item = null;
        }
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
