import { test } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { narBytes } from "../../src/nix/nar.js";
import { readNar, type NarEntry } from "../../src/nix/nar-read.js";
import { CprError } from "../../src/protocol/errors.js";
import { tempDir } from "../support/repo.js";
import { cornerTree, randomTree } from "./support.js";
import { seededRandom as prng } from "../support/random.js";

interface Seen {
  type: string;
  path: string;
  executable?: boolean;
  contents?: string;
  target?: string;
}

/** What the file system holds under `root`, depth first in byte order of names, as the NAR lists it. */
function walk(root: string, rel = ""): Seen[] {
  const p = rel === "" ? root : join(root, rel);
  const st = lstatSync(p);
  if (st.isSymbolicLink()) return [{ type: "symlink", path: rel, target: readlinkSync(p, { encoding: "buffer" }).toString("hex") }];
  if (st.isFile()) return [{ type: "regular", path: rel, executable: (st.mode & 0o100) !== 0, contents: readFileSync(p).toString("hex") }];
  const names = readdirSync(p, { encoding: "buffer" }).sort(Buffer.compare);
  return [
    { type: "directory", path: rel },
    ...names.flatMap((n) => walk(root, rel === "" ? n.toString("utf8") : `${rel}/${n.toString("utf8")}`)),
  ];
}

async function entries(src: AsyncIterable<Uint8Array>): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const e of readNar(src)) out.push(await seen(e));
  return out;
}

async function seen(e: NarEntry): Promise<Seen> {
  if (e.type === "directory") return { type: "directory", path: e.path };
  if (e.type === "symlink") return { type: "symlink", path: e.path, target: e.target.toString("hex") };
  const parts: Buffer[] = [];
  for await (const c of e.contents) parts.push(Buffer.from(c));
  const contents = Buffer.concat(parts);
  assert.equal(contents.length, e.size);
  return { type: "regular", path: e.path, executable: e.executable, contents: contents.toString("hex") };
}

async function* cut(buf: Buffer, sizes: () => number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; ) {
    const n = Math.max(1, sizes());
    yield buf.subarray(i, i + n);
    i += n;
  }
}

/** The corner-case tree without its 1 MiB file, for reading a byte at a time. */
function smallCornerTree(root: string): string {
  const d = cornerTree(root);
  rmSync(join(d, "big.bin"));
  return d;
}

test("readNar lists what the file system holds, for NARs cut into pieces of every size", async () => {
  const root = tempDir("cpr-nar-read-");
  for (const dir of [
    cornerTree(root),
    smallCornerTree(join(root, "s")),
    randomTree(root, 5, 60),
    join(cornerTree(join(root, "c2")), "nine"),
    join(cornerTree(join(root, "c3")), "link-rel"),
  ]) {
    const nar = (await narBytes(dir)).bytes;
    const expected = walk(dir);
    assert.deepEqual(await entries(cut(nar, () => nar.length)), expected);
    if (nar.length < 100_000) assert.deepEqual(await entries(cut(nar, () => 1)), expected, "one byte at a time");
    const rand = prng(99);
    assert.deepEqual(await entries(cut(nar, () => Math.floor(rand() * 5000))), expected, "random pieces");
  }
});

test("contents left unread are skipped; offsets point at the contents in the NAR", async () => {
  const root = tempDir("cpr-nar-read-");
  const dir = cornerTree(root);
  const nar = (await narBytes(dir)).bytes;
  const paths: string[] = [];
  const rand = prng(7);
  for await (const e of readNar(cut(nar, () => Math.floor(rand() * 3000)))) {
    paths.push(e.path);
    if (e.type === "regular" && e.size > 0) {
      assert.deepEqual(nar.subarray(e.offset, e.offset + e.size), readFileSync(join(dir, e.path)));
    }
  }
  assert.deepEqual(
    paths,
    walk(dir).map((s) => s.path),
  );
});

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** A NAR string token: length, bytes, zero padding. */
function tok(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([u64(b.length), b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
}

async function failure(nar: Buffer): Promise<CprError> {
  try {
    await entries(cut(nar, () => 3)); // small NARs only: one await per piece
  } catch (e) {
    assert.ok(e instanceof CprError, String(e));
    assert.equal(e.code, "nar.invalid");
    return e;
  }
  assert.fail("expected the NAR to be refused");
}

test("malformed NARs are refused with the offset and the entry: truncation, bad magic, padding, order, names, trailing data", async () => {
  const root = tempDir("cpr-nar-read-");
  const dir = smallCornerTree(root);
  const nar = (await narBytes(dir)).bytes;
  assert.match((await failure(nar.subarray(0, nar.length - 8))).message, /unexpected end of the NAR/);
  assert.match(
    (await failure(Buffer.concat([nar.subarray(0, 8), Buffer.from("nix-archive-2"), nar.subarray(21)]))).message,
    /expected "nix-archive-1"/,
  );
  assert.match((await failure(Buffer.concat([nar, Buffer.alloc(8)]))).message, /data after the end of the archive/);
  // "seven" has 7 bytes of contents and one byte of padding: make the padding non-zero.
  const seven = nar.indexOf(Buffer.concat([tok("contents"), u64(7), Buffer.from("1234567\0")]));
  assert.ok(seven > 0);
  const badPad = Buffer.from(nar);
  badPad[seven + tok("contents").length + 8 + 7] = 1;
  assert.match((await failure(badPad)).message, /non-zero padding .*entry "seven"/);
  // Swap two entry names of equal length ("n-a-b" < "n-a.b") so that the directory is out of order.
  const unsorted = Buffer.from(nar);
  const a = unsorted.indexOf(Buffer.concat([tok("name"), tok("n-a-b")]));
  const b = unsorted.indexOf(Buffer.concat([tok("name"), tok("n-a.b")]));
  assert.ok(a > 0 && b > a);
  tok("n-a.b").copy(unsorted, a + 16);
  tok("n-a-b").copy(unsorted, b + 16);
  assert.match((await failure(unsorted)).message, /"n-a-b" is not after "n-a\.b": directory entries must be sorted and unique/);
  // An entry name with a slash.
  const slash = Buffer.from(nar);
  const nine = slash.indexOf(Buffer.concat([tok("name"), tok("nine")]));
  assert.ok(nine > 0);
  slash[nine + 16 + 8 + 1] = 0x2f;
  assert.match((await failure(slash)).message, /invalid entry name "n\/ne"/);
});
