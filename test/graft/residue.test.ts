import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describeResidue, scanResidue, type ResidueHit } from "../../src/graft/residue.js";
import { rewriteNar } from "../../src/graft/rewrite.js";
import { narBytes } from "../../src/nix/nar.js";
import { parseStorePath } from "../../src/protocol/store-path.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { seededRandom as prng } from "../support/random.js";
import { fakeOutputPath } from "./fixture.js";

const OLD = fakeOutputPath("y-3.2", "residue");
const NEW = fakeOutputPath("y-3.3", "residue");
const OLD_HASH = parseStorePath(OLD).hash;

/** Text that names `dep` once, in the middle. */
const text = (dep: string, what: string): Buffer => Buffer.from(`${what}: some words before\nexec ${dep}/bin/y "$@"\nand after\n`);

function run(cmd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 64 * 1024 * 1024 });
}

/** A zip made by Python's zipfile: a deflated member, a stored one, a stored gzip, and a directory. */
function zipOf(file: string, members: { name: string; data: Buffer; stored: boolean }[]): void {
  const script = `
import sys, zipfile, json, base64
spec = json.loads(sys.stdin.read())
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(zipfile.ZipInfo("d/"), b"")
    for m in spec:
        z.writestr(m["name"], base64.b64decode(m["data"]), compress_type=zipfile.ZIP_STORED if m["stored"] else zipfile.ZIP_DEFLATED)
`;
  run("python3", ["-c", script, file], Buffer.from(JSON.stringify(members.map((m) => ({ ...m, data: m.data.toString("base64") })))));
}

/** The tree of the tests, every kind of place naming `dep`; the same tree for another dep is the "full rewrite". */
function residueTree(root: string, dep: string): string {
  const d = join(root, parseStorePath(dep).name);
  mkdirSync(join(d, "share"), { recursive: true });
  mkdirSync(join(d, "lib"), { recursive: true });
  writeFileSync(join(d, "plain.txt"), text(dep, "plain"));
  writeFileSync(join(d, "share", "doc.gz"), run("gzip", ["-c", "-n"], text(dep, "gzip")));
  writeFileSync(join(d, "share", "data.xz"), run("xz", ["-c"], text(dep, "xz")));
  writeFileSync(join(d, "share", "data.zst"), run("zstd", ["-q", "-c"], text(dep, "zstd")));
  writeFileSync(join(d, "share", "clean.gz"), run("gzip", ["-c", "-n"], Buffer.from("nothing to see\n")));
  zipOf(join(d, "lib", "bundle.zip"), [
    { name: "a/deflated.txt", data: text(dep, "zip deflated"), stored: false },
    { name: "b/stored.bin", data: Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(dep), Buffer.from([3])]), stored: true },
    { name: "c/inner.gz", data: run("gzip", ["-c", "-n"], text(dep, "gzip in zip")), stored: true },
  ]);
  writeFileSync(join(d, `${parseStorePath(dep).hash}-cache`), "named after it\n");
  symlinkSync(`${dep}/lib`, join(d, "link"));
  return d;
}

/** Offsets of `needle` in `hay`, found independently of the scanner (indexOf, overlapping allowed). */
function offsets(hay: Buffer, needle: string): number[] {
  const out: number[] = [];
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) out.push(i);
  return out;
}

async function* pieces(buf: Buffer, seed: number): AsyncGenerator<Buffer> {
  const rand = prng(seed);
  for (let i = 0; i < buf.length; ) {
    const n = 1 + Math.floor(rand() * 700);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

const key = (h: ResidueHit): string => `${h.path} | ${h.member.join(" > ")} | ${h.offset}`;

test("the residue scan finds the old hash part in a plain file, gzip, xz, zstd and zip members, a name and a symlink target", async (t) => {
  if (!needTools(t, "gzip", "xz", "zstd", "python3")) return;
  const d = residueTree(tempDir("cpr-residue-"), OLD);
  const nar = (await narBytes(d)).bytes;
  const report = await scanResidue(pieces(nar, 1), [OLD_HASH]);
  const inText = (what: string): number => offsets(text(OLD, what), OLD_HASH)[0]!;
  // Raw hits: wherever the file's own bytes hold the hash part (the plain file; the zip's stored member; and xz,
  // which stores a short text uncompressed).
  const raw = ["plain.txt", "share/doc.gz", "share/data.xz", "share/data.zst", "share/clean.gz", "lib/bundle.zip"].flatMap((f) =>
    offsets(readFileSync(join(d, f)), OLD_HASH).map((o) => `${f} |  | ${o}`),
  );
  assert.ok(raw.includes(`plain.txt |  | ${inText("plain")}`) && raw.some((r) => r.startsWith("lib/bundle.zip")));
  const expected = [
    ...raw,
    `share/doc.gz | gzip | ${inText("gzip")}`,
    `share/data.xz | xz | ${inText("xz")}`,
    `share/data.zst | zstd | ${inText("zstd")}`,
    `lib/bundle.zip | zip:a/deflated.txt | ${inText("zip deflated")}`,
    `lib/bundle.zip | zip:c/inner.gz > gzip | ${inText("gzip in zip")}`,
    `${OLD_HASH}-cache | name | 0`,
    `link | target | ${"/nix/store/".length}`,
  ];
  assert.deepEqual(report.hits.map(key).sort(), expected.sort());
  assert.ok(report.hits.every((h) => h.hash === OLD_HASH));
  const plain = report.hits.find((h) => h.path === "plain.txt")!;
  assert.equal(nar.subarray(plain.narOffset!, plain.narOffset! + 32).toString(), OLD_HASH, "narOffset points at the hit in the NAR");
  assert.deepEqual(report.unscanned, []);
  assert.deepEqual(report.damaged, []);
  assert.equal(report.members, 6, "gzip, xz, zstd, clean.gz, the deflated zip member and the gzip inside the zip");
  assert.ok(
    describeResidue(report).some(
      (l) => l === `lib/bundle.zip → zip:c/inner.gz → gzip: old hash ${OLD_HASH} at offset ${inText("gzip in zip")}`,
    ),
  );
});

test("after a full rewrite nothing is found; after rewriting only the raw bytes, the compressed members still are", async (t) => {
  if (!needTools(t, "gzip", "xz", "zstd", "python3")) return;
  const root = tempDir("cpr-residue-");
  // Every place rebuilt naming the new path: what a full rewrite (or a rebuild) gives.
  const full = (await narBytes(residueTree(join(root, "full"), NEW))).bytes;
  const clean = await scanResidue(pieces(full, 2), [OLD_HASH]);
  assert.deepEqual(clean.hits, []);
  assert.deepEqual(clean.unscanned, []);
  assert.deepEqual(clean.damaged, []);
  assert.ok(clean.files >= 7 && clean.members === 6);

  // The graft's byte rewrite reaches the raw bytes only: the scan, run in the same pass, reports what is left.
  const oldTree = residueTree(join(root, "old"), OLD);
  const nar = (await narBytes(oldTree)).bytes;
  const o = parseStorePath(OLD);
  const n = parseStorePath(NEW);
  const r = await rewriteNar(
    pieces(nar, 3),
    [
      { from: o.basename, to: n.basename },
      { from: o.hash, to: n.hash },
    ],
    { scan: { hashParts: [OLD_HASH] } },
  );
  const left = r.residue!;
  // A compressed stream whose raw bytes held the path (xz keeps a short text uncompressed) was rewritten too, and
  // its integrity check now fails: not checked, with the reason. The others still hold the old path.
  const xzRaw = readFileSync(join(oldTree, "share", "data.xz")).includes(OLD_HASH);
  assert.deepEqual(
    left.hits.map((h) => `${h.path} | ${h.member.join(" > ")}`).sort(),
    [
      "lib/bundle.zip | zip:a/deflated.txt",
      "lib/bundle.zip | zip:c/inner.gz > gzip",
      ...(xzRaw ? [] : ["share/data.xz | xz"]),
      "share/data.zst | zstd",
      "share/doc.gz | gzip",
    ].sort(),
  );
  assert.deepEqual(
    left.unscanned.map((u) => `${u.path} | ${u.member.join(" > ")}`),
    xzRaw ? ["share/data.xz | xz"] : [],
  );
  if (xzRaw) assert.match(left.unscanned[0]!.reason, /cannot decompress the xz data/);
  // The stored zip member was rewritten in place: its CRC no longer matches, which the scan reports.
  assert.equal(left.damaged.length, 1);
  assert.equal(left.damaged[0]!.member.join(" > "), "zip:b/stored.bin");
  assert.match(left.damaged[0]!.reason, /CRC-32 mismatch/);
});

test("members over the cap, corrupt data and nesting past the depth limit are reported as not checked", async (t) => {
  if (!needTools(t, "gzip", "xz", "python3")) return;
  const root = tempDir("cpr-residue-");
  const d = join(root, "t");
  mkdirSync(d);
  const big = Buffer.concat([Buffer.alloc(200_000, 0x61), Buffer.from(OLD)]);
  writeFileSync(join(d, "big.xz"), run("xz", ["-c"], big));
  const gz = run("gzip", ["-c", "-n"], text(OLD, "broken"));
  writeFileSync(join(d, "broken.gz"), Buffer.concat([gz.subarray(0, 12), Buffer.alloc(20, 0xff)]));
  writeFileSync(join(d, "nested.gz"), run("gzip", ["-c", "-n"], run("gzip", ["-c", "-n"], text(OLD, "twice"))));
  const nar = (await narBytes(d)).bytes;
  const report = await scanResidue(Readable.from([nar]), [OLD_HASH], { maxDecompressed: 100_000, maxDepth: 1 });
  assert.deepEqual(report.hits, []);
  const why = new Map(report.unscanned.map((u) => [`${u.path} | ${u.member.join(" > ")}`, u.reason]));
  assert.match(why.get("big.xz | xz") ?? "", /decompresses to more than 100000 bytes/);
  assert.match(why.get("broken.gz | gzip") ?? "", /cannot decompress the gzip data/);
  assert.match(why.get("nested.gz | gzip") ?? "", /gzip data nested deeper than 1 levels/);
  // With room, the same NAR is fully checked and the hits found.
  const roomy = await scanResidue(Readable.from([nar]), [OLD_HASH]);
  assert.deepEqual(roomy.hits.map((h) => `${h.path} | ${h.member.join(" > ")}`).sort(), ["big.xz | xz", "nested.gz | gzip > gzip"]);
  assert.deepEqual(
    roomy.unscanned.map((u) => u.path),
    ["broken.gz"],
  );
});

test("the scan refuses what is not a hash part, and a NAR that is not one", async () => {
  await assert.rejects(scanResidue(Readable.from([Buffer.from("x")]), ["not-a-hash"]), /invalid hash part/);
  await assert.rejects(scanResidue(Readable.from([Buffer.from("not a nar at all")]), [OLD_HASH]), /invalid NAR/);
});
