import { test } from "node:test";
import assert from "node:assert/strict";
import { checkLock, lockSatisfies, unevaluable, unlocal, localVersionText } from "../../src/protocol/lock-check.js";
import { defaultLocker, formatLock, lockAtom, type LockDep, type Lockfile } from "../../src/protocol/lock.js";
import { parseAtomManifest } from "../../src/protocol/atom-manifest.js";
import { parseVersion } from "../../src/protocol/version.js";

const ROOT = "4abbd2644bc3585e9be95deb277ccf48f6ed26ac";
const ATOM_ROOT = "68b63bd131acd23bdfd57983fe85ba7c092ce02f";
const REV = "9b3dae67eb8c8297e822c2313e5fe24db60d90be";
const URL_S = "https://example.org/s.git";
const URL_ATOM = "https://github.com/ekala-project/atom";

const PKG = '[package]\nlabel = "app"\nversion = "0.1.0"\n';
const SETS = `\n[package.sets]\ns = "${URL_S}"\natom = "${URL_ATOM}"\n`;
const WITH = '\n[compose.with.atom-nix]\nfrom = "atom"\nversion = "^0.4"\n';
const DEPS = '\n[deps.from.s]\nx = "^1.2"\n\n[deps.direct.nix]\npatch.url = "https://example.org/fix.patch"\n';
const MANIFEST = PKG + SETS + WITH + DEPS;

function atomDep(label: string, version: string, rev: string | null = REV, set = ROOT): LockDep {
  return { type: "atom", ...lockAtom({ label, version, set, rev, mirror: rev === null ? null : URL_S }) };
}

/** The lock `cpr resolve` would write for MANIFEST. */
function goodLock(): Lockfile {
  return {
    version: 1,
    sets: { [ROOT]: { tag: "s", mirrors: [URL_S] }, [ATOM_ROOT]: { tag: "atom", mirrors: [URL_ATOM] } },
    locker: null,
    compose: { use: "atom", ...lockAtom({ label: "atom-nix", version: "0.4.4", set: ATOM_ROOT, rev: REV, mirror: URL_ATOM }), entry: "." },
    deps: [
      atomDep("x", "1.3.0"),
      { type: "nix", name: "patch", url: "https://example.org/fix.patch", hash: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" },
    ],
  };
}

function messages(manifest: string, lock: Lockfile, published = false): string[] {
  return checkLock(parseAtomManifest(manifest, "atom.toml"), lock, { published }).mismatches.map((m) => `${m.kind}: ${m.message}`);
}

test("checkLock: the resolved lock satisfies its manifest; direct ids are the deps and the composer", () => {
  const lock = goodLock();
  const r = checkLock(parseAtomManifest(MANIFEST, "atom.toml"), lock);
  assert.deepEqual(r.mismatches, []);
  const composer = lock.compose.use === "atom" ? lock.compose.id : "";
  assert.deepEqual([...r.direct].sort(), [(lock.deps[0] as { id: string }).id, composer].sort());
});

test("checkLock: each way a lock falls short, named", () => {
  const lock = goodLock();
  assert.deepEqual(messages(MANIFEST.replace('x = "^1.2"', 'x = "^2"'), lock), [
    'dep: [deps.from.s] x = "^2", but the lock has x 1.3.0, which does not satisfy it',
  ]);
  assert.deepEqual(messages(MANIFEST.replace('x = "^1.2"', 'x = "^1.2"\ny = "^1"'), lock), [
    "dep: [deps.from.s] y is missing from the lock",
  ]);
  assert.deepEqual(messages(MANIFEST.replace(`s = "${URL_S}"`, 's = "https://example.org/moved.git"'), lock), [
    "dep: [package.sets].s is not in the lock's [sets] with the same mirrors, so [deps.from.s] (x) is not locked",
  ]);
  assert.deepEqual(messages(MANIFEST.replace('version = "^0.4"', 'version = "^0.5"'), lock), [
    'composer: [compose.with.atom-nix] (from atom, version "^0.5", entry "."), but the lock\'s [compose] is use = "atom" (atom-nix 0.4.4, entry ".")',
  ]);
  assert.deepEqual(messages(PKG + SETS + '\n[compose.as]\nnix = "default.nix"\n' + DEPS, lock), [
    'composer: [compose.as] nix = "default.nix", but the lock\'s [compose] is use = "atom" (atom-nix 0.4.4, entry ".")',
  ]);
  assert.deepEqual(messages(MANIFEST.replace("fix.patch", "other.patch"), lock), [
    "direct: [deps.direct.nix] patch is locked for another source (nix https://example.org/fix.patch)",
  ]);
  assert.deepEqual(messages(MANIFEST + 'tool.tar = "https://example.org/t.tar.gz"\n', lock), [
    "direct: [deps.direct.nix] tool is missing from the lock",
  ]);
  assert.deepEqual(messages(PKG + SETS + WITH + '\n[deps.from.s]\nx = "^1.2"\n', lock), [
    "stale: the lock still holds direct Nix entries the manifest does not declare: patch",
  ]);
  const nix = PKG + SETS + '\n[compose.as]\nnix = "default.nix"\n';
  assert.deepEqual(messages(nix, { ...lock, compose: { use: "nix", entry: "default.nix" }, deps: [atomDep("x", "1.3.0")] }), [
    "stale: the lock holds atom entries, but the manifest declares no atom dependency",
  ]);
});

test("checkLock: local-only atoms satisfy a work-tree resolve, not a published tree", () => {
  const lock = { ...goodLock(), deps: [atomDep("x", "1.3.0-local", null), atomDep("y", "0.1.0-local", null), goodLock().deps[1]!] };
  assert.deepEqual(messages(MANIFEST, lock), []);
  assert.deepEqual(messages(MANIFEST, lock, true), [
    "local: [deps.from.s] x is locked local-only (1.3.0-local, no rev), which no consumer can fetch",
    "local: y (pulled in by a dependency) is locked local-only (0.1.0-local, no rev), which no consumer can fetch",
  ]);
});

test("lockSatisfies: checkLock, then every atom entry reachable in the graph recorded with the lock, when there is one", () => {
  const manifest = parseAtomManifest(MANIFEST, "atom.toml");
  const lock = goodLock();
  const x = (lock.deps[0] as { id: string }).id;
  const y = atomDep("y", "1.0.0");
  const withY: Lockfile = { ...lock, deps: [...lock.deps, y] };
  const yId = (y as { id: string }).id;
  assert.deepEqual(checkLock(manifest, withY).mismatches, [], "a transitive atom is no mismatch by itself");
  // Without a recorded graph, reachability is not known: the lock is taken as it is.
  assert.equal(lockSatisfies(manifest, withY, null), true);
  // x requires y: every entry is reachable.
  assert.equal(lockSatisfies(manifest, withY, { [x]: [{ dep: yId }] }), true);
  // Nothing requires y any more: the lock holds an atom no one needs, so it must be resolved again.
  assert.equal(lockSatisfies(manifest, withY, { [x]: [] }), false);
  // A mismatch decides whatever the graph says.
  assert.equal(
    lockSatisfies(parseAtomManifest(MANIFEST.replace('x = "^1.2"', 'x = "^2"'), "atom.toml"), withY, { [x]: [{ dep: yId }] }),
    false,
  );
});

test("unevaluable: no [compose] and static need nothing; composed atoms need a satisfying lock", () => {
  const text = (l: Lockfile) => formatLock(l, { defaultLocker: defaultLocker("1".repeat(40)) });
  assert.equal(unevaluable(PKG + "\n[locker.x]\ny = 1\n", null, "atom.toml", "atom.lock"), null);
  assert.equal(unevaluable(PKG + '\n[compose.as]\nstatic = "config"\n\n[deps.from.s]\nx = "1"\n', null, "atom.toml", "atom.lock"), null);
  assert.equal(
    unevaluable(MANIFEST + "\n[locker.x]\ny = 1\n", text(goodLock()), "atom.toml", "atom.lock"),
    null,
    "unknown top-level tables are ignored, as publishing ignores them",
  );
  const none = unevaluable(MANIFEST, null, "atom.toml", "atom.lock")!;
  assert.deepEqual(
    [none.kind, none.message],
    ["no-lock", "it is composed ([compose.with.atom-nix]) but has no atom.lock, so no consumer can evaluate it"],
  );
  const bad = unevaluable(MANIFEST, "version = 1\n[compose\n", "a/atom.toml", "a/atom.lock")!;
  assert.equal(bad.kind, "bad-lock");
  assert.match(bad.message, /^its atom\.lock does not parse: a\/atom\.lock is not valid TOML/);
  const unsat = unevaluable(MANIFEST.replace('x = "^1.2"', 'x = "^2"'), text(goodLock()), "atom.toml", "atom.lock")!;
  assert.equal(unsat.kind, "unsatisfied");
  assert.match(unsat.message, /^its atom\.lock does not satisfy atom\.toml: \[deps\.from\.s\] x = "\^2"/);
  const broken = unevaluable(PKG + '\n[compose.with.atom-nix]\nfrom = "nowhere"\n', null, "a/atom.toml", "a/atom.lock")!;
  assert.equal(broken.kind, "manifest");
  assert.match(broken.message, /^a\/atom\.toml has a \[compose\] table but cannot be resolved: .*nowhere/);
});

test("local versions: -local, or .local after a pre-release, and back", () => {
  assert.equal(localVersionText(parseVersion("1.2.3")), "1.2.3-local");
  assert.equal(localVersionText(parseVersion("1.2.3-rc.1")), "1.2.3-rc.1.local");
  assert.deepEqual([unlocal("1.2.3-local").version.text, unlocal("1.2.3-local").local], ["1.2.3", true]);
  assert.deepEqual([unlocal("1.2.3-rc.1.local").version.text, unlocal("1.2.3").local], ["1.2.3-rc.1", false]);
});
