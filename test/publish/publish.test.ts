import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Repo } from "../../src/git/repo.js";
import { listRemoteSet } from "../../src/git/remote-set.js";
import { pickRoot, setRoot } from "../../src/git/root.js";
import { parseGitUrl } from "../../src/protocol/uri.js";
import { recordingReporter } from "../../src/protocol/report.js";
import { atomCommitBody, atomCommitId } from "../../src/protocol/commit.js";
import { CprError, UsageError } from "../../src/protocol/errors.js";
import { atomId } from "../../src/protocol/id.js";
import { atomToml, commitAll, gitIn, makeBare, makeRepo, refsOf, sh, tempDir, writeFiles } from "../support/repo.js";
import { fsckStrict, initTo, publishTo, refMap } from "./fixture.js";

const monorepo = {
  "pkgs/foo/atom.toml": atomToml("foo", "0.1.0"),
  "pkgs/foo/default.nix": "{ }\n",
  "pkgs/foo/sub/atom.lock": "version = 1\n",
  // No [compose] (a locker, like nix-lock): publishing reads only [package], so unknown and broken tables are fine.
  "pkgs/bar/atom.toml": atomToml("bar", "1.2.3", "\n[locker.x]\ny = 1\n\n[deps.whatever]\nx = 1\n"),
  "ひらがな/atom.toml": atomToml("ひらがな", "1.0.0-rc.1"),
  "README.md": "hello\n",
};

/** A work repo with the monorepo files and an initialized bare remote. */
async function setup(files: Record<string, string> = monorepo): Promise<{ dir: string; bare: string; root: string }> {
  const dir = makeRepo(files);
  const bare = makeBare();
  const init = await initTo(dir, bare);
  return { dir, bare, root: init.root };
}

test("publish --all to a bare remote: refs, exact commit bytes, trees equal the source subtrees, fsck --strict clean", async () => {
  const { dir, bare, root } = await setup();
  const head = gitIn(dir, "rev-parse", "HEAD");
  assert.equal(root, head);
  const result = await publishTo(dir, bare);
  assert.deepEqual(result.failed, []);
  assert.deepEqual(result.skipped, []);
  assert.deepEqual(
    result.published.map((a) => [a.label, a.version]),
    [
      ["bar", "1.2.3"],
      ["foo", "0.1.0"],
      ["ひらがな", "1.0.0-rc.1"],
    ],
  );
  const remote = refMap(bare);
  assert.equal(remote.get("refs/ekala/init"), root);
  for (const [path, a] of [
    ["pkgs/bar", result.published[0]!],
    ["pkgs/foo", result.published[1]!],
    ["ひらがな", result.published[2]!],
  ] as const) {
    const tree = gitIn(dir, "rev-parse", `HEAD:${path}`);
    const input = { tree, origin: head, label: a.label, version: a.version };
    assert.equal(a.rev, atomCommitId(input));
    assert.equal(a.id, atomId(root, a.label));
    assert.equal(remote.get(`refs/eka/atoms/${a.label}/${a.version}`), a.rev);
    assert.equal(remote.get(`refs/eka/meta/${a.label}/${a.version}/manifest`), gitIn(dir, "rev-parse", `HEAD:${path}/atom.toml`));
    assert.equal(remote.get(`refs/eka/meta/${a.label}/${a.version}/origin`), head);
    assert.equal(gitIn(bare, "rev-parse", `${a.rev}^{tree}`), tree);
    const raw = gitIn(bare, "cat-file", "commit", a.rev);
    assert.equal(raw, atomCommitBody(input).toString("utf8"));
  }
  assert.equal(remote.size, 1 + 3 * 3);
  // The same refs were written locally.
  const local = refMap(dir);
  for (const [name, oid] of remote) assert.equal(local.get(name), oid, name);
  fsckStrict(bare);
});

test("two independent clones publishing the same commit give identical ids (and the docs/formats.md §7.2 vectors hold)", async () => {
  const a = makeRepo(monorepo);
  const b = makeRepo(monorepo);
  assert.equal(gitIn(a, "rev-parse", "HEAD"), gitIn(b, "rev-parse", "HEAD"));
  const bareA = makeBare();
  const bareB = makeBare();
  await initTo(a, bareA);
  await initTo(b, bareB);
  const ra = await publishTo(a, bareA);
  const rb = await publishTo(b, bareB);
  assert.deepEqual(ra.published, rb.published);
  assert.equal(refsOf(bareA), refsOf(bareB));
  assert.equal(
    atomCommitId({ tree: "1".repeat(40), origin: "2".repeat(40), label: "foo", version: "0.1.0" }),
    "610be71f78657e829a1e78cc635d58624ae2f791",
  );
  assert.equal(
    atomCommitId({ tree: "3".repeat(40), origin: "4".repeat(40), label: "ひらがな", version: "1.0.0-rc.1" }),
    "32543cde6668ecaa554b6d9a478d78debba0bfc0",
  );
});

test("re-publishing unchanged is skipped; bumping one atom of a monorepo publishes only that one", async () => {
  const { dir, bare } = await setup();
  const first = await publishTo(dir, bare);
  const again = await publishTo(dir, bare);
  assert.deepEqual(again.published, []);
  assert.deepEqual(again.skipped, first.published);
  writeFiles(dir, { "README.md": "changed\n" });
  commitAll(dir, "unrelated change");
  const unrelated = await publishTo(dir, bare);
  assert.deepEqual(unrelated.published, []);
  assert.deepEqual(unrelated.skipped, first.published, "same trees from another origin are skipped, keeping the published rev");
  writeFiles(dir, { "pkgs/foo/atom.toml": atomToml("foo", "0.2.0"), "pkgs/foo/default.nix": "{ x = 1; }\n" });
  commitAll(dir, "bump foo");
  const bumped = await publishTo(dir, bare);
  assert.deepEqual(
    bumped.published.map((a) => `${a.label}@${a.version}`),
    ["foo@0.2.0"],
  );
  assert.deepEqual(
    bumped.skipped.map((a) => a.label),
    ["bar", "ひらがな"],
  );
  assert.ok(refMap(bare).has("refs/eka/atoms/foo/0.1.0"));
  fsckStrict(bare);
});

test("a fresh clone verifies published versions from their origin, without fetching the atom commits", async () => {
  const { dir, bare } = await setup();
  const first = await publishTo(dir, bare);
  const clone = tempDir();
  gitIn(clone, "clone", "-q", `file://${dir}`, ".");
  const result = await publishTo(clone, bare);
  assert.deepEqual(result.skipped, first.published);
  for (const a of first.published) assert.throws(() => gitIn(clone, "cat-file", "-e", a.rev), "atom commit not fetched");
});

test("a clone without the published origin fetches the atom commit (into a quarantine) to compare trees", async () => {
  const { dir, bare } = await setup();
  gitIn(dir, "branch", "base");
  writeFiles(dir, { "pkgs/foo/default.nix": "{ v = 2; }\n" });
  commitAll(dir, "foo v2");
  const published = (await publishTo(dir, bare, { targets: ["foo"], all: false })).published[0]!;
  const make = (content: string) => {
    const clone = tempDir();
    gitIn(clone, "clone", "-q", "--single-branch", "-b", "base", `file://${dir}`, ".");
    writeFiles(clone, { "pkgs/foo/default.nix": content, "elsewhere.txt": content });
    commitAll(clone, "independent change");
    assert.throws(() => gitIn(clone, "cat-file", "-e", published.rev));
    return clone;
  };
  const same = await publishTo(make("{ v = 2; }\n"), bare, { targets: ["foo"], all: false });
  assert.deepEqual(same.skipped, [published]);
  const different = make("{ v = 3; }\n");
  const dry = await publishTo(different, bare, { targets: ["foo"], all: false, dryRun: true });
  assert.match(dry.failed[0]!.error, /different content/, "a dry run compares trees too");
  assert.throws(() => gitIn(different, "cat-file", "-e", published.rev), "the fetch kept nothing");
  const before = refsOf(bare);
  const refused = await publishTo(different, bare, { targets: ["foo"], all: false });
  assert.match(refused.failed[0]!.error, new RegExp(`rev ${published.rev}, origin ${gitIn(dir, "rev-parse", "HEAD")}`));
  assert.equal(refsOf(bare), before);
});

test("ekala.toml present or absent: same atoms, same trees, same commit bytes for the same origin", async () => {
  const listed = { ...monorepo, "ekala.toml": '[set]\npackages = [\n  "pkgs/foo",\n  "pkgs/bar",\n  "ひらがな",\n]\n' };
  const withSet = await setup(listed);
  const without = await setup(monorepo);
  const a = await publishTo(withSet.dir, withSet.bare);
  const b = await publishTo(without.dir, without.bare);
  assert.deepEqual(
    a.published.map((x) => x.label),
    b.published.map((x) => x.label),
  );
  const originA = gitIn(withSet.dir, "rev-parse", "HEAD");
  const originB = gitIn(without.dir, "rev-parse", "HEAD");
  a.published.forEach((x, i) => {
    const y = b.published[i]!;
    assert.equal(gitIn(withSet.bare, "rev-parse", `${x.rev}^{tree}`), gitIn(without.bare, "rev-parse", `${y.rev}^{tree}`));
    assert.equal(
      gitIn(withSet.bare, "cat-file", "commit", x.rev).replace(originA, "O"),
      gitIn(without.bare, "cat-file", "commit", y.rev).replace(originB, "O"),
    );
  });
  // An atom directory not listed in ekala.toml cannot be requested.
  writeFiles(withSet.dir, { "extra/atom.toml": atomToml("extra", "0.1.0") });
  commitAll(withSet.dir, "unlisted atom");
  await assert.rejects(
    publishTo(withSet.dir, withSet.bare, { targets: ["extra"], all: false }),
    (e: unknown) => e instanceof CprError && e.code === "publish.not-listed",
  );
});

/** Every refusal leaves the remote's refs and the local refs byte-for-byte unchanged. */
async function assertRefused(
  files: Record<string, string>,
  check: (dir: string, bare: string) => Promise<void>,
  prepare?: (dir: string, bare: string) => Promise<void>,
) {
  const { dir, bare } = await setup(files);
  await prepare?.(dir, bare);
  const remoteBefore = refsOf(bare);
  const localBefore = refsOf(dir);
  await check(dir, bare);
  assert.equal(refsOf(bare), remoteBefore);
  assert.equal(refsOf(dir), localBefore);
}

const rejectsWith = (code: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof CprError && e.code === code && (!pattern || pattern.test(`${e.message} ${e.where} ${e.hint}`));

test("refusal: duplicate labels name both paths", async () => {
  await assertRefused({ "a/atom.toml": atomToml("same", "0.1.0"), "b/atom.toml": atomToml("same", "0.2.0") }, async (dir, bare) => {
    await assert.rejects(publishTo(dir, bare), rejectsWith("publish.duplicate-label", /a and b/));
  });
});

test("refusal: an atom at the repository root", async () => {
  await assertRefused({ "atom.toml": atomToml("top", "0.1.0"), "x/atom.toml": atomToml("x", "0.1.0") }, async (dir, bare) => {
    await assert.rejects(publishTo(dir, bare), rejectsWith("atom.at-root"));
  });
});

test("refusal: an invalid manifest, with file:line:col", async () => {
  await assertRefused({ "x/atom.toml": '[package]\nlabel = "x"\nversion = "01.0.0"\n' }, async (dir, bare) => {
    await assert.rejects(publishTo(dir, bare), (e: unknown) => e instanceof CprError && /^x\/atom\.toml:3:\d+$/.test(e.where ?? ""));
  });
});

test("refusal: remote not initialized (hint: cpr init) and remote with another root (both ids)", async () => {
  const dir = makeRepo(monorepo);
  const bare = makeBare();
  const before = refsOf(dir);
  await assert.rejects(publishTo(dir, bare), rejectsWith("publish.not-initialized", /cpr init/));
  const other = makeRepo({ "z/atom.toml": atomToml("z", "0.1.0") });
  const init = await initTo(other, bare);
  const remoteBefore = refsOf(bare);
  const root = gitIn(dir, "rev-parse", "HEAD");
  await assert.rejects(
    publishTo(dir, bare),
    (e: unknown) =>
      e instanceof CprError && e.code === "publish.root-mismatch" && e.message.includes(init.root) && e.message.includes(root),
  );
  assert.equal(refsOf(bare), remoteBefore);
  assert.equal(refsOf(dir), before);
});

test("refusal: a version whose ref name is invalid", async () => {
  await assertRefused({ "x/atom.toml": atomToml("x", "1.0.0-x.lock"), "y/atom.toml": atomToml("y", "1.0.0") }, async (dir, bare) => {
    const r = await publishTo(dir, bare);
    assert.deepEqual(r.published, []);
    assert.deepEqual(
      r.failed.map((f) => f.label),
      ["x", "y"],
    );
    assert.match(r.failed[0]!.error, /invalid ref name/);
    assert.match(r.failed[1]!.error, /all-or-nothing/);
  });
});

test("refusal: the same version with another tree names the existing rev and origin, and says to bump", async () => {
  let published = "";
  let origin = "";
  await assertRefused(
    monorepo,
    async (dir, bare) => {
      const r = await publishTo(dir, bare);
      assert.deepEqual(r.published, []);
      const foo = r.failed.find((f) => f.label === "foo")!;
      assert.ok(foo.error.includes(published) && foo.error.includes(origin), foo.error);
      assert.match(foo.error, /bump/);
    },
    async (dir, bare) => {
      origin = gitIn(dir, "rev-parse", "HEAD");
      published = (await publishTo(dir, bare)).published.find((a) => a.label === "foo")!.rev;
      writeFiles(dir, { "pkgs/foo/default.nix": "{ changed = true; }\n", "new/atom.toml": atomToml("new", "0.1.0") });
      commitAll(dir, "change without bump");
    },
  );
});

test("refusal: a local ref holding another value", async () => {
  await assertRefused(
    monorepo,
    async (dir, bare) => {
      const r = await publishTo(dir, bare, { targets: ["foo"], all: false });
      assert.match(r.failed[0]!.error, /local ref refs\/eka\/atoms\/foo\/0\.1\.0 already points at/);
    },
    async (dir) => {
      gitIn(dir, "update-ref", "refs/eka/atoms/foo/0.1.0", gitIn(dir, "rev-parse", "HEAD"));
    },
  );
});

test("--dry-run reports and writes nothing", async () => {
  await assertRefused(monorepo, async (dir, bare) => {
    const r = await publishTo(dir, bare, { dryRun: true });
    assert.equal(r.published.length, 3);
    assert.equal(r.dryRun, true);
    for (const a of r.published) assert.throws(() => gitIn(dir, "cat-file", "-e", a.rev), "no atom commit was written");
  });
});

test("selection: default is the atom containing cwd, labels and paths work, outside an atom is a usage error", async () => {
  const { dir, bare } = await setup();
  const sub = join(dir, "pkgs/foo/sub");
  assert.deepEqual(
    (await publishTo(dir, bare, { all: false, cwd: sub, dryRun: true })).published.map((a) => a.label),
    ["foo"],
  );
  assert.deepEqual(
    (await publishTo(dir, bare, { all: false, targets: ["bar", "./ひらがな"], dryRun: true })).published.map((a) => a.label),
    ["bar", "ひらがな"],
  );
  await assert.rejects(publishTo(dir, bare, { all: false, cwd: join(dir, "pkgs"), dryRun: true }), UsageError);
  await assert.rejects(publishTo(dir, bare, { all: false, targets: ["nosuch"], dryRun: true }), rejectsWith("publish.unknown-label"));
  await assert.rejects(publishTo(dir, bare, { all: false, targets: ["README.md"], dryRun: true }), rejectsWith("publish.not-an-atom"));
});

test("--rev publishes another commit, reading manifests from the commit and not the work tree", async () => {
  const { dir, bare } = await setup();
  const first = gitIn(dir, "rev-parse", "HEAD");
  writeFiles(dir, { "pkgs/foo/atom.toml": atomToml("foo", "0.3.0") });
  commitAll(dir, "bump");
  writeFiles(dir, { "pkgs/foo/atom.toml": "not toml at all [" });
  const r = await publishTo(dir, bare, { rev: first, targets: ["foo"], all: false });
  assert.deepEqual(
    r.published.map((a) => a.version),
    ["0.1.0"],
  );
  assert.equal(refMap(bare).get("refs/eka/meta/foo/0.1.0/origin"), first);
});

test("several remotes: one atomic push each", async () => {
  const { dir, bare } = await setup();
  const second = makeBare();
  await initTo(dir, second);
  await publishTo(dir, bare, { targets: ["foo"], all: false });
  const r = await publishTo(dir, bare, { remotes: [bare, second] });
  assert.deepEqual(
    r.published.map((a) => a.label),
    ["bar", "foo", "ひらがな"],
  );
  assert.equal(refsOf(bare), refsOf(second));
});

test("mirrors agree: a version already published elsewhere is pushed as the same commit, with its origin", async () => {
  const { dir, bare } = await setup();
  const first = await publishTo(dir, bare, { targets: ["foo"], all: false });
  writeFiles(dir, { "README.md": "later\n" });
  commitAll(dir, "unrelated");
  // A new mirror, later: foo is adopted from the local ref (same tree), not rebuilt from the new HEAD.
  const mirror = makeBare();
  await initTo(dir, mirror);
  const later = await publishTo(dir, mirror, { targets: ["foo"], all: false });
  assert.deepEqual(later.published, first.published);
  const eka = (d: string) =>
    refsOf(d)
      .split("\n")
      .filter((l) => l.includes("refs/eka/"))
      .join("\n");
  assert.equal(eka(mirror), eka(bare));
  // A clone without local atom refs, two remotes in one run: skipped on one, the same commit pushed to the other.
  const clone = tempDir();
  gitIn(clone, "clone", "-q", `file://${dir}`, ".");
  const third = makeBare();
  await initTo(clone, third);
  const both = await publishTo(clone, bare, { remotes: [bare, third], targets: ["foo"], all: false });
  assert.deepEqual(both.published, first.published);
  assert.equal(eka(third), eka(bare));
  fsckStrict(third);
});

test("a push rejected by the remote fails every atom of the run, and a retry succeeds", async () => {
  const { dir, bare } = await setup();
  const hook = join(bare, "hooks/pre-receive");
  writeFiles(bare, { "hooks/pre-receive": "#!/bin/sh\necho no >&2\nexit 1\n" });
  chmodSync(hook, 0o755);
  const before = refsOf(bare);
  const r = await publishTo(dir, bare);
  assert.equal(r.failed.length, 3);
  assert.match(r.failed[0]!.error, /push to .* failed/);
  assert.equal(refsOf(bare), before);
  rmSync(hook);
  const retry = await publishTo(dir, bare);
  assert.equal(retry.published.length, 3);
});

test("shallow clones cannot compute the root; several roots pick the oldest with a warning", async () => {
  const { dir, bare } = await setup();
  writeFiles(dir, { "more.txt": "x\n" });
  commitAll(dir, "second");
  const shallow = tempDir();
  gitIn(shallow, "clone", "-q", "--depth=1", `file://${dir}`, ".");
  await assert.rejects(publishTo(shallow, bare), rejectsWith("root.shallow", /full history/));

  // Merge an unrelated, older history: two roots, the older one wins, with a warning.
  const other = makeRepo({ "o.txt": "o\n" });
  sh("git", ["commit", "-q", "--amend", "--no-edit"], other, { GIT_COMMITTER_DATE: "2020-01-01T00:00:00Z" });
  gitIn(dir, "fetch", "-q", other, "main:other");
  gitIn(dir, "merge", "-q", "--allow-unrelated-histories", "-m", "merge", "other");
  const repo = await Repo.open(dir, { repo: "user" });
  const reporter = recordingReporter();
  try {
    assert.equal(await setRoot(repo, await repo.resolveCommit("HEAD"), reporter), gitIn(other, "rev-parse", "HEAD"));
  } finally {
    repo.close();
  }
  assert.ok(
    reporter.warnings.some((w) => /2 root commits/.test(w)),
    reporter.warnings.join("\n"),
  );
});

test("pickRoot: oldest committer time, then lowest hex", () => {
  assert.equal(
    pickRoot([
      { oid: "b", time: 2 },
      { oid: "c", time: 1 },
      { oid: "a", time: 1 },
    ]),
    "a",
  );
  assert.equal(pickRoot([]), null);
});

test("a SHA-256 repository publishes without crashing", async () => {
  const dir = makeRepo(monorepo, { objectFormat: "sha256" });
  const bare = makeBare({ objectFormat: "sha256" });
  const init = await initTo(dir, bare);
  assert.equal(init.root.length, 64);
  const r = await publishTo(dir, bare);
  assert.equal(r.published.length, 3);
  for (const a of r.published) assert.equal(a.rev.length, 64);
  fsckStrict(bare);
  assert.equal((await publishTo(dir, bare)).skipped.length, 3);
  const { listing } = await listRemoteSet(parseGitUrl(bare), undefined);
  assert.equal(listing.root, init.root);
  assert.deepEqual(
    listing.atoms.map((a) => a.rev),
    r.published.map((a) => a.rev),
  );
  assert.equal(atomId(init.root, "foo").length, 52);
});
