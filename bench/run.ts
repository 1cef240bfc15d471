/**
 * cpr's benchmark suite: `npm run bench` (= build, then `node dist/bench/run.js`).
 *
 *   node dist/bench/run.js [--quick] [--write-readme] [--only publish,discovery,startup]
 *
 * Every figure is a ratio against a baseline measured in the same run (see bench/README.md). Timings never fail the
 * run; correctness problems do (the two remotes' refs differ, a listing disagrees with git's, a command fails): they
 * are printed loudly, recorded in bench/out/results.json, and make the exit code 1.
 */
import { cpus, release, totalmem } from "node:os";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BASELINE_PUBLISH,
  BENCH_DIR,
  benchEnv,
  BenchError,
  CPR_BIN,
  ensureDir,
  envInt,
  findTool,
  fmtBytes,
  fmtMs,
  git,
  log,
  median,
  OUT_DIR,
  REPO_ROOT,
  run,
  rewriteReadmeSection,
  scratchRoot,
} from "./lib.js";
import { ensureSet, type SetInfo, type SetParams } from "./gen-set.js";
import { ensureDiscoveryRemote } from "./gen-discovery.js";
import { Relay, type LinkModel } from "./relay.js";
import { startGitDaemon, startHttpBackend, urlVia, type GitServer } from "./servers.js";

// ---------------------------------------------------------------------------------------------------------------
// Configuration

interface Config {
  quick: boolean;
  atoms: number;
  commits: number;
  seed: number;
  reps: number;
  scaleAtoms: number;
  discoveryAtoms: number;
  discoveryVersions: number;
  discoveryReps: number;
  link: LinkModel;
  startupRuns: number;
  only: Set<string>;
  writeReadme: boolean;
}

const SECTIONS = ["publish", "discovery", "startup", "fetch", "resolve", "registry", "graft", "farm"] as const;
/** Everything runs without --only (fetch takes a few minutes: it also fetches 300 atoms one by one as its baseline). */
const DEFAULT_SECTIONS: readonly string[] = SECTIONS;
/** The sections whose figures go to the main figures table; fetch, resolve and registry write sections of their own. */
const MAIN_SECTIONS: readonly string[] = ["publish", "discovery", "startup"];

function parseArgs(argv: readonly string[]): Config {
  let quick = false;
  let writeReadme = false;
  let only = new Set<string>(DEFAULT_SECTIONS);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--write-readme") writeReadme = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const v = a === "--only" ? argv[++i] : a.slice("--only=".length);
      only = new Set((v ?? "").split(",").filter(Boolean));
      for (const s of only)
        if (!(SECTIONS as readonly string[]).includes(s)) throw new BenchError(`--only: unknown section ${s} (${SECTIONS.join(", ")})`);
    } else if (a === "-h" || a === "--help") {
      process.stdout.write(readFileSync(join(BENCH_DIR, "README.md"), "utf8").split("\n## Figures")[0] + "\n");
      process.exit(0);
    } else throw new BenchError(`unknown argument ${a} (try --help)`);
  }
  const atoms = envInt("CPR_BENCH_ATOMS", quick ? 1000 : 10000);
  const reps = envInt("CPR_BENCH_REPS", quick ? 2 : 3);
  return {
    quick,
    atoms,
    commits: envInt("CPR_BENCH_COMMITS", quick ? 100 : 300),
    seed: envInt("CPR_BENCH_SEED", 1),
    reps: Math.max(1, reps),
    scaleAtoms: envInt("CPR_BENCH_SCALE_ATOMS", Math.max(100, Math.round(atoms / 10))),
    discoveryAtoms: envInt("CPR_BENCH_DISCOVERY_ATOMS", atoms),
    discoveryVersions: envInt("CPR_BENCH_DISCOVERY_VERSIONS", 5),
    discoveryReps: Math.max(1, envInt("CPR_BENCH_DISCOVERY_REPS", reps)),
    link: { bandwidthBps: envInt("CPR_BENCH_MBIT", 20) * 1e6, latencyMs: envInt("CPR_BENCH_LATENCY_MS", 15) },
    startupRuns: Math.max(3, envInt("CPR_BENCH_STARTUP_RUNS", quick ? 20 : 60)),
    only,
    writeReadme,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Figures

interface Target {
  op: "<=" | ">=";
  value: number;
}

interface Figure {
  id: string;
  title: string;
  unit: "ms" | "bytes" | "req/s";
  /** cpr's value (median over the repetitions). */
  value: number | null;
  baseline: number | null;
  /** What the baseline is, in a few words. */
  baselineName: string;
  /** cpr/baseline for costs where lower is better (`ratioKind: "cost"`), baseline/cpr for "speedup"/"saving". */
  ratio: number | null;
  ratioKind: "cost" | "speedup" | "saving";
  /** How the ratio reads, when not cpr against the baseline. */
  ratioLabel?: string;
  target: Target | null;
  /** Shown in the target column instead of the ratio target (an absolute target, e.g. "< 10 ms"). */
  targetText?: string;
  pass: boolean | null;
  samples: { cpr: number[]; baseline: number[] };
  note?: string;
  error?: string;
}

function figure(f: Omit<Figure, "ratio" | "pass" | "value" | "baseline"> & { value?: number | null; baseline?: number | null }): Figure {
  const value = f.value ?? (f.samples.cpr.length ? median(f.samples.cpr) : null);
  const baseline = f.baseline ?? (f.samples.baseline.length ? median(f.samples.baseline) : null);
  let ratio: number | null = null;
  if (value !== null && baseline !== null && value > 0 && baseline > 0)
    ratio = f.ratioKind === "cost" ? value / baseline : baseline / value;
  const pass = ratio === null || f.target === null ? null : f.target.op === "<=" ? ratio <= f.target.value : ratio >= f.target.value;
  return { ...f, value, baseline, ratio, pass };
}

const errors: string[] = [];

function fail(section: string, e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = `${section}: ${msg}`;
  errors.push(line);
  process.stderr.write(`\n[bench] *** CORRECTNESS / RUN FAILURE in ${section} ***\n${msg}\n\n`);
  return msg;
}

// ---------------------------------------------------------------------------------------------------------------
// cpr availability

async function cprWorks(): Promise<string | null> {
  try {
    const r = await run(CPR_BIN, ["--version"], { check: false, timeoutMs: 30_000 });
    if (r.code !== 0) return `bin/cpr --version exited with ${r.code}: ${r.stderr.trim().split("\n")[0] ?? ""}`;
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Publish

type Tool = "cpr" | "baseline";

interface PublishRound {
  tool: Tool;
  fullMs: number;
  incrMs: number;
  fullRefs: string;
  incrRefs: string;
}

async function remoteRefs(remote: string): Promise<string> {
  return git(remote, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/eka/", "refs/ekala/"]);
}

function countLines(s: string): number {
  return s ? s.split("\n").length : 0;
}

/** Run one tool's publish in `src` to `remote`; checks its own report of what it published and skipped. */
async function publishOnce(
  tool: Tool,
  src: string,
  remote: string,
  env: NodeJS.ProcessEnv,
  expect: { published: number; skipped: number },
): Promise<number> {
  if (tool === "cpr") {
    const r = await run(CPR_BIN, ["publish", "--all", "--remote", remote, "--json"], {
      cwd: src,
      env,
      check: false,
      timeoutMs: 20 * 60_000,
    });
    if (r.code !== 0) throw new BenchError(`cpr publish --all exited with ${r.code}\n${r.stderr.trim().slice(-3000)}`);
    const out = JSON.parse(r.stdout) as { published: unknown[]; skipped: unknown[]; failed: unknown[] };
    if (out.published.length !== expect.published || out.skipped.length !== expect.skipped || out.failed.length !== 0) {
      throw new BenchError(
        `cpr publish reported ${out.published.length} published, ${out.skipped.length} skipped, ${out.failed.length} failed; expected ${expect.published}/${expect.skipped}/0`,
      );
    }
    return r.ms;
  }
  const r = await run("/bin/sh", [BASELINE_PUBLISH, remote], { cwd: src, env, check: false, timeoutMs: 20 * 60_000 });
  if (r.code !== 0) throw new BenchError(`baseline publish.sh exited with ${r.code}\n${r.stderr.trim().slice(-3000)}`);
  const m = /baseline: (\d+) published, (\d+) skipped/.exec(r.stdout);
  if (!m || Number(m[1]) !== expect.published || Number(m[2]) !== expect.skipped) {
    throw new BenchError(`baseline reported "${r.stdout.trim()}"; expected ${expect.published} published, ${expect.skipped} skipped`);
  }
  return r.ms;
}

/** Fresh clone + fresh bare remote, initialize, full publish, then the one-atom change and an incremental publish. */
async function publishRound(tool: Tool, set: SetInfo): Promise<PublishRound> {
  const dir = mkdtempSync(join(scratchRoot(), `publish-${tool}-`));
  try {
    const src = join(dir, "src");
    const remote = join(dir, "remote.git");
    const env = benchEnv({ TMPDIR: dir });
    await run("git", ["clone", "--quiet", "--no-checkout", set.repo, src], { env });
    await run("git", ["init", "--quiet", "--bare", remote], { env });
    if (tool === "cpr") await run(CPR_BIN, ["init", "--remote", remote], { cwd: src, env });
    else await run("git", ["push", "--quiet", remote, `${set.root}:refs/ekala/init`], { cwd: src, env });

    const fullMs = await publishOnce(tool, src, remote, env, { published: set.atoms, skipped: 0 });
    const fullRefs = await remoteRefs(remote);
    if (countLines(fullRefs) !== 3 * set.atoms + 1)
      throw new BenchError(`${tool}: remote has ${countLines(fullRefs)} refs after a full publish, expected ${3 * set.atoms + 1}`);

    // One atom changes (the generator's bench-next commit: version bump + file edit). Some time passes: the
    // remote (as a host would) and the local repository have packed their refs.
    await run("git", ["update-ref", "refs/heads/main", set.next], { cwd: src, env });
    await run("git", ["pack-refs", "--all"], { cwd: remote, env });
    await run("git", ["pack-refs", "--all"], { cwd: src, env });
    const incrMs = await publishOnce(tool, src, remote, env, { published: 1, skipped: set.atoms - 1 });
    const incrRefs = await remoteRefs(remote);
    if (countLines(incrRefs) !== 3 * set.atoms + 4)
      throw new BenchError(`${tool}: remote has ${countLines(incrRefs)} refs after the incremental publish, expected ${3 * set.atoms + 4}`);
    return { tool, fullMs, incrMs, fullRefs, incrRefs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstDifference(a: string, b: string): string {
  const x = a.split("\n");
  const y = b.split("\n");
  const xs = new Set(x);
  const ys = new Set(y);
  const onlyA = x.filter((l) => !ys.has(l));
  const onlyB = y.filter((l) => !xs.has(l));
  return `${onlyA.length} ref line(s) only on cpr's remote, e.g. ${JSON.stringify(onlyA.slice(0, 5))}; ${onlyB.length} only on the baseline's, e.g. ${JSON.stringify(onlyB.slice(0, 5))}`;
}

interface PublishSeries {
  set: SetInfo;
  cpr: PublishRound[];
  baseline: PublishRound[];
}

async function publishSeries(set: SetInfo, reps: number, withCpr: boolean): Promise<PublishSeries> {
  const series: PublishSeries = { set, cpr: [], baseline: [] };
  for (let r = 0; r < reps; r++) {
    const order: Tool[] = withCpr ? (r % 2 === 0 ? ["cpr", "baseline"] : ["baseline", "cpr"]) : ["baseline"];
    const got = new Map<Tool, PublishRound>();
    for (const tool of order) {
      log(`publish ${set.atoms} atoms: ${tool}, round ${r + 1}/${reps}`);
      const round = await publishRound(tool, set);
      got.set(tool, round);
      series[tool].push(round);
      log(`  full ${fmtMs(round.fullMs)}, incremental ${fmtMs(round.incrMs)}`);
    }
    const c = got.get("cpr");
    const b = got.get("baseline");
    if (c && b) {
      if (c.fullRefs !== b.fullRefs)
        throw new BenchError(
          `after the full publish of ${set.atoms} atoms, cpr's and the baseline's remotes differ: ${firstDifference(c.fullRefs, b.fullRefs)}`,
        );
      if (c.incrRefs !== b.incrRefs)
        throw new BenchError(
          `after the incremental publish of ${set.atoms} atoms, cpr's and the baseline's remotes differ: ${firstDifference(c.incrRefs, b.incrRefs)}`,
        );
    }
  }
  return series;
}

async function benchPublish(cfg: Config, cprError: string | null, figures: Figure[], details: Record<string, unknown>): Promise<void> {
  const main = await ensureSet({ atoms: cfg.atoms, commits: cfg.commits, seed: cfg.seed });
  const params = (atoms: number): SetParams => ({ atoms, commits: cfg.commits, seed: cfg.seed });
  const small = cfg.scaleAtoms > 0 && cfg.scaleAtoms < cfg.atoms ? await ensureSet(params(cfg.scaleAtoms)) : null;
  const withCpr = cprError === null;
  const n = cfg.atoms.toLocaleString("en-US");
  const setNote = `${n} atoms, ${main.commits} commits, ${main.files.toLocaleString("en-US")} files, pack ${fmtBytes(main.packBytes)}`;

  let big: PublishSeries | null = null;
  try {
    big = await publishSeries(main, cfg.reps, withCpr);
  } catch (e) {
    const error = fail("publish", e);
    figures.push(publishFigure("publish.full", `Full publish, ${n} atoms`, "ms", [], [], error));
    figures.push(publishFigure("publish.incremental", `Incremental publish (1 of ${n} atoms changed)`, "ms", [], [], error));
    return;
  }
  const cprFull = big.cpr.map((r) => r.fullMs);
  const cprIncr = big.cpr.map((r) => r.incrMs);
  const blFull = big.baseline.map((r) => r.fullMs);
  const blIncr = big.baseline.map((r) => r.incrMs);
  figures.push({
    ...publishFigure("publish.full", `Full publish, ${n} atoms`, "ms", cprFull, blFull, cprError ?? undefined),
    note: setNote,
  });
  figures.push({
    ...publishFigure("publish.incremental", `Incremental publish (1 of ${n} atoms changed)`, "ms", cprIncr, blIncr, cprError ?? undefined),
    note: `remote and local refs packed before the run`,
  });

  let smallSeries: PublishSeries | null = null;
  if (small) {
    try {
      smallSeries = await publishSeries(small, cfg.reps, withCpr);
    } catch (e) {
      fail("publish (scaling)", e);
    }
  }
  const scaling: Record<string, unknown> = {};
  for (const tool of ["cpr", "baseline"] as const) {
    const full = median(big[tool].map((r) => r.fullMs));
    const incr = median(big[tool].map((r) => r.incrMs));
    const smallIncr = smallSeries ? median(smallSeries[tool].map((r) => r.incrMs)) : NaN;
    const smallFull = smallSeries ? median(smallSeries[tool].map((r) => r.fullMs)) : NaN;
    scaling[tool] = {
      atoms: cfg.atoms,
      fullMs: full,
      incrementalMs: incr,
      smallAtoms: small?.atoms ?? null,
      smallFullMs: smallFull,
      smallIncrementalMs: smallIncr,
    };
  }
  details.publish = {
    set: main,
    smallSet: small,
    rounds: big.cpr.concat(big.baseline).map(({ tool, fullMs, incrMs }) => ({ tool, fullMs, incrMs })),
    smallRounds: smallSeries
      ? smallSeries.cpr.concat(smallSeries.baseline).map(({ tool, fullMs, incrMs }) => ({ tool, fullMs, incrMs }))
      : [],
    scaling,
  };
  if (withCpr) {
    const full = median(cprFull);
    const incr = median(cprIncr);
    figures.push(
      figure({
        id: "publish.incremental-vs-full",
        title: `Incremental vs full publish, cpr, ${n} atoms`,
        unit: "ms",
        value: incr,
        baseline: full,
        baselineName: "cpr's own full publish",
        ratioKind: "cost",
        ratioLabel: "incremental ÷ full",
        target: null,
        samples: { cpr: cprIncr, baseline: cprFull },
        note: `the incremental publish costs ${((incr / full) * 100).toFixed(0)}% of the full one`,
      }),
    );
    if (smallSeries && small) {
      const s = smallSeries.cpr.map((r) => r.incrMs);
      const sb = smallSeries.baseline.map((r) => r.incrMs);
      figures.push(
        figure({
          id: "publish.incremental-scaling",
          title: `Incremental publish, cpr, ${n} vs ${small.atoms.toLocaleString("en-US")} atoms`,
          unit: "ms",
          value: incr,
          baseline: median(s),
          baselineName: `cpr at ${small.atoms.toLocaleString("en-US")} atoms`,
          ratioKind: "cost",
          ratioLabel: `${cfg.atoms.toLocaleString("en-US")} ÷ ${small.atoms.toLocaleString("en-US")} atoms`,
          target: null,
          samples: { cpr: cprIncr, baseline: s },
          note:
            `${(cfg.atoms / small.atoms).toFixed(0)}x the atoms, ${(incr / median(s)).toFixed(2)}x the time ` +
            `(baseline script: ${(median(blIncr) / median(sb)).toFixed(2)}x); full publish: ${(full / median(smallSeries.cpr.map((r) => r.fullMs))).toFixed(1)}x`,
        }),
      );
    }
  }
}

function publishFigure(id: string, title: string, unit: "ms", cpr: number[], baseline: number[], error?: string): Figure {
  return figure({
    id,
    title,
    unit,
    baselineName: "bench/baseline/publish.sh (sh + awk, 8 git commands)",
    ratioKind: "cost",
    target: { op: "<=", value: 1.5 },
    samples: { cpr, baseline },
    ...(error ? { error } : {}),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery

interface Listed {
  root: string | null;
  versions: Map<string, string>;
}

function parseCprLs(stdout: string, label: string): Listed {
  const j = JSON.parse(stdout) as { root: string; atoms: { label: string; version: string; rev: string }[] };
  return { root: j.root, versions: new Map(j.atoms.filter((a) => a.label === label).map((a) => [a.version, a.rev])) };
}

function parseLsRemote(stdout: string, label: string): Listed {
  const versions = new Map<string, string>();
  const prefix = `refs/eka/atoms/${label}/`;
  for (const line of stdout.split("\n")) {
    const [oid, ref] = line.split("\t");
    if (oid && ref?.startsWith(prefix)) versions.set(ref.slice(prefix.length), oid);
  }
  return { root: null, versions };
}

function sameListing(a: Listed, b: Listed): boolean {
  return a.versions.size === b.versions.size && [...a.versions].every(([v, rev]) => b.versions.get(v) === rev);
}

interface DiscoveryMeasure {
  ms: number;
  received: number;
  sent: number;
}

async function benchDiscovery(cfg: Config, cprError: string | null, figures: Figure[], details: Record<string, unknown>): Promise<void> {
  const d = await ensureDiscoveryRemote({ atoms: cfg.discoveryAtoms, versions: cfg.discoveryVersions, seed: cfg.seed });
  const cwd = mkdtempSync(join(scratchRoot(), "discovery-"));
  const servers: GitServer[] = [];
  const detail: Record<string, unknown> = { remote: d, link: cfg.link };
  try {
    servers.push(await startGitDaemon(d.root));
    servers.push(await startHttpBackend(d.root));
    const expected = new Map<string, string>();
    for (const line of (await git(d.repo, ["for-each-ref", "--format=%(objectname) %(refname)", `refs/eka/atoms/${d.label}/`])).split(
      "\n",
    )) {
      const [oid, ref] = line.split(" ");
      if (oid && ref) expected.set(ref.split("/").pop()!, oid);
    }
    const env = benchEnv({ TMPDIR: cwd });
    const refsNote = `${d.atomRefs.toLocaleString("en-US")} atom refs + ${(d.totalRefs - d.atomRefs).toLocaleString("en-US")} meta/other refs (${cfg.discoveryAtoms.toLocaleString("en-US")} atoms x ${cfg.discoveryVersions} versions)`;

    for (const server of servers) {
      const scheme = server.kind === "git" ? "git://" : "http://";
      const measure = async (tool: Tool, url: string, relay: Relay | null): Promise<DiscoveryMeasure> => {
        relay?.reset();
        const r =
          tool === "cpr"
            ? await run(CPR_BIN, ["ls", url, d.label, "--json"], { cwd, env, check: false, timeoutMs: 5 * 60_000 })
            : await run("git", ["ls-remote", url, `refs/eka/atoms/${d.label}/*`], { cwd, env, check: false, timeoutMs: 5 * 60_000 });
        if (r.code !== 0)
          throw new BenchError(
            `${tool === "cpr" ? "cpr ls" : "git ls-remote"} ${url} exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`,
          );
        const listed = tool === "cpr" ? parseCprLs(r.stdout, d.label) : parseLsRemote(r.stdout, d.label);
        if (!sameListing(listed, { root: null, versions: expected })) {
          throw new BenchError(
            `${tool} over ${scheme} listed ${JSON.stringify([...listed.versions])} for ${d.label}, the remote has ${JSON.stringify([...expected])}`,
          );
        }
        if (tool === "cpr" && listed.root !== d.setRoot)
          throw new BenchError(`cpr ls over ${scheme} reported root ${listed.root}, the remote's refs/ekala/init is ${d.setRoot}`);
        await new Promise((res) => setTimeout(res, 20)); // let the relay's counters settle (FIN after the last byte)
        const s = relay?.stats();
        return { ms: r.ms, received: s?.received ?? NaN, sent: s?.sent ?? NaN };
      };
      const tools: Tool[] = cprError === null ? ["cpr", "baseline"] : ["baseline"];
      const series = async (relay: Relay | null): Promise<Record<Tool, DiscoveryMeasure[]>> => {
        const out: Record<Tool, DiscoveryMeasure[]> = { cpr: [], baseline: [] };
        const url = urlVia(server, d.name, relay?.port);
        for (const t of tools) await measure(t, url, relay); // warm-up, not recorded
        for (let r = 0; r < cfg.discoveryReps; r++) {
          for (const t of r % 2 === 0 ? tools : [...tools].reverse()) {
            const m = await measure(t, url, relay);
            out[t].push(m);
            log(
              `discovery ${scheme} ${relay ? "relay" : "loopback"} ${t}: ${fmtMs(m.ms)}${relay ? `, ${fmtBytes(m.received)} received` : ""}`,
            );
          }
        }
        return out;
      };
      try {
        const loop = await series(null);
        const relay = new Relay({ host: "127.0.0.1", port: server.port }, cfg.link);
        await relay.listen();
        let linked: Record<Tool, DiscoveryMeasure[]>;
        try {
          linked = await series(relay);
        } finally {
          await relay.close();
        }
        const base = { baselineName: `git ls-remote URL 'refs/eka/atoms/<label>/*'`, note: refsNote };
        const err = cprError ?? undefined;
        const linkText = `${cfg.link.bandwidthBps / 1e6} Mbit/s, ${cfg.link.latencyMs} ms`;
        figures.push(
          figure({
            ...base,
            id: `discovery.${server.kind}.time`,
            title: `Discovery over ${scheme} (${linkText}): time`,
            unit: "ms",
            ratioKind: "speedup",
            target: { op: ">=", value: 5 },
            samples: { cpr: linked.cpr.map((m) => m.ms), baseline: linked.baseline.map((m) => m.ms) },
            ...(err ? { error: err } : {}),
          }),
          figure({
            ...base,
            id: `discovery.${server.kind}.bytes`,
            title: `Discovery over ${scheme}: bytes received`,
            unit: "bytes",
            ratioKind: "saving",
            target: { op: ">=", value: 20 },
            samples: { cpr: linked.cpr.map((m) => m.received), baseline: linked.baseline.map((m) => m.received) },
            ...(err ? { error: err } : {}),
          }),
          figure({
            ...base,
            id: `discovery.${server.kind}.loopback`,
            title: `Discovery over ${scheme}, loopback (no link model): time`,
            unit: "ms",
            ratioKind: "speedup",
            target: null,
            samples: { cpr: loop.cpr.map((m) => m.ms), baseline: loop.baseline.map((m) => m.ms) },
            ...(err ? { error: err } : {}),
          }),
        );
        detail[server.kind] = { loopback: loop, relay: linked };
      } catch (e) {
        const error = fail(`discovery over ${scheme}`, e);
        figures.push(
          figure({
            id: `discovery.${server.kind}.time`,
            title: `Discovery over ${scheme}: time`,
            unit: "ms",
            baselineName: "git ls-remote",
            ratioKind: "speedup",
            target: { op: ">=", value: 5 },
            samples: { cpr: [], baseline: [] },
            error,
          }),
        );
      }
    }
  } finally {
    for (const s of servers) await s.stop();
    rmSync(cwd, { recursive: true, force: true });
    details.discovery = detail;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Start-up

async function benchStartup(cfg: Config, cprError: string | null, figures: Figure[], details: Record<string, unknown>): Promise<void> {
  const node = process.execPath;
  let cprTimes: number[] = [];
  let nodeTimes: number[] = [];
  let method: string;
  const hyperfine = findTool("hyperfine");
  const dir = mkdtempSync(join(scratchRoot(), "startup-"));
  try {
    if (hyperfine) {
      const json = join(dir, "hyperfine.json");
      const cmds = [`${node} -e 0`, ...(cprError === null ? [`${CPR_BIN} --version`] : [])];
      await run(
        hyperfine,
        ["--shell=none", "--warmup", "3", "--runs", String(cfg.startupRuns), "--style", "none", "--export-json", json, ...cmds],
        { env: benchEnv() },
      );
      const results = (JSON.parse(readFileSync(json, "utf8")) as { results: { command: string; times: number[] }[] }).results;
      nodeTimes = results[0]!.times.map((t) => t * 1000);
      cprTimes = results[1]?.times.map((t) => t * 1000) ?? [];
      method = `hyperfine --shell=none, ${cfg.startupRuns} runs after 3 warm-ups`;
    } else {
      const env = benchEnv();
      for (let i = 0; i < 3; i++) {
        await run(node, ["-e", "0"], { env });
        if (cprError === null) await run(CPR_BIN, ["--version"], { env });
      }
      for (let i = 0; i < cfg.startupRuns; i++) {
        nodeTimes.push((await run(node, ["-e", "0"], { env })).ms);
        if (cprError === null) cprTimes.push((await run(CPR_BIN, ["--version"], { env })).ms);
      }
      method = `Node spawn loop (hyperfine not found), ${cfg.startupRuns} runs after 3 warm-ups`;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  figures.push(
    figure({
      id: "startup",
      title: "Start-up: cpr --version",
      unit: "ms",
      baselineName: "node -e 0",
      ratioKind: "cost",
      target: { op: "<=", value: 1.5 },
      samples: { cpr: cprTimes, baseline: nodeTimes },
      note: method,
      ...(cprError ? { error: cprError } : {}),
    }),
  );
  details.startup = { method, node: nodeTimes, cpr: cprTimes };
}

// ---------------------------------------------------------------------------------------------------------------
// Machine and output

async function machine(): Promise<Record<string, string | number>> {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) cpu = m[1]!.trim();
  } catch {
    /* not Linux */
  }
  const version = async (cmd: string, args: string[]) => {
    try {
      return (await run(cmd, args, { check: false })).stdout.trim().split("\n")[0] ?? "";
    } catch {
      return "not found";
    }
  };
  const scratch = scratchRoot();
  const fs = await version("stat", ["-f", "-c", "%T", scratch]);
  return {
    cpu,
    cores: cpus().length,
    ramGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    git: (await version("git", ["--version"])).replace(/^git version /, ""),
    hyperfine: findTool("hyperfine") ? (await version("hyperfine", ["--version"])).replace(/^hyperfine /, "") : "not found",
    lighttpd: findTool("lighttpd") ? (await version(findTool("lighttpd")!, ["-v"])).replace(/ - .*$/, "") : "not found",
    scratch: `${scratch} (${fs})`,
    cprCommit: await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"]).catch(() => "unknown"),
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}

function fmtValue(unit: Figure["unit"], v: number | null): string {
  if (v === null) return "—";
  if (unit === "req/s") return `${Math.round(v).toLocaleString("en-US")} req/s`;
  return unit === "bytes" ? fmtBytes(v) : fmtMs(v);
}

function fmtRatio(f: Figure): string {
  if (f.ratio === null) return "—";
  const digits = f.ratio >= 100 ? 0 : f.ratio >= 10 ? 1 : 2;
  return `${f.ratio.toFixed(digits)}×`;
}

function fmtTarget(f: Figure): string {
  if (f.targetText) return f.targetText;
  if (!f.target) return "info";
  const what = f.ratioKind === "cost" ? "" : f.ratioKind === "speedup" ? " faster" : " fewer";
  return `${f.target.op === "<=" ? "≤" : "≥"} ${f.target.value}×${what}`;
}

function mark(f: Figure): string {
  if (f.error) return "✗ error";
  if (f.pass === null) return f.target ? "—" : "";
  return f.pass ? "✓ pass" : "✗ miss";
}

function ratioHeader(f: Figure): string {
  if (f.ratioLabel) return f.ratioLabel;
  return f.ratioKind === "cost" ? "cpr ÷ baseline" : "baseline ÷ cpr";
}

function textTable(figures: readonly Figure[]): string {
  const rows = [["figure", "cpr", "baseline", "ratio", "", "target", ""]];
  for (const f of figures)
    rows.push([
      f.title,
      fmtValue(f.unit, f.value),
      fmtValue(f.unit, f.baseline),
      fmtRatio(f),
      `(${ratioHeader(f)})`,
      fmtTarget(f),
      mark(f),
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c + " ".repeat(widths[i]! - [...c].length))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function markdown(figures: readonly Figure[], m: Record<string, string | number>, cfg: Config): string {
  const lines: string[] = [];
  lines.push(`Measured ${m.date} at cpr ${m.cprCommit}${cfg.quick ? " with `--quick`" : ""}.`);
  lines.push("");
  lines.push(
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM; Linux ${m.kernel}; Node ${m.node}; git ${m.git}; ${m.lighttpd}; hyperfine ${m.hyperfine}; scratch space ${m.scratch}.`,
  );
  lines.push("");
  lines.push("| figure | cpr | baseline | ratio | target | |");
  lines.push("|---|---:|---:|---:|---|---|");
  for (const f of figures) {
    lines.push(
      `| ${f.title} | ${fmtValue(f.unit, f.value)} | ${fmtValue(f.unit, f.baseline)} | ${fmtRatio(f)} ${f.ratio === null ? "" : `(${ratioHeader(f)})`} | ${fmtTarget(f)} | ${mark(f)} |`,
    );
  }
  lines.push("");
  // One line per distinct note: the discovery figures share theirs.
  const notes = new Map<string, string[]>();
  for (const f of figures) {
    const text = `baseline ${f.baselineName}${f.note ? `; ${f.note}` : ""}${f.error ? `; **error:** ${f.error.split("\n")[0]}` : ""}`;
    notes.set(text, [...(notes.get(text) ?? []), f.title]);
  }
  for (const [text, titles] of notes)
    lines.push(`- ${titles.length > 1 ? `${titles[0]} (and ${titles.length - 1} more)` : titles[0]}: ${text}.`);
  lines.push("");
  lines.push(
    `Parameters: ${cfg.atoms.toLocaleString("en-US")} atoms / ${cfg.commits} commits (scaling run at ${cfg.scaleAtoms.toLocaleString("en-US")} atoms), ` +
      `${cfg.reps} repetitions per publish figure (median shown); discovery remote ${cfg.discoveryAtoms.toLocaleString("en-US")} atoms x ${cfg.discoveryVersions} versions, ` +
      `${cfg.discoveryReps} repetitions after a warm-up; link ${cfg.link.bandwidthBps / 1e6} Mbit/s, ${cfg.link.latencyMs} ms one way; start-up ${cfg.startupRuns} runs.`,
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const cfg = parseArgs(process.argv.slice(2));
  ensureDir(OUT_DIR);
  const started = Date.now();
  const cprError = await cprWorks();
  if (cprError) process.stderr.write(`[bench] cpr does not run (${cprError}); measuring the baselines only\n`);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  if (cprError) errors.push(`cpr: ${cprError}`);

  if (cfg.only.has("publish")) {
    try {
      await benchPublish(cfg, cprError, figures, details);
    } catch (e) {
      fail("publish", e);
    }
  }
  if (cfg.only.has("discovery")) {
    try {
      await benchDiscovery(cfg, cprError, figures, details);
    } catch (e) {
      fail("discovery", e);
    }
  }
  if (cfg.only.has("startup")) {
    try {
      await benchStartup(cfg, cprError, figures, details);
    } catch (e) {
      fail("startup", e);
    }
  }
  if (cfg.only.has("fetch")) {
    // bench/fetch.ts: its figures join the table, and it rewrites its own README section (also under --only fetch).
    try {
      const f = await import("./fetch.js");
      const fcfg = f.fetchConfig(cfg.quick);
      const r = await f.benchFetch(fcfg);
      figures.push(...r.figures.map((x) => figure(cprError ? { ...x, error: cprError } : x)));
      details.fetch = r.details;
      if (cfg.writeReadme)
        rewriteReadmeSection("fetch-figures", f.fetchMarkdown(r.figures, fcfg, await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"])));
    } catch (e) {
      fail("fetch", e);
    }
  }
  if (cfg.only.has("resolve")) {
    // bench/resolve.ts (issue 3): cold/warm/no-op resolve against nix flake lock; its own README section.
    try {
      const r = await import("./resolve.js");
      const rcfg = r.resolveConfig(cfg.quick);
      const out = await r.benchResolve(rcfg);
      figures.push(...out.figures.map((x) => figure(cprError ? { ...x, error: cprError } : x)));
      details.resolve = out.details;
      if (cfg.writeReadme)
        rewriteReadmeSection(
          "resolve-figures",
          r.resolveMarkdown(out.figures, rcfg, await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"])),
        );
    } catch (e) {
      fail("resolve", e);
    }
  }
  if (cfg.only.has("registry")) {
    // bench/registry.ts: narinfo throughput/latency (cpr serve + SQLite/PostgreSQL vs nginx, wrk), the web pages
    // against the JSON API (wrk), and cpr get vs nix-build; README sections of their own.
    try {
      const r = await import("./registry.js");
      const rcfg = r.registryConfig(cfg.quick);
      const out = await r.benchRegistry(rcfg);
      for (const x of out.figures) {
        const f = figure(cprError ? { ...x, error: cprError } : x);
        figures.push(x.absoluteTarget ? { ...f, targetText: x.absoluteTarget.text, pass: r.registryPass(x) } : f);
      }
      for (const e of out.errors) fail("registry", e);
      details.registry = out.details;
      if (cfg.writeReadme) {
        const rev = await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"]);
        for (const [name, text] of r.registryReadmeSections(out.figures, rcfg, rev)) rewriteReadmeSection(name, text);
      }
    } catch (e) {
      fail("registry", e);
    }
  }

  if (cfg.only.has("graft")) {
    // bench/graft.ts: grafting a 100 MiB closure onto a new dependency against rebuilding it and against streaming
    // its NARs once; its own README section.
    try {
      const g = await import("./graft.js");
      const gcfg = g.graftConfig(cfg.quick);
      const out = await g.benchGraft(gcfg);
      for (const x of out.figures) figures.push(figure(cprError ? { ...x, error: cprError } : x));
      for (const e of out.errors) fail("graft", e);
      details.graft = out.details;
      if (cfg.writeReadme)
        rewriteReadmeSection("graft-figures", g.graftMarkdown(out.figures, gcfg, await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"])));
    } catch (e) {
      fail("graft", e);
    }
  }
  if (cfg.only.has("farm")) {
    // bench/farm.ts: the build farm (one and two workers against a sequential build + push loop; claim and record
    // latency with many jobs queued, SQLite and PostgreSQL); its own README section.
    try {
      const r = await import("./farm.js");
      const reg = await import("./registry.js");
      const fcfg = r.farmConfig(cfg.quick);
      const out = await r.benchFarm(fcfg);
      for (const x of out.figures) {
        const f = figure(cprError ? { ...x, error: cprError } : x);
        figures.push(x.absoluteTarget ? { ...f, targetText: x.absoluteTarget.text, pass: reg.registryPass(x) } : f);
      }
      for (const e of out.errors) fail("farm", e);
      details.farm = out.details;
      if (cfg.writeReadme)
        rewriteReadmeSection(
          "farm-figures",
          await r.farmMarkdown(out.figures, fcfg, await git(REPO_ROOT, ["rev-parse", "--short", "HEAD"])),
        );
    } catch (e) {
      fail("farm", e);
    }
  }

  const m = await machine();
  const results = { machine: m, config: { ...cfg, only: [...cfg.only] }, figures, errors, details, elapsedMs: Date.now() - started };
  writeFileSync(join(OUT_DIR, "results.json"), JSON.stringify(results, null, 2) + "\n");
  process.stdout.write(`\n${textTable(figures)}\n\n`);
  process.stdout.write(`machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB; node ${m.node}; git ${m.git}; scratch ${m.scratch}\n`);
  process.stdout.write(`results: ${join(OUT_DIR, "results.json")} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (cfg.writeReadme) {
    const main = figures.filter((f) => MAIN_SECTIONS.includes(f.id.split(".")[0]!));
    if (!MAIN_SECTIONS.every((s) => cfg.only.has(s)))
      log("not rewriting the main figures of bench/README.md: --only left out publish, discovery or startup");
    else rewriteReadmeSection("figures", markdown(main, m, cfg));
  }
  if (errors.length) {
    process.stderr.write(`\n[bench] ${errors.length} failure(s):\n${errors.map((e) => `  - ${e.split("\n")[0]}`).join("\n")}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`[bench] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
