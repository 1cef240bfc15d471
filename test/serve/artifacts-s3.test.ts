/**
 * NARs on S3, against a real S3 server (Ceph's RADOS Gateway on a throwaway one-node cluster, test/support/s3.ts):
 * streaming uploads in one PUT and in several parts, nothing left behind by a rejected upload, and the registry end
 * to end: uploads through the API, narinfos, a stock Nix client substituting from a registry whose NARs are in S3,
 * and a NAR gone from the bucket reported as such.
 */
import { after, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { toNix32 } from "../../src/nix/hash.js";
import { dumpNar, pathInfo } from "../../src/nix/store.js";
import { CprError } from "../../src/protocol/errors.js";
import { IngestError } from "../../src/serve/artifacts.js";
import { MIN_PART_SIZE, S3ArtifactStore } from "../../src/serve/artifacts-s3.js";
import { startRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
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
  const reg = await startRegistry({
    dataDir,
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: false,
    cacheDir: tempDir("cpr-cache-"),
    storeUrl: server.storeUrl(bucket, "reg"),
    env,
  });
  t.after(() => reg.close());
  assert.match(reg.storage, new RegExp(`^s3://${bucket}/reg/ at ${server.endpoint.replace(/\./g, "\\.")}`));
  const token = await createToken(reg.db, ["0".repeat(40)], "s3 tests");

  // A path added to a throwaway store, uploaded as `cpr build --push` does (PUT /api/v1/paths/<hash>).
  const nixEnv = nixTestEnv(process.env, { XDG_CACHE_HOME: tempDir("cpr-nix-cache-") });
  const storeA = tempDir("cpr-store-a-");
  const src = join(tempDir("cpr-src-"), `s3-note-${randomBytes(6).toString("hex")}.txt`);
  writeFileSync(src, `kept in S3 ${randomBytes(8).toString("hex")}\n`);
  const run = promisify(execFile);
  const added = (await run("nix-store", ["--store", storeA, "--add", src], { env: nixEnv })).stdout.trim();
  const [info] = await pathInfo([added], { env: nixEnv, store: storeA });
  const nar = await collect(dumpNar(added, { env: nixEnv, store: storeA }));
  const hash = added.slice(11, 43);
  const put = await fetch(`${reg.url}/api/v1/paths/${hash}`, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/x-nix-nar",
      "x-nix-store-path": added,
      "x-nix-nar-hash": info!.narHash,
      "x-nix-nar-size": String(info!.narSize),
      "x-nix-references": "",
    },
    body: nar,
  });
  assert.equal(put.status, 201, await put.clone().text());

  // The narinfo names an object in the bucket, under the prefix; nothing went to the data directory.
  const narinfo = await (await fetch(`${reg.url}/${hash}.narinfo`)).text();
  assert.match(narinfo, new RegExp(`^StorePath: ${added}$`, "m"));
  const url = /^URL: (\S+)$/m.exec(narinfo)![1]!;
  assert.deepEqual(await client.listKeys("reg/"), [`reg/${url}`]);
  const fileSize = Number(/^FileSize: (\d+)$/m.exec(narinfo)![1]);
  const head = await fetch(`${reg.url}/${url}`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get("content-length")), fileSize);

  // A stock Nix copies it from the registry into another store, checking the server's signature.
  const storeB = tempDir("cpr-store-b-");
  await run("nix", ["copy", "--from", reg.url, "--to", storeB, added, "--option", "trusted-public-keys", reg.publicKey], { env: nixEnv });
  assert.equal(readFileSync(join(storeB, added), "utf8"), readFileSync(src, "utf8"));

  // The object disappears from the bucket: the narinfo is still there, the NAR is a 500 naming the problem, and
  // Nix fails to substitute (rather than taking it for a path the cache never had).
  await client.delete(`reg/${url}`);
  const lost = await fetch(`${reg.url}/${url}`);
  assert.equal(lost.status, 500);
  const body = (await lost.json()) as { error: string };
  assert.match(body.error, /registry\.storage-missing/);
  assert.match(body.error, new RegExp(`${url.replace(/\./g, "\\.")} is named by a narinfo but is missing from s3://${bucket}/reg/`));
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
