import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { contentAddress } from "../../src/graft/content-addressed.js";
import { HashModulo } from "../../src/protocol/content-address.js";
import { rewriteBytes } from "../../src/protocol/byte-rewrite.js";
import { parseStorePath } from "../../src/protocol/store-path.js";
import { parseNixHash, toNix32Hash } from "../../src/protocol/nix-hash.js";
import { needTools } from "../support/tools.js";
import { seededRandom as prng } from "../support/random.js";
import { throwawayStore, type ThrowawayStore } from "../nix/throwaway-store.js";
import { graftFixture, type FixturePath } from "./fixture.js";

/** `buf` in chunks of random sizes (seeded), so that every stream is cut somewhere new. */
async function* pieces(buf: Buffer, seed: number): AsyncGenerator<Buffer> {
  const rand = prng(seed);
  let i = 0;
  while (i < buf.length) {
    const n = 1 + Math.floor(rand() * 97);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

/**
 * What `nix store make-content-addressed` does, computed by cpr: the closure dependencies first, each path's
 * references rewritten as full paths (as Nix does), its own hash part handled by contentAddress.
 */
async function ourMakeContentAddressed(
  s: ThrowawayStore,
  order: readonly FixturePath[],
): Promise<Map<string, { path: string; narHash: string; narSize: number; ca: string; selfOffsets: readonly number[] }>> {
  const remap = new Map<string, { path: string; narHash: string; narSize: number; ca: string; selfOffsets: readonly number[] }>();
  for (const [i, m] of order.entries()) {
    const nar = s.dump(m.path);
    const others = m.references.filter((r) => r !== m.path);
    const rewrites = others.filter((r) => remap.has(r) && remap.get(r)!.path !== r).map((r) => ({ from: r, to: remap.get(r)!.path }));
    const r = await contentAddress({
      original: m.path,
      self: m.references.includes(m.path),
      references: others.map((r) => remap.get(r)?.path ?? r),
      rewrites,
      nar: () => pieces(nar, 1000 + i),
    });
    remap.set(m.path, { path: r.path, narHash: r.narHash, narSize: r.narSize, ca: r.ca, selfOffsets: r.selfOffsets });
  }
  return remap;
}

interface PathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  ca?: string;
}

function pathInfo(s: ThrowawayStore, path: string): PathInfo {
  const [info] = JSON.parse(s.run("nix", ["path-info", "--json", path])) as PathInfo[];
  return info!;
}

for (const withSelf of [false, true]) {
  test(`real Nix: make-content-addressed ${withSelf ? "with" : "without"} self-references gives the paths, NAR hashes and CA we compute`, async (t) => {
    if (!needTools(t, "nix-store", "nix")) return;
    const s = throwawayStore();
    try {
      const f = await graftFixture(s, withSelf ? "ca-self" : "ca-plain");
      const top = withSelf ? f.x : f.libz;
      const order = f.closure.filter((m) => (withSelf ? [f.y32, f.libz, f.x] : [f.y32, f.libz]).includes(m.path));
      const nixOut = JSON.parse(s.run("nix", ["store", "make-content-addressed", "--json", top])) as { rewrites: Record<string, string> };
      const ours = await ourMakeContentAddressed(s, order);
      // Nix reports the top path's rewrite; the rest of the closure it rewrote must be at the paths we computed.
      assert.deepEqual(nixOut.rewrites, { [top]: ours.get(top)!.path });
      for (const m of order) {
        const mine = ours.get(m.path)!;
        assert.notEqual(mine.path, m.path);
        assert.equal(parseStorePath(mine.path).name, parseStorePath(m.path).name);
        const info = pathInfo(s, mine.path); // fails unless Nix made this very path
        assert.equal(toNix32Hash("sha256", parseNixHash(info.narHash).bytes), mine.narHash, `NAR hash of ${mine.path}`);
        assert.equal(info.narSize, mine.narSize);
        assert.equal(info.ca, mine.ca);
        const selfRef = m.references.includes(m.path);
        assert.equal(info.references.includes(mine.path), selfRef, `self-reference of ${mine.path}`);
        if (selfRef) assert.ok(mine.selfOffsets.length >= 3, "the fixture mentions its own hash part several times");
      }
      // The store agrees that the new paths' contents match their NAR hashes and content addresses.
      s.run("nix-store", ["--verify", "--check-contents"]);
    } finally {
      s.done();
    }
  });
}

test("HashModulo: zeros replace the hash part, offsets are hashed, and chunking does not matter", () => {
  const h = "0c7n7g2ii1k4m0yrqqmrvm5ycfz8b3k4";
  const nar = Buffer.from(`head ${h}-x and ${h} tail ${h.slice(0, 31)}`);
  const zeroed = rewriteBytes(nar, [{ from: Buffer.from(h), to: Buffer.alloc(32) }]).out;
  const whole = new HashModulo(h).update(nar).digest();
  assert.deepEqual(whole.selfOffsets, [5, 44]);
  assert.equal(whole.size, nar.length);
  // A NAR with the hash part already zeroed hashes differently (the offsets are part of the hash).
  const plain = new HashModulo(h).update(zeroed).digest();
  assert.deepEqual(plain.selfOffsets, []);
  assert.notDeepEqual(plain.sha256, whole.sha256);
  // Nix 2.17 to 2.34 hash the zeroed NAR alone.
  const noOffsets = new HashModulo(h, { offsets: false }).update(nar).digest();
  assert.deepEqual(noOffsets.sha256, new Uint8Array(createHash("sha256").update(zeroed).digest()));
  assert.deepEqual(noOffsets.selfOffsets, [5, 44]);
  for (let cut = 0; cut <= nar.length; cut++) {
    const m = new HashModulo(h);
    m.update(nar.subarray(0, cut)).update(nar.subarray(cut));
    assert.deepEqual(m.digest(), whole, `cut at ${cut}`);
  }
});
