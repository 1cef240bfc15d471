import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomId } from "../../src/protocol/id.js";
import { DEFAULT_LOCKER_MIRROR, parseLock } from "../../src/protocol/lock.js";
import { ListingCache } from "../../src/resolve/cache.js";
import { startGitDaemon, type TestServer } from "../support/servers.js";
import { cprRejection } from "../support/assert.js";
import { needTools } from "../support/tools.js";
import { gitIn, tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet, manifestText, publishMore } from "./fixture.js";

/** docs/formats.md §11's default [locker], as the spec gives it (the id is that of (set, "nix-lock"), as eka writes it). */
const SPEC_LOCKER = `
[locker]
label = "nix-lock"
version = "0.1.6"
set = "4abbd2644bc3585e9be95deb277ccf48f6ed26ac"
rev = "e711aa1f48d877652dd2ba724d4af752be7b5371"
mirror = "https://github.com/ekala-project/eka"
id = "r3rlam6bd31t9i04ggug7avs8vf8981q7a3b6gobemk1gfs50qm0"

[compose]
`;

/** github.com is unreachable by construction: every proxy variable names a closed port, and git may use file:// only. */
const NO_NETWORK: NodeJS.ProcessEnv = {
  HTTPS_PROXY: "http://127.0.0.1:9",
  https_proxy: "http://127.0.0.1:9",
  HTTP_PROXY: "http://127.0.0.1:9",
  http_proxy: "http://127.0.0.1:9",
  ALL_PROXY: "http://127.0.0.1:9",
  all_proxy: "http://127.0.0.1:9",
  GIT_ALLOW_PROTOCOL: "file",
};

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

function lockText(dir: string): string {
  return readFileSync(join(dir, "atom.lock"), "utf8");
}

test("a new lock names docs/formats.md §11.9's default locker, byte for byte, without asking the network", async () => {
  const env = isolatedEnv(NO_NETWORK);
  // Nothing to list at all: not one connection.
  const bare = makeProject({});
  const run = await lock(bare, env);
  assert.equal(run.status, "written");
  assert.equal(run.stats.connections, 0);
  assert.ok(lockText(bare).includes(SPEC_LOCKER), lockText(bare));
  // With dependencies: only their set is listed, never the locker's mirror.
  const s = join(tempDir("cpr-sets-"), "s");
  makeSet(s, { d: { "1.0.0": {} } });
  const dir = makeProject({ sets: { s }, deps: { s: { d: "^1" } } });
  assert.equal((await lock(dir, env)).status, "written");
  assert.ok(lockText(dir).includes(SPEC_LOCKER), lockText(dir));
  const cache = new ListingCache(join(env.HOME!, "cache", "cpr"), 300);
  assert.notEqual(cache.root(s), null, "the dependency's set was listed (and cached)");
  assert.equal(cache.root(DEFAULT_LOCKER_MIRROR), null, "the locker's mirror was not");
});

test("a configured locker: from the config file, then from CPR_LOCKER_*; an existing lock's [locker] is kept", async () => {
  const env = isolatedEnv(NO_NETWORK);
  const root = "a".repeat(40);
  const rev = "b".repeat(40);
  const mirror = "https://lockers.example.invalid/set.git";
  mkdirSync(join(env.XDG_CONFIG_HOME!, "cpr"), { recursive: true });
  writeFileSync(
    join(env.XDG_CONFIG_HOME!, "cpr", "config.toml"),
    `[locker]\nlabel = "my-lock"\nversion = "1.2.0"\nset = "${root}"\nmirror = "${mirror}"\nrev = "${rev}"\n`,
  );
  const dir = makeProject({});
  const run = await lock(dir, env);
  assert.equal(run.stats.connections, 0, "a configured rev needs no listing");
  const expected = { label: "my-lock", version: "1.2.0", set: root, rev, mirror, id: atomId(root, "my-lock") };
  assert.deepEqual(parseLock(lockText(dir), "atom.lock").locker, expected);
  assert.ok(
    lockText(dir).includes(
      `\n[locker]\nlabel = "my-lock"\nversion = "1.2.0"\nset = "${root}"\nrev = "${rev}"\nmirror = "${mirror}"\nid = "${expected.id}"\n`,
    ),
  );

  // The environment overrides the file, key by key.
  rmSync(join(dir, "atom.lock"));
  const rev2 = "c".repeat(40);
  await lock(dir, { ...env, CPR_LOCKER_REV: rev2, CPR_LOCKER_VERSION: "1.3.0" });
  assert.deepEqual(parseLock(lockText(dir), "atom.lock").locker, { ...expected, version: "1.3.0", rev: rev2 });

  // A lock being rewritten keeps its [locker], whatever the configuration says now.
  const s = join(tempDir("cpr-sets-"), "s");
  makeSet(s, { d: { "1.0.0": {} } });
  writeFileSync(join(dir, "atom.toml"), manifestText("app", "0.1.0", { sets: { s }, deps: { s: { d: "^1" } } }));
  const again = await lock(dir, { ...env, CPR_LOCKER_REV: "d".repeat(40) });
  assert.equal(again.status, "written");
  assert.deepEqual(parseLock(lockText(dir), "atom.lock").locker, { ...expected, version: "1.3.0", rev: rev2 });
});

test("a configured locker without a rev is listed from its mirror (git daemon); one that cannot be found fails, writing nothing", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  const setDir = join(base, "lockers.git");
  const root = makeSet(setDir, { "my-lock": { "1.2.0": {}, "1.2.1": {} } }, "lockers");
  const mirror = server.url("lockers.git");
  const env = isolatedEnv({ CPR_LOCKER_LABEL: "my-lock", CPR_LOCKER_VERSION: "1.2.0", CPR_LOCKER_SET: root, CPR_LOCKER_MIRROR: mirror });
  const dir = makeProject({});
  const run = await lock(dir, env);
  assert.ok(run.stats.connections > 0);
  const rev = gitIn(setDir, "rev-parse", "refs/eka/atoms/my-lock/1.2.0");
  assert.deepEqual(parseLock(lockText(dir), "atom.lock").locker, {
    label: "my-lock",
    version: "1.2.0",
    set: root,
    rev,
    mirror,
    id: atomId(root, "my-lock"),
  });
  rmSync(join(dir, "atom.lock"));

  // Not published: a clear error, no lock, and no rev made up.
  const missing = await cprRejection(lock(dir, { ...env, CPR_LOCKER_VERSION: "1.3.0" }), "resolve.locker");
  assert.match(missing.message, /has no refs\/eka\/atoms\/my-lock\/1\.3\.0/);
  assert.ok(missing.message.includes("127.0.0.1"), missing.message);
  assert.match(missing.hint ?? "", /locker\.rev \(CPR_LOCKER_REV\)/);
  assert.equal(existsSync(join(dir, "atom.lock")), false);

  // Published since: seen at once, although the listing that lacked it is still fresh in the cache.
  publishMore(setDir, { "my-lock": { "1.3.0": {} } });
  const later = await lock(dir, { ...env, CPR_LOCKER_VERSION: "1.3.0" });
  assert.equal(later.status, "written");
  assert.equal(parseLock(lockText(dir), "atom.lock").locker?.rev, gitIn(setDir, "rev-parse", "refs/eka/atoms/my-lock/1.3.0"));
  assert.ok(
    later.infos.some((m) => m.includes("again")),
    later.infos.join("\n"),
  );
  rmSync(join(dir, "atom.lock"));

  // The mirror is another set than the one configured.
  const alien = await cprRejection(lock(dir, { ...env, CPR_LOCKER_SET: "c".repeat(40) }), "resolve.locker");
  assert.match(alien.message, new RegExp(`root ${root}, not locker\\.set c{40}`));
  assert.equal(existsSync(join(dir, "atom.lock")), false);

  // The mirror is down.
  await server.stop();
  const down = await cprRejection(lock(dir, { ...env, CPR_LOCKER_VERSION: "1.2.1" }), "resolve.locker");
  assert.match(down.message, /refs\/eka\/atoms\/my-lock\/1\.2\.1\) could not be listed from git:\/\/127\.0\.0\.1/);
  assert.equal(existsSync(join(dir, "atom.lock")), false);
});
