/**
 * `cpr graft`, `cpr get --with/--graft`, `cpr tree/why --installed` as a user runs them (bin/cpr), against a
 * registry started here and real Nix: the dry run, a recorded graft needing no token, a refusal with every reason
 * (and its --json), the automatic choice, a local graft (nix-store --import, and the content-addressed fallback
 * through nix copy), and the graft shown by tree and why.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { graftPath } from "../../src/protocol/graft.js";
import { parseStorePath } from "../../src/protocol/store-path.js";
import { hostSystem } from "../../src/nix/store.js";
import { formatPublicKey, formatSecretKey, generateSecretKey, publicKeyOf } from "../../src/protocol/nix-key.js";
import { NIX_TEST_CONFIG } from "../support/nix.js";
import { pushBuild } from "../../src/registry/push.js";
import { RegistryClient } from "../../src/registry/client.js";
import { locate, parseGetTarget, resolveBuild } from "../../src/registry/get.js";
import { graftLocally } from "../../src/registry/graft-local.js";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { runCprAsync, cprJson, type CprRun } from "../support/cli.js";
import { tempDir } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { env, graftSet, nixEnv, type GraftSet } from "../registry/graft-fixture.js";

let set: GraftSet;
let reg: RunningRegistry;
let token: string;
const out: Record<string, string> = {};
const system = hostSystem();
const haveNix = () => Boolean(findTool("nix-store") && findTool("nix-instantiate") && findTool("nix"));

before(async () => {
  if (!haveNix()) return;
  set = await graftSet("c");
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  token = await createToken(reg.db, [set.root], "graft cli tests");
  const client = new RegistryClient(reg.url, { token });
  for (const [label, version] of [
    ["y", "3.2.0"],
    ["y", "3.3.0"],
    ["y", "3.10.0"],
    ["y", "4.0.0"],
    ["x", "1.0.0"],
    ["xgz", "1.0.0"],
  ] as const) {
    const built = await set.build(label, version);
    await pushBuild(client, built, { nix: { env: nixEnv } });
    out[`${label}@${version}`] = built.outputs.out!;
  }
});

after(async () => {
  await reg?.close();
});

const cacheDir = () => tempDir("cpr-cache-");

function cpr(args: string[], opts: { cache?: string; cwd?: string; extraEnv?: NodeJS.ProcessEnv } = {}): Promise<CprRun> {
  return runCprAsync(args, {
    cwd: opts.cwd ?? tempDir("cpr-cwd-"),
    env: {
      ...nixEnv,
      CPR_CACHE_DIR: opts.cache ?? cacheDir(),
      XDG_CONFIG_HOME: tempDir("cpr-xdg-"),
      CPR_REGISTRY: reg.url,
      CPR_REGISTRY_KEYS: reg.publicKey,
      ...opts.extraEnv,
    },
  });
}

const store = () => join(tempDir("cpr-fresh-"), "s");

test("cpr graft: dry run, refusal with every reason, no token, then the registry grafts and it is installed", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const x = out["x@1.0.0"]!;
  const y32 = out["y@3.2.0"]!;
  const y33 = out["y@3.3.0"]!;
  const expected = graftPath(x, [{ old: y32, new: y33 }]);

  const dry = await cpr(["graft", "x@=1.0.0", "--replace", "y@3.3.0", "--dry-run", "--json"]);
  assert.equal(dry.code, 0, dry.stderr);
  const plan = cprJson<{ outputs: Record<string, string>; paths: { old: string; new: string }[]; graftId: null; dryRun: boolean }>(dry);
  assert.equal(plan.outputs.out, expected);
  assert.equal(plan.dryRun, true);
  assert.equal(plan.graftId, null);

  const human = await cpr(["graft", "x@=1.0.0", "--replace", "y@3.3.0", "--dry-run"]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stderr, /grafted x 1\.0\.0 \(.*\) onto y 3\.3\.0 \(built against 3\.2\.0\)/);
  assert.ok(human.stderr.includes(`  ${y32} → ${y33}`), human.stderr);
  assert.ok(human.stderr.includes(`  ${x} → ${expected}`), human.stderr);
  assert.match(human.stderr, /dry run: nothing was written/);

  const refused = await cpr(["graft", "x@=1.0.0", "--replace", "y@4.0.0", "--token", token, "--no-out-link"]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /the graft of x 1\.0\.0 is refused:\n {2}- y 3\.2\.0 → 4\.0\.0: x 1\.0\.0 requires y \^3\.2, which 4\.0\.0 does not satisfy \[--allow-incompatible\]/,
  );
  const refusedJson = await cpr(["graft", "x@=1.0.0", "--replace", "y@3.10.0", "--token", token, "--no-out-link", "--json"]);
  assert.equal(refusedJson.code, 1);
  const doc = cprJson<{ error: { code: string; reasons: { code: string; override: string | null }[]; paths: unknown[] } }>(refusedJson);
  assert.equal(doc.error.code, "graft.refused");
  assert.equal(doc.error.paths.length, 1);
  assert.deepEqual(
    doc.error.reasons.map((r) => [r.code, r.override]),
    [["graft.length", "alias"]],
  );

  const noToken = await cpr(["graft", "x@=1.0.0", "--replace", "y@3.3.0", "--no-out-link"]);
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /has no recorded graft of x 1\.0\.0 onto y 3\.3\.0/);
  assert.match(noToken.stderr, /--token T/);

  const s1 = store();
  const cache = cacheDir();
  const cwd = tempDir("cpr-cwd-");
  const made = await cpr(["graft", "x@=1.0.0", "--replace", "y@3.3.0", "--token", token, "--store", s1], { cache, cwd });
  assert.equal(made.code, 0, made.stderr);
  assert.equal(made.stdout, `${expected}\n`);
  assert.equal(execFileSync("/bin/sh", [join(s1, expected, "bin/x")], { encoding: "utf8" }), `y 3.3.0\nx at ${expected}\n`);
  const tree = await cpr(["tree", "--installed", join(cwd, "result")], { cache });
  assert.equal(tree.code, 0, tree.stderr);
  assert.equal(tree.stdout, `x 1.0.0 (graft; ${system})\n└── y 3.3.0 (graft; built against 3.2.0)\n`);
  const why = await cpr(["why", "y", "--installed", join(cwd, "result")], { cache });
  assert.equal(why.stdout, "x 1.0.0 (graft) -> y 3.3.0 (graft; built against 3.2.0)\n");

  // Recorded: cpr get --with installs it with no token.
  const s2 = store();
  const got = await cpr(["get", "x@=1.0.0", "--with", "y@3.3.0", "--store", s2, "--no-out-link", "--json"]);
  assert.equal(got.code, 0, got.stderr);
  const gdoc = cprJson<{ outputs: Record<string, string>; recorded: boolean; paths: unknown[] }>(got);
  assert.equal(gdoc.outputs.out, expected);
  assert.equal(gdoc.recorded, true);
  assert.equal(gdoc.paths.length, 2);
  assert.equal(readFileSync(join(s2, expected, "bin/x"), "utf8"), `#!/bin/sh\n${y33}/bin/y\necho x at ${expected}\n`);
});

test("cpr get --graft picks the newest built version the automatic rules allow, and says which", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const s = store();
  const r = await cpr(["get", "x@=1.0.0", "--graft", "--token", token, "--store", s, "--no-out-link"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /y: grafting onto 3\.3\.0, the newest built version the rules allow/);
  assert.equal(r.stdout, `${graftPath(out["x@1.0.0"]!, [{ old: out["y@3.2.0"]!, new: out["y@3.3.0"]! }])}\n`);
  const bad = await cpr(["get", "x@=1.0.0", "--graft", "--force"]);
  assert.equal(bad.code, 2);
  // config graft.auto = true: a plain cpr get grafts (the graft is recorded now: no token needed).
  const xdg = tempDir("cpr-xdg-");
  mkdirSync(join(xdg, "cpr"), { recursive: true });
  writeFileSync(join(xdg, "cpr", "config.toml"), "[graft]\nauto = true\n");
  const auto = await cpr(["get", "x@=1.0.0", "--store", store(), "--no-out-link"], { extraEnv: { XDG_CONFIG_HOME: xdg } });
  assert.equal(auto.code, 0, auto.stderr);
  assert.equal(auto.stdout, r.stdout);
  assert.match(auto.stderr, /y: grafting onto 3\.3\.0/);
  const plain = await cpr(["get", "x@=1.0.0", "--store", store(), "--no-out-link"]);
  assert.equal(plain.stdout, `${out["x@1.0.0"]}\n`);
});

test("local grafts: nix-store --import gives the registry's graft path; the content-addressed fallback goes through nix copy", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const x = out["x@1.0.0"]!;
  const y310 = out["y@3.10.0"]!;
  const s1 = store();
  const r = await cpr(["graft", "x@=1.0.0", "--replace", "y@3.3.0", "--local", "--store", s1, "--no-out-link", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const doc = cprJson<{ outputs: Record<string, string>; import: string }>(r);
  assert.equal(doc.import, "import");
  const expected = graftPath(x, [{ old: out["y@3.2.0"]!, new: out["y@3.3.0"]! }]);
  assert.equal(doc.outputs.out, expected);
  execFileSync("nix-store", ["--store", s1, "--verify", "--check-contents"], { env: nixEnv, stdio: "ignore" });
  assert.equal(execFileSync("/bin/sh", [join(s1, expected, "bin/x")], { encoding: "utf8" }), `y 3.3.0\nx at ${expected}\n`);

  // Signed with a key the store trusts (--sign-key): the graft paths, added with nix copy; refused when not trusted.
  const secret = generateSecretKey("local-graft-1");
  const keyFile = join(tempDir("cpr-key-"), "key.sec");
  writeFileSync(keyFile, formatSecretKey(secret));
  const trusted = `${NIX_TEST_CONFIG}\ntrusted-public-keys = ${formatPublicKey(publicKeyOf(secret))}`;
  const s3 = store();
  const signed = await cpr(
    ["graft", "x@=1.0.0", "--replace", "y@3.3.0", "--local", "--sign-key", keyFile, "--store", s3, "--no-out-link", "--json"],
    {
      extraEnv: { NIX_CONFIG: trusted },
    },
  );
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(cprJson<{ import: string }>(signed).import, "signed");
  const sigs = JSON.parse(
    execFileSync("nix", ["--extra-experimental-features", "nix-command", "path-info", "--json", "--store", s3, expected], {
      env: nixEnv,
      encoding: "utf8",
    }),
  ) as { signatures?: string[] }[];
  assert.ok(
    sigs[0]!.signatures?.some((g) => g.startsWith("local-graft-1:")),
    JSON.stringify(sigs),
  );
  const untrusted = await cpr([
    "graft",
    "x@=1.0.0",
    "--replace",
    "y@3.3.0",
    "--local",
    "--sign-key",
    keyFile,
    "--store",
    store(),
    "--no-out-link",
  ]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /lacks a valid signature|signature/);

  // The content-addressed fallback, as for a user the daemon does not trust (forced here: the tests run as root).
  const client = new RegistryClient(reg.url);
  const located = await locate({ cwd: set.work, env }, [client], parseGetTarget("x@=1.0.0"));
  const found = await resolveBuild(located, system);
  const s2 = store();
  const ca = await graftLocally(client, located, found!.build, [{ label: "y", version: "3.10.0" }], {
    alias: true,
    mode: "ca",
    keys: [reg.publicKey],
    outLink: null,
    nix: { env: nixEnv, store: s2 },
  });
  assert.deepEqual(ca.refusals, []);
  assert.equal(ca.importedWith, "ca");
  const caOut = ca.outputs.out!;
  assert.notEqual(caOut, x);
  const info = JSON.parse(
    execFileSync("nix", ["--extra-experimental-features", "nix-command", "path-info", "--json", "--store", s2, caOut], {
      env: nixEnv,
      encoding: "utf8",
    }),
  ) as { ca?: string; references: string[] }[];
  assert.match(info[0]!.ca ?? "", /^fixed:r:sha256:/);
  const alias = info[0]!.references.find((p) => p !== caOut)!;
  assert.equal(parseStorePath(alias).name, parseStorePath(out["y@3.2.0"]!).name);
  execFileSync("nix-store", ["--store", s2, "--verify", "--check-contents"], { env: nixEnv, stdio: "ignore" });
  assert.equal(readFileSync(join(s2, caOut, "bin/x"), "utf8"), `#!/bin/sh\n${alias}/bin/y\necho x at ${caOut}\n`);
  assert.equal(
    execFileSync("nix-store", ["--store", s2, "--query", "--references", alias], { env: nixEnv, encoding: "utf8" }).trim(),
    y310,
  );
});

test("a recorded graft made with --force is installed only with --force", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const refused = await cpr(["graft", "xgz@=1.0.0", "--replace", "y@3.3.0", "--token", token, "--no-out-link", "--store", store()]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /lib\/y\.gz \(gzip\) still names .* after the rewrite \[--force\]/);
  const forced = await cpr([
    "graft",
    "xgz@=1.0.0",
    "--replace",
    "y@3.3.0",
    "--token",
    token,
    "--force",
    "--no-out-link",
    "--store",
    store(),
  ]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /warning: .*lib\/y\.gz \(gzip\) still names/);
  const noForce = await cpr(["get", "xgz@=1.0.0", "--with", "y@3.3.0", "--no-out-link", "--store", store()]);
  assert.equal(noForce.code, 1);
  assert.match(noForce.stderr, /refused/);
  assert.match(noForce.stderr, /the recorded graft was made with --force/);
  const withForce = await cpr(["get", "xgz@=1.0.0", "--with", "y@3.3.0", "--force", "--no-out-link", "--store", store()]);
  assert.equal(withForce.code, 0, withForce.stderr);
  assert.equal(withForce.stdout, forced.stdout);
});
