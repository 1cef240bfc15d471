import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { DEFAULT_ALIASES } from "../../src/protocol/uri.js";
import { formatPublicKey, generateSecretKey, publicKeyOf } from "../../src/protocol/nix-key.js";
import {
  DEFAULT_LISTING_TTL,
  DEFAULT_NEW,
  DEFAULT_REGISTRY_LISTEN,
  DEFAULT_REGISTRY_REFRESH,
  defaultRegistryData,
  findSetRoot,
  loadConfig,
  type LoadedConfig,
} from "../../src/config/config.js";
import { runCpr } from "../support/cli.js";

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

/** Expects `text` written to `file` (with extra `env`) to fail loading as config.invalid, at `where`, with a hint. */
function invalidConfig(s: Sandbox, file: string) {
  return async (text: string, re: RegExp, where: string, env: NodeJS.ProcessEnv = {}): Promise<void> => {
    writeFileSync(file, text);
    await assert.rejects(loadConfig({ cwd: s.project, env: { ...s.env, ...env } }), (e: unknown) => {
      assert.ok(e instanceof CprError, String(e));
      assert.equal(e.code, "config.invalid", e.message);
      assert.match(e.message, re);
      assert.equal(e.where, where, e.message);
      assert.ok(e.hint, e.message);
      return true;
    });
  };
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
    writeFileSync(file, `[cache]\nlisting-ttl = 30\ncolour = true\n\n[registri]\nurl = "x"\n\n[registry]\nurl = "x"\n`);
    const loaded = await loadConfig({ cwd: s.project, env: s.env });
    assert.deepEqual(loaded.warnings, [
      { code: "config.unknown-key", message: `${file}:3:1: unknown key "colour" in [cache] (known: dir, listing-ttl)` },
      {
        code: "config.unknown-key",
        message: `${file}:5:1: unknown table "registri" (known: [aliases], [cache], [graft], [locker], [new], [registry], [trust])`,
      },
      {
        code: "config.unknown-key",
        message: `${file}:9:1: unknown key "url" in [registry] (known: builds, data, db, keys, listen, refresh, sets, store, token, urls)`,
      },
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
    await bad(`[registry]\nstore = "/var/nars"\n`, "config.invalid", `${file}:2:1`);
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

test("the set root follows GIT_WORK_TREE and GIT_DIR as git does (a hook, or a user, naming the repository)", async () => {
  const s = sandbox();
  try {
    // GIT_WORK_TREE (relative to the working directory) names the top, wherever the walk up would lead.
    assert.equal(await findSetRoot(s.sub, { GIT_WORK_TREE: "../.." }), s.project);
    assert.equal(await findSetRoot(s.home, { GIT_WORK_TREE: s.project, GIT_DIR: join(s.project, ".git") }), s.project);
    // GIT_DIR alone: git takes the working directory as the top of the work tree.
    assert.equal(await findSetRoot(s.home, { GIT_DIR: join(s.project, ".git") }), s.home);
    writeFileSync(join(s.project, "cpr.toml"), `[aliases]\nwork = "gh:my-org"\n`);
    const loaded = await loadConfig({ cwd: s.home, env: { ...s.env, GIT_WORK_TREE: s.project } });
    assert.equal(loaded.files.project, join(s.project, "cpr.toml"));
    assert.equal(loaded.config.aliases.work, "gh:my-org");
  } finally {
    s.done();
  }
});

test("cpr config list [--json]", () => {
  const s = sandbox();
  try {
    writeFileSync(join(s.project, "cpr.toml"), `[aliases]\nwork = "gh:my-org"\n[cache]\nbogus = 1\n`);
    const env = { PATH: process.env.PATH, HOME: s.home, CPR_LISTING_TTL: "42", NO_COLOR: "1" };
    const human = runCpr(["config", "list"], { cwd: s.sub, env });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^aliases\.work = "gh:my-org" +\(project: .*cpr\.toml\)$/m);
    assert.match(human.stdout, /^aliases\.gh += "github\.com" +\(default\)$/m);
    assert.match(human.stdout, /^cache\.listing-ttl = 42 +\(env: CPR_LISTING_TTL\)$/m);
    assert.match(human.stderr, /warning: .*cpr\.toml:4:1: unknown key "bogus"/);
    const json = runCpr(["config", "list", "--json"], { cwd: s.sub, env });
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as {
      entries: { key: string; value: unknown; source: string; origin: string | null }[];
      warnings: { code: string; message: string }[];
    };
    assert.deepEqual(
      doc.entries.find((e) => e.key === "cache.listing-ttl"),
      { key: "cache.listing-ttl", value: 42, source: "env", origin: "CPR_LISTING_TTL" },
    );
    assert.equal(doc.warnings.length, 1);
    assert.equal(doc.warnings[0]!.code, "config.unknown-key");
    assert.match(doc.warnings[0]!.message, /cpr\.toml:4:1: unknown key "bogus"/);
    const usage = runCpr(["config"], { cwd: s.sub, env });
    assert.equal(usage.code, 2);
  } finally {
    s.done();
  }
});

test("[new]: the composer cpr new writes, from defaults or a config file; bad values are errors with file:line:col", async () => {
  const s = sandbox();
  try {
    const defaults = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(defaults.config.new, DEFAULT_NEW);
    assert.deepEqual(DEFAULT_NEW, { composer: "atom-nix", composerTag: "atom", composerUrl: "https://github.com/ekala-project/atom" });
    assert.deepEqual(
      defaults.entries.filter((e) => e.key.startsWith("new.")).map((e) => [e.key, e.value, e.source]),
      [
        ["new.composer", "atom-nix", "default"],
        ["new.composer-tag", "atom", "default"],
        ["new.composer-url", "https://github.com/ekala-project/atom", "default"],
      ],
    );
    const file = join(s.project, "cpr.toml");
    writeFileSync(file, `[new]\ncomposer = "my-nix"\ncomposer-tag = "mine"\ncomposer-url = "gh:me/composers"\nentry = "x"\n`);
    const loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.new, { composer: "my-nix", composerTag: "mine", composerUrl: "gh:me/composers" });
    assert.deepEqual(entry(loaded, "new.composer"), { key: "new.composer", value: "my-nix", source: "project", origin: file });
    assert.deepEqual(loaded.warnings, [
      { code: "config.unknown-key", message: `${file}:5:1: unknown key "entry" in [new] (known: composer, composer-tag, composer-url)` },
    ]);
    for (const [text, message] of [
      [`[new]\ncomposer = "-nix"\n`, /new\.composer/],
      [`[new]\ncomposer-tag = "a..b"\n`, /new\.composer-tag/],
      [`[new]\ncomposer-url = 1\n`, /new\.composer-url must be a string/],
      [`[new]\ncomposer-url = "a b"\n`, /new\.composer-url/],
    ] as const) {
      writeFileSync(file, text);
      await assert.rejects(loadConfig({ cwd: s.sub, env: s.env }), (e: unknown) => {
        assert.ok(e instanceof CprError, String(e));
        assert.equal(e.code, "config.invalid", e.message);
        assert.equal(e.where, `${file}:2:1`);
        assert.match(e.message, message);
        return true;
      });
    }
  } finally {
    s.done();
  }
});

test("[graft]: auto is false by default, a boolean from a config file; anything else is an error", async () => {
  const s = sandbox();
  try {
    const defaults = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(defaults.config.graft, { auto: false });
    assert.deepEqual(entry(defaults, "graft.auto"), { key: "graft.auto", value: false, source: "default", origin: null });
    const file = join(s.project, "cpr.toml");
    writeFileSync(file, `[graft]\nauto = true\nmode = "x"\n`);
    const loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.graft, { auto: true });
    assert.deepEqual(entry(loaded, "graft.auto"), { key: "graft.auto", value: true, source: "project", origin: file });
    assert.deepEqual(loaded.warnings, [
      { code: "config.unknown-key", message: `${file}:3:1: unknown key "mode" in [graft] (known: auto)` },
    ]);
    writeFileSync(file, `[graft]\nauto = "yes"\n`);
    await assert.rejects(loadConfig({ cwd: s.sub, env: s.env }), (e: unknown) => {
      assert.ok(e instanceof CprError, String(e));
      assert.equal(e.code, "config.invalid", e.message);
      assert.equal(e.where, `${file}:2:1`);
      assert.match(e.message, /graft\.auto must be true or false/);
      return true;
    });
  } finally {
    s.done();
  }
});

const KEY_A = formatPublicKey(publicKeyOf(generateSecretKey("reg-a-1")));
const KEY_B = formatPublicKey(publicKeyOf(generateSecretKey("reg-b-1")));

test("[registry]: defaults", async () => {
  const s = sandbox();
  try {
    const loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.registry, {
      urls: [],
      keys: [],
      token: null,
      sets: [],
      data: join(s.home, ".local", "share", "cpr", "registry"),
      db: null,
      listen: DEFAULT_REGISTRY_LISTEN,
      refresh: DEFAULT_REGISTRY_REFRESH,
      builds: { systems: [], sets: null, labels: null, versions: 1, priority: 0, lease: 60 },
      store: null,
    });
    assert.equal(DEFAULT_REGISTRY_LISTEN, "127.0.0.1:8080");
    assert.equal(DEFAULT_REGISTRY_REFRESH, 300);
    assert.deepEqual(
      loaded.entries.filter((e) => e.key.startsWith("registry.")).map((e) => [e.key, e.value, e.source]),
      [
        ["registry.builds", { systems: [], sets: null, labels: null, versions: 1, priority: 0, lease: 60 }, "default"],
        ["registry.data", join(s.home, ".local", "share", "cpr", "registry"), "default"],
        ["registry.db", null, "default"],
        ["registry.keys", [], "default"],
        ["registry.listen", "127.0.0.1:8080", "default"],
        ["registry.refresh", 300, "default"],
        ["registry.sets", [], "default"],
        ["registry.store", null, "default"],
        ["registry.token", null, "default"],
        ["registry.urls", [], "default"],
      ],
    );
    assert.equal(defaultRegistryData({ HOME: "/h", XDG_DATA_HOME: "/x/data" }), "/x/data/cpr/registry");
    assert.equal(defaultRegistryData({ HOME: "/h", XDG_DATA_HOME: "rel" }), "/h/.local/share/cpr/registry");
    const xdg = await loadConfig({ cwd: s.sub, env: { ...s.env, XDG_DATA_HOME: "/x/data" } });
    assert.equal(xdg.config.registry.data, "/x/data/cpr/registry");
  } finally {
    s.done();
  }
});

test("[registry]: user file, project file and CPR_REGISTRY* variables, each key replaced as a whole", async () => {
  const s = sandbox();
  try {
    const userFile = join(s.home, ".config", "cpr", "config.toml");
    mkdirSync(join(s.home, ".config", "cpr"), { recursive: true });
    writeFileSync(
      userFile,
      [
        "[registry]",
        'urls = ["https://reg.example.org/", "http://127.0.0.1:9000/base"]',
        `keys = ["${KEY_A}"]`,
        'token = "cpr_user"',
        'sets = ["https://example.org/set.git", "gh:owner/repo"]',
        'data = "~/regdata"',
        'db = "postgres://cpr:s3cret@db.example.org:5432/cpr"',
        'listen = "[::1]:0"',
        "refresh = 60",
        'store = "s3://nars/cache?endpoint=http://127.0.0.1:7480"',
        "[registry.builds]",
        'systems = ["x86_64-linux", "aarch64-linux"]',
        `sets = ["${"a".repeat(40)}"]`,
        'versions = "all"',
        "priority = 5",
        "lease = 30",
        "",
      ].join("\n"),
    );
    let loaded = await loadConfig({ cwd: s.home, env: s.env });
    assert.deepEqual(loaded.config.registry, {
      urls: ["https://reg.example.org", "http://127.0.0.1:9000/base"],
      keys: [KEY_A],
      token: "cpr_user",
      sets: ["https://example.org/set.git", "gh:owner/repo"],
      data: join(s.home, "regdata"),
      db: "postgres://cpr:s3cret@db.example.org:5432/cpr",
      listen: "[::1]:0",
      refresh: 60,
      builds: { systems: ["x86_64-linux", "aarch64-linux"], sets: ["a".repeat(40)], labels: null, versions: "all", priority: 5, lease: 30 },
      store: "s3://nars/cache?endpoint=http://127.0.0.1:7480",
    });
    assert.deepEqual(loaded.warnings, []);
    // `cpr config list` does not print secrets.
    assert.deepEqual(entry(loaded, "registry.token"), { key: "registry.token", value: "<hidden>", source: "user", origin: userFile });
    assert.equal(entry(loaded, "registry.db")?.value, "postgres://cpr@db.example.org:5432/cpr");
    assert.deepEqual(entry(loaded, "registry.keys")?.value, [KEY_A]);

    // The project replaces keys it names; a token there is a warning (it would be committed).
    const projectFile = join(s.project, "cpr.toml");
    writeFileSync(projectFile, `[registry]\nurls = "https://team.example.org"\ndb = "state/reg.sqlite"\ntoken = "cpr_project"\n`);
    loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.registry.urls, ["https://team.example.org"]);
    assert.equal(loaded.config.registry.db, join(s.project, "state", "reg.sqlite"));
    assert.equal(loaded.config.registry.token, "cpr_project");
    assert.deepEqual(loaded.config.registry.keys, [KEY_A], "kept from the user file");
    assert.deepEqual(entry(loaded, "registry.urls"), {
      key: "registry.urls",
      value: ["https://team.example.org"],
      source: "project",
      origin: projectFile,
    });
    assert.deepEqual(loaded.warnings, [
      {
        code: "config.token-in-project",
        message: `${projectFile}:4:1: registry.token in the project's cpr.toml is committed with the set; keep it in the user config or CPR_REGISTRY_TOKEN`,
      },
    ]);

    writeFileSync(projectFile, `[registry]\ndb = "sqlite:~/r.sqlite"\n`);
    loaded = await loadConfig({
      cwd: s.sub,
      env: {
        ...s.env,
        CPR_REGISTRY: " https://a.example.org/ , http://b.example.org,",
        CPR_REGISTRY_KEYS: `${KEY_B},${KEY_A}`,
        CPR_REGISTRY_TOKEN: "cpr_env",
        CPR_REGISTRY_DATA: "rel/data",
        CPR_REGISTRY_LISTEN: "0.0.0.0:8081",
        CPR_REGISTRY_STORE: "s3://other/p",
      },
    });
    assert.equal(loaded.config.registry.store, "s3://other/p");
    assert.equal(loaded.config.registry.db, `sqlite:${join(s.home, "r.sqlite")}`);
    assert.deepEqual(loaded.config.registry.urls, ["https://a.example.org", "http://b.example.org"]);
    assert.deepEqual(loaded.config.registry.keys, [KEY_B, KEY_A]);
    assert.equal(loaded.config.registry.token, "cpr_env");
    assert.equal(loaded.config.registry.data, join(s.sub, "rel", "data"));
    assert.equal(loaded.config.registry.listen, "0.0.0.0:8081");
    assert.equal(loaded.config.registry.refresh, 60);
    assert.deepEqual(entry(loaded, "registry.urls"), {
      key: "registry.urls",
      value: ["https://a.example.org", "http://b.example.org"],
      source: "env",
      origin: "CPR_REGISTRY",
    });
    assert.deepEqual(entry(loaded, "registry.token"), {
      key: "registry.token",
      value: "<hidden>",
      source: "env",
      origin: "CPR_REGISTRY_TOKEN",
    });
    // An empty variable counts as unset; CPR_REGISTRY_DB relative to the working directory.
    loaded = await loadConfig({ cwd: s.sub, env: { ...s.env, CPR_REGISTRY: "", CPR_REGISTRY_TOKEN: " ", CPR_REGISTRY_DB: "x.sqlite" } });
    assert.deepEqual(loaded.config.registry.urls, ["https://reg.example.org", "http://127.0.0.1:9000/base"]);
    assert.equal(loaded.config.registry.token, "cpr_user");
    assert.equal(loaded.config.registry.db, join(s.sub, "x.sqlite"));
  } finally {
    s.done();
  }
});

test("[registry]: invalid values are errors with file:line:col or the variable's name", async () => {
  const s = sandbox();
  try {
    const file = join(s.project, "cpr.toml");
    const bad = invalidConfig(s, file);
    const at = (line: number) => `${file}:${line}:1`;
    await bad(`registry = 1\n`, /\[registry\] must be a table/, at(1));
    await bad(
      `[registry]\nurls = ["ftp://x.example.org"]\n`,
      /registry\.urls: "ftp:\/\/x\.example\.org" is not an http or https URL/,
      at(2),
    );
    await bad(`[registry]\nurls = ["not a url"]\n`, /is not a URL/, at(2));
    await bad(`[registry]\nurls = ["https://x.example.org/?a=1"]\n`, /query or fragment/, at(2));
    await bad(`[registry]\n\nurls = [1]\n`, /registry\.urls must be an array of strings/, at(3));
    await bad(`[registry]\nkeys = ["nocolon"]\n`, /registry\.keys: invalid public key "nocolon": expected name:base64/, at(2));
    await bad(`[registry]\nkeys = ["${KEY_A.slice(0, -4)}"]\n`, /registry\.keys: invalid public key/, at(2));
    await bad(`[registry]\ntoken = 5\n`, /registry\.token must be a string/, at(2));
    await bad(`[registry]\ntoken = "a b"\n`, /registry\.token must be a non-empty token without spaces/, at(2));
    await bad(`[registry]\nsets = [""]\n`, /set mirror URL "" must be non-empty/, at(2));
    await bad(`[registry]\ndata = ""\n`, /registry\.data must be a non-empty string/, at(2));
    await bad(`[registry]\ndb = "mysql://x/y"\n`, /unsupported database URL "mysql:\/\/…"/, at(2));
    await bad(`[registry]\ndb = "sqlite:"\n`, /sqlite: needs a path/, at(2));
    await bad(`[registry]\nlisten = "8080"\n`, /registry\.listen must be HOST:PORT/, at(2));
    await bad(`[registry]\nlisten = "localhost:65536"\n`, /HOST:PORT \(port 0–65535\)/, at(2));
    await bad(`[registry]\nlisten = "::1:80"\n`, /HOST:PORT/, at(2));
    await bad(
      `[registry]\nrefresh = -1\n`,
      /registry\.refresh must be a whole number of seconds \(0 for no scheduled re-indexing\), got -1/,
      at(2),
    );
    await bad(`[registry]\nrefresh = 1.5\n`, /registry\.refresh/, at(2));
    await bad(`[registry.builds]\nversions = 0\n`, /registry\.builds\.versions must be a positive whole number or "all", got 0/, at(2));
    await bad(
      `[registry.builds]\nsystems = ["linux"]\n`,
      /registry\.builds\.systems must be an array of strings like "x86_64-linux"/,
      at(2),
    );
    await bad(`[registry.builds]\nsets = ["main"]\n`, /registry\.builds\.sets must be an array/, at(2));
    await bad(`[registry.builds]\nlease = 0\n`, /registry\.builds\.lease must be a whole number of seconds/, at(2));
    await bad("", /CPR_REGISTRY: "gopher:\/\/x" is not an http/, "CPR_REGISTRY", { CPR_REGISTRY: "https://ok.example.org,gopher://x" });
    await bad("", /CPR_REGISTRY_KEYS: invalid public key "bad:AAAA"/, "CPR_REGISTRY_KEYS", { CPR_REGISTRY_KEYS: `${KEY_A},bad:AAAA` });
    await bad("", /CPR_REGISTRY_TOKEN must be a non-empty token/, "CPR_REGISTRY_TOKEN", { CPR_REGISTRY_TOKEN: "two words" });
    await bad("", /CPR_REGISTRY_LISTEN must be HOST:PORT/, "CPR_REGISTRY_LISTEN", { CPR_REGISTRY_LISTEN: "nowhere" });
    await bad("", /CPR_REGISTRY_DB: unsupported database URL/, "CPR_REGISTRY_DB", { CPR_REGISTRY_DB: "redis://x" });
  } finally {
    s.done();
  }
});

test("cpr config list shows [registry] without the token", () => {
  const s = sandbox();
  try {
    writeFileSync(join(s.project, "cpr.toml"), `[registry]\nurls = ["https://reg.example.org"]\nrefresh = 30\n`);
    const env = { PATH: process.env.PATH, HOME: s.home, NO_COLOR: "1", CPR_REGISTRY_TOKEN: "cpr_topsecret", CPR_REGISTRY_KEYS: KEY_A };
    const human = runCpr(["config", "list"], { cwd: s.sub, env });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^registry\.urls = "https:\/\/reg\.example\.org" +\(project: .*cpr\.toml\)$/m);
    assert.match(human.stdout, /^registry\.refresh = 30 +\(project: .*cpr\.toml\)$/m);
    assert.match(human.stdout, /^registry\.listen = "127\.0\.0\.1:8080" +\(default\)$/m);
    assert.match(human.stdout, /^registry\.token = "<hidden>" +\(env: CPR_REGISTRY_TOKEN\)$/m);
    assert.ok(human.stdout.includes(`registry.keys = ${JSON.stringify(KEY_A)}`));
    assert.ok(!human.stdout.includes("topsecret"));
    const json = runCpr(["config", "list", "--json"], { cwd: s.sub, env });
    assert.equal(json.code, 0, json.stderr);
    assert.ok(!json.stdout.includes("topsecret"));
    const doc = JSON.parse(json.stdout) as { entries: { key: string; value: unknown; source: string; origin: string | null }[] };
    assert.deepEqual(
      doc.entries.find((e) => e.key === "registry.db"),
      { key: "registry.db", value: null, source: "default", origin: null },
    );
  } finally {
    s.done();
  }
});

const LOCKER_ROOT = "a".repeat(40);
const LOCKER_REV = "b".repeat(40);

test("[locker]: defaults are docs/formats.md §11.9's, with the published rev", async () => {
  const s = sandbox();
  try {
    const loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.locker, {
      label: "nix-lock",
      version: "0.1.6",
      set: "4abbd2644bc3585e9be95deb277ccf48f6ed26ac",
      mirror: "https://github.com/ekala-project/eka",
      rev: "e711aa1f48d877652dd2ba724d4af752be7b5371",
    });
    assert.deepEqual(
      loaded.entries.filter((e) => e.key.startsWith("locker.")).map((e) => [e.key, e.value, e.source]),
      [
        ["locker.label", "nix-lock", "default"],
        ["locker.mirror", "https://github.com/ekala-project/eka", "default"],
        ["locker.rev", "e711aa1f48d877652dd2ba724d4af752be7b5371", "default"],
        ["locker.set", "4abbd2644bc3585e9be95deb277ccf48f6ed26ac", "default"],
        ["locker.version", "0.1.6", "default"],
      ],
    );
  } finally {
    s.done();
  }
});

test("[locker]: user file, project file and CPR_LOCKER_* variables, per key; the default rev only for the default locker", async () => {
  const s = sandbox();
  try {
    const userFile = join(s.home, ".config", "cpr", "config.toml");
    mkdirSync(join(s.home, ".config", "cpr"), { recursive: true });
    writeFileSync(
      userFile,
      `[locker]\nlabel = "my-lock"\nversion = "1.2.0"\nset = "${LOCKER_ROOT}"\nmirror = "https://example.org/lockers.git"\nrev = "${LOCKER_REV}"\n`,
    );
    let loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.locker, {
      label: "my-lock",
      version: "1.2.0",
      set: LOCKER_ROOT,
      mirror: "https://example.org/lockers.git",
      rev: LOCKER_REV,
    });
    assert.deepEqual(entry(loaded, "locker.rev"), { key: "locker.rev", value: LOCKER_REV, source: "user", origin: userFile });
    assert.deepEqual(loaded.warnings, []);

    // Another locker without a rev: the default's rev does not apply; resolution asks the mirror (rev null).
    writeFileSync(
      userFile,
      `[locker]\nlabel = "my-lock"\nversion = "1.2.0"\nset = "${LOCKER_ROOT}"\nmirror = "git://127.0.0.1/lockers.git"\n`,
    );
    loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.equal(loaded.config.locker.rev, null);
    assert.deepEqual(entry(loaded, "locker.rev"), { key: "locker.rev", value: null, source: "default", origin: null });
    // Only another mirror of nix-lock 0.1.6: asked for the rev too (docs/formats.md §11.9).
    writeFileSync(userFile, "");
    const projectFile = join(s.project, "cpr.toml");
    writeFileSync(projectFile, `[locker]\nmirror = "https://mirror.example.org/eka"\n`);
    loaded = await loadConfig({ cwd: s.sub, env: s.env });
    assert.deepEqual(loaded.config.locker, {
      label: "nix-lock",
      version: "0.1.6",
      set: "4abbd2644bc3585e9be95deb277ccf48f6ed26ac",
      mirror: "https://mirror.example.org/eka",
      rev: null,
    });
    assert.deepEqual(entry(loaded, "locker.mirror"), {
      key: "locker.mirror",
      value: "https://mirror.example.org/eka",
      source: "project",
      origin: projectFile,
    });

    // The environment: CPR_LOCKER_* override per key; an empty variable counts as unset.
    loaded = await loadConfig({
      cwd: s.sub,
      env: {
        ...s.env,
        CPR_LOCKER_REV: ` ${LOCKER_REV} `,
        CPR_LOCKER_LABEL: "other-lock",
        CPR_LOCKER_VERSION: "2.0.0-rc.1",
        CPR_LOCKER_SET: LOCKER_ROOT,
        CPR_LOCKER_MIRROR: "",
      },
    });
    assert.deepEqual(loaded.config.locker, {
      label: "other-lock",
      version: "2.0.0-rc.1",
      set: LOCKER_ROOT,
      mirror: "https://mirror.example.org/eka",
      rev: LOCKER_REV,
    });
    assert.deepEqual(entry(loaded, "locker.rev"), { key: "locker.rev", value: LOCKER_REV, source: "env", origin: "CPR_LOCKER_REV" });
    assert.deepEqual(entry(loaded, "locker.version"), {
      key: "locker.version",
      value: "2.0.0-rc.1",
      source: "env",
      origin: "CPR_LOCKER_VERSION",
    });
  } finally {
    s.done();
  }
});

test("[locker]: invalid values are errors with file:line:col or the variable's name; unknown keys warn", async () => {
  const s = sandbox();
  try {
    const file = join(s.project, "cpr.toml");
    const bad = invalidConfig(s, file);
    const at = (line: number) => `${file}:${line}:1`;
    await bad(`locker = "nix-lock"\n`, /\[locker\] must be a table/, at(1));
    await bad(
      `[locker]\nrev = "${"0".repeat(39)}"\n`,
      /locker\.rev must be the commit id of refs\/eka\/atoms\/<label>\/<version>: 40 or 64 lowercase hex digits/,
      at(2),
    );
    await bad(`[locker]\nrev = "${LOCKER_REV.toUpperCase()}"\n`, /locker\.rev must be/, at(2));
    await bad(`[locker]\n\nset = "eka"\n`, /locker\.set must be the root of the locker's set/, at(3));
    await bad(`[locker]\nversion = "v0.1.6"\n`, /locker\.version: invalid version "v0\.1\.6"/, at(2));
    await bad(`[locker]\nversion = "^0.1"\n`, /locker\.version: invalid version/, at(2));
    await bad(`[locker]\nlabel = "1lock"\n`, /locker\.label "1lock" cannot start with/, at(2));
    await bad(`[locker]\nmirror = "a b"\n`, /must be non-empty and without spaces/, at(2));
    await bad(`[locker]\nmirror = 1\n`, /locker\.mirror must be a string/, at(2));
    await bad("", /CPR_LOCKER_REV must be the commit id/, "CPR_LOCKER_REV", { CPR_LOCKER_REV: "0" });
    await bad("", /CPR_LOCKER_VERSION: invalid version "1\.2"/, "CPR_LOCKER_VERSION", { CPR_LOCKER_VERSION: "1.2" });
    await bad("", /CPR_LOCKER_SET must be the root/, "CPR_LOCKER_SET", { CPR_LOCKER_SET: "xyz" });
    await bad("", /CPR_LOCKER_LABEL "a\/b" has an invalid character/, "CPR_LOCKER_LABEL", { CPR_LOCKER_LABEL: "a/b" });
    writeFileSync(file, `[locker]\nname = "x"\n`);
    const loaded = await loadConfig({ cwd: s.project, env: s.env });
    assert.deepEqual(loaded.warnings, [
      { code: "config.unknown-key", message: `${file}:2:1: unknown key "name" in [locker] (known: label, mirror, rev, set, version)` },
    ]);
  } finally {
    s.done();
  }
});

test("cpr config list shows [locker] with its sources", () => {
  const s = sandbox();
  try {
    writeFileSync(join(s.project, "cpr.toml"), `[locker]\nmirror = "https://mirror.example.org/eka"\n`);
    const env = { PATH: process.env.PATH, HOME: s.home, NO_COLOR: "1", CPR_LOCKER_VERSION: "0.1.7" };
    const human = runCpr(["config", "list"], { cwd: s.sub, env });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^locker\.label = "nix-lock" +\(default\)$/m);
    assert.match(human.stdout, /^locker\.mirror = "https:\/\/mirror\.example\.org\/eka" +\(project: .*cpr\.toml\)$/m);
    assert.match(human.stdout, /^locker\.version = "0\.1\.7" +\(env: CPR_LOCKER_VERSION\)$/m);
    assert.match(human.stdout, /^locker\.rev = null +\(default\)$/m);
  } finally {
    s.done();
  }
});
