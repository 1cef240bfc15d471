/**
 * NARs on S3, against a real S3 server (Ceph's RADOS Gateway on a throwaway one-node cluster, test/support/s3.ts):
 * streaming uploads in one PUT and in several parts, nothing left behind by a rejected upload, and the registry end
 * to end: uploads through the API, narinfos, a stock Nix client substituting from a registry whose NARs are in S3,
 * and a NAR gone from the bucket reported as such.
 */
import { after, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { toNix32 } from "../../src/nix/hash.js";
import { dumpNar, pathInfo, realise } from "../../src/nix/store.js";
import { RegistryClient } from "../../src/registry/client.js";
import { CprError } from "../../src/protocol/errors.js";
import { IngestError } from "../../src/serve/artifacts.js";
import { MIN_PART_SIZE, S3ArtifactStore } from "../../src/serve/artifacts-s3.js";
import { startRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { CPR_BIN } from "../support/cli.js";
import { nixTestEnv } from "../support/nix.js";
import { tempDir } from "../support/repo.js";
import { startS3, type S3Server } from "../support/s3.js";
import { freePort } from "../support/servers.js";
import { needTools } from "../support/tools.js";

let shared: Promise<S3Server | null> | null = null;
let started: S3Server | null = null;
/** One server for the file, started by the first test that needs it. */
async function s3(t: TestContext): Promise<S3Server | null> {
  shared ??= startS3(t).then((s) => {
    started = s;
    if (s) t.diagnostic(`radosgw on a one-node Ceph cluster started in ${(s.startMs / 1000).toFixed(1)} s`);
    return s;
  });
  const s = await shared;
  if (!s) t.skip("no S3 server (see the first test's reason)");
  return s;
}
after(() => started?.stop());

let bucketCounter = 0;
const bucketName = () => `cpr-${process.pid}-${++bucketCounter}`;

function sha256Nix(b: Buffer): string {
  return `sha256:${toNix32(createHash("sha256").update(b).digest())}`;
}

/** A body delivered in chunks of at most 1 MiB, as a request would be. */
function chunked(b: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += 1 << 20) parts.push(b.subarray(i, i + (1 << 20)));
  return Readable.from(parts);
}

/** A request log to read back: the registry's JSON lines. */
function logSink(): { stream: Writable; entries: () => Record<string, unknown>[] } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream,
    entries: () =>
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test("a small NAR goes up in one PUT, compressed, named by its NAR hash, and reads back whole", async (t) => {
  const server = await s3(t);
  if (!server) return;
  const client = await server.bucket(bucketName(), "cache");
  const store = new S3ArtifactStore({ client, compression: "xz" });
  await store.init();
  const nar = randomBytes(100_000);
  const got = await store.ingest(chunked(nar), { storePath: "/nix/store/x", narHash: sha256Nix(nar), narSize: nar.length });
  assert.equal(got.url, `nar/${sha256Nix(nar).slice(7)}.nar.xz`);
  assert.deepEqual(await client.listKeys("cache/"), [`cache/${got.url}`]);
  const file = await store.open(got.url);
  assert.ok(file?.body);
  const bytes = await collect(file.body);
  assert.equal(bytes.length, got.fileSize);
  assert.equal(file.size, got.fileSize);
  assert.equal(sha256Nix(bytes), got.fileHash, "FileHash is the hash of the stored bytes");
  const unpacked = await new Promise<Buffer>((resolve, reject) => {
    const child = execFile("xz", ["-d", "-c"], { encoding: "buffer", maxBuffer: 1 << 24 }, (err, out) =>
      err ? reject(err) : resolve(out),
    );
    child.stdin!.end(bytes);
  });
  assert.ok(unpacked.equals(nar), "decompresses to the NAR");
  assert.equal((await store.open(got.url, { head: true }))?.size, got.fileSize);
  assert.equal(await store.open(`nar/${"0".repeat(52)}.nar.xz`), null, "an absent object is null");
});

test("a large NAR streams up as a multipart upload; a wrong hash or a long body aborts it and leaves nothing", async (t) => {
  const server = await s3(t);
  if (!server) return;
  const client = await server.bucket(bucketName());
  const store = new S3ArtifactStore({ client, compression: "none", partSize: MIN_PART_SIZE });
  await store.init();
  const nar = randomBytes(2 * MIN_PART_SIZE + 123_456); // three parts
  const got = await store.ingest(chunked(nar), { storePath: "/nix/store/big", narHash: sha256Nix(nar), narSize: nar.length });
  assert.equal(got.fileSize, nar.length);
  assert.equal(got.fileHash, sha256Nix(nar));
  const back = await collect((await store.open(got.url))!.body!);
  assert.ok(back.equals(nar), "the object is the NAR, every part in order");
  assert.deepEqual(await client.listMultipart(""), [], "no upload left in progress");

  // The same size with one byte changed: parts went up while it streamed, and the upload is aborted at the end.
  const bad = Buffer.from(nar);
  bad[bad.length - 1]! ^= 1;
  const other = randomBytes(32);
  const claimed = `sha256:${toNix32(other)}`;
  await assert.rejects(
    store.ingest(chunked(bad), { storePath: "/nix/store/bad", narHash: claimed, narSize: bad.length }),
    (e: unknown) => e instanceof IngestError && e.status === 400 && /hash mismatch/.test(e.message),
  );
  await assert.rejects(
    store.ingest(chunked(nar), { storePath: "/nix/store/long", narHash: claimed, narSize: nar.length - 10 }),
    (e: unknown) => e instanceof IngestError && e.status === 413,
  );
  assert.deepEqual(await client.listKeys(""), [got.url], "only the good upload is visible");
  assert.deepEqual(await client.listMultipart(""), [], "the rejected uploads were aborted");

  // Uploads a killed server left in progress under nar/ are aborted at the next start once stale; others stay.
  const leftover = await client.createMultipart(`nar/${"4".repeat(52)}.nar`);
  await client.uploadPart(`nar/${"4".repeat(52)}.nar`, leftover, 1, Buffer.from("half a NAR"));
  const foreign = await client.createMultipart("elsewhere/x");
  await new S3ArtifactStore({ client, compression: "none" }).init();
  assert.equal((await client.listMultipart("")).length, 2, "fresh uploads are left alone (another server may be sending them)");
  await new S3ArtifactStore({ client, compression: "none", staleUploadMs: 0 }).init();
  assert.deepEqual(
    (await client.listMultipart("")).map((u) => [u.key, u.uploadId]),
    [["elsewhere/x", foreign]],
  );
  await client.abortMultipart("elsewhere/x", foreign);
});

test("a registry with NARs on S3: uploads, narinfos, a stock Nix substitutes, a lost NAR is a clear error", async (t) => {
  const server = await s3(t);
  if (!server) return;
  if (!needTools(t, "nix", "nix-store")) return;
  const bucket = bucketName();
  const client = await server.bucket(bucket, "reg");
  // Credentials come from the standard AWS files (a profile), not from the test's own environment.
  const home = tempDir("cpr-home-");
  const awsDir = join(home, ".aws");
  mkdirSync(awsDir);
  writeFileSync(
    join(awsDir, "credentials"),
    `[nars]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, AWS_PROFILE: "nars" };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  const dataDir = tempDir("cpr-registry-");
  const log = logSink();
  const reg = await startRegistry({
    dataDir,
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: log.stream,
    cacheDir: tempDir("cpr-cache-"),
    storeUrl: server.storeUrl(bucket, "reg"),
    s3PartSize: MIN_PART_SIZE,
    env,
  });
  t.after(() => reg.close());
  assert.match(reg.storage, new RegExp(`^s3://${bucket}/reg/ at ${server.endpoint.replace(/\./g, "\\.")}`));
  const token = await createToken(reg.db, ["0".repeat(40)], "s3 tests");

  // Paths added to a throwaway store and uploaded as `cpr build --push` does (RegistryClient.upload: PUT
  // /api/v1/paths/<hash>, the NAR streamed from nix-store --dump): a small note (one PUT to S3) and 12 MiB of random
  // bytes (incompressible: three 5 MiB parts of a multipart upload).
  const nixEnv = nixTestEnv(process.env, { XDG_CACHE_HOME: tempDir("cpr-nix-cache-") });
  const storeA = tempDir("cpr-store-a-");
  const srcDir = tempDir("cpr-src-");
  const src = join(srcDir, `s3-note-${randomBytes(6).toString("hex")}.txt`);
  writeFileSync(src, `kept in S3 ${randomBytes(8).toString("hex")}\n`);
  const bigSrc = join(srcDir, "s3-big.bin");
  writeFileSync(bigSrc, randomBytes(12 * 1024 * 1024));
  const run = promisify(execFile);
  const addToA = async (file: string) => (await run("nix-store", ["--store", storeA, "--add", file], { env: nixEnv })).stdout.trim();
  const added = await addToA(src);
  const big = await addToA(bigSrc);
  const registry = new RegistryClient(reg.url, { token });
  for (const path of [added, big]) {
    const [info] = await pathInfo([path], { env: nixEnv, store: storeA });
    const r = await registry.upload(info!, dumpNar(path, { env: nixEnv, store: storeA }));
    assert.equal(r.created, true, path);
  }
  const hash = added.slice(11, 43);

  // The narinfo names an object in the bucket, under the prefix; nothing went to the data directory.
  const narinfo = await (await fetch(`${reg.url}/${hash}.narinfo`)).text();
  assert.match(narinfo, new RegExp(`^StorePath: ${added}$`, "m"));
  const url = /^URL: (\S+)$/m.exec(narinfo)![1]!;
  const fileSize = Number(/^FileSize: (\d+)$/m.exec(narinfo)![1]);
  const head = await fetch(`${reg.url}/${url}`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get("content-length")), fileSize);

  const bigInfo = await (await fetch(`${reg.url}/${big.slice(11, 43)}.narinfo`)).text();
  const bigUrl = /^URL: (\S+)$/m.exec(bigInfo)![1]!;
  assert.deepEqual((await client.listKeys("reg/")).sort(), [`reg/${url}`, `reg/${bigUrl}`].sort());
  assert.deepEqual(await client.listMultipart(""), [], "no upload left in progress");

  // A stock Nix substitutes both from the registry into empty stores (nix-store --realise with the registry as the
  // only substituter, and nix copy --from), checking the server's signature.
  const storeB = tempDir("cpr-store-b-");
  const got = await realise([added, big], { env: nixEnv, store: storeB, substituters: [reg.url], trustedKeys: [reg.publicKey] });
  assert.deepEqual(got, [added, big]);
  assert.equal(readFileSync(join(storeB, added), "utf8"), readFileSync(src, "utf8"));
  assert.ok(readFileSync(join(storeB, big)).equals(readFileSync(bigSrc)), "the multipart object substitutes whole");
  const storeB2 = tempDir("cpr-store-b2-");
  await run("nix", ["copy", "--from", reg.url, "--to", storeB2, added, "--option", "trusted-public-keys", reg.publicKey], { env: nixEnv });
  assert.equal(readFileSync(join(storeB2, added), "utf8"), readFileSync(src, "utf8"));

  // An upload cut off mid-body (the client goes away after 7 MiB of a 12 MiB NAR, parts already in S3): nothing
  // becomes visible, the multipart upload is aborted, no row is written.
  const cutSrc = join(srcDir, "s3-cut.bin");
  writeFileSync(cutSrc, randomBytes(12 * 1024 * 1024));
  const cut = await addToA(cutSrc);
  const [cutInfo] = await pathInfo([cut], { env: nixEnv, store: storeA });
  const cutNar = await collect(dumpNar(cut, { env: nixEnv, store: storeA }));
  await new Promise<void>((resolve) => {
    const req = httpRequest(`${reg.url}/api/v1/paths/${cut.slice(11, 43)}`, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/x-nix-nar",
        "content-length": String(cutInfo!.narSize),
        "x-nix-store-path": cut,
        "x-nix-nar-hash": cutInfo!.narHash,
        "x-nix-nar-size": String(cutInfo!.narSize),
        "x-nix-references": "",
      },
    });
    req.on("error", () => resolve());
    req.on("close", () => resolve());
    req.write(cutNar.subarray(0, 7 * 1024 * 1024), () => setTimeout(() => req.destroy(), 500));
  });
  // The server notices the connection is gone and aborts; wait (bounded) until no upload is in progress.
  for (let i = 0; i < 100 && (await client.listMultipart("")).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await client.listMultipart(""), [], "the cut-off upload was aborted");
  assert.deepEqual((await client.listKeys("reg/")).sort(), [`reg/${url}`, `reg/${bigUrl}`].sort(), "and left no object");
  assert.equal((await fetch(`${reg.url}/${cut.slice(11, 43)}.narinfo`)).status, 404);

  // The object disappears from the bucket: the narinfo is still there, the NAR is a 500 naming the problem, and
  // Nix fails to substitute (rather than taking it for a path the cache never had).
  await client.delete(`reg/${url}`);
  const lost = await fetch(`${reg.url}/${url}`);
  assert.equal(lost.status, 500);
  const body = (await lost.json()) as { error: string };
  assert.match(body.error, /registry\.storage-missing/);
  assert.equal(
    body.error,
    `${url} is named by a narinfo but is missing from the registry's storage (registry.storage-missing); the server's log has the details`,
  );
  const logged = log.entries().find((e) => e.code === "registry.storage-missing");
  assert.ok(logged, "an error log line");
  assert.equal(logged.level, 50);
  assert.match(
    String(logged.msg),
    new RegExp(`${url.replace(/\./g, "\\.")} is named by a narinfo but is missing from s3://${bucket}/reg/ at `),
  );
  assert.equal((await fetch(`${reg.url}/nar/${"1".repeat(52)}.nar.xz`)).status, 404, "a name no narinfo has is a 404");
  const storeC = tempDir("cpr-store-c-");
  await assert.rejects(
    run("nix", ["copy", "--from", reg.url, "--to", storeC, added, "--option", "trusted-public-keys", reg.publicKey], { env: nixEnv }),
    /500/,
  );
});

test("a registry whose S3 endpoint does not answer, or refuses the credentials, does not start", async (t) => {
  const server = await s3(t);
  if (!server) return;
  const bucket = bucketName();
  await server.bucket(bucket);
  const port = await freePort();
  const common = { listen: "127.0.0.1:0", refreshSeconds: 0, log: false as const, cacheDir: tempDir("cpr-cache-") };
  await assert.rejects(
    startRegistry({
      ...common,
      dataDir: tempDir("cpr-registry-"),
      storeUrl: `s3://${bucket}?endpoint=http://127.0.0.1:${port}`,
      env: { ...process.env, ...server.env },
    }),
    (e: unknown) => e instanceof CprError && e.code === "registry.storage-unreachable" && e.message.includes(`127.0.0.1:${port}`),
  );
  await assert.rejects(
    startRegistry({
      ...common,
      dataDir: tempDir("cpr-registry-"),
      storeUrl: server.storeUrl(bucket),
      env: { ...process.env, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: "wrong" },
    }),
    (e: unknown) => e instanceof CprError && e.code === "registry.storage-error" && /403/.test(e.message),
  );
  await assert.rejects(
    startRegistry({
      ...common,
      dataDir: tempDir("cpr-registry-"),
      storeUrl: server.storeUrl("no-such-bucket-cpr"),
      env: { ...process.env, ...server.env },
    }),
    (e: unknown) => e instanceof CprError && e.code === "registry.storage-error" && /404 NoSuchBucket/.test(e.message),
  );
});

test("cpr serve --store-url: the command starts on S3 with credentials from the environment and stops on SIGTERM", async (t) => {
  const server = await s3(t);
  if (!server) return;
  const bucket = bucketName();
  await server.bucket(bucket);
  const env = { ...process.env, ...server.env, HOME: tempDir("cpr-home-"), XDG_CONFIG_HOME: tempDir("cpr-config-"), NO_COLOR: "1" };
  const child = spawn(
    process.execPath,
    [
      CPR_BIN,
      "serve",
      "--data",
      tempDir("cpr-registry-"),
      "--store-url",
      server.storeUrl(bucket, "cli"),
      "--listen",
      "127.0.0.1:0",
      "--json",
    ],
    { env, cwd: tempDir("cpr-cwd-"), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.after(() => child.kill("SIGKILL"));
  const ready = await new Promise<{ listening: string }>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", (l) => resolve(JSON.parse(l)));
    void exited.then((c) => reject(new Error(`cpr serve exited (${c}) before listening:\n${stderr}`)));
  });
  assert.equal((await fetch(`${ready.listening}/nix-cache-info`)).status, 200);
  assert.match(stderr, new RegExp(`NARs in s3://${bucket}/cli/ at ${server.endpoint.replace(/\./g, "\\.")}`));
  child.kill("SIGTERM");
  assert.equal(await exited, 0);
});

test("S3 going away while the registry runs: NARs are a 503 naming the storage, uploads a 503, narinfos still answer", async (t) => {
  const server = await s3(t);
  if (!server) return;
  const bucket = bucketName();
  await server.bucket(bucket);
  // The registry reaches radosgw through a TCP forwarder that the test can close.
  const rgwPort = Number(new URL(server.endpoint).port);
  const sockets = new Set<Socket>();
  const forwarder = createNetServer((inbound) => {
    const outbound = connect(rgwPort, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => forwarder.listen(0, "127.0.0.1", resolve));
  const closeForwarder = () =>
    new Promise<void>((resolve) => {
      forwarder.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  t.after(closeForwarder);
  const port = (forwarder.address() as AddressInfo).port;
  const log = logSink();
  const reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: log.stream,
    cacheDir: tempDir("cpr-cache-"),
    storeUrl: `s3://${bucket}/down?endpoint=http://127.0.0.1:${port}`,
    env: { ...process.env, ...server.env },
  });
  t.after(() => reg.close());
  const token = await createToken(reg.db, ["0".repeat(40)], "s3 tests");
  const registry = new RegistryClient(reg.url, { token });
  // The registry checks hashes and sizes, not NAR syntax: any bytes do for the storage's part.
  const upload = (bytes: Buffer, name: string) => {
    const path = `/nix/store/${toNix32(randomBytes(20))}-${name}`;
    return registry
      .upload({ path, narHash: sha256Nix(bytes), narSize: bytes.length, references: [], deriver: null }, Readable.from([bytes]))
      .then((r) => ({ path, ...r }));
  };
  const first = await upload(randomBytes(4096), "before");
  assert.equal(first.created, true);
  const url = /^URL: (\S+)$/m.exec(first.narinfo!)![1]!;
  assert.equal((await fetch(`${reg.url}/${url}`)).status, 200);

  await closeForwarder();
  const down = await fetch(`${reg.url}/${url}`);
  assert.equal(down.status, 503);
  const said = ((await down.json()) as { error: string }).error;
  assert.equal(
    said,
    `cannot read ${url}: the registry's NAR storage is unavailable (registry.storage-unreachable); the server's log has the details`,
  );
  assert.doesNotMatch(said, new RegExp(String(port)), "the storage's address is for the log, not for clients");
  const logged = log.entries().find((e) => e.code === "registry.storage-unreachable");
  assert.ok(logged, "an error log line");
  assert.match(String(logged.msg), new RegExp(`the object storage s3://${bucket}/down/ at http://127\\.0\\.0\\.1:${port} did not answer`));
  assert.equal((await fetch(`${reg.url}/${url}`, { method: "HEAD" })).status, 503);
  assert.equal((await fetch(`${reg.url}/${first.path.slice(11, 43)}.narinfo`)).status, 200, "narinfos come from the database");
  await assert.rejects(upload(randomBytes(4096), "after"), (e: unknown) => e instanceof CprError && e.code === "registry.http-503");
});
