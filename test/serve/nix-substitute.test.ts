/**
 * A real, stock Nix client (nix 2.8) substitutes from a running registry: paths are built or added by Nix, uploaded
 * through the API (NAR from Nix, hash/size/references from `nix path-info`), then realised into throwaway stores
 * with the registry as the only substituter. The server's key must be trusted; under another key Nix refuses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { dumpNar, instantiate, pathInfo, queryClosure, realise, referencesFirst, type PathInfo } from "../../src/nix/store.js";
import { CprError } from "../../src/protocol/errors.js";
import { formatPublicKey, generateSecretKey, publicKeyOf } from "../../src/protocol/nix-key.js";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { tempDir } from "../support/repo.js";
import { nixTestEnv } from "../support/nix.js";
import { needTools } from "../support/tools.js";

/** Nix with no build users, no sandbox, no default substituters, and its own (narinfo) cache directory. */
function nixEnv(): NodeJS.ProcessEnv {
  return nixTestEnv(process.env, { XDG_CACHE_HOME: tempDir("cpr-nix-cache-") });
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function startServer(): Promise<{ reg: RunningRegistry; token: string }> {
  const reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: false,
    cacheDir: tempDir("cpr-cache-"),
  });
  const token = await createToken(reg.db, ["0".repeat(40)], "nix tests");
  return { reg, token };
}

/** PUT one path: NAR dumped by Nix, metadata from nix path-info. */
async function upload(
  reg: RunningRegistry,
  token: string,
  info: PathInfo,
  env: NodeJS.ProcessEnv,
  store?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const nar = await collect(dumpNar(info.path, { env, ...(store ? { store } : {}) }));
  const hash = info.path.slice("/nix/store/".length, "/nix/store/".length + 32);
  const headers: Record<string, string> = {
    authorization: `Bearer ${token}`,
    "content-type": "application/x-nix-nar",
    "x-nix-store-path": info.path,
    "x-nix-nar-hash": info.narHash,
    "x-nix-nar-size": String(info.narSize),
    "x-nix-references": info.references.map((r) => r.slice("/nix/store/".length)).join(" "),
  };
  if (info.deriver) headers["x-nix-deriver"] = info.deriver.slice("/nix/store/".length);
  const r = await fetch(`${reg.url}/api/v1/paths/${hash}`, { method: "PUT", headers, body: nar });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

test("Nix substitutes a built closure (a path with references) from the server; another trusted key is refused", async (t) => {
  if (!needTools(t, "nix", "nix-store", "nix-instantiate")) return;
  const env = nixEnv();
  const { reg, token } = await startServer();
  t.after(() => reg.close());

  // Build top → dep in the default store (a non-sandboxed build cannot use a diverted store).
  const dir = tempDir("cpr-nix-");
  const nonce = randomBytes(6).toString("hex");
  const file = join(dir, "default.nix");
  writeFileSync(
    file,
    `let dep = derivation { name = "cpr-reg-dep-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo dep ${nonce} > $out" ]; };
in derivation { name = "cpr-reg-top-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "read d < \${dep}; echo \\"\${dep} $d\\" > $out" ]; }
`,
  );
  const [drv] = await instantiate(file, { env });
  const [top] = await realise([drv!], { env });
  const closure = await pathInfo(await queryClosure([top!], { env }), { env });
  assert.equal(closure.length, 2);
  const topInfo = closure.find((i) => i.path === top)!;
  const depPath = topInfo.references.find((r) => r !== top)!;
  assert.ok(depPath, "top references dep");

  // Dependency order is enforced: top first is refused, and stores nothing.
  const early = await upload(reg, token, topInfo, env);
  assert.equal(early.status, 409, JSON.stringify(early.json));
  assert.equal(await reg.db.countPaths(), 0);
  for (const info of referencesFirst(closure)) {
    const r = await upload(reg, token, info, env);
    assert.equal(r.status, 201, `${info.path}: ${JSON.stringify(r.json)}`);
  }
  const missing = await fetch(`${reg.url}/api/v1/paths/missing`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ paths: [top, depPath] }),
  });
  assert.deepEqual(await missing.json(), { missing: [] });

  // A stock Nix realises it into an empty store, from the server alone, trusting its key alone.
  const store = tempDir("cpr-store-");
  const got = await realise([top!], { env, store, substituters: [reg.url], trustedKeys: [reg.publicKey] });
  assert.deepEqual(got, [top]);
  assert.equal(readFileSync(join(store, top!), "utf8"), readFileSync(top!, "utf8"));
  assert.ok(existsSync(join(store, depPath)), "the reference came along");
  const [copied] = await pathInfo([top!], { env, store });
  assert.equal(copied!.narHash, topInfo.narHash);
  assert.deepEqual(copied!.references, topInfo.references);

  // Under a key the server did not sign with, Nix refuses the substitute.
  const otherKey = formatPublicKey(publicKeyOf(generateSecretKey(reg.publicKey.split(":")[0]!)));
  const store2 = tempDir("cpr-store-");
  await assert.rejects(
    realise([top!], { env, store: store2, substituters: [reg.url], trustedKeys: [otherKey] }),
    (e: unknown) => e instanceof CprError && !existsSync(join(store2, top!)),
  );
});

test("nix copy --from the server: a path added to a throwaway store, uploaded, copied into another; a wrong key fails", async (t) => {
  if (!needTools(t, "nix", "nix-store")) return;
  const env = nixEnv();
  const { reg, token } = await startServer();
  t.after(() => reg.close());

  const storeA = tempDir("cpr-store-a-");
  const src = join(tempDir("cpr-src-"), `note-${randomBytes(6).toString("hex")}.txt`);
  writeFileSync(src, `a note ${randomBytes(8).toString("hex")}\n`);
  const run = promisify(execFile);
  const added = (await run("nix-store", ["--store", storeA, "--add", src], { env })).stdout.trim();
  const [info] = await pathInfo([added], { env, store: storeA });
  const r = await upload(reg, token, info!, env, storeA);
  assert.equal(r.status, 201, JSON.stringify(r.json));

  // The narinfo endpoint as Nix reads it.
  const narinfo = await (await fetch(`${reg.url}/${added.slice(11, 43)}.narinfo`)).text();
  assert.match(narinfo, new RegExp(`^StorePath: ${added}$`, "m"));
  assert.match(narinfo, new RegExp(`^Sig: ${reg.publicKey.split(":")[0]}:`, "m"));

  const storeB = tempDir("cpr-store-b-");
  await run("nix", ["copy", "--from", reg.url, "--to", storeB, added, "--option", "trusted-public-keys", reg.publicKey], { env });
  assert.equal(readFileSync(join(storeB, added), "utf8"), readFileSync(src, "utf8"));

  const storeC = tempDir("cpr-store-c-");
  const otherKey = formatPublicKey(publicKeyOf(generateSecretKey("someone-else-1")));
  await assert.rejects(
    run("nix", ["copy", "--from", reg.url, "--to", storeC, added, "--option", "trusted-public-keys", otherKey], { env }),
    /signature/i,
  );
  assert.ok(!existsSync(join(storeC, added)));
});
