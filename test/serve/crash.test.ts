/**
 * A `cpr serve` process killed (SIGKILL) in the middle of an upload: what was committed before survives the restart
 * and is still served byte for byte; the partial upload never becomes visible, its temporary file is cleared at the
 * next start, and the same path can then be uploaded in full.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { toNix32 } from "../../src/nix/hash.js";
import { CPR_BIN, runCpr } from "../support/cli.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";

function isolated(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    XDG_CONFIG_HOME: tempDir("cpr-config-"),
    XDG_DATA_HOME: tempDir("cpr-data-home-"),
    CPR_CACHE_DIR: tempDir("cpr-cache-"),
    NO_COLOR: "1",
  };
}

async function serve(data: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CPR_BIN, "serve", "--data", data, "--listen", "127.0.0.1:0", "--json"], {
    env,
    stdio: ["ignore", "pipe", "ignore"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (l) => resolve((JSON.parse(l) as { listening: string }).listening));
    child.once("exit", (code, signal) => reject(new Error(`cpr serve exited (${code ?? signal}) before listening`)));
  });
  return { child, url };
}

/** A fake but well-formed store path and a NAR-sized payload (the server checks hash and size, not NAR syntax). */
function payload(name: string, size: number) {
  const bytes = randomBytes(size);
  const hash = toNix32(createHash("sha256").update(name).digest()).slice(0, 32);
  return {
    storePath: `/nix/store/${hash}-${name}`,
    hash,
    bytes,
    narHash: `sha256:${toNix32(createHash("sha256").update(bytes).digest())}`,
  };
}

type Payload = ReturnType<typeof payload>;

/** PUT an upload; `partial` sends only that many bytes and never ends the body. */
function upload(url: string, token: string, p: Payload, partial?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v1/paths/${p.hash}`, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/x-nix-nar",
        "content-length": p.bytes.length,
        "x-nix-store-path": p.storePath,
        "x-nix-nar-hash": p.narHash,
        "x-nix-nar-size": p.bytes.length,
        "x-nix-references": "",
      },
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    if (partial === undefined) req.end(p.bytes);
    else req.write(p.bytes.subarray(0, partial));
  });
}

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a server killed mid-upload keeps what was committed and never shows the partial upload", async (t) => {
  if (!needTools(t, "xz")) return;
  const env = isolated();
  const data = tempDir("cpr-crash-");
  const tokenRun = runCpr(["registry", "token", "create", "--data", data, "--set", "a".repeat(40)], { env });
  assert.equal(tokenRun.code, 0, tokenRun.stderr);
  const token = tokenRun.stdout.trim();

  const first = await serve(data, env);
  const committed = payload("committed", 300_000);
  assert.equal(await upload(first.url, token, committed), 201);
  const narinfo = await get(`${first.url}/${committed.hash}.narinfo`);
  assert.equal(narinfo.status, 200);

  const partial = payload("partial", 4_000_000);
  const sent = upload(first.url, token, partial, 1_000_000).catch(() => 0);
  await until("the partial upload to reach tmp/", () => readdirSync(join(data, "tmp")).length > 0);
  first.child.kill("SIGKILL");
  await new Promise((r) => first.child.once("exit", r));
  await sent;
  assert.ok(readdirSync(join(data, "tmp")).length > 0, "the killed server left its partial upload behind");

  const second = await serve(data, env);
  try {
    assert.deepEqual(readdirSync(join(data, "tmp")), [], "the restart cleared the partial upload");
    // What was committed is still served, byte for byte.
    const again = await get(`${second.url}/${committed.hash}.narinfo`);
    assert.equal(again.status, 200);
    assert.equal(again.body.toString(), narinfo.body.toString());
    const narUrl = /^URL: (.+)$/m.exec(again.body.toString())![1]!;
    const file = await get(`${second.url}/${narUrl}`);
    assert.equal(file.status, 200);
    const unpacked = spawnSync("xz", ["-dc"], { input: file.body, maxBuffer: 1 << 26 });
    assert.equal(unpacked.status, 0);
    assert.ok(Buffer.from(unpacked.stdout).equals(committed.bytes));
    // The partial upload is not visible, and only the committed NAR is in the store.
    assert.equal((await get(`${second.url}/${partial.hash}.narinfo`)).status, 404);
    assert.equal(readdirSync(join(data, "nar")).length, 1);
    // Nothing is stuck: the same path uploads in full now.
    assert.equal(await upload(second.url, token, partial), 201);
    assert.equal((await get(`${second.url}/${partial.hash}.narinfo`)).status, 200);
  } finally {
    second.child.kill("SIGTERM");
    await new Promise((r) => second.child.once("exit", r));
  }
});
