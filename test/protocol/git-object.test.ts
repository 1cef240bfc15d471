import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  encodeTree,
  gitObjectId,
  hashLength,
  isObjectId,
  objectFormatOf,
  parseTree,
  type ObjectFormat,
  type TreeItem,
} from "../../src/protocol/git-object.js";
import { CprError } from "../../src/protocol/errors.js";
import { GIT_TEST_ENV, gitIn, makeRepo } from "../support/repo.js";

/** git with bytes in and out. */
function gitBytes(cwd: string, args: string[], input?: Uint8Array): Buffer {
  return execFileSync("git", args, { cwd, input, env: { ...process.env, ...GIT_TEST_ENV } });
}

const FORMATS = ["sha1", "sha256"] as const;

/** A repository whose HEAD tree holds a file, an executable, a symlink, a subdirectory and a gitlink. */
function richRepo(objectFormat: ObjectFormat): string {
  const repo = makeRepo(
    { "a.txt": "a\n", "run.sh": "#!/bin/sh\n", "dir/ひらがな.toml": "x = 1\n", "a-b": "", "a.b": "" },
    { objectFormat },
  );
  chmodSync(join(repo, "run.sh"), 0o755);
  symlinkSync("a.txt", join(repo, "link"));
  gitIn(repo, "add", "-A");
  gitIn(repo, "update-index", "--add", "--cacheinfo", `160000,${gitIn(repo, "rev-parse", "HEAD")},sub`);
  gitIn(repo, "commit", "-q", "-m", "more kinds of entries");
  return repo;
}

test("gitObjectId: well-known empty blob and tree ids for sha1 and sha256", () => {
  const empty = new Uint8Array(0);
  assert.equal(gitObjectId("blob", empty), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  assert.equal(gitObjectId("tree", empty), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
  assert.equal(gitObjectId("blob", empty, "sha256"), "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813");
  assert.equal(gitObjectId("tree", empty, "sha256"), "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321");
});

test("object ids: format from length, lowercase hex only", () => {
  assert.equal(objectFormatOf("a".repeat(40)), "sha1");
  assert.equal(objectFormatOf("a".repeat(64)), "sha256");
  assert.equal(hashLength("sha1") * 2, 40);
  assert.equal(hashLength("sha256") * 2, 64);
  for (const bad of ["", "a".repeat(39), "a".repeat(41), "A".repeat(40), "g".repeat(40), "a".repeat(63)]) {
    assert.equal(isObjectId(bad), false, bad);
    assert.throws(
      () => objectFormatOf(bad),
      (e) => e instanceof CprError && e.code === "commit.bad-id" && e.hint !== undefined,
    );
  }
});

for (const format of FORMATS) {
  test(`real git (${format}): blob, tree and commit ids are the ones git hash-object gives`, () => {
    const repo = richRepo(format);
    const blobs = [
      Buffer.alloc(0),
      Buffer.from("hello\n"),
      Buffer.concat([Buffer.from("ひらがな"), Buffer.from([0, 0xff, 0x80])]),
      randomBytes(100_000),
    ];
    for (const body of blobs) {
      const want = gitBytes(repo, ["hash-object", "-t", "blob", "--stdin"], body).toString().trim();
      assert.equal(gitObjectId("blob", body, format), want, `blob of ${body.length} bytes`);
    }
    const tree = gitBytes(repo, ["cat-file", "tree", "HEAD^{tree}"]);
    assert.equal(gitObjectId("tree", tree, format), gitIn(repo, "rev-parse", "HEAD^{tree}"));
    assert.equal(gitObjectId("tree", tree, format), gitBytes(repo, ["hash-object", "-t", "tree", "--stdin"], tree).toString().trim());
    const commit = gitBytes(repo, ["cat-file", "commit", "HEAD"]);
    assert.equal(gitObjectId("commit", commit, format), gitIn(repo, "rev-parse", "HEAD"));
    assert.equal(gitObjectId("commit", commit, format).length, hashLength(format) * 2);
  });

  test(`real git (${format}): parseTree reads a tree as git ls-tree lists it; encodeTree writes it back byte for byte`, () => {
    const repo = richRepo(format);
    const raw = gitBytes(repo, ["cat-file", "tree", "HEAD^{tree}"]);
    const parsed = parseTree(raw, format);
    const listed = gitIn(repo, "-c", "core.quotePath=false", "ls-tree", "HEAD")
      .split("\n")
      .map((line) => {
        const [meta, name] = line.split("\t") as [string, string];
        const [mode, , oid] = meta.split(" ") as [string, string, string];
        return { mode: mode.replace(/^0/, ""), name, oid };
      });
    assert.deepEqual(parsed, listed);
    assert.deepEqual(new Set(parsed.map((e) => e.mode)), new Set(["100644", "100755", "120000", "40000", "160000"]));
    const sub = parsed.find((e) => e.name === "dir")!;
    assert.deepEqual(parseTree(gitBytes(repo, ["cat-file", "tree", sub.oid]), format), [
      { mode: "100644", name: "ひらがな.toml", oid: gitIn(repo, "rev-parse", "HEAD:dir/ひらがな.toml") },
    ]);
    assert.ok(encodeTree([...parsed].reverse(), format).equals(raw));
  });

  test(`real git (${format}): encodeTree sorts entries as git mktree does, a directory as name/`, () => {
    const repo = makeRepo({ x: "x\n" }, { objectFormat: format });
    const oid = (s: string) => gitObjectId("blob", Buffer.from(s), format);
    const dir = gitIn(repo, "rev-parse", "HEAD^{tree}");
    // "a" as a directory sorts after "a-b" and "a.b" ('/' > '-', '.'), before "a0"; uppercase before lowercase; UTF-8 last.
    const entries: TreeItem[] = [
      { mode: "100644", name: "ä", oid: oid("1") },
      { mode: "100644", name: "a0", oid: oid("2") },
      { mode: "40000", name: "a", oid: dir },
      { mode: "100755", name: "a.b", oid: oid("3") },
      { mode: "120000", name: "a-b", oid: oid("4") },
      { mode: "160000", name: "B", oid: gitIn(repo, "rev-parse", "HEAD") },
      { mode: "100644", name: "with space", oid: oid("5") },
    ];
    const typeOf = (mode: string) => (mode === "40000" ? "tree" : mode === "160000" ? "commit" : "blob");
    const input = entries.map((e) => `${e.mode} ${typeOf(e.mode)} ${e.oid}\t${e.name}`).join("\n") + "\n";
    const id = execFileSync("git", ["mktree", "--missing"], { cwd: repo, input }).toString().trim();
    const ours = encodeTree(entries, format);
    assert.equal(gitObjectId("tree", ours, format), id);
    assert.ok(gitBytes(repo, ["cat-file", "tree", id]).equals(ours));
    assert.deepEqual(
      parseTree(ours, format).map((e) => e.name),
      ["B", "a-b", "a.b", "a", "a0", "with space", "ä"],
    );
    assert.equal(gitObjectId("tree", encodeTree([], format), format), gitObjectId("tree", new Uint8Array(0), format));
  });
}

test("encodeTree refuses entries git would not write, naming the entry", () => {
  const oid = "1".repeat(40);
  const bad: TreeItem[][] = [
    [{ mode: "100664", name: "a", oid }],
    [{ mode: "040000", name: "a", oid }],
    [{ mode: "100644", name: "", oid }],
    [{ mode: "100644", name: "a/b", oid }],
    [{ mode: "100644", name: "..", oid }],
    [{ mode: "100644", name: "a\0b", oid }],
    [{ mode: "100644", name: "a", oid: "1".repeat(64) }],
    [{ mode: "100644", name: "a", oid: "A".repeat(40) }],
    [
      { mode: "100644", name: "a", oid },
      { mode: "40000", name: "a", oid },
    ],
  ];
  for (const entries of bad) {
    assert.throws(
      () => encodeTree(entries),
      (e) => e instanceof CprError && e.code === "tree.bad-entry" && e.message.includes(JSON.stringify(entries[entries.length - 1]!.name)),
      JSON.stringify(entries),
    );
  }
  assert.doesNotThrow(() => encodeTree([{ mode: "100644", name: "a", oid: "1".repeat(64) }], "sha256"));
});

test("parseTree refuses bytes that are not tree entries", () => {
  const good = encodeTree([{ mode: "100644", name: "a", oid: "1".repeat(40) }]);
  assert.equal(parseTree(good, "sha1").length, 1);
  const bad = [
    good.subarray(0, good.length - 1), // id cut short
    Buffer.from("100644a\0" + "x".repeat(20), "latin1"), // no space before the name
    Buffer.from(" a\0" + "x".repeat(20), "latin1"), // no mode
    Buffer.from("100644 a", "latin1"), // no NUL
    good, // a sha1 tree read as sha256: the id runs past the end
  ];
  bad.forEach((data, i) => {
    assert.throws(
      () => parseTree(data, i === bad.length - 1 ? "sha256" : "sha1"),
      (e) => e instanceof CprError && e.code === "tree.malformed" && /at byte 0/.test(e.message),
      `case ${i}`,
    );
  });
});
