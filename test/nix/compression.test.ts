import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { deflateRawSync } from "node:zlib";
import { decompress, sniffContainer, type StreamCompression } from "../../src/nix/compression.js";
import { CprError } from "../../src/protocol/errors.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { randomBytes } from "./support.js";
import { seededRandom as prng } from "../support/random.js";

/** Compressed with the real program. */
function compress(kind: "gzip" | "xz" | "zstd", data: Buffer): Buffer {
  const args = kind === "zstd" ? ["-q", "-c"] : ["-c"];
  return execFileSync(kind, args, { input: data, maxBuffer: 64 * 1024 * 1024 });
}

async function* pieces(buf: Buffer, seed: number): AsyncGenerator<Buffer> {
  const rand = prng(seed);
  for (let i = 0; i < buf.length; ) {
    const n = 1 + Math.floor(rand() * 5000);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

async function all(src: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of src) out.push(c);
  return Buffer.concat(out);
}

async function rejection(p: Promise<unknown>): Promise<CprError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CprError, String(e));
    return e;
  }
  assert.fail("expected a CprError");
}

// Compressible but not trivial: random words.
const rand = prng(3);
const DATA = Buffer.from(
  Array.from({ length: 40000 }, () => ["nix", "store", "graft", "0c7n7g2ii1k4m0yrqqmrvm5ycfz8b3k4", "\n"][Math.floor(rand() * 5)]).join(
    " ",
  ),
);

test("sniffContainer knows gzip, xz, zstd and zip by their magic bytes, and nothing else", (t) => {
  if (!needTools(t, "gzip", "xz", "zstd")) return;
  for (const kind of ["gzip", "xz", "zstd"] as const) assert.equal(sniffContainer(compress(kind, DATA)), kind);
  assert.equal(sniffContainer(Buffer.from("PK\x03\x04rest", "latin1")), "zip");
  assert.equal(sniffContainer(Buffer.from("#!/bin/sh\n")), null);
  assert.equal(sniffContainer(Buffer.from([0x1f])), null, "too short to tell");
  assert.equal(sniffContainer(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a])), null, "an xz magic needs all six bytes");
});

test("decompress gives back the data for gzip, xz, zstd (real programs' output, concatenated streams too) and raw deflate", async (t) => {
  if (!needTools(t, "gzip", "xz", "zstd")) return;
  for (const kind of ["gzip", "xz", "zstd"] as const) {
    const packed = compress(kind, DATA);
    assert.deepEqual(await all(decompress(kind, pieces(packed, 1), { maxOutput: DATA.length })), DATA, kind);
    const twice = Buffer.concat([packed, compress(kind, Buffer.from("second\n"))]);
    assert.deepEqual(
      await all(decompress(kind, pieces(twice, 2), { maxOutput: 10 * DATA.length })),
      Buffer.concat([DATA, Buffer.from("second\n")]),
      `${kind}, two streams`,
    );
  }
  assert.deepEqual(await all(decompress("deflate-raw", pieces(deflateRawSync(DATA), 3), { maxOutput: DATA.length })), DATA);
});

test("decompress stops past the cap, refuses corrupt data, and ends quietly when the reader stops early", async (t) => {
  if (!needTools(t, "gzip", "xz", "zstd")) return;
  const kinds: StreamCompression[] = ["gzip", "xz", "zstd", "deflate-raw"];
  for (const kind of kinds) {
    const packed = kind === "deflate-raw" ? deflateRawSync(DATA) : compress(kind, DATA);
    const cap = await rejection(all(decompress(kind, pieces(packed, 4), { maxOutput: DATA.length - 1, what: "share/x.gz" })));
    assert.equal(cap.code, "compression.cap", kind);
    assert.match(cap.message, new RegExp(`share/x.gz: the ${kind} data decompresses to more than ${DATA.length - 1} bytes`));
    const broken = Buffer.from(packed);
    const r = prng(5);
    for (let i = 10; i < broken.length - 10; i++) if (r() < 0.3) broken[i] = randomBytes(r, 1)[0]!;
    const bad = await rejection(all(decompress(kind, pieces(broken, 6), { maxOutput: 100 * DATA.length })));
    assert.equal(bad.code, "compression.corrupt", `${kind}: ${bad.message}`);
    // Take one chunk and stop: the generator's cleanup must not hang or throw.
    for await (const first of decompress(kind, pieces(packed, 7), { maxOutput: DATA.length })) {
      assert.ok(first.length > 0);
      break;
    }
  }
});

test("an error of the input itself is passed through unchanged", async (t) => {
  if (!needTools(t, "gzip", "xz")) return;
  for (const kind of ["xz", "gzip"] as const) {
    const packed = compress(kind, DATA);
    const boom = new Error("the NAR ended early");
    async function* failing(): AsyncGenerator<Buffer> {
      yield packed.subarray(0, 100);
      throw boom;
    }
    await assert.rejects(all(decompress(kind, failing(), { maxOutput: DATA.length })), (e) => e === boom, kind);
  }
});

test("a missing xz or zstd program is named, with the package to install", async (t) => {
  if (!needTools(t, "xz", "zstd")) return;
  const packed = compress("zstd", DATA);
  const saved = process.env.PATH;
  process.env.PATH = tempDir("cpr-no-tools-");
  try {
    const e = await rejection(all(decompress("zstd", pieces(packed, 8), { maxOutput: DATA.length, what: "lib/a.zst" })));
    assert.equal(e.code, "compression.missing");
    assert.match(e.message, /lib\/a\.zst: cannot decompress zstd data: zstd is not installed/);
    assert.match(e.hint ?? "", /Debian: zstd/);
  } finally {
    process.env.PATH = saved;
  }
});
