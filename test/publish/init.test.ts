import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { atomToml, commitAll, gitIn, makeBare, makeRepo, refsOf, writeFiles } from "../support/repo.js";
import { initTo, refMap } from "./fixture.js";

test("init: fresh remote gets refs/ekala/init = root (a direct ref), locally too; no commit, no ekala.toml", async () => {
  const dir = makeRepo({ "a/atom.toml": atomToml("a", "0.1.0") });
  const root = gitIn(dir, "rev-parse", "HEAD");
  writeFiles(dir, { "b.txt": "b\n" });
  const head = commitAll(dir, "second");
  const bare = makeBare();
  const r = await initTo(dir, bare);
  assert.deepEqual(r, { root, remote: bare, status: "initialized" });
  assert.equal(refsOf(bare), `${root} refs/ekala/init`);
  assert.equal(gitIn(bare, "cat-file", "-t", "refs/ekala/init"), "commit");
  assert.equal(refMap(dir).get("refs/ekala/init"), root);
  assert.equal(gitIn(dir, "rev-parse", "HEAD"), head);
  assert.equal(existsSync(join(dir, "ekala.toml")), false);
  assert.equal(gitIn(dir, "status", "--porcelain"), "");
});

test("init: an initialized remote with the same root is 'already'; another root is an error naming both", async () => {
  const dir = makeRepo({ "a/atom.toml": atomToml("a", "0.1.0") });
  const bare = makeBare();
  await initTo(dir, bare);
  const clone = makeRepo({ "a/atom.toml": atomToml("a", "0.1.0") });
  assert.equal((await initTo(clone, bare)).status, "already");
  const other = makeRepo({ "other.txt": "x\n" });
  const before = refsOf(bare);
  const otherRoot = gitIn(other, "rev-parse", "HEAD");
  const localBefore = refsOf(other);
  await assert.rejects(initTo(other, bare), (e: unknown) => {
    return (
      e instanceof CprError &&
      e.code === "init.root-mismatch" &&
      e.message.includes(otherRoot) &&
      e.message.includes(gitIn(dir, "rev-parse", "HEAD"))
    );
  });
  assert.equal(refsOf(bare), before);
  assert.equal(refsOf(other), localBefore, "no local marker written for a refused init");
});

test("init: a stale local refs/ekala/init is an error with a hint, and nothing is pushed", async () => {
  const dir = makeRepo({ "a/atom.toml": atomToml("a", "0.1.0") });
  writeFiles(dir, { "b.txt": "b\n" });
  const head = commitAll(dir, "second");
  gitIn(dir, "update-ref", "refs/ekala/init", head);
  const bare = makeBare();
  await assert.rejects(
    initTo(dir, bare),
    (e: unknown) => e instanceof CprError && e.code === "init.local-conflict" && /update-ref -d/.test(e.hint ?? ""),
  );
  assert.equal(refsOf(bare), "");
});
