/**
 * The artifact store with the real compressors: what it accepts, what it refuses, and that nothing partial is ever
 * left under nar/ — including when the process is killed mid-upload.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { toNix32 } from "../../src/nix/hash.js";
import { ArtifactStore, IngestError, type Compression, type IngestExpect } from "../../src/serve/artifacts.js";
import { needTools } from "../support/tools.js";

function dataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cpr-artifacts-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function store(t: TestContext, compression: Compression = "xz", maxNarSize?: number): Promise<{ s: ArtifactStore; dir: string }> {
  const dir = dataDir(t);
  const s = new ArtifactStore({ dataDir: dir, compression, ...(maxNarSize === undefined ? {} : { maxNarSize }) });
  await s.init();
  return { s, dir };
}

/** A payload with both incompressible and very compressible parts, about 300 KiB. */
function payload(seed = 0): Buffer {
  return Buffer.concat([Buffer.from(`nix-archive-1 ${seed}`), randomBytes(100_000), Buffer.alloc(200_000, 0x61 + (seed % 26))]);
}

function expectFor(data: Buffer, name = "thing"): IngestExpect {
  const h = createHash("sha256").update(data).digest();
  return { storePath: `/nix/store/${"0".repeat(32)}-${name}`, narHash: `sha256:${toNix32(h)}`, narSize: data.length };
}

/** The body as a stream of 64 KiB chunks. */
function body(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 65536) chunks.push(data.subarray(i, i + 65536));
  return Readable.from(chunks);
}

const ls = (dir: string, sub: string): string[] => readdirSync(join(dir, sub));

function fileHashOf(path: string): string {
  return `sha256:${toNix32(createHash("sha256").update(readFileSync(path)).digest())}`;
}

function rejectsWith(status: 400 | 413, pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof IngestError, `expected IngestError, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.match(err.message, pattern);
    return true;
  };
}

test("ingest compresses with xz under the compressed file's hash; xz -d gives the NAR back", async (t) => {
  const tools = needTools(t, "xz");
  if (!tools) return;
  const { s, dir } = await store(t);
  const data = payload();
  const got = await s.ingest(body(data), expectFor(data));
  assert.equal(got.compression, "xz");
  assert.match(got.url, /^nar\/[0-9a-df-np-sv-z]{52}\.nar\.xz$/);
  const file = s.filePath(got.url);
  assert.ok(file && existsSync(file));
  assert.equal(got.fileSize, statSync(file).size);
  assert.ok(got.fileSize < data.length, "compressed");
  assert.equal(got.fileHash, fileHashOf(file));
  assert.equal(got.url, `nar/${got.fileHash.slice(7)}.nar.xz`);
  assert.ok(execFileSync(tools.xz, ["-d", "-c", file], { maxBuffer: 1 << 26 }).equals(data));
  assert.deepEqual(ls(dir, "tmp"), []);
  assert.deepEqual(ls(dir, "nar"), [got.url.slice(4)]);
});

test("ingest with zstd, and with no compression", async (t) => {
  const tools = needTools(t, "zstd");
  if (!tools) return;
  const data = payload(1);
  const z = await store(t, "zstd");
  const got = await z.s.ingest(body(data), expectFor(data));
  assert.match(got.url, /^nar\/[0-9a-df-np-sv-z]{52}\.nar\.zst$/);
  const file = z.s.filePath(got.url)!;
  assert.equal(got.fileHash, fileHashOf(file));
  assert.ok(execFileSync(tools.zstd, ["-d", "-c", file], { maxBuffer: 1 << 26 }).equals(data));
  assert.deepEqual(ls(z.dir, "tmp"), []);

  const n = await store(t, "none");
  const plain = await n.s.ingest(body(data), expectFor(data));
  assert.deepEqual(plain, {
    fileHash: expectFor(data).narHash,
    fileSize: data.length,
    compression: "none",
    url: `nar/${expectFor(data).narHash.slice(7)}.nar`,
  });
  assert.ok(readFileSync(n.s.filePath(plain.url)!).equals(data));
  assert.deepEqual(ls(n.dir, "tmp"), []);
});

test("a body whose hash differs is refused with 400, leaving nothing", async (t) => {
  if (!needTools(t, "xz")) return;
  const { s, dir } = await store(t);
  const data = payload();
  const other = Buffer.from(data);
  other.writeUInt8(other[other.length - 1]! ^ 1, other.length - 1);
  await assert.rejects(s.ingest(body(other), expectFor(data)), rejectsWith(400, /hash mismatch/));
  await assert.rejects(s.ingest(body(data), { ...expectFor(data), narHash: "md5:abc" }), rejectsWith(400, /invalid NAR hash/));
  assert.deepEqual(ls(dir, "nar"), []);
  assert.deepEqual(ls(dir, "tmp"), []);
});

test("a body shorter than declared is refused with 400, leaving nothing", async (t) => {
  if (!needTools(t, "xz")) return;
  const { s, dir } = await store(t);
  const data = payload();
  await assert.rejects(s.ingest(body(data.subarray(0, data.length - 10)), expectFor(data)), rejectsWith(400, /declared NAR size/));
  assert.deepEqual(ls(dir, "nar"), []);
  assert.deepEqual(ls(dir, "tmp"), []);
});

test("a body longer than declared is refused with 413 as soon as it is, without destroying the stream", async (t) => {
  if (!needTools(t, "xz")) return;
  const { s, dir } = await store(t);
  const data = payload();
  const stream = new PassThrough();
  const declared = expectFor(data.subarray(0, 1000));
  const result = s.ingest(stream, declared);
  // One chunk past the declared size, and the stream kept open: the refusal must not wait for its end.
  stream.write(data.subarray(0, 70_000));
  await assert.rejects(result, rejectsWith(413, /longer than the declared NAR size of 1000/));
  assert.equal(stream.destroyed, false, "the caller decides what to do with the connection");
  stream.destroy();
  assert.deepEqual(ls(dir, "nar"), []);
  assert.deepEqual(ls(dir, "tmp"), []);
});

test("a NAR over the server's limit is refused with 413 before reading", async (t) => {
  if (!needTools(t, "xz")) return;
  const { s, dir } = await store(t, "xz", 1000);
  const data = payload();
  const stream = body(data);
  await assert.rejects(s.ingest(stream, expectFor(data)), rejectsWith(413, /exceeds this server's limit of 1000 bytes/));
  assert.equal(stream.readableEnded, false);
  assert.deepEqual(ls(dir, "tmp"), []);
  assert.deepEqual(ls(dir, "nar"), []);
});

test("concurrent identical uploads end in one file, and each caller gets its name", async (t) => {
  const tools = needTools(t, "xz");
  if (!tools) return;
  const { s, dir } = await store(t);
  const data = payload(7);
  const results = await Promise.all([1, 2, 3, 4].map(() => s.ingest(body(data), expectFor(data))));
  for (const r of results) assert.deepEqual(r, results[0]);
  assert.deepEqual(ls(dir, "nar"), [results[0]!.url.slice(4)]);
  assert.deepEqual(ls(dir, "tmp"), []);
  assert.ok(execFileSync(tools.xz, ["-d", "-c", s.filePath(results[0]!.url)!], { maxBuffer: 1 << 26 }).equals(data));
});

test("filePath accepts only nar/<nix32>.nar[.xz|.zst]", async (t) => {
  const dir = dataDir(t);
  const s = new ArtifactStore({ dataDir: dir });
  const h = "0123456789abcdfghijklmnpqrsvwxyz0123456789abcdfghijk";
  assert.equal(h.length, 52);
  assert.equal(s.filePath(`nar/${h}.nar.xz`), join(dir, "nar", `${h}.nar.xz`));
  assert.equal(s.filePath(`nar/${h}.nar.zst`), join(dir, "nar", `${h}.nar.zst`));
  assert.equal(s.filePath(`nar/${h}.nar`), join(dir, "nar", `${h}.nar`));
  for (const bad of [
    `../nar/${h}.nar.xz`,
    `nar/../../etc/${h.slice(0, 46)}.nar.xz`,
    `nar/${h}.nar.xz/..`,
    `/nar/${h}.nar.xz`,
    `nar/${h}.nar.gz`,
    `nar/${h.slice(1)}e.nar.xz`,
    `nar/${h.toUpperCase()}.nar.xz`,
    `nar/${h.slice(1)}.nar.xz`,
    `tmp/${h}.nar.xz`,
    `nar/${h}.nar.xz\n`,
    "",
  ]) {
    assert.equal(s.filePath(bad), null, JSON.stringify(bad));
  }
});

test("init removes leftovers in tmp/ but not a live process's upload on this host", async (t) => {
  const dir = dataDir(t);
  const s = new ArtifactStore({ dataDir: dir });
  await s.init();
  const host = encodeURIComponent(hostname()).replace(/~/g, "%7E");
  const live = `${host}~${process.ppid}~abc.nar`; // our parent is alive: a second server on this data directory
  const mine = `${host}~${process.pid}~def.nar`; // our own pid before any upload: a previous run's file
  writeFileSync(join(dir, "tmp", live), "x");
  writeFileSync(join(dir, "tmp", mine), "x");
  writeFileSync(join(dir, "tmp", "stray.nar"), "x");
  await s.init();
  assert.deepEqual(ls(dir, "tmp"), [live]);
});

test("a server killed mid-upload leaves nothing in nar/, and init() clears tmp/", async (t) => {
  if (!needTools(t, "xz")) return;
  const dir = dataDir(t);
  const moduleUrl = new URL("../../src/serve/artifacts.js", import.meta.url).href;
  // The child ingests its stdin, declared much longer than what we will send before killing it.
  const script = `
    import { ArtifactStore } from ${JSON.stringify(moduleUrl)};
    const s = new ArtifactStore({ dataDir: ${JSON.stringify(dir)} });
    await s.init();
    process.stdout.write("ready\\n");
    await s.ingest(process.stdin, { storePath: "/nix/store/${"0".repeat(32)}-big", narHash: "sha256:${"0".repeat(52)}", narSize: 100000000 });
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", () => reject(new Error("the child exited before it was ready")));
  });
  const chunk = randomBytes(65536);
  child.stdin.write(chunk);
  // Wait until the partial upload is on disk, then kill without warning.
  const tmp = join(dir, "tmp");
  for (;;) {
    const names = readdirSync(tmp);
    if (names.length === 1 && statSync(join(tmp, names[0]!)).size >= chunk.length) break;
    await sleep(10);
  }
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  assert.deepEqual(ls(dir, "nar"), [], "nothing visible");
  assert.equal(ls(dir, "tmp").length, 1, "the partial upload is left in tmp/");
  await new ArtifactStore({ dataDir: dir }).init();
  assert.deepEqual(ls(dir, "tmp"), []);
  assert.deepEqual(ls(dir, "nar"), []);
});
