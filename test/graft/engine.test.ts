/**
 * The graft engine (src/graft/engine.ts) on a throwaway store with real Nix: a plan executed from `nix-store --dump`
 * into an in-memory sink, dependencies first, each member's NarHash/NarSize/references/residue reported; the result
 * imported by Nix and verified; a source that does not match its recorded NarHash is refused; skipped members.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { oldHashParts, residueOf, writeGraft } from "../../src/graft/engine.js";
import { planGraft } from "../../src/protocol/graft.js";
import { parseNixHash, toNix32Hash } from "../../src/protocol/nix-hash.js";
import { parseStorePath } from "../../src/protocol/store-path.js";
import { exportPaths } from "../../src/nix/nar-export.js";
import { CprError } from "../../src/protocol/errors.js";
import { needTools } from "../support/tools.js";
import { throwawayStore } from "../nix/throwaway-store.js";
import { collect, graftFixture } from "./fixture.js";

/** A sink keeping each member's NAR in memory. */
function memorySink() {
  const nars = new Map<string, Buffer>();
  return {
    nars,
    sink: {
      open: async (m: { graft: string }) => {
        const chunks: Buffer[] = [];
        const output = new Writable({
          write(c: Buffer, _e, cb) {
            chunks.push(c);
            cb();
          },
          final(cb) {
            nars.set(m.graft, Buffer.concat(chunks));
            cb();
          },
        });
        return { output, staged: m.graft };
      },
    },
  };
}

test("writeGraft: every member rewritten from the store, dependencies first; Nix imports and verifies the result", async (t) => {
  if (!needTools(t, "nix-store", "nix")) return;
  const s = throwawayStore();
  try {
    const f = await graftFixture(s, "engine");
    const plan = planGraft(f.closure, [{ old: f.y32, new: f.y33 }]);
    assert.deepEqual(
      plan.members.map((m) => m.original),
      [f.libz, f.x],
    );
    assert.deepEqual(oldHashParts(plan), [f.y32, f.libz, f.x].map((p) => parseStorePath(p).hash).sort());
    const recorded = new Map(f.closure.map((m) => [m.path, toNix32Hash("sha256", createHash("sha256").update(s.dump(m.path)).digest())]));
    const { nars, sink } = memorySink();
    const seen: string[] = [];
    const results = await writeGraft(plan, {
      source: { open: (p) => Readable.from([s.dump(p)]), narHash: (p) => recorded.get(p) ?? null },
      sink,
      onMember: (r) => seen.push(r.original),
    });
    assert.deepEqual(seen, [f.libz, f.x]);
    for (const r of results) {
      const nar = nars.get(r.graft)!;
      assert.equal(r.narSize, nar.length);
      assert.equal(r.narHash, toNix32Hash("sha256", createHash("sha256").update(nar).digest()));
      assert.deepEqual(r.residue.hits, []);
      for (const h of oldHashParts(plan)) assert.ok(!nar.includes(Buffer.from(h)), `${h} left in ${r.graft}`);
    }
    assert.deepEqual(
      residueOf(results).map((r) => r.hits.length),
      [0, 0],
    );
    const xg = plan.remap.get(f.x)!;
    assert.deepEqual(results[1]!.references, [f.y33, plan.remap.get(f.libz)!, xg].sort());

    const exported = await collect(exportPaths(results.map((r) => ({ path: r.graft, references: r.references, nar: nars.get(r.graft)! }))));
    s.run("nix-store", ["--import"], exported);
    s.run("nix-store", ["--verify", "--check-contents"]);
    const info = JSON.parse(s.run("nix", ["path-info", "--json", xg])) as { narHash: string }[];
    assert.equal(toNix32Hash("sha256", parseNixHash(info[0]!.narHash).bytes), results[1]!.narHash);

    // Skipped members are not written.
    const skipping = memorySink();
    const some = await writeGraft(plan, {
      source: { open: (p) => Readable.from([s.dump(p)]) },
      sink: skipping.sink,
      skip: (m) => m.original === f.libz,
    });
    assert.deepEqual(
      some.map((r) => r.original),
      [f.x],
    );

    // A source whose bytes are not the recorded NAR is refused.
    await assert.rejects(
      writeGraft(plan, {
        source: { open: (p) => Readable.from([s.dump(p)]), narHash: () => `sha256:${"0".repeat(52)}` },
        sink: memorySink().sink,
      }),
      (e: unknown) => e instanceof CprError && e.code === "graft.source-hash",
    );
  } finally {
    s.done();
  }
});
