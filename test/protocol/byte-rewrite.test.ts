import { test } from "node:test";
import assert from "node:assert/strict";
import { StreamRewriter, rewriteBytes, type BytePair, type ByteMatch } from "../../src/protocol/byte-rewrite.js";
import { cprFailure } from "../support/assert.js";
import { randomBytes } from "../nix/support.js";
import { seededRandom as prng } from "../support/random.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const pair = (from: string, to: string | null): BytePair => ({ from: b(from), to: to === null ? null : b(to) });

/**
 * A reference implementation, written independently of StreamRewriter: scan left to right; at each position take
 * the longest pattern that matches there, replace it and jump past it.
 */
function reference(input: Buffer, pairs: readonly BytePair[]): { out: Buffer; matches: ByteMatch[] } {
  const out = Buffer.from(input);
  const matches: ByteMatch[] = [];
  let p = 0;
  while (p < input.length) {
    let best = -1;
    for (const [i, q] of pairs.entries()) {
      if (p + q.from.length <= input.length && input.subarray(p, p + q.from.length).equals(q.from)) {
        if (best < 0 || q.from.length > pairs[best]!.from.length) best = i;
      }
    }
    if (best < 0) {
      p++;
      continue;
    }
    const q = pairs[best]!;
    if (q.to) out.set(q.to, p);
    matches.push({ index: best, offset: p });
    p += q.from.length;
  }
  return { out, matches };
}

/** Runs the rewriter over `input` cut at `cuts` (sorted offsets). */
function chunked(input: Buffer, pairs: readonly BytePair[], cuts: readonly number[]): { out: Buffer; matches: ByteMatch[] } {
  const r = new StreamRewriter(pairs);
  const outs: Buffer[] = [];
  const matches: ByteMatch[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    const s = r.push(input.subarray(prev, c));
    outs.push(s.out);
    matches.push(...s.matches);
    prev = c;
  }
  const e = r.end();
  outs.push(e.out);
  matches.push(...e.matches);
  return { out: Buffer.concat(outs), matches };
}

const OLD_Y = "0c7n7g2ii1k4m0yrqqmrvm5ycfz8b3k4-y-3.2";
const NEW_Y = "sbrz3q5ydm3b2xd2zl0hsc8kmjc8i6kr-y-3.3";
const OLD_X = "w8bh6kz2cwrfa3n9mxgy0qhhfnv7i3jx-x-1.0";
const NEW_X = "1l5d8b2wa4ngwsfx3bzwq9yq6m0h0ssv-x-1.0";

test("a small input: every single split point, and every pair of split points, give the same output as one piece", () => {
  const input = b(
    `#!/bin/sh\nexec /nix/store/${OLD_Y}/bin/y --self /nix/store/${OLD_X}/share ${OLD_Y}${OLD_Y}-tail ${OLD_X.slice(0, 20)}\n`,
  );
  const pairs = [pair(OLD_Y, NEW_Y), pair(OLD_X, NEW_X)];
  const whole = reference(input, pairs);
  assert.equal(whole.matches.length, 4, "the fixture has four matches, two of them adjacent");
  assert.ok(whole.out.includes(b(NEW_Y)) && !whole.out.includes(b(OLD_Y)) && !whole.out.includes(b(OLD_X)));
  assert.ok(whole.out.includes(b(OLD_X.slice(0, 20))), "a partial basename is left alone");
  assert.deepEqual(rewriteBytes(input, pairs), whole);
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(chunked(input, pairs, [i]), whole, `split at ${i}`);
    for (let j = i; j <= input.length; j += 3) assert.deepEqual(chunked(input, pairs, [i, j]), whole, `split at ${i} and ${j}`);
  }
  // One byte at a time.
  assert.deepEqual(
    chunked(
      input,
      pairs,
      [...input.keys()].map((k) => k + 1),
    ),
    whole,
  );
});

test("randomized (seeded): random bytes with planted patterns of several lengths, cut at random points, equal the reference", () => {
  const rand = prng(20240611);
  for (let round = 0; round < 200; round++) {
    // Patterns over a small alphabet so that they overlap and prefix each other often.
    const alphabet = "ab-";
    const pats = new Set<string>();
    const n = 1 + Math.floor(rand() * 4);
    while (pats.size < n) {
      const len = 1 + Math.floor(rand() * 6);
      let s = "";
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      pats.add(s);
    }
    const pairs = [...pats].map((p) => pair(p, [...p].map(() => "XYZ"[Math.floor(rand() * 3)]).join("")));
    const parts: Buffer[] = [];
    const len = Math.floor(rand() * 120);
    for (let i = 0; i < len; i++) {
      if (rand() < 0.3) parts.push(b([...pats][Math.floor(rand() * pats.size)]!));
      else parts.push(rand() < 0.5 ? randomBytes(rand, 1) : b(alphabet[Math.floor(rand() * alphabet.length)]!));
    }
    const input = Buffer.concat(parts);
    const before = Buffer.from(input);
    const whole = reference(input, pairs);
    // Short pieces (joined with the tail) and long ones (searched in place, the boundary joined) alike.
    for (const p of [0.2, 0.03]) {
      const cuts: number[] = [];
      for (let i = 0; i < input.length; i++) if (rand() < p) cuts.push(i);
      assert.deepEqual(
        chunked(input, pairs, cuts),
        whole,
        `round ${round}: ${JSON.stringify([...pats])} over ${JSON.stringify(input.toString("latin1"))} cut at ${cuts}`,
      );
      assert.ok(input.equals(before), `round ${round}: the chunks given are not modified`);
    }
  }
});

test("semantics: leftmost match first, the longest at one position, no overlaps, find-only leaves bytes alone", () => {
  const r = rewriteBytes(b("abcabcab"), [pair("bca", "XYZ"), pair("abc", "123")]);
  assert.equal(r.out.toString("latin1"), "123123ab");
  const longest = rewriteBytes(b("xaab"), [pair("aa", "11"), pair("aab", "222")]);
  assert.equal(longest.out.toString("latin1"), "x222");
  const overlapping = rewriteBytes(b("aaaaa"), [pair("aa", "bb")]);
  assert.equal(overlapping.out.toString("latin1"), "bbbba");
  assert.deepEqual(overlapping.matches, [
    { index: 0, offset: 0 },
    { index: 0, offset: 2 },
  ]);
  const found = rewriteBytes(b("--aa--aa"), [pair("aa", null)]);
  assert.equal(found.out.toString("latin1"), "--aa--aa");
  assert.deepEqual(
    found.matches.map((m) => m.offset),
    [2, 6],
  );
  // The input chunk is never modified.
  const input = b(OLD_Y);
  new StreamRewriter([pair(OLD_Y, NEW_Y)]).push(input);
  assert.equal(input.toString("latin1"), OLD_Y);
});

test("unequal lengths, empty and repeated patterns are refused with a clear error", () => {
  const e = cprFailure(
    () => new StreamRewriter([pair("0c7n7g2ii1k4m0yrqqmrvm5ycfz8b3k4-y-3.9", "sbrz3q5ydm3b2xd2zl0hsc8kmjc8i6kr-y-3.10")]),
  );
  assert.equal(e.code, "rewrite.length");
  assert.match(e.message, /38 bytes\) with .*39 bytes\): a replacement must have the same length/);
  assert.match(e.hint ?? "", /equally long/);
  assert.equal(cprFailure(() => new StreamRewriter([])).code, "rewrite.empty");
  assert.equal(cprFailure(() => new StreamRewriter([pair("", "")])).code, "rewrite.empty-pattern");
  assert.equal(cprFailure(() => new StreamRewriter([pair("ab", "cd"), pair("ab", "ef")])).code, "rewrite.duplicate");
});
