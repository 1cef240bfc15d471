import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { CPR_BIN, cprJson, runCpr } from "../support/cli.js";
import { hookEnv, hookResult, installHook } from "../support/hooks.js";
import { GIT_TEST_ENV, atomToml, commitAll, gitIn, makeBare, makeRepo, refsOf, tempDir, writeFiles } from "../support/repo.js";

const cacheDir = tempDir("cpr-cache-");

const cpr = (cwd: string, ...args: string[]) => runCpr(args, { cwd, env: { ...process.env, ...GIT_TEST_ENV, CPR_CACHE_DIR: cacheDir } });

const files = {
  "pkgs/foo/atom.toml": atomToml("foo", "0.1.0"),
  "pkgs/bar/atom.toml": atomToml("bar", "1.0.0"),
  "pkgs/bar/x.nix": "{ }\n",
};

function repoWithOrigin(): { dir: string; bare: string } {
  const dir = makeRepo(files);
  const bare = makeBare();
  gitIn(dir, "remote", "add", "origin", bare);
  return { dir, bare };
}

test("cpr init / publish / ls with the default remote (origin), JSON shapes and exit codes", () => {
  const { dir, bare } = repoWithOrigin();
  const root = gitIn(dir, "rev-parse", "HEAD");
  const notInit = cpr(dir, "publish", "--all");
  assert.equal(notInit.code, 1, notInit.stderr);
  assert.match(notInit.stderr, /not an initialized atom set[\s\S]*cpr init/);

  const init = cpr(dir, "init", "--json");
  assert.equal(init.code, 0, init.stderr);
  assert.deepEqual(cprJson(init), { root, remote: "origin", status: "initialized" });
  const again = cpr(dir, "init");
  assert.equal(again.code, 0);
  assert.match(again.stderr, /already initialized/);

  const pub = cpr(join(dir, "pkgs/foo"), "publish", "--json");
  assert.equal(pub.code, 0, pub.stderr);
  const out = cprJson(pub);
  assert.deepEqual(Object.keys(out), ["published", "skipped", "failed"]);
  const published = out.published as Record<string, string>[];
  assert.deepEqual(
    published.map((a) => Object.keys(a)),
    [["label", "version", "id", "rev"]],
  );
  assert.equal(published[0]!.label, "foo");

  const all = cpr(dir, "publish", "--all");
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /published\s+bar 1\.0\.0/);
  assert.match(all.stdout, /skipped\s+foo 0\.1\.0/);
  assert.match(all.stderr, /1 published, 1 skipped, 0 failed/);

  const ls = cpr(dir, "ls", bare, "--json");
  assert.equal(ls.code, 0, ls.stderr);
  const listing = cprJson(ls) as { root: string; atoms: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(listing), ["root", "atoms"]);
  assert.equal(listing.root, root);
  assert.deepEqual(
    listing.atoms.map((a) => Object.keys(a)),
    Array(2).fill(["label", "version", "id", "rev", "manifest", "origin", "format", "yanked"]),
  );
  assert.deepEqual(
    listing.atoms.map((a) => a.label),
    ["bar", "foo"],
  );
  assert.equal(listing.atoms[1]!.id, published[0]!.id);
  assert.equal(listing.atoms[1]!.rev, published[0]!.rev);
  assert.equal(listing.atoms[1]!.format, "pre1");

  const one = cprJson(cpr(dir, "ls", "origin", "foo", "--json")) as { atoms: { label: string }[] };
  assert.deepEqual(
    one.atoms.map((a) => a.label),
    ["foo"],
  );
  const table = cpr(dir, "ls", "origin");
  assert.match(table.stdout, new RegExp(`^root ${root}\\nLABEL +VERSION +ID +REV +MANIFEST +ORIGIN +FORMAT\\nbar +1\\.0\\.0 `));
  const fooRev = String(listing.atoms[1]!.rev);
  assert.ok(table.stdout.includes(` ${fooRev.slice(0, 12)} `), "the table abbreviates ids to 12 hex digits");
  assert.ok(!table.stdout.includes(fooRev), "…and does not print them in full");
  assert.ok(cpr(dir, "ls", "origin", "--long").stdout.includes(fooRev), "--long prints full ids");
});

test("cpr publish: refused run exits 1 with the failed atoms in JSON and writes nothing", () => {
  const { dir, bare } = repoWithOrigin();
  assert.equal(cpr(dir, "init").code, 0);
  assert.equal(cpr(dir, "publish", "--all").code, 0);
  writeFiles(dir, { "pkgs/bar/x.nix": "{ changed = 1; }\n" });
  commitAll(dir, "change bar without a bump");
  const before = refsOf(bare);
  const r = cpr(dir, "publish", "--all", "--json");
  assert.equal(r.code, 1);
  const out = cprJson(r) as { failed: { label: string; version: string; error: string }[] };
  assert.deepEqual(
    out.failed.map((f) => Object.keys(f)),
    [
      ["label", "version", "error"],
      ["label", "version", "error"],
    ],
  );
  assert.match(out.failed[0]!.error, /bump/);
  assert.equal(refsOf(bare), before);
});

test("cpr publish and ls from a git hook act on the repository git names (GIT_DIR of a linked worktree), from any directory", () => {
  const { dir, bare } = repoWithOrigin();
  assert.equal(cpr(dir, "init").code, 0);
  assert.equal(cpr(dir, "publish", "--all").code, 0);
  installHook(join(dir, ".git", "hooks"), "post-commit");
  const wt = join(tempDir("cpr-wt-"), "wt");
  gitIn(dir, "worktree", "add", "-q", "-b", "side", wt);
  writeFiles(wt, { "pkgs/foo/atom.toml": atomToml("foo", "0.2.0") });
  gitIn(wt, "add", "-A");
  const out = tempDir("cpr-hook-out-");
  // The hook runs cpr from a directory outside any repository: only GIT_DIR says which repository (and which HEAD).
  const elsewhere = tempDir("cpr-elsewhere-");
  const base = { ...process.env, ...GIT_TEST_ENV, CPR_CACHE_DIR: tempDir("cpr-cache-"), CPR_HOOK_CWD: elsewhere };
  execFileSync("git", ["commit", "-q", "-m", "foo 0.2.0"], { cwd: wt, env: hookEnv(base, CPR_BIN, out, "publish --all --json") });
  let r = hookResult(out, "post-commit");
  assert.match(r.env, /^GIT_DIR=.*worktrees/m, "git ran the hook with GIT_DIR set");
  assert.equal(r.code, "0", r.stderr);
  assert.deepEqual(
    (cprJson(r) as { published: { label: string; version: string }[] }).published.map((a) => `${a.label}@${a.version}`),
    ["foo@0.2.0"],
  );
  // Published from the worktree's HEAD, to the repository's origin; the main work tree's HEAD still has foo 0.1.0.
  assert.equal(gitIn(bare, "rev-parse", "refs/eka/meta/foo/0.2.0/origin"), gitIn(wt, "rev-parse", "HEAD"));
  assert.notEqual(gitIn(dir, "rev-parse", "HEAD"), gitIn(wt, "rev-parse", "HEAD"));

  execFileSync("git", ["commit", "-q", "--allow-empty", "-m", "list"], { cwd: wt, env: hookEnv(base, CPR_BIN, out, "ls origin --json") });
  r = hookResult(out, "post-commit");
  assert.equal(r.code, "0", r.stderr);
  const listing = cprJson(r) as { root: string; atoms: { label: string; version: string }[] };
  assert.equal(listing.root, gitIn(dir, "rev-list", "--max-parents=0", "HEAD"));
  assert.deepEqual(
    listing.atoms.map((a) => `${a.label}@${a.version}`),
    ["bar@1.0.0", "foo@0.1.0", "foo@0.2.0"],
  );
});

test("cpr publish: a composed atom without atom.lock exits 1 naming cpr resolve; resolved and committed, it publishes", () => {
  const { dir, bare } = repoWithOrigin();
  writeFiles(dir, {
    "pkgs/app/atom.toml": atomToml("app", "0.1.0", '\n[compose.as]\nnix = "default.nix"\n'),
    "pkgs/app/default.nix": "{ }\n",
  });
  commitAll(dir, "app");
  assert.equal(cpr(dir, "init").code, 0);
  const before = refsOf(bare);
  const r = cpr(dir, "publish", "--all");
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /^failed {2}app 0\.1\.0: cannot publish app 0\.1\.0: it is composed .* but has no atom\.lock.*run `cpr resolve` in pkgs\/app, then commit atom\.lock$/m,
  );
  assert.match(r.stdout, /^failed {2}foo 0\.1\.0: not published: other atoms of this run were refused/m);
  assert.equal(refsOf(bare), before);
  const resolved = cpr(join(dir, "pkgs/app"), "resolve", "--offline");
  assert.equal(resolved.code, 0, resolved.stderr);
  commitAll(dir, "app: lock");
  const ok = cpr(dir, "publish", "--all", "--json");
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(
    (cprJson(ok).published as { label: string }[]).map((a) => a.label),
    ["app", "bar", "foo"],
  );
});

test("cpr exit codes: usage errors are 2, failures 1", () => {
  const { dir, bare } = repoWithOrigin();
  assert.equal(cpr(dir, "publish", "--bogus").code, 2);
  assert.equal(cpr(dir, "init").code, 0);
  const notInAtom = cpr(dir, "publish");
  assert.equal(notInAtom.code, 2);
  assert.match(notInAtom.stderr, /PATH or LABEL, or --all/);
  assert.equal(cpr(dir, "ls").code, 2);
  assert.equal(cpr(dir, "id", "--root", "xyz", "foo").code, 2);
  assert.equal(cpr(dir, "ls", makeBare()).code, 1);
  const noRemote = makeRepo(files);
  const r = cpr(noRemote, "init");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no remote given[\s\S]*--remote/);
  assert.equal(cpr(dir, "publish", "nosuch").code, 1);
  void bare;
});

test("cpr ls --json lists the warnings it emitted with their codes, also beside an error; stderr keeps the human line", () => {
  const { dir, bare } = repoWithOrigin();
  const head = gitIn(dir, "rev-parse", "HEAD");
  // A ref under the atom namespace that is not <label>/<version>: ls skips it with a warning.
  gitIn(dir, "push", "-q", bare, `${head}:refs/eka/atoms/foo/not-a-version`);
  const warning = { code: "ls.skipped-refs", message: "skipped 1 ref(s) under the atom namespaces that are not <label>/<version>" };

  const failed = cpr(dir, "ls", bare, "--json");
  assert.equal(failed.code, 1, failed.stderr);
  const err = cprJson(failed) as { error: { code: string }; warnings: unknown[] };
  assert.equal(err.error.code, "ls.not-initialized");
  assert.deepEqual(err.warnings, [warning]);

  assert.equal(cpr(dir, "init").code, 0);
  const ok = cpr(dir, "ls", bare, "--json");
  assert.equal(ok.code, 0, ok.stderr);
  const listing = cprJson(ok);
  assert.deepEqual(Object.keys(listing), ["root", "atoms", "warnings"]);
  assert.deepEqual(listing.warnings, [warning]);
  assert.match(ok.stderr, /^warning: skipped 1 ref\(s\) under the atom namespaces that are not <label>\/<version>$/m);

  const human = cpr(dir, "ls", bare);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stderr, /^warning: skipped 1 ref\(s\) under the atom namespaces that are not <label>\/<version>$/m);
  assert.doesNotMatch(human.stdout + human.stderr, /ls\.skipped-refs/, "humans see the message, not the code");
});

test("cpr id: docs/formats.md §5.5 vectors with --root, local atoms from the work tree", () => {
  const vec = cpr("/", "id", "--root", "4abbd2644bc3585e9be95deb277ccf48f6ed26ac", "foo", "ひらがな");
  assert.equal(vec.code, 0, vec.stderr);
  assert.equal(vec.stdout, "bqrs2vomv79n9e5bullf1ibbpetfskdlgn52hupgbf59ah9r5hg0\n7p08gc7p7ssf2p9f3ahc42ft3jcutcljrv1o92ipjehkm7poj5kg\n");
  const { dir } = repoWithOrigin();
  const root = gitIn(dir, "rev-parse", "HEAD");
  const here = cpr(join(dir, "pkgs/foo"), "id", "--json");
  assert.equal(here.code, 0, here.stderr);
  const out = cprJson(here) as { root: string; atoms: { id: string; label: string; path: string }[] };
  assert.equal(out.root, root);
  assert.deepEqual(
    out.atoms.map((a) => [a.label, a.path]),
    [["foo", "pkgs/foo"]],
  );
  const fromRoot = cpr("/", "id", "--root", root, "foo");
  assert.equal(fromRoot.stdout.trim(), out.atoms[0]!.id);
  const all = cpr(dir, "id", "--all");
  assert.deepEqual(
    all.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("  ").slice(1).join(" ")),
    ["bar pkgs/bar", "foo pkgs/foo"],
  );
});
