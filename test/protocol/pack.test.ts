import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomCommitBody } from "../../src/protocol/commit.js";
import { encodeTree, gitObjectId, type ObjectFormat } from "../../src/protocol/git-object.js";
import { encodePack, packIndex, PackError, parsePack, type PackInput } from "../../src/protocol/pack.js";
import { commitAll, GIT_TEST_ENV, gitIn, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";

/** git with bytes in and out. */
function gitBytes(cwd: string, args: string[], input?: Uint8Array): Buffer {
  return execFileSync("git", args, { cwd, input, env: { ...process.env, ...GIT_TEST_ENV }, maxBuffer: 64 << 20 });
}

const FORMATS = ["sha1", "sha256"] as const;

/**
 * A repository whose history holds commits, trees and blobs, the blobs similar from one commit to the next (so that
 * pack-objects makes deltas), and an annotated tag.
 */
function historyRepo(objectFormat: ObjectFormat): string {
  const base = Array.from({ length: 200 }, (_, i) => `line ${i} of a manifest-sized text that repeats itself\n`).join("");
  const repo = makeRepo({ "atom.toml": base, "dir/x.nix": base }, { objectFormat });
  for (let i = 0; i < 5; i++) {
    writeFiles(repo, { "atom.toml": `${base}version ${i}\n`, "dir/x.nix": `# ${i}\n${base}` });
    commitAll(repo, `step ${i}`);
  }
  gitIn(repo, "tag", "-a", "-m", "a tag", "v1");
  return repo;
}

/** Every object reachable from the repository's refs: id → type. */
function objectsOf(repo: string): Map<string, string> {
  const ids = gitIn(repo, "rev-list", "--objects", "--all")
    .split("\n")
    .map((l) => l.split(" ")[0]!);
  const out = gitBytes(repo, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], Buffer.from(ids.join("\n") + "\n"))
    .toString()
    .trim();
  return new Map(out.split("\n").map((l) => l.split(" ") as [string, string]));
}

/** The bodies of objects as git reads them, in one `git cat-file --batch`. */
function catFile(repo: string, oids: readonly string[]): Map<string, Buffer> {
  const out = gitBytes(repo, ["cat-file", "--batch"], Buffer.from(oids.join("\n") + "\n"));
  const bodies = new Map<string, Buffer>();
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf(10, pos);
    const [oid, , size] = out.toString("latin1", pos, nl).split(" ") as [string, string, string];
    bodies.set(oid, out.subarray(nl + 1, nl + 1 + Number(size)));
    pos = nl + 1 + Number(size) + 1;
  }
  return bodies;
}

/** How many objects of a pack git stores as deltas (`git verify-pack -v`: lines with a base id). */
function deltasIn(repo: string, pack: Buffer): number {
  const dir = tempDir("cpr-pack-");
  writeFileSync(join(dir, "p.pack"), pack);
  gitBytes(repo, ["index-pack", join(dir, "p.pack")]);
  const lines = gitBytes(repo, ["verify-pack", "-v", join(dir, "p.idx")])
    .toString()
    .split("\n");
  return lines.filter((l) => /^[0-9a-f]{40,64} +\w+ +\d+ \d+ \d+ \d+ [0-9a-f]{40,64}$/.test(l)).length;
}

for (const format of FORMATS) {
  test(`real git (${format}): packs by git pack-objects, OFS and REF deltas, are read with every id computed`, () => {
    const repo = historyRepo(format);
    const want = objectsOf(repo);
    assert.deepEqual(new Set(want.values()), new Set(["commit", "tree", "blob", "tag"]));
    for (const flags of [["--delta-base-offset"], []]) {
      const pack = gitBytes(repo, ["pack-objects", "--stdout", "--revs", "--all", "--window=10", ...flags], Buffer.alloc(0));
      assert.ok(deltasIn(repo, pack) > 0, `git made deltas (${flags.join(" ") || "REF_DELTA"})`);
      const entries = parsePack(pack, format);
      assert.deepEqual(new Map(entries.map((e) => [e.oid, e.type])), want);
      const bodies = catFile(
        repo,
        entries.map((e) => e.oid),
      );
      for (const e of entries) {
        assert.ok(bodies.get(e.oid)!.equals(e.data), `${e.type} ${e.oid}`);
        assert.equal(gitObjectId(e.type, e.data, format), e.oid);
      }
    }
  });

  test(`real git (${format}): packIndex writes the same bytes as git index-pack`, () => {
    const repo = historyRepo(format);
    const pack = gitBytes(repo, ["pack-objects", "--stdout", "--revs", "--all", "--delta-base-offset"], Buffer.alloc(0));
    const dir = tempDir("cpr-pack-");
    writeFileSync(join(dir, "p.pack"), pack);
    gitBytes(repo, ["index-pack", join(dir, "p.pack")]);
    assert.ok(packIndex(pack, parsePack(pack, format), format).equals(readFileSync(join(dir, "p.idx"))));
  });

  test(`real git (${format}): a pack from encodePack is stored by git index-pack --strict and reads back`, () => {
    const repo = makeRepo({ "atom.toml": "[package]\n" }, { objectFormat: format });
    const origin = gitIn(repo, "rev-parse", "HEAD");
    const obj = (type: PackInput["type"], data: Buffer): PackInput => ({ oid: gitObjectId(type, data, format), type, data });
    const small = obj("blob", Buffer.from("small\n"));
    // 100 kB: a size header of several bytes; random: deflate cannot shrink it.
    const large = obj("blob", randomBytes(100_000));
    const tree = obj(
      "tree",
      encodeTree(
        [
          { mode: "100644", name: "a", oid: small.oid },
          { mode: "100755", name: "b", oid: large.oid },
        ],
        format,
      ),
    );
    const commit = obj("commit", atomCommitBody({ tree: tree.oid, origin, label: "a", version: "0.1.0" }));
    const tag = obj("tag", Buffer.from(`object ${commit.oid}\ntype commit\ntag v0.1.0\ntagger T <t@example.org> 0 +0000\n\nv0.1.0\n`));
    const objects = [small, large, tree, commit, tag, small, commit];
    const pack = encodePack(objects, format);
    assert.equal(pack.readUInt32BE(8), 5, "duplicates dropped");

    gitBytes(repo, ["index-pack", "--strict", "--stdin"], pack);
    const packDir = join(gitIn(repo, "rev-parse", "--absolute-git-dir"), "objects", "pack");
    const idx = readdirSync(packDir).filter((f) => f.endsWith(".idx"));
    assert.equal(idx.length, 1);
    gitBytes(repo, ["verify-pack", join(packDir, idx[0]!)]);
    for (const o of objects) assert.ok(gitBytes(repo, ["cat-file", o.type, o.oid]).equals(o.data), `${o.type} ${o.oid}`);
    gitIn(repo, "update-ref", "refs/tags/v0.1.0", tag.oid);
    gitIn(repo, "fsck", "--strict", "--no-dangling");

    // The reader reads what the writer wrote; a bare repository of the same format takes it too.
    assert.deepEqual(
      parsePack(pack, format).map((e) => [e.oid, e.type, e.data.toString("hex")]),
      [small, large, tree, commit, tag].map((o) => [o.oid, o.type, Buffer.from(o.data).toString("hex")]),
    );
    gitBytes(makeBare({ objectFormat: format }), ["index-pack", "--strict", "--stdin"], pack);
  });
}

test("a damaged pack is refused with PackError", () => {
  const repo = historyRepo("sha1");
  const pack = gitBytes(repo, ["pack-objects", "--stdout", "--revs", "--all", "--delta-base-offset"], Buffer.alloc(0));
  const flipped = Buffer.from(pack);
  flipped[20] = flipped[20]! ^ 0xff;
  const moreObjects = Buffer.from(pack);
  moreObjects.writeUInt32BE(pack.readUInt32BE(8) + 1, 8);
  const cases: Array<[string, Buffer, RegExp]> = [
    ["a flipped byte", flipped, /checksum/],
    ["cut short", pack.subarray(0, pack.length - 5), /checksum/],
    ["no PACK header", Buffer.concat([Buffer.from("KCAP"), pack.subarray(4)]), /not a packfile/],
    ["a count larger than the objects (checksum recomputed)", rehash(moreObjects), /ends after/],
    ["read as sha256", pack, /checksum/],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(
      () => parsePack(bytes, what === "read as sha256" ? "sha256" : "sha1"),
      (e) => e instanceof PackError && message.test(e.message),
      what,
    );
  }
});

/** The same pack with its trailing SHA-1 recomputed. */
function rehash(pack: Buffer): Buffer {
  const body = pack.subarray(0, pack.length - 20);
  return Buffer.concat([body, createHash("sha1").update(body).digest()]);
}
