/**
 * Graft benchmark (the grafts issue): `npm run bench -- --only graft`, or `node dist/bench/graft.js [--quick]
 * [--write-readme]`.
 *
 * In a throwaway chroot store (real Nix 2.8, no daemon), a package X of several members (a compiled program and
 * data each; together over 100 MiB) is built against a dependency Y 3.2, and Y 3.3 is built. Then, in the same run:
 *
 * - **graft**: X's closure is planned (`planGraft`) and the graft engine (`writeGraft`) streams every member that
 *   reaches Y 3.2 out of the store (`nix store dump-path`), checks it against its NarHash, rewrites it onto Y 3.3
 *   and scans it for residue (one pass each), and writes it as a NAR file: what the registry does for
 *   `POST /api/v1/grafts` before compressing;
 * - **graft + import**: the same, then `nix-store --import` of the grafted paths, so they are valid in the store;
 * - **rebuild**: `nix-build` of X against Y 3.3 (the members that do not depend on Y are not rebuilt, as a graft
 *   does not touch them);
 * - **floor**: streaming the NARs of the members the graft reads once, to nowhere.
 *
 * Each member's build compiles a generated C file of `funcs` functions with `gcc -O2` and writes `mib` MiB of
 * deterministic data (AES-CTR of zeros) with the dependency's path in it: a small C package's worth of work. Real
 * packages of this size take far longer to build, so the rebuild ratio here is a lower bound.
 *
 * Correctness (a failure makes the run fail): the grafted X refers to Y 3.3 and not Y 3.2, `nix-store --verify-path`
 * accepts every grafted path, and the grafted X equals the rebuilt X byte for byte once the rebuilt members' hash
 * parts are mapped onto the grafted ones (the graft is what rebuilding gives, up to the self hash).
 */
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { BenchError, figuresSection, findTool, fmtBytes, fmtMs, log, median, rewriteReadmeSection, scratchRoot, BENCH_DIR } from "./lib.js";
import { NIX_TEST_CONFIG } from "../test/support/nix.js";
import { planGraft, type GraftedMember } from "../src/protocol/graft.js";
import { parseStorePath } from "../src/protocol/store-path.js";
import { writeGraft } from "../src/graft/engine.js";
import { dumpNar, pathInfo, type PathInfo } from "../src/nix/store.js";
import { exportPaths } from "../src/nix/nar-export.js";

export interface GraftBenchConfig {
  quick: boolean;
  /** Functions in each member's generated C file. */
  funcs: number;
  /** MiB of data per member (the four members get 1.6×, 1.4×, 0.8× and 1× of it). */
  mib: number;
  reps: number;
  rebuildReps: number;
}

export function graftConfig(quick: boolean): GraftBenchConfig {
  const env = (name: string, fallback: number) => {
    const v = process.env[name];
    return v && /^\d+$/.test(v) ? Number(v) : fallback;
  };
  return {
    quick,
    funcs: env("CPR_BENCH_GRAFT_FUNCS", quick ? 400 : 1500),
    mib: env("CPR_BENCH_GRAFT_MIB", quick ? 10 : 25),
    reps: Math.max(1, env("CPR_BENCH_GRAFT_REPS", quick ? 2 : 5)),
    rebuildReps: Math.max(1, env("CPR_BENCH_GRAFT_REBUILD_REPS", quick ? 1 : 2)),
  };
}

export interface GraftFigure {
  id: string;
  title: string;
  unit: "ms" | "bytes";
  samples: { cpr: number[]; baseline: number[] };
  baselineName: string;
  ratioKind: "cost" | "speedup";
  target: { op: "<=" | ">="; value: number } | null;
  note?: string;
}

interface Store {
  dir: string;
  store: string;
  env: NodeJS.ProcessEnv;
  nix(tool: string, args: readonly string[], input?: Buffer): string;
}

function makeStore(root: string): Store {
  const dir = mkdtempSync(join(root, "graft-"));
  const store = join(dir, "s");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    XDG_CACHE_HOME: join(dir, "cache"),
    NIX_CONFIG: `${NIX_TEST_CONFIG}\nkeep-derivations = false`,
  };
  delete env.NIX_REMOTE;
  return {
    dir,
    store,
    env,
    nix: (tool, args, input) => {
      try {
        return execFileSync(tool, ["--store", store, ...args], {
          env,
          cwd: dir,
          input,
          maxBuffer: 64 * 1024 * 1024,
          stdio: [input ? "pipe" : "ignore", "pipe", "pipe"],
        })
          .toString("utf8")
          .trim();
      } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        throw new BenchError(`${tool} ${args.join(" ")} failed: ${err.stderr?.toString().slice(-3000) || err.message}`);
      }
    },
  };
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** nix-build of one attribute; returns the output path. */
function build(s: Store, file: string, attr: string, yVersion: string, cfg: GraftBenchConfig): string {
  return s.nix("nix-build", [
    file,
    // A chroot store builds in a chroot: the host's tools (sh, gcc, openssl, awk) are bound into it.
    "--option",
    "sandbox-paths",
    "/bin=/usr/bin /lib=/usr/lib /lib64=/usr/lib64 /usr /etc/ssl /etc/alternatives",
    "-A",
    attr,
    "--no-out-link",
    "--arg",
    "yVersion",
    JSON.stringify(yVersion),
    "--arg",
    "funcs",
    String(cfg.funcs),
    "--arg",
    "mib",
    String(cfg.mib),
  ]);
}

/** Deletes paths (and nothing else) from the store, so that the next run builds or imports them again. */
function deletePaths(s: Store, paths: readonly string[]): void {
  const present = paths.filter((p) => existsSync(join(s.store, p)));
  if (present.length) s.nix("nix-store", ["--delete", ...present]);
}

interface GraftRun {
  ms: number;
  read: number;
  written: number;
  files: Map<string, string>;
  members: readonly GraftedMember[];
}

/**
 * The graft engine (`writeGraft`, as the registry and local grafts run it): every member of the plan streamed out of
 * the store, checked against its recorded NarHash, rewritten and scanned, into a NAR file in `outDir`.
 */
async function graftOnce(s: Store, closure: readonly PathInfo[], old: string, neu: string, outDir: string): Promise<GraftRun> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const t0 = process.hrtime.bigint();
  const plan = planGraft(closure, new Map([[old, neu]]));
  const narHashes = new Map(closure.map((p) => [p.path, p.narHash]));
  const results = await writeGraft(plan, {
    source: { open: (p) => dumpNar(p, { store: s.store, env: s.env }), narHash: (p) => narHashes.get(p) ?? null },
    sink: {
      open: async (m) => {
        const file = join(outDir, `${parseStorePath(m.graft).hash}.nar`);
        return { output: createWriteStream(file), staged: file };
      },
    },
  });
  let read = 0;
  let written = 0;
  const files = new Map<string, string>();
  for (const r of results) {
    if (r.residue.hits.length || r.residue.unscanned.length || r.residue.damaged.length)
      throw new BenchError(`residue in the graft of ${r.original}: ${JSON.stringify(r.residue).slice(0, 2000)}`);
    read += r.narSize;
    written += r.narSize;
    files.set(r.graft, r.staged);
  }
  return { ms: ms(t0), read, written, files, members: plan.members };
}

async function importGrafts(s: Store, run: GraftRun): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn("nix-store", ["--store", s.store, "--import"], { env: s.env, stdio: ["pipe", "ignore", "pipe"] });
  const err: Buffer[] = [];
  child.stderr.on("data", (b: Buffer) => err.push(b));
  const exited = new Promise<number>((res) => child.on("close", (code) => res(code ?? 1)));
  await pipeline(
    exportPaths(run.members.map((m) => ({ path: m.graft, references: m.references, nar: createReadStream(run.files.get(m.graft)!) }))),
    child.stdin,
  );
  const code = await exited;
  if (code !== 0) throw new BenchError(`nix-store --import failed: ${Buffer.concat(err).toString().slice(-2000)}`);
  return ms(t0);
}

/** The floor: the same members' NARs streamed once into a counting sink, as many at once as the engine (2). */
async function floorOnce(s: Store, paths: readonly string[]): Promise<{ ms: number; bytes: number }> {
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const p = paths[next++]!;
      await pipeline(
        dumpNar(p, { store: s.store, env: s.env }),
        new Writable({
          write(chunk: Buffer, _enc, done) {
            bytes += chunk.length;
            done();
          },
        }),
      );
    }
  };
  await Promise.all([worker(), worker()]);
  return { ms: ms(t0), bytes };
}

export async function benchGraft(cfg: GraftBenchConfig): Promise<{ figures: GraftFigure[]; errors: string[]; details: unknown }> {
  for (const tool of ["nix-build", "nix-store", "nix", "gcc", "openssl", "awk"])
    if (!findTool(tool)) throw new BenchError(`the graft benchmark needs ${tool} on PATH`);
  const errors: string[] = [];
  const s = makeStore(scratchRoot());
  try {
    const file = join(s.dir, "graft.nix");
    writeFileSync(file, readFileSync(join(BENCH_DIR, "graft.nix")));
    log(`graft: building X against Y 3.2 (${cfg.funcs} functions, ${cfg.mib} MiB per member unit) in ${s.store}`);
    const y32 = build(s, file, "y", "3.2", cfg);
    const x32 = build(s, file, "x", "3.2", cfg);
    const y33 = build(s, file, "y", "3.3", cfg);
    const closure = await pathInfo([x32], { store: s.store, env: s.env, recursive: true });
    const closureBytes = closure.reduce((a, p) => a + p.narSize, 0);
    log(`graft: X's closure is ${closure.length} paths, ${fmtBytes(closureBytes)}`);

    const graftMs: number[] = [];
    const importMs: number[] = [];
    const floorMs: number[] = [];
    let last: GraftRun | null = null;
    let floorBytes = 0;
    for (let i = 0; i < cfg.reps; i++) {
      const f = await floorOnce(
        s,
        planGraft(closure, new Map([[y32, y33]])).members.map((m) => m.original),
      );
      floorMs.push(f.ms);
      floorBytes = f.bytes;
      const g = await graftOnce(s, closure, y32, y33, join(s.dir, "grafts"));
      graftMs.push(g.ms);
      deletePaths(
        s,
        [...g.members].reverse().map((m) => m.graft),
      );
      importMs.push(g.ms + (await importGrafts(s, g)));
      last = g;
      log(`graft: rep ${i + 1}: floor ${fmtMs(f.ms)}, graft ${fmtMs(g.ms)}, graft + import ${fmtMs(importMs.at(-1)!)}`);
    }
    const g = last!;
    const xGraft = g.members.find((m) => m.original === x32)!.graft;

    // Correctness of the grafted X.
    const refs = s.nix("nix-store", ["--query", "--references", xGraft]).split("\n");
    if (!refs.includes(y33) || refs.includes(y32)) errors.push(`the grafted X refers to ${refs.join(" ")}, not to Y 3.3 alone`);
    for (const m of g.members) {
      try {
        s.nix("nix-store", ["--verify-path", m.graft]);
      } catch (e) {
        errors.push(`nix-store --verify-path ${m.graft}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }

    // Rebuild against Y 3.3: the members that depend on Y are built again each rep.
    const rebuildMs: number[] = [];
    let x33 = "";
    for (let i = 0; i < cfg.rebuildReps; i++) {
      if (x33) {
        const rebuilt = (await pathInfo([x33], { store: s.store, env: s.env, recursive: true }))
          .map((p) => p.path)
          .filter((p) => /-x-(core|plugins)-1\.0$|-x-1\.0$/.test(p));
        deletePaths(s, [x33, ...rebuilt.filter((p) => p !== x33).reverse()]);
      }
      const t0 = process.hrtime.bigint();
      x33 = build(s, file, "x", "3.3", cfg);
      rebuildMs.push(ms(t0));
      log(`graft: rebuild ${i + 1}: ${fmtMs(rebuildMs.at(-1)!)}`);
    }

    // The graft equals the rebuild up to the grafted members' own hash parts.
    const rebuiltClosure = await pathInfo([x33], { store: s.store, env: s.env, recursive: true });
    const byName = new Map(rebuiltClosure.map((p) => [parseStorePath(p.path).name, p.path]));
    const map = new Map<string, string>();
    for (const m of g.members) {
      const rebuilt = byName.get(parseStorePath(m.original).name);
      if (rebuilt) map.set(parseStorePath(rebuilt).hash, parseStorePath(m.graft).hash);
    }
    const rebuiltNar = execFileSync(
      "nix",
      ["--store", s.store, "--extra-experimental-features", "nix-command", "store", "dump-path", x33],
      {
        env: s.env,
        maxBuffer: 1024 * 1024 * 1024,
      },
    );
    let normalised = rebuiltNar.toString("latin1");
    for (const [from, to] of map) normalised = normalised.split(from).join(to);
    const graftNar = readFileSync(g.files.get(xGraft)!).toString("latin1");
    if (normalised !== graftNar) errors.push("the grafted X differs from the rebuilt X beyond the members' own hash parts");

    const rebuiltBytes = rebuiltClosure
      .filter((p) => g.members.some((m) => parseStorePath(m.original).name === parseStorePath(p.path).name))
      .reduce((a, p) => a + p.narSize, 0);
    const rebuildNote = `${closure.length} paths, ${fmtBytes(closureBytes)} closure; ${g.members.length} members grafted (${fmtBytes(g.read)} read, ${fmtBytes(g.written)} written); the rebuild compiles ${g.members.length} members' C (${cfg.funcs} functions each, gcc -O2) and writes their data`;
    const figures: GraftFigure[] = [
      {
        id: "graft.rebuild",
        title: "graft X onto Y 3.3 (stream, rewrite, residue scan, write)",
        unit: "ms",
        samples: { cpr: graftMs, baseline: rebuildMs },
        baselineName: "nix-build of X against Y 3.3",
        ratioKind: "speedup",
        target: { op: ">=", value: 10 },
        note: rebuildNote,
      },
      {
        id: "graft.floor",
        title: "graft X onto Y 3.3, against streaming its NARs once",
        unit: "ms",
        samples: { cpr: graftMs, baseline: floorMs },
        baselineName: `nix store dump-path of the ${g.members.length} members (${fmtBytes(floorBytes)})`,
        ratioKind: "cost",
        target: { op: "<=", value: 2 },
        note: "both two members at a time; beyond the floor's reading, the graft hashes each original (checked against its recorded NarHash, as the registry does) and its output, rewrites, parses the NAR for the residue scan and writes the result to a file",
      },
      {
        id: "graft.import",
        title: "graft X onto Y 3.3 and nix-store --import it",
        unit: "ms",
        samples: { cpr: importMs, baseline: rebuildMs },
        baselineName: "nix-build of X against Y 3.3",
        ratioKind: "speedup",
        target: null,
        note: "the graft ends with the grafted paths valid in the store, as the rebuild does",
      },
      {
        id: "graft.bytes",
        title: "bytes the graft reads and writes (NARs)",
        unit: "bytes",
        samples: { cpr: [g.read + g.written], baseline: [rebuiltBytes] },
        baselineName: "NAR bytes of the members the rebuild writes",
        ratioKind: "cost",
        target: null,
        note: `the graft reads ${fmtBytes(g.read)} and writes ${fmtBytes(g.written)}; the rebuild writes its outputs and reads its sources and compiler, not counted`,
      },
    ];
    return {
      figures,
      errors,
      details: {
        closurePaths: closure.length,
        closureBytes,
        grafted: g.members.map((m) => ({ original: m.original, graft: m.graft })),
        graftMs,
        importMs,
        floorMs,
        rebuildMs,
        medianGraftMs: median(graftMs),
      },
    };
  } finally {
    try {
      execFileSync("chmod", ["-R", "u+w", s.dir], { stdio: "ignore" });
    } catch {
      /* best effort */
    }
    if (!process.env.CPR_KEEP_TMP) rmSync(s.dir, { recursive: true, force: true });
  }
}

function row(f: GraftFigure): string[] {
  const v = f.samples.cpr.length ? median(f.samples.cpr) : null;
  const b = f.samples.baseline.length ? median(f.samples.baseline) : null;
  const fmt = (x: number | null) => (x === null ? "–" : f.unit === "bytes" ? fmtBytes(x) : fmtMs(x));
  const ratio = v && b ? (f.ratioKind === "cost" ? v / b : b / v) : null;
  const pass = ratio === null || !f.target ? null : f.target.op === ">=" ? ratio >= f.target.value : ratio <= f.target.value;
  const ratioText = ratio === null ? "–" : f.ratioKind === "cost" ? `${ratio.toFixed(2)}×` : `${ratio.toFixed(1)}× faster`;
  const target = f.target ? (f.ratioKind === "cost" ? `≤ ${f.target.value}×` : `≥ ${f.target.value}× faster`) : "";
  return [f.title, fmt(v), `${fmt(b)} (${f.baselineName})`, ratioText, target, pass === null ? "" : pass ? "✓" : "✗"];
}

export function graftMarkdown(figures: readonly GraftFigure[], cfg: GraftBenchConfig, rev: string): string {
  const notes = figures.filter((f) => f.note).map((f) => `- ${f.title}: ${f.note}.`);
  return figuresSection(
    `at cpr ${rev}${cfg.quick ? " with `--quick`" : ""} (${cfg.reps} graft runs, ${cfg.rebuildReps} rebuilds, medians).`,
    figures.map(row),
    notes,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const cfg = graftConfig(args.includes("--quick"));
  benchGraft(cfg).then(
    ({ figures, errors }) => {
      for (const f of figures) console.log(row(f).join("  |  "));
      for (const e of errors) console.error(`[bench] *** ${e}`);
      if (args.includes("--write-readme")) {
        const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: BENCH_DIR, encoding: "utf8" }).trim();
        rewriteReadmeSection("graft-figures", graftMarkdown(figures, cfg, rev));
      }
      if (errors.length) process.exitCode = 1;
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    },
  );
}
