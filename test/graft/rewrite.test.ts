import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createWriteStream, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { RewriteStream, rewriteNar } from "../../src/graft/rewrite.js";
import { rewriteBytes } from "../../src/protocol/byte-rewrite.js";
import { planGraft } from "../../src/protocol/graft.js";
import { parseNixHash, toNix32Hash } from "../../src/protocol/nix-hash.js";
import { parseStorePath } from "../../src/protocol/store-path.js";
import { exportPaths } from "../../src/nix/nar-export.js";
import { CprError } from "../../src/protocol/errors.js";
import { cprFailure } from "../support/assert.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { seededRandom as prng } from "../support/random.js";
import { throwawayStore } from "../nix/throwaway-store.js";
import { collect, graftFixture } from "./fixture.js";

const OLD = "0c7n7g2ii1k4m0yrqqmrvm5ycfz8b3k4-y-3.2";
const NEW = "sbrz3q5ydm3b2xd2zl0hsc8kmjc8i6kr-y-3.3";
const SELF_OLD = "w8bh6kz2cwrfa3n9mxgy0qhhfnv7i3jx-x-1.0";
const SELF_NEW = "1l5d8b2wa4ngwsfx3bzwq9yq6m0h0ssv-x-1.0";
const REWRITES = [
  { from: OLD, to: NEW },
  { from: SELF_OLD, to: SELF_NEW },
];

/** Pushes `input` through a RewriteStream in the given pieces; returns the output and the stream's result. */
async function throughStream(pieces: readonly Buffer[]) {
  const stream = new RewriteStream(REWRITES);
  const out = await collect(Readable.from(pieces).pipe(stream));
  return { out, result: stream.result };
}

test("RewriteStream: every split point of a small input gives one output, whose sha256 and size it reports", async () => {
  const input = Buffer.from(`x /nix/store/${OLD}/lib and ${SELF_OLD}${OLD} and ${OLD.slice(0, 33)}y-3.1\n`);
  const expected = rewriteBytes(
    input,
    REWRITES.map((r) => ({ from: Buffer.from(r.from), to: Buffer.from(r.to) })),
  ).out;
  assert.ok(expected.includes(Buffer.from(NEW)) && !expected.includes(Buffer.from(OLD)));
  for (let i = 0; i <= input.length; i++) {
    const { out, result } = await throughStream([input.subarray(0, i), input.subarray(i)].filter((b) => b.length > 0));
    assert.deepEqual(out, expected, `split at ${i}`);
    assert.equal(result.narSize, expected.length);
    assert.equal(result.narHash, toNix32Hash("sha256", createHash("sha256").update(expected).digest()));
    assert.deepEqual(result.counts, [2, 1]);
  }
});

test("RewriteStream: randomized (seeded) pieces of a large input equal rewriting it whole", async () => {
  const rand = prng(42);
  const parts: Buffer[] = [];
  for (let i = 0; i < 3000; i++)
    parts.push(rand() < 0.1 ? Buffer.from(rand() < 0.5 ? OLD : SELF_OLD) : Buffer.from([Math.floor(rand() * 256)]));
  const input = Buffer.concat(parts);
  const whole = rewriteBytes(
    input,
    REWRITES.map((r) => ({ from: Buffer.from(r.from), to: Buffer.from(r.to) })),
  );
  for (let round = 0; round < 20; round++) {
    const pieces: Buffer[] = [];
    for (let i = 0; i < input.length; ) {
      const n = 1 + Math.floor(rand() * (round < 10 ? 40 : 4000));
      pieces.push(input.subarray(i, i + n));
      i += n;
    }
    const { out, result } = await throughStream(pieces);
    assert.deepEqual(out, whole.out, `round ${round}`);
    assert.equal(result.narHash, toNix32Hash("sha256", createHash("sha256").update(whole.out).digest()));
    assert.equal(result.counts[0]! + result.counts[1]!, whole.matches.length);
  }
});

test("RewriteStream refuses unequal lengths with a clear error before reading anything", () => {
  const e = cprFailure(() => new RewriteStream([{ from: OLD, to: "sbrz3q5ydm3b2xd2zl0hsc8kmjc8i6kr-y-3.10" }]));
  assert.equal(e.code, "rewrite.length");
  assert.match(e.message, /a replacement must have the same length/);
  assert.throws(
    () => new RewriteStream([{ from: OLD, to: NEW }]).result,
    (err) => err instanceof CprError && err.code === "rewrite.unfinished",
  );
});

test("real Nix: a graft of real NARs (x → y-3.2 and itself, libz → y-3.2) imports at the planned paths and verifies", async (t) => {
  if (!needTools(t, "nix-store", "nix")) return;
  const s = throwawayStore();
  try {
    const f = await graftFixture(s);
    const plan = planGraft(f.closure, new Map([[f.y32, f.y33]]));
    assert.deepEqual(
      plan.members.map((m) => m.original),
      [f.libz, f.x],
    );
    const oldHashes = [f.y32, f.libz, f.x].map((p) => parseStorePath(p).hash);
    const out = tempDir("cpr-graft-out-");
    for (const [i, m] of plan.members.entries()) {
      const nar = s.dump(m.original);
      const rand = prng(i + 1);
      async function* pieces(): AsyncGenerator<Buffer> {
        for (let k = 0; k < nar.length; ) {
          const n = 1 + Math.floor(rand() * 300);
          yield nar.subarray(k, k + n);
          k += n;
        }
      }
      const file = join(out, `${i}.nar`);
      const r = await rewriteNar(pieces(), m.rewrites, { output: createWriteStream(file), scan: { hashParts: oldHashes } });
      const written = readFileSync(file);
      assert.equal(r.narSize, written.length);
      assert.equal(r.narHash, toNix32Hash("sha256", createHash("sha256").update(written).digest()));
      assert.deepEqual(r.residue?.hits, [], `no old hash part left in ${m.graft}`);
      assert.deepEqual(r.residue?.unscanned, []);
      const exported = await collect(exportPaths([{ path: m.graft, references: m.references, nar: written }]));
      assert.equal(s.run("nix-store", ["--import"], exported), m.graft);
      assert.deepEqual(s.run("nix-store", ["--query", "--references", m.graft]).split("\n").sort(), [...m.references].sort());
      const [info] = JSON.parse(s.run("nix", ["path-info", "--json", m.graft])) as { narHash: string; narSize: number }[];
      assert.equal(toNix32Hash("sha256", parseNixHash(info!.narHash).bytes), r.narHash);
      assert.equal(info!.narSize, r.narSize);
    }
    s.run("nix-store", ["--verify", "--check-contents"]);
    const x2 = plan.remap.get(f.x)!;
    const libz2 = plan.remap.get(f.libz)!;
    const script = readFileSync(join(s.real(x2), "bin", "x"), "utf8");
    assert.equal(script, `#!/bin/sh\n# ${x2}\ncat ${f.y33}/lib/message\n. ${libz2}/etc/libz.conf\n`);
    // What the script would read is Y 3.3's message.
    assert.equal(readFileSync(join(s.real(f.y33), "lib", "message"), "utf8"), "hello from y 3.3\n");
    assert.equal(readlinkSync(join(s.real(x2), "share", "y")), `${f.y33}/lib`);
    assert.equal(readFileSync(join(s.real(libz2), "etc", "libz.conf"), "utf8"), `y=${f.y33}/lib/liby.so\n`);
    const data = readFileSync(join(s.real(x2), "share", "data.bin"));
    assert.ok(data.includes(Buffer.from(x2)) && data.includes(Buffer.from(`${f.y33}/lib/liby.so`)));
    assert.equal(data.length, readFileSync(join(s.real(f.x), "share", "data.bin")).length, "offsets and sizes are kept");
    // The bare own hash part (no name after it) follows the hash part rewrite.
    assert.ok(!data.includes(Buffer.from(parseStorePath(f.x).hash)));
    assert.ok(data.includes(Buffer.from(`\0${parseStorePath(x2).hash}\0`)));
  } finally {
    s.done();
  }
});

test("rewriteNar: the output's errors reach the caller, and an input that is not a NAR fails the scan", async () => {
  const notNar = Buffer.from(`plain text naming ${OLD}\n`);
  await assert.rejects(
    rewriteNar(Readable.from([notNar]), REWRITES, { scan: { hashParts: [OLD.slice(0, 32)] } }),
    (e) => e instanceof CprError && e.code === "nar.invalid",
  );
  const broken = createWriteStream(join(tempDir("cpr-graft-out-"), "missing-dir", "x.nar"));
  await assert.rejects(
    rewriteNar(Readable.from([notNar]), REWRITES, { output: broken }),
    (e) => (e as NodeJS.ErrnoException).code === "ENOENT",
  );
});
