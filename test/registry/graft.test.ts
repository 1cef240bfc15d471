/**
 * Grafts through a registry, end to end, with real Nix (docs/grafts.md): atoms built and pushed to a registry started
 * here, grafted by the registry from its own stored NARs, realised into fresh stores that trust only the registry's
 * key; the refusals (major bump, unequal lengths without --alias, a gzip member naming the old path, a build-time-only
 * dependency) store nothing; and a graft equals the rebuild against the new dependency, up to the self hash.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomId } from "../../src/protocol/id.js";
import { graftPath, aliasPath } from "../../src/protocol/graft.js";
import { parseStorePath } from "../../src/protocol/store-path.js";
import { dumpNar, hostSystem } from "../../src/nix/store.js";
import { pushBuild } from "../../src/registry/push.js";
import { RegistryClient, type GraftRequestBody } from "../../src/registry/client.js";
import { install } from "../../src/registry/get.js";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { CprError } from "../../src/protocol/errors.js";
import { tempDir } from "../support/repo.js";
import { sharedPostgres } from "../support/postgres.js";
import { findTool, needTools } from "../support/tools.js";
import { env, graftSet, nixEnv, type GraftSet } from "./graft-fixture.js";

let set: GraftSet;
let reg: RunningRegistry;
let client: RegistryClient;
const out: Record<string, string> = {};
const builds: Record<string, Awaited<ReturnType<GraftSet["build"]>>> = {};
const postgres = sharedPostgres();
after(() => postgres.stop());
const system = hostSystem();
const haveNix = () => Boolean(findTool("nix-store") && findTool("nix-instantiate") && findTool("nix"));
const id = (label: string) => atomId(set.root, label);

before(async () => {
  if (!haveNix()) return;
  set = await graftSet("g");
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  const token = await createToken(reg.db, [set.root], "graft tests");
  client = new RegistryClient(reg.url, { token });
  for (const [label, version] of [
    ["y", "3.2.0"],
    ["y", "3.3.0"],
    ["y", "3.10.0"],
    ["y", "4.0.0"],
    ["x", "1.0.0"],
    ["xgz", "1.0.0"],
    ["xstatic", "1.0.0"],
    ["x", "1.0.1"],
    ["w", "1.0.0"],
  ] as const) {
    const built = await set.build(label, version);
    await pushBuild(client, built, { nix: { env: nixEnv } });
    out[`${label}@${version}`] = built.outputs.out!;
    builds[`${label}@${version}`] = built;
  }
});

after(async () => {
  await reg?.close();
});

const request = (label: string, version: string, yVersion: string, extra: Partial<GraftRequestBody> = {}): GraftRequestBody => ({
  id: id(label),
  version,
  system,
  replace: [{ id: id("y"), version: yVersion }],
  ...extra,
});

/** Every stored file (nar/ and tmp/) and the row counts: what a refused graft must leave unchanged. */
async function stored(): Promise<{ files: string[]; paths: number; grafts: number }> {
  const files = ["nar", "tmp"].flatMap((d) => readdirSync(join(reg.dataDir, d)).map((f) => `${d}/${f}`)).sort();
  return {
    files,
    paths: await reg.db.countPaths(),
    grafts:
      (await reg.db.graftsOfAtom(id("x"))).length +
      (await reg.db.graftsOfAtom(id("xgz"))).length +
      (await reg.db.graftsOfAtom(id("xstatic"))).length,
  };
}

/** A fresh chroot store (logical /nix/store) for realising into. */
function freshStore(): string {
  return join(tempDir("cpr-fresh-"), "s");
}

function nixIn(store: string, args: string[]): string {
  return execFileSync("nix-store", ["--store", store, ...args], {
    env: nixEnv,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

test("a graft through the registry: computed from its stored NARs, signed, installed into a fresh store with only its key", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const y32 = out["y@3.2.0"]!;
  const y33 = out["y@3.3.0"]!;
  const x = out["x@1.0.0"]!;
  const dry = await client.graft(request("x", "1.0.0", "3.3.0", { dryRun: true }));
  assert.equal(dry.status, 200);
  const expected = graftPath(x, [{ old: y32, new: y33 }]);
  assert.equal(dry.outputs.out, expected);
  assert.equal(dry.graftId, null);

  const before = await stored();
  const a = await client.graft(request("x", "1.0.0", "3.3.0"));
  assert.equal(a.status, 201, JSON.stringify(a));
  assert.equal(a.outputs.out, expected);
  assert.deepEqual(
    a.paths,
    [
      { old: x, new: expected },
      { old: y32, new: y33 },
    ].sort((p, q) => (p.old < q.old ? -1 : 1)),
  );
  assert.deepEqual(a.replacements, [{ id: id("y"), label: "y", from: "3.2.0", to: "3.3.0" }]);
  assert.deepEqual(a.warnings, []);
  assert.equal((await stored()).paths, before.paths + 1);
  const again = await client.graft(request("x", "1.0.0", "3.3.0"));
  assert.equal(again.status, 200);
  assert.equal(again.graftId, a.graftId);
  assert.equal((await stored()).paths, before.paths + 1);

  const resolved = await client.resolveGraft(id("x"), "^1.0", system, [{ id: id("y"), version: "3.3.0" }]);
  assert.ok(resolved);
  assert.equal(resolved.version, "1.0.0");
  assert.equal(resolved.outputs.out, expected);
  assert.equal(resolved.graft.graftId, a.graftId);
  assert.equal(await client.resolveGraft(id("x"), "^1.0", system, [{ id: id("y"), version: "3.10.0" }]), null);
  assert.equal((await client.grafts(id("x")))[0]?.graftId, a.graftId);

  const store = freshStore();
  await install(resolved, client, { keys: [reg.publicKey], outLink: null, nix: { env: nixEnv, store } });
  assert.deepEqual(nixIn(store, ["--query", "--references", expected]).split("\n").sort(), [expected, y33].sort());
  nixIn(store, ["--verify", "--check-contents"]);
  const ran = execFileSync("/bin/sh", [join(store, expected, "bin/x")], { encoding: "utf8" });
  assert.equal(ran, `y 3.3.0\nx at ${expected}\n`);
  const bin = readFileSync(join(store, expected, "lib/x.bin"));
  assert.ok(bin.includes(Buffer.from(`${y33}\0`)) && bin.includes(Buffer.from(`${expected}\0`)));
  assert.ok(!bin.includes(Buffer.from(parseStorePath(y32).hash)) && !bin.includes(Buffer.from(parseStorePath(x).hash)));

  // A wrong key: Nix refuses.
  const other = "other-key-1:" + Buffer.alloc(32, 7).toString("base64");
  await assert.rejects(
    install(resolved, client, { keys: [other], outLink: null, nix: { env: nixEnv, store: freshStore() } }),
    (e: unknown) => e instanceof CprError && e.code === "get.untrusted",
  );
  // A tampered NAR: its file changed on the server; Nix refuses the hash.
  const row = await reg.db.getPath(parseStorePath(expected).hash);
  const file = join(reg.dataDir, row!.url);
  const good = readFileSync(file);
  const tampered = execFileSync("xz", ["-c"], {
    input: Buffer.concat([execFileSync("xz", ["-dc"], { input: good }).subarray(0, -8), Buffer.alloc(8)]),
  });
  writeFileSync(file, tampered);
  try {
    await assert.rejects(install(resolved, client, { keys: [reg.publicKey], outLink: null, nix: { env: nixEnv, store: freshStore() } }));
  } finally {
    writeFileSync(file, good);
  }
});

test("grafting equals rebuilding against the new dependency, up to the self hash", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const a = await client.graft(request("x", "1.0.0", "3.3.0"));
  assert.ok(a.status === 200 || a.status === 201);
  const store = freshStore();
  const resolved = await client.resolveGraft(id("x"), "=1.0.0", system, [{ id: id("y"), version: "3.3.0" }]);
  await install(resolved!, client, { keys: [reg.publicKey], outLink: null, nix: { env: nixEnv, store } });
  const graft = a.outputs.out!;
  const rebuilt = out["x@1.0.1"]!;
  const collect = async (s: NodeJS.ReadableStream) => {
    const cs: Buffer[] = [];
    for await (const c of s) cs.push(c as Buffer);
    return Buffer.concat(cs);
  };
  const zero = "0".repeat(32);
  const norm = (nar: Buffer, self: string) => Buffer.from(nar.toString("latin1").split(parseStorePath(self).hash).join(zero), "latin1");
  const g = norm(await collect(dumpNar(graft, { env: nixEnv, store })), graft);
  const r = norm(await collect(dumpNar(rebuilt, { env: nixEnv })), rebuilt);
  assert.ok(g.length > 0);
  assert.ok(g.equals(r), "the grafted NAR differs from the rebuilt one beyond the self hash");
});

test("refusals: a major bump, unequal lengths, a gzip member naming the old path, a build-time-only dependency; nothing stored", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const refused = async (body: GraftRequestBody, code: string, message: RegExp) => {
    const before = await stored();
    const r = await client.graft(body);
    assert.equal(r.status, 422, JSON.stringify(r));
    assert.ok(
      r.refusals.some((x) => x.code === code && message.test(x.message)),
      `expected ${code} ${message}, got ${JSON.stringify(r.refusals)}`,
    );
    assert.deepEqual(await stored(), before, "a refused graft stored something");
    return r;
  };
  const major = await refused(
    request("x", "1.0.0", "4.0.0"),
    "graft.incompatible",
    /x 1\.0\.0 requires y \^3\.2, which 4\.0\.0 does not satisfy/,
  );
  assert.equal(major.refusals.find((x) => x.code === "graft.incompatible")?.override, "allow-incompatible");
  await refused(request("x", "1.0.0", "3.10.0"), "graft.length", /names are 13 and 14 characters long/);
  await refused(request("xgz", "1.0.0", "3.3.0"), "graft.residue", /lib\/y\.gz \(gzip\) still names/);
  await refused(request("xstatic", "1.0.0", "3.3.0"), "graft.not-runtime", /build-time-only dependency or linked statically/);
  await refused(request("x", "1.0.0", "3.2.0"), "graft.not-runtime", /already uses y 3\.2\.0/);

  // --force makes the gzip residue a warning; --alias bridges the length.
  const forced = await client.graft(request("xgz", "1.0.0", "3.3.0", { force: true }));
  assert.equal(forced.status, 201);
  assert.ok(forced.warnings.some((w) => w.code === "graft.residue"));
  const refusedAgain = await client.graft(request("xgz", "1.0.0", "3.3.0"));
  assert.equal(refusedAgain.status, 422, "the forced record does not answer a request without --force");

  const aliased = await client.graft(request("x", "1.0.0", "3.10.0", { alias: true }));
  assert.equal(aliased.status, 201, JSON.stringify(aliased));
  const y310 = out["y@3.10.0"]!;
  const alias = aliasPath(out["y@3.2.0"]!, y310);
  assert.deepEqual(aliased.aliases, [{ path: alias, target: y310, replaces: out["y@3.2.0"] }]);
  assert.equal(parseStorePath(alias).name, parseStorePath(out["y@3.2.0"]!).name);
  const store = freshStore();
  const resolved = await client.resolveGraft(id("x"), "*", system, [{ id: id("y"), version: "3.10.0" }]);
  await install(resolved!, client, { keys: [reg.publicKey], outLink: null, nix: { env: nixEnv, store } });
  const x = aliased.outputs.out!;
  assert.deepEqual(nixIn(store, ["--query", "--references", x]).split("\n").sort(), [alias, x].sort());
  assert.deepEqual(nixIn(store, ["--query", "--references", alias]).split("\n"), [y310]);
  nixIn(store, ["--verify", "--check-contents"]);
  // x runs y through the alias, a symlink to y 3.10.
  assert.equal(readlinkSync(join(store, alias)), y310);
  assert.equal(readFileSync(join(store, x, "bin/x"), "utf8"), `#!/bin/sh\n${alias}/bin/y\necho x at ${x}\n`);
});

test("PostgreSQL: a registry on a real PostgreSQL database records the graft, answers it again, stores nothing for a refusal", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const server = await postgres.get(t);
  if (!server) return;
  const pgReg = await startRegistry({
    db: await server.createDatabase(),
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  try {
    const c = new RegistryClient(pgReg.url, { token: await createToken(pgReg.db, [set.root], "pg graft") });
    for (const k of ["y@3.2.0", "y@3.3.0", "y@4.0.0", "x@1.0.0"]) await pushBuild(c, builds[k]!, { nix: { env: nixEnv } });
    const paths = await pgReg.db.countPaths();
    const refused = await c.graft(request("x", "1.0.0", "4.0.0"));
    assert.equal(refused.status, 422);
    assert.equal(await pgReg.db.countPaths(), paths);
    assert.deepEqual(await pgReg.db.graftsOfAtom(id("x")), []);
    const a = await c.graft(request("x", "1.0.0", "3.3.0"));
    assert.equal(a.status, 201, JSON.stringify(a));
    assert.equal(a.outputs.out, graftPath(out["x@1.0.0"]!, [{ old: out["y@3.2.0"]!, new: out["y@3.3.0"]! }]));
    assert.equal(await pgReg.db.countPaths(), paths + 1);
    const again = await c.graft(request("x", "1.0.0", "3.3.0"));
    assert.equal(again.status, 200);
    assert.equal(again.graftId, a.graftId);
    const record = (await (await fetch(`${pgReg.url}/api/v1/grafts/${a.graftId}`)).json()) as { paths: unknown[]; algorithm: string };
    assert.equal(record.algorithm, "cpr-graft-v1");
    assert.deepEqual(record.paths, a.paths);
    assert.equal((await fetch(`${pgReg.url}/api/v1/grafts/999999`)).status, 404);
    const resolved = await c.resolveGraft(id("x"), "*", system, [{ id: id("y"), version: "3.3.0" }]);
    const store = freshStore();
    await install(resolved!, c, { keys: [pgReg.publicKey], outLink: null, nix: { env: nixEnv, store } });
    assert.equal(execFileSync("/bin/sh", [join(store, a.outputs.out!, "bin/x")], { encoding: "utf8" }), `y 3.3.0\nx at ${a.outputs.out}\n`);
  } finally {
    await pgReg.close();
  }
});

test("bad requests: 400 for malformed bodies, 401 without a token, 403 for a worker token, 404 for unknown atoms; a dry run needs no token", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const post = (body: unknown, auth = true) =>
    fetch(`${reg.url}/api/v1/grafts`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(auth ? { authorization: `Bearer ${(client as unknown as { token: string }).token}` } : {}),
      },
      body: JSON.stringify(body),
    });
  assert.equal((await post({ id: "nope", system, replace: [] })).status, 400);
  assert.equal((await post({ ...request("x", "1.0.0", "3.3.0"), extra: 1 })).status, 400);
  assert.equal((await post(request("x", "1.0.0", "3.3.0"), false)).status, 401);
  assert.equal((await post({ ...request("x", "1.0.0", "3.3.0"), id: atomId(set.root, "nothing") })).status, 404);
  assert.equal((await post(request("x", "9.9.9", "3.3.0"))).status, 404);
  assert.equal((await post({ ...request("x", "1.0.0", "3.3.0"), dryRun: true }, false)).status, 200);
  // A build farm worker's token may claim jobs and record builds, not ask for grafts.
  const worker = await createToken(reg.db, [set.root], "graft tests: worker", "worker");
  const refused = await fetch(`${reg.url}/api/v1/grafts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${worker}` },
    body: JSON.stringify(request("x", "1.0.0", "3.3.0")),
  });
  assert.equal(refused.status, 403);
  assert.match(((await refused.json()) as { error: string }).error, /a worker token may not ask for grafts/);
});

test("an indirect dependency: w needs x needs y; the requirement is x's, and both w and x are grafted", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const major = await client.graft(request("w", "1.0.0", "4.0.0"));
  assert.equal(major.status, 422);
  assert.ok(
    major.refusals.some(
      (r) => r.code === "graft.incompatible" && /x 1\.0\.0 requires y \^3\.2, which 4\.0\.0 does not satisfy/.test(r.message),
    ),
    JSON.stringify(major.refusals),
  );
  const a = await client.graft(request("w", "1.0.0", "3.3.0"));
  assert.equal(a.status, 201, JSON.stringify(a));
  const y = { old: out["y@3.2.0"]!, new: out["y@3.3.0"]! };
  const xg = graftPath(out["x@1.0.0"]!, [y]);
  const wg = graftPath(out["w@1.0.0"]!, [y]);
  assert.equal(a.outputs.out, wg);
  assert.deepEqual(
    a.members.map((m) => [m.original, m.graft]),
    [
      [out["x@1.0.0"], xg],
      [out["w@1.0.0"], wg],
    ],
  );
  const store = freshStore();
  const resolved = await client.resolveGraft(id("w"), "*", system, [{ id: id("y"), version: "3.3.0" }]);
  await install(resolved!, client, { keys: [reg.publicKey], outLink: null, nix: { env: nixEnv, store } });
  assert.equal(readFileSync(join(store, wg, "bin/w"), "utf8"), `#!/bin/sh\nexec /bin/sh ${xg}/bin/x\n`);
  nixIn(store, ["--verify", "--check-contents"]);
});
