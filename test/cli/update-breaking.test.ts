/**
 * `cpr update --breaking` on real git sets: requirements move across majors in atom.toml with comments kept, the
 * whole graph is resolved; when another atom holds the old major, it refuses with the conflict and writes nothing;
 * yanked and pre-release versions are not targets.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLock } from "../../src/protocol/lock.js";
import { runCpr } from "../support/cli.js";
import { makeRepo, tempDir } from "../support/repo.js";
import { isolatedEnv, makeProject, makeSet } from "../resolve/fixture.js";

function versions(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock").deps)
    if (d.type === "atom") out[d.label] = d.version;
  return out;
}

test("cpr update --breaking: across majors, comments kept, the whole graph resolved; refused when the graph cannot follow", () => {
  const low = join(tempDir("cpr-sets-"), "low");
  const needsA1 = { sets: { low }, deps: { low: { a: "^1" } } };
  makeSet(
    low,
    {
      a: { "1.0.0": {}, "1.2.0": {}, "2.0.0": {}, "2.1.0": {}, "3.0.0-rc.1": {} },
      b: { "1.0.0": needsA1 },
      c: { "0.1.0": {}, "0.2.0": {} },
    },
    "low",
  );
  const env = isolatedEnv();
  const dir = makeProject({ sets: { low }, deps: { low: { a: "^1", c: "^0.1" } } });
  const file = join(dir, "atom.toml");
  writeFileSync(file, readFileSync(file, "utf8").replace('a = "^1"\n', '# the main dependency\na = "^1" # keep me\n'));
  assert.equal(runCpr(["resolve"], { cwd: dir, env }).code, 0);
  assert.deepEqual(versions(dir), { a: "1.2.0", c: "0.1.0" });

  const one = runCpr(["update", "--breaking", "a"], { cwd: dir, env });
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /^atom\.toml: a \^1 -> \^2\.1\.0$/m);
  assert.match(one.stdout, /^~ a 1\.2\.0 -> 2\.1\.0  upgraded \(major\)/m);
  const manifest = readFileSync(file, "utf8");
  assert.match(
    manifest,
    /# the main dependency\na = "\^2\.1\.0" # keep me\n/,
    "edited in place, comments kept (a pre-release is no target)",
  );
  assert.match(manifest, /c = "\^0\.1"/, "c was not named");
  assert.deepEqual(versions(dir), { a: "2.1.0", c: "0.1.0" });

  // Every requirement; --json lists the moves. ^0.1 -> ^0.2.0 is a major for a 0.x version.
  const all = runCpr(["update", "--breaking", "--json"], { cwd: dir, env });
  assert.equal(all.code, 0, all.stderr);
  const doc = JSON.parse(all.stdout) as { requirements: { label: string; from: string; to: string }[] };
  assert.deepEqual(
    doc.requirements.map((m) => [m.label, m.from, m.to]),
    [["c", "^0.1", "^0.2.0"]],
  );
  assert.deepEqual(versions(dir), { a: "2.1.0", c: "0.2.0" });
  const none = runCpr(["update", "--breaking"], { cwd: dir, env });
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, /no requirement needs to move across a major/);

  // b requires a ^1: the graph cannot follow a to ^2, and nothing is written.
  const held = makeProject({ sets: { low }, deps: { low: { a: "^1", b: "^1" } } });
  assert.equal(runCpr(["resolve"], { cwd: held, env }).code, 0);
  const before = [readFileSync(join(held, "atom.toml"), "utf8"), readFileSync(join(held, "atom.lock"), "utf8")];
  const refused = runCpr(["update", "--breaking", "a"], { cwd: held, env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /the graph cannot follow the new requirements \(a \^1 -> \^2\.1\.0\)/);
  assert.match(refused.stderr, /Because b \^1 depends on a \^1 and app depends on a \^2\.1, b \^1 is forbidden/);
  assert.match(refused.stderr, /nothing was written/);
  assert.deepEqual([readFileSync(join(held, "atom.toml"), "utf8"), readFileSync(join(held, "atom.lock"), "utf8")], before);

  // A yanked newest version is no target: with 2.1.0 and 2.0.0 yanked, nothing moves past ^1.
  const work = makeRepo({ README: "clone\n" });
  for (const v of ["2.0.0", "2.1.0"])
    assert.equal(runCpr(["yank", `a@${v}`, "--reason", "bad", "--remote", low], { cwd: work, env }).code, 0);
  const fresh = makeProject({ sets: { low }, deps: { low: { a: "^1" } } });
  assert.equal(runCpr(["resolve"], { cwd: fresh, env }).code, 0);
  const y = runCpr(["update", "--breaking", "--json"], { cwd: fresh, env });
  assert.equal(y.code, 0, y.stderr);
  assert.deepEqual((JSON.parse(y.stdout) as { requirements: unknown[] }).requirements, []);
});
