import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { toSri } from "../../src/nix/hash.js";
import {
  currentSystem,
  derivationOutputs,
  dumpNar,
  instantiate,
  pathInfo,
  queryClosure,
  realise,
  referencesFirst,
} from "../../src/nix/store.js";
import { needTools } from "../support/tools.js";
import { tempDir } from "../support/repo.js";
import { nixTestEnv } from "../support/nix.js";

/**
 * The Nix adapter against real Nix: builds happen in the default store (a non-sandboxed build cannot use a diverted
 * store), substitution goes into throwaway stores (`--store DIR`) from a signed `file://` binary cache.
 * The tests configure Nix themselves through NIX_CONFIG (support/nix.ts: no build users, no sandbox, no substituters); cpr never does.
 */
const env = nixTestEnv();

/** A file with two /bin/sh derivations, `top` referencing `dep`; a nonce makes its paths new to the store. */
function writeExpr(dir: string, nonce: string): string {
  const file = join(dir, "default.nix");
  writeFileSync(
    file,
    `{ system ? builtins.currentSystem }:
let dep = derivation { name = "cpr-dep-${nonce}"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo dep > $out" ]; };
in derivation { name = "cpr-top-${nonce}"; inherit system; PATH = "/bin:/usr/bin"; builder = "/bin/sh"; args = [ "-c" "mkdir $out; echo \${dep} > $out/dep; ln -s dep $out/link" ]; }
`,
  );
  return file;
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test("instantiate, realise, closure, path info and NAR of a /bin/sh derivation", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const dir = tempDir("cpr-nix-");
  const file = writeExpr(dir, randomBytes(6).toString("hex"));
  const system = await currentSystem({ env });
  assert.match(system, /^[a-z0-9_]+-[a-z]+$/);
  const [drv, ...more] = await instantiate(file, { env, argstr: { system } });
  assert.equal(more.length, 0);
  assert.match(drv!, /^\/nix\/store\/[0-9a-z]{32}-cpr-top-[0-9a-f]+\.drv$/);
  const { outputs } = await derivationOutputs(drv!, { env });
  assert.deepEqual(Object.keys(outputs), ["out"]);
  const link = join(dir, "result");
  const built = await realise([drv!], { env, outLink: link });
  assert.deepEqual(built, [outputs.out]);
  assert.equal(readlinkSync(link), outputs.out);
  const dep = readFileSync(join(outputs.out!, "dep"), "utf8").trim();

  const closure = await queryClosure([outputs.out!], { env });
  assert.deepEqual(closure.sort(), [dep, outputs.out!].sort());
  const infos = await pathInfo(closure, { env });
  const top = infos.find((i) => i.path === outputs.out)!;
  assert.deepEqual(top.references, [dep]);
  assert.equal(top.deriver, drv);
  assert.deepEqual(
    referencesFirst(infos).map((i) => i.path),
    [dep, outputs.out],
  );
  assert.deepEqual((await pathInfo([outputs.out!], { env, recursive: true })).map((i) => i.path).sort(), closure.sort());

  const nar = await collect(dumpNar(outputs.out!, { env }));
  assert.equal(nar.length, top.narSize);
  assert.equal(toSri("sha256", createHash("sha256").update(nar).digest()), top.narHash);
});

test("realise from a signed binary cache into a throwaway store: the right key works, another key is refused", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const dir = tempDir("cpr-nix-");
  const [drv] = await instantiate(writeExpr(dir, randomBytes(6).toString("hex")), { env });
  const [out] = await realise([drv!], { env });
  const keys = (name: string) => {
    execFileSync("nix-store", ["--generate-binary-cache-key", name, join(dir, `${name}.sec`), join(dir, `${name}.pub`)], { env });
    return readFileSync(join(dir, `${name}.pub`), "utf8").trim();
  };
  const good = keys("good");
  const other = keys("other");
  const cache = `file://${join(dir, "cache")}`;
  execFileSync("nix", ["copy", "--to", `${cache}?secret-key=${join(dir, "good.sec")}`, out!], { env });

  const store = tempDir("cpr-store-");
  const link = join(dir, "got");
  const got = await realise([out!], { env, store, substituters: [cache], trustedKeys: [good], outLink: link });
  assert.deepEqual(got, [out]);
  assert.equal(readlinkSync(link), out);
  assert.ok(existsSync(join(store, out!)), "the path is in the throwaway store");
  const [info] = await pathInfo([out!], { env, store });
  assert.equal(info!.path, out);
  const nar = await collect(dumpNar(out!, { env, store }));
  assert.equal(toSri("sha256", createHash("sha256").update(nar).digest()), info!.narHash);

  const store2 = tempDir("cpr-store-");
  await assert.rejects(
    realise([out!], { env, store: store2, substituters: [cache], trustedKeys: [other] }),
    (e: unknown) =>
      e instanceof CprError && e.code === "nix.failed" && /not signed by any of the keys/.test(e.message) && e.message.includes(cache),
  );
  assert.ok(!existsSync(join(store2, out!)));
  await assert.rejects(
    realise([out!], { env, store: store2, substituters: [cache] }),
    (e: unknown) => e instanceof CprError && e.code === "nix.no-keys",
  );
});

test("Nix's errors become CprErrors with its stderr; a missing program is named", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const dir = tempDir("cpr-nix-");
  const bad = join(dir, "bad.nix");
  writeFileSync(bad, "{ }: undefinedThing\n");
  await assert.rejects(
    instantiate(bad, { env }),
    (e: unknown) => e instanceof CprError && e.code === "nix.failed" && /undefined variable 'undefinedThing'/.test(e.message),
  );
  await assert.rejects(pathInfo(["/nix/store/00000000000000000000000000000000-nothing"], { env }), (e: unknown) => e instanceof CprError);
  const noPath = { ...env, PATH: dir };
  await assert.rejects(
    queryClosure(["/nix/store/x"], { env: noPath }),
    (e: unknown) => e instanceof CprError && e.code === "nix.missing" && /nix-store was not found/.test(e.message),
  );
  const stream = dumpNar("/nix/store/00000000000000000000000000000000-nothing", { env });
  await assert.rejects(collect(stream), (e: unknown) => e instanceof CprError && e.code === "nix.failed");
});

test("when Nix's output was shown, the error repeats only its warning and error lines", async (t) => {
  if (!needTools(t, "nix-instantiate")) return;
  const dir = tempDir("cpr-nix-");
  const noisy = join(dir, "noisy.nix");
  writeFileSync(noisy, '{ }: builtins.trace "some long evaluation log" (throw "the real problem")\n');
  let shown = "";
  const err = await instantiate(noisy, { env, onStderr: (s) => (shown += s) }).then(
    () => assert.fail("evaluation should fail"),
    (e: unknown) => e as CprError,
  );
  assert.match(shown, /some long evaluation log/, "Nix's output went to the user");
  assert.match(err.message, /the real problem/);
  assert.doesNotMatch(err.message, /some long evaluation log/, "the log is not printed twice");
  assert.match(err.hint ?? "", /full output is above/);
  // Not shown: the error carries Nix's whole stderr.
  await assert.rejects(
    instantiate(noisy, { env }),
    (e: unknown) => e instanceof CprError && /some long evaluation log/.test(e.message) && /the real problem/.test(e.message),
  );
});
