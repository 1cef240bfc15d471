/**
 * Yanked versions end to end on real git repositories: `cpr yank` pushes a record and leaves every atom and meta ref
 * as it was (what eka lists is unchanged); a new lock skips the yanked version, an existing lock keeps it with a
 * warning naming the reason until `cpr update` moves it; `cpr ls` shows it; `--undo` removes it; a signed record
 * verifies with real ssh-keygen.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLock } from "../../src/protocol/lock.js";
import { parseYankRecord } from "../../src/protocol/yank.js";
import { runCpr } from "../support/cli.js";
import { gitIn, makeRepo, tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { isolatedEnv, makeProject, makeSet } from "../resolve/fixture.js";

function versionOf(dir: string, label: string): string | null {
  const lock = parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock");
  for (const d of lock.deps) if (d.type === "atom" && d.label === label) return d.version;
  return null;
}

/** Every ref eka and cpr's atoms live under, with its value (what a yank must not change). */
const atomRefs = (set: string) =>
  gitIn(set, "for-each-ref", "--format=%(refname) %(objectname)", "refs/eka/atoms", "refs/eka/meta", "refs/ekala");

test("cpr yank: skipped for new locks, kept with a warning for existing ones, shown by ls, undone; atom refs unchanged", () => {
  const low = join(tempDir("cpr-sets-"), "low");
  makeSet(low, { a: { "1.0.0": {}, "1.1.0": {} }, b: { "0.1.0": {} } }, "low");
  const env = isolatedEnv();
  const pinned = makeProject({ sets: { low }, deps: { low: { a: "^1", b: "^0.1" } } });
  assert.equal(runCpr(["resolve"], { cwd: pinned, env }).code, 0);
  assert.equal(versionOf(pinned, "a"), "1.1.0");

  const before = atomRefs(low);
  const work = makeRepo({ README: "the publisher's clone\n" });
  const reason = "corrupts the cache on upgrade; use 1.0.0";
  const y = runCpr(["yank", "a@1.1.0", "--reason", reason, "--remote", low, "--json"], { cwd: work, env });
  assert.equal(y.code, 0, y.stderr);
  const yanked = JSON.parse(y.stdout) as { status: string; ref: string; record: string; rev: string; signed: boolean };
  assert.equal(yanked.status, "yanked");
  assert.equal(yanked.ref, "refs/eka/yank/a/1.1.0");
  assert.equal(yanked.rev, gitIn(low, "rev-parse", "refs/eka/atoms/a/1.1.0"));
  assert.equal(yanked.signed, false);
  // The atom and meta refs (all eka lists: refs/eka/atoms/) are exactly as before; only the record was added.
  assert.equal(atomRefs(low), before);
  assert.equal(gitIn(low, "rev-parse", "refs/eka/yank/a/1.1.0"), yanked.record);
  const record = parseYankRecord(gitIn(low, "cat-file", "blob", yanked.record) + "\n", "record");
  assert.deepEqual([record.label, record.version, record.commit, record.reason], ["a", "1.1.0", yanked.rev, reason]);

  const again = runCpr(["yank", "a@1.1.0", "--reason", "x", "--remote", low], { cwd: work, env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /a 1\.1\.0 is already yanked/);
  assert.equal(runCpr(["yank", "a@9.9.9", "--reason", "x", "--remote", low], { cwd: work, env }).code, 1);
  assert.equal(runCpr(["yank", "a@1.1.0", "--remote", low], { cwd: work, env }).code, 2, "--reason is required");
  assert.equal(runCpr(["yank", "a@^1", "--reason", "x", "--remote", low], { cwd: work, env }).code, 2, "an exact version");

  // A new lock skips the yanked version.
  const fresh = makeProject({ sets: { low }, deps: { low: { a: "^1" } } });
  const r = runCpr(["resolve"], { cwd: fresh, env: isolatedEnv() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(versionOf(fresh, "a"), "1.0.0");
  // Only the yanked version matches: the failure says it was left out.
  const exact = makeProject({ sets: { low }, deps: { low: { a: "=1.1.0" } } });
  const e = runCpr(["resolve"], { cwd: exact, env: isolatedEnv() });
  assert.equal(e.code, 1);
  assert.match(e.stderr, /yanked versions are never picked for a new lock, and these were left out: a 1\.1\.0/);

  // The existing lock keeps it, with a warning naming the reason, while something else is resolved.
  const keep = runCpr(["update", "b", "--json"], { cwd: pinned, env });
  assert.equal(keep.code, 0, keep.stderr);
  const warnings = (JSON.parse(keep.stdout) as { warnings?: { code: string; message: string }[] }).warnings ?? [];
  assert.deepEqual(
    warnings.map((w) => w.code),
    ["resolve.yanked"],
  );
  assert.match(warnings[0]!.message, /the lock pins a 1\.1\.0, which is yanked: corrupts the cache on upgrade; use 1\.0\.0/);
  assert.equal(versionOf(pinned, "a"), "1.1.0");
  // cpr update moves off it.
  const moved = runCpr(["update", "a"], { cwd: pinned, env });
  assert.equal(moved.code, 0, moved.stderr);
  assert.equal(versionOf(pinned, "a"), "1.0.0");
  assert.match(moved.stdout, /^~ a 1\.1\.0 -> 1\.0\.0  downgraded \(minor\)/m);

  // cpr ls shows it, with the reason.
  const ls = runCpr(["ls", low, "--json"], { cwd: work, env });
  assert.equal(ls.code, 0, ls.stderr);
  const atoms = (JSON.parse(ls.stdout) as { atoms: { label: string; version: string; yanked: { reason: string } | null }[] }).atoms;
  assert.deepEqual(
    atoms.map((a) => [a.label, a.version, a.yanked?.reason ?? null]),
    [
      ["a", "1.0.0", null],
      ["a", "1.1.0", reason],
      ["b", "0.1.0", null],
    ],
  );
  const human = runCpr(["ls", low], { cwd: work, env: { ...env, NO_COLOR: "1" } });
  assert.match(human.stdout, /^a +1\.1\.0 .* pre1  yanked: corrupts the cache on upgrade; use 1\.0\.0$/m);
  assert.match(human.stderr, /1 version\(s\) are yanked: a 1\.1\.0/);

  // Undo: the record is gone, the refs are as before, and a new lock may pick the version again.
  const undo = runCpr(["yank", "a@1.1.0", "--undo", "--remote", low], { cwd: work, env });
  assert.equal(undo.code, 0, undo.stderr);
  assert.match(undo.stdout, /^unyanked  a 1\.1\.0/);
  assert.equal(gitIn(low, "for-each-ref", "refs/eka/yank"), "");
  assert.equal(atomRefs(low), before);
  const none = runCpr(["yank", "a@1.1.0", "--undo", "--remote", low], { cwd: work, env });
  assert.equal(none.code, 0);
  assert.match(none.stderr, /is not yanked .*nothing to undo/);
  const again2 = makeProject({ sets: { low }, deps: { low: { a: "^1" } } });
  assert.equal(runCpr(["resolve"], { cwd: again2, env: isolatedEnv() }).code, 0);
  assert.equal(versionOf(again2, "a"), "1.1.0");
});

test("cpr yank --sign: the record carries an SSH signature that ssh-keygen -Y verify accepts", (t) => {
  if (!needTools(t, "ssh-keygen")) return;
  const low = join(tempDir("cpr-sets-"), "low");
  makeSet(low, { a: { "2.0.0": {} } }, "low");
  const keys = tempDir("cpr-keys-");
  const key = join(keys, "id");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "alice@example.org", "-f", key]);
  const allowed = join(keys, "allowed_signers");
  writeFileSync(allowed, `alice@example.org ${readFileSync(`${key}.pub`, "utf8")}`);
  const work = makeRepo({ README: "clone\n" });
  const y = runCpr(["yank", "a@2.0.0", "--reason", "security issue", "--remote", low, "--sign", key, "--json"], {
    cwd: work,
    env: isolatedEnv(),
  });
  assert.equal(y.code, 0, y.stderr);
  const doc = JSON.parse(y.stdout) as { record: string; signed: boolean };
  assert.equal(doc.signed, true);
  const text = execFileSync("git", ["cat-file", "blob", doc.record], { cwd: low }).toString("utf8");
  const record = parseYankRecord(text, "record");
  assert.match(record.signature ?? "", /^-----BEGIN SSH SIGNATURE-----/);
  const dir = tempDir("cpr-verify-");
  writeFileSync(join(dir, "sig"), record.signature!);
  const ok = execFileSync("ssh-keygen", ["-Y", "verify", "-f", allowed, "-I", "alice@example.org", "-n", "git", "-s", join(dir, "sig")], {
    input: record.payload,
  }).toString();
  assert.match(ok, /Good "git" signature for alice@example\.org/);
});
