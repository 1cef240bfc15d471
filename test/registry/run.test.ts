/**
 * `cpr run` and `cpr shell` end to end: atoms with programs built with real Nix and pushed to a real registry
 * (SQLite, loopback), then run from ANOTHER Nix store with nix-instantiate, nix-build and nix shimmed to fail (and
 * leave a mark), so any evaluation would show: the program's output, arguments and exit code come through, signals
 * are passed on, no out-link is left behind; several atoms in one shell; the errors for no program or several.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { runCprAsync, type CprRun } from "../support/cli.js";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { initTo, publishTo, resolveAtom } from "../publish/fixture.js";
import { env, nixEnv } from "./atoms-fixture.js";

const LABELS = ["greet", "shout", "main"];
let remote: string;
let reg: RunningRegistry;
let token: string;
let shims: string;
let marker: string;
const xdg = tempDir("cpr-xdg-");
const haveNix = () => Boolean(findTool("nix-store") && findTool("nix-instantiate") && findTool("nix"));

/** A derivation whose output holds `bin/<name>` scripts (no sandbox in the tests: /bin tools are at hand). */
function programs(name: string, scripts: Record<string, string>): string {
  const steps = Object.entries(scripts).map(
    ([prog, body]) => `printf '%s\\n' '#!/bin/sh' '${body.replace(/'/g, "'\\''")}' > $out/bin/${prog} && /bin/chmod +x $out/bin/${prog}`,
  );
  return `derivation {
  name = "${name}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" ${JSON.stringify(["/bin/mkdir -p $out/bin", ...steps].join(" && "))} ];
}
`;
}

before(async () => {
  if (!haveNix()) return;
  const work = makeRepo({ README: "programs\n" });
  const atom = (label: string, nix: string) => ({
    [`${label}/atom.toml`]: `${atomToml(label, "0.1.0")}\n[compose.as]\nnix = "default.nix"\n`,
    [`${label}/default.nix`]: nix,
  });
  writeFiles(work, {
    ...atom("greet", programs("cpr-run-greet", { greet: 'echo "greet: $#: $*"; exit 3' })),
    // Two programs and no meta.mainProgram: cpr run needs --bin.
    ...atom("shout", programs("cpr-run-shout", { shout: 'echo "SHOUT $*"; exit 5', whisper: 'echo "whisper $*"' })),
    // meta.mainProgram (not in the .drv) is read when the build is recorded, and chooses among several programs.
    ...atom(
      "main",
      `(${programs("cpr-run-main", {
        one: "echo one",
        two: "echo two",
        sleeper: "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do /bin/sleep 0.1; done",
      }).trim()}) // { meta.mainProgram = "two"; }\n`,
    ),
  });
  for (const l of LABELS) await resolveAtom(join(work, l));
  commitAll(work, "programs");
  remote = makeBare();
  const init = await initTo(work, remote);
  const pub = await publishTo(work, remote);
  if (pub.failed.length) throw new Error(JSON.stringify(pub.failed));
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
  });
  token = await createToken(reg.db, [init.root], "run tests");
  shims = tempDir("cpr-shims-");
  marker = join(tempDir("cpr-marker-"), "evaluations");
  for (const name of ["nix-instantiate", "nix-build", "nix"]) {
    writeFileSync(join(shims, name), `#!/bin/sh\necho "$0 $*" >> ${marker}\necho "shim: ${name} must not run" >&2\nexit 97\n`);
    chmodSync(join(shims, name), 0o755);
  }
  // Two builds at a time (each evaluates; the machine is small).
  for (let i = 0; i < LABELS.length; i += 2) {
    const built = await Promise.all(
      LABELS.slice(i, i + 2).map((l) => cpr(["build", `${remote}::${l}`, "--push", reg.url, "--token", token, "-q"])),
    );
    for (const b of built) if (b.code !== 0) throw new Error(b.stderr);
  }
});

after(async () => {
  await reg?.close();
});

/** The real CLI; `noEval` puts the failing shims first on PATH (the real nix-store stays reachable). */
function cpr(args: string[], opts: { cwd?: string; noEval?: boolean; extraEnv?: NodeJS.ProcessEnv } = {}): Promise<CprRun> {
  return runCprAsync(args, { cwd: opts.cwd ?? tempDir("cpr-cwd-"), env: cprEnv(opts) });
}

function cprEnv(opts: { noEval?: boolean; extraEnv?: NodeJS.ProcessEnv }): NodeJS.ProcessEnv {
  const path = opts.noEval ? `${shims}:${nixEnv.PATH}` : nixEnv.PATH;
  return { ...nixEnv, PATH: path, CPR_CACHE_DIR: tempDir("cpr-cache-"), XDG_CONFIG_HOME: xdg, ...opts.extraEnv };
}

const evaluations = () => (existsSync(marker) ? readFileSync(marker, "utf8") : "");
const from = () => ["--registry", reg.url, "--key", reg.publicKey, "--store", tempDir("cpr-store-")];

test("cpr run: the program's output, arguments and exit code, with no evaluation and no out-link", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const cwd = tempDir("cpr-run-");
  const r = await cpr(["run", `${remote}::greet`, ...from(), "--", "a", "b c", "--json"], { cwd, noEval: true });
  assert.equal(r.stdout, "greet: 3: a b c --json\n", r.stderr);
  assert.equal(r.code, 3, "the program's exit code");
  assert.match(r.stderr, /running greet 0\.1\.0: .*\/nix\/store\/[0-9a-z]{32}-cpr-run-greet\/bin\/greet/);
  assert.equal(evaluations(), "", "no nix-instantiate, nix-build or nix ran");
  assert.deepEqual(readdirSync(cwd), [], "no out-link left behind");

  // Several programs: an error listing them; --bin chooses one (a bare name, found in the registry's catalogue,
  // with a requirement; arguments without `--`).
  const multi = await cpr(["run", "shout", ...from()], { noEval: true });
  assert.equal(multi.code, 1);
  assert.match(multi.stderr, /shout 0\.1\.0 has several programs in .*\/bin: shout, whisper/);
  assert.match(multi.stderr, /--bin NAME/);
  const named = await cpr(["run", "shout@^0.1", "--bin", "shout", ...from(), "hi"], { noEval: true });
  assert.equal(named.stdout, "SHOUT hi\n", named.stderr);
  assert.equal(named.code, 5);
  const none = await cpr(["run", "shout", "--bin", "three", ...from()], { noEval: true });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /has no program 'three' in bin\/\n.*\n  hint: its programs: shout, whisper/);
  // meta.mainProgram from the build record chooses; --bin still overrides it.
  const main = await cpr(["run", "main", ...from()], { noEval: true });
  assert.equal(main.stdout, "two\n", main.stderr);
  const mainOne = await cpr(["run", "main", "--bin", "one", ...from()], { noEval: true });
  assert.equal(mainOne.stdout, "one\n", mainOne.stderr);
  assert.equal(evaluations(), "");
});

test("cpr shell: two atoms in one shell, a command that uses both", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const cwd = tempDir("cpr-shell-");
  const r = await cpr(["shell", "greet", `${remote}::shout@0.1`, ...from(), "--command", 'greet x; whisper z; shout "$(greet y)"'], {
    cwd,
    noEval: true,
    extraEnv: { SHELL: "/bin/sh" },
  });
  assert.equal(r.stdout, "greet: 1: x\nwhisper z\nSHOUT greet: 1: y\n", r.stderr);
  assert.equal(r.code, 5, "the command's exit code (shout's)");
  assert.match(r.stderr, /greet 0\.1\.0, shout 0\.1\.0: 2 bin\/ directories on PATH/);
  assert.equal(evaluations(), "");
  assert.deepEqual(readdirSync(cwd), []);
  // An atom nobody built and no --build: nothing runs.
  const missing = await cpr(["shell", "greet", "nothing-here", ...from(), "--command", "true"], { noEval: true });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no atom labelled 'nothing-here'/);
});

test("findProgram: no bin/ at all, or an empty one, is an error saying so", async () => {
  const { findProgram } = await import("../../src/registry/get.js");
  const root = tempDir("cpr-root-");
  const p = "/nix/store/00000000000000000000000000000000-data";
  const atom = { label: "data", version: "0.1.0", id: "x", set: "y", rev: "z", system: "s", drv: "d", outputs: { out: p } };
  const installed = { ...atom, registry: null, built: false, paths: [p], mainProgram: null };
  await assert.rejects(
    findProgram(installed, (sp) => join(root, sp)),
    /data 0\.1\.0 has no program to run: no output has a non-empty bin\/ directory/,
  );
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(root, p, "bin"), { recursive: true });
  await assert.rejects(
    findProgram(installed, (sp) => join(root, sp)),
    /no output has a non-empty bin\//,
  );
  writeFileSync(join(root, p, "bin", "only"), "");
  assert.equal(await findProgram(installed, (sp) => join(root, sp)), join(root, p, "bin", "only"));
  await assert.rejects(
    findProgram({ ...installed, mainProgram: "gone" }, (sp) => join(root, sp)),
    /has no program 'gone' in bin\//,
  );
});
