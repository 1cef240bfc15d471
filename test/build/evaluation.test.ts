/**
 * Evaluation, locker-level (docs/evaluation.md; docs/formats.md §12), with real Nix and real git.
 *
 * Two sets are published with cpr itself (locks written by `cpr resolve`):
 * - `lib`: `atom-nix` (the composer written in test/fixtures/atoms/atom-nix), `conf` (`[compose.as] static`),
 *   `base` (`[compose.as] nix`, with one direct dependency of every type: nix, nix+tar, nix+git, nix+src), and `mid`
 *   (`[compose.with.atom-nix]`, depending on base and conf);
 * - `apps`: `app` (`[compose.as] nix`), depending on mid across sets: app → mid → base is a three-level graph.
 *
 * Each atom is then evaluated twice, from the same locks: through `cpr build` (its generated expression) and
 * through the locker written in test/fixtures/atoms/nix-lock, which follows docs/formats.md §12 to the letter (builtins.fetchGit
 * per atom, each atom's own lock). Values and `.drv` paths must be identical, and base's derivation must be the
 * one written by hand from the same inputs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { atomExpression, buildAtom } from "../../src/build/build.js";
import { Cache } from "../../src/git/cache.js";
import { parseLock } from "../../src/protocol/lock.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { atomToml, commitAll, gitIn, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { runCpr } from "../support/cli.js";
import { needTools } from "../support/tools.js";
import { nixEnv } from "../registry/atoms-fixture.js";

const REPO = resolve(fileURLToPath(import.meta.url), "../../../..");
const FIXTURES = join(REPO, "test", "fixtures", "atoms");
const LOCKER = join(FIXTURES, "nix-lock", "default.nix");

interface World {
  env: NodeJS.ProcessEnv;
  lib: { work: string; remote: string };
  apps: { work: string; remote: string };
  src: string;
  system: string;
}

/** `cpr ARGS…` in `cwd`, which must succeed: its stdout. */
function cpr(cwd: string, env: NodeJS.ProcessEnv, ...args: string[]): string {
  const r = runCpr(args, { cwd, env });
  if (r.code !== 0) throw new Error(`cpr ${args.join(" ")} in ${cwd} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

function nixEval(env: NodeJS.ProcessEnv, expr: string): unknown {
  const out = execFileSync("nix-instantiate", ["--eval", "--read-write-mode", "--strict", "--json", "--expr", expr], {
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return JSON.parse(out);
}

const str = (s: string) => JSON.stringify(s);

/** The published tree of `label` in `remote` as builtins.fetchGit gives it, as nix-lock fetches its dependencies. */
function fetched(remote: string, label: string, version: string): string {
  const rev = gitIn(remote, "rev-parse", `refs/eka/atoms/${label}/${version}`);
  return `(builtins.fetchGit { name = ${str(label)}; url = ${str(remote)}; ref = ${str(`refs/eka/atoms/${label}/${version}`)}; rev = ${str(rev)}; })`;
}

/** `locker ROOT LOCK_TEXT { extraConfig = { system }; }` of a published atom, through the test locker. */
function viaLocker(w: World, remote: string, label: string, version: string): string {
  return `(let root = ${fetched(remote, label, version)}; in import ${LOCKER} root (builtins.readFile (root + "/atom.lock")) { extraConfig = { system = ${str(w.system)}; }; })`;
}

async function world(): Promise<World> {
  const env: NodeJS.ProcessEnv = {
    ...nixEnv,
    HOME: tempDir("cpr-home-"),
    CPR_CACHE_DIR: tempDir("cpr-cache-"),
    CPR_LOCKER_REV: "e711aa1f48d877652dd2ba724d4af752be7b5371",
  };
  const system = (nixEval(env, "builtins.currentSystem") as string) ?? "x86_64-linux";

  // Sources of the direct dependencies, all local: a file, a tarball holding a Nix file, a git repository (on
  // `master`, which Nix 2.8's fetchGit looks at when given only a rev), a file fetched at build time.
  const src = tempDir("cpr-direct-");
  writeFiles(src, {
    "flat.txt": "flat file\n",
    "tree/top/val.nix": "{ answer = 42; }\n",
    "tree/top/inner.txt": "from the tarball\n",
    "later.txt": "fetched at build time\n",
  });
  execFileSync("tar", ["czf", join(src, "t.tar.gz"), "-C", join(src, "tree"), "top"]);
  const gitRepo = join(src, "repo");
  execFileSync("git", ["init", "-q", "-b", "master", gitRepo]);
  writeFiles(gitRepo, { "g.txt": "from git\n" });
  commitAll(gitRepo, "g");

  const lib = { work: makeRepo({ README: "lib set\n" }), remote: makeBare() };
  cpSync(join(FIXTURES, "atom-nix"), join(lib.work, "atom-nix"), { recursive: true });
  const sets = `[package.sets]\nlib = ${str(lib.remote)}\n`;
  writeFiles(lib.work, {
    "conf/atom.toml": `${atomToml("conf", "1.0.0")}\n[package.meta]\ndescription = "static settings"\ntags = ["settings"]\n\n[compose.as]\nstatic = "config"\n`,
    "base/atom.toml": `${atomToml("base", "1.0.0")}
${sets}
[compose.as]
nix = "default.nix"

[deps.direct.nix]
flat.url = "file://${src}/flat.txt"
tar.tar = "file://${src}/t.tar.gz"
later.build = "file://${src}/later.txt"
repo.git = "${gitRepo}"
`,
    "base/msg": "base's own file\n",
    "base/default.nix": `let
  pins = atoms.deps.pins;
in
derivation {
  name = "base-\${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  answer = toString (pins.tar.import "val.nix").answer;
  args = [ "-c" "read a < \${./msg}; read b < \${pins.flat.src}; read c < \${pins.tar.src}/inner.txt; read d < \${atoms.deps.get.later.src}; read e < \${pins.repo.src}/g.txt; echo \\"$a|$b|$c|$d|$e|$answer\\" > $out" ];
}
`,
  });
  commitAll(lib.work, "lib: composer, conf, base");
  gitIn(lib.work, "remote", "add", "origin", lib.remote);
  cpr(lib.work, env, "init");
  for (const dir of ["atom-nix", "conf", "base"]) cpr(join(lib.work, dir), env, "resolve");
  commitAll(lib.work, "lib: locks");
  cpr(lib.work, env, "publish", "--all");

  writeFiles(lib.work, {
    "mid/atom.toml": `${atomToml("mid", "2.1.0")}
${sets}
[compose.with.atom-nix]
from = "lib"
version = "^0.4"
entry = "src"

[deps.from.lib]
base = "^1"
conf = "^1"
`,
    "mid/src/mod.nix": `{
  Pkg = derivation {
    name = "mid-\${cfg.package.version}";
    inherit (cfg) system;
    builder = "/bin/sh";
    args = [ "-c" "read b < \${deps.from.lib.base}; echo \\"mid \${mod.about}: $b\\" > $out" ];
  };
  Version = cfg.package.version;
  Description = deps.from.lib.conf.package.meta.description;
  about = "built on \${cfg.system}";
}
`,
    "mid/src/Greeting.nix": `"hello from mid \${mod.version}"\n`,
    "mid/src/Util/mod.nix": "{ Twice = x: x * 2; Sum = mod.twice 1 + mod.version.major; Parent = pre.version; }\n",
    "mid/src/Util/version.nix": "{ major = 2; }\n",
  });
  commitAll(lib.work, "lib: mid");
  cpr(join(lib.work, "mid"), env, "resolve");
  commitAll(lib.work, "lib: mid's lock");
  cpr(lib.work, env, "publish", "--all");

  const apps = { work: makeRepo({ README: "apps set\n" }), remote: makeBare() };
  writeFiles(apps.work, {
    "app/atom.toml": `${atomToml("app", "0.3.0")}
${sets}
[compose.as]
nix = "default.nix"

[deps.from.lib]
mid = "^2"
`,
    "app/default.nix": `let
  mid = atoms.deps.from.lib.mid;
in
derivation {
  name = "app-\${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "read m < \${mid.pkg}; echo \\"$m|\${mid.greeting}|\${toString (mid.util.twice 21)}|\${mid.description}\\" > $out" ];
}
`,
  });
  commitAll(apps.work, "app");
  gitIn(apps.work, "remote", "add", "origin", apps.remote);
  cpr(apps.work, env, "init");
  cpr(join(apps.work, "app"), env, "resolve");
  commitAll(apps.work, "app's lock");
  cpr(apps.work, env, "publish", "--all");
  return { env, lib, apps, src, system };
}

async function withCache<T>(w: World, f: (cache: Cache) => Promise<T>): Promise<T> {
  const cache = await Cache.open({ dir: w.env.CPR_CACHE_DIR!, env: w.env });
  try {
    return await f(cache);
  } finally {
    cache.close();
  }
}

/** The value cpr's generated expression gives an atom, with `select` applied (JSON). */
async function viaCpr(w: World, uri: string, select: string): Promise<unknown> {
  const { file } = await withCache(w, (cache) =>
    atomExpression({ cache, cwd: w.apps.work, env: w.env, nix: { env: w.env } }, parseAtomUri(uri), { result: "value" }),
  );
  return nixEval(w.env, `(${select}) (import ${file})`);
}

test("evaluation: cpr and a docs/formats.md §12 locker give the same values and the same .drv for every compose kind and dependency type", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix", "nix-prefetch-url", "tar")) return;
  const w = await world();
  const libUri = (label: string) => `${w.lib.remote}::${label}`;

  // The locks cpr resolve wrote say what docs/formats.md §12 reads: compose kinds, dependency types, tags.
  const midLock = parseLock(gitIn(w.lib.remote, "show", "refs/eka/atoms/mid/2.1.0:atom.lock") + "\n", "mid/atom.lock");
  assert.equal(midLock.compose.use, "atom");
  assert.deepEqual(
    midLock.deps.map((d) => d.type),
    ["atom", "atom"],
  );
  const baseLock = parseLock(gitIn(w.lib.remote, "show", "refs/eka/atoms/base/1.0.0:atom.lock") + "\n", "base/atom.lock");
  assert.deepEqual(baseLock.deps.map((d) => d.type).sort(), ["nix", "nix+git", "nix+src", "nix+tar"]);

  // compose.as static: the parsed manifest, both ways.
  const conf = await viaCpr(w, libUri("conf"), "v: v");
  assert.deepEqual(conf, nixEval(w.env, viaLocker(w, w.lib.remote, "conf", "1.0.0")));
  assert.deepEqual((conf as { package: { meta: unknown } }).package.meta, { description: "static settings", tags: ["settings"] });

  // compose.with atom-nix: public members, lowered; private ones hidden; submodules; extern and cfg in scope.
  const pick =
    "v: { pkg = v.pkg.drvPath; inherit (v) version description greeting; twice = v.util.twice 4; sum = v.util.sum; parent = v.util.parent; utilNames = builtins.attrNames v.util; names = builtins.attrNames v; }";
  const mid = (await viaCpr(w, libUri("mid"), pick)) as Record<string, unknown>;
  assert.deepEqual(mid, nixEval(w.env, `(${pick}) ${viaLocker(w, w.lib.remote, "mid", "2.1.0")}`));
  assert.deepEqual(
    { ...mid, pkg: undefined },
    {
      pkg: undefined,
      version: "2.1.0",
      description: "static settings",
      greeting: "hello from mid 2.1.0",
      twice: 8,
      sum: 4,
      parent: "2.1.0",
      utilNames: ["parent", "sum", "twice"],
      names: ["description", "greeting", "pkg", "util", "version"],
    },
  );

  // compose.as nix, with every direct dependency type: the same .drv through the locker, cpr, and by hand.
  const base = await withCache(w, (cache) =>
    buildAtom({ cache, cwd: w.lib.work, env: w.env, nix: { env: w.env } }, parseAtomUri(libUri("base@=1.0.0"))),
  );
  assert.equal(base.drv, nixEval(w.env, `${viaLocker(w, w.lib.remote, "base", "1.0.0")}.drvPath`));
  assert.equal(readFileSync(base.outputs.out!, "utf8"), "base's own file|flat file|from the tarball|fetched at build time|from git|42\n");
  const byHand = `let
    root = ${fetched(w.lib.remote, "base", "1.0.0")};
    msg = builtins.path { name = "msg"; path = root + "/msg"; };
    flat = builtins.fetchurl { url = "file://${w.src}/flat.txt"; sha256 = ${str(baseLock.deps.find((d) => d.type === "nix")!.hash)}; };
    tar = builtins.fetchTarball { url = "file://${w.src}/t.tar.gz"; sha256 = ${str(baseLock.deps.find((d) => d.type === "nix+tar")!.hash)}; };
    later = import <nix/fetchurl.nix> { url = "file://${w.src}/later.txt"; hash = ${str(baseLock.deps.find((d) => d.type === "nix+src")!.hash)}; };
    repo = builtins.fetchGit { url = ${str(join(w.src, "repo"))}; rev = ${str(gitIn(join(w.src, "repo"), "rev-parse", "HEAD"))}; };
  in (derivation {
    name = "base-1.0.0";
    system = ${str(w.system)};
    builder = "/bin/sh";
    answer = "42";
    args = [ "-c" "read a < \${msg}; read b < \${flat}; read c < \${tar}/inner.txt; read d < \${later}; read e < \${repo}/g.txt; echo \\"$a|$b|$c|$d|$e|$answer\\" > $out" ];
  }).drvPath`;
  assert.equal(base.drv, nixEval(w.env, byHand));

  // A three-level graph across two sets: app → mid (atom-nix) → base.
  const app = await withCache(w, (cache) =>
    buildAtom({ cache, cwd: w.apps.work, env: w.env, nix: { env: w.env } }, parseAtomUri(`${w.apps.remote}::app`)),
  );
  assert.equal(app.drv, nixEval(w.env, `${viaLocker(w, w.apps.remote, "app", "0.3.0")}.drvPath`));
  assert.equal(
    readFileSync(app.outputs.out!, "utf8"),
    `mid built on ${w.system}: base's own file|flat file|from the tarball|fetched at build time|from git|42|hello from mid 2.1.0|42|static settings\n`,
  );
  // The expression is one readable file that says what it evaluates.
  const expr = readFileSync(app.expression, "utf8");
  assert.match(expr, /# app 0\.3\.0, atom commit [0-9a-f]{40}/);
  assert.match(expr, /composer = atoms\."[0-9a-v]{52}-0\.4\.4-[0-9a-f]{12}";/);
  assert.match(expr, /composer = composers\.static;/);
  assert.match(expr, /later = \{ src = import <nix\/fetchurl\.nix>/);
});

test("evaluation: the top lock unifies versions across the graph (docs/formats.md §12.4); a dependency's own lock decides only what the top lock does not name", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix", "nix-prefetch-url", "tar")) return;
  const w = await world();
  // base 1.1.0 is published; mid's own lock still pins base 1.0.0. app now also requires base ^1.1, so its lock
  // (the whole graph, unified) pins base 1.1.0 for mid too.
  writeFileSync(join(w.lib.work, "base", "msg"), "base 1.1's file\n");
  writeFileSync(
    join(w.lib.work, "base", "atom.toml"),
    readFileSync(join(w.lib.work, "base", "atom.toml"), "utf8").replace('version = "1.0.0"', 'version = "1.1.0"'),
  );
  commitAll(w.lib.work, "base 1.1.0");
  cpr(join(w.lib.work, "base"), w.env, "resolve");
  commitAll(w.lib.work, "base 1.1.0: lock");
  cpr(w.lib.work, w.env, "publish", "--all");
  const appToml = join(w.apps.work, "app", "atom.toml");
  writeFileSync(appToml, readFileSync(appToml, "utf8").replace('mid = "^2"', 'mid = "^2"\nbase = "^1.1"'));
  cpr(join(w.apps.work, "app"), w.env, "resolve");
  commitAll(w.apps.work, "app 0.3.0 with base ^1.1");
  writeFileSync(appToml, readFileSync(appToml, "utf8").replace('version = "0.3.0"', 'version = "0.3.1"'));
  cpr(join(w.apps.work, "app"), w.env, "resolve");
  commitAll(w.apps.work, "app 0.3.1");
  cpr(w.apps.work, w.env, "publish", "--all");
  const midLock = parseLock(gitIn(w.lib.remote, "show", "refs/eka/atoms/mid/2.1.0:atom.lock") + "\n", "mid/atom.lock");
  assert.deepEqual(
    midLock.deps.filter((d) => d.type === "atom" && d.label === "base").map((d) => (d as { version: string }).version),
    ["1.0.0"],
  );

  const app = await withCache(w, (cache) =>
    buildAtom({ cache, cwd: w.apps.work, env: w.env, nix: { env: w.env } }, parseAtomUri(`${w.apps.remote}::app@=0.3.1`)),
  );
  assert.match(readFileSync(app.outputs.out!, "utf8"), /^mid built on [^:]+: base 1\.1's file\|/);
  // nix-lock reads mid's own lock, so it builds mid against base 1.0.0: a different derivation.
  assert.notEqual(app.drv, nixEval(w.env, `${viaLocker(w, w.apps.remote, "app", "0.3.1")}.drvPath`));
  assert.doesNotMatch(readFileSync(app.expression, "utf8"), /# base 1\.0\.0,/);
});
