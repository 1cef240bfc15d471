import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { UploadPackConnection } from "../../src/git/lsrefs.js";
import { storePack } from "../../src/git/cache.js";
import { parsePack } from "../../src/protocol/pack.js";
import { parseRemoteUrl } from "../../src/git/remote.js";
import { startGitDaemon, startHttpBackend, startProxy, type TestServer } from "../support/servers.js";
import { needTools } from "../support/tools.js";
import { GIT_TEST_ENV, gitIn, tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet, versionsOf } from "./fixture.js";
import { Connections, newStats } from "../../src/resolve/connections.js";
import { silentReporter } from "../../src/protocol/report.js";

/**
 * The resolver's own fetch of manifest blobs: packs read and checked in process (the format itself is tested in
 * test/protocol/pack.test.ts), stored with an index git reads, fetched over one kept-open connection per mirror
 * (listing, then manifests), and git fetch when a server only speaks protocol v0.
 */

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** A bare repository with `n` similar blobs (so that pack-objects makes deltas), each under refs/b/<i>. */
function blobRepo(n: number): { dir: string; oids: string[] } {
  const dir = tempDir("cpr-blobs-");
  execFileSync("git", ["init", "-q", "--bare", dir], { env: { ...process.env, ...GIT_TEST_ENV } });
  const oids: string[] = [];
  const base = Array.from({ length: 200 }, (_, i) => `line ${i} of a manifest-sized text that repeats itself\n`).join("");
  for (let i = 0; i < n; i++) {
    const oid = execFileSync("git", ["hash-object", "-w", "--stdin"], { cwd: dir, input: `${base}version ${i}\n` })
      .toString()
      .trim();
    gitIn(dir, "update-ref", `refs/b/${i}`, oid);
    oids.push(oid);
  }
  return { dir, oids };
}

function packOf(dir: string, oids: readonly string[], flags: string[]): Buffer {
  return execFileSync("git", ["pack-objects", "--stdout", "--window=10", ...flags], { cwd: dir, input: oids.join("\n") + "\n" });
}

test("a stored pack and its index are read by git", () => {
  const { dir, oids } = blobRepo(5);
  const pack = packOf(dir, oids, ["--delta-base-offset"]);
  const repo = tempDir("cpr-store-");
  execFileSync("git", ["init", "-q", "--bare", repo], { env: { ...process.env, ...GIT_TEST_ENV } });
  storePack(repo, pack, parsePack(pack));
  const packs = readdirSync(join(repo, "objects", "pack"));
  assert.equal(packs.filter((f) => f.endsWith(".idx")).length, 1);
  assert.ok(!packs.some((f) => f.startsWith("tmp_")));
  const idx = join(repo, "objects", "pack", packs.find((f) => f.endsWith(".idx"))!);
  gitIn(repo, "verify-pack", idx);
  for (const o of oids) assert.equal(gitIn(repo, "cat-file", "blob", o), gitIn(dir, "cat-file", "blob", o));
  gitIn(repo, "fsck", "--strict", "--no-dangling");
});

test("one git:// connection serves listings, fetches and listings again", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  execFileSync("git", ["clone", "-q", "--mirror", blobRepo(12).dir, join(base, "b.git")]);
  const conn = await UploadPackConnection.open(parseRemoteUrl(server.url("b.git"), process.cwd()));
  try {
    assert.equal(conn.protocol, 2);
    assert.ok(conn.canFetch);
    const refs = await conn.lsRefs(["refs/b/"]);
    assert.equal(refs.length, 12);
    for (let round = 0; round < 3; round++) {
      const { objects, pack } = await conn.fetchObjects(refs.slice(round * 4, round * 4 + 4).map((r) => r.oid));
      assert.equal(objects.size, 4);
      assert.ok(pack && pack.length > 0);
      // The connection is still in step after the fetch (and its nudges): another listing works.
      assert.equal((await conn.lsRefs([`refs/b/${round}`])).length, round === 1 ? 3 : 1);
    }
    assert.equal(conn.roundTrips(), 1 + 1 + 3 * 2, "advertisement, listing, then fetch + listing three times");
  } finally {
    await conn.close();
  }
});

test("asking for an object the server does not have fails cleanly", async () => {
  const { dir } = blobRepo(1);
  const conn = await UploadPackConnection.open(parseRemoteUrl(dir, process.cwd()));
  try {
    await assert.rejects(conn.fetchObjects(["0".repeat(40)]), /not our ref|remote|server/i);
    assert.equal(conn.broken, true);
  } finally {
    await conn.close();
  }
});

test("resolving opens one connection per mirror: listings and manifests share it; the cache keeps the blobs", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  const low = server.url("low.git");
  makeSet(join(base, "low.git"), { c: { "1.0.0": {}, "1.2.0": {} }, d: { "1.0.0": {} } }, "low");
  makeSet(
    join(base, "mid.git"),
    {
      a: { "1.0.0": { sets: { low }, deps: { low: { c: "^1", d: "^1" } } } },
      b: { "2.0.0": { sets: { low }, deps: { low: { c: "^1.2" } } } },
    },
    "mid",
  );
  const dir = makeProject({ sets: { mid: server.url("mid.git") }, deps: { mid: { a: "^1", b: "^2" } } });
  const env = isolatedEnv();
  const run = await lock(dir, env);
  assert.deepEqual(versionsOf(run), { a: "1.0.0", b: "2.0.0", c: "1.2.0", d: "1.0.0" });
  assert.equal(run.stats.connections, 2, "one per set");
  // Per set: advertisement, ls-refs of the atoms, ls-refs of the manifests, fetch.
  assert.equal(run.stats.roundTrips, 8);
  assert.equal(run.stats.manifestsFetched, 4);
  const cache = join(env.CPR_CACHE_DIR!, "git");
  const kept = gitIn(cache, "for-each-ref", "--format=%(objectname) %(objecttype)", "refs/cpr/keep/objects/").split("\n");
  assert.equal(kept.length, 4);
  assert.ok(
    kept.every((l) => l.endsWith(" blob")),
    kept.join("\n"),
  );
  gitIn(cache, "fsck", "--strict", "--no-dangling");
});

test("a mirror answering protocol v0 only: manifests come through git fetch", async (t) => {
  if (!needTools(t, "lighttpd", "git-http-backend")) return;
  const base = tempDir("cpr-served-");
  const http = await startHttpBackend(base);
  servers.push(http);
  const proxy = await startProxy(http, { dropRequestHeaders: ["git-protocol"] });
  servers.push(proxy);
  makeSet(join(base, "s.git"), { d: { "1.0.0": {}, "1.1.0": {} } }, "s");
  const dir = makeProject({ sets: { s: proxy.url("s.git") }, deps: { s: { d: "^1" } } });
  const env = isolatedEnv();
  const run = await lock(dir, env);
  assert.deepEqual(versionsOf(run), { d: "1.1.0" });
  assert.equal(run.stats.manifestsFetched, 1);
  assert.ok(
    run.warnings.some((w) => /whole ref listing/.test(w)),
    run.warnings.join("\n"),
  );
  const kept = gitIn(join(env.CPR_CACHE_DIR!, "git"), "for-each-ref", "refs/cpr/keep/objects/");
  assert.equal(kept.split("\n").length, 1);
});

/** A TCP relay to `port` whose open connections can be cut (as a server or a NAT drops idle ones). */
async function cuttableRelay(
  port: number,
): Promise<{ port: number; cut: () => void; count: () => number; peak: () => number; stop: () => Promise<void> }> {
  const open = new Set<Socket>();
  let count = 0;
  let live = 0;
  let peak = 0;
  const server = createServer((client) => {
    count++;
    peak = Math.max(peak, ++live);
    client.once("close", () => live--);
    const up = connect(port, "127.0.0.1");
    open.add(client);
    open.add(up);
    client.pipe(up);
    up.pipe(client);
    const end = () => {
      client.destroy();
      up.destroy();
      open.delete(client);
      open.delete(up);
    };
    client.on("error", end);
    up.on("error", end);
    client.on("close", end);
    up.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : 0,
    cut: () => {
      for (const s of open) s.destroy();
    },
    count: () => count,
    peak: () => peak,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test("a kept connection that was dropped while idle is replaced once, transparently", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  makeSet(join(base, "s.git"), { d: { "1.0.0": {} } }, "s");
  const relay = await cuttableRelay(server.port);
  try {
    const stats = newStats();
    const pool = new Connections({ env: process.env, cwd: process.cwd(), reporter: silentReporter, stats });
    const url = parseRemoteUrl(`git://127.0.0.1:${relay.port}/s.git`, process.cwd());
    const list = () => pool.use("m", url, (c) => c.lsRefs(["refs/eka/atoms/d/"]));
    assert.equal((await list()).length, 1);
    assert.equal((await list()).length, 1);
    assert.equal(stats.connections, 1, "the second listing reused the connection");
    relay.cut();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await list()).length, 1);
    assert.equal(stats.connections, 2);
    assert.equal(relay.count(), 2);
    await pool.close();
  } finally {
    await relay.stop();
  }
});

test("connections to one git daemon stay under its limits: 16 live, 5 connecting", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const server = await startGitDaemon(base);
  servers.push(server);
  const { dir } = blobRepo(1);
  for (let i = 0; i < 24; i++) execFileSync("git", ["clone", "-q", "--mirror", dir, join(base, `r${i}.git`)]);
  const relay = await cuttableRelay(server.port);
  try {
    const stats = newStats();
    const pool = new Connections({ env: process.env, cwd: process.cwd(), reporter: silentReporter, stats });
    const lists = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        pool.use(`r${i}`, parseRemoteUrl(`git://127.0.0.1:${relay.port}/r${i}.git`, process.cwd()), (c) => c.lsRefs(["refs/b/"])),
      ),
    );
    assert.ok(lists.every((l) => l.length === 1));
    assert.equal(stats.connections, 24);
    assert.ok(relay.peak() <= 16, `peak ${relay.peak()}`);
    await pool.close();
  } finally {
    await relay.stop();
  }
});
