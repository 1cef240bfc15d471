/**
 * `cpr outdated` on real git sets: patch, minor and major updates of direct and transitive atoms; a yanked version
 * is never proposed, and a locked one that is yanked is marked with its reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCpr } from "../support/cli.js";
import { makeRepo, tempDir } from "../support/repo.js";
import { isolatedEnv, makeProject, makeSet, publishMore } from "../resolve/fixture.js";

interface Row {
  label: string;
  direct: boolean;
  requirements: string[];
  locked: string;
  compatible: string | null;
  latest: string | null;
  yanked: { reason: string | null } | null;
}

test("cpr outdated: locked, compatible and latest for direct and transitive atoms; yanked versions", () => {
  const low = join(tempDir("cpr-sets-"), "low");
  const withD = { sets: { low }, deps: { low: { d: "^2.0" } } };
  makeSet(low, { a: { "1.0.0": withD }, b: { "0.1.0": {} }, c: { "1.0.0": {} }, d: { "2.0.0": {} } }, "low");
  const dir = makeProject({ sets: { low }, deps: { low: { a: "^1", b: "^0.1", c: "^1" } } });
  const env = isolatedEnv();
  assert.equal(runCpr(["resolve"], { cwd: dir, env }).code, 0);
  const none = runCpr(["outdated"], { cwd: dir, env });
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /0 of 4 locked atom\(s\) outdated or yanked; 4 up to date/);

  publishMore(low, { a: { "1.1.0": withD }, b: { "0.1.1": {} }, c: { "2.0.0": {} }, d: { "2.0.1": {}, "3.0.0": {}, "3.1.0-rc.1": {} } });
  const j = runCpr(["outdated", "--json"], { cwd: dir, env });
  assert.equal(j.code, 0, j.stderr);
  const rows = (JSON.parse(j.stdout) as { atoms: Row[] }).atoms;
  assert.deepEqual(
    rows.map((r) => [r.label, r.direct, r.requirements, r.locked, r.compatible, r.latest, r.yanked]),
    [
      ["a", true, ["^1"], "1.0.0", "1.1.0", "1.1.0", null],
      ["b", true, ["^0.1"], "0.1.0", "0.1.1", "0.1.1", null],
      ["c", true, ["^1"], "1.0.0", "1.0.0", "2.0.0", null],
      ["d", false, ["^2.0"], "2.0.0", "2.0.1", "3.0.0", null],
    ],
  );
  const human = runCpr(["outdated"], { cwd: dir, env });
  assert.equal(
    human.stdout,
    [
      "LABEL  LOCKED  COMPATIBLE  LATEST  KIND",
      "a      1.0.0   1.1.0       1.1.0   direct",
      "b      0.1.0   0.1.1       0.1.1   direct",
      "c      1.0.0   1.0.0       2.0.0   direct",
      "d      2.0.0   2.0.1       3.0.0   transitive",
      "",
    ].join("\n"),
  );

  // Yanked: b 0.1.1 is never proposed; the locked b 0.1.0 yanked too is marked with the reason.
  const work = makeRepo({ README: "clone\n" });
  assert.equal(runCpr(["yank", "b@0.1.1", "--reason", "bad", "--remote", low], { cwd: work, env }).code, 0);
  assert.equal(runCpr(["yank", "b@0.1.0", "--reason", "leaks memory\nuse 0.2", "--remote", low], { cwd: work, env }).code, 0);
  const y = runCpr(["outdated", "--json"], { cwd: dir, env });
  const b = (JSON.parse(y.stdout) as { atoms: Row[] }).atoms.find((r) => r.label === "b")!;
  assert.deepEqual([b.compatible, b.latest, b.yanked], [null, null, { reason: "leaks memory\nuse 0.2" }]);
  const yh = runCpr(["outdated"], { cwd: dir, env: { ...env, NO_COLOR: "1" } });
  assert.match(yh.stdout, /^b +0\.1\.0 +- +- +direct  yanked: leaks memory …$/m);

  // No lock: an error saying so.
  const bare = makeProject({ sets: { low }, deps: { low: { a: "^1" } } });
  const nolock = runCpr(["outdated"], { cwd: bare, env });
  assert.equal(nolock.code, 1);
  assert.match(nolock.stderr, /has no atom\.lock/);
});
