/**
 * The build farm as a cluster: two registry servers sharing one real PostgreSQL database (and one data directory),
 * real `cpr worker` processes with both URLs, real Nix. A worker killed with SIGKILL in the middle of a build: its
 * lease expires and another worker completes the job. Then 50 jobs (25 atoms, evaluated and built) taken by three
 * workers while one server is stopped: the workers go on with the other, and every job ran exactly once (its
 * attempts say so), none lost.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import { hostSystem } from "../../src/nix/store.js";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { sharedPostgres } from "../support/postgres.js";
import { env, initTo, publishTo, resolveAtom } from "../publish/fixture.js";
import { nixEnv } from "./atoms-fixture.js";
import { startWorker, until, type WorkerProcess } from "./farm-fixture.js";

const postgres = sharedPostgres();
const SYSTEM = hostSystem();
const tag = `cluster${randomBytes(4).toString("hex")}`;
const servers: RunningRegistry[] = [];
const workers: WorkerProcess[] = [];

after(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
  for (const s of servers) await s.close().catch(() => undefined);
  await postgres.stop();
});

interface Job {
  id: number;
  kind: string;
  state: string;
  atom: { label: string };
  version: string;
  attempts: number;
  worker: string | null;
}
type JobDetail = Job & { attemptList: { worker: string; outcome: string | null }[] };

function atomFiles(label: string, script: string): Record<string, string> {
  return {
    [`${label}/atom.toml`]: `${atomToml(label, "1.0.0")}\n[compose.as]\nnix = "default.nix"\n`,
    [`${label}/default.nix`]: `derivation {
  name = "cpr-${label}-${tag}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" ${JSON.stringify(script)} ];
}
`,
  };
}

test("two servers on one PostgreSQL, several workers: a killed worker's job completes elsewhere; 50 jobs each run once while a server stops", async (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate", "nix")) return;
  const pgServer = await postgres.get(t);
  if (!pgServer) return;
  const db = await pgServer.createDatabase();

  // The set: `slow` first (its build takes a few seconds), 25 quick atoms later.
  const work = makeRepo({ README: "farm cluster\n" });
  const remote = makeBare();
  // (Nix builds have no PATH: /bin/sleep by its path; the tests' Nix runs without a sandbox.)
  writeFiles(work, atomFiles("slow", "echo slow-build-started; /bin/sleep 6; echo done > $out"));
  await resolveAtom(join(work, "slow"));
  commitAll(work, "slow");
  const { root } = await initTo(work, remote);
  assert.deepEqual((await publishTo(work, remote)).failed, []);

  const dataDir = tempDir("cpr-registry-");
  const start = () =>
    startRegistry({
      dataDir,
      db,
      listen: "127.0.0.1:0",
      sets: [remote],
      refreshSeconds: 0,
      log: false,
      env,
      cacheDir: tempDir("cpr-cache-"),
      builds: { systems: [SYSTEM], sets: null, labels: null, newest: 1, priority: 0 },
      leaseSeconds: 2,
    });
  const s1 = await start();
  servers.push(s1);
  const s2 = await start();
  servers.push(s2);
  const token = await createToken(s1.db, [root], "cluster", "worker");
  const workerEnv = () => ({ ...nixEnv, CPR_CACHE_DIR: tempDir("cpr-cache-"), XDG_CONFIG_HOME: tempDir("cpr-xdg-") });
  const jobs = async (s: RunningRegistry, q = ""): Promise<Job[]> =>
    ((await (await fetch(`${s.url}/api/v1/jobs?limit=1000${q}`)).json()) as { jobs: Job[] }).jobs;
  const job = async (s: RunningRegistry, id: number): Promise<JobDetail> =>
    (await (await fetch(`${s.url}/api/v1/jobs/${id}`)).json()) as JobDetail;
  const outputs = () => workers.map((w, i) => `worker ${i}:\n${w.output()}`).join("\n");

  // ── a worker killed mid-build ──
  const doomed = startWorker([s1.url, s2.url], token, "doomed", workerEnv());
  workers.push(doomed);
  const slowBuild = await until(
    "the slow build running on the doomed worker",
    async () => (await jobs(s2, "&kind=build&state=running")).find((j) => j.atom.label === "slow" && j.worker === "doomed"),
    120,
    outputs,
  );
  // Its log streams while it runs: wait until the builder has started.
  await until(
    "the slow build's log",
    async () => /slow-build-started/.test(await (await fetch(`${s1.url}/api/v1/jobs/${slowBuild.id}/log?follow=0`)).text()),
    60,
    outputs,
  );
  doomed.child.kill("SIGKILL");
  await doomed.exited;
  const w1 = startWorker([s2.url, s1.url], token, "w1", workerEnv());
  workers.push(w1);
  await until("the slow build completed by another worker", async () => (await job(s1, slowBuild.id)).state === "succeeded", 120, outputs);
  const slow = await job(s2, slowBuild.id);
  assert.deepEqual(
    slow.attemptList.map((a) => `${a.worker} ${a.outcome}`),
    ["doomed expired", "w1 succeeded"],
    `${outputs()}\nlog:\n${await (await fetch(`${s1.url}/api/v1/jobs/${slowBuild.id}/log?follow=0&attempt=1`)).text()}`,
  );
  const slowId = (await s1.db.jobs.get(slow.id))!.atomId;
  assert.equal((await s1.db.builds(slowId, SYSTEM)).length, 1, "recorded once");

  // ── 50 jobs, three workers, one server stopped on the way ──
  const labels = Array.from({ length: 25 }, (_, i) => `quick${String(i).padStart(2, "0")}`);
  for (const l of labels) writeFiles(work, atomFiles(l, `echo ${l} > $out`));
  for (const l of labels) await resolveAtom(join(work, l));
  commitAll(work, "25 quick atoms");
  assert.deepEqual((await publishTo(work, remote)).failed, []);
  await Promise.all([s1.refresh(), s2.refresh()]); // both enqueue: the same 25 evaluations, once
  const w2 = startWorker([s1.url, s2.url], token, "w2", workerEnv());
  const w3 = startWorker([s1.url, s2.url], token, "w3", workerEnv(), ["--jobs", "2"]);
  workers.push(w2, w3);
  const quick = async (): Promise<Job[]> => (await jobs(s2)).filter((j) => j.atom.label.startsWith("quick"));
  await until("ten quick jobs done", async () => (await quick()).filter((j) => j.state === "succeeded").length >= 10, 180, outputs);
  await s1.close();
  const done = await until(
    "all 50 quick jobs done",
    async () => {
      const q = await quick();
      return q.length === 50 && q.every((j) => j.state === "succeeded") ? q : null;
    },
    300,
    outputs,
  );
  assert.equal(done.filter((j) => j.kind === "eval").length, 25);
  assert.equal(done.filter((j) => j.kind === "build").length, 25);
  for (const j of done) {
    const d = await job(s2, j.id);
    assert.deepEqual(
      d.attemptList.map((a) => a.outcome),
      ["succeeded"],
      `job ${j.id} (${j.kind} ${j.atom.label}) ran exactly once`,
    );
  }
  for (const l of labels) {
    const id = (await s2.db.jobs.list({ kind: "build" })).find((j) => j.label === l)!.atomId;
    assert.equal((await s2.db.builds(id, SYSTEM)).length, 1, `${l} recorded once`);
  }
  // The workers that preferred the stopped server went on with the other one.
  assert.match(w2.output() + w3.output(), new RegExp(`trying ${s2.url.replace(/[.]/g, "\\.")}`));
  for (const w of [w1, w2, w3]) w.child.kill("SIGTERM");
  for (const w of [w1, w2, w3]) assert.deepEqual(await w.exited, { code: 0, signal: null }, outputs());
});
