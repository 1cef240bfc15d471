/**
 * The registry end to end, as users run it: a published set with a buildable atom and an atom dependency, a real
 * registry server indexing it (and a second set that also has a `hello`), `cpr build --push` with the real CLI and
 * real Nix, then `cpr get` into ANOTHER Nix store with shims named nix-instantiate, nix-build and nix on PATH that
 * fail loudly (and leave a mark), so any evaluation on the get side would show. Only the real nix-store runs there.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, rmSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { runCprAsync, type CprRun } from "../support/cli.js";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { initTo, publishTo, resolveAtom } from "../publish/fixture.js";
import { buildableSet, env, nixEnv, type BuildableSet } from "./atoms-fixture.js";

let set: BuildableSet;
let other: { remote: string; root: string };
let reg: RunningRegistry;
let token: string;
let shims: string;
let marker: string;
const xdg = tempDir("cpr-xdg-");

/** A set of its own (another root) that also publishes an atom labelled `hello`. */
async function otherSet(): Promise<{ remote: string; root: string }> {
  const work = makeRepo({ README: "another set with a hello\n" });
  writeFiles(work, {
    "hello/atom.toml": `${atomToml("hello", "3.0.0")}\n[package.meta]\ndescription = "Another hello"\n\n[compose.as]\nnix = "default.nix"\n`,
    "hello/default.nix":
      'derivation { name = "other-hello"; inherit (cfg) system; builder = "/bin/sh"; args = [ "-c" "echo other > $out" ]; }\n',
  });
  await resolveAtom(join(work, "hello"));
  commitAll(work, "hello");
  const remote = makeBare();
  const init = await initTo(work, remote);
  const r = await publishTo(work, remote);
  if (r.failed.length) throw new Error(JSON.stringify(r.failed));
  return { remote, root: init.root };
}

before(async () => {
  if (!findTool("nix-store") || !findTool("nix-instantiate") || !findTool("nix")) return;
  set = await buildableSet({ tag: "e2e", withNewer: true });
  other = await otherSet();
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote, other.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  token = await createToken(reg.db, [set.root], "e2e");
  shims = tempDir("cpr-shims-");
  marker = join(tempDir("cpr-marker-"), "evaluations");
  for (const name of ["nix-instantiate", "nix-build", "nix"]) {
    writeFileSync(
      join(shims, name),
      `#!/bin/sh\necho "$0 $*" >> ${marker}\necho "shim: ${name} must not run during cpr get" >&2\nexit 97\n`,
    );
    chmodSync(join(shims, name), 0o755);
  }
});

after(async () => {
  await reg?.close();
});

/**
 * Runs the real CLI (asynchronously: the registry answers from this process); `noEval` puts the failing shims first
 * on PATH (the real nix-store stays reachable).
 */
function cpr(args: string[], opts: { cwd?: string; noEval?: boolean; extraEnv?: NodeJS.ProcessEnv } = {}): Promise<CprRun> {
  const path = opts.noEval ? `${shims}:${nixEnv.PATH}` : nixEnv.PATH;
  return runCprAsync(args, {
    cwd: opts.cwd ?? tempDir("cpr-cwd-"),
    env: { ...nixEnv, PATH: path, CPR_CACHE_DIR: tempDir("cpr-cache-"), XDG_CONFIG_HOME: xdg, ...opts.extraEnv },
  });
}

function evaluations(): string {
  return existsSync(marker) ? readFileSync(marker, "utf8") : "";
}

test("cpr build --push, then cpr get into another store with no evaluation", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const uri = `${set.remote}::hello@^0.1`;
  const b = await cpr(["build", uri, "--push", reg.url, "--token", token, "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const built = JSON.parse(b.stdout);
  const out: string = built.outputs.out;
  assert.equal(built.version, "0.1.0");
  assert.equal(built.pushed.registry, reg.url);
  const pushedNames = (built.pushed.uploaded as string[]).map((p) => p.replace(/^\/nix\/store\/[0-9a-z]{32}-/, ""));
  assert.deepEqual(pushedNames, ["cpr-dep-e2e", "cpr-hello-e2e-0.1.0"], "references first");
  // Pushing again uploads nothing and records the build again.
  const again = await cpr(["build", uri, "--push", reg.url, "--token", token, "--json", "-q"]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout).pushed.uploaded, []);

  // The shims work: evaluating through them fails loudly and leaves a mark.
  const shimmed = await cpr(["build", uri, "-q"], { noEval: true });
  assert.equal(shimmed.code, 1);
  assert.match(shimmed.stderr, /shim: nix-instantiate must not run/);
  assert.match(evaluations(), /nix-instantiate/);
  rmSync(marker);

  // The get side: another store, evaluation impossible.
  const store = tempDir("cpr-store-");
  const cwd = tempDir("cpr-get-");
  const g = await cpr(["get", uri, "--registry", reg.url, "--key", reg.publicKey, "--store", store], { cwd, noEval: true });
  assert.equal(g.code, 0, g.stderr);
  assert.equal(g.stdout, `${out}\n`);
  assert.equal(evaluations(), "", "no nix-instantiate, nix-build or nix ran");
  assert.ok(lstatSync(join(cwd, "result")).isSymbolicLink());
  assert.equal(readlinkSync(join(cwd, "result")), out);
  assert.equal(readFileSync(join(store, out), "utf8"), readFileSync(out, "utf8"), "the same content, substituted into the other store");
  const depPath = readFileSync(out, "utf8").trim().split("|")[3]!;
  assert.ok(existsSync(join(store, depPath)), "its reference came along");

  // --json, --out-link, config keys (CPR_REGISTRY, CPR_REGISTRY_KEYS) instead of options.
  const store2 = tempDir("cpr-store-");
  const link = join(cwd, "links", "hello");
  const j = await cpr(["get", uri, "--store", store2, "--out-link", "links/hello", "--json"], {
    cwd,
    noEval: true,
    extraEnv: { CPR_REGISTRY: reg.url, CPR_REGISTRY_KEYS: reg.publicKey },
  });
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.label, "hello");
  assert.equal(doc.version, "0.1.0");
  assert.equal(doc.drv, built.drv);
  assert.deepEqual(doc.outputs, built.outputs);
  assert.equal(doc.registry, reg.url);
  assert.equal(readlinkSync(link), out);
  const n = await cpr(["get", uri, "--registry", reg.url, "--key", reg.publicKey, "--store", tempDir("cpr-store-"), "--no-out-link"], {
    cwd: tempDir("cpr-get-"),
    noEval: true,
  });
  assert.equal(n.code, 0, n.stderr);
  assert.equal(evaluations(), "");
});

test("cpr get refuses: a key the registry did not sign with, no key, an unbuilt version, an ambiguous name", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const uri = `${set.remote}::hello@^0.1`;
  const b = await cpr(["build", uri, "--push", reg.url, "--token", token, "-q", "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const out: string = JSON.parse(b.stdout).outputs.out;

  const store = tempDir("cpr-store-");
  const wrongKey = `someone-else-1:${randomBytes(32).toString("base64")}`;
  const wrong = await cpr(["get", uri, "--registry", reg.url, "--key", wrongKey, "--store", store, "--no-out-link"], { noEval: true });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /not signed by any of the keys/);
  assert.match(
    wrong.stderr,
    /^error: Nix refused \/nix\/store\/\S+ from http:\/\/127\.0\.0\.1:\d+: it is not signed by any trusted key \(someone-else-1:/m,
  );
  assert.match(wrong.stderr, /hint: trust the registry's own key \(`cpr registry key` on the server prints it\)/);
  assert.match(wrong.stderr, new RegExp(reg.url.replace(/[.]/g, "\\.")));
  assert.ok(!existsSync(join(store, out)), "nothing unsigned entered the store");

  const noKey = await cpr(["get", uri, "--registry", reg.url, "--store", tempDir("cpr-store-"), "--no-out-link"], { noEval: true });
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /no trusted key for/);

  const unbuilt = await cpr(
    ["get", `${set.remote}::hello@=0.2.0`, "--registry", reg.url, "--key", reg.publicKey, "--store", tempDir("cpr-store-")],
    { noEval: true },
  );
  assert.equal(unbuilt.code, 1);
  assert.match(unbuilt.stderr, /no build of hello =0\.2\.0 for [a-z0-9_]+-[a-z]+ is known to http:\/\/127\.0\.0\.1:\d+/);
  assert.match(unbuilt.stderr, /--build/);
  const unbuiltDep = await cpr(["get", "dep", "--registry", reg.url, "--key", reg.publicKey, "--store", tempDir("cpr-store-")], {
    noEval: true,
  });
  assert.equal(unbuiltDep.code, 1);
  assert.match(unbuiltDep.stderr, /no build of dep for /);

  const ambiguous = await cpr(["get", "hello", "--registry", reg.url, "--key", reg.publicKey, "--store", tempDir("cpr-store-")], {
    noEval: true,
  });
  assert.equal(ambiguous.code, 1);
  assert.match(ambiguous.stderr, /'hello' names atoms of 2 sets/);
  assert.match(ambiguous.stderr, new RegExp(`set ${set.root}`));
  assert.match(ambiguous.stderr, new RegExp(`set ${other.root}`));
  assert.match(ambiguous.stderr, /name one with a URI/);
  assert.equal(evaluations(), "", "refusals evaluate nothing either");

  const missing = await cpr(["get", "nosuchatom", "--registry", reg.url, "--key", reg.publicKey], { noEval: true });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no atom labelled 'nosuchatom'/);
  assert.equal((await cpr(["get"])).code, 2);

  // Bad input is named before any work: a key that is not name:base64, no registry at all, a malformed URL, a URI
  // whose set has no such atom.
  const badKey = await cpr(["get", uri, "--registry", reg.url, "--key", "garbage"], { noEval: true });
  assert.equal(badKey.code, 2);
  assert.match(badKey.stderr, /^error: --key \(or config registry\.keys, CPR_REGISTRY_KEYS\): invalid public key "garbage"/);
  const noRegistry = await cpr(["get", "hello", "--key", reg.publicKey], { noEval: true });
  assert.equal(noRegistry.code, 2);
  assert.match(noRegistry.stderr, /^error: no registry is configured\n {2}hint: pass --registry URL/);
  const badUrl = await cpr(["get", "hello", "--registry", "htp://x", "--key", reg.publicKey], { noEval: true });
  assert.equal(badUrl.code, 2);
  assert.match(badUrl.stderr, /a registry is reached over http:\/\/ or https:\/\//);
  const occupied = tempDir("cpr-get-");
  writeFileSync(join(occupied, "result"), "mine\n");
  const notALink = await cpr(["get", uri, "--registry", reg.url, "--key", reg.publicKey, "--store", tempDir("cpr-store-")], {
    cwd: occupied,
    noEval: true,
  });
  assert.equal(notALink.code, 1);
  assert.match(notALink.stderr, /result exists and is not an out-link \(a symlink\): cpr get will not replace it/);
  assert.doesNotMatch(notALink.stderr, /installing/, "refused before downloading anything");
  assert.equal(readFileSync(join(occupied, "result"), "utf8"), "mine\n");
  const noAtom = await cpr(["get", `${set.remote}::nosuchatom`, "--registry", reg.url, "--key", reg.publicKey], { noEval: true });
  assert.equal(noAtom.code, 1);
  assert.match(noAtom.stderr, /has no published atom 'nosuchatom'/);
  assert.doesNotMatch(noAtom.stderr, /no build of/);

  // A wrong token or a dead registry fails cpr build --push before anything is built.
  const badToken = await cpr(["build", uri, "--push", reg.url, "--token", "cpr_wrong", "-q"]);
  assert.equal(badToken.code, 1);
  assert.match(badToken.stderr, /the write token check failed with HTTP 401: unknown token/);
  assert.doesNotMatch(badToken.stderr, /building |built /);
  const dead = await cpr(["build", uri, "--push", "http://127.0.0.1:9", "--token", token, "-q"]);
  assert.equal(dead.code, 1);
  assert.match(dead.stderr, /cannot reach registry http:\/\/127\.0\.0\.1:9/);
  assert.doesNotMatch(dead.stderr, /building |built /);
  assert.equal((await cpr(["get", "hello", "--out-link", "x", "--no-out-link"])).code, 2);
  const strayToken = await cpr(["get", "hello", "--registry", reg.url, "--token", token]);
  assert.equal(strayToken.code, 2);
  assert.match(strayToken.stderr, /^error: --token is only used with --build --push/);
});

test("cpr get --build builds an unbuilt version locally and --push shares it; a bare name then installs", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const cwd = tempDir("cpr-get-");
  const g = await cpr(
    [
      "get",
      `${set.remote}::hello@=0.2.0`,
      "--registry",
      reg.url,
      "--key",
      reg.publicKey,
      "--build",
      "--push",
      reg.url,
      "--token",
      token,
      "--json",
    ],
    { cwd },
  );
  assert.equal(g.code, 0, g.stderr);
  const doc = JSON.parse(g.stdout);
  assert.equal(doc.version, "0.2.0");
  assert.equal(doc.built, true);
  assert.equal(readlinkSync(join(cwd, "result")), doc.outputs.out);

  // dep is unique across the registry's sets: a bare name works once dep has a build.
  const d = await cpr(["build", `${set.remote}::dep`, "--push", reg.url, "--token", token, "-q"]);
  assert.equal(d.code, 0, d.stderr);
  const store = tempDir("cpr-store-");
  const got = await cpr(["get", "dep", "--registry", reg.url, "--key", reg.publicKey, "--store", store, "--no-out-link"], { noEval: true });
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /^\/nix\/store\/[0-9a-z]{32}-cpr-dep-e2e\n$/);
  assert.ok(existsSync(join(store, got.stdout.trim())));
  // The newest built version wins: 0.2.0 now.
  const newest = await cpr(
    [
      "get",
      `${set.remote}::hello`,
      "--registry",
      reg.url,
      "--key",
      reg.publicKey,
      "--store",
      tempDir("cpr-store-"),
      "--json",
      "--no-out-link",
    ],
    { noEval: true },
  );
  assert.equal(newest.code, 0, newest.stderr);
  assert.equal(JSON.parse(newest.stdout).version, "0.2.0");
  assert.equal(evaluations(), "");
});

test("cpr search merges the registry's catalogue and sets read directly, by AtomId", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const s = await cpr(["search", "hello", "--registry", reg.url, "--set", other.remote, "--json"]);
  assert.equal(s.code, 0, s.stderr);
  const { results, failures } = JSON.parse(s.stdout);
  assert.deepEqual(failures, []);
  assert.deepEqual(
    results.map((r: { label: string; set: string }) => `${r.label} ${r.set}`).sort(),
    [`hello ${set.root}`, `hello ${other.root}`].sort(),
  );
  const theirs = results.find((r: { set: string }) => r.set === other.root);
  assert.deepEqual(theirs.sources, [reg.url, other.remote]);
  assert.equal(theirs.description, "Another hello");
  const ours = results.find((r: { set: string }) => r.set === set.root);
  assert.deepEqual(ours.versions, ["0.2.0", "0.1.0"]);

  const tag = await cpr(["search", "GREETING", "--set", set.remote]);
  assert.equal(tag.code, 0, tag.stderr);
  assert.match(tag.stdout, /^LABEL +VERSION +SET +ID +DESCRIPTION\nhello +0\.2\.0 +[0-9a-f]{12} +[0-9a-v]{52} +Says hello e2e\n$/);

  const down = await cpr(["search", "hello", "--registry", "http://127.0.0.1:9", "--set", set.remote, "--json"]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /cannot reach registry http:\/\/127\.0\.0\.1:9/);
  assert.equal(JSON.parse(down.stdout).results.length, 1);
  const allDown = await cpr(["search", "hello", "--registry", "http://127.0.0.1:9"]);
  assert.equal(allDown.code, 1);
  assert.match(allDown.stderr, /^error: nothing was searched: the only source failed/m);
  assert.doesNotMatch(allDown.stderr, /no match/, "a failed search is not an empty one");
  assert.equal(allDown.stdout, "");

  // With no flag, the registries and the sets of config [registry] are searched.
  const home = tempDir("cpr-xdg-");
  mkdirSync(join(home, "cpr"));
  writeFileSync(
    join(home, "cpr", "config.toml"),
    `[registry]\nurls = [${JSON.stringify(reg.url)}]\nsets = [${JSON.stringify(other.remote)}]\n`,
  );
  const configured = await cpr(["search", "hello", "--json"], { extraEnv: { XDG_CONFIG_HOME: home } });
  assert.equal(configured.code, 0, configured.stderr);
  const fromConfig = JSON.parse(configured.stdout).results.find((r: { set: string }) => r.set === other.root);
  assert.deepEqual(fromConfig.sources, [reg.url, other.remote]);
});
