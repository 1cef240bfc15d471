/**
 * Streaming replacement of byte strings, pure: the core of a graft (old store basenames → new ones), of Nix's hash
 * modulo (a path's own hash part → zeros) and of the residue scan (find only). One pass, constant memory, and the
 * same result however the input is cut into chunks.
 *
 * Semantics (those of Nix's RewritingSink for a single pattern, generalised): the input is scanned left to right;
 * at each position the pattern that matches there is replaced (when several do, the longest; patterns are distinct)
 * and scanning resumes after it, so matches never overlap and replaced bytes are never matched again. Every pattern
 * is replaced by a string of the same length, so the output has the input's length and every offset is kept:
 * that is what keeps a NAR's framing and an executable's layout valid.
 *
 * Chunk boundaries: a match at position p is decided only once p + maxLen bytes are known (or the input has ended),
 * so that every pattern that could start at p, and every earlier one, is visible; the undecided last maxLen − 1
 * bytes are kept as the tail and searched again with the next chunk. Bytes before the tail are final and emitted.
 */
import { CprError } from "./errors.js";

/** One match: which pattern (index into the pairs given) and where it starts in the whole input. */
export interface ByteMatch {
  readonly index: number;
  readonly offset: number;
}

export interface RewriteStep {
  /** Bytes that are final (rewritten), in order; may be empty. */
  readonly out: Buffer;
  /** Matches decided by this step, in input order. */
  readonly matches: readonly ByteMatch[];
}

/** A pattern and its replacement; `to` is null to only find. */
export interface BytePair {
  readonly from: Uint8Array;
  readonly to: Uint8Array | null;
}

const EMPTY = Buffer.alloc(0);

function show(b: Uint8Array): string {
  const s = Buffer.from(b).toString("latin1");
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** Validates pairs: non-empty, distinct patterns, each replacement as long as its pattern. */
export function checkBytePairs(pairs: readonly BytePair[]): void {
  if (pairs.length === 0)
    throw new CprError("rewrite.empty", "nothing to replace: no patterns were given", { hint: "give at least one old → new pair" });
  const seen = new Set<string>();
  for (const [i, p] of pairs.entries()) {
    if (p.from.length === 0)
      throw new CprError("rewrite.empty-pattern", `pattern ${i} is empty`, { hint: "every pattern must have at least one byte" });
    if (p.to !== null && p.to.length !== p.from.length) {
      throw new CprError(
        "rewrite.length",
        `cannot replace ${show(p.from)} (${p.from.length} bytes) with ${show(p.to)} (${p.to.length} bytes): a replacement must have the same length`,
        {
          where: Buffer.from(p.from).toString("latin1"),
          hint: "store path rewrites keep every offset, so the old and new basenames must be equally long (y-3.2 → y-3.3, not y-3.9 → y-3.10); bridge a length change with an alias path",
        },
      );
    }
    const key = Buffer.from(p.from).toString("latin1");
    if (seen.has(key))
      throw new CprError("rewrite.duplicate", `pattern ${show(p.from)} is given twice`, { where: key, hint: "give each old string once" });
    seen.add(key);
  }
}

export class StreamRewriter {
  private readonly from: Buffer[];
  private readonly to: (Buffer | null)[];
  private readonly maxLen: number;
  /** Unemitted, undecided bytes (at most maxLen − 1), already rewritten where decided. */
  private tail: Buffer = EMPTY;
  /** Leading bytes of `tail` that belong to a match already made: no match may start there. */
  private skip = 0;
  /** Input offset of tail[0]. */
  private base = 0;
  private ended = false;
  /** How many times each pattern matched so far. */
  readonly counts: number[];

  /**
   * Patterns grouped by their first minLen bytes (the anchor), each group's patterns longest first: one search per
   * anchor finds every pattern of the group (a store path's basename and its bare hash part share their first 32
   * bytes, so a graft searches each hash once, not twice).
   */
  private readonly groups: { anchor: Buffer; members: number[] }[];

  constructor(pairs: readonly BytePair[]) {
    checkBytePairs(pairs);
    this.from = pairs.map((p) => Buffer.from(p.from));
    this.to = pairs.map((p) => (p.to === null ? null : Buffer.from(p.to)));
    this.maxLen = Math.max(...this.from.map((f) => f.length));
    this.counts = pairs.map(() => 0);
    const minLen = Math.min(...this.from.map((f) => f.length));
    const byAnchor = new Map<string, { anchor: Buffer; members: number[] }>();
    for (const [i, f] of this.from.entries()) {
      const anchor = f.subarray(0, minLen);
      const key = anchor.toString("latin1");
      const g = byAnchor.get(key) ?? { anchor, members: [] };
      g.members.push(i);
      byAnchor.set(key, g);
    }
    this.groups = [...byAnchor.values()];
    for (const g of this.groups) g.members.sort((a, b) => this.from[b]!.length - this.from[a]!.length);
  }

  /** The first position at or after `from` where a pattern of group `g` matches in `buf`, and which (longest). */
  private findInGroup(g: { anchor: Buffer; members: number[] }, buf: Buffer, from: number): { at: number; index: number } {
    for (let p = from; ; p++) {
      const at = buf.indexOf(g.anchor, p);
      if (at < 0) return { at: -1, index: -1 };
      for (const i of g.members) {
        const f = this.from[i]!;
        if (at + f.length <= buf.length && buf.compare(f, 0, f.length, at, at + f.length) === 0) return { at, index: i };
      }
      p = at;
    }
  }

  /** Total bytes emitted so far (= input consumed minus the tail). */
  get emitted(): number {
    return this.base;
  }

  /** Feeds a chunk; returns the bytes that became final and the matches decided. The chunk is not modified. */
  push(chunk: Uint8Array): RewriteStep {
    if (this.ended) throw new CprError("rewrite.ended", "write after end");
    if (chunk.length === 0) return { out: EMPTY, matches: [] };
    const buf = Buffer.concat([this.tail, chunk]);
    return this.step(buf, false);
  }

  /** Ends the input: decides and returns the tail. */
  end(): RewriteStep {
    if (this.ended) return { out: EMPTY, matches: [] };
    this.ended = true;
    return this.step(this.tail, true);
  }

  private step(buf: Buffer, final: boolean): RewriteStep {
    // A match may start at p only when p + maxLen <= buf.length (all candidates visible), or anywhere at the end.
    const lastStart = final ? buf.length - 1 : buf.length - this.maxLen;
    const matches: ByteMatch[] = [];
    const n = this.groups.length;
    // Per group, its next match at or after p: -2 not searched yet, -1 none. Anchors are distinct and equally long,
    // so two groups never match at one position.
    const next: { at: number; index: number }[] = Array.from({ length: n }, () => ({ at: -2, index: -1 }));
    let p = this.skip;
    while (p <= lastStart) {
      let best = -1;
      let bestAt = Infinity;
      for (let g = 0; g < n; g++) {
        let found = next[g]!;
        if (found.at === -2 || (found.at >= 0 && found.at < p)) {
          found = this.findInGroup(this.groups[g]!, buf, p);
          next[g] = found;
        }
        if (found.at < 0 || found.at > lastStart) continue;
        if (found.at < bestAt) {
          best = found.index;
          bestAt = found.at;
        }
      }
      if (best < 0) break;
      const to = this.to[best];
      if (to) {
        // `buf` is ours (a concatenation) unless it is the tail alone, which is ours as well.
        to.copy(buf, bestAt);
      }
      matches.push({ index: best, offset: this.base + bestAt });
      this.counts[best]!++;
      p = bestAt + this.from[best]!.length;
    }
    if (final) {
      this.tail = EMPTY;
      this.skip = 0;
      this.base += buf.length;
      return { out: buf, matches };
    }
    const keep = Math.min(buf.length, this.maxLen - 1);
    const cut = buf.length - keep;
    // Copy the tail so that the emitted buffer can be handed on without aliasing.
    this.tail = Buffer.from(buf.subarray(cut));
    this.skip = Math.max(0, p - cut);
    this.base += cut;
    return { out: buf.subarray(0, cut), matches };
  }
}

/** Rewrites a whole buffer at once (tests, small inputs); returns a new buffer and the matches. */
export function rewriteBytes(input: Uint8Array, pairs: readonly BytePair[]): { out: Buffer; matches: ByteMatch[] } {
  const r = new StreamRewriter(pairs);
  const a = r.push(input);
  const b = r.end();
  return { out: Buffer.concat([a.out, b.out]), matches: [...a.matches, ...b.matches] };
}
