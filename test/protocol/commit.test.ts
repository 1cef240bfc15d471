import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { atomCommitBody, atomCommitId, parseAtomCommit, type AtomCommitInput } from "../../src/protocol/commit.js";
import { gitObjectId } from "../../src/protocol/git-object.js";
import { CprError } from "../../src/protocol/errors.js";
import { gitIn, makeRepo, tempDir, GIT_TEST_ENV } from "../support/repo.js";

const foo: AtomCommitInput = { tree: "1".repeat(40), origin: "2".repeat(40), label: "foo", version: "0.1.0" };
const hiragana: AtomCommitInput = {
  tree: "3".repeat(40),
  origin: "4".repeat(40),
  label: "ひらがな",
  version: "1.0.0-rc.1",
};

test("docs/formats.md §7.2 worked example: exact bytes, 167 bytes, id 610be71f…", () => {
  const body = atomCommitBody(foo);
  const expected =
    "tree 1111111111111111111111111111111111111111\n" +
    "author  <> 0 +0000\n" +
    "committer  <> 0 +0000\n" +
    "origin 2222222222222222222222222222222222222222\n" +
    "format pre1\n" +
    "\n" +
    "publish(foo): 0.1.0";
  assert.equal(body.toString("utf8"), expected);
  assert.equal(body.length, 167);
  assert.notEqual(body[body.length - 1], 0x0a, "no trailing newline");
  assert.equal(atomCommitId(foo), "610be71f78657e829a1e78cc635d58624ae2f791");
});

test("docs/formats.md §7.2 second vector: ひらがな 1.0.0-rc.1, 181 bytes, id 32543cde…", () => {
  const body = atomCommitBody(hiragana);
  assert.equal(body.length, 181);
  assert.ok(body.toString("utf8").endsWith("\n\npublish(ひらがな): 1.0.0-rc.1"));
  assert.equal(atomCommitId(hiragana), "32543cde6668ecaa554b6d9a478d78debba0bfc0");
});

test("atomCommitId infers sha256 from 64-hex ids", () => {
  const input = { ...foo, tree: "a".repeat(64), origin: "b".repeat(64) };
  const id = atomCommitId(input);
  assert.equal(id.length, 64);
  assert.equal(id, gitObjectId("commit", atomCommitBody(input), "sha256"));
});

test("atomCommitBody rejects bad ids, mixed formats and newlines", () => {
  const bad: AtomCommitInput[] = [
    { ...foo, tree: "1".repeat(39) },
    { ...foo, tree: "A".repeat(40) },
    { ...foo, origin: "2".repeat(64) },
    { ...foo, label: "a\nb" },
    { ...foo, version: "" },
  ];
  for (const input of bad) assert.throws(() => atomCommitBody(input), CprError, JSON.stringify(input));
});

test("parseAtomCommit: pre1 round trip is canonical", () => {
  for (const input of [foo, hiragana]) {
    const p = parseAtomCommit(atomCommitBody(input));
    assert.deepEqual(p, {
      tree: input.tree,
      parents: [],
      origin: input.origin,
      path: null,
      format: "pre1",
      legacy: false,
      label: input.label,
      version: input.version,
      canonical: true,
    });
  }
});

test("parseAtomCommit: pre1 with any deviation is not canonical", () => {
  const good = atomCommitBody(foo).toString("utf8");
  const variants = [
    good + "\n", // trailing newline
    good.replace("author  <>", "author <>"), // one space
    good.replace("committer  <> 0 +0000", "committer  <> 1 +0000"),
    good.replace("tree 1111111111111111111111111111111111111111\n", `tree ${"1".repeat(40)}\nparent ${"5".repeat(40)}\n`),
    good.replace("format pre1\n", "format pre1\nencoding UTF-8\n"),
  ];
  for (const v of variants) {
    const p = parseAtomCommit(Buffer.from(v));
    assert.equal(p.format, "pre1", v);
    assert.equal(p.canonical, false, v);
  }
  const withParent = parseAtomCommit(Buffer.from(variants[3]!));
  assert.deepEqual(withParent.parents, ["5".repeat(40)]);
});

test("parseAtomCommit: pre1.0 (path header, `<label>: <version>` message) is legacy", () => {
  const body =
    `tree ${"1".repeat(40)}\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\n` +
    `origin ${"2".repeat(40)}\npath tools/foo\nformat pre1.0\n\nfoo: 0.1.0`;
  const p = parseAtomCommit(Buffer.from(body));
  assert.equal(p.format, "pre1.0");
  assert.equal(p.legacy, true);
  assert.equal(p.canonical, false);
  assert.equal(p.origin, "2".repeat(40));
  assert.equal(p.path, "tools/foo");
  assert.equal(p.label, "foo");
  assert.equal(p.version, "0.1.0");
});

test("parseAtomCommit: format 1 (src + path headers) is legacy with src as origin", () => {
  const body = `tree ${"1".repeat(40)}\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\nsrc ${"2".repeat(40)}\npath foo\n\nfoo: 0.2.0\n`;
  const p = parseAtomCommit(Buffer.from(body));
  assert.equal(p.format, "1");
  assert.equal(p.legacy, true);
  assert.equal(p.origin, "2".repeat(40));
  assert.equal(p.path, "foo");
  assert.equal(p.label, "foo");
  assert.equal(p.version, "0.2.0");
});

test("parseAtomCommit: other formats and ordinary commits are unknown, never a throw", () => {
  const ordinary =
    `tree ${"1".repeat(40)}\nparent ${"2".repeat(40)}\nparent ${"3".repeat(40)}\n` +
    `author A U Thor <a@example.org> 1700000000 +0100\ncommitter C <c@example.org> 1700000000 +0100\n` +
    `gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\nMerge things\n`;
  const p = parseAtomCommit(Buffer.from(ordinary));
  assert.equal(p.format, "unknown");
  assert.equal(p.legacy, true);
  assert.equal(p.origin, null);
  assert.equal(p.label, null);
  assert.equal(p.parents.length, 2);

  const future = atomCommitBody(foo).toString("utf8").replace("format pre1", "format pre2");
  const q = parseAtomCommit(Buffer.from(future));
  assert.equal(q.format, "unknown");
  assert.equal(q.canonical, false);
  assert.equal(q.label, null);

  const noMessage = `tree ${"1".repeat(40)}\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\n`;
  assert.equal(parseAtomCommit(Buffer.from(noMessage)).format, "unknown");
});

test("parseAtomCommit: malformed bodies throw commit.malformed", () => {
  const bad = [
    "",
    "hello\n\nworld",
    `tree ${"1".repeat(40)}\n\nmsg`,
    `tree ${"1".repeat(40)}\ncommitter  <> 0 +0000\nauthor  <> 0 +0000\n\nmsg`,
    `tree xyz\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\n\nmsg`,
    `tree ${"1".repeat(40)}\nparent nope\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\n\nmsg`,
  ];
  for (const b of bad) {
    assert.throws(
      () => parseAtomCommit(Buffer.from(b)),
      (e: unknown) => e instanceof CprError && e.code === "commit.malformed",
      JSON.stringify(b),
    );
  }
});

function gitBytes(cwd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync("git", args, { cwd, input, env: { ...process.env, ...GIT_TEST_ENV } });
}

for (const objectFormat of ["sha1", "sha256"] as const) {
  test(`real git (${objectFormat}): hash-object of our bytes gives our id, cat-file round-trips`, () => {
    const repo = makeRepo({ "tools/ひらがな/atom.toml": "[package]\n", README: "x\n" }, { objectFormat });
    const origin = gitIn(repo, "rev-parse", "HEAD");
    const tree = gitIn(repo, "rev-parse", "HEAD:tools/ひらがな");
    for (const [label, version] of [
      ["foo", "0.1.0"],
      ["ひらがな", "1.0.0-rc.1"],
    ] as const) {
      const input = { tree, origin, label, version };
      const body = atomCommitBody(input);
      const id = gitBytes(repo, ["hash-object", "-t", "commit", "-w", "--stdin"], body).toString("utf8").trim();
      assert.equal(id, atomCommitId(input));
      const back = gitBytes(repo, ["cat-file", "commit", id]);
      assert.ok(back.equals(body), "cat-file returns the exact bytes");
      const parsed = parseAtomCommit(back);
      assert.equal(parsed.canonical, true);
      assert.equal(parsed.tree, tree);
      assert.equal(parsed.origin, origin);
      assert.equal(parsed.label, label);
      // git accepts it as a well-formed commit
      gitBytes(repo, ["fsck", "--strict", "--no-dangling"]);
    }
  });
}

test("real git: the docs/formats.md §7.2 vectors hash the same with git hash-object (no repository objects needed)", () => {
  const dir = tempDir();
  gitIn(dir, "init", "-q");
  for (const [input, id] of [
    [foo, "610be71f78657e829a1e78cc635d58624ae2f791"],
    [hiragana, "32543cde6668ecaa554b6d9a478d78debba0bfc0"],
  ] as const) {
    const out = gitBytes(dir, ["hash-object", "-t", "commit", "--stdin"], atomCommitBody(input)).toString().trim();
    assert.equal(out, id);
  }
});

test("real git: parse an ordinary porcelain commit as unknown", () => {
  const repo = makeRepo({ a: "1\n" });
  const p = parseAtomCommit(gitBytes(repo, ["cat-file", "commit", "HEAD"]));
  assert.equal(p.format, "unknown");
  assert.equal(p.tree, gitIn(repo, "rev-parse", "HEAD^{tree}"));
});
