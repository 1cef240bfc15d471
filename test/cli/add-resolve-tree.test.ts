import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { parseLock } from "../../src/protocol/lock.js";
import { runCpr } from "../support/cli.js";
import { tempDir } from "../support/repo.js";
import { isolatedEnv, makeProject, makeSet, manifestText } from "../resolve/fixture.js";

const REPO = resolve(fileURLToPath(import.meta.url), "../../../..");

test("cpr add (no requirement records ^resolved), tree --json, why, remove, resolve --locked", () => {
  const base = tempDir("cpr-sets-");
  const low = join(base, "low");
  makeSet(low, { c: { "1.0.0": {}, "1.4.0": {} } }, "low");
  const mid = join(base, "mid");
  makeSet(
    mid,
    { a: { "1.0.0": { sets: { low }, deps: { low: { c: "^1" } } }, "1.2.0": { sets: { low }, deps: { low: { c: "^1.1" } } } } },
    "mid",
  );
  const dir = makeProject({});
  writeFileSync(join(dir, "atom.toml"), readFileSync(join(dir, "atom.toml"), "utf8") + "# keep this comment\n");
  const env = isolatedEnv();
  const add = runCpr(["add", `${mid}::a`, "--set", "mid"], { cwd: dir, env });
  assert.equal(add.code, 0, add.stderr);
  const manifest = readFileSync(join(dir, "atom.toml"), "utf8");
  assert.match(manifest, /\[deps\.from\.mid\]\na = "\^1\.2\.0"/);
  assert.match(manifest, /# keep this comment/);
  assert.ok(manifest.includes(`mid = ${JSON.stringify(mid)}`), manifest);
  const lock = parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock");
  assert.deepEqual(lock.deps.map((d) => (d.type === "atom" ? `${d.label}@${d.version}` : d.name)).sort(), ["a@1.2.0", "c@1.4.0"]);

  const tree = runCpr(["tree", "--json"], { cwd: dir, env });
  assert.equal(tree.code, 0, tree.stderr);
  const atoms = (
    JSON.parse(tree.stdout) as { atoms: { label: string; id: string; deps: string[]; rev: string; set: string; version: string }[] }
  ).atoms;
  const a = atoms.find((x) => x.label === "a")!;
  const c = atoms.find((x) => x.label === "c")!;
  assert.deepEqual(a.deps, [c.id]);
  assert.deepEqual(c.deps, []);
  assert.match(a.rev, /^[0-9a-f]{40}$/);
  const human = runCpr(["tree"], { cwd: dir, env });
  assert.match(human.stdout, /^app 0\.1\.0\n└── a 1\.2\.0 \(\^1\.2\.0\)/);

  const why = runCpr(["why", "c"], { cwd: dir, env });
  assert.equal(why.code, 0, why.stderr);
  assert.equal(why.stdout.trim(), "app 0.1.0 requires a ^1.2.0 -> a 1.2.0 requires c ^1.1 -> c 1.4.0");

  assert.equal(runCpr(["resolve", "--locked"], { cwd: dir, env }).code, 0);
  const noop = runCpr(["resolve", "--json"], { cwd: dir, env });
  assert.equal(JSON.parse(noop.stdout).status, "unchanged");
  assert.equal(JSON.parse(noop.stdout).network.connections, 0);

  const rm = runCpr(["remove", "a"], { cwd: dir, env });
  assert.equal(rm.code, 0, rm.stderr);
  const after = readFileSync(join(dir, "atom.toml"), "utf8");
  assert.doesNotMatch(after, /deps\.from|package\.sets/);
  assert.match(after, /# keep this comment/);
  assert.equal(parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock").deps.length, 0);

  // Usage errors exit 2; --help exits 0 for every verb.
  assert.equal(runCpr(["add"], { cwd: dir, env }).code, 2);
  for (const verb of ["add", "remove", "resolve", "update", "tree", "why"])
    assert.equal(runCpr([verb, "--help"], { cwd: dir, env }).code, 0, verb);
});

test("tree/why for a lock resolved elsewhere: direct edges and a warning; the whole graph again from cached manifests", () => {
  const base = tempDir("cpr-sets-");
  const low = join(base, "low");
  makeSet(low, { c: { "1.0.0": {}, "1.4.0": {} } }, "low");
  const mid = join(base, "mid");
  makeSet(mid, { a: { "1.2.0": { sets: { low }, deps: { low: { c: "^1.1" } } } } }, "mid");
  const dir = makeProject({});
  const resolver = isolatedEnv();
  assert.equal(runCpr(["add", `${mid}::a`, "--set", "mid"], { cwd: dir, env: resolver }).code, 0);

  // Another machine: an empty cache.
  const other = isolatedEnv();
  const bare = runCpr(["tree", "--json"], { cwd: dir, env: other });
  assert.equal(bare.code, 0, bare.stderr);
  assert.match(bare.stderr, /the dependencies of (a 1\.2\.0, c 1\.4\.0|c 1\.4\.0, a 1\.2\.0) are unknown here .*cpr fetch --lock/);
  const before = (JSON.parse(bare.stdout) as { atoms: { label: string; deps: string[] }[] }).atoms;
  assert.deepEqual(before.find((x) => x.label === "a")!.deps, []);
  assert.match(runCpr(["why", "c"], { cwd: dir, env: other }).stdout, /no known chain/);

  // The resolving machine, with its recorded graph gone: the edges come back from the cached manifest blobs.
  rmSync(join(resolver.CPR_CACHE_DIR!, "resolve", "graphs"), { recursive: true, force: true });
  const full = runCpr(["tree", "--json"], { cwd: dir, env: resolver });
  assert.equal(full.code, 0, full.stderr);
  assert.doesNotMatch(full.stderr, /unknown here/);
  const atoms = (JSON.parse(full.stdout) as { atoms: { label: string; id: string; deps: string[] }[] }).atoms;
  assert.deepEqual(atoms.find((x) => x.label === "a")!.deps, [atoms.find((x) => x.label === "c")!.id]);
  assert.equal(
    runCpr(["why", "c"], { cwd: dir, env: resolver }).stdout.trim(),
    "app 0.1.0 requires a ^1.2.0 -> a 1.2.0 requires c ^1.1 -> c 1.4.0",
  );
});

test("a conflict prints the explanation and what to change (exit 1, nothing written)", () => {
  const base = tempDir("cpr-sets-");
  const low = join(base, "low");
  makeSet(low, { c: { "1.0.0": {}, "2.0.0": {} } }, "low");
  const mid = join(base, "mid");
  makeSet(
    mid,
    { foo: { "1.0.0": { sets: { low }, deps: { low: { c: "^1" } } } }, bar: { "2.0.0": { sets: { low }, deps: { low: { c: "^2" } } } } },
    "mid",
  );
  const dir = makeProject({ sets: { mid }, deps: { mid: { foo: "^1", bar: "^2" } } });
  const r = runCpr(["resolve"], { cwd: dir, env: isolatedEnv() });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /foo/);
  assert.match(r.stderr, /bar/);
  assert.match(r.stderr, /hint:/);
});

test("cpr add --nix: a file URL locked with its flat sha256", () => {
  const dir = makeProject({});
  const file = join(tempDir("cpr-files-"), "fix.patch");
  writeFileSync(file, "patch\n");
  const r = runCpr(["add", "--nix", "patch", file], { cwd: dir, env: isolatedEnv() });
  assert.equal(r.code, 0, r.stderr);
  const lock = parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock");
  const e = lock.deps.find((d) => d.type === "nix");
  assert.ok(e && e.type === "nix");
  assert.equal(e.hash, `sha256-${createHash("sha256").update("patch\n").digest("base64")}`);
  assert.match(readFileSync(join(dir, "atom.toml"), "utf8"), /patch\.url = /);
});

test("a lock eka wrote is read: resolve is a no-op without network, tree lists it", () => {
  const dir = makeProject({});
  writeFileSync(
    join(dir, "atom.toml"),
    `[package]
label = "foo"
version = "0.1.0"

[package.sets]
atom = "https://github.com/ekala-project/atom"
eka = ["::", "https://github.com/ekala-project/eka.git"]

[compose.with.atom-nix]
from = "atom"
version = "^0.4"
entry = "eka"

[deps.from.atom]
hosts = "^0.1"

[deps.from.eka]
dev = "^0.1"

[deps.direct.nix]
nixpkgs = { git = "https://github.com/nixos/nixpkgs", ref = "nixpkgs-unstable" }
tool = { git = "https://example.org/tool.git", version = "^2" }
nixpkgs-unstable.tar = "https://github.com/nixos/nixpkgs/archive/nixpkgs-unstable.tar.gz"
patch.url = "https://example.org/fix.patch"
zlib-1 = { build = "https://www.zlib.net/zlib-1.3.1.tar.gz", unpack = true }
`,
  );
  copyFileSync(join(REPO, "test", "fixtures", "locks", "eka-with-locker.lock"), join(dir, "atom.lock"));
  const before = readFileSync(join(dir, "atom.lock"), "utf8");
  // No network here: github.com is unreachable by construction (a bogus proxy), so only a no-op can succeed.
  const env = isolatedEnv({ HTTPS_PROXY: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9", GIT_ALLOW_PROTOCOL: "file" });
  const r = runCpr(["resolve", "--locked", "--json"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).status, "unchanged");
  assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), before);
  const tree = runCpr(["tree", "--json"], { cwd: dir, env });
  assert.equal(tree.code, 0, tree.stderr);
  const labels = (JSON.parse(tree.stdout) as { atoms: { label: string }[] }).atoms.map((a) => a.label).sort();
  // The composer is in the graph too (locked in [compose]).
  assert.deepEqual(labels, ["atom-nix", "dev", "hosts"]);
  void manifestText;
});
