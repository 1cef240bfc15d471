import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCpr } from "../support/cli.js";
import { GIT_TEST_ENV, commitAll, makeBare, makeRepo, tempDir } from "../support/repo.js";

/** `cpr new` as a user runs it: output, --json, exit codes, config, and the road to a published atom. */

const home = tempDir("cpr-home-");
const env = { ...process.env, ...GIT_TEST_ENV, HOME: home, XDG_CONFIG_HOME: join(home, ".config"), CPR_CACHE_DIR: join(home, "cache") };
const cpr = (cwd: string, ...args: string[]) => runCpr(args, { cwd, env });

test("cpr new: files and ekala.toml on stdout, --json, exit codes 0/1/2, --help", () => {
  const repo = makeRepo({ "ekala.toml": "[set]\npackages = []\n\n[metadata]\ntags = []\n" });
  const human = cpr(repo, "new", "pkgs/hello");
  assert.equal(human.code, 0, human.stderr);
  assert.equal(human.stdout, 'created  pkgs/hello/atom.toml\nlisted   "pkgs/hello" in ekala.toml [set] packages\n');
  assert.match(
    human.stderr,
    /new atom hello 0\.1\.0 \(\[compose\.with\.atom-nix\] from atom \(https:\/\/github\.com\/ekala-project\/atom\)\); next: `cpr resolve` in pkgs\/hello/,
  );

  const j = cpr(join(repo, "pkgs"), "new", "tool", "--nix", "--label", "t", "--json");
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(doc), ["label", "version", "dir", "created", "kept", "set", "compose"]);
  assert.deepEqual(doc.set, { file: join(repo, "ekala.toml"), entry: "pkgs/tool" });
  assert.deepEqual(doc.created, [join(repo, "pkgs/tool/default.nix"), join(repo, "pkgs/tool/atom.toml")]);

  const again = cpr(repo, "new", "pkgs/hello");
  assert.equal(again.code, 1);
  assert.match(again.stderr, /pkgs\/hello\/atom\.toml already exists[\s\S]*hint: edit that atom\.toml, or give another PATH/);
  const dup = cpr(repo, "new", "other", "--label", "hello");
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /label 'hello' is already used by the atom in pkgs\/hello/);
  assert.equal(existsSync(join(repo, "other")), false);
  assert.equal(cpr(repo, "new").code, 2);
  assert.equal(cpr(repo, "new", "a", "b").code, 2);
  const help = cpr(repo, "new", "--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: cpr new PATH \[--label L\] \[--nix\] \[--json\]/);
});

test("cpr new: the composer from config [new] (aliases expanded), shown by cpr config list", () => {
  const repo = makeRepo({ "cpr.toml": '[new]\ncomposer = "my-nix"\ncomposer-tag = "mine"\ncomposer-url = "gh:me/composers"\n' });
  const list = cpr(repo, "config", "list");
  assert.match(list.stdout, /^new\.composer = "my-nix" +\(project: .*cpr\.toml\)$/m);
  assert.match(list.stdout, /^new\.composer-url = "gh:me\/composers" +\(project: /m);
  assert.equal(cpr(repo, "new", "app").code, 0);
  assert.equal(
    readFileSync(join(repo, "app/atom.toml"), "utf8"),
    '[package]\nlabel = "app"\nversion = "0.1.0"\n\n[package.sets]\nmine = "https://github.com/me/composers"\n\n[compose.with.my-nix]\nfrom = "mine"\n',
  );
  const defaults = cpr(makeRepo({ README: "r\n" }), "config", "list");
  assert.match(defaults.stdout, /^new\.composer-url = "https:\/\/github\.com\/ekala-project\/atom" +\(default\)$/m);
});

test("cpr new --nix, cpr resolve --offline, commit: the atom publishes", () => {
  const repo = makeRepo({ README: "r\n" });
  const bare = makeBare();
  assert.equal(cpr(repo, "new", "pkgs/trivial", "--nix").code, 0);
  const resolved = cpr(join(repo, "pkgs/trivial"), "resolve", "--offline");
  assert.equal(resolved.code, 0, resolved.stderr);
  commitAll(repo, "trivial");
  assert.equal(cpr(repo, "init", "--remote", bare).code, 0);
  const pub = cpr(repo, "publish", "--all", "--remote", bare, "--json");
  assert.equal(pub.code, 0, pub.stderr);
  assert.deepEqual(
    JSON.parse(pub.stdout).published.map((a: { label: string }) => a.label),
    ["trivial"],
  );
});
