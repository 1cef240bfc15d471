/**
 * The build farm end to end, as operators run it: a registry server with a build policy indexing a published set,
 * real `cpr worker` processes (real Nix) taking its jobs, and `cpr get` installing what they built into ANOTHER
 * Nix store with shims named nix-instantiate, nix-build and nix first on PATH that fail loudly, so any evaluation
 * on the get side would show. Also: a derivation already in the cache recorded without a build, a failing build
 * with its log, `cpr jobs` (list, show, log, retry), token scopes, SIGTERM.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { hostSystem } from "../../src/nix/store.js";
import { atomId as atomIdOf } from "../../src/protocol/id.js";
import { runCprAsync, type CprRun } from "../support/cli.js";
import { atomToml, commitAll, tempDir, writeFiles } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { publishTo, resolveAtom } from "../publish/fixture.js";
import { buildableSet, env, nixEnv, type BuildableSet } from "./atoms-fixture.js";
import { startWorker as startFarmWorker, until, type WorkerProcess } from "./farm-fixture.js";

const SYSTEM = hostSystem();
let set: BuildableSet;
let reg: RunningRegistry;
let writeToken: string;
let workerToken: string;
let shims: string;
let marker: string;
const xdg = tempDir("cpr-xdg-");
const tag = `farm${randomBytes(4).toString("hex")}`;

before(async () => {
  if (!findTool("nix-store") || !findTool("nix-instantiate") || !findTool("nix")) return;
  set = await buildableSet({ tag, withNewer: true, more: ["0.3.0"], mainProgram: "hello" });
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
    builds: { systems: [SYSTEM], sets: null, labels: null, newest: "all", priority: 0 },
    leaseSeconds: 5,
  });
  writeToken = await createToken(reg.db, [set.root], "farm tests");
  workerToken = await createToken(reg.db, [set.root], "farm worker", "worker");
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

function cprEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...nixEnv, CPR_CACHE_DIR: tempDir("cpr-cache-"), XDG_CONFIG_HOME: xdg, NO_COLOR: "1", ...extra };
}

function cpr(args: string[], opts: { noEval?: boolean } = {}): Promise<CprRun> {
  return runCprAsync(args, {
    cwd: tempDir("cpr-cwd-"),
    env: cprEnv(opts.noEval ? { PATH: `${shims}:${nixEnv.PATH}` } : {}),
  });
}

function startWorker(urls: readonly string[], token: string, name: string, extra: string[] = []): WorkerProcess {
  return startFarmWorker(urls, token, name, cprEnv(), extra);
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${reg.url}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return (await res.json()) as T;
}

interface Job {
  id: number;
  kind: string;
  state: string;
  atom: { label: string };
  version: string;
  attempts: number;
  buildId: number | null;
  error: string | null;
}

test("a policy and two workers build every version with no manual step; cpr get installs each with no evaluation", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  // The policy enqueued an evaluation per version at the first index pass: dep 0.1.0 and hello 0.1.0, 0.2.0, 0.3.0.
  const queued = (await api<{ jobs: Job[] }>("/api/v1/jobs?state=queued")).jobs;
  assert.deepEqual(queued.map((j) => `${j.kind} ${j.atom.label} ${j.version}`).sort(), [
    "eval dep 0.1.0",
    "eval hello 0.1.0",
    "eval hello 0.2.0",
    "eval hello 0.3.0",
  ]);
  // A write token is not a worker token: the worker is refused and says why.
  const refused = await cpr(["worker", "--registry", reg.url, "--token", writeToken, "--exit-when-idle"]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /not a worker token/);

  const w1 = startWorker([reg.url], workerToken, "w1");
  const w2 = startWorker([reg.url], workerToken, "w2");
  const logs = () => `w1:\n${w1.output()}\nw2:\n${w2.output()}`;
  try {
    await until(
      "every version built and recorded",
      async () => {
        for (const v of ["0.1.0", "0.2.0", "0.3.0"]) {
          const r = await fetch(`${reg.url}/api/v1/resolve/${idOf("hello")}/${encodeURIComponent(`=${v}`)}?system=${SYSTEM}`);
          if (r.status !== 200) return false;
        }
        return true;
      },
      300,
      logs,
    );
  } finally {
    w1.child.kill("SIGTERM");
    w2.child.kill("SIGTERM");
  }
  // SIGTERM: both workers stop and exit 0.
  assert.deepEqual(await w1.exited, { code: 0, signal: null }, logs());
  assert.deepEqual(await w2.exited, { code: 0, signal: null }, logs());
  const all = (await api<{ jobs: Job[] }>("/api/v1/jobs?limit=100")).jobs;
  const hellos = all.filter((j) => j.atom.label === "hello");
  assert.deepEqual(hellos.map((j) => `${j.kind} ${j.version} ${j.state}`).sort(), [
    "build 0.1.0 succeeded",
    "build 0.2.0 succeeded",
    "build 0.3.0 succeeded",
    "eval 0.1.0 succeeded",
    "eval 0.2.0 succeeded",
    "eval 0.3.0 succeeded",
  ]);
  for (const j of hellos) assert.equal(j.attempts, 1, `job ${j.id} ran once`);
  // The evaluation's meta.mainProgram reaches the build record through the build job (what cpr run runs); dep
  // declares none.
  for (const v of ["0.1.0", "0.2.0", "0.3.0"])
    assert.equal(
      (await api<{ mainProgram?: string }>(`/api/v1/resolve/${idOf("hello")}/${encodeURIComponent(`=${v}`)}?system=${SYSTEM}`)).mainProgram,
      "hello",
    );
  assert.equal(
    (await api<{ mainProgram?: string }>(`/api/v1/resolve/${idOf("dep")}/${encodeURIComponent("=0.1.0")}?system=${SYSTEM}`)).mainProgram,
    undefined,
  );
  assert.match(w1.output() + w2.output(), /worker w1/);

  // cpr get, for each version, into a fresh store, with evaluation impossible.
  for (const v of ["0.1.0", "0.2.0", "0.3.0"]) {
    const store = tempDir("cpr-store-");
    const g = await cpr(
      ["get", `${set.remote}::hello@=${v}`, "--registry", reg.url, "--key", reg.publicKey, "--store", store, "--no-out-link", "--json"],
      {
        noEval: true,
      },
    );
    assert.equal(g.code, 0, g.stderr);
    const doc = JSON.parse(g.stdout) as { version: string; outputs: { out: string } };
    assert.equal(doc.version, v);
    assert.match(
      readFileSync(join(store, doc.outputs.out), "utf8"),
      new RegExp(`^hello ${v.replace(/\./g, "\\.")}\\|dep message ${tag}\\|`),
    );
  }
  assert.equal(existsSync(marker) ? readFileSync(marker, "utf8") : "", "", "no nix-instantiate, nix-build or nix ran");

  // The farm's metrics.
  const metrics = await (await fetch(`${reg.url}/metrics`)).text();
  assert.match(metrics, /cpr_registry_jobs\{state="succeeded"\} (\d+)/);
  assert.match(metrics, /cpr_registry_job_duration_seconds_count\{kind="build",outcome="succeeded"\} [1-9]/);
  assert.match(metrics, /cpr_registry_live_workers [0-9]/);
});

function idOf(label: string): string {
  return atomIdOf(set.root, label);
}

test("a derivation already in the cache is recorded without a build; a failing build is recorded with its log, shown and retried", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  // dep 0.1.1: the same files as dep 0.1.0, so the same derivation, whose output the cache holds already.
  // broken 1.0.0: its builder fails.
  writeFiles(set.work, {
    "dep/atom.toml": `${atomToml("dep", "0.1.1")}\n[compose.as]\nnix = "default.nix"\n`,
    "broken/atom.toml": `${atomToml("broken", "1.0.0")}\n[compose.as]\nnix = "default.nix"\n`,
    "broken/default.nix": `derivation {
  name = "cpr-broken-${tag}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "echo the-build-log-says-${tag}; echo the-build-fails >&2; exit 3" ];
}
`,
  });
  await resolveAtom(join(set.work, "dep"));
  await resolveAtom(join(set.work, "broken"));
  commitAll(set.work, "dep 0.1.1, broken 1.0.0");
  const published = await publishTo(set.work, set.remote);
  assert.deepEqual(published.failed, []);
  await reg.refresh();

  // The wire refuses another protocol version, saying so.
  const wrong = await fetch(`${reg.url}/api/v1/jobs/claim`, {
    method: "POST",
    headers: { authorization: `Bearer ${workerToken}`, "content-type": "application/json" },
    body: JSON.stringify({ protocol: 2, worker: "future", systems: [SYSTEM] }),
  });
  assert.equal(wrong.status, 400);
  const wrongBody = (await wrong.json()) as { code: string; error: string; protocol: number };
  assert.equal(wrongBody.code, "farm.protocol");
  assert.equal(wrongBody.protocol, 1);
  assert.match(wrongBody.error, /speaks protocol 2, this cpr speaks worker protocol 1/);

  // cpr get --wait waits for the queued version, then installs it; without --wait it says where it stands.
  const notYet = await cpr([
    "get",
    `${set.remote}::dep@=0.1.1`,
    "--registry",
    reg.url,
    "--key",
    reg.publicKey,
    "--store",
    tempDir("cpr-store-"),
    "--no-out-link",
  ]);
  assert.equal(notYet.code, 1);
  assert.match(notYet.stderr, /no build of dep for .* is recorded yet: dep 0\.1\.1 for .*: evaluation queued/);
  assert.match(notYet.stderr, /--wait/);
  const waiting = cpr(
    [
      "get",
      `${set.remote}::dep@=0.1.1`,
      "--registry",
      reg.url,
      "--key",
      reg.publicKey,
      "--store",
      tempDir("cpr-store-"),
      "--no-out-link",
      "--wait",
    ],
    {
      noEval: true,
    },
  );
  await new Promise((r) => setTimeout(r, 1500));
  const w = startWorker([reg.url], workerToken, "w3", ["--exit-when-idle"]);
  const exit = await w.exited;
  assert.equal(exit.code, 0, w.output());
  const waited = await waiting;
  assert.equal(waited.code, 0, waited.stderr);
  assert.match(waited.stderr, /waiting: dep 0\.1\.1 for .*: evaluation (queued|running)/);
  assert.match(waited.stdout, /-cpr-dep-/);
  const jobs = (await api<{ jobs: Job[] }>("/api/v1/jobs?limit=100")).jobs;
  const depJobs = jobs.filter((j) => j.atom.label === "dep" && j.version === "0.1.1");
  assert.deepEqual(
    depJobs.map((j) => `${j.kind} ${j.state}`),
    ["eval succeeded"],
    "evaluated, recorded, and no build job",
  );
  assert.ok(depJobs[0]!.buildId !== null);
  const dep0 = jobs.find((j) => j.atom.label === "dep" && j.version === "0.1.0" && j.buildId !== null)!;
  const builds = await reg.db.builds(idOf("dep"), SYSTEM);
  assert.equal(builds.find((b) => b.version === "0.1.1")?.drv, builds.find((b) => b.buildId === dep0.buildId)?.drv, "the same derivation");

  const broken = jobs.find((j) => j.atom.label === "broken" && j.kind === "build");
  assert.ok(broken, `a build job for broken: ${JSON.stringify(jobs.filter((j) => j.atom.label === "broken"))}`);
  assert.equal(broken.state, "failed");
  assert.match(broken.error ?? "", /failed/);

  // cpr jobs log shows the build's own output; cpr jobs list and show see the failure.
  const log = await cpr(["jobs", "log", String(broken.id), "--registry", reg.url]);
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, new RegExp(`the-build-log-says-${tag}`));
  assert.match(log.stdout, /the-build-fails/);
  const listed = await cpr(["jobs", "list", "--registry", reg.url, "--state", "failed", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as { jobs: Job[] }).jobs.map((j) => j.id),
    [broken.id],
  );
  const shown = await cpr(["jobs", "show", String(broken.id), "--registry", reg.url]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /attempt 1 on w3: failed/);

  // cpr get reports the failure with the end of the log.
  const g = await cpr([
    "get",
    `${set.remote}::broken`,
    "--registry",
    reg.url,
    "--key",
    reg.publicKey,
    "--store",
    tempDir("cpr-store-"),
    "--no-out-link",
  ]);
  assert.equal(g.code, 1);
  assert.match(g.stderr, /build failed/);
  assert.match(g.stderr, new RegExp(`the-build-log-says-${tag}`));
  assert.match(g.stderr, new RegExp(`cpr jobs retry ${broken.id}`));

  // Retry: a worker token may not, a write token may; the job runs again (and fails again).
  const byWorker = await cpr(["jobs", "retry", String(broken.id), "--registry", reg.url, "--token", workerToken]);
  assert.equal(byWorker.code, 1);
  assert.match(byWorker.stderr, /worker token may not/);
  const retried = await cpr(["jobs", "retry", String(broken.id), "--registry", reg.url, "--token", writeToken, "--json"]);
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal((JSON.parse(retried.stdout) as Job).state, "queued");
  const w4 = startWorker([reg.url], workerToken, "w4", ["--exit-when-idle"]);
  assert.equal((await w4.exited).code, 0, w4.output());
  const again = await api<Job & { attemptList: { worker: string; outcome: string }[] }>(`/api/v1/jobs/${broken.id}`);
  assert.equal(again.state, "failed");
  assert.deepEqual(
    again.attemptList.map((a) => `${a.worker} ${a.outcome}`),
    ["w3 failed", "w4 failed"],
  );
  // A worker token may not refresh sets either.
  const refresh = await fetch(`${reg.url}/api/v1/sets/${set.root}/refresh`, {
    method: "POST",
    headers: { authorization: `Bearer ${workerToken}` },
  });
  assert.equal(refresh.status, 403);
});
