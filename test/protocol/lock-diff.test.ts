import { test } from "node:test";
import assert from "node:assert/strict";
import { atomId } from "../../src/protocol/id.js";
import { defaultLocker, type LockDep, type Lockfile } from "../../src/protocol/lock.js";
import { diffCounts, diffLocks, formatDiff } from "../../src/protocol/lock-diff.js";

const ROOT = "1".repeat(40);
const atom = (label: string, version: string, rev: string): LockDep => ({
  type: "atom",
  label,
  version,
  set: ROOT,
  rev: rev.repeat(40),
  mirror: "https://example.org/set",
  id: atomId(ROOT, label),
});
const lock = (deps: LockDep[]): Lockfile => ({
  version: 1,
  sets: { [ROOT]: { tag: "s", mirrors: ["https://example.org/set"] } },
  locker: defaultLocker(),
  compose: { use: "static" },
  deps,
});
const hash = `sha256-${"A".repeat(43)}=`;

test("diffLocks: added, removed, upgraded, downgraded, republished, and direct dependencies", () => {
  const before = lock([
    atom("a", "1.0.0", "a"),
    atom("b", "2.0.0", "b"),
    atom("c", "1.0.0", "c"),
    atom("d", "1.0.0-rc.1", "d"),
    atom("gone", "0.1.0", "e"),
    { type: "nix", name: "note", url: "https://example.org/a", hash },
    { type: "nix+git", name: "old", url: "https://example.org/g", version: null, rev: "f".repeat(40) },
  ]);
  const after = lock([
    atom("a", "1.2.3", "1"),
    atom("b", "1.9.0", "2"),
    atom("c", "1.0.0", "3"),
    atom("d", "1.0.0", "4"),
    atom("new", "3.0.0", "5"),
    { type: "nix", name: "note", url: "https://example.org/b", hash },
    { type: "nix+tar", name: "t", url: "https://example.org/t.tar", hash },
  ]);
  const diff = diffLocks(before, after);
  assert.deepEqual(
    diff.atoms.map((c) => [c.kind, c.label, c.from?.version ?? null, c.to?.version ?? null, c.size]),
    [
      ["upgraded", "a", "1.0.0", "1.2.3", "minor"],
      ["downgraded", "b", "2.0.0", "1.9.0", "major"],
      ["rev", "c", "1.0.0", "1.0.0", null],
      ["upgraded", "d", "1.0.0-rc.1", "1.0.0", "pre-release"],
      ["removed", "gone", "0.1.0", null, null],
      ["added", "new", null, "3.0.0", null],
    ],
  );
  assert.deepEqual(
    diff.direct.map((d) => [d.kind, d.name]),
    [
      ["changed", "note"],
      ["removed", "old"],
      ["added", "t"],
    ],
  );
  const lines = formatDiff(diff, new Map([[atomId(ROOT, "a"), { from: "9".repeat(40), to: "8".repeat(40) }]]));
  assert.equal(lines[0], `~ a 1.0.0 -> 1.2.3  upgraded (minor)  origin ${"9".repeat(12)}..${"8".repeat(12)}`);
  assert.equal(lines[2], `~ c 1.0.0  republished: rev ${"c".repeat(12)} -> ${"3".repeat(12)}`);
  assert.equal(lines[6], `~ nix note: nix https://example.org/a ${hash} -> nix https://example.org/b ${hash}`);
  assert.equal(diffCounts(diff), "1 added, 1 removed, 2 upgraded, 1 downgraded, 1 republished, 3 direct dependencies changed");
  assert.equal(diffCounts(diffLocks(after, after)), "no changes");
  assert.deepEqual(diffLocks(null, null), { atoms: [], direct: [] });
});
