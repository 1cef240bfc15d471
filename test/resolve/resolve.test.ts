import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLock } from "../../src/protocol/lock.js";
import { startGitDaemon, startHttpBackend, type TestServer } from "../support/servers.js";
import { cprRejection } from "../support/assert.js";
import { needTools } from "../support/tools.js";
import { tempDir, gitIn, commitAll } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet, manifestText, publishMore, versionsOf } from "./fixture.js";

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function daemon(): Promise<{ base: string; server: TestServer }> {
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  return { base, server };
}

test("diamond across two sets over git://, unified to one version; no-op resolve opens no connection", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const { base, server } = await daemon();
  const low = server.url("low.git");
  makeSet(join(base, "low.git"), { c: { "1.0.0": {}, "1.2.0": {}, "1.3.0": {}, "2.0.0": {} } }, "low");
  makeSet(
    join(base, "mid.git"),
    {
      a: { "1.0.0": { sets: { low }, deps: { low: { c: "^1" } } } },
      b: { "1.0.0": { sets: { low }, deps: { low: { c: "^1.2" } } }, "1.1.0": { sets: { low }, deps: { low: { c: "^2" } } } },
    },
    "mid",
  );
  const dir = makeProject({ sets: { mid: server.url("mid.git") }, deps: { mid: { a: "^1", b: "~1.0" } } });
  const env = isolatedEnv();
  const first = await lock(dir, env);
  assert.equal(first.status, "written");
  assert.deepEqual(versionsOf(first), { a: "1.0.0", b: "1.0.0", c: "1.3.0" });
  assert.ok(first.stats.connections > 0);
  const text = readFileSync(join(dir, "atom.lock"), "utf8");
  const parsed = parseLock(text, "atom.lock");
  assert.equal(Object.keys(parsed.sets).length, 2);
  assert.equal(parsed.deps.filter((d) => d.type === "atom").length, 3);
  // Second run: the lock satisfies the manifest. Stop the server to prove no connection is needed at all.
  await server.stop();
  const again = await lock(dir, env);
  assert.equal(again.status, "unchanged");
  assert.equal(again.stats.connections, 0);
  assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), text);
  // --locked passes too, without network.
  assert.equal((await lock(dir, env, { locked: true })).status, "unchanged");
  // Without the lock, fresh cached listings (TTL) and cached manifests resolve it again: still no connection.
  const { rmSync } = await import("node:fs");
  rmSync(join(dir, "atom.lock"));
  const warm = await lock(dir, env);
  assert.equal(warm.status, "written");
  assert.equal(warm.stats.connections, 0);
  assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), text);
  // With listings expired (TTL 0), the dead server is an error naming it.
  rmSync(join(dir, "atom.lock"));
  const err = await cprRejection(lock(dir, { ...env, CPR_LISTING_TTL: "0" }), "resolve.mirrors-down");
  assert.match(err.message, /127\.0\.0\.1/);
});

test("conflict: the explanation names the chain", async () => {
  const base = tempDir("cpr-sets-");
  const low = join(base, "low");
  makeSet(low, { c: { "1.0.0": {}, "2.0.0": {} } }, "low");
  const mid = join(base, "mid");
  makeSet(
    mid,
    {
      foo: { "1.0.0": { sets: { low }, deps: { low: { c: "^1" } } }, "1.1.0": { sets: { low }, deps: { low: { c: "^1" } } } },
      bar: { "2.0.0": { sets: { low }, deps: { low: { c: "^2" } } } },
    },
    "mid",
  );
  const dir = makeProject({ sets: { mid }, deps: { mid: { foo: "^1", bar: "^2" } } });
  const err = await cprRejection(lock(dir, isolatedEnv()), "resolve.conflict");
  for (const name of ["foo", "bar", "c", "app"]) assert.match(err.message, new RegExp(`\\b${name}\\b`), err.message);
  assert.ok(err.hint && err.hint.length > 0);
  assert.equal(existsSync(join(dir, "atom.lock")), false);
});

test("prereleases are chosen only when a requirement names them", async () => {
  const base = tempDir("cpr-sets-");
  const s = join(base, "s");
  makeSet(s, { d: { "1.0.0": {}, "1.1.0-rc.1": {} } });
  const env = isolatedEnv();
  const plain = makeProject({ sets: { s }, deps: { s: { d: "^1" } } });
  assert.deepEqual(versionsOf(await lock(plain, env)), { d: "1.0.0" });
  const pre = makeProject({ sets: { s }, deps: { s: { d: "^1.1.0-rc.1" } } });
  assert.deepEqual(versionsOf(await lock(pre, env)), { d: "1.1.0-rc.1" });
});

test("a dead mirror is a warning; the others answer", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const { base, server } = await daemon();
  makeSet(join(base, "s.git"), { d: { "1.0.0": {} } });
  const file = join(base, "s.git");
  const dead = server.url("s.git");
  await server.stop();
  const dir = makeProject({ sets: { s: [dead, file] }, deps: { s: { d: "^1" } } });
  const run = await lock(dir, isolatedEnv());
  assert.deepEqual(versionsOf(run), { d: "1.0.0" });
  assert.ok(
    run.warnings.some((w) => w.includes("127.0.0.1") && w.includes("did not answer")),
    run.warnings.join("\n"),
  );
  // Every mirror dead: an error naming them.
  const none = makeProject({ sets: { s: [dead] }, deps: { s: { d: "^1" } } });
  const err = await cprRejection(lock(none, isolatedEnv()), "resolve.mirrors-down");
  assert.match(err.message, /127\.0\.0\.1/);
});

test("tampering mirrors are refused, naming both", async () => {
  const base = tempDir("cpr-sets-");
  const good = join(base, "good");
  makeSet(good, { d: { "1.0.0": {} } });
  // Same root (a clone), but 1.0.0 re-pointed at another commit.
  const bad = join(base, "bad");
  gitIn(base, "clone", "-q", "--mirror", good, bad);
  const other = gitIn(bad, "commit-tree", gitIn(bad, "rev-parse", "HEAD^{tree}"), "-m", "forged");
  gitIn(bad, "update-ref", "refs/eka/atoms/d/1.0.0", other);
  const dir = makeProject({ sets: { s: [good, bad] }, deps: { s: { d: "^1" } } });
  const err = await cprRejection(lock(dir, isolatedEnv()), "resolve.rev-mismatch");
  assert.ok(err.message.includes(good) && err.message.includes(bad), err.message);
  // A mirror with another root.
  const alien = join(base, "alien");
  makeSet(alien, { d: { "1.0.0": {} } }, "alien");
  const dir2 = makeProject({ sets: { s: [good, alien] }, deps: { s: { d: "^1" } } });
  const err2 = await cprRejection(lock(dir2, isolatedEnv()), "resolve.root-mismatch");
  assert.ok(err2.message.includes(good) && err2.message.includes(alien), err2.message);
});

test("offline resolves from the cache alone, and names what is missing", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const { base, server } = await daemon();
  const low = server.url("low.git");
  makeSet(join(base, "low.git"), { c: { "1.0.0": {} } }, "low");
  makeSet(join(base, "mid.git"), { a: { "1.0.0": { sets: { low }, deps: { low: { c: "^1" } } } } }, "mid");
  const dir = makeProject({ sets: { mid: server.url("mid.git") }, deps: { mid: { a: "^1" } } });
  const env = isolatedEnv();
  await lock(dir, env);
  const locked = readFileSync(join(dir, "atom.lock"), "utf8");
  await server.stop();
  writeFileSync(join(dir, "atom.lock"), "");
  gitIn(dir, "rm", "-q", "--cached", "--ignore-unmatch", "atom.lock");
  // Empty lock file is invalid: remove it instead.
  const { rmSync } = await import("node:fs");
  rmSync(join(dir, "atom.lock"));
  const off = await lock(dir, env, { offline: true });
  assert.equal(off.status, "written");
  assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), locked);
  assert.equal(off.stats.connections, 0);
  rmSync(join(dir, "atom.lock"));
  const err = await cprRejection(lock(dir, isolatedEnv(), { offline: true }), "resolve.offline");
  assert.match(err.message, /'a'/);
});

test("--locked fails without writing; locked versions are kept; update moves forward", async () => {
  const base = tempDir("cpr-sets-");
  const s = join(base, "s");
  makeSet(s, { d: { "1.0.0": {} }, e: { "1.0.0": {} } });
  const env = isolatedEnv({ CPR_LISTING_TTL: "0" });
  const dir = makeProject({ sets: { s }, deps: { s: { d: "^1" } } });
  await lock(dir, env);
  publishMore(s, { d: { "1.1.0": {} } });
  const before = readFileSync(join(dir, "atom.lock"), "utf8");
  // A new dependency: the lock must change.
  writeFileSync(join(dir, "atom.toml"), manifestText("app", "0.1.0", { sets: { s }, deps: { s: { d: "^1", e: "^1" } } }));
  await cprRejection(lock(dir, env, { locked: true }), "resolve.locked");
  assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), before);
  // Resolving keeps d at 1.0.0 although 1.1.0 exists.
  const run = await lock(dir, env);
  assert.deepEqual(versionsOf(run), { d: "1.0.0", e: "1.0.0" });
  // update d moves it forward, leaving e.
  const up = await lock(dir, env, { update: ["d"] });
  assert.deepEqual(versionsOf(up), { d: "1.1.0", e: "1.0.0" });
});

test("http-backend mirror (lighttpd) serves listings and manifest blobs", async (t) => {
  if (!needTools(t, "lighttpd", "git-http-backend")) return;
  const base = tempDir("cpr-served-");
  const server = await startHttpBackend(base);
  servers.push(server);
  makeSet(join(base, "low.git"), { c: { "1.0.0": {}, "1.5.0": {} } }, "low");
  makeSet(join(base, "mid.git"), { a: { "1.0.0": { sets: { low: server.url("low.git") }, deps: { low: { c: "^1" } } } } }, "mid");
  const dir = makeProject({ sets: { mid: server.url("mid.git") }, deps: { mid: { a: "^1" } } });
  const run = await lock(dir, isolatedEnv());
  assert.deepEqual(versionsOf(run), { a: "1.0.0", c: "1.5.0" });
});

test("local atoms of the same repository resolve from the work tree, requirement checked", async () => {
  const dir = makeProject(
    { sets: { here: "::" }, deps: { here: { lib: "^0.2" } } },
    { "lib/atom.toml": manifestText("lib", "0.2.3"), "ekala.toml": '[set]\npackages = ["app", "lib"]\n' },
  );
  const run = await lock(dir, isolatedEnv());
  const entry = run.resolution!.lock.deps.find((d) => d.type === "atom" && d.label === "lib");
  assert.ok(entry && entry.type === "atom");
  assert.equal(entry.version, "0.2.3-local");
  assert.equal(entry.rev, null);
  const root = gitIn(dir, "rev-list", "--max-parents=0", "HEAD");
  assert.equal(entry.set, root);
  // The requirement is still checked.
  writeFileSync(join(dir, "atom.toml"), manifestText("app", "0.1.0", { sets: { here: "::" }, deps: { here: { lib: "^1" } } }));
  commitAll(join(dir, ".."), "req");
  await cprRejection(lock(dir, isolatedEnv()), "resolve.conflict");
});

test("network cost follows the graph, not the number of atoms in a set", async () => {
  const base = tempDir("cpr-sets-");
  const small = join(base, "small");
  const big = join(base, "big");
  const fillers: Record<string, Record<string, object>> = {};
  for (let i = 0; i < 60; i++) fillers[`filler${i}`] = { "1.0.0": {}, "1.1.0": {} };
  makeSet(small, { d: { "1.0.0": {} } }, "small");
  makeSet(big, { d: { "1.0.0": {} }, ...fillers }, "big");
  const runSmall = await lock(makeProject({ sets: { s: small }, deps: { s: { d: "^1" } } }), isolatedEnv());
  const runBig = await lock(makeProject({ sets: { s: big }, deps: { s: { d: "^1" } } }), isolatedEnv());
  assert.equal(runBig.stats.roundTrips, runSmall.stats.roundTrips);
  assert.equal(runBig.stats.connections, runSmall.stats.connections);
  // Same refs listed (the root differs, not the size): within a few bytes.
  assert.ok(
    Math.abs(runBig.stats.bytesReceived - runSmall.stats.bytesReceived) < 64,
    `${runBig.stats.bytesReceived} vs ${runSmall.stats.bytesReceived}`,
  );
});
