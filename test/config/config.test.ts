import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CprError } from "../../src/protocol/errors.js";
import { DEFAULT_ALIASES } from "../../src/protocol/uri.js";
import { DEFAULT_LISTING_TTL, findSetRoot, loadConfig, type LoadedConfig } from "../../src/config/config.js";

const bin = fileURLToPath(new URL("../../../bin/cpr", import.meta.url));

interface Sandbox {
  home: string;
  project: string;
  sub: string;
  env: NodeJS.ProcessEnv;
  done(): void;
}

/** A temp HOME and a project with a `.git` directory and a subdirectory; no user or project config yet. */
function sandbox(): Sandbox {
  const base = mkdtempSync(join(tmpdir(), "cpr-config-"));
  const home = join(base, "home");
  const project = join(base, "project");
  const sub = join(project, "atoms", "foo");
  mkdirSync(home, { recursive: true });
  mkdirSync(join(project, ".git"), { recursive: true });
  mkdirSync(sub, { recursive: true });
  return { home, project, sub, env: { HOME: home }, done: () => rmSync(base, { recursive: true, force: true }) };
}

function entry(loaded: LoadedConfig, key: string) {
  return loaded.entries.find((e) => e.key === key);
}

test("defaults only", async () => {
  const s = sandbox();
  try {
    const loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.aliases, DEFAULT_ALIASES);
    assert.equal(loaded.config.listingTtl, DEFAULT_LISTING_TTL);
    assert.equal(loaded.config.cacheDir, join(s.home, ".cache", "cpr"));
    assert.deepEqual(loaded.config.trust, {});
    assert.deepEqual(entry(loaded, "aliases.gh"), { key: "aliases.gh", value: "github.com", source: "default", origin: null });
    assert.deepEqual(loaded.files, { user: join(s.home, ".config", "cpr", "config.toml"), project: join(s.project, "cpr.toml") });
    assert.deepEqual(loaded.warnings, []);
    const xdg = await loadConfig({ cwd: s.sub, env: { ...s.env, XDG_CACHE_HOME: "/x/cache", XDG_CONFIG_HOME: "/x/config" } });
    assert.equal(xdg.config.cacheDir, "/x/cache/cpr");
    assert.equal(xdg.files.user, "/x/config/cpr/config.toml");
    // relative XDG paths are ignored, as the XDG spec says
    const rel = await loadConfig({ cwd: s.sub, env: { ...s.env, XDG_CACHE_HOME: "rel" } });
    assert.equal(rel.config.cacheDir, join(s.home, ".cache", "cpr"));
  } finally {
    s.done();
  }
});

test("layers: user file, then project cpr.toml, then CPR_* variables", async () => {
  const s = sandbox();
  try {
    const xdg = join(s.home, "xdg");
    mkdirSync(join(xdg, "cpr"), { recursive: true });
    const userFile = join(xdg, "cpr", "config.toml");
    writeFileSync(
      userFile,
      `[aliases]\nwork = "gh:my-org"\ngh = "github.example.com"\n\n[cache]\ndir = "~/cache-here"\nlisting-ttl = 60\n\n[trust]\nhome = ["alice@example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey"]\n`,
    );
    const projectFile = join(s.project, "cpr.toml");
    writeFileSync(projectFile, `[aliases]\nwork = "gl:team"\n\n[cache]\nlisting-ttl = 10\ndir = "build/cache"\n`);
    const env = { ...s.env, XDG_CONFIG_HOME: xdg };
    let loaded = await loadConfig({ cwd: s.sub, env });
    assert.equal(loaded.config.aliases.work, "gl:team");
    assert.equal(loaded.config.aliases.gh, "github.example.com");
    assert.equal(loaded.config.aliases.pkgs, "nxs:nixpkgs");
    assert.equal(loaded.config.listingTtl, 10);
    assert.equal(loaded.config.cacheDir, join(s.project, "build", "cache"));
    assert.deepEqual(loaded.config.trust, { home: ["alice@example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey"] });
    assert.deepEqual(entry(loaded, "aliases.work"), { key: "aliases.work", value: "gl:team", source: "project", origin: projectFile });
    assert.deepEqual(entry(loaded, "aliases.gh"), { key: "aliases.gh", value: "github.example.com", source: "user", origin: userFile });
    assert.equal(entry(loaded, "trust.home")?.source, "user");

    loaded = await loadConfig({
      cwd: s.sub,
      env: { ...env, CPR_LISTING_TTL: "5", CPR_CACHE_DIR: "/tmp/c", CPR_ALIASES: "work=cb:x, new=gh:n" },
    });
    assert.equal(loaded.config.listingTtl, 5);
    assert.equal(loaded.config.cacheDir, "/tmp/c");
    assert.equal(loaded.config.aliases.work, "cb:x");
    assert.equal(loaded.config.aliases.new, "gh:n");
    assert.deepEqual(entry(loaded, "cache.listing-ttl"), { key: "cache.listing-ttl", value: 5, source: "env", origin: "CPR_LISTING_TTL" });
    assert.equal(entry(loaded, "aliases.new")?.origin, "CPR_ALIASES");

    // Outside the project: only the user layer.
    const outside = await loadConfig({ cwd: s.home, env });
    assert.equal(outside.files.project, null);
    assert.equal(outside.config.aliases.work, "gh:my-org");
    assert.equal(outside.config.cacheDir, join(s.home, "cache-here"));
  } finally {
    s.done();
  }
});

test("unknown keys warn with file:line:col; invalid values are errors with file:line:col", async () => {
  const s = sandbox();
  try {
    const file = join(s.project, "cpr.toml");
    writeFileSync(file, `[cache]\nlisting-ttl = 30\ncolour = true\n\n[registry]\nurl = "x"\n`);
    const loaded = await loadConfig({ cwd: s.project, env: s.env });
    assert.deepEqual(loaded.warnings, [
      `${file}:3:1: unknown key "colour" in [cache] (known: dir, listing-ttl)`,
      `${file}:5:1: unknown table "registry" (known: [aliases], [cache], [trust])`,
    ]);
    assert.equal(loaded.config.listingTtl, 30);

    const bad = async (text: string, code: string, where: string) => {
      writeFileSync(file, text);
      await assert.rejects(loadConfig({ cwd: s.project, env: s.env }), (e: unknown) => {
        assert.ok(e instanceof CprError, String(e));
        assert.equal(e.code, code, e.message);
        assert.equal(e.where, where, e.message);
        return true;
      });
    };
    await bad(`[cache]\nlisting-ttl = -1\n`, "config.invalid", `${file}:2:1`);
    await bad(`[cache]\nlisting-ttl = "5"\n`, "config.invalid", `${file}:2:1`);
    await bad(`\n[aliases]\n"a.b" = "x"\n`, "config.alias", `${file}:3:1`);
    await bad(`[aliases]\nok = ""\n`, "config.alias", `${file}:2:1`);
    await bad(`[aliases]\nx = "y:z"\ny = "x:w"\n`, "config.alias-cycle", file);
    await bad(`[trust]\n"not a tag!" = ["a b c"]\n`, "config.invalid", `${file}:2:1`);
    await bad(`[trust]\nhome = ["just-one-field"]\n`, "config.invalid", `${file}:2:1`);
    await bad(`[cache\n`, "config.syntax", `${file}:1:7`);
    writeFileSync(file, "");
    await assert.rejects(loadConfig({ cwd: s.project, env: { ...s.env, CPR_LISTING_TTL: "soon" } }), /CPR_LISTING_TTL/);
    await assert.rejects(loadConfig({ cwd: s.project, env: { ...s.env, CPR_ALIASES: "nope" } }), /CPR_ALIASES/);
  } finally {
    s.done();
  }
});

test("the set root is found by walking up to .git (a directory or a file)", async () => {
  const s = sandbox();
  try {
    assert.equal(await findSetRoot(s.sub), s.project);
    const wt = join(s.home, "worktree");
    mkdirSync(join(wt, "a"), { recursive: true });
    writeFileSync(join(wt, ".git"), "gitdir: /elsewhere\n");
    assert.equal(await findSetRoot(join(wt, "a")), wt);
  } finally {
    s.done();
  }
});

test("cpr config list [--json]", () => {
  const s = sandbox();
  try {
    writeFileSync(join(s.project, "cpr.toml"), `[aliases]\nwork = "gh:my-org"\n[cache]\nbogus = 1\n`);
    const env = { PATH: process.env.PATH, HOME: s.home, CPR_LISTING_TTL: "42", NO_COLOR: "1" };
    const human = spawnSync(process.execPath, [bin, "config", "list"], { cwd: s.sub, env, encoding: "utf8" });
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /^aliases\.work = "gh:my-org" +\(project: .*cpr\.toml\)$/m);
    assert.match(human.stdout, /^aliases\.gh += "github\.com" +\(default\)$/m);
    assert.match(human.stdout, /^cache\.listing-ttl = 42 +\(env: CPR_LISTING_TTL\)$/m);
    assert.match(human.stderr, /warning: .*cpr\.toml:4:1: unknown key "bogus"/);
    const json = spawnSync(process.execPath, [bin, "config", "list", "--json"], { cwd: s.sub, env, encoding: "utf8" });
    assert.equal(json.status, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { entries: { key: string; value: unknown; source: string; origin: string | null }[]; warnings: string[] };
    assert.deepEqual(doc.entries.find((e) => e.key === "cache.listing-ttl"), { key: "cache.listing-ttl", value: 42, source: "env", origin: "CPR_LISTING_TTL" });
    assert.equal(doc.warnings.length, 1);
    const usage = spawnSync(process.execPath, [bin, "config"], { cwd: s.sub, env, encoding: "utf8" });
    assert.equal(usage.status, 2);
  } finally {
    s.done();
  }
});
