import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startGitDaemon, type TestServer } from "../support/servers.js";
import { cprRejection } from "../support/assert.js";
import { needTools } from "../support/tools.js";
import { tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet, publishMore, versionsOf } from "./fixture.js";

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

test("a version published within the listing TTL is seen at once: a failure from cached listings lists them again", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  const setDir = join(base, "s.git");
  const s = server.url("s.git");
  makeSet(setDir, { x: { "1.0.0": {} }, y: { "1.0.0": {} } });
  // The default TTL (300 s): the listing of x 1.* is cached and fresh for the rest of this test.
  const env = isolatedEnv();
  const first = await lock(makeProject({ sets: { s }, deps: { s: { x: "^1" } } }), env);
  assert.deepEqual(versionsOf(first), { x: "1.0.0" });
  assert.ok(first.stats.connections > 0);

  // Resolving from the fresh cache opens no connection.
  const cached = await lock(makeProject({ sets: { s }, deps: { s: { x: "^1" } } }), env);
  assert.deepEqual(versionsOf(cached), { x: "1.0.0" });
  assert.equal(cached.stats.connections, 0);

  publishMore(setDir, { x: { "1.1.0": {} } });
  const next = await lock(makeProject({ sets: { s }, deps: { s: { x: "^1.1" } } }), env);
  assert.deepEqual(versionsOf(next), { x: "1.1.0" });
  assert.ok(next.stats.connections > 0, "listed again");
  assert.ok(
    next.infos.some((m) => m.includes("again") && m.includes("127.0.0.1")),
    next.infos.join("\n"),
  );
  // The new listing is cached: ^1 now resolves to 1.1.0 from the cache, with no connection.
  const warm = await lock(makeProject({ sets: { s }, deps: { s: { x: "^1" } } }), env);
  assert.deepEqual(versionsOf(warm), { x: "1.1.0" });
  assert.equal(warm.stats.connections, 0);

  // --offline never lists again: the failure says the listing is cached and may be stale.
  publishMore(setDir, { x: { "1.2.0": {} } });
  const offDir = makeProject({ sets: { s }, deps: { s: { x: "^1.2" } } });
  const off = await cprRejection(lock(offDir, env, { offline: true }), "resolve.conflict");
  assert.match(off.message, /x/);
  assert.match(off.hint ?? "", /came from the cache and may be stale: run without --offline/);
  assert.ok(off.hint?.includes("127.0.0.1"), off.hint);
  assert.equal(existsSync(join(offDir, "atom.lock")), false);
  // Without --offline it is found.
  assert.deepEqual(versionsOf(await lock(offDir, env)), { x: "1.2.0" });

  // A real failure is still reported (after listing again), and nothing is written.
  const none = makeProject({ sets: { s }, deps: { s: { x: "^1", y: "^2" } } });
  const err = await cprRejection(lock(none, env), "resolve.conflict");
  assert.match(err.message, /\by\b/);
  assert.equal(existsSync(join(none, "atom.lock")), false);
});
