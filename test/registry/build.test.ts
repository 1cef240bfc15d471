import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cache } from "../../src/git/cache.js";
import { CprError } from "../../src/protocol/errors.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { buildAtom, nixString } from "../../src/registry/build.js";
import { atomToml, commitAll, tempDir, writeFiles } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { publishByHand, publishTo, resolveAtom } from "../publish/fixture.js";
import { buildableSet, nixEnv } from "./atoms-fixture.js";

/** `cpr build` against real git and real Nix (builds in the default store; NIX_CONFIG set by the tests only). */

const bin = join(process.cwd(), "bin", "cpr");

async function build(cacheDir: string, cwd: string, uri: string) {
  const cache = await Cache.open({ dir: cacheDir, env: nixEnv });
  try {
    return await buildAtom({ cache, cwd, env: nixEnv, nix: { env: nixEnv } }, parseAtomUri(uri));
  } finally {
    cache.close();
  }
}

test("build: the atom, its locked atom dependency and its direct Nix dependency, evaluated and built", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const set = await buildableSet({ tag: "build" });
  const built = await build(tempDir("cpr-cache-"), set.work, `${set.remote}::hello@^0.1`);
  assert.equal(built.label, "hello");
  assert.equal(built.version, "0.1.0");
  assert.equal(built.rev, set.revs["hello@0.1.0"]);
  assert.equal(built.set, set.root);
  assert.match(built.drv, /^\/nix\/store\/[0-9a-z]{32}-cpr-hello-build-0\.1\.0\.drv$/);
  assert.deepEqual(Object.keys(built.outputs), ["out"]);
  const [greeting, dep, note, depPath] = readFileSync(built.outputs.out!, "utf8").trim().split("|");
  assert.deepEqual([greeting, dep, note], ["hello 0.1.0", "dep message build", "a note build"]);
  assert.match(depPath!, /^\/nix\/store\/[0-9a-z]{32}-cpr-dep-build$/);
  const expr = readFileSync(built.expression, "utf8");
  assert.match(expr, /builtins\.fetchurl \{ url = "file:\/\/[^"]+note\.txt"; sha256 = "sha256-/);
  assert.match(expr, /builtins\.path \{ inherit path; name = "source"; \}/);

  // The derivation depends on the atoms' contents, not on where the cache is.
  const again = await build(tempDir("cpr-cache-"), set.work, `${set.remote}::hello`);
  assert.equal(again.drv, built.drv);
  assert.deepEqual(again.outputs, built.outputs);
});

test("build refuses what it cannot build, with what to do", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const set = await buildableSet({ tag: "refuse" });
  writeFiles(set.work, {
    "conf/atom.toml": `${atomToml("conf", "1.0.0")}\n[compose.as]\nstatic = "config"\n`,
    "nolock/atom.toml": `${atomToml("nolock", "1.0.0")}\n[package.sets]\nhome = "${set.remote}"\n\n[compose.as]\nnix = "default.nix"\n\n[deps.from.home]\ndep = "^0.1"\n`,
    "nolock/default.nix": "{ deps }: deps.dep\n",
    "broken/atom.toml": `${atomToml("broken", "1.0.0")}\n[compose.as]\nnix = "default.nix"\n`,
    "broken/default.nix": "{ src }: { notADerivation = 1; }\n",
  });
  await resolveAtom(join(set.work, "broken"));
  commitAll(set.work, "more atoms");
  // publish refuses an atom without its lock (spec §14): nolock is published by hand, as an older cpr did.
  publishByHand(set.work, set.remote, "nolock", "nolock", "1.0.0");
  const r = await publishTo(set.work, set.remote);
  assert.equal(r.failed.length, 0, JSON.stringify(r.failed));
  const cacheDir = tempDir("cpr-cache-");
  await assert.rejects(build(cacheDir, set.work, `${set.remote}::conf`), (e: unknown) => e instanceof CprError && e.code === "build.static" && /nothing to build/.test(e.message));
  await assert.rejects(
    build(cacheDir, set.work, `${set.remote}::nolock`),
    (e: unknown) => e instanceof CprError && e.code === "build.unlocked" && /depends on dep .*no atom\.lock/.test(e.message) && /cpr resolve/.test(e.hint ?? ""),
  );
  await assert.rejects(
    build(cacheDir, set.work, `${set.remote}::broken`),
    (e: unknown) => e instanceof CprError && e.code === "nix.failed" && /not a derivation, nor an attribute set with a `default` derivation/.test(e.message),
  );
});

test("cpr build: output paths on stdout, --json shape, usage errors", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const set = await buildableSet({ tag: "cli" });
  const cacheDir = tempDir("cpr-cache-");
  const cpr = (args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], { cwd: set.work, env: { ...nixEnv, CPR_CACHE_DIR: cacheDir, NO_COLOR: "1" }, encoding: "utf8" });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const j = cpr(["build", `${set.remote}::hello@^0.1`, "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(doc), ["label", "version", "id", "drv", "outputs"]);
  assert.equal(doc.label, "hello");
  assert.match(doc.outputs.out, /-cpr-hello-cli-0\.1\.0$/);
  const plain = cpr(["build", `${set.remote}::hello@^0.1`, "-q"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, `${doc.outputs.out}\n`);
  assert.equal(cpr(["build", "--help"]).code, 0);
  assert.equal(cpr(["build"]).code, 2);
  const noToken = cpr(["build", `${set.remote}::hello`, "--push", "http://127.0.0.1:9"]);
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /--push needs a write token/);
  const missing = cpr(["build", `${set.remote}::nothing`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /has no published atom 'nothing'/);
});

test("build: a [compose.with] composer's file called with the atom's tree at entry; nix, nix+tar, nix+src and nix+git deps", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix", "nix-prefetch-url", "tar")) return;
  const { atomId } = await import("../../src/protocol/id.js");
  const { defaultLocker, formatLock } = await import("../../src/protocol/lock.js");
  const { toSri } = await import("../../src/nix/hash.js");
  const { createHash } = await import("node:crypto");
  const { execFileSync } = await import("node:child_process");
  const { makeBare, makeRepo, gitIn } = await import("../support/repo.js");
  const { initTo } = await import("../publish/fixture.js");

  // Sources of the direct dependencies, all local (file:// and a git path).
  const src = tempDir("cpr-direct-");
  writeFiles(src, { "flat.txt": "flat file\n", "tree/top/inner.txt": "from the tarball\n", "later.txt": "fetched at build time\n" });
  execFileSync("tar", ["czf", join(src, "t.tar.gz"), "-C", join(src, "tree"), "top"]);
  const tarHash = execFileSync("nix-prefetch-url", ["--unpack", `file://${src}/t.tar.gz`], { env: nixEnv, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  const flatHash = (f: string) => toSri("sha256", createHash("sha256").update(readFileSync(join(src, f))).digest());
  const gitRepo = makeRepo({ "g.txt": "from git\n" });
  const gitRev = gitIn(gitRepo, "rev-parse", "HEAD");

  const work = makeRepo({ README: "composer set\n" });
  const remote = makeBare();
  writeFiles(work, {
    "builder/atom.toml": `${atomToml("builder", "1.0.0")}\n[compose.as]\nnix = "compose.nix"\n`,
    "builder/compose.nix": `{ src, nix, system }:
derivation {
  name = "cpr-composed";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "read a < \${src}/what; read b < \${nix.flat}; read c < \${nix.tar}/inner.txt; read d < \${nix.later}; read e < \${nix.repo}/g.txt; echo \\"$a|$b|$c|$d|$e\\" > $out" ];
}
`,
  });
  await resolveAtom(join(work, "builder"));
  commitAll(work, "builder");
  const init = await initTo(work, remote);
  const first = await publishTo(work, remote);
  const builderRev = first.published.find((p) => p.label === "builder")!.rev;
  const lock = formatLock({
    version: 1,
    sets: { [init.root]: { tag: "home", mirrors: [remote] } },
    locker: defaultLocker("1".repeat(40)),
    compose: { use: "atom", label: "builder", version: "1.0.0", set: init.root, rev: builderRev, mirror: remote, id: atomId(init.root, "builder"), entry: "sub" },
    deps: [
      { type: "nix", name: "flat", url: `file://${src}/flat.txt`, hash: flatHash("flat.txt") },
      { type: "nix+git", name: "repo", url: gitRepo, version: null, rev: gitRev },
      { type: "nix+src", name: "later", url: `file://${src}/later.txt`, hash: flatHash("later.txt"), unpack: false },
      { type: "nix+tar", name: "tar", url: `file://${src}/t.tar.gz`, hash: `sha256:${tarHash}` },
    ],
  });
  writeFiles(work, {
    "app/atom.toml": `${atomToml("app", "0.1.0")}
[package.sets]
home = "${remote}"

[compose.with.builder]
from = "home"
version = "^1"
entry = "sub"

[deps.direct.nix]
flat.url = "file://${src}/flat.txt"
tar.tar = "file://${src}/t.tar.gz"
later.build = "file://${src}/later.txt"
repo.git = "${gitRepo}"
`,
    "app/atom.lock": lock,
    "app/sub/what": "the app's entry\n",
  });
  commitAll(work, "app");
  const second = await publishTo(work, remote);
  assert.equal(second.failed.length, 0, JSON.stringify(second.failed));
  const built = await build(tempDir("cpr-cache-"), work, `${remote}::app`);
  assert.match(built.drv, /-cpr-composed\.drv$/);
  assert.equal(readFileSync(built.outputs.out!, "utf8"), "the app's entry|flat file|from the tarball|fetched at build time|from git\n");
});

test("nixString escapes what Nix would interpolate", () => {
  assert.equal(nixString('a"b\\c${d}$e\n'), '"a\\"b\\\\c\\${d}$e\\n"');
});
