/**
 * The registry client behind a real forward proxy (tinyproxy): reads, JSON writes and a streamed NAR upload go
 * through http_proxy in absolute form, and no_proxy bypasses it, as for git remotes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { toNix32 } from "../../src/nix/hash.js";
import { RegistryClient } from "../../src/registry/client.js";
import { startRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { tempDir } from "../support/repo.js";
import { startTinyproxy } from "../support/servers.js";
import { needTools } from "../support/tools.js";

test("registry client: reads, writes and uploads through http_proxy; no_proxy bypasses it", async (t) => {
  if (!needTools(t, "tinyproxy", "xz")) return;
  const proxy = await startTinyproxy();
  const reg = await startRegistry({ dataDir: tempDir("cpr-reg-proxy-"), listen: "127.0.0.1:0", log: false, refreshSeconds: 0 });
  try {
    const token = await createToken(reg.db, ["a".repeat(40)]);
    const env = { PATH: process.env.PATH, http_proxy: proxy.proxyUrl };
    const client = new RegistryClient(reg.url, { token, env });

    assert.deepEqual(await client.search("nothing-here"), []);
    assert.ok(proxy.requests().includes(`GET ${reg.url}/api/v1/search?q=nothing-here`), proxy.requests().join("\n"));

    const bytes = randomBytes(50_000);
    const path = `/nix/store/${toNix32(createHash("sha256").update("proxy").digest()).slice(0, 32)}-through-proxy`;
    const narHash = `sha256:${toNix32(createHash("sha256").update(bytes).digest())}`;
    assert.deepEqual(await client.missing([path]), [path]);
    const up = await client.upload({ path, narHash, narSize: bytes.length, references: [], deriver: null }, Readable.from([bytes]));
    assert.equal(up.created, true);
    assert.deepEqual(await client.missing([path]), []);
    const hash = path.slice("/nix/store/".length, "/nix/store/".length + 32);
    assert.ok(proxy.requests().includes(`PUT ${reg.url}/api/v1/paths/${hash}`));
    assert.ok(proxy.requests().includes(`POST ${reg.url}/api/v1/paths/missing`));

    const seen = proxy.requests().length;
    const direct = new RegistryClient(reg.url, { token, env: { ...env, no_proxy: "127.0.0.1" } });
    assert.deepEqual(await direct.missing([path]), []);
    assert.equal(proxy.requests().length, seen, "no_proxy: nothing went through the proxy");
  } finally {
    await reg.close();
    await proxy.stop();
  }
});
