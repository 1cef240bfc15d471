/**
 * Several registry servers on one real PostgreSQL database and one data directory (as on shared storage): they
 * start at the same moment (concurrent migrations, one signing key), and what is written through one is served by
 * the other at once: uploads substituted by a real Nix client, build records resolved, new versions found by a
 * refresh. /healthz answers 503 when the database goes away.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { dumpNar, pathInfo, realise, type PathInfo } from "../../src/nix/store.js";
import { atomId } from "../../src/protocol/id.js";
import { startRegistry, type RunningRegistry, type ServeOptions } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { env as gitEnv, initTo, publishTo } from "../publish/fixture.js";
import { sharedPostgres, startPostgres } from "../support/postgres.js";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { nixTestEnv } from "../support/nix.js";

const postgres = sharedPostgres();
after(() => postgres.stop());

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function upload(base: string, token: string, info: PathInfo, nar: Buffer): Promise<number> {
  const r = await fetch(`${base}/api/v1/paths/${info.path.slice(11, 43)}`, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/x-nix-nar",
      "x-nix-store-path": info.path,
      "x-nix-nar-hash": info.narHash,
      "x-nix-nar-size": String(info.narSize),
      "x-nix-references": info.references.map((p) => p.slice(11)).join(" "),
    },
    body: nar,
  });
  await r.arrayBuffer();
  return r.status;
}

async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const r = await fetch(url, init);
  return { status: r.status, json: await r.json() };
}

test("two servers share one PostgreSQL database and one data directory: upload via one, substitute and resolve via the other", async (t) => {
  if (!needTools(t, "nix", "nix-store")) return;
  const server = await postgres.get(t);
  if (!server) return;
  const db = await server.createDatabase();

  const work = makeRepo({ "pkgs/hello/atom.toml": `${atomToml("hello", "1.0.0")}\n[package.meta]\ndescription = "Greets"\n` });
  const bare = makeBare();
  const root = (await initTo(work, bare)).root;
  const revs: Record<string, string> = {};
  for (const p of (await publishTo(work, bare)).published) revs[`${p.label}@${p.version}`] = p.rev;

  const dataDir = tempDir("cpr-registry-");
  const common: ServeOptions = {
    dataDir,
    db,
    listen: "127.0.0.1:0",
    sets: [bare],
    refreshSeconds: 0,
    log: false,
    env: gitEnv,
    cacheDir: tempDir("cpr-cache-"),
  };
  // Both start at once: concurrent migrations, key creation and first indexing.
  const [a, b] = await Promise.all([startRegistry(common), startRegistry({ ...common, cacheDir: tempDir("cpr-cache-") })]);
  const servers: RunningRegistry[] = [a, b];
  t.after(() => Promise.all(servers.map((s) => s.close())));
  assert.equal(a.publicKey, b.publicKey, "one signing key in the shared data directory");
  assert.equal(a.db.kind, "postgres");
  const token = await createToken(a.db, [root], "shared");

  // A path added to a throwaway store by Nix.
  const nixEnv = nixTestEnv(process.env, { XDG_CACHE_HOME: tempDir("cpr-nix-cache-") });
  const storeA = tempDir("cpr-store-a-");
  const src = join(tempDir("cpr-src-"), `hello-out-${randomBytes(6).toString("hex")}`);
  writeFileSync(src, `hello output ${randomBytes(8).toString("hex")}\n`);
  const added = (await promisify(execFile)("nix-store", ["--store", storeA, "--add", src], { env: nixEnv })).stdout.trim();
  const [info] = await pathInfo([added], { env: nixEnv, store: storeA });
  const nar = await collect(dumpNar(added, { env: nixEnv, store: storeA }));

  const narinfoUrl = (s: RunningRegistry): string => `${s.url}/${added.slice(11, 43)}.narinfo`;
  assert.equal((await fetch(narinfoUrl(b))).status, 404, "not there yet");
  assert.equal(await upload(a.url, token, info!, nar), 201);
  assert.equal((await fetch(narinfoUrl(b))).status, 200, "a miss is not remembered: B sees A's upload at once");
  assert.equal(await upload(b.url, token, info!, nar), 200, "idempotent across servers");
  assert.equal(await a.db.countPaths(), 1);

  // A stock Nix client substitutes from B what was uploaded through A.
  const storeB = tempDir("cpr-store-b-");
  assert.deepEqual(await realise([added], { env: nixEnv, store: storeB, substituters: [b.url], trustedKeys: [b.publicKey] }), [added]);
  assert.equal(readFileSync(join(storeB, added), "utf8"), readFileSync(src, "utf8"));

  // A build record through B, resolved through A.
  const id = atomId(root, "hello");
  const record = {
    set: root,
    label: "hello",
    id,
    version: "1.0.0",
    rev: revs["hello@1.0.0"],
    system: "x86_64-linux",
    config: { system: "x86_64-linux" },
    drv: `/nix/store/${"0".repeat(32)}-hello-1.0.0.drv`,
    outputs: { out: added },
  };
  const posted = await getJson(`${b.url}/api/v1/builds`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(record),
  });
  assert.equal(posted.status, 201, JSON.stringify(posted.json));
  const resolved = await getJson(`${a.url}/api/v1/resolve/${id}/%5E1?system=x86_64-linux`);
  assert.equal(resolved.status, 200, JSON.stringify(resolved.json));
  assert.deepEqual([resolved.json.version, resolved.json.outputs], ["1.0.0", { out: added }]);

  // A new version, refreshed through A, is listed by B.
  writeFiles(work, {
    "pkgs/hello/atom.toml": `${atomToml("hello", "1.1.0")}\n[package.meta]\ndescription = "Greets, newer"\ntags = ["new"]\n`,
  });
  commitAll(work, "hello 1.1.0");
  await publishTo(work, bare);
  const refreshed = await getJson(`${a.url}/api/v1/sets/${root}/refresh`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  assert.deepEqual(refreshed.json, { root, atoms: 1, versions: 2, added: 1 });
  const search = await getJson(`${b.url}/api/v1/search?q=new`);
  assert.deepEqual(
    search.json.results.map((r: any) => [r.label, r.description, r.versions]),
    [["hello", "Greets, newer", ["1.1.0", "1.0.0"]]],
  );
  const again = await getJson(`${b.url}/api/v1/sets/${root}/refresh`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  assert.equal(again.json.added, 0, "B's pass skips what A indexed");

  const metrics = await (await fetch(`${b.url}/metrics`)).text();
  assert.match(metrics, /^cpr_registry_store_paths 1$/m);
  assert.match(metrics, /^cpr_registry_builds 1$/m);
});

test("/healthz: 200 with the database, 503 once PostgreSQL is gone", async (t) => {
  const own = await startPostgres(t);
  if (!own) return;
  let stopped = false;
  t.after(() => (stopped ? undefined : own.stop()));
  const reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    db: await own.createDatabase(),
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: false,
  });
  t.after(() => reg.close().catch(() => undefined));
  assert.deepEqual(await getJson(`${reg.url}/healthz`), { status: 200, json: { status: "ok" } });
  await own.stop();
  stopped = true;
  const down = await getJson(`${reg.url}/healthz`);
  assert.equal(down.status, 503);
  assert.equal(down.json.status, "unavailable");
  assert.equal(typeof down.json.error, "string");
});
