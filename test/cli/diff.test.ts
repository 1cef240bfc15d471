/**
 * `cpr diff` and the summary `cpr update` prints, on real git sets: a graph with patch, minor and major updates
 * published after the lock was committed; origin ranges read from the meta refs; a reversed diff is a downgrade;
 * REV:PATH and the defaults (HEAD:./atom.lock against ./atom.lock).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { copyFileSync } from "node:fs";
import { runCpr } from "../support/cli.js";
import { commitAll, gitIn, tempDir } from "../support/repo.js";
import { isolatedEnv, makeProject, makeSet, publishMore } from "../resolve/fixture.js";

test("cpr diff and cpr update name versions, sizes and origin ranges", () => {
  const low = join(tempDir("cpr-sets-"), "low");
  makeSet(low, { a: { "1.0.0": {} }, b: { "0.1.0": {} }, c: { "1.0.0": {} } }, "low");
  const dir = makeProject({ sets: { low }, deps: { low: { a: "^1", b: "^0.1", c: "^1" } } });
  const env = isolatedEnv();
  const first = runCpr(["resolve"], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^\+ a 1\.0\.0$/m);
  commitAll(dirname(dir), "lock");

  // Nothing changed yet: the committed lock and the working one are the same.
  const same = runCpr(["diff"], { cwd: dir, env });
  assert.equal(same.code, 0, same.stderr);
  assert.equal(same.stdout, "");
  assert.match(same.stderr, /no changes/);

  // A patch of b, a minor of a (from another origin commit) and a major of c (not allowed by ^1).
  publishMore(low, { a: { "1.1.0": {} }, b: { "0.1.1": {} }, c: { "2.0.0": {} } });
  const newOrigin = gitIn(low, "commit-tree", gitIn(low, "rev-parse", "HEAD^{tree}"), "-p", "HEAD", "-m", "work on a");
  gitIn(low, "update-ref", "refs/eka/meta/a/1.1.0/origin", newOrigin);
  const oldOrigin = gitIn(low, "rev-parse", "refs/eka/meta/a/1.0.0/origin");

  const up = runCpr(["update"], { cwd: dir, env });
  assert.equal(up.code, 0, up.stderr);
  assert.match(
    up.stdout,
    new RegExp(`^~ a 1\\.0\\.0 -> 1\\.1\\.0  upgraded \\(minor\\)  origin ${oldOrigin.slice(0, 12)}\\.\\.${newOrigin.slice(0, 12)}$`, "m"),
  );
  assert.match(up.stdout, /^~ b 0\.1\.0 -> 0\.1\.1  upgraded \(patch\)/m);
  assert.doesNotMatch(up.stdout, /^~ c /m, "c's major is not allowed by ^1");

  const d = runCpr(["diff", "--json"], { cwd: dir, env });
  assert.equal(d.code, 0, d.stderr);
  const doc = JSON.parse(d.stdout) as {
    old: string;
    new: string;
    atoms: { change: string; label: string; from: string; to: string; size: string; origins: { from: string; to: string } | null }[];
    direct: unknown[];
  };
  assert.equal(doc.old, "HEAD:./atom.lock");
  assert.deepEqual(
    doc.atoms.map((a) => [a.change, a.label, a.from, a.to, a.size]),
    [
      ["upgraded", "a", "1.0.0", "1.1.0", "minor"],
      ["upgraded", "b", "0.1.0", "0.1.1", "patch"],
    ],
  );
  assert.deepEqual(doc.atoms[0]!.origins, { from: oldOrigin, to: newOrigin });
  assert.deepEqual(doc.direct, []);

  // The other way round (a file against a committed lock): downgrades. --offline lists no origins.
  const saved = join(tempDir("cpr-lock-"), "new.lock");
  copyFileSync(join(dir, "atom.lock"), saved);
  const back = runCpr(["diff", saved, "HEAD:./atom.lock", "--offline"], { cwd: dir, env });
  assert.equal(back.code, 0, back.stderr);
  assert.equal(back.stdout, "~ a 1.1.0 -> 1.0.0  downgraded (minor)\n~ b 0.1.1 -> 0.1.0  downgraded (patch)\n");
  assert.match(back.stderr, /2 downgraded/);

  // A lock that is not there at that revision is an error naming it.
  const missing = runCpr(["diff", "HEAD:./nothing.lock"], { cwd: dir, env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read HEAD:\.\/nothing\.lock/);
});
