import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cache } from "../../src/git/cache.js";
import { CprError } from "../../src/protocol/errors.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { buildAtom } from "../../src/build/build.js";
import { nixString } from "../../src/build/expression.js";
import { atomToml, commitAll, tempDir, writeFiles } from "../support/repo.js";
import { runCpr } from "../support/cli.js";
import { needTools } from "../support/tools.js";
import { publishByHand, publishTo, resolveAtom } from "../publish/fixture.js";
import { defaultLocker, formatLock } from "../../src/protocol/lock.js";
import { buildableSet, nixEnv } from "../registry/atoms-fixture.js";

/** `cpr build` against real git and real Nix (builds in the default store; NIX_CONFIG set by the tests only). */

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
  assert.match(expr, /root = builtins\.path \{ name = "hello"; path = /);
  assert.match(expr, /from = \{\n\s+home = \{ dep = atoms\."[0-9a-v]{52}-0\.1\.0-[0-9a-f]{12}"; \};/);
  assert.match(expr, /extraConfig = \{ system = "[^"]+"; \};/);

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
    "nolock/default.nix": "atoms.deps.from.home.dep\n",
    "broken/atom.toml": `${atomToml("broken", "1.0.0")}\n[compose.as]\nnix = "default.nix"\n`,
    "broken/atom.lock": formatLock({
      version: 1,
      sets: {},
      locker: defaultLocker("e711aa1f48d877652dd2ba724d4af752be7b5371"),
      compose: { use: "nix", entry: "default.nix" },
      deps: [],
    }),
    "broken/default.nix": "{ notADerivation = cfg.package.version; }\n",
  });
  await resolveAtom(join(set.work, "broken"));
  commitAll(set.work, "more atoms");
  // publish refuses an atom without its lock (docs/formats.md §12): nolock is published by hand, as an older cpr did.
  publishByHand(set.work, set.remote, "nolock", "nolock", "1.0.0");
  const r = await publishTo(set.work, set.remote);
  assert.equal(r.failed.length, 0, JSON.stringify(r.failed));
  const cacheDir = tempDir("cpr-cache-");
  await assert.rejects(
    build(cacheDir, set.work, `${set.remote}::conf`),
    (e: unknown) => e instanceof CprError && e.code === "build.static" && /nothing to build/.test(e.message),
  );
  await assert.rejects(
    build(cacheDir, set.work, `${set.remote}::nolock`),
    (e: unknown) =>
      e instanceof CprError &&
      e.code === "build.no-lock" &&
      /nolock 1\.0\.0 has no atom\.lock/.test(e.message) &&
      /cpr resolve/.test(e.hint ?? ""),
  );
  await assert.rejects(
    build(cacheDir, set.work, `${set.remote}::broken`),
    (e: unknown) =>
      e instanceof CprError &&
      e.code === "nix.failed" &&
      /not a derivation, nor an attribute set with a `default` derivation/.test(e.message),
  );
});

test("cpr build: output paths on stdout, --json shape, usage errors", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const set = await buildableSet({ tag: "cli" });
  const cacheDir = tempDir("cpr-cache-");
  const cpr = (args: string[]) => runCpr(args, { cwd: set.work, env: { ...nixEnv, CPR_CACHE_DIR: cacheDir } });
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

test("nixString escapes what Nix would interpolate", () => {
  assert.equal(nixString('a"b\\c${d}$e\n'), '"a\\"b\\\\c\\${d}$e\\n"');
});
