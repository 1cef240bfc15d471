import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomToml, commitAll, gitIn, makeBare, makeRepo, refsOf, tempDir, writeFiles } from "../support/repo.js";
import { makeSet } from "../resolve/fixture.js";
import { initTo, publishByHand, publishTo, resolveAtom } from "./fixture.js";

/**
 * docs/formats.md §12: every atom is evaluated from its own published tree with its own atom.lock, so publish refuses a composed
 * (not static) atom whose commit has no lock satisfying its manifest. Locks are written by the real resolver.
 */

const NIX = '\n[compose.as]\nnix = "default.nix"\n';

function composed(label: string, version = "0.1.0", extra = ""): string {
  return atomToml(label, version, NIX + extra);
}

async function setup(files: Record<string, string>): Promise<{ dir: string; bare: string }> {
  const dir = makeRepo(files);
  const bare = makeBare();
  await initTo(dir, bare);
  return { dir, bare };
}

test("composed atoms without atom.lock are refused, each named with the fix; the run writes and pushes nothing", async () => {
  const { dir, bare } = await setup({
    "app/atom.toml": composed("app"),
    "app/default.nix": "{ }\n",
    "tool/atom.toml": atomToml(
      "tool",
      "2.0.0",
      '\n[package.sets]\natom = "https://github.com/ekala-project/atom"\n\n[compose.with.atom-nix]\nfrom = "atom"\n',
    ),
    "lib/atom.toml": atomToml("lib", "0.1.0"),
  });
  const remoteBefore = refsOf(bare);
  const localBefore = refsOf(dir);
  const r = await publishTo(dir, bare);
  assert.deepEqual(r.published, []);
  const error = (label: string) => r.failed.find((f) => f.label === label)!.error;
  assert.match(
    error("app"),
    /^cannot publish app 0\.1\.0: it is composed \(\[compose\.as\] nix = "default\.nix"\) but has no atom\.lock, so no consumer can evaluate it/,
  );
  assert.match(error("app"), /docs\/formats\.md §12.*; run `cpr resolve` in app, then commit atom\.lock$/);
  assert.match(error("tool"), /^cannot publish tool 2\.0\.0: it is composed \(\[compose\.with\.atom-nix\]\) but has no atom\.lock/);
  assert.match(error("lib"), /not published: other atoms of this run were refused/);
  assert.equal(refsOf(bare), remoteBefore);
  assert.equal(refsOf(dir), localBefore);

  // A dry run says the same; the atom without [compose] alone publishes.
  const dry = await publishTo(dir, bare, { all: false, targets: ["app"], dryRun: true });
  assert.match(dry.failed[0]!.error, /has no atom\.lock/);
  const lib = await publishTo(dir, bare, { all: false, targets: ["lib"] });
  assert.deepEqual(
    lib.published.map((a) => a.label),
    ["lib"],
  );
});

test("the lock is read from the commit: an uncommitted lock does not count, a committed one does", async () => {
  const { dir, bare } = await setup({ "app/atom.toml": composed("app"), "app/default.nix": "{ }\n" });
  await resolveAtom(join(dir, "app"));
  assert.ok(existsSync(join(dir, "app/atom.lock")));
  const uncommitted = await publishTo(dir, bare);
  assert.match(uncommitted.failed[0]?.error ?? "", /has no atom\.lock/);
  commitAll(dir, "app: lock");
  rmSync(join(dir, "app/atom.lock"));
  const r = await publishTo(dir, bare);
  assert.deepEqual(r.failed, []);
  assert.deepEqual(
    r.published.map((a) => a.label),
    ["app"],
  );
  assert.match(gitIn(bare, "ls-tree", "--name-only", r.published[0]!.rev), /^atom\.lock$/m);
});

test("static atoms and atoms without [compose] need no lock", async () => {
  const { dir, bare } = await setup({
    "conf/atom.toml": atomToml("conf", "1.0.0", '\n[compose.as]\nstatic = "config"\n'),
    "locker/atom.toml": atomToml("locker", "0.1.6", "\n[locker.nix]\nx = 1\n"),
  });
  const r = await publishTo(dir, bare);
  assert.deepEqual(r.failed, []);
  assert.deepEqual(
    r.published.map((a) => a.label),
    ["conf", "locker"],
  );
});

test("a lock that does not satisfy the manifest is refused with the reason; the resolved one publishes", async () => {
  const setDir = tempDir("cpr-set-");
  makeSet(setDir, { x: { "1.0.0": {}, "2.0.0": {} } });
  const manifest = (req: string, extra = "") =>
    atomToml("app", "0.1.0", `\n[package.sets]\ns = "${setDir}"\n${NIX}\n[deps.from.s]\nx = "${req}"\n${extra}`);
  const { dir, bare } = await setup({ "app/atom.toml": manifest("^1"), "app/default.nix": "{ }\n" });
  await resolveAtom(join(dir, "app"));
  commitAll(dir, "app: lock");
  const good = { manifest: readFileSync(join(dir, "app/atom.toml"), "utf8"), lock: readFileSync(join(dir, "app/atom.lock"), "utf8") };
  assert.match(good.lock, /label = "x"\nversion = "1\.0\.0"/);

  const refusal = async (files: { manifest?: string; lock?: string }): Promise<string> => {
    writeFileSync(join(dir, "app/atom.toml"), files.manifest ?? good.manifest);
    writeFileSync(join(dir, "app/atom.lock"), files.lock ?? good.lock);
    commitAll(dir, "variant");
    const r = await publishTo(dir, bare, { dryRun: true });
    assert.deepEqual(r.published, []);
    const error = r.failed[0]!.error;
    assert.match(error, /run `cpr resolve` in app, then commit atom\.lock$/);
    return error;
  };
  assert.match(
    await refusal({ manifest: manifest("^2") }),
    /its atom\.lock does not satisfy atom\.toml: \[deps\.from\.s\] x = "\^2", but the lock has x 1\.0\.0, which does not satisfy it/,
  );
  assert.match(await refusal({ manifest: manifest("^1", 'y = "^1"\n') }), /\[deps\.from\.s\] y is missing from the lock/);
  assert.match(
    await refusal({ manifest: manifest("^1").replace('nix = "default.nix"', 'nix = "other.nix"') }),
    /\[compose\.as\] nix = "other\.nix", but the lock's \[compose\] is use = "nix" \(entry "default\.nix"\)/,
  );
  assert.match(
    await refusal({ manifest: manifest("^1", '\n[deps.direct.nix]\npatch.url = "https://example.org/fix.patch"\n') }),
    /\[deps\.direct\.nix\] patch is missing from the lock/,
  );
  assert.match(await refusal({ lock: "version = 2\n" }), /its atom\.lock does not parse: unsupported lock version 2/);

  // Back to the resolved pair: it publishes.
  writeFileSync(join(dir, "app/atom.toml"), good.manifest);
  writeFileSync(join(dir, "app/atom.lock"), good.lock);
  commitAll(dir, "resolved");
  const r = await publishTo(dir, bare);
  assert.deepEqual(r.failed, []);
  assert.deepEqual(
    r.published.map((a) => a.label),
    ["app"],
  );
});

test("a dependency locked local-only is refused; published and re-resolved from a mirror, the atom publishes", async () => {
  const { dir, bare } = await setup({
    "lib/atom.toml": composed("lib"),
    "lib/default.nix": "{ }\n",
    "app/atom.toml": composed("app", "0.1.0", '\n[package.sets]\nhere = "::"\n\n[deps.from.here]\nlib = "^0.1"\n'),
    "app/default.nix": "{ }\n",
  });
  await resolveAtom(join(dir, "lib"));
  await resolveAtom(join(dir, "app"));
  assert.match(readFileSync(join(dir, "app/atom.lock"), "utf8"), /version = "0\.1\.0-local"/);
  commitAll(dir, "locks");
  const refused = await publishTo(dir, bare);
  const app = refused.failed.find((f) => f.label === "app")!.error;
  assert.match(app, /\[deps\.from\.here\] lib is locked local-only \(0\.1\.0-local, no rev\), which no consumer can fetch/);
  assert.match(
    app,
    /publish the local-only atoms first, add a URL mirror of their set to \[package\.sets\], then run `cpr resolve` in app and commit atom\.lock/,
  );

  assert.deepEqual(
    (await publishTo(dir, bare, { all: false, targets: ["lib"] })).published.map((a) => a.label),
    ["lib"],
  );
  writeFileSync(
    join(dir, "app/atom.toml"),
    readFileSync(join(dir, "app/atom.toml"), "utf8").replace('here = "::"', `here = ["::", "${bare}"]`),
  );
  await resolveAtom(join(dir, "app"));
  assert.match(
    readFileSync(join(dir, "app/atom.lock"), "utf8"),
    /label = "lib"\nversion = "0\.1\.0"\nset = "[0-9a-f]{40}"\nrev = "[0-9a-f]{40}"/,
  );
  commitAll(dir, "app: lock lib as published");
  const r = await publishTo(dir, bare);
  assert.deepEqual(r.failed, []);
  assert.deepEqual(
    r.published.map((a) => a.label),
    ["app"],
  );
  assert.deepEqual(
    r.skipped.map((a) => a.label),
    ["lib"],
  );
});

test("an atom already published without a lock is skipped, not refused: the check is for what a run publishes", async () => {
  const { dir, bare } = await setup({ "old/atom.toml": composed("old"), "old/default.nix": "{ }\n" });
  const rev = publishByHand(dir, bare, "old", "old", "0.1.0");
  writeFiles(dir, { "new/atom.toml": atomToml("new", "0.1.0") });
  commitAll(dir, "new");
  const r = await publishTo(dir, bare);
  assert.deepEqual(r.failed, []);
  assert.deepEqual(
    r.skipped.map((a) => [a.label, a.rev]),
    [["old", rev]],
  );
  assert.deepEqual(
    r.published.map((a) => a.label),
    ["new"],
  );
});
