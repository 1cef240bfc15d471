import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { unevaluable } from "../../src/protocol/lock-check.js";
import { parseAtomManifest } from "../../src/protocol/atom-manifest.js";
import { newAtom, type NewAtomOptions } from "../../src/resolve/new-atom.js";
import { DEFAULT_NEW } from "../../src/config/config.js";
import { atomToml, gitIn, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { nixTestEnv } from "../support/nix.js";
import { env, resolveAtom } from "../publish/fixture.js";
import { makeSet } from "./fixture.js";

const COMPOSER = { label: DEFAULT_NEW.composer, tag: DEFAULT_NEW.composerTag, url: DEFAULT_NEW.composerUrl };
const NEW_SET = "[set]\npackages = []\n\n[metadata]\ntags = []\n";

function create(cwd: string, path: string, more: Partial<NewAtomOptions> = {}) {
  return newAtom({ cwd, path, nix: false, composer: COMPOSER, env, ...more });
}

/** Every file and directory under `dir` but .git, with file contents: what a refused run must leave as it was. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name === ".git") continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        out.push(`${relative(dir, p)}/`);
        walk(p);
      } else out.push(`${relative(dir, p)}: ${readFileSync(p, "utf8")}`);
    }
  };
  walk(dir);
  return out;
}

async function refused(dir: string, run: () => Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const before = snapshot(dir);
  await assert.rejects(run(), (e: unknown) => {
    assert.ok(e instanceof CprError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  assert.deepEqual(snapshot(dir), before, "nothing written");
}

test("new: the label from the directory, version 0.1.0, the configured composer; no ekala.toml, nothing else", async () => {
  const repo = makeRepo({ README: "r\n" });
  const r = await create(repo, "pkgs/hello");
  const file = join(repo, "pkgs/hello/atom.toml");
  assert.deepEqual([r.label, r.version, r.dir, r.created, r.kept, r.set], ["hello", "0.1.0", join(repo, "pkgs/hello"), [file], [], null]);
  assert.equal(
    readFileSync(file, "utf8"),
    '[package]\nlabel = "hello"\nversion = "0.1.0"\n\n[package.sets]\natom = "https://github.com/ekala-project/atom"\n\n[compose.with.atom-nix]\nfrom = "atom"\n',
  );
  const m = parseAtomManifest(readFileSync(file, "utf8"), "atom.toml", "full");
  assert.deepEqual(m.compose, {
    kind: "with",
    label: "atom-nix",
    from: "atom",
    requirement: m.compose?.kind === "with" ? m.compose.requirement : null,
    entry: ".",
  });
  assert.equal(gitIn(repo, "status", "--porcelain", "--untracked-files=all"), "?? pkgs/hello/atom.toml");
  // --label, and a label needing NFKC, from another composer.
  const other = await create(repo, "x", { label: "ﬁx", composer: { label: "my-nix", tag: "mine", url: "/srv/composers" } });
  assert.equal(other.label, "fix");
  assert.equal(
    readFileSync(join(repo, "x/atom.toml"), "utf8"),
    '[package]\nlabel = "fix"\nversion = "0.1.0"\n\n[package.sets]\nmine = "/srv/composers"\n\n[compose.with.my-nix]\nfrom = "mine"\n',
  );
});

test("new: listed in ekala.toml (format kept); --nix writes a default.nix, or keeps the one there", async () => {
  const repo = makeRepo({
    "ekala.toml": '# the set\n[set]\npackages = [\n  "lib/a",  # first\n]\n\n[metadata]\ntags = ["t"]\n',
    "lib/a/atom.toml": atomToml("a", "1.0.0"),
  });
  const r = await create(repo, "tools/fmt", { nix: true });
  assert.deepEqual(r.set, { file: join(repo, "ekala.toml"), entry: "tools/fmt" });
  assert.equal(
    readFileSync(join(repo, "ekala.toml"), "utf8"),
    '# the set\n[set]\npackages = [\n  "lib/a",  # first\n  "tools/fmt",\n]\n\n[metadata]\ntags = ["t"]\n',
  );
  assert.deepEqual(r.created, [join(repo, "tools/fmt/default.nix"), join(repo, "tools/fmt/atom.toml")]);
  assert.equal(
    readFileSync(join(repo, "tools/fmt/atom.toml"), "utf8"),
    '[package]\nlabel = "fmt"\nversion = "0.1.0"\n\n[compose.as]\nnix = "default.nix"\n',
  );
  assert.match(readFileSync(join(repo, "tools/fmt/default.nix"), "utf8"), /cfg\.package\.version/);

  // An existing default.nix is the atom's code: kept as it is. A directory run from inside works too.
  writeFiles(repo, { "tools/lint/default.nix": "{ mine = true; }\n" });
  const kept = await create(join(repo, "tools/lint"), ".", { nix: true });
  assert.deepEqual(
    [kept.label, kept.created, kept.kept],
    ["lint", [join(repo, "tools/lint/atom.toml")], [join(repo, "tools/lint/default.nix")]],
  );
  assert.equal(readFileSync(join(repo, "tools/lint/default.nix"), "utf8"), "{ mine = true; }\n");
  assert.match(readFileSync(join(repo, "ekala.toml"), "utf8"), /"tools\/fmt",\n {2}"tools\/lint",\n\]/);
});

test("new --nix: default.nix evaluates in the docs/formats.md §12 convention (scopedImport with atoms and cfg)", async (t) => {
  if (!needTools(t, "nix-instantiate")) return;
  const repo = makeRepo({ README: "r\n" });
  await create(repo, "pkgs/hi", { nix: true });
  const expr = `let v = scopedImport { atoms = { deps = { }; }; cfg = { package = { label = "hi"; version = "0.1.0"; }; system = "x86_64-linux"; }; } ${join(repo, "pkgs/hi/default.nix")}; in [ v.type v.name v.system ]`;
  const out = execFileSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr], { env: nixTestEnv(env), encoding: "utf8" });
  assert.deepEqual(JSON.parse(out), ["derivation", "hi-0.1.0", "x86_64-linux"]);
});

test("new refuses, writing nothing: an existing atom.toml, a label in use, an invalid label, the root, a bad ekala.toml", async () => {
  const repo = makeRepo({ "ekala.toml": '[set]\npackages = ["lib/a"]\n', "lib/a/atom.toml": atomToml("a", "1.0.0") });
  await refused(repo, () => create(repo, "lib/a"), "new.exists", /lib\/a\/atom\.toml already exists/);
  await refused(repo, () => create(repo, "pkgs/a"), "new.duplicate-label", /label 'a' is already used by the atom in lib\/a/);
  await refused(repo, () => create(repo, "pkgs/b", { label: "a" }), "new.duplicate-label", /label 'a'/);
  await refused(
    repo,
    () => create(repo, "pkgs/1x"),
    "label.invalid-start",
    /the label taken from the directory's name, "1x" cannot start with '1'/,
  );
  await refused(repo, () => create(repo, "pkgs/ok", { label: "a b" }), "label.invalid-chars", /--label "a b" has an invalid character/);
  await refused(repo, () => create(join(repo, "lib"), ".."), "new.at-root", /cannot sit at the repository root/);
  writeFileSync(join(repo, "ekala.toml"), "[set]\npackages = [\n");
  await refused(repo, () => create(repo, "pkgs/c"), "manifest.syntax", /ekala\.toml is not valid TOML/);

  // Without ekala.toml, the set is every atom.toml of the work tree, committed or not (ignored ones aside).
  const plain = makeRepo({ README: "r\n" });
  writeFiles(plain, { "draft/atom.toml": atomToml("draft", "0.1.0") });
  await refused(plain, () => create(plain, "pkgs/draft"), "new.duplicate-label", /label 'draft' is already used by the atom in draft/);
  // Outside any repository there is no set: nothing to check but the directory.
  const loose = tempDir("cpr-loose-");
  assert.equal((await create(loose, "draft")).set, null);
});

test("new: when ekala.toml cannot be replaced, the atom's files and directories are removed again", async (t) => {
  if (!needTools(t, "chattr")) return;
  const repo = makeRepo({ "ekala.toml": NEW_SET });
  const before = snapshot(repo);
  if (spawnSync("chattr", ["+i", join(repo, "ekala.toml")]).status !== 0) {
    t.skip("chattr +i is not permitted here (needs root on a filesystem with the immutable attribute)");
    return;
  }
  try {
    await assert.rejects(
      create(repo, "deep/er/atom", { nix: true }),
      (e: unknown) => e instanceof CprError && e.code === "new.write" && /rename .*ekala\.toml.*; nothing was written/.test(e.message),
    );
  } finally {
    spawnSync("chattr", ["-i", join(repo, "ekala.toml")]);
  }
  assert.deepEqual(snapshot(repo), before);
  assert.equal(existsSync(join(repo, "deep")), false);
});

test("a new atom resolves: --nix offline; the composed one against a set holding its composer", async () => {
  const repo = makeRepo({ "ekala.toml": NEW_SET });
  await create(repo, "pkgs/trivial", { nix: true });
  await resolveAtom(join(repo, "pkgs/trivial"));
  const trivial = {
    manifest: readFileSync(join(repo, "pkgs/trivial/atom.toml"), "utf8"),
    lock: readFileSync(join(repo, "pkgs/trivial/atom.lock"), "utf8"),
  };
  assert.match(trivial.lock, /\[compose\]\nuse = "nix"\nentry = "default\.nix"/);
  assert.equal(unevaluable(trivial.manifest, trivial.lock, "atom.toml", "atom.lock"), null);

  const composers = join(tempDir("cpr-composers-"), "set");
  makeSet(composers, { "atom-nix": { "0.4.0": {}, "0.4.1": {} } });
  await create(repo, "pkgs/composed", { composer: { ...COMPOSER, url: composers } });
  await resolveAtom(join(repo, "pkgs/composed"));
  const composed = {
    manifest: readFileSync(join(repo, "pkgs/composed/atom.toml"), "utf8"),
    lock: readFileSync(join(repo, "pkgs/composed/atom.lock"), "utf8"),
  };
  assert.match(
    composed.lock,
    /\[compose\]\nuse = "atom"\nlabel = "atom-nix"\nversion = "0\.4\.1"\nset = "[0-9a-f]{40}"\nrev = "[0-9a-f]{40}"/,
  );
  assert.equal(unevaluable(composed.manifest, composed.lock, "atom.toml", "atom.lock"), null);
});
