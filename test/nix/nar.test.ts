import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { narBytes, narHash } from "../../src/nix/nar.js";
import { toNix32, toSri } from "../../src/nix/hash.js";
import { CprError } from "../../src/protocol/errors.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { cornerTree, nix, nixBytes, randomTree } from "./support.js";

/** Our NAR of `path` equals `nix-store --dump`, and our hash equals nix-hash and `nix hash path`. */
async function checkAgainstNix(path: string): Promise<void> {
  const ours = await narBytes(path);
  const theirs = nixBytes("nix-store", ["--dump", path]);
  assert.equal(ours.size, theirs.length, `NAR size of ${path}`);
  if (!ours.bytes.equals(theirs)) {
    let i = 0;
    while (i < theirs.length && ours.bytes[i] === theirs[i]) i++;
    assert.fail(`NAR of ${path} differs from nix-store --dump at byte ${i}`);
  }
  assert.equal(toNix32(ours.sha256), nix("nix-hash", ["--type", "sha256", "--base32", path]));
  assert.equal(toSri("sha256", ours.sha256), nix("nix", ["hash", "path", path]));
}

test("NAR of a corner-case tree equals nix-store --dump byte for byte; hashes equal nix-hash and nix hash path", async (t) => {
  if (!needTools(t, "nix-store", "nix-hash", "nix")) return;
  const root = tempDir("cpr-nar-");
  const d = cornerTree(root);
  await checkAgainstNix(d);
  // Every node on its own as the top: a file, an executable, an empty file, a symlink, an empty directory.
  for (const p of [
    "nine",
    "run.sh",
    "empty-file",
    "exec-empty",
    "link-rel",
    "link-dangling",
    "empty-dir",
    "nested",
    "big.bin",
    "n-\u{1f600}",
  ]) {
    await checkAgainstNix(join(d, p));
  }
});

test("NAR of pseudo-random trees equals Nix's", async (t) => {
  if (!needTools(t, "nix-store", "nix-hash", "nix")) return;
  const root = tempDir("cpr-nar-");
  for (const seed of [1, 2, 3, 4]) await checkAgainstNix(randomTree(root, seed, 80));
});

test("NAR of names that are not valid UTF-8 equals Nix's", async (t) => {
  if (!needTools(t, "nix-store", "nix-hash", "nix")) return;
  const root = tempDir("cpr-nar-");
  const d = join(root, "bytes");
  mkdirSync(d);
  const dirBuf = Buffer.from(d);
  for (const name of [
    [0x66, 0xff],
    [0x66, 0xc3],
    [0x66, 0x7f],
    [0xe2, 0x82],
  ]) {
    writeFileSync(Buffer.concat([dirBuf, Buffer.from("/"), Buffer.from(name)]), "x");
  }
  symlinkSync(Buffer.from([0x74, 0xfe]), Buffer.concat([dirBuf, Buffer.from("/link")]));
  await checkAgainstNix(d);
});

test("NAR streaming: chunks concatenate to the NAR, and the size and digest match", async () => {
  const root = tempDir("cpr-nar-");
  const d = cornerTree(root);
  const chunks: Uint8Array[] = [];
  const r = await narHash(d, { onChunk: (c) => chunks.push(new Uint8Array(c)) });
  const whole = Buffer.concat(chunks);
  assert.equal(whole.length, r.size);
  assert.ok(chunks.length > 2, "streamed in several chunks");
  const { createHash } = await import("node:crypto");
  assert.deepEqual(new Uint8Array(createHash("sha256").update(whole).digest()), r.sha256);
  assert.equal(whole.subarray(8, 21).toString(), "nix-archive-1");
  assert.equal(whole.readBigUInt64LE(0), 13n);
});

test("NAR of a hand-checked tiny file", async () => {
  const root = tempDir("cpr-nar-");
  writeFileSync(join(root, "f"), "abc");
  const { bytes } = await narBytes(join(root, "f"));
  const str = (s: string): Buffer => {
    const b = Buffer.from(s);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(b.length));
    return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
  };
  const expected = Buffer.concat(["nix-archive-1", "(", "type", "regular", "contents", "abc", ")"].map(str));
  assert.ok(bytes.equals(expected));
});

test("NAR refuses sockets/FIFOs and missing paths with CprErrors", async () => {
  const root = tempDir("cpr-nar-");
  const missing = join(root, "nope");
  await assert.rejects(narHash(missing), (e: unknown) => e instanceof CprError && e.code === "nar.read");
  try {
    execFileSync("mkfifo", [join(root, "fifo")]);
  } catch {
    return; // no mkfifo here: nothing more to check
  }
  await assert.rejects(narHash(root), (e: unknown) => e instanceof CprError && e.code === "nar.unsupported");
});
