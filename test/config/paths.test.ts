import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../src/config/config.js";
import {
  CACHE_LAYOUT_VERSION,
  cacheLayout,
  cacheRootFromEnv,
  defaultCacheDir,
  defaultRegistryData,
  openCacheRoot,
  userConfigPath,
} from "../../src/config/paths.js";
import { Cache } from "../../src/git/cache.js";
import { CprError } from "../../src/protocol/errors.js";
import { tempDir } from "../support/repo.js";

const src = join(resolve(dirname(fileURLToPath(import.meta.url)), "../../.."), "src");

test("XDG directories: absolute ones are used, relative ones ignored (XDG Base Directory spec)", () => {
  const home = { HOME: "/h" };
  assert.equal(defaultCacheDir(home), "/h/.cache/cpr");
  assert.equal(defaultCacheDir({ ...home, XDG_CACHE_HOME: "/x/cache" }), "/x/cache/cpr");
  assert.equal(defaultCacheDir({ ...home, XDG_CACHE_HOME: "rel/cache" }), "/h/.cache/cpr");
  assert.equal(defaultCacheDir({ ...home, XDG_CACHE_HOME: "" }), "/h/.cache/cpr");
  assert.equal(userConfigPath({ ...home, XDG_CONFIG_HOME: "rel" }), "/h/.config/cpr/config.toml");
  assert.equal(userConfigPath({ ...home, XDG_CONFIG_HOME: "/x/config" }), "/x/config/cpr/config.toml");
  assert.equal(defaultRegistryData({ ...home, XDG_DATA_HOME: "rel" }), "/h/.local/share/cpr/registry");
});

test("the cache root: CPR_CACHE_DIR relative to the working directory, else the XDG default; loadConfig agrees", async () => {
  const home = tempDir("cpr-paths-home-");
  const cwd = tempDir("cpr-paths-cwd-");
  const env = { HOME: home, XDG_CACHE_HOME: "relative-xdg" };
  assert.equal(cacheRootFromEnv(env, cwd), join(home, ".cache", "cpr"));
  assert.equal(cacheRootFromEnv({ ...env, CPR_CACHE_DIR: "my-cache" }, cwd), join(cwd, "my-cache"));
  assert.equal(cacheRootFromEnv({ ...env, CPR_CACHE_DIR: "/abs/cache" }, cwd), "/abs/cache");
  assert.equal(cacheRootFromEnv({ ...env, CPR_CACHE_DIR: "  " }, cwd), join(home, ".cache", "cpr"), "a blank variable is unset");
  for (const e of [env, { ...env, CPR_CACHE_DIR: "my-cache" }, { HOME: home, XDG_CACHE_HOME: "/x/c" }]) {
    assert.equal((await loadConfig({ cwd, env: e })).config.cacheDir, cacheRootFromEnv(e, cwd));
  }
  // [cache] dir sits between the two.
  mkdirSync(join(home, ".config", "cpr"), { recursive: true });
  writeFileSync(join(home, ".config", "cpr", "config.toml"), '[cache]\ndir = "~/from-file"\n');
  assert.equal((await loadConfig({ cwd, env })).config.cacheDir, join(home, "from-file"));
  assert.equal((await loadConfig({ cwd, env: { ...env, CPR_CACHE_DIR: "my-cache" } })).config.cacheDir, join(cwd, "my-cache"));
});

test("the cache layout names every place under the root", () => {
  const l = cacheLayout("/c");
  assert.equal(CACHE_LAYOUT_VERSION, 1);
  assert.deepEqual(
    {
      root: l.root,
      versionFile: l.versionFile,
      git: l.git,
      atom: l.atom("ID", "1.2.3", "REV"),
      pin: l.pin("abcdef"),
      listings: l.listings,
      listing: l.listing("0123"),
      resolve: l.resolve,
      revIndex: l.revIndex,
      graphs: l.graphs,
      graph: l.graph("4567"),
      build: l.build,
      tmp: l.tmp,
    },
    {
      root: "/c",
      versionFile: "/c/layout-version",
      git: "/c/git",
      atom: "/c/atoms/ID/1.2.3-REV",
      pin: "/c/pins/ab/abcdef.json",
      listings: "/c/refs",
      listing: "/c/refs/0123.json",
      resolve: "/c/resolve",
      revIndex: "/c/resolve/revs.json",
      graphs: "/c/resolve/graphs",
      graph: "/c/resolve/graphs/4567.json",
      build: "/c/build",
      tmp: "/c/tmp",
    },
  );
});

test("the layout version is recorded in a new cache, added to an older one, and a cache of another layout is refused", async () => {
  const root = join(tempDir("cpr-paths-"), "new", "cache");
  await openCacheRoot(root);
  assert.equal(readFileSync(join(root, "layout-version"), "utf8"), `${CACHE_LAYOUT_VERSION}\n`);
  await openCacheRoot(root); // again: unchanged
  assert.deepEqual(readdirSync(root), ["layout-version"]);

  // A cache made before the file existed has this layout: it gets the file, and nothing moves.
  const old = tempDir("cpr-paths-old-");
  mkdirSync(join(old, "atoms", "x"), { recursive: true });
  await openCacheRoot(old);
  assert.deepEqual(readdirSync(old).sort(), ["atoms", "layout-version"]);

  const newer = tempDir("cpr-paths-newer-");
  writeFileSync(join(newer, "layout-version"), "2\n");
  const refused = (e: unknown) =>
    e instanceof CprError &&
    e.code === "cache.layout" &&
    e.message === `the cache at ${newer} has layout version 2; this cpr knows version ${CACHE_LAYOUT_VERSION}` &&
    e.where === join(newer, "layout-version") &&
    /CPR_CACHE_DIR/.test(e.hint ?? "");
  await assert.rejects(openCacheRoot(newer), refused);
  // The git cache goes through it: a cache of another layout is not written in this one.
  await assert.rejects(Cache.open({ dir: newer }), refused);
  assert.ok(!existsSync(join(newer, "git")));

  const garbage = tempDir("cpr-paths-garbage-");
  writeFileSync(join(garbage, "layout-version"), "v1?\n");
  await assert.rejects(
    openCacheRoot(garbage),
    (e: unknown) => e instanceof CprError && e.code === "cache.layout" && /does not hold a layout version/.test(e.message),
  );
});

test("Cache.open records the layout and keeps its repository and atoms where the layout says", async () => {
  const root = join(tempDir("cpr-paths-cache-"), "cache");
  const cache = await Cache.open({ dir: root });
  try {
    const l = cacheLayout(root);
    assert.equal(readFileSync(l.versionFile, "utf8"), `${CACHE_LAYOUT_VERSION}\n`);
    assert.equal(cache.gitDir, l.git);
    assert.ok(existsSync(join(l.git, "HEAD")));
    assert.equal(cache.atomDir("ID", "1.0.0", "REV"), l.atom("ID", "1.0.0", "REV"));
    const scratch = await cache.scratch({ alternates: false });
    assert.equal(dirname(scratch.gitDir), l.tmp);
    await scratch.remove();
  } finally {
    cache.close();
  }
});

test("no file outside src/config/paths.ts joins a name onto the cache root", () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
    );
  const offenders: string[] = [];
  for (const file of files(src)) {
    if (relative(src, file) === join("config", "paths.ts")) continue;
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        // join(cacheDir, "x"), join(cache.dir, "x"), join(layout.root, "x"): a name the layout should hold (a
        // dot-prefixed temporary name is not one).
        if (/join\(\s*(?:[\w.]*\.)?(?:cacheDir|dir|root)\s*,\s*"[^.]/.test(line) && /cache/i.test(line + file))
          offenders.push(`${relative(src, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(offenders, []);
});
