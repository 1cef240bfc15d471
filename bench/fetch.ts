/**
 * The fetch benchmark (`npm run bench -- --only fetch`, or `node dist/bench/fetch.js [--quick] [--write-readme]`).
 *
 * On the generated set published to a local bare remote served by `git daemon` through the modelled link
 * (relay.ts), side by side in the same run:
 *   - `cpr fetch URL::<label>@=<version>` of one atom (cold cache): bytes received and time;
 *   - `git clone --depth=1` of the whole repository: the same;
 *   - a flake-style input, `nix flake prefetch git+file://…` (Nix copies the repository and the tree into the store;
 *     no daemon, so its bytes are what its git cache fetched): the same;
 *   - `cpr fetch --lock` of a 300-atom atom.lock against the same 300 atoms fetched one by one.
 * Figures go to the main table (run.ts) and to this benchmark's own section of bench/README.md.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  BENCH_DIR,
  benchEnv,
  BenchError,
  CPR_BIN,
  figuresSection,
  rewriteReadmeSection,
  ensureDir,
  envInt,
  findTool,
  fmtBytes,
  fmtMs,
  git,
  log,
  median,
  OUT_DIR,
  run,
  scratchRoot,
} from "./lib.js";
import { ensureSet, type SetInfo } from "./gen-set.js";
import { Relay, type LinkModel } from "./relay.js";
import { startGitDaemon, urlVia, type GitServer } from "./servers.js";

export interface FetchBenchConfig {
  quick: boolean;
  atoms: number;
  commits: number;
  seed: number;
  reps: number;
  lockAtoms: number;
  link: LinkModel;
}

/** A figure, in the shape run.ts's `figure()` takes. */
export interface FetchFigure {
  id: string;
  title: string;
  unit: "ms" | "bytes";
  baselineName: string;
  ratioKind: "cost" | "speedup" | "saving";
  ratioLabel?: string;
  target: { op: "<=" | ">="; value: number } | null;
  samples: { cpr: number[]; baseline: number[] };
  note?: string;
  error?: string;
}

/** The protocol allowance of the one-atom target: ls-refs plus the fetch negotiation. */
export const CONSTANT_BYTES = 8 * 1024;

export function fetchConfig(quick: boolean): FetchBenchConfig {
  const atoms = envInt("CPR_BENCH_ATOMS", quick ? 1000 : 10000);
  return {
    quick,
    atoms,
    commits: envInt("CPR_BENCH_COMMITS", quick ? 100 : 300),
    seed: envInt("CPR_BENCH_SEED", 1),
    reps: Math.max(1, envInt("CPR_BENCH_REPS", quick ? 2 : 3)),
    lockAtoms: Math.min(atoms, envInt("CPR_BENCH_LOCK_ATOMS", 300)),
    link: { bandwidthBps: envInt("CPR_BENCH_MBIT", 20) * 1e6, latencyMs: envInt("CPR_BENCH_LATENCY_MS", 15) },
  };
}

/** The set published by cpr to a bare remote (with its main branch), cached under bench/out/fetch/. */
async function publishedRemote(set: SetInfo): Promise<{ root: string; name: string; repo: string }> {
  const root = ensureDir(join(OUT_DIR, "fetch", set.key));
  const name = "set.git";
  const repo = join(root, name);
  if (existsSync(join(repo, "cpr-published"))) return { root, name, repo };
  log(`fetch: publishing ${set.key} to ${repo} (once; cached)`);
  rmSync(repo, { recursive: true, force: true });
  const dir = mkdtempSync(join(scratchRoot(), "fetch-publish-"));
  try {
    const env = benchEnv({ TMPDIR: dir });
    const src = join(dir, "src");
    await run("git", ["clone", "--quiet", "--no-checkout", set.repo, src], { env });
    await run("git", ["init", "--quiet", "--bare", "--initial-branch=main", repo], { env });
    await run("git", ["push", "--quiet", repo, "refs/heads/main:refs/heads/main"], { cwd: src, env });
    await run(CPR_BIN, ["init", "--remote", repo], { cwd: src, env });
    const r = await run(CPR_BIN, ["publish", "--all", "--remote", repo, "--json"], { cwd: src, env, check: false, timeoutMs: 20 * 60_000 });
    if (r.code !== 0) throw new BenchError(`cpr publish --all exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`);
    await git(repo, ["config", "uploadpack.allowFilter", "true"]);
    await git(repo, ["repack", "-adq"]);
    await git(repo, ["pack-refs", "--all"]);
    writeFileSync(join(repo, "cpr-published"), "");
    return { root, name, repo };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function dirBytes(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, e) => n + dirBytes(join(p, e)), 0);
}

interface Measure {
  ms: number;
  received: number;
}

/** Run the fetch benchmark; returns figures and details. Throws BenchError on correctness problems. */
export async function benchFetch(cfg: FetchBenchConfig): Promise<{ figures: FetchFigure[]; details: Record<string, unknown> }> {
  const set = await ensureSet({ atoms: cfg.atoms, commits: cfg.commits, seed: cfg.seed });
  const remote = await publishedRemote(set);
  const atomRefs = (await git(remote.repo, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/eka/atoms/"]))
    .split("\n")
    .map((l) => {
      const [oid, ref] = l.split(" ") as [string, string];
      const [label, version] = ref.slice("refs/eka/atoms/".length).split("/") as [string, string];
      return { oid, label, version };
    });
  // The atom fetched alone: a typical one (the median own pack size of a sample).
  const sample = atomRefs.filter((_, i) => i % Math.max(1, Math.floor(atomRefs.length / 50)) === 0).slice(0, 50);
  const own = await Promise.all(sample.map(async (a) => ({ a, bytes: await ownPackBytes(remote.repo, a.oid) })));
  own.sort((x, y) => x.bytes - y.bytes);
  const one = own[Math.floor(own.length / 2)]!;
  const lockPick = atomRefs.filter((_, i) => i % Math.max(1, Math.floor(atomRefs.length / cfg.lockAtoms)) === 0).slice(0, cfg.lockAtoms);

  const work = mkdtempSync(join(scratchRoot(), "fetch-"));
  const servers: GitServer[] = [];
  const relays: Relay[] = [];
  const details: Record<string, unknown> = {
    set: set.key,
    remote: remote.repo,
    atom: { ...one.a, ownPackBytes: one.bytes },
    link: cfg.link,
  };
  try {
    const daemon = await startGitDaemon(remote.root);
    servers.push(daemon);
    const relay = new Relay({ host: "127.0.0.1", port: daemon.port }, cfg.link);
    relays.push(relay);
    await relay.listen();
    const url = urlVia(daemon, remote.name, relay.port);
    const settle = () => new Promise((r) => setTimeout(r, 20));
    let n = 0;
    const fresh = () => join(work, `r${n++}`);

    const cprOne = async (): Promise<Measure> => {
      const cache = fresh();
      relay.reset();
      const r = await run(CPR_BIN, ["fetch", `${url}::${one.a.label}@=${one.a.version}`, "--json"], {
        cwd: work,
        env: benchEnv({ CPR_CACHE_DIR: cache, TMPDIR: work }),
        check: false,
        timeoutMs: 5 * 60_000,
      });
      if (r.code !== 0) throw new BenchError(`cpr fetch exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`);
      const got = (JSON.parse(r.stdout) as { atoms: { rev: string }[] }).atoms[0]!.rev;
      if (got !== one.a.oid) throw new BenchError(`cpr fetch got ${got}, the remote's ref is ${one.a.oid}`);
      const commits = (await git(join(cache, "git"), ["rev-list", "--all"])).split("\n").filter(Boolean);
      if (commits.length !== 1) throw new BenchError(`the cache holds ${commits.length} commits after fetching one atom`);
      await settle();
      const ms = r.ms;
      rmSync(cache, { recursive: true, force: true, maxRetries: 2 });
      return { ms, received: relay.stats().received };
    };
    const cloneShallow = async (): Promise<Measure> => {
      const dir = fresh();
      relay.reset();
      const r = await run("git", ["clone", "--quiet", "--depth=1", url, dir], {
        cwd: work,
        env: benchEnv({ TMPDIR: work }),
        check: false,
        timeoutMs: 10 * 60_000,
      });
      if (r.code !== 0) throw new BenchError(`git clone --depth=1 exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`);
      await settle();
      rmSync(dir, { recursive: true, force: true });
      return { ms: r.ms, received: relay.stats().received };
    };
    const nix = findTool("nix");
    const registry = join(work, "registry.json");
    writeFileSync(registry, '{"flakes":[],"version":2}\n');
    const flake = async (): Promise<Measure> => {
      const xdg = fresh();
      const r = await run(
        "nix",
        [
          "--extra-experimental-features",
          "nix-command flakes",
          "--option",
          "flake-registry",
          registry,
          "--option",
          "build-users-group",
          "",
          "flake",
          "prefetch",
          "--json",
          `git+file://${remote.repo}?ref=main`,
        ],
        { cwd: work, env: benchEnv({ XDG_CACHE_HOME: xdg, TMPDIR: work }), check: false, timeoutMs: 10 * 60_000 },
      );
      if (r.code !== 0) throw new BenchError(`nix flake prefetch exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`);
      const received = dirBytes(join(xdg, "nix"));
      rmSync(xdg, { recursive: true, force: true });
      return { ms: r.ms, received };
    };

    const series = async (f: () => Promise<Measure>, what: string, reps = cfg.reps): Promise<Measure[]> => {
      const out: Measure[] = [];
      for (let i = 0; i < reps; i++) {
        const m = await f();
        log(`fetch: ${what}: ${fmtMs(m.ms)}, ${fmtBytes(m.received)}`);
        out.push(m);
      }
      return out;
    };
    await cprOne(); // warm-up (page cache, daemon)
    const cprM = await series(cprOne, "cpr fetch (one atom)");
    const cloneM = await series(cloneShallow, "git clone --depth=1");
    const nixM = nix ? await series(flake, "nix flake prefetch git+file") : [];

    // The lock: `cpr fetch --lock` against one `cpr fetch URI@=v` per atom, cold caches.
    const { formatLock, defaultLocker } = (await import("../src/protocol/lock.js")) as typeof import("../src/protocol/lock.js");
    const { atomId } = (await import("../src/protocol/id.js")) as typeof import("../src/protocol/id.js");
    const lockDir = ensureDir(join(work, "project"));
    const deps = lockPick.map((a) => ({
      type: "atom" as const,
      label: a.label,
      version: a.version,
      set: set.root,
      rev: a.oid,
      mirror: url,
      id: atomId(set.root, a.label),
    }));
    writeFileSync(
      join(lockDir, "atom.lock"),
      formatLock({
        version: 1,
        sets: { [set.root]: { tag: "bench", mirrors: [url] } },
        locker: defaultLocker(),
        compose: { use: "static" },
        deps,
      }),
    );
    const lockRun = async (): Promise<Measure> => {
      const cache = fresh();
      relay.reset();
      const r = await run(CPR_BIN, ["fetch", "--lock", "--json"], {
        cwd: lockDir,
        env: benchEnv({ CPR_CACHE_DIR: cache, TMPDIR: work }),
        check: false,
        timeoutMs: 10 * 60_000,
      });
      if (r.code !== 0) throw new BenchError(`cpr fetch --lock exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`);
      const out = JSON.parse(r.stdout) as { atoms: { rev: string }[]; failed: unknown[] };
      if (out.atoms.length !== deps.length || out.failed.length)
        throw new BenchError(`cpr fetch --lock fetched ${out.atoms.length} of ${deps.length} atoms`);
      await settle();
      rmSync(cache, { recursive: true, force: true });
      return { ms: r.ms, received: relay.stats().received };
    };
    const oneByOne = async (): Promise<Measure> => {
      const cache = fresh();
      relay.reset();
      const started = performance.now();
      for (const a of lockPick) {
        const r = await run(CPR_BIN, ["fetch", `${url}::${a.label}@=${a.version}`], {
          cwd: work,
          env: benchEnv({ CPR_CACHE_DIR: cache, TMPDIR: work }),
          check: false,
          timeoutMs: 5 * 60_000,
        });
        if (r.code !== 0) throw new BenchError(`cpr fetch ${a.label} exited with ${r.code}\n${r.stderr.trim().slice(-2000)}`);
      }
      const ms = performance.now() - started;
      await settle();
      rmSync(cache, { recursive: true, force: true });
      return { ms, received: relay.stats().received };
    };
    const lockM = await series(lockRun, `cpr fetch --lock (${deps.length} atoms)`);
    const singleM = await series(oneByOne, `${deps.length} x cpr fetch, one by one`, 1);

    const linkText = `${cfg.link.bandwidthBps / 1e6} Mbit/s, ${cfg.link.latencyMs} ms`;
    const atomNote = `atom ${one.a.label} ${one.a.version}: its own objects (commit, trees, blobs) packed alone are ${fmtBytes(one.bytes)}; allowance ${fmtBytes(CONSTANT_BYTES)} for ls-refs and negotiation`;
    const setNote = `${set.atoms.toLocaleString("en-US")} atoms, ${set.commits} commits, pack ${fmtBytes(set.packBytes)}; git daemon through the relay (${linkText})`;
    const figures: FetchFigure[] = [
      {
        id: "fetch.one.own",
        title: "cpr fetch, one atom: bytes received vs 1.2× its own objects + constant",
        unit: "bytes",
        baselineName: "1.2 × own pack + 8 KiB",
        ratioKind: "cost",
        target: { op: "<=", value: 1 },
        samples: { cpr: cprM.map((m) => m.received), baseline: [1.2 * one.bytes + CONSTANT_BYTES] },
        note: atomNote,
      },
      {
        id: "fetch.one.clone.bytes",
        title: `cpr fetch, one atom, vs git clone --depth=1: bytes received`,
        unit: "bytes",
        baselineName: "git clone --depth=1 (whole repository)",
        ratioKind: "saving",
        target: { op: ">=", value: 100 },
        samples: { cpr: cprM.map((m) => m.received), baseline: cloneM.map((m) => m.received) },
        note: setNote,
      },
      {
        id: "fetch.one.clone.time",
        title: `cpr fetch, one atom, vs git clone --depth=1 (${linkText}): time`,
        unit: "ms",
        baselineName: "git clone --depth=1 (whole repository)",
        ratioKind: "speedup",
        target: null,
        samples: { cpr: cprM.map((m) => m.ms), baseline: cloneM.map((m) => m.ms) },
      },
      ...(nixM.length
        ? ([
            {
              id: "fetch.one.flake.bytes",
              title: "cpr fetch, one atom, vs nix flake prefetch git+file://: bytes fetched",
              unit: "bytes",
              baselineName: "nix flake prefetch git+file:// (Nix's git cache)",
              ratioKind: "saving",
              target: null,
              samples: { cpr: cprM.map((m) => m.received), baseline: nixM.map((m) => m.received) },
              note: "Nix reads the repository from the file system (no link model): its bytes are the size of the git cache it fills, before copying the tree into the store",
            },
            {
              id: "fetch.one.flake.time",
              title: "cpr fetch, one atom (through the link), vs nix flake prefetch git+file:// (local): time",
              unit: "ms",
              baselineName: "nix flake prefetch git+file://",
              ratioKind: "speedup",
              target: null,
              samples: { cpr: cprM.map((m) => m.ms), baseline: nixM.map((m) => m.ms) },
            },
          ] satisfies FetchFigure[])
        : []),
      {
        id: "fetch.lock.time",
        title: `cpr fetch --lock, ${deps.length} atoms, vs one by one (${linkText}): time`,
        unit: "ms",
        baselineName: `${deps.length} × cpr fetch URI@=version`,
        ratioKind: "speedup",
        target: { op: ">=", value: 4 },
        samples: { cpr: lockM.map((m) => m.ms), baseline: singleM.map((m) => m.ms) },
        note: `bytes received: lock ${fmtBytes(median(lockM.map((m) => m.received)))}, one by one ${fmtBytes(median(singleM.map((m) => m.received)))}; at most 4 connections per host`,
      },
    ];
    Object.assign(details, { cpr: cprM, clone: cloneM, nix: nixM, lock: lockM, oneByOne: singleM, nixAvailable: nix !== null });
    return { figures, details };
  } finally {
    for (const r of relays) await r.close();
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Size of a pack holding exactly the objects of one atom commit (what an ideal fetch transfers). */
async function ownPackBytes(repo: string, rev: string): Promise<number> {
  const list = await run("git", ["rev-list", "--objects", rev], { cwd: repo, env: benchEnv() });
  const r = await run("sh", ["-c", "git pack-objects --stdout -q | wc -c"], { cwd: repo, env: benchEnv(), input: list.stdout });
  return Number(r.stdout.trim());
}

// ---------------------------------------------------------------------------------------------------------------
// Standalone: node dist/bench/fetch.js [--quick] [--write-readme]

function fmt(f: FetchFigure): string[] {
  const v = median(f.samples.cpr);
  const b = median(f.samples.baseline);
  const val = (x: number) => (f.unit === "ms" ? fmtMs(x) : fmtBytes(x));
  const ratio = f.ratioKind === "cost" ? v / b : b / v;
  const pass = f.target === null ? "" : (f.target.op === "<=" ? ratio <= f.target.value : ratio >= f.target.value) ? "✓ pass" : "✗ miss";
  const how = f.ratioKind === "cost" ? "cpr ÷ baseline" : "baseline ÷ cpr";
  const target = f.target === null ? "info" : `${f.target.op === "<=" ? "≤" : "≥"} ${f.target.value}×`;
  return [f.title, val(v), val(b), `${ratio >= 100 ? Math.round(ratio) : ratio.toFixed(2)}× (${how})`, target, pass];
}

export function fetchMarkdown(figures: readonly FetchFigure[], cfg: FetchBenchConfig, rev: string): string {
  const notes = figures.filter((f) => f.note).map((f) => `- ${f.title}: ${f.note}.`);
  return figuresSection(`at cpr ${rev}; ${cfg.reps} repetitions (median; the one-by-one series once).`, figures.map(fmt), notes);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const cfg = fetchConfig(args.includes("--quick"));
  benchFetch(cfg).then(
    async ({ figures }) => {
      for (const f of figures) console.log(fmt(f).join("  |  "));
      if (args.includes("--write-readme"))
        rewriteReadmeSection("fetch-figures", fetchMarkdown(figures, cfg, (await git(BENCH_DIR, ["rev-parse", "--short", "HEAD"])).trim()));
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    },
  );
}
