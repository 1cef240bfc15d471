/**
 * Build farm benchmark (the build farm issue): `npm run bench -- --only farm`, or `node dist/bench/farm.js [--quick]
 * [--write-readme]`.
 *
 * 1. Throughput. N atoms (default 200; --quick 40), each a small real build (/bin/sh writing a few kilobytes), are
 *    published at once to a set indexed by a registry with the policy on (`--build SYSTEM`). The farm with one and
 *    with two `cpr worker` processes (each its own set, so nothing is built twice) against the baseline: a
 *    sequential loop over the same atoms doing exactly what `cpr build --push` does (evaluate, `nix-store
 *    --realise`, upload the closure, record the build) in one process, into the same kind of registry, in the same
 *    run. Figures: wall time from the first claim (the loop's first evaluation) to the last recorded build, and
 *    builds per minute.
 * 2. Claim latency with 10,000 jobs queued (--quick 2,000), on SQLite and PostgreSQL: a registry with that many
 *    queued evaluation jobs, claims over HTTP one after the other (claim-to-start: the claim round trip, which is the
 *    one-statement claim plus HTTP), each completed at once with outputs already in the cache, so that completing
 *    records the build (finish-to-recorded: the complete round trip). p50 and p99.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { BenchError, CPR_BIN, benchEnv, envInt, findTool, git, log, REPO_ROOT, rewriteReadmeSection, run, scratchRoot } from "./lib.js";
import { startPostgres } from "./servers.js";
import type { RegistryFigure } from "./registry.js";

export interface FarmBenchConfig {
  readonly quick: boolean;
  readonly atoms: number;
  readonly queued: number;
  readonly claims: number;
}

export function farmConfig(quick: boolean): FarmBenchConfig {
  return {
    quick,
    atoms: envInt("CPR_BENCH_FARM_ATOMS", quick ? 40 : 200),
    queued: envInt("CPR_BENCH_FARM_QUEUED", quick ? 2000 : 10000),
    claims: envInt("CPR_BENCH_FARM_CLAIMS", quick ? 200 : 500),
  };
}

const NIX_CONFIG = "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command";

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** A set of `n` buildable atoms (one publish), each with an atom.lock (one resolved, copied: no dependencies). */
async function makeSet(dir: string, n: number, salt: string, env: NodeJS.ProcessEnv): Promise<{ remote: string; root: string }> {
  const work = join(dir, "work");
  const remote = join(dir, "remote.git");
  mkdirSync(work, { recursive: true });
  await git(work, ["init", "-q", "-b", "main"], { env });
  await run("git", ["init", "-q", "--bare", remote], { env });
  const label = (i: number) => `pkg${String(i).padStart(4, "0")}`;
  for (let i = 0; i < n; i++) {
    const d = join(work, label(i));
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "atom.toml"), `[package]\nlabel = "${label(i)}"\nversion = "1.0.0"\n\n[compose.as]\nnix = "default.nix"\n`);
    writeFileSync(
      join(d, "default.nix"),
      `derivation {
  name = "bench-${label(i)}-${salt}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "i=0; while [ $i -lt 200 ]; do echo ${label(i)} line $i; i=$((i+1)); done > $out" ];
}
`,
    );
  }
  await git(work, ["add", "-A"], { env });
  await git(work, ["commit", "-q", "-m", "atoms"], { env });
  const init = await run(CPR_BIN, ["init", "--remote", remote, "--json"], { cwd: work, env });
  const root = (JSON.parse(init.stdout) as { root: string }).root;
  // One lock, resolved once: with no dependencies every atom's lock is the same.
  await run(CPR_BIN, ["resolve"], { cwd: join(work, label(0)), env });
  const { readFileSync } = await import("node:fs");
  const lock = readFileSync(join(work, label(0), "atom.lock"), "utf8");
  for (let i = 1; i < n; i++) writeFileSync(join(work, label(i), "atom.lock"), lock);
  await git(work, ["add", "-A"], { env });
  await git(work, ["commit", "-q", "-m", "locks"], { env });
  await run(CPR_BIN, ["publish", "--all", "--remote", remote], { cwd: work, env, timeoutMs: 20 * 60_000 });
  return { remote, root };
}

interface Registry {
  url: string;
  close(): Promise<void>;
  db: import("../src/serve/db.js").RegistryDb;
}

async function registry(
  dir: string,
  db: string | undefined,
  sets: string[],
  system: string | null,
  env: NodeJS.ProcessEnv,
): Promise<Registry> {
  const { startRegistry } = await import("../src/serve/serve.js");
  return startRegistry({
    dataDir: join(dir, "registry"),
    ...(db ? { db } : {}),
    listen: "127.0.0.1:0",
    sets,
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: join(dir, "cache"),
    builds: { systems: system ? [system] : [], sets: null, labels: null, newest: 1, priority: 0 },
  });
}

/** Waits until `n` builds are recorded; returns when (ms since the epoch). */
async function untilBuilt(reg: Registry, n: number, timeoutMs: number, what: string): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if ((await reg.db.countBuilds()) >= n) return Date.now();
    if (Date.now() > end)
      throw new BenchError(`${what}: only ${await reg.db.countBuilds()} of ${n} builds recorded after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function farmRun(dir: string, n: number, workers: number, system: string, env: NodeJS.ProcessEnv): Promise<number> {
  const set = await makeSet(join(dir, "set"), n, randomBytes(4).toString("hex"), env);
  const reg = await registry(dir, undefined, [set.remote], system, env);
  try {
    const { createToken } = await import("../src/serve/tokens.js");
    const token = await createToken(reg.db, [set.root], "bench", "worker");
    const started = Date.now();
    const procs = Array.from({ length: workers }, (_, i) =>
      run(
        CPR_BIN,
        [
          "worker",
          "--registry",
          reg.url,
          "--token",
          token,
          "--name",
          `bench${i}`,
          "--exit-when-idle",
          "--poll",
          "1",
          ...(process.env.CPR_BENCH_FARM_DEBUG ? [] : ["-q"]),
        ],
        {
          env: { ...env, CPR_CACHE_DIR: join(dir, `worker-cache-${i}`) },
          timeoutMs: 60 * 60_000,
        },
      ),
    );
    const done = await untilBuilt(reg, n, 60 * 60_000, `farm with ${workers} worker(s)`);
    const results = await Promise.all(procs);
    if (process.env.CPR_BENCH_FARM_DEBUG) for (const r of results) process.stderr.write(r.stderr);
    const failed = (await reg.db.jobs.countByState()).failed;
    if (failed) throw new BenchError(`farm with ${workers} worker(s): ${failed} job(s) failed`);
    return done - started;
  } finally {
    await reg.close();
  }
}

async function loopRun(dir: string, n: number, system: string, env: NodeJS.ProcessEnv): Promise<number> {
  const set = await makeSet(join(dir, "set"), n, randomBytes(4).toString("hex"), env);
  const reg = await registry(dir, undefined, [set.remote], null, env);
  try {
    const { createToken } = await import("../src/serve/tokens.js");
    const token = await createToken(reg.db, [set.root], "bench");
    const { Cache } = await import("../src/git/cache.js");
    const { buildAtom } = await import("../src/build/build.js");
    const { pushBuild } = await import("../src/registry/push.js");
    const { RegistryClient } = await import("../src/registry/client.js");
    const { parseAtomUri } = await import("../src/protocol/uri.js");
    const cache = await Cache.open({ dir: join(dir, "loop-cache"), env });
    const client = new RegistryClient(reg.url, { token, env });
    try {
      const started = Date.now();
      for (let i = 0; i < n; i++) {
        const uri = parseAtomUri(`${set.remote}::pkg${String(i).padStart(4, "0")}`);
        const built = await buildAtom({ cache, cwd: dir, env, system, nix: { env } }, uri);
        await pushBuild(client, built, { nix: { env } });
      }
      const done = await untilBuilt(reg, n, 60_000, "loop");
      return done - started;
    } finally {
      cache.close();
    }
  } finally {
    await reg.close();
  }
}

/** Claim and complete latencies (ms) with `queued` jobs in the queue. */
async function claimLatency(
  dir: string,
  dbUrl: string | undefined,
  cfg: FarmBenchConfig,
  env: NodeJS.ProcessEnv,
): Promise<{ claim: number[]; complete: number[] }> {
  const reg = await registry(dir, dbUrl, [], null, env);
  try {
    const { db } = reg;
    const root = "a".repeat(40);
    const { atomIdsOf } = await import("../src/protocol/id.js");
    const idOf = atomIdsOf(root);
    await db.upsertSet(root, ["file:///nowhere.git"]);
    const atoms = Math.ceil(cfg.queued / 10);
    const atomRows = Array.from({ length: atoms }, (_, i) => ({ id: idOf(`a${i}`), root, label: `a${i}`, description: null, tags: [] }));
    const versions = atomRows.flatMap((a) =>
      Array.from({ length: 10 }, (_, v) => ({ id: a.id, version: `1.0.${v}`, rev: "1".repeat(40), origin: null, manifest: "" })),
    );
    await db.recordIndex(root, atomRows, versions, Date.now());
    const jobs = versions.slice(0, cfg.queued).map((v, i) => ({
      kind: "eval" as const,
      atomId: v.id,
      root,
      label: atomRows[Math.floor(i / 10)]!.label,
      version: v.version,
      rev: v.rev,
      system: "x86_64-linux",
      priority: 0,
    }));
    for (let i = 0; i < jobs.length; i += 1000) await db.jobs.enqueue(jobs.slice(i, i + 1000), Date.now());
    // One output path, already in the cache: completing an evaluation then records the build at once.
    const hash = "0".repeat(32).replace(/0/g, () => "abcdfghijklmnpqrsvwxyz0123456789"[Math.floor(Math.random() * 32)]!);
    const out = `/nix/store/${hash}-bench-out`;
    await db.insertPath({
      hashPart: hash,
      storePath: out,
      narHash: `sha256:${"0".repeat(52)}`,
      narSize: 1,
      fileHash: `sha256:${"0".repeat(52)}`,
      fileSize: 1,
      compression: "none",
      url: `nar/${"0".repeat(52)}.nar`,
      references: [],
      deriver: null,
      sigs: [],
      narinfo: "",
      createdAt: Date.now(),
    });
    const { createToken } = await import("../src/serve/tokens.js");
    const token = await createToken(db, [root], "bench", "worker");
    const { RegistryClient } = await import("../src/registry/client.js");
    const client = new RegistryClient(reg.url, { token, env });
    const drv = `/nix/store/${hash.replace(/^./, "x")}-bench.drv`;
    const claim: number[] = [];
    const complete: number[] = [];
    for (let i = 0; i < cfg.claims + 20; i++) {
      const t0 = performance.now();
      const { job } = await client.claim("bench", ["x86_64-linux"]);
      const t1 = performance.now();
      if (!job) throw new BenchError("the queue ran empty");
      const r = await client.completeJob(job.id, job.lease, drv, { out }, null);
      const t2 = performance.now();
      if (r.buildId === null) throw new BenchError("completing did not record the build");
      if (i >= 20) {
        claim.push(t1 - t0);
        complete.push(t2 - t1);
      }
    }
    return { claim, complete };
  } finally {
    await reg.close();
  }
}

export async function benchFarm(
  cfg: FarmBenchConfig,
): Promise<{ figures: RegistryFigure[]; errors: string[]; details: Record<string, unknown> }> {
  const figures: RegistryFigure[] = [];
  const errors: string[] = [];
  const details: Record<string, unknown> = { atoms: cfg.atoms, queued: cfg.queued, claims: cfg.claims };
  const scratch = join(scratchRoot(), `farm-${Date.now()}`);
  const env = benchEnv({ NIX_CONFIG, CPR_CACHE_DIR: join(scratch, "cache"), XDG_CONFIG_HOME: join(scratch, "xdg") });
  const { hostSystem } = await import("../src/nix/store.js");
  const system = hostSystem();

  const parts = (process.env.CPR_BENCH_FARM_PARTS ?? "throughput,latency").split(",");
  if (!parts.includes("throughput")) log("farm: throughput not measured (CPR_BENCH_FARM_PARTS)");
  else if (!findTool("nix-store") || !findTool("nix-instantiate")) errors.push("farm: Nix (nix-store, nix-instantiate) is not installed");
  else {
    try {
      log(`farm: sequential loop over ${cfg.atoms} atoms`);
      const loop = await loopRun(join(scratch, "loop"), cfg.atoms, system, env);
      log(`farm: loop ${(loop / 1000).toFixed(1)} s; farm with one worker`);
      const one = await farmRun(join(scratch, "one"), cfg.atoms, 1, system, env);
      log(`farm: one worker ${(one / 1000).toFixed(1)} s; farm with two workers`);
      const two = await farmRun(join(scratch, "two"), cfg.atoms, 2, system, env);
      log(`farm: two workers ${(two / 1000).toFixed(1)} s`);
      details.wallMs = { loop, one, two };
      const base = { unit: "ms" as const, baselineName: "sequential build + push loop", ratioKind: "cost" as const };
      figures.push({
        ...base,
        id: "farm.one-worker",
        title: `farm, 1 worker: ${cfg.atoms} atoms to the last recorded build`,
        target: { op: "<=", value: 1.1 },
        samples: { cpr: [one], baseline: [loop] },
        note: `${((cfg.atoms / one) * 60_000).toFixed(0)} builds/min against the loop's ${((cfg.atoms / loop) * 60_000).toFixed(0)}; every atom is an evaluation job, then a build job (which realises the derivation the evaluation left in the store; another machine's worker evaluates again, as cpr build does)`,
      });
      figures.push({
        ...base,
        id: "farm.two-workers",
        title: `farm, 2 workers: ${cfg.atoms} atoms to the last recorded build`,
        target: null,
        samples: { cpr: [two], baseline: [loop] },
        note: `${((cfg.atoms / two) * 60_000).toFixed(0)} builds/min; two workers on this machine's cores share one Nix store`,
      });
    } catch (e) {
      errors.push(`farm throughput: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  for (const kind of parts.includes("latency") ? (["sqlite", "postgres"] as const) : []) {
    try {
      let dbUrl: string | undefined;
      let stop: (() => Promise<void>) | null = null;
      if (kind === "postgres") {
        const pg = await startPostgres(join(scratch, "pg"));
        stop = pg.stop;
        const c = new (await import("pg")).default.Client({ connectionString: pg.url });
        await c.connect();
        await c.query("CREATE DATABASE farm");
        await c.end();
        dbUrl = pg.url.replace(/\/[^/?]*(\?|$)/, "/farm$1");
      }
      try {
        log(`farm: claim latency on ${kind} with ${cfg.queued} queued jobs`);
        const { claim, complete } = await claimLatency(join(scratch, `lat-${kind}`), dbUrl, cfg, env);
        details[`latency-${kind}`] = {
          claimP50: percentile(claim, 50),
          claimP99: percentile(claim, 99),
          completeP50: percentile(complete, 50),
          completeP99: percentile(complete, 99),
        };
        figures.push({
          id: `farm.claim-p99-${kind}`,
          title: `claim-to-start p99, ${cfg.queued} jobs queued (${kind})`,
          unit: "ms",
          baselineName: "p50",
          ratioKind: "cost",
          ratioLabel: "p99 ÷ p50",
          target: null,
          absoluteTarget: { op: "<", value: 50, text: "< 50 ms" },
          samples: { cpr: [percentile(claim, 99)], baseline: [percentile(claim, 50)] },
          note: `${claim.length} claims over HTTP, one after the other, each a one-statement claim; p50 ${percentile(claim, 50).toFixed(2)} ms`,
        });
        figures.push({
          id: `farm.recorded-p99-${kind}`,
          title: `finish-to-recorded p99 (${kind})`,
          unit: "ms",
          baselineName: "p50",
          ratioKind: "cost",
          ratioLabel: "p99 ÷ p50",
          target: null,
          samples: { cpr: [percentile(complete, 99)], baseline: [percentile(complete, 50)] },
          note: `completing a job whose outputs are in the cache: the job's success and the build record in one transaction; p50 ${percentile(complete, 50).toFixed(2)} ms`,
        });
      } finally {
        await stop?.();
      }
    } catch (e) {
      errors.push(`farm latency (${kind}): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { figures, errors, details };
}

export async function farmMarkdown(figures: readonly RegistryFigure[], cfg: FarmBenchConfig, rev: string): Promise<string> {
  const { registryMarkdown } = await import("./registry.js");
  return registryMarkdown(figures, { quick: cfg.quick } as Parameters<typeof registryMarkdown>[1], rev);
}

// ---------------------------------------------------------------------------------------------------------------

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const cfg = farmConfig(args.includes("--quick"));
  benchFarm(cfg).then(
    async ({ figures, errors, details }) => {
      const md = await farmMarkdown(figures, cfg, await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"]));
      console.log(md);
      console.log(JSON.stringify(details, null, 2));
      for (const e of errors) console.error(`[bench] *** ${e}`);
      if (args.includes("--write-readme")) rewriteReadmeSection("farm-figures", md);
      process.exit(errors.length ? 1 : 0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
