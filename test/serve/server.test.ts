/**
 * The registry server end to end over real HTTP, on SQLite: catalogue (a set published to a real bare repository),
 * uploads into the real artifact store, narinfo signatures, build records, resolve, search, tokens, metrics, and
 * every 4xx write path storing nothing.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { toNix32Hash } from "../../src/nix/hash.js";
import { atomId } from "../../src/protocol/id.js";
import { narInfoFingerprint, parseNarInfo } from "../../src/protocol/narinfo.js";
import { parsePublicKey, verifyDetached } from "../../src/protocol/nix-key.js";
import { loadOrCreateSigningKey } from "../../src/serve/keys.js";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { narBytes } from "../../src/nix/nar.js";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { env, initTo, publishTo } from "../publish/fixture.js";

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** A store path with a random (valid) hash part. */
function fakePath(name: string): string {
  const bytes = randomBytes(32);
  let h = "";
  for (let i = 0; i < 32; i++) h += NIX32[bytes[i]! % 32];
  return `/nix/store/${h}-${name}`;
}
const hashOf = (p: string): string => p.slice("/nix/store/".length, "/nix/store/".length + 32);
const baseOf = (p: string): string => p.slice("/nix/store/".length);

/** A stored file's NAR, decompressed with the real xz/zstd. */
function decompress(data: Buffer, compression: string): Buffer {
  if (compression === "none") return data;
  return execFileSync(compression === "zstd" ? "zstd" : compression, ["-dc"], { input: data, maxBuffer: 1 << 30 });
}

/** The NAR of a file holding `content`. */
async function narOf(content: string): Promise<{ bytes: Buffer; narHash: string; narSize: number }> {
  const dir = tempDir("cpr-nar-");
  const file = join(dir, "f");
  writeFileSync(file, content);
  const r = await narBytes(file);
  return { bytes: r.bytes, narHash: toNix32Hash("sha256", r.sha256), narSize: r.size };
}

interface Upload {
  path: string;
  nar: { bytes: Buffer; narHash: string; narSize: number };
  refs?: string[];
  token?: string | null;
  headers?: Record<string, string | null>;
  body?: Buffer;
}

async function put(base: string, u: Upload): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {
    "content-type": "application/x-nix-nar",
    "x-nix-store-path": u.path,
    "x-nix-nar-hash": u.nar.narHash,
    "x-nix-nar-size": String(u.nar.narSize),
    "x-nix-references": (u.refs ?? []).map(baseOf).join(" "),
  };
  if (u.token !== null && u.token !== undefined) headers.authorization = `Bearer ${u.token}`;
  for (const [k, v] of Object.entries(u.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  const r = await fetch(`${base}/api/v1/paths/${hashOf(u.path)}`, { method: "PUT", headers, body: u.body ?? u.nar.bytes });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; json?: unknown; raw?: string; contentType?: string } = {},
): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["content-type"] = "application/json";
  } else if (opts.raw !== undefined) {
    body = opts.raw;
    headers["content-type"] = opts.contentType ?? "application/json";
  }
  const r = await fetch(`${base}${path}`, { method, headers, body });
  const text = await r.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, json, text, headers: r.headers };
}

// ── one published set and one server for the whole file ──

let work: string;
let bare: string;
let root: string;
let revs: Record<string, string>;
let dataDir: string;
let reg: RunningRegistry;
let token: string;
let otherToken: string;
const OTHER_ROOT = "ab".repeat(20);

before(async () => {
  work = makeRepo({
    "pkgs/hello/atom.toml": `${atomToml("hello", "1.0.0")}\n[package.meta]\ndescription = "Prints a friendly greeting"\ntags = ["greeting", "cli"]\n`,
    "pkgs/fmt/atom.toml": `${atomToml("fmt", "0.3.0")}\n[package.meta]\ndescription = "Formats hello-world text"\n`,
    "pkgs/hello-extra/atom.toml": atomToml("hello-extra", "0.1.0"),
  });
  bare = makeBare();
  root = (await initTo(work, bare)).root;
  const first = await publishTo(work, bare);
  assert.deepEqual(first.failed, []);
  writeFiles(work, {
    "pkgs/hello/atom.toml": `${atomToml("hello", "1.1.0")}\n[package.meta]\ndescription = "Prints a friendly greeting, now in colour"\ntags = ["greeting", "cli", "colour"]\n`,
  });
  commitAll(work, "hello 1.1.0");
  const second = await publishTo(work, bare);
  revs = {};
  for (const p of [...first.published, ...second.published]) revs[`${p.label}@${p.version}`] = p.rev;
  dataDir = tempDir("cpr-registry-");
  reg = await startRegistry({
    dataDir,
    listen: "127.0.0.1:0",
    sets: [bare],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
    jsonBodyLimit: 64 * 1024,
    maxNarSize: 1024 * 1024,
  });
  token = await createToken(reg.db, [root], "tests");
  otherToken = await createToken(reg.db, [OTHER_ROOT], "another set");
});

after(async () => {
  await reg?.close();
});

/** What the server has stored: rows and files. Compared before and after a refused write. */
async function stored(): Promise<{ paths: number; builds: number; nars: string[]; tmp: string[] }> {
  const list = (d: string): string[] => (existsSync(d) ? readdirSync(d).sort() : []);
  return {
    paths: await reg.db.countPaths(),
    builds: await reg.db.countBuilds(),
    nars: list(join(dataDir, "nar")),
    tmp: list(join(dataDir, "tmp")),
  };
}

test("nix-cache-info, healthz, unknown routes answer JSON errors", async () => {
  const info = await call(reg.url, "GET", "/nix-cache-info");
  assert.equal(info.status, 200);
  assert.equal(info.text, "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n");
  const health = await call(reg.url, "GET", "/healthz");
  assert.deepEqual([health.status, health.json], [200, { status: "ok" }]);
  const missing = await call(reg.url, "GET", "/no/such/thing");
  assert.equal(missing.status, 404);
  assert.equal(typeof missing.json.error, "string");
  const narinfo = await call(reg.url, "GET", `/${hashOf(fakePath("x"))}.narinfo`);
  assert.equal(narinfo.status, 404);
  assert.equal(typeof narinfo.json.error, "string");
});

test("the catalogue: sets, search (label, description, tags; exact label first), atoms", async () => {
  const sets = await call(reg.url, "GET", "/api/v1/sets");
  assert.equal(sets.status, 200);
  assert.equal(sets.json.sets.length, 1);
  assert.equal(sets.json.sets[0].root, root);
  assert.deepEqual(sets.json.sets[0].mirrors, [bare]);
  assert.ok(sets.json.sets[0].indexedAt);

  const hello = await call(reg.url, "GET", "/api/v1/search?q=hello");
  assert.equal(hello.status, 200);
  const labels = hello.json.results.map((r: any) => r.label);
  assert.equal(labels[0], "hello", "the exact label match comes first");
  assert.deepEqual([...labels].sort(), ["fmt", "hello", "hello-extra"], "fmt matches by its description");
  const h = hello.json.results[0];
  assert.equal(h.id, atomId(root, "hello"));
  assert.equal(h.set, root);
  assert.equal(h.description, "Prints a friendly greeting, now in colour", "from the newest version");
  assert.deepEqual(h.tags, ["greeting", "cli", "colour"]);
  assert.deepEqual(h.versions, ["1.1.0", "1.0.0"]);

  const byTag = await call(reg.url, "GET", "/api/v1/search?q=COLOUR");
  assert.deepEqual(
    byTag.json.results.map((r: any) => r.label),
    ["hello"],
  );
  const limited = await call(reg.url, "GET", "/api/v1/search?q=hello&limit=1");
  assert.deepEqual(
    limited.json.results.map((r: any) => r.label),
    ["hello"],
  );
  assert.equal((await call(reg.url, "GET", "/api/v1/search?q=hello&limit=zero")).status, 400);

  const atom = await call(reg.url, "GET", `/api/v1/atoms/${atomId(root, "hello")}`);
  assert.equal(atom.status, 200);
  assert.equal(atom.json.label, "hello");
  assert.deepEqual(
    atom.json.versions.map((v: any) => [v.version, v.rev]),
    [
      ["1.1.0", revs["hello@1.1.0"]],
      ["1.0.0", revs["hello@1.0.0"]],
    ],
  );
  assert.match(atom.json.versions[0].manifest, /version = "1.1.0"/);
  assert.match(atom.json.versions[0].origin, /^[0-9a-f]{40}$/);
  assert.equal((await call(reg.url, "GET", `/api/v1/atoms/${atomId(OTHER_ROOT, "hello")}`)).status, 404);
  assert.equal((await call(reg.url, "GET", "/api/v1/atoms/not-an-id")).status, 400);
});

test("upload: 201 with a signed narinfo, served by GET and HEAD, the NAR served compressed; again: 200", async () => {
  const path = fakePath("upload-test");
  const nar = await narOf("upload test\n");
  const before = await stored();
  const r = await put(reg.url, { path, nar, token, headers: { "x-nix-deriver": `${hashOf(fakePath("d"))}-upload-test.drv` } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const text = r.json.narinfo as string;
  const info = parseNarInfo(text);
  assert.equal(info.storePath, path);
  assert.equal(info.narHash, nar.narHash);
  assert.equal(info.narSize, nar.narSize);
  assert.deepEqual(info.references, []);
  assert.match(info.deriver ?? "", /-upload-test\.drv$/);
  assert.equal(info.sigs.length, 1);
  assert.ok(verifyDetached([parsePublicKey(reg.publicKey)], narInfoFingerprint(info), info.sigs[0]!), "signed with the server key");

  const got = await call(reg.url, "GET", `/${hashOf(path)}.narinfo`);
  assert.equal(got.status, 200);
  assert.equal(got.text, text);
  assert.equal(got.headers.get("content-type"), "text/x-nix-narinfo");
  const again = await call(reg.url, "GET", `/${hashOf(path)}.narinfo`); // from the in-process cache
  assert.equal(again.text, text);
  const head = await fetch(`${reg.url}/${hashOf(path)}.narinfo`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal((await fetch(`${reg.url}/${hashOf(fakePath("nope"))}.narinfo`, { method: "HEAD" })).status, 404);

  const file = await fetch(`${reg.url}/${info.url}`);
  assert.equal(file.status, 200);
  const compressed = Buffer.from(await file.arrayBuffer());
  assert.equal(compressed.length, info.fileSize);
  assert.deepEqual(decompress(compressed, info.compression), nar.bytes);
  const fileHead = await fetch(`${reg.url}/${info.url}`, { method: "HEAD" });
  assert.equal(fileHead.status, 200);
  assert.equal(fileHead.headers.get("content-length"), String(info.fileSize));

  const after = await stored();
  assert.equal(after.paths, before.paths + 1);
  const second = await put(reg.url, { path, nar, token });
  assert.equal(second.status, 200);
  assert.equal(second.json.narinfo, text);
  assert.equal(await reg.db.countPaths(), after.paths);

  const missing = await call(reg.url, "POST", "/api/v1/paths/missing", { token, json: { paths: [path, fakePath("absent"), path] } });
  assert.equal(missing.status, 200);
  assert.equal(missing.json.missing.length, 1);
  assert.notEqual(missing.json.missing[0], path);
});

test("a NAR larger than the JSON body limit streams in (uploads have only the NAR size limit)", async () => {
  const path = fakePath("large");
  const nar = await narOf(randomBytes(300 * 1024).toString("base64"));
  assert.ok(nar.narSize > 64 * 1024);
  const r = await put(reg.url, { path, nar, token });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const info = parseNarInfo(r.json.narinfo as string);
  const file = Buffer.from(await (await fetch(`${reg.url}/${info.url}`)).arrayBuffer());
  assert.deepEqual(decompress(file, info.compression), nar.bytes);
});

test("concurrent uploads of one path: one 201, the others 200, one row", async () => {
  const path = fakePath("concurrent");
  const nar = await narOf("same bytes, many uploaders\n");
  const answers = await Promise.all([1, 2, 3, 4].map(() => put(reg.url, { path, nar, token })));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, 200, 200, 201]);
  assert.equal(new Set(answers.map((a) => a.json.narinfo)).size, 1, "every answer carries the winning row's narinfo");
  assert.ok(await reg.db.getPath(hashOf(path)));
});

test("every refused upload stores nothing: 401, 400, 409, 413", async () => {
  const dep = fakePath("dependency");
  const path = fakePath("refused");
  const nar = await narOf("refused upload\n");
  const other = await narOf("other bytes!!!\n");
  const cases: [string, Upload, number][] = [
    ["no token", { path, nar, token: null }, 401],
    ["unknown token", { path, nar, token: "cpr_nottoken" }, 401],
    ["hash part differs from the URL", { path, nar, token, headers: { "x-nix-store-path": fakePath("refused") } }, 400],
    ["missing X-Nix-Nar-Hash", { path, nar, token, headers: { "x-nix-nar-hash": null } }, 400],
    ["bad X-Nix-Nar-Size", { path, nar, token, headers: { "x-nix-nar-size": "12a" } }, 400],
    ["missing X-Nix-References", { path, nar, token, headers: { "x-nix-references": null } }, 400],
    ["bad reference", { path, nar, token, headers: { "x-nix-references": "not-a-path" } }, 400],
    ["wrong hash", { path, nar: { ...nar, narHash: other.narHash }, token }, 400],
    ["shorter body than declared", { path, nar: { ...nar, narSize: nar.narSize + 8 }, token }, 400],
    ["longer body than declared", { path, nar: { ...nar, narSize: nar.narSize - 8 }, token }, 413],
    ["larger than the server accepts", { path, nar: { ...nar, narSize: 2 * 1024 * 1024 }, token }, 413],
    ["reference not uploaded yet", { path, nar, token, refs: [dep] }, 409],
  ];
  for (const [what, u, status] of cases) {
    const before = await stored();
    const r = await put(reg.url, u);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    assert.equal(typeof r.json.error, "string", what);
    assert.deepEqual(await stored(), before, `${what}: nothing stored`);
    assert.equal((await call(reg.url, "GET", `/${hashOf(path)}.narinfo`)).status, 404, what);
  }
  // In dependency order, both go in; a path may reference itself.
  assert.equal((await put(reg.url, { path: dep, nar: other, token })).status, 201);
  const r = await put(reg.url, { path, nar, token, refs: [dep, path] });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.deepEqual(parseNarInfo(r.json.narinfo as string).references, [baseOf(dep), baseOf(path)].sort());
});

test("paths/missing: token required, malformed bodies refused", async () => {
  assert.equal((await call(reg.url, "POST", "/api/v1/paths/missing", { json: { paths: [] } })).status, 401);
  assert.equal((await call(reg.url, "POST", "/api/v1/paths/missing", { token, raw: "{not json" })).status, 400);
  assert.equal((await call(reg.url, "POST", "/api/v1/paths/missing", { token, json: { paths: ["/tmp/x"] } })).status, 400);
  assert.equal((await call(reg.url, "POST", "/api/v1/paths/missing", { token, json: { nope: 1 } })).status, 400);
  const ok = await call(reg.url, "POST", "/api/v1/paths/missing", { token, json: { paths: [] } });
  assert.deepEqual([ok.status, ok.json], [200, { missing: [] }]);
});

/** A build record body for `label@version`. */
function buildBody(
  label: string,
  version: string,
  outputs: Record<string, string>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    set: root,
    label,
    id: atomId(root, label),
    version,
    rev: revs[`${label}@${version}`],
    system: "x86_64-linux",
    config: { system: "x86_64-linux" },
    drv: `${fakePath(`${label}-${version}`)}.drv`,
    outputs,
    ...extra,
  };
}

test("build records: every check refuses without storing; then record → resolve", async () => {
  const out = fakePath("hello-1.1.0");
  const absent = fakePath("hello-1.1.0-absent");
  const body = buildBody("hello", "1.1.0", { out });
  const cases: [string, { token?: string; json?: unknown; raw?: string; contentType?: string }, number][] = [
    ["no token", { json: body }, 401],
    ["malformed JSON", { token, raw: '{"set": ' }, 400],
    ["not a JSON content type", { token, raw: "x", contentType: "text/plain" }, 415],
    ["invalid record", { token, json: { ...body, outputs: "nope" } }, 400],
    ["id not of (set, label)", { token, json: { ...body, id: atomId(root, "fmt") } }, 400],
    ["unknown set", { token, json: { ...body, set: OTHER_ROOT, id: atomId(OTHER_ROOT, "hello") } }, 404],
    ["token for another set", { token: otherToken, json: body }, 403],
    ["unpublished version", { token, json: { ...body, version: "9.9.9" } }, 422],
    ["different rev", { token, json: { ...body, rev: revs["hello@1.0.0"] } }, 409],
    ["output not in the cache", { token, json: { ...body, outputs: { out: absent } } }, 409],
    ["body too large", { token, json: { ...body, config: { system: "x86_64-linux", pad: "x".repeat(100 * 1024) } } }, 413],
  ];
  for (const [what, opts, status] of cases) {
    const before = await stored();
    const r = await call(reg.url, "POST", "/api/v1/builds", opts);
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.equal(typeof r.json?.error, "string", `${what}: ${r.text}`);
    assert.deepEqual(await stored(), before, `${what}: nothing stored`);
  }
  assert.equal((await call(reg.url, "GET", `/api/v1/resolve/${atomId(root, "hello")}/*?system=x86_64-linux`)).status, 404, "no build yet");

  assert.equal((await put(reg.url, { path: out, nar: await narOf("hello 1.1.0 output\n"), token })).status, 201);
  const ok = await call(reg.url, "POST", "/api/v1/builds", { token, json: body });
  assert.equal(ok.status, 201, ok.text);
  assert.equal(typeof ok.json.buildId, "number");

  const id = atomId(root, "hello");
  for (const req of ["%5E1", "*", "%3E%3D1.1.0%2C%20%3C2"]) {
    const r = await call(reg.url, "GET", `/api/v1/resolve/${id}/${req}?system=x86_64-linux`);
    assert.equal(r.status, 200, `${req}: ${r.text}`);
    assert.deepEqual(r.json, {
      id,
      label: "hello",
      set: root,
      version: "1.1.0",
      rev: revs["hello@1.1.0"],
      system: "x86_64-linux",
      configHash: r.json.configHash,
      drv: body.drv,
      outputs: { out },
    });
    assert.match(r.json.configHash, /^[0-9a-f]{64}$/);
  }
  assert.equal((await call(reg.url, "GET", `/api/v1/resolve/${id}/%3D1.0.0?system=x86_64-linux`)).status, 404, "1.0.0 has no build");
  assert.equal((await call(reg.url, "GET", `/api/v1/resolve/${id}/%5E1?system=aarch64-darwin`)).status, 404, "no build for that system");
  assert.equal((await call(reg.url, "GET", `/api/v1/resolve/${id}/%5E1`)).status, 400, "system is required");
  assert.equal((await call(reg.url, "GET", `/api/v1/resolve/${id}/%7C%7C?system=x86_64-linux`)).status, 400, "bad requirement");
});

test("refresh: token scoped to the set, picks up a new version incrementally; a build of an unindexed version re-indexes once", async () => {
  const url = `/api/v1/sets/${root}/refresh`;
  assert.equal((await call(reg.url, "POST", url)).status, 401);
  assert.equal((await call(reg.url, "POST", url, { token: otherToken })).status, 403);
  assert.equal((await call(reg.url, "POST", `/api/v1/sets/${OTHER_ROOT}/refresh`, { token })).status, 404);
  const unchanged = await call(reg.url, "POST", url, { token });
  assert.deepEqual(unchanged.json, { root, atoms: 3, versions: 4, added: 0 });
  for (const raw of ["", "{}"]) {
    const withBody = await call(reg.url, "POST", url, { token, raw });
    assert.equal(withBody.status, 200, `a ${JSON.stringify(raw)} JSON body is ignored: ${withBody.text}`);
  }

  writeFiles(work, {
    "pkgs/fmt/atom.toml": `${atomToml("fmt", "0.4.0")}\n[package.meta]\ndescription = "Formats text, faster"\ntags = ["text"]\n`,
  });
  commitAll(work, "fmt 0.4.0");
  const pub = await publishTo(work, bare);
  for (const p of pub.published) revs[`${p.label}@${p.version}`] = p.rev;
  const r = await call(reg.url, "POST", url, { token });
  assert.deepEqual(r.json, { root, atoms: 3, versions: 5, added: 1 });
  const fmt = await call(reg.url, "GET", "/api/v1/search?q=fmt");
  assert.equal(fmt.json.results[0].description, "Formats text, faster");
  assert.deepEqual(fmt.json.results[0].versions, ["0.4.0", "0.3.0"]);

  // Published but not yet indexed: the build record triggers one pass.
  writeFiles(work, { "pkgs/hello-extra/atom.toml": atomToml("hello-extra", "0.2.0") });
  commitAll(work, "hello-extra 0.2.0");
  for (const p of (await publishTo(work, bare)).published) revs[`${p.label}@${p.version}`] = p.rev;
  const out = fakePath("hello-extra-0.2.0");
  assert.equal((await put(reg.url, { path: out, nar: await narOf("extra\n"), token })).status, 201);
  const b = await call(reg.url, "POST", "/api/v1/builds", { token, json: buildBody("hello-extra", "0.2.0", { out }) });
  assert.equal(b.status, 201, b.text);
  const resolved = await call(reg.url, "GET", `/api/v1/resolve/${atomId(root, "hello-extra")}/%5E0.2?system=x86_64-linux`);
  assert.equal(resolved.json.version, "0.2.0");
});

test("metrics: request counter and duration by route and status, gauges for paths and builds", async () => {
  await call(reg.url, "GET", "/nix-cache-info");
  const m = await call(reg.url, "GET", "/metrics");
  assert.equal(m.status, 200);
  assert.match(m.text, /cpr_registry_http_requests_total\{method="GET",route="\/nix-cache-info",status="200"\} \d+/);
  assert.match(m.text, /cpr_registry_http_requests_total\{method="PUT",route="\/api\/v1\/paths\/:hash",status="201"\} \d+/);
  assert.match(
    m.text,
    /cpr_registry_http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/:hash.narinfo",status="404"\} \d+/,
  );
  const paths = /^cpr_registry_store_paths (\d+)$/m.exec(m.text);
  assert.equal(Number(paths?.[1]), await reg.db.countPaths());
  const builds = /^cpr_registry_builds (\d+)$/m.exec(m.text);
  assert.equal(Number(builds?.[1]), await reg.db.countBuilds());
});

test("signing key: created once with mode 0600, the same for racing starters and after a restart", async () => {
  const dir = tempDir("cpr-key-");
  const keys = await Promise.all([1, 2, 3, 4, 5, 6].map(() => loadOrCreateSigningKey(dir)));
  assert.equal(new Set(keys.map((k) => k.publicKey)).size, 1);
  assert.equal(statSync(join(dir, "signing-key.sec")).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).sort(), ["signing-key.pub", "signing-key.sec"], "no temporary files left");
  assert.equal((await loadOrCreateSigningKey(dir)).publicKey, keys[0]!.publicKey);

  const again = await startRegistry({
    dataDir,
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  try {
    assert.equal(again.publicKey, reg.publicKey, "the data directory keeps the key");
    assert.equal((await call(again.url, "GET", "/api/v1/sets")).json.sets[0].root, root, "and the database");
  } finally {
    await again.close();
  }
});

test("scheduled refresh: a set unreachable at start is picked up once it exists, and new versions appear without a request", async () => {
  const later = join(tempDir("cpr-later-"), "set.git");
  const scheduled = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [later],
    refreshSeconds: 1,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  try {
    assert.deepEqual(
      scheduled.unreachable.map((u) => u.url),
      [later],
    );
    assert.deepEqual((await call(scheduled.url, "GET", "/api/v1/sets")).json.sets, []);
    const w = makeRepo({ "pkgs/late/atom.toml": `${atomToml("late", "0.1.0")}\n[package.meta]\ndescription = "Arrives late"\n` });
    execFileSync("git", ["init", "-q", "--bare", later]);
    await initTo(w, later);
    await publishTo(w, later);
    const versions = async (): Promise<string[]> =>
      (await call(scheduled.url, "GET", "/api/v1/search?q=late")).json.results[0]?.versions ?? [];
    await until(async () => (await versions()).length === 1);
    writeFiles(w, { "pkgs/late/atom.toml": atomToml("late", "0.2.0") });
    commitAll(w, "late 0.2.0");
    await publishTo(w, later);
    await until(async () => (await versions()).length === 2);
    assert.deepEqual(await versions(), ["0.2.0", "0.1.0"]);
  } finally {
    await scheduled.close();
  }
});

/** Polls `cond` (the schedule runs every second) until it holds; gives up after a minute. */
async function until(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail("the scheduled refresh never picked the change up");
}

test("a NAR a narinfo names but the data directory lost is a 500 naming the problem; a name no narinfo has is a 404", async () => {
  const path = fakePath("lost-file");
  const nar = await narOf("this file will be lost\n");
  const r = await put(reg.url, { path, nar, token });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const info = parseNarInfo(r.json.narinfo as string);
  assert.equal((await fetch(`${reg.url}/${info.url}`, { method: "HEAD" })).status, 200);
  rmSync(join(dataDir, info.url));
  for (const method of ["GET", "HEAD"]) {
    const lost = await fetch(`${reg.url}/${info.url}`, { method });
    assert.equal(lost.status, 500, method);
    if (method === "GET") {
      const body = (await lost.json()) as { error: string };
      assert.equal(
        body.error,
        `${info.url} is named by a narinfo but is missing from the registry's storage (registry.storage-missing); the server's log has the details`,
      );
    }
  }
  assert.equal((await fetch(`${reg.url}/nar/${"3".repeat(52)}.nar.xz`)).status, 404);
});

test("yanked versions: the catalogue shows the reason, resolve skips them; undone, they are chosen again", async () => {
  const { yank } = await import("../../src/publish/yank.js");
  const { Repo } = await import("../../src/git/repo.js");
  const { resolveRemote } = await import("../../src/git/remote.js");
  const id = atomId(root, "hello-extra");
  const refresh = () => call(reg.url, "POST", `/api/v1/sets/${root}/refresh`, { token });
  const resolve = () => call(reg.url, "GET", `/api/v1/resolve/${id}/%5E0.2?system=x86_64-linux`);
  assert.equal((await resolve()).json.version, "0.2.0");
  const repo = await Repo.open(work, { env, repo: "user" });
  try {
    const remote = await resolveRemote(bare, repo, work);
    await yank({ repo, remote, label: "hello-extra", version: "0.2.0", reason: "broken build script", cwd: work, env });
    assert.equal((await refresh()).status, 200);
    const atom = await call(reg.url, "GET", `/api/v1/atoms/${id}`);
    assert.deepEqual(
      atom.json.versions.map((v: { version: string; yanked: unknown }) => [v.version, v.yanked]),
      [
        ["0.2.0", { reason: "broken build script" }],
        ["0.1.0", null],
      ],
    );
    const refused = await resolve();
    assert.equal(refused.status, 404);
    assert.match(refused.text, /every version of hello-extra matching \^0\.2 is yanked \(0\.2\.0\)/);
    await yank({ repo, remote, label: "hello-extra", version: "0.2.0", undo: true, cwd: work, env });
  } finally {
    repo.close();
  }
  assert.equal((await refresh()).status, 200);
  const atom = await call(reg.url, "GET", `/api/v1/atoms/${id}`);
  assert.equal(atom.json.versions[0].yanked, null);
  assert.equal((await resolve()).json.version, "0.2.0");
});
