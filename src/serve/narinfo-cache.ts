/**
 * The in-process cache of narinfo texts (routes-cache.ts): a row never changes once visible, so positive answers
 * can be kept; a miss is never cached (the path may be uploaded through another server a moment later).
 */

/** Bounded map of hash part → narinfo text; oldest entries go first. Only ever holds visible (immutable) rows. */
export class NarInfoCache {
  private readonly map = new Map<string, string>();
  constructor(readonly capacity = 100_000) {}
  get(hash: string): string | undefined {
    return this.map.get(hash);
  }
  set(hash: string, text: string): void {
    if (this.capacity <= 0 || this.map.has(hash)) return;
    if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(hash, text);
  }
  get size(): number {
    return this.map.size;
  }
}
