/**
 * Adding an atom as a library (src/resolve/add.ts), against real set repositories: where the set is recorded (a
 * tag named after the repository, an existing tag that lists the mirror, a path relative to the atom), the
 * requirement written when none was given, and the graph recorded with the lock carrying that requirement.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseLock } from "../../src/protocol/lock.js";
import { recordingReporter } from "../../src/protocol/report.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { addAtom } from "../../src/resolve/add.js";
import { loadGraph, ROOT_PKG } from "../../src/resolve/graph.js";
import { resolverConfig } from "../../src/resolve/lock-project.js";
import { tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet } from "./fixture.js";

test("addAtom: tag from the repository name, ^resolved written, the graph recorded with that requirement", async () => {
  const base = tempDir("cpr-sets-");
  const tools = join(base, "tools.git");
  makeSet(tools, { a: { "1.0.0": {}, "1.2.0": {} }, b: { "2.0.0": {} } }, "tools");
  const dir = makeProject({});
  const env = isolatedEnv();
  const config = await resolverConfig(dir, env);
  const reporter = recordingReporter();

  const first = await addAtom(parseAtomUri(`${tools}::a`), undefined, { cwd: dir, env, reporter, config });
  assert.equal(first.outcome.status, "written");
  assert.deepEqual({ ...first.added, id: undefined }, { label: "a", tag: "tools", requirement: "^1.2.0", version: "1.2.0", id: undefined });
  const manifest = readFileSync(join(dir, "atom.toml"), "utf8");
  assert.match(manifest, /\[deps\.from\.tools\]\na = "\^1\.2\.0"/);
  assert.ok(manifest.includes(`tools = ${JSON.stringify(tools)}`), manifest);
  const lockText = readFileSync(join(dir, "atom.lock"), "utf8");
  assert.deepEqual(
    parseLock(lockText, "atom.lock").deps.map((d) => (d.type === "atom" ? `${d.label}@${d.version}` : d.name)),
    ["a@1.2.0"],
  );
  // Resolved with a provisional `*`; the graph beside the lock has the requirement written, so the lock satisfies.
  assert.deepEqual(loadGraph(config.cacheDir, lockText)?.[ROOT_PKG], [{ dep: first.added.id, req: "^1.2.0" }]);
  assert.equal((await lock(dir, env)).status, "unchanged");

  // With a requirement, the same mirror: it is already listed under `tools`, so that tag is reused.
  const second = await addAtom(parseAtomUri(`${tools}::b@^2`), undefined, { cwd: dir, env, reporter, config });
  assert.equal(second.added.tag, "tools");
  assert.equal(second.added.requirement, "^2");
  const after = readFileSync(join(dir, "atom.toml"), "utf8");
  assert.match(after, /\[deps\.from\.tools\]\na = "\^1\.2\.0"\nb = "\^2"/);
  assert.equal(after.match(/^tools = /gm)?.length, 1, after);
});

test("addAtom: a relative path is stored relative to the atom, under a tag named after it", async () => {
  const base = tempDir("cpr-sets-");
  const dir = makeProject({});
  const other = join(base, "other");
  makeSet(other, { c: { "0.3.1": {} } }, "other");
  const env = isolatedEnv();
  const config = await resolverConfig(dir, env);
  const sub = join(dir, "deeper");
  mkdirSync(sub);
  const r = await addAtom(parseAtomUri(`${relative(sub, other)}::c`), undefined, { cwd: sub, env, reporter: recordingReporter(), config });
  assert.equal(r.added.tag, "other");
  assert.equal(r.added.requirement, "^0.3.1");
  const stored = relative(dir, other);
  assert.ok(
    readFileSync(join(dir, "atom.toml"), "utf8").includes(`other = ${JSON.stringify(stored.startsWith(".") ? stored : `./${stored}`)}`),
  );
});
