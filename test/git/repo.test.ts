import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Repo, parsePushPorcelain } from "../../src/git/repo.js";
import { atomCommitBody, atomCommitId } from "../../src/protocol/commit.js";
import { CprError } from "../../src/protocol/errors.js";
import { GIT_TEST_ENV, atomToml, gitIn, makeBare, makeRepo, refsOf } from "../support/repo.js";

const files = { "a/atom.toml": atomToml("a", "0.1.0"), "a/src/x.nix": "{}\n", "b c/atom.toml": atomToml("b", "1.0.0"), README: "hi\n" };

async function withRepo<T>(dir: string, fn: (repo: Repo) => Promise<T>): Promise<T> {
  const repo = await Repo.open(dir, { repo: "user" });
  try {
    return await fn(repo);
  } finally {
    repo.close();
  }
}

test("open: work tree, git dir, shallow flag and object format, from a subdirectory too", async () => {
  const dir = makeRepo(files);
  await withRepo(join(dir, "a"), async (repo) => {
    assert.equal(repo.workTree, dir);
    assert.equal(repo.gitDir, join(dir, ".git"));
    assert.equal(repo.shallow, false);
    assert.equal(repo.objectFormat, "sha1");
    assert.equal(repo.repoRelative("src", join(dir, "a")), "a/src");
    assert.equal(repo.repoRelative("/elsewhere", dir), null);
  });
  const bare = makeBare({ objectFormat: "sha256" });
  await withRepo(bare, async (repo) => {
    assert.equal(repo.workTree, null);
    assert.equal(repo.objectFormat, "sha256");
    assert.equal(repo.zeroOid, "0".repeat(64));
  });
  await assert.rejects(Repo.open("/", { repo: "user" }), (e: unknown) => e instanceof CprError && e.code === "repo.not-found");
});

test("cat-file --batch reader: ids, <rev>:<path>, missing objects, many pipelined reads", async () => {
  const dir = makeRepo(files);
  await withRepo(dir, async (repo) => {
    const blob = await repo.readObject("HEAD:a/atom.toml");
    assert.equal(blob?.type, "blob");
    assert.equal(blob?.data.toString(), atomToml("a", "0.1.0"));
    assert.equal(blob?.oid, gitIn(dir, "rev-parse", "HEAD:a/atom.toml"));
    assert.equal((await repo.readObject("HEAD:b c"))?.type, "tree");
    assert.equal(await repo.readObject("HEAD:nope"), null);
    assert.equal(await repo.readObject("f".repeat(40)), null);
    const specs = Array.from({ length: 500 }, (_, i) => (i % 2 ? "HEAD:README" : "HEAD:missing"));
    const all = await repo.readObjects(specs);
    assert.deepEqual(
      all.map((o) => o?.data.toString() ?? null),
      specs.map((s) => (s === "HEAD:README" ? "hi\n" : null)),
    );
    await assert.rejects(repo.readObject("a\nb"), CprError);
  });
});

test("listTree lists trees and blobs recursively, paths with spaces intact", async () => {
  const dir = makeRepo(files);
  await withRepo(dir, async (repo) => {
    const entries = await repo.listTree(await repo.resolveCommit("HEAD"));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.get("b c")?.type, "tree");
    assert.equal(byPath.get("b c")?.oid, gitIn(dir, "rev-parse", "HEAD:b c"));
    assert.equal(byPath.get("a/src/x.nix")?.type, "blob");
    assert.equal(byPath.get("a/src")?.type, "tree");
  });
});

test("writeObjects writes commits in one process, returns the computed ids, skips existing ones", async () => {
  const dir = makeRepo(files);
  await withRepo(dir, async (repo) => {
    const origin = await repo.resolveCommit("HEAD");
    const inputs = ["a", "b c"].map((p, i) => ({ tree: gitIn(dir, "rev-parse", `HEAD:${p}`), origin, label: `l${i}`, version: "0.1.0" }));
    const ids = inputs.map(atomCommitId);
    assert.deepEqual(await repo.writeObjects("commit", inputs.map(atomCommitBody), ids), ids);
    assert.equal(gitIn(dir, "cat-file", "-t", ids[0]!), "commit");
    // Again: nothing to write, same answer.
    assert.deepEqual(await repo.writeObjects("commit", inputs.map(atomCommitBody), ids), ids);
    gitIn(dir, "fsck", "--strict", "--no-dangling");
  });
});

for (const objectFormat of ["sha1", "sha256"] as const) {
  test(`writeObjects (${objectFormat}): many objects go in as ONE pack through index-pack --strict, duplicates once`, async () => {
    const dir = makeRepo(files, { objectFormat });
    await withRepo(dir, async (repo) => {
      const origin = await repo.resolveCommit("HEAD");
      const tree = gitIn(dir, "rev-parse", "HEAD:a");
      const bodies = Array.from({ length: 300 }, (_, i) => atomCommitBody({ tree, origin, label: `l${i}`, version: "0.1.0" }));
      bodies.push(bodies[0]!);
      const ids = await repo.writeObjects("commit", bodies);
      assert.equal(ids.length, 301);
      assert.equal(ids[300], ids[0]);
      assert.equal(ids[7], atomCommitId({ tree, origin, label: "l7", version: "0.1.0" }));
      const counts = new Map(
        gitIn(dir, "count-objects", "-v")
          .split("\n")
          .map((l) => l.split(": ") as [string, string]),
      );
      assert.equal(counts.get("packs"), "1");
      assert.equal(counts.get("in-pack"), "300");
      assert.equal(
        gitIn(dir, "cat-file", "commit", ids[299]!),
        atomCommitBody({ tree, origin, label: "l299", version: "0.1.0" }).toString(),
      );
      gitIn(dir, "fsck", "--strict", "--no-dangling");
    });
  });
}

test("updateRefs: one transaction, same value is fine, another value names the ref and writes nothing", async () => {
  const dir = makeRepo(files);
  await withRepo(dir, async (repo) => {
    const head = await repo.resolveCommit("HEAD");
    const tree = gitIn(dir, "rev-parse", "HEAD^{tree}");
    assert.equal((await repo.updateRefs([{ ref: "refs/eka/x", oid: head }])).length, 1);
    assert.equal((await repo.updateRefs([{ ref: "refs/eka/x", oid: head }])).length, 0);
    const before = refsOf(dir);
    await assert.rejects(
      repo.updateRefs([
        { ref: "refs/eka/y", oid: head },
        { ref: "refs/eka/x", oid: tree },
      ]),
      (e: unknown) => e instanceof CprError && e.code === "ref.conflict" && e.message.includes("refs/eka/x"),
    );
    assert.equal(refsOf(dir), before);
    // An invalid ref name fails the whole transaction.
    await assert.rejects(
      repo.updateRefs([
        { ref: "refs/eka/z", oid: head },
        { ref: "refs/eka/bad.lock", oid: head },
      ]),
      CprError,
    );
    assert.equal(refsOf(dir), before);
  });
});

test("push: atomic, per-ref porcelain results; a rejection lands nothing", async () => {
  const dir = makeRepo(files);
  const bare = makeBare();
  await withRepo(dir, async (repo) => {
    const head = await repo.resolveCommit("HEAD");
    const blob = gitIn(dir, "rev-parse", "HEAD:README");
    const ok = await repo.push(bare, [
      { ref: "refs/eka/meta/a/0.1.0/origin", oid: head },
      { ref: "refs/eka/meta/a/0.1.0/manifest", oid: blob },
    ]);
    assert.equal(ok.ok, true);
    assert.deepEqual(
      ok.refs.map((r) => r.status),
      ["new", "new"],
    );
    const before = refsOf(bare);
    const bad = await repo.push(bare, [
      { ref: "refs/eka/meta/b/0.1.0/origin", oid: head },
      { ref: "refs/eka/meta/a/0.1.0/origin", oid: blob },
    ]);
    assert.equal(bad.ok, false);
    assert.equal(bad.refs[0]!.reason, "atomic push failed");
    assert.equal(bad.refs[1]!.status, "rejected");
    assert.equal(refsOf(bare), before);
    const unreachable = await repo.push(join(bare, "nope"), [{ ref: "refs/eka/x", oid: head }]);
    assert.equal(unreachable.ok, false);
    assert.match(unreachable.error ?? "", /nope/);
  });
});

test("fetchObjects returns remote objects and writes nothing locally (quarantine)", async () => {
  const src = makeRepo({ "x/atom.toml": atomToml("x", "1.0.0") });
  const bare = makeBare();
  gitIn(src, "push", "-q", bare, "HEAD:refs/eka/atoms/x/1.0.0");
  const other = makeRepo({ y: "y\n" });
  await withRepo(other, async (repo) => {
    const want = gitIn(src, "rev-parse", "HEAD");
    assert.equal(await repo.readObject(want), null);
    const before = refsOf(other);
    const objectsBefore = gitIn(other, "count-objects", "-v");
    const got = await repo.fetchObjects(bare, ["refs/eka/atoms/x/1.0.0"], [want, "f".repeat(40)]);
    assert.deepEqual([...got.keys()], [want]);
    assert.equal(got.get(want)?.type, "commit");
    assert.equal(await repo.readObject(want), null);
    assert.equal(refsOf(other), before);
    assert.equal(gitIn(other, "count-objects", "-v"), objectsBefore);
  });
});

test("open: a user repository named by relative GIT_DIR and GIT_WORK_TREE stays the same repository for every later command", async () => {
  const dir = makeRepo(files);
  // From a subdirectory, as a hook that changed directory would: both names are relative to it.
  const repo = await Repo.open(join(dir, "a", "src"), {
    env: { ...process.env, GIT_DIR: "../../.git", GIT_WORK_TREE: "../.." },
    repo: "user",
  });
  try {
    assert.equal(repo.gitDir, join(dir, ".git"));
    assert.equal(repo.workTree, dir);
    // Later commands run at the top of the work tree, where the relative names would point elsewhere.
    assert.equal(await repo.resolveCommit("HEAD"), gitIn(dir, "rev-parse", "HEAD"));
    assert.ok((await repo.listTree("HEAD")).some((e) => e.path === "a/atom.toml"));
  } finally {
    repo.close();
  }
});

test("open: a repository cpr owns ignores GIT_DIR, GIT_OBJECT_DIRECTORY… naming the user's repository", async () => {
  const user = makeRepo(files);
  const own = makeBare();
  const env = {
    ...process.env,
    GIT_DIR: join(user, ".git"),
    GIT_OBJECT_DIRECTORY: join(user, ".git", "objects"),
    GIT_INDEX_FILE: join(user, ".git", "index"),
  };
  const repo = await Repo.open(own, { env, repo: "cpr" });
  try {
    assert.equal(repo.gitDir, own);
    assert.equal(await repo.readObject(gitIn(user, "rev-parse", "HEAD")), null);
    await repo.updateRefs([{ ref: "refs/cpr/keep/x", oid: (await repo.writeObjects("tree", [Buffer.alloc(0)]))[0]! }]);
    assert.match(refsOf(own), /refs\/cpr\/keep\/x$/);
    assert.doesNotMatch(refsOf(user), /refs\/cpr\//);
  } finally {
    repo.close();
  }
});

test("push from a user repository whose new objects are in a quarantine (GIT_OBJECT_DIRECTORY + GIT_ALTERNATE_OBJECT_DIRECTORIES)", async () => {
  const dir = makeRepo(files);
  const bare = makeBare();
  const objects = join(dir, ".git", "objects");
  const quarantine = join(objects, "tmp_objdir-incoming-test");
  mkdirSync(quarantine);
  const env = { ...process.env, ...GIT_TEST_ENV, GIT_OBJECT_DIRECTORY: quarantine, GIT_ALTERNATE_OBJECT_DIRECTORIES: objects };
  // A commit that exists only in the quarantine; its tree and blobs only in the repository's own objects.
  const commit = execFileSync("git", ["commit-tree", "-m", "new", "HEAD^{tree}"], { cwd: dir, env, encoding: "utf8" }).trim();
  assert.throws(() => gitIn(dir, "cat-file", "-e", commit));
  const repo = await Repo.open(dir, { env, repo: "user" });
  try {
    const out = await repo.push(bare, [{ ref: "refs/eka/meta/a/0.1.0/origin", oid: commit }]);
    assert.equal(out.ok, true, out.error ?? "");
    assert.equal(gitIn(bare, "rev-parse", "refs/eka/meta/a/0.1.0/origin"), commit);
    gitIn(bare, "fsck", "--strict", "--no-dangling");
  } finally {
    repo.close();
  }
});

test("parsePushPorcelain", () => {
  const out =
    "To /r\n*\tabc:refs/a\t[new reference]\n=\tabc:refs/b\t[up to date]\n!\tabc:refs/c\t[remote rejected] (hook declined)\nDone\n";
  assert.deepEqual(
    parsePushPorcelain(out).map((r) => [r.ref, r.status, r.reason]),
    [
      ["refs/a", "new", null],
      ["refs/b", "up-to-date", null],
      ["refs/c", "remote-rejected", "hook declined"],
    ],
  );
});
