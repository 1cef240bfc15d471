import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CPR_BIN, runCpr, runCprAsync } from "../support/cli.js";
import { hookEnv, hookResult, installHook } from "../support/hooks.js";
import { gitIn, makeBare, makeRepo, tempDir } from "../support/repo.js";
import { copyBare, env, publishedSet, setRef, unevaluableSet } from "../store/fixture.js";

/** `cpr fetch` and `cpr verify` as a user runs them: output lines, --json, exit codes, --help. */

const cpr = (args: string[], cwd: string, cacheDir: string) => runCpr(args, { cwd, env: { ...env, CPR_CACHE_DIR: cacheDir } });

test("cpr fetch / cpr verify: paths on stdout, one line per atom, exit codes", async () => {
  const set = await publishedSet();
  const cacheDir = tempDir("cpr-cache-");
  const f = cpr(["fetch", `${set.remote}::a@^0.1`], set.work, cacheDir);
  assert.equal(f.code, 0, f.stderr);
  const path = f.stdout.trim();
  assert.match(path, new RegExp(`^${cacheDir}/atoms/[0-9a-v]{52}/0\\.1\\.0-${set.revs["a@0.1.0"]}$`));
  assert.ok(existsSync(join(path, "atom.toml")));
  const j = cpr(["fetch", `${set.remote}::a@=0.1.0`, "--json"], set.work, cacheDir);
  assert.equal(JSON.parse(j.stdout).atoms[0].cached, true);

  const v = cpr(["verify", set.remote], set.work, cacheDir);
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual(
    v.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/).slice(0, 3).join(" ")),
    ["ok a 0.1.0", "ok a 0.2.0", "ok b 2.0.0"],
  );
  const one = cpr(["verify", `${set.remote}::a@^0.2`, "--json"], set.work, cacheDir);
  const doc = JSON.parse(one.stdout);
  assert.equal(doc.ok, true);
  assert.deepEqual(
    doc.atoms.map((a: { version: string }) => a.version),
    ["0.2.0"],
  );

  const moved = copyBare(set.remote);
  setRef(moved, "refs/eka/atoms/a/0.2.0", set.revs["a@0.1.0"]!);
  const bad = cpr(["verify", moved, "a@0.2.0", "b"], set.work, cacheDir);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^FAILED {2}a 0\.2\.0 {2}[0-9a-f]{12}: .*\(moved ref\)/m);
  assert.match(bad.stdout, /^ok {6}b 2\.0\.0/m);

  for (const verb of ["fetch", "verify"]) {
    const h = cpr([verb, "--help"], set.work, cacheDir);
    assert.equal(h.code, 0);
    assert.match(h.stdout, new RegExp(`^Usage: cpr ${verb} `));
  }
  assert.equal(cpr(["fetch"], set.work, cacheDir).code, 2);
});

test("cpr fetch --lock / cpr verify --lock read atom.lock", async () => {
  const { formatLock, defaultLocker } = await import("../../src/protocol/lock.js");
  const { atomId } = await import("../../src/protocol/id.js");
  const { writeFileSync } = await import("node:fs");
  const set = await publishedSet();
  const mirror = copyBare(set.remote);
  const project = tempDir("cpr-project-");
  const deps = (["a@0.2.0", "b@2.0.0"] as const).map((k) => {
    const [label, version] = k.split("@") as [string, string];
    return { type: "atom" as const, label, version, set: set.root, rev: set.revs[k]!, mirror: set.remote, id: atomId(set.root, label) };
  });
  const lock = {
    version: 1 as const,
    sets: { [set.root]: { tag: "s", mirrors: ["::", set.remote, mirror] } },
    locker: defaultLocker("1".repeat(40)),
    compose: { use: "static" as const },
    deps,
  };
  writeFileSync(join(project, "atom.lock"), formatLock(lock));
  const cacheDir = tempDir("cpr-cache-");
  const f = cpr(["fetch", "--lock"], project, cacheDir);
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(
    f.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(" ").slice(0, 2).join(" ")),
    ["a 0.2.0", "b 2.0.0"],
  );
  const v = cpr(["verify", "--lock"], project, cacheDir);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  setRef(mirror, "refs/eka/atoms/b/2.0.0", set.revs["a@0.1.0"]!);
  const bad = cpr(["verify", "--lock", "--json"], project, cacheDir);
  assert.equal(bad.code, 1);
  const b = JSON.parse(bad.stdout).atoms.find((x: { label: string }) => x.label === "b");
  assert.match(
    b.problems.join("\n"),
    /mirror .* has refs\/eka\/atoms\/b\/2\.0\.0 = [0-9a-f]{40}, but [0-9a-f]{40} elsewhere \(mirrors disagree\)/,
  );
});

test("concurrent cpr processes share one cache safely", async () => {
  const set = await publishedSet();
  const cacheDir = tempDir("cpr-cache-");
  const runOne = (args: string[]) => runCprAsync(args, { cwd: set.work, env: { ...env, CPR_CACHE_DIR: cacheDir } });
  const uris = [
    `${set.remote}::a@=0.1.0`,
    `${set.remote}::a@=0.2.0`,
    `${set.remote}::b`,
    `${set.remote}::a@=0.1.0`,
    `${set.remote}::b`,
    `${set.remote}::a`,
  ];
  const results = await Promise.all(uris.map((u) => runOne(["fetch", u])));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  assert.equal(results[0]!.stdout, results[3]!.stdout);
  const { gitIn } = await import("../support/repo.js");
  assert.deepEqual(
    gitIn(join(cacheDir, "git"), "rev-list", "--all").split("\n").sort(),
    [set.revs["a@0.1.0"], set.revs["a@0.2.0"], set.revs["b@2.0.0"]].sort(),
  );
  assert.equal(gitIn(join(cacheDir, "git"), "for-each-ref", "refs/cpr/tmp/"), "", "no temporary ref left behind");
  gitIn(join(cacheDir, "git"), "fsck", "--strict", "--no-dangling");
});

test("cpr verify requires signatures for a set with trusted keys in config ([trust] by root)", async () => {
  const { sshKey } = await import("../store/fixture.js");
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const signer = sshKey("alice@example.org");
  const signed = await publishedSet({ sign: signer.key });
  const unsigned = await publishedSet(); // the same history, so the same root: the same trusted keys
  assert.equal(unsigned.root, signed.root);
  const xdg = tempDir("cpr-xdg-");
  mkdirSync(join(xdg, "cpr"));
  const line = `alice@example.org ${signer.pub}`;
  writeFileSync(join(xdg, "cpr", "config.toml"), `[trust]\n"${signed.root}" = [${JSON.stringify(line)}]\n`);
  const cwd = tempDir("cpr-cwd-");
  const run = (remote: string) =>
    runCpr(["verify", remote], { cwd, env: { ...env, XDG_CONFIG_HOME: xdg, CPR_CACHE_DIR: tempDir("cpr-cache-") } });
  const ok = run(signed.remote);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^ok {6}a 0\.1\.0 {2}[0-9a-f]{12} {2}signed by alice@example\.org/m);
  const bad = run(unsigned.remote);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^FAILED {2}b 2\.0\.0 {2}[0-9a-f]{12}: no signature: refs\/eka\/meta\/b\/2\.0\.0\/sig is missing/m);
});

test("cpr fetch and verify inside git hooks use the cache, never the hook's repository (GIT_DIR, GIT_INDEX_FILE, quarantine)", async () => {
  const set = await publishedSet();
  const cacheDir = tempDir("cpr-cache-");
  const hookOut = tempDir("cpr-hook-out-");
  const cache = join(cacheDir, "git");
  const runEnv = (args: string) => hookEnv(env, CPR_BIN, hookOut, args, { CPR_CACHE_DIR: cacheDir });
  const result = (name: string) => hookResult(hookOut, name);
  /** The hook's repository gained no cpr ref, no atom object and no pack. */
  const untouched = (gitDir: string) => {
    assert.equal(gitIn(gitDir, "for-each-ref", "refs/cpr/"), "", `refs/cpr/ written into ${gitDir}`);
    for (const rev of Object.values(set.revs))
      assert.throws(() => gitIn(gitDir, "cat-file", "-e", rev), `atom ${rev} written into ${gitDir}`);
    assert.deepEqual(
      readdirSync(join(gitDir, "objects", "pack")).filter((f) => f.endsWith(".pack")),
      [],
      `pack written into ${gitDir}`,
    );
  };

  // 1. post-commit in a linked worktree: git gives the hook GIT_DIR (the worktree's git dir) and GIT_INDEX_FILE.
  const user = makeRepo({ README: "user\n" });
  installHook(join(user, ".git", "hooks"), "post-commit");
  const wt = join(tempDir("cpr-wt-"), "wt");
  gitIn(user, "worktree", "add", "-q", "-b", "side", wt);
  execFileSync("git", ["commit", "-q", "--allow-empty", "-m", "hooked"], { cwd: wt, env: runEnv(`fetch ${set.remote}::a@^0.2`) });
  let r = result("post-commit");
  assert.match(r.env, /^GIT_DIR=.*worktrees/m, "git ran the hook with GIT_DIR set");
  assert.match(r.env, /^GIT_INDEX_FILE=/m);
  assert.equal(r.code, "0", r.stderr);
  assert.match(r.stdout.trim(), new RegExp(`^${cacheDir}/atoms/.*/0\\.2\\.0-${set.revs["a@0.2.0"]}$`));
  untouched(join(user, ".git"));
  gitIn(cache, "cat-file", "-e", set.revs["a@0.2.0"]!);
  assert.notEqual(gitIn(cache, "for-each-ref", "refs/cpr/keep/"), "");

  // 2. `git --git-dir --work-tree` from elsewhere: GIT_DIR and a relative GIT_WORK_TREE (.); verify's scratch repositories too.
  execFileSync("git", [`--git-dir=${join(user, ".git")}`, `--work-tree=${user}`, "commit", "-q", "--allow-empty", "-m", "again"], {
    cwd: hookOut,
    env: runEnv(`verify ${set.remote}`),
  });
  r = result("post-commit");
  assert.match(r.env, /^GIT_WORK_TREE=/m);
  assert.equal(r.code, "0", r.stdout + r.stderr);
  assert.deepEqual(
    r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/).slice(0, 3).join(" ")),
    ["ok a 0.1.0", "ok a 0.2.0", "ok b 2.0.0"],
  );
  untouched(join(user, ".git"));

  // 3. pre-receive on a server: GIT_DIR=., the pushed objects in a quarantine (GIT_OBJECT_DIRECTORY,
  // GIT_QUARANTINE_PATH, under which git refuses every ref update). cpr's exit code decides the push.
  const server = makeBare();
  installHook(join(server, "hooks"), "pre-receive");
  execFileSync("git", ["push", "-q", server, "HEAD:refs/heads/main"], { cwd: user, env: runEnv(`fetch ${set.remote}::b`), stdio: "pipe" });
  r = result("pre-receive");
  assert.match(r.env, /^GIT_QUARANTINE_PATH=/m);
  assert.equal(r.code, "0", r.stderr);
  assert.match(r.stdout.trim(), new RegExp(`/2\\.0\\.0-${set.revs["b@2.0.0"]}$`));
  assert.equal(gitIn(server, "rev-parse", "refs/heads/main"), gitIn(user, "rev-parse", "HEAD"), "the push landed");
  assert.equal(gitIn(server, "for-each-ref", "refs/cpr/"), "");
  assert.throws(() => gitIn(server, "cat-file", "-e", set.revs["b@2.0.0"]!));
  gitIn(cache, "cat-file", "-e", set.revs["b@2.0.0"]!);
  gitIn(cache, "fsck", "--strict", "--no-dangling");
});

test("cpr verify: an atom without its lock is a warning line (and JSON warnings), exit 0", async () => {
  const set = await unevaluableSet();
  const cacheDir = tempDir("cpr-cache-");
  const v = cpr(["verify", set.remote, "nolock", "locked"], set.work, cacheDir);
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual(
    v.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/).slice(0, 3).join(" ")),
    ["ok locked 1.0.0", "ok nolock 0.1.0", "warning nolock 0.1.0"],
  );
  assert.match(
    v.stdout,
    /^warning nolock 0\.1\.0 {2}[0-9a-f]{12}: cannot be evaluated: it is composed .* but has no atom\.lock, so no consumer can evaluate it \[verify\.no-lock\]$/m,
  );
  assert.match(v.stderr, /2 ok, 0 failed, 1 with warnings/);
  const j = cpr(["verify", set.remote, "nolock", "--json"], set.work, cacheDir);
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.ok, true);
  assert.deepEqual(
    doc.atoms[0].warnings.map((w: { code: string }) => w.code),
    ["verify.no-lock"],
  );
});
