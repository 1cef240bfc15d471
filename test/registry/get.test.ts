/**
 * The registry client and the `cpr get` steps as a library, against a real registry server (SQLite, loopback) and
 * real Nix: catalogue reads, write errors that name the registry and the status, uploads streamed from nix-store
 * --dump, build records, resolve, and installing into a throwaway store.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Cache } from "../../src/git/cache.js";
import { atomId } from "../../src/protocol/id.js";
import { CprError } from "../../src/protocol/errors.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { dumpNar, hostSystem, pathInfo } from "../../src/nix/store.js";
import { buildAtom } from "../../src/build/build.js";
import { pushBuild } from "../../src/registry/push.js";
import { RegistryClient, registryUrl } from "../../src/registry/client.js";
import { explainNoBuild, install, locate, noBuildError, orderedOutputs, parseGetTarget, resolveBuild } from "../../src/registry/get.js";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { tempDir } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { buildableSet, env, nixEnv, type BuildableSet } from "./atoms-fixture.js";

let set: BuildableSet;
let reg: RunningRegistry;
let token: string;
const haveNix = () => Boolean(findTool("nix-store") && findTool("nix-instantiate") && findTool("nix"));

before(async () => {
  if (!haveNix()) return;
  set = await buildableSet({ tag: "get", withNewer: true });
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  token = await createToken(reg.db, [set.root], "get tests");
});

after(async () => {
  await reg?.close();
});

const isCpr = (code: RegExp | string, message: RegExp) => (e: unknown) =>
  e instanceof CprError && (typeof code === "string" ? e.code === code : code.test(e.code)) && message.test(e.message);

test("the client reads the catalogue and names the registry and status in every failure", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const client = new RegistryClient(`${reg.url}/`, { token });
  assert.equal(client.url, reg.url);
  const id = atomId(set.root, "hello");
  const [hit] = await client.search("HELLO");
  assert.deepEqual(
    { id: hit!.id, label: hit!.label, set: hit!.set, versions: hit!.versions },
    { id, label: "hello", set: set.root, versions: ["0.2.0", "0.1.0"] },
  );
  const atom = await client.atom(id);
  assert.deepEqual(
    atom!.versions.map((v) => [v.version, v.rev]),
    [
      ["0.2.0", set.revs["hello@0.2.0"]],
      ["0.1.0", set.revs["hello@0.1.0"]],
    ],
  );
  assert.equal(await client.atom(atomId(set.root, "nothing")), null);
  assert.equal(await client.resolve(id, "*", "x86_64-linux"), null);
  assert.deepEqual(
    (await client.sets()).map((s) => s.root),
    [set.root],
  );

  const anonymous = new RegistryClient(reg.url);
  await assert.rejects(
    anonymous.missing(["/nix/store/00000000000000000000000000000000-x"]),
    (e: unknown) =>
      isCpr("registry.http-401", new RegExp(`^registry ${reg.url}: paths/missing failed with HTTP 401: `))(e) &&
      /--token/.test((e as CprError).hint ?? ""),
  );
  const nar = Buffer.from("not a nar");
  await assert.rejects(
    client.upload(
      {
        path: "/nix/store/00000000000000000000000000000000-x",
        narHash: `sha256-${"A".repeat(43)}=`,
        narSize: nar.length,
        references: [],
        deriver: null,
      },
      Readable.from([nar]),
    ),
    isCpr("registry.http-400", new RegExp(`^registry ${reg.url}: upload of /nix/store/0{32}-x failed with HTTP 400: .+`)),
  );
  await assert.rejects(
    new RegistryClient("http://127.0.0.1:9").search("x"),
    isCpr("registry.unreachable", /^cannot reach registry http:\/\/127\.0\.0\.1:9 \(GET \/api\/v1\/search\): ECONNREFUSED/),
  );
  assert.throws(() => registryUrl("ftp://example.org"), isCpr("registry.url", /over http:\/\/ or https:\/\//));
  assert.throws(() => registryUrl("not a url"), isCpr("registry.url", /is not a registry URL/));
});

test("push, resolve and install as a library: references first, then the record, then substitution into a throwaway store", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const client = new RegistryClient(reg.url, { token });
  const cache = await Cache.open({ dir: tempDir("cpr-cache-"), env: nixEnv });
  let built;
  try {
    built = await buildAtom({ cache, cwd: set.work, env: nixEnv, nix: { env: nixEnv } }, parseAtomUri(`${set.remote}::hello@^0.1`));
  } finally {
    cache.close();
  }
  // Out of dependency order: the server refuses a path whose reference it lacks, and says so.
  const [top] = await pathInfo([built.outputs.out!], { env: nixEnv });
  await assert.rejects(
    client.upload(top!, dumpNar(top!.path, { env: nixEnv })),
    isCpr("registry.http-409", /upload of .*-cpr-hello-get-0\.1\.0 failed with HTTP 409: .*cpr-dep-get/),
  );
  const pushed = await pushBuild(client, built, { nix: { env: nixEnv } });
  assert.equal(pushed.uploaded.length, 2);
  assert.match(pushed.uploaded[0]!, /-cpr-dep-get$/);
  assert.equal(pushed.uploaded[1], built.outputs.out);
  assert.deepEqual(await client.missing([...pushed.uploaded]), []);
  const second = await pushBuild(client, built, { nix: { env: nixEnv } });
  assert.deepEqual(second.uploaded, []);
  assert.equal(second.present, 2);

  const located = await locate({ cwd: set.work, env }, [client], parseGetTarget(`${set.remote}::hello@^0.1`));
  assert.equal(located.id, atomId(set.root, "hello"));
  assert.equal(located.requirement, "^0.1");
  const found = await resolveBuild(located, built.system);
  assert.ok(found);
  assert.equal(found.registry, client);
  assert.deepEqual(
    { version: found.build.version, rev: found.build.rev, drv: found.build.drv, outputs: found.build.outputs },
    { version: "0.1.0", rev: built.rev, drv: built.drv, outputs: built.outputs },
  );
  assert.equal(await resolveBuild(located, "riscv64-none"), null);
  assert.match(noBuildError(located, "riscv64-none").message, /^no build of hello \^0\.1 for riscv64-none is known to http:/);

  const store = tempDir("cpr-store-");
  const link = join(tempDir("cpr-get-"), "result");
  const paths = await install(found.build, found.registry, { keys: [reg.publicKey], outLink: link, nix: { env: nixEnv, store } });
  assert.deepEqual(paths, [built.outputs.out]);
  assert.equal(readFileSync(join(store, built.outputs.out!), "utf8"), readFileSync(built.outputs.out!, "utf8"));
  assert.ok(existsSync(link));
  await assert.rejects(
    install(found.build, found.registry, { keys: [], outLink: null, nix: { env: nixEnv, store } }),
    isCpr("get.no-keys", /no trusted key for http:/),
  );
});

test("names and URIs: bare names through the catalogue, URIs by the set's root; errors for what is not there", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const client = new RegistryClient(reg.url);
  const byName = await locate({ cwd: set.work, env }, [client], parseGetTarget("dep"));
  assert.equal(byName.id, atomId(set.root, "dep"));
  assert.equal(byName.requirement, "*");
  assert.equal(byName.uri?.label, "dep", "a bare name is buildable from the set's mirror the registry knows");
  await assert.rejects(
    locate({ cwd: set.work, env }, [client], parseGetTarget("nothing")),
    isCpr("get.not-found", /no atom labelled 'nothing' in the registry http:/),
  );
  await assert.rejects(locate({ cwd: set.work, env }, [], parseGetTarget("dep")), isCpr("get.no-registry", /no registry is configured/));
  // No build: an atom the catalogue knows has simply none for the system; one of a set the registry does not index
  // is named as such, with how to index it.
  assert.equal((await explainNoBuild(byName, "riscv64-none")).code, "get.no-build");
  const elsewhere = "e".repeat(40);
  const unindexed = await explainNoBuild({ ...byName, id: atomId(elsewhere, "dep"), set: elsewhere }, "riscv64-none");
  assert.equal(unindexed.code, "get.not-indexed");
  assert.match(unindexed.message, new RegExp(`^dep \\(set ${elsewhere}\\) is not in the catalogue of ${reg.url.replace(/[.]/g, "\\.")}`));
  assert.match(unindexed.hint ?? "", /cpr serve --set URL/);
  await assert.rejects(
    locate({ cwd: set.work, env }, [client], parseGetTarget(`${tempDir("cpr-empty-")}::dep`)),
    (e: unknown) => e instanceof CprError,
  );
});

test("targets, output order and the host system", () => {
  assert.deepEqual(parseGetTarget("hello@^2"), { kind: "name", label: "hello", requirement: "^2" });
  assert.deepEqual(parseGetTarget("hello"), { kind: "name", label: "hello", requirement: "*" });
  const uri = parseGetTarget("gh:owner/repo::hello@^2");
  assert.equal(uri.kind, "uri");
  assert.equal(uri.kind === "uri" && uri.uri.url?.url, "https://github.com/owner/repo");
  assert.deepEqual(orderedOutputs({ dev: "/nix/store/b", out: "/nix/store/a", bin: "/nix/store/c" }), [
    "/nix/store/a",
    "/nix/store/c",
    "/nix/store/b",
  ]);
  assert.equal(hostSystem("x64", "linux"), "x86_64-linux");
  assert.equal(hostSystem("arm64", "darwin"), "aarch64-darwin");
});
