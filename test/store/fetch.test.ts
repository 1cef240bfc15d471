import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fetchAtom, fetchLock, exactVersion, hostOf } from "../../src/store/fetch.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { parseRequirement } from "../../src/protocol/requirement.js";
import { atomId } from "../../src/protocol/id.js";
import type { Lockfile, LockAtom } from "../../src/protocol/lock.js";
import { gitIn, tempDir } from "../support/repo.js";
import { allObjects, copyBare, env, newCache, publishedSet, setRef } from "./fixture.js";

test("exactVersion and hostOf", () => {
  assert.equal(exactVersion(parseRequirement("=1.2.3")), "1.2.3");
  assert.equal(exactVersion(parseRequirement("=1.2")), null);
  assert.equal(exactVersion(parseRequirement("^1.2.3")), null);
  assert.equal(hostOf("https://u@example.org:8443/x"), "example.org");
  assert.equal(hostOf("git@example.org:o/r"), "example.org");
  assert.equal(hostOf("/srv/x.git"), "local");
  assert.equal(hostOf("file:///srv/x.git"), "local");
});

test("fetch: exactly the atom commit, read-only at <cache>/atoms/<id>/<version>-<rev>; a pinned re-fetch needs no network", async () => {
  const set = await publishedSet();
  const cache = await newCache();
  try {
    const ctx = { cache, cwd: set.work, env };
    const a = await fetchAtom(ctx, parseAtomUri(`${set.remote}::a@^0.1`));
    assert.equal(a.version, "0.1.0"); // ^0.1 excludes 0.2.0
    const latest = await fetchAtom(ctx, parseAtomUri(`${set.remote}::a`));
    assert.equal(latest.version, "0.2.0");
    assert.equal(latest.rev, set.revs["a@0.2.0"]);
    assert.equal(latest.id, atomId(set.root, "a"));
    assert.equal(latest.path, join(cache.dir, "atoms", latest.id, `0.2.0-${latest.rev}`));
    assert.equal(readFileSync(join(latest.path, "default.nix"), "utf8"), "{ a = 2; }\n");
    assert.equal(readFileSync(join(latest.path, "sub/x.nix"), "utf8"), "x\n");
    assert.equal(statSync(join(latest.path, "default.nix")).mode & 0o222, 0, "files are read-only");
    assert.equal(statSync(join(latest.path, "sub/x.nix")).mode & 0o111, 0o111, "executable bit kept");
    assert.equal(readlinkSync(join(latest.path, "link.nix")), "default.nix");
    assert.equal(statSync(latest.path).mode & 0o222, 0, "directories are read-only");
    assert.equal(latest.cached, false);

    // Only the atoms: no origin history, no other atom, no tag, nothing shallow.
    const revs = gitIn(cache.gitDir, "rev-list", "--all").split("\n").sort();
    assert.deepEqual(revs, [set.revs["a@0.1.0"], set.revs["a@0.2.0"]].sort());
    const objects = allObjects(cache.gitDir);
    assert.equal(objects.filter((o) => o.endsWith(" commit")).length, 2);
    assert.ok(!objects.some((o) => o.endsWith(" tag")));
    const treeObjects = (rev: string) =>
      gitIn(set.remote, "rev-list", "--objects", rev)
        .split("\n")
        .map((l) => l.split(" ")[0]!);
    const expected = new Set([...treeObjects(set.revs["a@0.1.0"]!), ...treeObjects(set.revs["a@0.2.0"]!)]);
    assert.deepEqual(new Set(objects.map((o) => o.split(" ")[0]!)), expected, "the cache holds exactly the two atoms' objects");
    assert.ok(!existsSync(join(cache.gitDir, "shallow")));

    // Exact version already fetched: no network (the remote is gone).
    renameSync(set.remote, `${set.remote}.gone`);
    const again = await fetchAtom(ctx, parseAtomUri(`${set.remote}::a@=0.2.0`));
    assert.equal(again.cached, true);
    assert.equal(again.path, latest.path);
    const out = join(tempDir(), "out");
    const copy = await fetchAtom(ctx, parseAtomUri(`${set.remote}::a@=0.1.0`), out);
    assert.equal(copy.cached, true);
    assert.equal(readFileSync(join(out, "default.nix"), "utf8"), "{ a = 1; }\n");
    await assert.rejects(
      fetchAtom(ctx, parseAtomUri(`${set.remote}::a@=0.1.0`), out),
      /already exists; cpr fetch --out does not overwrite/,
    );
    await assert.rejects(fetchAtom(ctx, parseAtomUri(`${set.remote}::a@^0.2`)), /git-upload-pack|not|unreachable|does not exist|No such/i);
    renameSync(`${set.remote}.gone`, set.remote);
    await assert.rejects(
      fetchAtom(ctx, parseAtomUri(`${set.remote}::a@^3`)),
      /no version of 'a' .* satisfies \^3 \(published: 0\.1\.0, 0\.2\.0\)/,
    );
    await assert.rejects(fetchAtom(ctx, parseAtomUri(`${set.remote}::zzz`)), /has no published atom 'zzz'/);
  } finally {
    cache.close();
  }
});

test("fetch: a ref that moved between listing and fetch, or that names another atom, is refused", async () => {
  const set = await publishedSet();
  const moved = copyBare(set.remote);
  setRef(moved, "refs/eka/atoms/a/0.2.0", set.revs["a@0.1.0"]!);
  const cache = await newCache();
  try {
    await assert.rejects(
      fetchAtom({ cache, cwd: set.work, env }, parseAtomUri(`${moved}::a@=0.2.0`)),
      /is not the atom commit of a 0\.2\.0/,
    );
  } finally {
    cache.close();
  }
});

function lockOf(
  set: { root: string; revs: Record<string, string> },
  mirrors: string[],
  atoms: [string, string][],
  revOverride: Record<string, string> = {},
): Lockfile {
  const deps = atoms.map(([label, version]): { type: "atom" } & LockAtom => ({
    type: "atom",
    label,
    version,
    set: set.root,
    rev: revOverride[`${label}@${version}`] ?? set.revs[`${label}@${version}`]!,
    mirror: mirrors[0] ?? null,
    id: atomId(set.root, label),
  }));
  return { version: 1, sets: { [set.root]: { tag: "s", mirrors: ["::", ...mirrors] } }, locker: null, compose: { use: "static" }, deps };
}

test("fetch --lock: every atom, each mirror in turn, revs checked against the lock, then no network", async () => {
  const set = await publishedSet();
  const cache = await newCache();
  try {
    const ctx = { cache, cwd: set.work, env };
    const missing = join(tempDir(), "missing.git");
    const lock = lockOf(
      set,
      [missing, set.remote],
      [
        ["a", "0.1.0"],
        ["a", "0.2.0"],
        ["b", "2.0.0"],
      ],
    );
    const r = await fetchLock(ctx, lock, { perHost: 2 });
    assert.deepEqual(r.failed, []);
    assert.deepEqual(
      r.fetched.map((f) => [f.label, f.version, f.rev, f.cached]),
      [
        ["a", "0.1.0", set.revs["a@0.1.0"], false],
        ["a", "0.2.0", set.revs["a@0.2.0"], false],
        ["b", "2.0.0", set.revs["b@2.0.0"], false],
      ],
    );
    assert.ok(r.warnings.length === 3 && r.warnings.every((w) => w.includes(missing)), r.warnings.join("\n"));
    for (const f of r.fetched) assert.ok(existsSync(join(f.path, "atom.toml")));
    // Second run: no network at all (no mirror reachable).
    const offline = lockOf(
      set,
      [missing],
      [
        ["a", "0.1.0"],
        ["a", "0.2.0"],
        ["b", "2.0.0"],
      ],
    );
    const again = await fetchLock(ctx, offline);
    assert.deepEqual(again.failed, []);
    assert.ok(again.fetched.every((f) => f.cached));
  } finally {
    cache.close();
  }
});

test("fetch --lock: a mirror whose rev differs from the lock fails the atom with both ids", async () => {
  const set = await publishedSet();
  const cache = await newCache();
  try {
    const lock = lockOf(
      set,
      [set.remote],
      [
        ["a", "0.2.0"],
        ["b", "2.0.0"],
      ],
      { "a@0.2.0": set.revs["a@0.1.0"]! },
    );
    const r = await fetchLock({ cache, cwd: set.work, env }, lock);
    assert.deepEqual(
      r.fetched.map((f) => f.label),
      ["b"],
    );
    assert.equal(r.failed.length, 1);
    assert.match(
      r.failed[0]!.error,
      new RegExp(`refs/eka/atoms/a/0\\.2\\.0 = ${set.revs["a@0.2.0"]}, but ${set.revs["a@0.1.0"]} was expected`),
    );
  } finally {
    cache.close();
  }
});

test("fetch --out with --lock writes DIR/<label>, writable", async () => {
  const set = await publishedSet();
  const cache = await newCache();
  try {
    const out = join(tempDir(), "deps");
    const r = await fetchLock({ cache, cwd: set.work, env }, lockOf(set, [set.remote], [["b", "2.0.0"]]), { out });
    assert.deepEqual(r.failed, []);
    assert.equal(readFileSync(join(out, "b", "y.nix"), "utf8"), "{ }\n");
    writeFileSync(join(out, "b", "y.nix"), "changed");
  } finally {
    cache.close();
  }
});
