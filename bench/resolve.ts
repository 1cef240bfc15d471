/**
 * Resolution benchmark (issue 3): `npm run bench -- --only resolve`, or `node dist/bench/resolve.js [--quick]
 * [--write-readme]`.
 *
 * The graph: R generated repositories × A atoms × V versions each, served by `git daemon` on loopback through a
 * counting relay (no delay: it only counts payload bytes and connections). A root project has D direct
 * dependencies; each direct one depends on F2 atoms, each of those on F3 more (a tree: 30 + 90 + 180 = 300 atoms
 * with the defaults), spread over the repositories in breadth-first order, every version of an atom carrying the
 * same `^1` requirements. The other atoms of each repository are filler (they must cost nothing).
 *
 * Measured: cold `cpr resolve` (empty cache), warm (cache kept, atom.lock removed), no-op (lock kept: no
 * connection), and the same graph as Nix flakes — one flake per atom in a `git+file` repository per set, inputs
 * pointing at the flakes they depend on (`?dir=`) — locked with `nix flake lock`, timed side by side. Bytes for Nix:
 * the size of its private store and fetcher cache afterwards (what it copied).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, readdirSync, statSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  benchEnv,
  BENCH_DIR,
  BenchError,
  CPR_BIN,
  envInt,
  findTool,
  fmtBytes,
  fmtMs,
  git,
  log,
  median,
  run,
  scratchRoot,
  rewriteReadmeSection,
  figuresSection,
} from "./lib.js";
import { Relay } from "./relay.js";
import { startGitDaemon } from "./servers.js";

export interface ResolveBenchConfig {
  quick: boolean;
  repos: number;
  atoms: number;
  versions: number;
  direct: number;
  fan2: number;
  fan3: number;
  reps: number;
}

/** A figure, in the shape run.ts's `figure()` takes. */
export interface ResolveFigure {
  id: string;
  title: string;
  unit: "ms" | "bytes";
  baselineName: string;
  ratioKind: "cost" | "speedup" | "saving";
  target: { op: "<=" | ">="; value: number } | null;
  samples: { cpr: number[]; baseline: number[] };
  note?: string;
  error?: string;
}

export function resolveConfig(quick: boolean): ResolveBenchConfig {
  return {
    quick,
    repos: envInt("CPR_BENCH_RESOLVE_REPOS", quick ? 5 : 20),
    atoms: envInt("CPR_BENCH_RESOLVE_ATOMS", quick ? 50 : 200),
    versions: envInt("CPR_BENCH_RESOLVE_VERSIONS", quick ? 3 : 10),
    direct: envInt("CPR_BENCH_RESOLVE_DIRECT", quick ? 6 : 30),
    fan2: quick ? 2 : 3,
    fan3: 2,
    reps: envInt("CPR_BENCH_REPS", quick ? 2 : 3),
  };
}

export interface Node {
  index: number;
  repo: number;
  label: string;
  children: number[];
  level: number;
}

/** The tree of depended-on atoms, in breadth-first order, spread evenly over the repositories. */
export function makeTree(cfg: ResolveBenchConfig): Node[] {
  const nodes: Node[] = [];
  const l1 = cfg.direct;
  const l2 = l1 * cfg.fan2;
  const l3 = l2 * cfg.fan3;
  const total = l1 + l2 + l3;
  for (let i = 0; i < total; i++) {
    const repo = Math.floor((i * cfg.repos) / total);
    const level = i < l1 ? 1 : i < l1 + l2 ? 2 : 3;
    nodes.push({ index: i, repo, label: `n${i}`, children: [], level });
  }
  for (let i = 0; i < l1; i++) for (let k = 0; k < cfg.fan2; k++) nodes[i]!.children.push(l1 + i * cfg.fan2 + k);
  for (let j = 0; j < l2; j++) for (let k = 0; k < cfg.fan3; k++) nodes[l1 + j]!.children.push(l1 + l2 + j * cfg.fan3 + k);
  return nodes;
}

/** An atom's other content (the same bytes on both sides): a 2 KiB Nix file, as a small package has. */
function atomSource(label: string): string {
  const lines = [`# ${label}: generated package expression`, "{ stdenv, fetchurl }:", "stdenv.mkDerivation {", `  pname = "${label}";`];
  for (let i = 0; lines.join("\n").length < 2048; i++) lines.push(`  # ${createHash("sha256").update(`${label}/${i}`).digest("hex")}`);
  lines.push("}");
  return lines.join("\n") + "\n";
}

export function atomManifest(label: string, version: string, deps: readonly Node[], repoUrl: (r: number) => string): string {
  let s = `[package]\nlabel = "${label}"\nversion = "${version}"\n`;
  const repos = [...new Set(deps.map((d) => d.repo))].sort((a, b) => a - b);
  if (repos.length) {
    s += "\n[package.sets]\n";
    for (const r of repos) s += `r${r} = "${repoUrl(r)}"\n`;
  }
  s += `\n[compose.as]\nnix = "."\n`;
  for (const r of repos) {
    s += `\n[deps.from.r${r}]\n`;
    for (const d of deps.filter((x) => x.repo === r)) s += `${d.label} = "^1"\n`;
  }
  return s;
}

/** One bare set repository, written with one `git fast-import` and one `update-ref --stdin`. */
export async function makeRepo(
  dir: string,
  r: number,
  cfg: ResolveBenchConfig,
  labels: readonly { label: string; deps: readonly Node[] }[],
  repoUrl: (r: number) => string,
): Promise<void> {
  await git(dir, ["init", "-q", "--bare", "."]);
  const parts: string[] = [];
  const who = "Bench <bench@example.org> 1700000000 +0000";
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
  parts.push(
    `blob\nmark :1\n${data(`set ${r}\n`)}commit refs/heads/main\nmark :2\ncommitter ${who}\n${data(`set ${r}`)}M 100644 :1 README\n\n`,
  );
  let mark = 3;
  const marks: { label: string; version: string; blob: number; commit: number }[] = [];
  for (const { label, deps } of labels) {
    for (let v = 0; v < cfg.versions; v++) {
      const version = `1.${v}.0`;
      const blob = mark++;
      const commit = mark++;
      parts.push(`blob\nmark :${blob}\n${data(atomManifest(label, version, deps, repoUrl))}`);
      parts.push(
        `commit refs/eka/atoms/${label}/${version}\nmark :${commit}\ncommitter ${who}\n${data(`publish(${label}): ${version}`)}M 100644 :${blob} atom.toml\nM 100644 inline default.nix\n${data(`{ }: "${label}-${version}"`)}M 100644 inline src.nix\n${data(atomSource(label))}\n`,
      );
      marks.push({ label, version, blob, commit });
    }
  }
  const marksFile = join(dir, "marks");
  await run("git", ["fast-import", "--quiet", `--export-marks=${marksFile}`], { cwd: dir, env: benchEnv(), input: parts.join("") });
  const oid = new Map(
    readFileSync(marksFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [m, o] = l.split(" ") as [string, string];
        return [Number(m.slice(1)), o];
      }),
  );
  const root = oid.get(2)!;
  const lines = [`update refs/ekala/init ${root}`];
  for (const m of marks) {
    lines.push(`update refs/eka/meta/${m.label}/${m.version}/manifest ${oid.get(m.blob)!}`);
    lines.push(`update refs/eka/meta/${m.label}/${m.version}/origin ${root}`);
  }
  await run("git", ["update-ref", "--stdin"], { cwd: dir, env: benchEnv(), input: lines.join("\n") + "\n" });
  await git(dir, ["pack-refs", "--all"]);
  rmSync(marksFile);
}

/** The same graph as flakes: one git repository per set, one flake directory per atom (all A of them). */
async function makeFlakes(
  base: string,
  cfg: ResolveBenchConfig,
  perRepo: readonly { label: string; deps: readonly Node[] }[][],
  nodes: readonly Node[],
): Promise<string> {
  const flakeUrl = (n: Node) => `git+file://${join(base, `r${n.repo}`)}?dir=${n.label}`;
  for (let r = 0; r < cfg.repos; r++) {
    const dir = join(base, `r${r}`);
    mkdirSync(dir, { recursive: true });
    for (const { label, deps } of perRepo[r]!) {
      mkdirSync(join(dir, label), { recursive: true });
      const inputs = deps.map((d) => `    ${d.label}.url = "${flakeUrl(d)}";\n`).join("");
      writeFileSync(join(dir, label, "flake.nix"), `{\n  inputs = {\n${inputs}  };\n  outputs = { self, ... }: { };\n}\n`);
      writeFileSync(join(dir, label, "default.nix"), `{ }: "${label}"\n`);
      writeFileSync(join(dir, label, "src.nix"), atomSource(label));
    }
    await git(dir, ["init", "-q", "-b", "main"]);
    await git(dir, ["add", "-A"]);
    await git(dir, ["commit", "-q", "-m", `set ${r}`]);
  }
  const root = join(base, "app");
  mkdirSync(root, { recursive: true });
  const direct = nodes.filter((n) => n.level === 1);
  writeFileSync(
    join(root, "flake.nix"),
    `{\n  inputs = {\n${direct.map((d) => `    ${d.label}.url = "${flakeUrl(d)}";\n`).join("")}  };\n  outputs = { self, ... }: { };\n}\n`,
  );
  await git(root, ["init", "-q", "-b", "main"]);
  await git(root, ["add", "-A"]);
  await git(root, ["commit", "-q", "-m", "app"]);
  return root;
}

function duBytes(path: string): number {
  let total = 0;
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else total += st.size;
  };
  walk(path);
  return total;
}

function makeWritable(path: string): void {
  try {
    const st = statSync(path);
    if (st.isDirectory()) {
      chmodSync(path, 0o755);
      for (const e of readdirSync(path)) makeWritable(join(path, e));
    }
  } catch {
    /* ignore */
  }
}

export async function benchResolve(cfg: ResolveBenchConfig): Promise<{ figures: ResolveFigure[]; details: Record<string, unknown> }> {
  const scratch = mkdtempSync(join(scratchRoot(), "resolve-"));
  const served = join(scratch, "served");
  mkdirSync(served, { recursive: true });
  const daemon = await startGitDaemon(served);
  const relay = new Relay({ host: "127.0.0.1", port: daemon.port }, { bandwidthBps: Infinity, latencyMs: 0 });
  const relayPort = await relay.listen();
  const figures: ResolveFigure[] = [];
  const details: Record<string, unknown> = {};
  try {
    const nodes = makeTree(cfg);
    const repoUrl = (r: number) => `git://127.0.0.1:${relayPort}/r${r}.git`;
    const perRepo: { label: string; deps: Node[] }[][] = [];
    for (let r = 0; r < cfg.repos; r++) {
      const own = nodes.filter((n) => n.repo === r).map((n) => ({ label: n.label, deps: n.children.map((c) => nodes[c]!) }));
      if (own.length > cfg.atoms) throw new BenchError(`repository ${r} would hold ${own.length} tree atoms, more than ${cfg.atoms}`);
      for (let k = own.length; k < cfg.atoms; k++) own.push({ label: `f${r}-${k}`, deps: [] });
      perRepo.push(own);
    }
    const t0 = Date.now();
    await Promise.all(
      perRepo.map((labels, r) => {
        const dir = join(served, `r${r}.git`);
        mkdirSync(dir, { recursive: true });
        return makeRepo(dir, r, cfg, labels, repoUrl);
      }),
    );
    log(`resolve: generated ${cfg.repos} repositories × ${cfg.atoms} atoms × ${cfg.versions} versions in ${fmtMs(Date.now() - t0)}`);

    // The root project.
    const project = join(scratch, "project");
    const appDir = join(project, "app");
    mkdirSync(appDir, { recursive: true });
    const direct = nodes.filter((n) => n.level === 1);
    writeFileSync(join(appDir, "atom.toml"), atomManifest("app", "0.1.0", direct, repoUrl));
    await git(project, ["init", "-q", "-b", "main"]);
    await git(project, ["add", "-A"]);
    await git(project, ["commit", "-q", "-m", "app"]);

    const cache = join(scratch, "cache");
    const env = benchEnv({ CPR_CACHE_DIR: cache, XDG_CONFIG_HOME: join(scratch, "config"), CPR_LISTING_TTL: "3600" });
    const lockFile = join(appDir, "atom.lock");
    const resolveOnce = async () => {
      const before = relay.stats();
      const r = await run(CPR_BIN, ["resolve", "--json"], { cwd: appDir, env, timeoutMs: 600_000 });
      const after = relay.stats();
      const out = JSON.parse(r.stdout) as { status: string; atoms: unknown[]; network: { roundTrips: number; connections: number } };
      return {
        ms: r.ms,
        received: after.received - before.received,
        sent: after.sent - before.sent,
        connections: after.connections - before.connections,
        out,
      };
    };
    const cold: Awaited<ReturnType<typeof resolveOnce>>[] = [];
    const warm: Awaited<ReturnType<typeof resolveOnce>>[] = [];
    const noop: Awaited<ReturnType<typeof resolveOnce>>[] = [];
    for (let i = 0; i < cfg.reps; i++) {
      rmSync(cache, { recursive: true, force: true });
      rmSync(lockFile, { force: true });
      const c = await resolveOnce();
      if (c.out.atoms.length !== nodes.length)
        throw new BenchError(`cold resolve locked ${c.out.atoms.length} atoms, expected ${nodes.length}`);
      cold.push(c);
      log(
        `resolve cold: ${fmtMs(c.ms)}, ${fmtBytes(c.received)} received, ${c.connections} connections, ${c.out.network.roundTrips} round trips`,
      );
      const lockText = readFileSync(lockFile, "utf8");
      rmSync(lockFile);
      const w = await resolveOnce();
      if (readFileSync(lockFile, "utf8") !== lockText) throw new BenchError("warm resolve wrote another lock than the cold one");
      warm.push(w);
      log(`resolve warm: ${fmtMs(w.ms)}, ${w.connections} connections`);
      const n = await resolveOnce();
      if (n.out.status !== "unchanged" || n.connections !== 0)
        throw new BenchError(`no-op resolve: status ${n.out.status}, ${n.connections} connection(s)`);
      noop.push(n);
      log(`resolve no-op: ${fmtMs(n.ms)}, ${n.connections} connections`);
    }
    details.cold = cold.map((c) => ({
      ms: c.ms,
      received: c.received,
      sent: c.sent,
      connections: c.connections,
      roundTrips: c.out.network.roundTrips,
    }));
    details.warm = warm.map((c) => ({ ms: c.ms, connections: c.connections }));
    details.noop = noop.map((c) => ({ ms: c.ms, connections: c.connections }));

    // Nix flakes, side by side.
    const nixMs: number[] = [];
    const nixBytes: number[] = [];
    let nixError: string | undefined;
    if (!findTool("nix")) nixError = "nix is not installed";
    else {
      const flakes = join(scratch, "flakes");
      const appFlake = await makeFlakes(flakes, cfg, perRepo, nodes);
      for (let i = 0; i < cfg.reps; i++) {
        const store = join(scratch, `nix-${i}`);
        mkdirSync(store, { recursive: true });
        const nixEnv = benchEnv({
          NIX_REMOTE: `local?root=${store}`,
          HOME: store,
          XDG_CACHE_HOME: join(store, "cache"),
          XDG_CONFIG_HOME: join(store, "config"),
          NIX_CONFIG: "build-users-group =\nsubstituters =\nexperimental-features = nix-command flakes",
        });
        rmSync(join(appFlake, "flake.lock"), { force: true });
        const r = await run("nix", ["--extra-experimental-features", "nix-command flakes", "flake", "lock", appFlake], {
          env: nixEnv,
          check: false,
          timeoutMs: 1_800_000,
        });
        if (r.code !== 0) {
          nixError = `nix flake lock exited ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" ")}`;
          break;
        }
        const lock = JSON.parse(readFileSync(join(appFlake, "flake.lock"), "utf8")) as { nodes: Record<string, unknown> };
        const count = Object.keys(lock.nodes).length - 1;
        if (count !== nodes.length) log(`resolve: nix locked ${count} nodes (cpr: ${nodes.length})`);
        nixMs.push(r.ms);
        // What Nix copied: its store paths and its fetcher cache (not its database).
        nixBytes.push(duBytes(join(store, "nix", "store")) + duBytes(join(store, "cache")));
        log(`nix flake lock: ${fmtMs(r.ms)}, ${fmtBytes(nixBytes[nixBytes.length - 1]!)} in its store and caches, ${count} nodes`);
        makeWritable(store);
        rmSync(store, { recursive: true, force: true });
      }
    }
    const shape = `${cfg.repos} repos × ${cfg.atoms} atoms × ${cfg.versions} versions; ${cfg.direct} direct + ${nodes.length - cfg.direct} transitive deps (depth 3)`;
    figures.push({
      id: "resolve.cold.time",
      title: "Resolve, cold cache: time",
      unit: "ms",
      baselineName: "nix flake lock",
      ratioKind: "speedup",
      target: { op: ">=", value: 10 },
      samples: { cpr: cold.map((c) => c.ms), baseline: nixMs },
      note: `${shape}; git:// on loopback; cpr ${median(cold.map((c) => c.connections))} connections, ${median(cold.map((c) => c.out.network.roundTrips))} round trips`,
      ...(nixError ? { error: nixError } : {}),
    });
    figures.push({
      id: "resolve.cold.bytes",
      title: "Resolve, cold cache: bytes",
      unit: "bytes",
      baselineName: "nix flake lock",
      ratioKind: "saving",
      target: { op: ">=", value: 100 },
      samples: { cpr: cold.map((c) => c.received), baseline: nixBytes },
      note: "cpr: bytes received from the server (counted by a relay); Nix: bytes of the store paths and fetcher cache it wrote (copied), its database excluded",
      ...(nixError ? { error: nixError } : {}),
    });
    figures.push({
      id: "resolve.warm.time",
      title: "Resolve, warm cache (no lock): time",
      unit: "ms",
      baselineName: "cold",
      ratioKind: "speedup",
      target: null,
      samples: { cpr: warm.map((c) => c.ms), baseline: cold.map((c) => c.ms) },
      note: `connections: ${median(warm.map((c) => c.connections))}`,
    });
    figures.push({
      id: "resolve.noop.time",
      title: "Resolve, lock satisfies manifest: time",
      unit: "ms",
      baselineName: "cold",
      ratioKind: "speedup",
      target: null,
      samples: { cpr: noop.map((c) => c.ms), baseline: cold.map((c) => c.ms) },
      note: "no connection opened (checked through the relay)",
    });
    return { figures, details };
  } finally {
    await relay.close();
    await daemon.stop();
    makeWritable(scratch);
    rmSync(scratch, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------

function fmt(f: ResolveFigure): string[] {
  const v = median(f.samples.cpr);
  const b = f.samples.baseline.length ? median(f.samples.baseline) : NaN;
  const val = (x: number) => (Number.isNaN(x) ? "–" : f.unit === "ms" ? fmtMs(x) : fmtBytes(x));
  const ratio = f.ratioKind === "cost" ? v / b : b / v;
  const ok = Number.isFinite(ratio);
  const pass =
    f.target === null || !ok ? "" : (f.target.op === "<=" ? ratio <= f.target.value : ratio >= f.target.value) ? "✓ pass" : "✗ miss";
  const how = f.ratioKind === "cost" ? "cpr ÷ baseline" : "baseline ÷ cpr";
  const target = f.target === null ? "info" : `${f.target.op === "<=" ? "≤" : "≥"} ${f.target.value}×`;
  return [
    f.title,
    val(v),
    `${val(b)} (${f.baselineName})`,
    ok ? `${ratio >= 100 ? Math.round(ratio) : ratio.toFixed(2)}× (${how})` : (f.error ?? "–"),
    target,
    pass,
  ];
}

export function resolveMarkdown(figures: readonly ResolveFigure[], cfg: ResolveBenchConfig, rev: string): string {
  const notes = figures.filter((f) => f.note).map((f) => `- ${f.title}: ${f.note}.`);
  return figuresSection(`at cpr ${rev}; ${cfg.reps} repetitions (median).`, figures.map(fmt), notes);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const cfg = resolveConfig(args.includes("--quick"));
  benchResolve(cfg).then(
    ({ figures }) => {
      for (const f of figures) console.log(fmt(f).join("  |  "));
      if (args.includes("--write-readme")) {
        const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: BENCH_DIR, encoding: "utf8" }).trim();
        rewriteReadmeSection("resolve-figures", resolveMarkdown(figures, cfg, rev));
      }
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    },
  );
}
