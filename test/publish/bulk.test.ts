import { test } from "node:test";
import assert from "node:assert/strict";
import { atomCommitId } from "../../src/protocol/commit.js";
import { atomToml, gitIn, makeBare, makeRepo } from "../support/repo.js";
import { fsckStrict, initTo, publishTo, refMap } from "./fixture.js";

/**
 * A run large enough to take the bulk paths (objects written as one pack through index-pack, batched cat-file
 * reads): the result must be exactly what the small path produces — same ids, same refs, a clean fsck.
 */
test("publishing 300 atoms writes their commits as one pack, with the exact pre1 ids, and fsck --strict stays clean", async () => {
  const files: Record<string, string> = {};
  const count = 300;
  for (let i = 0; i < count; i++) {
    const name = `pkg${String(i).padStart(3, "0")}`;
    files[`pkgs/${name.slice(0, 4)}/${name}/atom.toml`] = atomToml(name, `1.${i % 7}.${i}`);
    files[`pkgs/${name.slice(0, 4)}/${name}/default.nix`] = `{ }: "${name}"\n`;
  }
  const dir = makeRepo(files);
  const bare = makeBare();
  await initTo(dir, bare);
  const looseBefore = Number(/count: (\d+)/.exec(gitIn(dir, "count-objects", "-v"))![1]);

  const result = await publishTo(dir, bare);
  assert.equal(result.published.length, count);
  assert.deepEqual(result.failed, []);

  const head = gitIn(dir, "rev-parse", "HEAD");
  const remote = refMap(bare);
  for (const a of result.published) {
    const path = `pkgs/${a.label.slice(0, 4)}/${a.label}`;
    const expected = atomCommitId({ tree: gitIn(dir, "rev-parse", `HEAD:${path}`), origin: head, label: a.label, version: a.version });
    assert.equal(a.rev, expected, a.label);
    assert.equal(remote.get(`refs/eka/atoms/${a.label}/${a.version}`), expected);
  }
  assert.equal([...remote.keys()].filter((r) => r.startsWith("refs/eka/")).length, count * 3);
  // The 300 commits went into a pack, not 300 loose files.
  const looseAfter = Number(/count: (\d+)/.exec(gitIn(dir, "count-objects", "-v"))![1]);
  assert.ok(looseAfter - looseBefore < count, `expected a pack, got ${looseAfter - looseBefore} new loose objects`);
  fsckStrict(dir);
  fsckStrict(bare);

  const again = await publishTo(dir, bare);
  assert.equal(again.skipped.length, count);
  assert.equal(again.published.length, 0);
});
