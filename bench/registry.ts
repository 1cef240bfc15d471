/**
 * Registry benchmark (the registry issue): `npm run bench -- --only registry`, or `node dist/bench/registry.js
 * [--quick] [--write-readme]`.
 *
 * 1. narinfo throughput and latency. N build records (default 100,000: 10,000 atoms × 10 versions, one output path
 *    each, narinfos rendered with formatNarInfo and signed with signDetached) are loaded through RegistryDb into
 *    SQLite and into a throwaway PostgreSQL server; each database is served by a registry started with
 *    `startRegistry` in a Node process of its own (this file with `--serve`). The baseline is nginx (one worker)
 *    serving the same narinfo texts as static files. `wrk` (a second process on loopback) requests a random one of
 *    the N narinfo URLs per request (wrk.lua below); after a warm-up, several short runs per server, interleaved,
 *    median requests/s and p99 latency.
 * 2. `cpr get` of a built package against `nix-build` of the same atom from source: a one-atom set whose derivation
 *    does real work with /bin/sh, built once with `cpr build --push` into a running registry, then each timed into
 *    a fresh throwaway store.
 *
 * The fixture (signing key + SQLite database) is cached under bench/out/registry/, keyed by the generator version,
 * its parameters and the compiled database and migrations modules (a schema change regenerates it). Everything else is rebuilt per
 * run in the scratch space (tmpfs).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import {
  benchEnv,
  BENCH_DIR,
  BenchError,
  CPR_BIN,
  ensureDir,
  envInt,
  figuresSection,
  findTool,
  fmtMs,
  git,
  log,
  median,
  OUT_DIR,
  REPO_ROOT,
  Rng,
  run,
  rewriteReadmeSection,
  scratchRoot,
} from "./lib.js";
import { startNginx, startPostgres, type PostgresServer, type StaticServer } from "./servers.js";
import { stopper } from "../test/support/servers.js";
import type { AtomRow, BuildRow, PathRow, RegistryDb, VersionRow } from "../src/serve/db.js";
import type { SecretKey } from "../src/protocol/nix-key.js";

/** Bump when the generated records change: the cached fixture is keyed by it. */
const GENERATOR_VERSION = 3;

export interface RegistryBenchConfig {
  quick: boolean;
  /** Build records (= output paths = narinfo URLs). */
  records: number;
  /** Versions per atom (records / versions atoms). */
  versions: number;
  seed: number;
  /** Timed wrk runs per server (median). */
  runs: number;
  warmupSec: number;
  durationSec: number;
  connections: number;
  threads: number;
  /** Repetitions of the get / nix-build comparison. */
  getReps: number;
  /** Megabytes the part-2 derivation writes. */
  workMiB: number;
  /** Which parts: "narinfo", "get", "pages". */
  parts: Set<string>;
}

export function registryConfig(quick: boolean): RegistryBenchConfig {
  const parts = new Set((process.env.CPR_BENCH_REGISTRY_PARTS ?? "narinfo,get,pages").split(",").filter(Boolean));
  return {
    quick,
    records: envInt("CPR_BENCH_REGISTRY_RECORDS", quick ? 10_000 : 100_000),
    versions: 10,
    seed: envInt("CPR_BENCH_SEED", 1),
    runs: Math.max(1, envInt("CPR_BENCH_REGISTRY_RUNS", quick ? 3 : 5)),
    warmupSec: Math.max(1, envInt("CPR_BENCH_REGISTRY_WARMUP", quick ? 1 : 5)),
    durationSec: Math.max(1, envInt("CPR_BENCH_REGISTRY_DURATION", quick ? 2 : 5)),
    connections: Math.max(1, envInt("CPR_BENCH_REGISTRY_CONNECTIONS", 16)),
    threads: Math.max(1, envInt("CPR_BENCH_REGISTRY_THREADS", 1)),
    getReps: Math.max(1, envInt("CPR_BENCH_GET_REPS", quick ? 2 : 5)),
    workMiB: Math.max(1, envInt("CPR_BENCH_GET_MIB", quick ? 16 : 64)),
    parts,
  };
}

/** A figure, in the shape run.ts's `figure()` takes. */
export interface RegistryFigure {
  id: string;
  title: string;
  unit: "ms" | "bytes" | "req/s";
  baselineName: string;
  ratioKind: "cost" | "speedup" | "saving";
  ratioLabel?: string;
  target: { op: "<=" | ">="; value: number } | null;
  /** A target on cpr's own value rather than on the ratio (p99 < 10 ms): shown in the target column, decides pass. */
  absoluteTarget?: { op: "<" | "<="; value: number; text: string };
  samples: { cpr: number[]; baseline: number[] };
  note?: string;
  error?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// The protocol modules, loaded when needed (the registry is being written: a missing export must not break the
// rest of the suite at link time).

interface Protocol {
  openDb(url: string): Promise<RegistryDb>;
  formatNarInfo: typeof import("../src/protocol/narinfo.js").formatNarInfo;
  narInfoFingerprint: typeof import("../src/protocol/narinfo.js").narInfoFingerprint;
  generateSecretKey: typeof import("../src/protocol/nix-key.js").generateSecretKey;
  formatSecretKey: typeof import("../src/protocol/nix-key.js").formatSecretKey;
  parseSecretKey: typeof import("../src/protocol/nix-key.js").parseSecretKey;
  publicKeyOf: typeof import("../src/protocol/nix-key.js").publicKeyOf;
  formatPublicKey: typeof import("../src/protocol/nix-key.js").formatPublicKey;
  parsePublicKey: typeof import("../src/protocol/nix-key.js").parsePublicKey;
  signDetached: typeof import("../src/protocol/nix-key.js").signDetached;
  verifyDetached: typeof import("../src/protocol/nix-key.js").verifyDetached;
  toNix32: typeof import("../src/protocol/nix-hash.js").toNix32;
  atomIdsOf: typeof import("../src/protocol/id.js").atomIdsOf;
  indexDependencies: typeof import("../src/serve/dependencies.js").indexDependencies;
}

async function loadProtocol(): Promise<Protocol> {
  const [db, narinfo, key, hash, id, deps] = await Promise.all([
    import("../src/serve/db-open.js"),
    import("../src/protocol/narinfo.js"),
    import("../src/protocol/nix-key.js"),
    import("../src/protocol/nix-hash.js"),
    import("../src/protocol/id.js"),
    import("../src/serve/dependencies.js"),
  ]);
  return {
    openDb: db.openDb,
    formatNarInfo: narinfo.formatNarInfo,
    narInfoFingerprint: narinfo.narInfoFingerprint,
    generateSecretKey: key.generateSecretKey,
    formatSecretKey: key.formatSecretKey,
    parseSecretKey: key.parseSecretKey,
    publicKeyOf: key.publicKeyOf,
    formatPublicKey: key.formatPublicKey,
    parsePublicKey: key.parsePublicKey,
    signDetached: key.signDetached,
    verifyDetached: key.verifyDetached,
    toNix32: hash.toNix32,
    atomIdsOf: id.atomIdsOf,
    indexDependencies: deps.indexDependencies,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Generated records

const SYSTEM = "x86_64-linux";
const CONFIG_JSON = JSON.stringify({ system: SYSTEM });
const CONFIG_HASH = createHash("sha256").update(CONFIG_JSON).digest("hex");
const SYLLABLES = [
  "lib",
  "gtk",
  "py",
  "xml",
  "ssl",
  "curl",
  "zip",
  "font",
  "doc",
  "net",
  "qt",
  "gnu",
  "perl",
  "ruby",
  "rs",
  "go",
  "tool",
  "kit",
  "core",
  "utils",
  "x11",
  "mesa",
  "sdl",
  "http",
  "json",
  "yaml",
  "dbus",
  "png",
  "jpeg",
  "z",
];

interface Fixture {
  root: string;
  atoms: AtomRow[];
  versions: VersionRow[];
  paths: PathRow[];
  builds: Omit<BuildRow, "buildId">[];
}

function rngBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng.next() * 256);
  return b;
}

/** Deterministic from the seed; signatures by `key` (ed25519 signatures are deterministic too). */
function generate(cfg: RegistryBenchConfig, p: Protocol, key: SecretKey): Fixture {
  const rng = new Rng(cfg.seed * 7919 + 17);
  const hex = (n: number) => Buffer.from(rngBytes(rng, n)).toString("hex");
  const hashPart = () => p.toNix32(rngBytes(rng, 20)); // 32 nix32 characters, as Nix's store path hashes
  const sha = () => `sha256:${p.toNix32(rngBytes(rng, 32))}`;
  const root = hex(20);
  const idOf = p.atomIdsOf(root);
  const atomCount = Math.ceil(cfg.records / cfg.versions);
  const atoms: AtomRow[] = [];
  const versions: VersionRow[] = [];
  const paths: PathRow[] = [];
  const builds: Omit<BuildRow, "buildId">[] = [];
  const at = 1_700_000_000_000;
  const labels: string[] = [];
  for (let a = 0; a < atomCount && builds.length < cfg.records; a++) {
    const parts = rng.int(1, 3);
    let label = "";
    for (let k = 0; k < parts; k++) label += (k ? "-" : "") + rng.pick(SYLLABLES);
    label = `${label}-${a.toString(36)}`;
    const id = idOf(label);
    labels.push(label);
    atoms.push({ id, root, label, description: `generated package ${label}`, tags: [rng.pick(SYLLABLES)] });
    let minor = 0;
    for (let v = 0; v < cfg.versions && builds.length < cfg.records; v++) {
      minor += rng.int(1, 3);
      const version = `1.${minor}.${rng.int(0, 9)}`;
      const rev = hex(20);
      // Atom dependencies in the set ("::"): up to 2 earlier atoms, mostly among the first 50 (the pages' dependents).
      const deps = new Set<string>();
      const nd = a ? rng.int(0, 2) : 0;
      for (let k = 0; k < nd; k++) deps.add(labels[rng.chance(0.6) ? rng.int(0, Math.min(49, a - 1)) : rng.int(0, a - 1)]!);
      const manifest =
        `[package]\nlabel = "${label}"\nversion = "${version}"\n` +
        (deps.size
          ? `\n[package.sets]\nhome = "::"\n\n[compose.as]\nnix = "default.nix"\n\n[deps.from.home]\n${[...deps].map((d) => `${d} = "^1"`).join("\n")}\n`
          : "");
      versions.push({ id, version, rev, origin: hex(20), manifest });
      const name = `${label}-${version}`;
      const h = hashPart();
      const storePath = `/nix/store/${h}-${name}`;
      const drv = `/nix/store/${hashPart()}-${name}.drv`;
      // References: itself half the time, and up to 5 earlier paths, mostly among the first 50 (the "glibc"s).
      const refs = new Set<string>();
      if (rng.chance(0.5)) refs.add(`${h}-${name}`);
      const n = paths.length ? rng.int(0, 5) : 0;
      for (let k = 0; k < n; k++) {
        const j = rng.chance(0.6) ? rng.int(0, Math.min(49, paths.length - 1)) : rng.int(0, paths.length - 1);
        refs.add(paths[j]!.storePath.slice("/nix/store/".length));
      }
      const references = [...refs].sort();
      const narSize = Math.round(Math.exp(Math.log(10_240) + rng.next() * (Math.log(100 * 2 ** 20) - Math.log(10_240))));
      const fileSize = Math.round(narSize * (0.2 + rng.next() * 0.2));
      const narHash = sha();
      const fileHash = sha();
      const url = `nar/${fileHash.slice("sha256:".length)}.nar.xz`;
      const deriver = drv.slice("/nix/store/".length);
      const sig = p.signDetached(key, p.narInfoFingerprint({ storePath, narHash, narSize, references }));
      const narinfo = p.formatNarInfo({
        storePath,
        url,
        compression: "xz",
        fileHash,
        fileSize,
        narHash,
        narSize,
        references,
        deriver,
        system: null,
        sigs: [sig],
        ca: null,
      });
      const createdAt = at + paths.length;
      paths.push({
        hashPart: h,
        storePath,
        narHash,
        narSize,
        fileHash,
        fileSize,
        compression: "xz",
        url,
        references,
        deriver,
        sigs: [sig],
        narinfo,
        createdAt,
      });
      builds.push({
        id,
        version,
        rev,
        system: SYSTEM,
        configHash: CONFIG_HASH,
        config: CONFIG_JSON,
        drv,
        outputs: { out: storePath },
        createdAt,
      });
    }
  }
  return { root, atoms, versions, paths, builds };
}

/**
 * Loads the fixture through RegistryDb: the set, its atoms and versions (one index pass, with the pages' dependency
 * index), paths, then builds.
 */
async function load(db: RegistryDb, fx: Fixture, concurrency: number, p: Protocol): Promise<void> {
  await db.migrate();
  await db.upsertSet(fx.root, [`file:///bench/registry/${fx.root}`]);
  await db.recordIndex(fx.root, fx.atoms, fx.versions, 1_700_000_000_000);
  await p.indexDependencies(db, fx.root);
  const each = async <T>(items: readonly T[], f: (x: T) => Promise<unknown>) => {
    let next = 0;
    const worker = async () => {
      while (next < items.length) await f(items[next++]!);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  await each(fx.paths, (r) => db.insertPath(r));
  await each(fx.builds, (b) => db.insertBuild(b));
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

interface CachedFixture {
  dir: string;
  key: SecretKey;
  fx: Fixture;
  sqlite: string;
  generateMs: number;
  sqliteLoadMs: number | null;
}

/** The signing key and the SQLite database, cached under bench/out/registry/<key>/; the records regenerated. */
async function ensureFixture(cfg: RegistryBenchConfig, p: Protocol, scratch: string): Promise<CachedFixture> {
  const dbModule = join(REPO_ROOT, "dist", "src", "serve", "db.js");
  const migrations = join(REPO_ROOT, "dist", "src", "serve", "migrations.js");
  const dbHash = createHash("sha256").update(sha256File(dbModule)).update(sha256File(migrations)).digest("hex");
  const cacheKey = `v${GENERATOR_VERSION}-n${cfg.records}-v${cfg.versions}-s${cfg.seed}-db${dbHash.slice(0, 12)}`;
  const dir = join(OUT_DIR, "registry", cacheKey);
  const keyFile = join(dir, "signing-key.sec");
  const sqlite = join(dir, "registry.sqlite");
  const done = join(dir, "fixture.json");
  let key: SecretKey;
  if (existsSync(done)) {
    key = p.parseSecretKey(readFileSync(keyFile, "utf8").trim(), keyFile);
    const t0 = Date.now();
    const fx = generate(cfg, p, key);
    const generateMs = Date.now() - t0;
    log(`registry: fixture ${cacheKey} cached; ${cfg.records.toLocaleString("en-US")} records regenerated in ${fmtMs(generateMs)}`);
    return { dir, key, fx, sqlite, generateMs, sqliteLoadMs: null };
  }
  // Fixtures of an older generator or database module go (each holds a database of up to ~100 MB); other sizes stay.
  const dbTag = cacheKey.slice(cacheKey.lastIndexOf("-db"));
  for (const old of existsSync(join(OUT_DIR, "registry")) ? readdirSync(join(OUT_DIR, "registry")) : []) {
    if (!old.startsWith(`v${GENERATOR_VERSION}-`) || !old.endsWith(dbTag))
      rmSync(join(OUT_DIR, "registry", old), { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
  ensureDir(dir);
  key = p.generateSecretKey("cpr-bench-1");
  writeFileSync(keyFile, p.formatSecretKey(key), { mode: 0o600 });
  let t0 = Date.now();
  const fx = generate(cfg, p, key);
  const generateMs = Date.now() - t0;
  log(`registry: generated ${cfg.records.toLocaleString("en-US")} records in ${fmtMs(generateMs)}`);
  // Built on the scratch tmpfs (no fsync cost), then copied into the cache.
  const tmpDb = join(scratch, "fixture.sqlite");
  t0 = Date.now();
  const db = await p.openDb(`sqlite:${tmpDb}`);
  try {
    await load(db, fx, 1, p);
    if ((await db.countPaths()) !== fx.paths.length || (await db.countBuilds()) !== fx.builds.length) {
      throw new BenchError(
        `SQLite fixture: ${await db.countPaths()} paths and ${await db.countBuilds()} builds after loading ${fx.paths.length} and ${fx.builds.length}`,
      );
    }
  } finally {
    await db.close();
  }
  const sqliteLoadMs = Date.now() - t0;
  log(`registry: loaded SQLite in ${fmtMs(sqliteLoadMs)}`);
  for (const suffix of ["", "-wal", "-shm"]) if (existsSync(tmpDb + suffix)) copyFileSync(tmpDb + suffix, sqlite + suffix);
  writeFileSync(done, JSON.stringify({ cacheKey, records: cfg.records, generateMs, sqliteLoadMs }, null, 2) + "\n");
  return { dir, key, fx, sqlite, generateMs, sqliteLoadMs };
}

// ---------------------------------------------------------------------------------------------------------------
// The registry under test: a Node process of its own running startRegistry (this file with --serve).

interface RegistryProcess {
  url: string;
  publicKey: string;
  pid: number;
  stop(): Promise<void>;
}

async function startRegistryProcess(dataDir: string, db: string, narinfoCacheSize?: number): Promise<RegistryProcess> {
  const self = fileURLToPath(import.meta.url);
  const child: ChildProcess = spawn(process.execPath, [self, "--serve", JSON.stringify({ dataDir, db, narinfoCacheSize })], {
    env: benchEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-8000)));
  const line = await new Promise<string>((resolvePromise, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new BenchError(`the registry did not start within 60 s: ${err}`)), 60_000);
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolvePromise(out.slice(0, nl));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new BenchError(`the registry exited (${code}) before listening: ${err.trim()}`));
    });
  });
  const info = JSON.parse(line) as { url: string; publicKey: string };
  return { ...info, pid: child.pid!, stop: stopper(child) };
}

/** `--serve JSON`: start a registry, print {url, publicKey} on one line, stop on SIGTERM. */
async function serveMain(json: string): Promise<void> {
  const opts = JSON.parse(json) as { dataDir: string; db: string; sets?: string[]; narinfoCacheSize?: number };
  const { startRegistry } = await import("../src/serve/serve.js");
  const reg = await startRegistry({
    dataDir: opts.dataDir,
    db: opts.db,
    listen: "127.0.0.1:0",
    log: false,
    refreshSeconds: 0,
    ...(opts.sets ? { sets: opts.sets } : {}),
    ...(opts.narinfoCacheSize !== undefined ? { narinfoCacheSize: opts.narinfoCacheSize } : {}),
  });
  process.stdout.write(JSON.stringify({ url: reg.url, publicKey: reg.publicKey }) + "\n");
  const stop = () => {
    reg.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

// ---------------------------------------------------------------------------------------------------------------
// CPU time of a process tree (to tell a server-bound run from a wrk-bound one)

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    /* gone, or not Linux */
  }
  return out;
}

/** utime + stime, in seconds (clock ticks of 1/100 s), of each process in the trees under `pids`. */
function cpuSnapshot(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  const walk = (pid: number) => {
    if (out.has(pid)) return;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / 100); // utime, stime (fields 14 and 15 of stat)
    } catch {
      return;
    }
    for (const c of childrenOf(pid)) walk(c);
  };
  for (const p of pids) walk(p);
  return out;
}

/**
 * CPU seconds used between two snapshots by the processes alive at the second one (a PostgreSQL backend that exits
 * in between, e.g. an idle pool connection, takes its ticks with it: counting it would make the sum negative).
 */
function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, t] of after) s += t - (before.get(pid) ?? 0);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// wrk

const WRK_LUA = `-- A random one of the narinfo URLs listed in the file args[1] per request; JSON summary on stdout.
local paths = {}
local n = 0
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    paths[n] = line
  end
  math.randomseed((tonumber(args[2]) or 1) * 1000 + (tid or 0))
  if args[3] then wrk.headers["Accept"] = args[3] end
end
function request()
  return wrk.format("GET", paths[math.random(n)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
`;

interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  /** Latencies in microseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** Requests per second. */
  rps: number;
  /** CPU seconds the server (process tree) used per wall second of the run. */
  serverCpu: number;
}

async function wrk(
  cfg: RegistryBenchConfig,
  script: string,
  pathsFile: string,
  url: string,
  seconds: number,
  seed: number,
  serverPids: readonly number[],
  accept?: string,
): Promise<WrkResult> {
  const cpu0 = cpuSnapshot(serverPids);
  const t0 = Date.now();
  const r = await run(
    "wrk",
    [
      "-t",
      String(cfg.threads),
      "-c",
      String(cfg.connections),
      "-d",
      `${seconds}s`,
      "--timeout",
      "5s",
      "-s",
      script,
      url,
      "--",
      pathsFile,
      String(seed),
      ...(accept ? [accept] : []),
    ],
    { env: benchEnv(), check: false, timeoutMs: (seconds + 60) * 1000 },
  );
  const wall = (Date.now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(serverPids)) / wall;
  if (r.code !== 0) throw new BenchError(`wrk against ${url} exited with ${r.code}: ${r.stderr.trim()}`);
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new BenchError(`wrk printed no summary: ${r.stdout.trim()} ${r.stderr.trim()}`);
  const s = JSON.parse(line) as Omit<WrkResult, "rps" | "serverCpu">;
  const errors = s.connect + s.read + s.write + s.status + s.timeout;
  if (errors > 0)
    throw new BenchError(
      `wrk against ${url}: ${s.requests} requests with errors connect ${s.connect}, read ${s.read}, write ${s.write}, non-2xx ${s.status}, timeout ${s.timeout}`,
    );
  if (s.requests === 0) throw new BenchError(`wrk against ${url} completed no request`);
  return { ...s, rps: s.requests / (s.durationUs / 1e6), serverCpu: cpu };
}

// ---------------------------------------------------------------------------------------------------------------
// Part 1: narinfo throughput and latency

type ServerName = "nginx" | "sqlite" | "postgres" | "sqlite-nocache" | "postgres-nocache";

interface Target {
  name: ServerName;
  url: string;
  pids: number[];
  /** The registry keeps narinfo hits in memory (its default). */
  cached: boolean;
}

const CPR_VARIANTS = [
  { name: "sqlite", db: "SQLite", cached: true },
  { name: "postgres", db: "PostgreSQL", cached: true },
  { name: "sqlite-nocache", db: "SQLite", cached: false },
  { name: "postgres-nocache", db: "PostgreSQL", cached: false },
] as const;

/** Every server must answer byte-identical narinfos (the stored texts), and cpr's must verify with its key. */
async function checkServers(targets: readonly Target[], fx: Fixture, p: Protocol, publicKey: string, rng: Rng): Promise<void> {
  const pub = p.parsePublicKey(publicKey, "the registry's public key");
  for (let i = 0; i < 200; i++) {
    const row = fx.paths[rng.int(0, fx.paths.length - 1)]!;
    for (const t of targets) {
      const res = await fetch(`${t.url}/${row.hashPart}.narinfo`);
      const body = await res.text();
      if (res.status !== 200 || body !== row.narinfo) {
        throw new BenchError(
          `${t.name}: GET /${row.hashPart}.narinfo answered ${res.status} with ${JSON.stringify(body.slice(0, 300))}; expected the stored narinfo ${JSON.stringify(row.narinfo.slice(0, 300))}`,
        );
      }
      const type = res.headers.get("content-type") ?? "";
      if (!type.startsWith("text/x-nix-narinfo"))
        throw new BenchError(`${t.name}: narinfo served as ${JSON.stringify(type)}, not text/x-nix-narinfo`);
    }
    if (i < 20) {
      const fp = p.narInfoFingerprint(row);
      if (!p.verifyDetached([pub], fp, row.sigs[0]!))
        throw new BenchError(`the signature of ${row.storePath} does not verify with the registry's key ${publicKey}`);
    }
  }
  for (const t of targets.filter((x) => x.name !== "nginx")) {
    const res = await fetch(`${t.url}/${"0".repeat(32)}.narinfo`);
    await res.arrayBuffer();
    if (res.status !== 404) throw new BenchError(`${t.name}: an unknown narinfo answered ${res.status}, not 404`);
  }
}

/** The registry's narinfo cache counters from /metrics. */
async function cacheCounters(url: string): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (result: string) => {
    const m = new RegExp(`^cpr_registry_narinfo_cache_total\\{[^}]*result="${result}"[^}]*\\} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { hit: get("hit"), miss: get("miss") };
}

interface NarinfoResult {
  figures: RegistryFigure[];
  details: Record<string, unknown>;
}

async function benchNarinfo(cfg: RegistryBenchConfig, scratch: string): Promise<NarinfoResult> {
  for (const tool of ["wrk", "nginx"])
    if (!findTool(tool)) throw new BenchError(`${tool} is not installed (Debian: apt-get install wrk nginx-light)`);
  const p = await loadProtocol();
  const fixture = await ensureFixture(cfg, p, scratch);
  const { fx, key } = fixture;
  const publicKey = p.formatPublicKey(p.publicKeyOf(key));
  const stops: (() => Promise<void>)[] = [];
  const details: Record<string, unknown> = { records: fx.paths.length, atoms: fx.atoms.length, generateMs: fixture.generateMs };
  try {
    // Static files for nginx, and the URL list for wrk.
    let t0 = Date.now();
    const www = ensureDir(join(scratch, "www"));
    for (const row of fx.paths) writeFileSync(join(www, `${row.hashPart}.narinfo`), row.narinfo);
    writeFileSync(join(www, "nix-cache-info"), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n");
    const pathsFile = join(scratch, "paths.txt");
    writeFileSync(pathsFile, fx.paths.map((r) => `/${r.hashPart}.narinfo`).join("\n") + "\n");
    const script = join(scratch, "wrk.lua");
    writeFileSync(script, WRK_LUA);
    log(`registry: wrote ${fx.paths.length.toLocaleString("en-US")} static narinfos in ${fmtMs(Date.now() - t0)}`);
    const avgBytes = Math.round(fx.paths.reduce((a, r) => a + Buffer.byteLength(r.narinfo), 0) / fx.paths.length);
    details.narinfoBytes = avgBytes;

    const dataDir = (name: string) => {
      const d = ensureDir(join(scratch, `data-${name}`));
      writeFileSync(join(d, "signing-key.sec"), p.formatSecretKey(key), { mode: 0o600 });
      writeFileSync(join(d, "signing-key.pub"), publicKey);
      return d;
    };

    const nginx: StaticServer = await startNginx(www, join(scratch, "nginx"));
    stops.push(() => nginx.stop());
    const nginxPid = Number(readFileSync(join(scratch, "nginx", "nginx.pid"), "utf8").trim());

    // SQLite: a copy of the cached database (both SQLite registries share it: WAL, readers only).
    const sqliteDir = ensureDir(join(scratch, "sqlite"));
    for (const suffix of ["", "-wal", "-shm"])
      if (existsSync(fixture.sqlite + suffix)) copyFileSync(fixture.sqlite + suffix, join(sqliteDir, "registry.sqlite" + suffix));
    const sqliteUrl = `sqlite:${join(sqliteDir, "registry.sqlite")}`;

    // PostgreSQL: a throwaway server, loaded through RegistryDb (16 inserts in flight).
    const pg: PostgresServer = await startPostgres(join(scratch, "pg"));
    stops.push(() => pg.stop());
    t0 = Date.now();
    const pgDb = await p.openDb(pg.url);
    try {
      await load(pgDb, fx, 16, p);
      const [np, nb] = [await pgDb.countPaths(), await pgDb.countBuilds()];
      if (np !== fx.paths.length || nb !== fx.builds.length)
        throw new BenchError(`PostgreSQL: ${np} paths and ${nb} builds after loading ${fx.paths.length} and ${fx.builds.length}`);
    } finally {
      await pgDb.close();
    }
    const pgLoadMs = Date.now() - t0;
    details.postgres = { version: pg.version, loadMs: pgLoadMs };
    log(`registry: loaded PostgreSQL (${pg.version}) in ${fmtMs(pgLoadMs)}`);
    const postmaster = pg.pid;

    const targets: Target[] = [{ name: "nginx", url: nginx.url, pids: [nginxPid], cached: false }];
    for (const v of CPR_VARIANTS) {
      const isPg = v.db === "PostgreSQL";
      const reg = await startRegistryProcess(dataDir(v.name), isPg ? pg.url : sqliteUrl, v.cached ? undefined : 0);
      stops.push(() => reg.stop());
      if (reg.publicKey !== publicKey)
        throw new BenchError(
          `the ${v.name} registry signs with ${reg.publicKey}, not the fixture's key ${publicKey} (it did not use <data>/signing-key.sec)`,
        );
      targets.push({ name: v.name, url: reg.url, pids: isPg ? [reg.pid, postmaster] : [reg.pid], cached: v.cached });
    }
    await checkServers(targets, fx, p, publicKey, new Rng(cfg.seed + 99));
    log("registry: nginx and the registries serve identical narinfos; signatures verify");

    // Warm-up: random requests; then, for the registries keeping hits in memory, one pass over every URL in order, so
    // that the measured runs see the steady state of a server that has served each path once (checked: misses).
    const primed: Record<string, number> = {};
    for (const t of targets) {
      const w = await wrk(cfg, script, pathsFile, t.url, cfg.warmupSec, 1, t.pids);
      log(`registry: warm-up ${t.name}: ${Math.round(w.rps)} req/s`);
      if (t.cached) {
        // Every URL once, from here (32 requests in flight). Misses are what the cache took in (each a distinct path:
        // the cache is as large as the fixture), plus the one unknown hash of checkServers.
        const t1 = Date.now();
        let next = 0;
        const worker = async () => {
          while (next < fx.paths.length) {
            const res = await fetch(`${t.url}/${fx.paths[next++]!.hashPart}.narinfo`);
            await res.arrayBuffer();
            if (res.status !== 200) throw new BenchError(`${t.name}: priming got ${res.status}`);
          }
        };
        await Promise.all(Array.from({ length: 32 }, worker));
        const c = await cacheCounters(t.url);
        log(`registry: primed ${t.name} in ${fmtMs(Date.now() - t1)}: ${(c.miss - 1).toLocaleString("en-US")} distinct narinfos cached`);
        primed[t.name] = c.miss - 1;
      }
    }
    const before = new Map<string, { hit: number; miss: number }>();
    for (const t of targets) if (t.name !== "nginx") before.set(t.name, await cacheCounters(t.url));

    const results = Object.fromEntries(targets.map((t) => [t.name, [] as WrkResult[]])) as Record<ServerName, WrkResult[]>;
    for (let r = 0; r < cfg.runs; r++) {
      const order = r % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const w = await wrk(cfg, script, pathsFile, t.url, cfg.durationSec, r + 2, t.pids);
        results[t.name].push(w);
        log(
          `registry: ${t.name} run ${r + 1}/${cfg.runs}: ${Math.round(w.rps)} req/s, p50 ${(w.p50 / 1000).toFixed(2)} ms, p99 ${(w.p99 / 1000).toFixed(2)} ms, server ${w.serverCpu.toFixed(2)} CPU`,
        );
      }
    }
    const hitRatio: Record<string, number> = {};
    for (const t of targets) {
      if (t.name === "nginx") continue;
      const a = before.get(t.name)!;
      const b = await cacheCounters(t.url);
      const hits = b.hit - a.hit;
      const total = hits + b.miss - a.miss;
      hitRatio[t.name] = total > 0 ? hits / total : 0;
    }
    details.wrk = results;
    details.cacheHitRatio = hitRatio;
    details.primed = primed;
    const med = (name: ServerName, f: (w: WrkResult) => number) => median(results[name].map(f));
    const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
    const nginxVersion = (await run("nginx", ["-v"], { check: false })).stderr.trim().replace(/^nginx version: /, "");
    const wrkOut = await run("wrk", ["--version"], { check: false });
    const wrkVersion = ((wrkOut.stdout + wrkOut.stderr).split("\n")[0] ?? "").replace(/ Copyright.*$/, "").trim();
    const shape = `${nginxVersion}, ${wrkVersion}, Node ${process.version}; ${fx.paths.length.toLocaleString("en-US")} build records and output paths (${fx.atoms.length.toLocaleString("en-US")} atoms × ${cfg.versions} versions), narinfos of ${avgBytes} B on average; wrk ${cfg.threads} thread, ${cfg.connections} connections, a random narinfo per request, ${cfg.runs} runs of ${cfg.durationSec} s after a ${cfg.warmupSec} s warm-up, median`;
    const figures: RegistryFigure[] = [];
    for (const v of CPR_VARIANTS) {
      const how = v.cached ? `${v.db}, default in-memory narinfo cache` : `${v.db}, cache off`;
      const cacheNote = v.cached
        ? `primed with one pass over every URL (${(primed[v.name] ?? 0).toLocaleString("en-US")} cached); ${(100 * (hitRatio[v.name] ?? 0)).toFixed(1)}% of the measured requests were cache hits`
        : `narinfoCacheSize 0: every request reads the database (${(100 * (hitRatio[v.name] ?? 0)).toFixed(1)}% hits)`;
      const cpuNote = `server CPU per wall second ${med(v.name, (w) => w.serverCpu).toFixed(2)} (nginx ${med("nginx", (w) => w.serverCpu).toFixed(2)})${v.db === "PostgreSQL" ? ", the registry and the postgres processes together" : ""}`;
      figures.push({
        id: `registry.narinfo.${v.name}.rps`,
        title: `narinfo throughput, cpr serve + ${how}`,
        unit: "req/s",
        baselineName: "nginx, static files, 1 worker",
        ratioKind: "cost",
        ratioLabel: "cpr ÷ nginx",
        target: { op: ">=", value: 0.5 },
        samples: { cpr: results[v.name].map((w) => w.rps), baseline: results.nginx.map((w) => w.rps) },
        note: `${v.name === "sqlite" ? `${shape}; ` : ""}${v.name === "postgres" ? `${pg.version.replace(/^postgres \(PostgreSQL\) /, "PostgreSQL ")} on loopback, loaded in ${fmtMs(pgLoadMs)}; ` : ""}${cacheNote}; ${cpuNote}`,
      });
      figures.push({
        id: `registry.narinfo.${v.name}.p99`,
        title: `narinfo p99 latency under that load, cpr serve + ${how}`,
        unit: "ms",
        baselineName: "nginx",
        ratioKind: "cost",
        ratioLabel: "cpr ÷ nginx",
        target: null,
        absoluteTarget: { op: "<", value: 10, text: "< 10 ms" },
        samples: { cpr: results[v.name].map((w) => w.p99 / 1000), baseline: results.nginx.map((w) => w.p99 / 1000) },
        note: `p50 ${ms(med(v.name, (w) => w.p50))}, p99.9 ${ms(med(v.name, (w) => w.p999))} (nginx: p50 ${ms(med("nginx", (w) => w.p50))}, p99.9 ${ms(med("nginx", (w) => w.p999))})`,
      });
    }
    return { figures, details };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 3: the web pages under load (src/serve/pages/), against the JSON API for the same data

type PageTarget = "atom-html" | "atom-json" | "atom-api" | "search-html" | "search-api" | "label-html" | "label-api";

/** Every page answers what a reader needs, and its JSON agrees with the API's, before anything is timed. */
async function checkPages(url: string, fx: Fixture, rng: Rng): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const b = fx.builds[rng.int(0, fx.builds.length - 1)]!;
    const atom = fx.atoms.find((a) => a.id === b.id)!;
    const res = await fetch(`${url}/atoms/${b.id}/${b.version}`);
    const html = await res.text();
    if (res.status !== 200 || !res.headers.get("content-type")?.startsWith("text/html"))
      throw new BenchError(`GET /atoms/${b.id}/${b.version} answered ${res.status} ${res.headers.get("content-type")}`);
    for (const want of [`<h1>${atom.label} <span class="version">${b.version}</span></h1>`, b.outputs.out!, b.drv])
      if (!html.includes(want)) throw new BenchError(`the atom page of ${atom.label} ${b.version} does not show ${want}`);
    const page = (await (await fetch(`${url}/atoms/${b.id}/${b.version}`, { headers: { accept: "application/json" } })).json()) as {
      label: string;
      versions: { version: string }[];
      selected: { builds: { newest: { outputs: Record<string, string> } }[] };
    };
    const api = (await (await fetch(`${url}/api/v1/atoms/${b.id}`)).json()) as { label: string; versions: { version: string }[] };
    if (page.label !== api.label || page.versions.map((v) => v.version).join() !== api.versions.map((v) => v.version).join())
      throw new BenchError(`the atom page's JSON for ${b.id} disagrees with /api/v1/atoms`);
    if (page.selected.builds[0]?.newest.outputs.out !== b.outputs.out)
      throw new BenchError(`the atom page's JSON for ${atom.label} ${b.version} does not list its build ${b.outputs.out}`);
  }
  for (const term of SYLLABLES.slice(0, 5)) {
    const api = (await (await fetch(`${url}/api/v1/search?q=${term}&limit=20`)).json()) as { results: { label: string }[] };
    const html = await (await fetch(`${url}/search?q=${term}`)).text();
    if (api.results.length === 0 || !api.results.every((r) => html.includes(`>${r.label}</a>`)))
      throw new BenchError(`the search page for ${term} does not list the API's ${api.results.length} results`);
  }
}

async function benchPages(cfg: RegistryBenchConfig, scratch: string): Promise<NarinfoResult> {
  if (!findTool("wrk")) throw new BenchError("wrk is not installed (Debian: apt-get install wrk)");
  const p = await loadProtocol();
  const fixture = await ensureFixture(cfg, p, scratch);
  const { fx, key } = fixture;
  const stops: (() => Promise<void>)[] = [];
  try {
    const data = ensureDir(join(scratch, "data-pages"));
    writeFileSync(join(data, "signing-key.sec"), p.formatSecretKey(key), { mode: 0o600 });
    const dbDir = ensureDir(join(scratch, "sqlite-pages"));
    for (const suffix of ["", "-wal", "-shm"])
      if (existsSync(fixture.sqlite + suffix)) copyFileSync(fixture.sqlite + suffix, join(dbDir, "registry.sqlite" + suffix));
    const reg = await startRegistryProcess(data, `sqlite:${join(dbDir, "registry.sqlite")}`);
    stops.push(() => reg.stop());
    await checkPages(reg.url, fx, new Rng(cfg.seed + 7));
    log("registry pages: atom and search pages show their data; the pages' JSON agrees with the API");

    // URL lists: line i of the page list and of the API list name the same data (wrk picks the same lines per seed).
    const script = join(scratch, "wrk-pages.lua");
    writeFileSync(script, WRK_LUA);
    const list = (name: string, urls: string[]) => {
      const file = join(scratch, `${name}.txt`);
      writeFileSync(file, urls.join("\n") + "\n");
      return file;
    };
    const atomPages = list(
      "atom-pages",
      fx.builds.map((b) => `/atoms/${b.id}/${encodeURIComponent(b.version)}`),
    );
    const atomApi = list(
      "atom-api",
      fx.builds.map((b) => `/api/v1/atoms/${b.id}`),
    );
    const searchPages = list(
      "search-pages",
      SYLLABLES.map((t) => `/search?q=${t}`),
    );
    const searchApi = list(
      "search-api",
      SYLLABLES.map((t) => `/api/v1/search?q=${t}&limit=20`),
    );
    // What a user looking for one package types: an atom's label (a few matches).
    const labelPages = list(
      "label-pages",
      fx.atoms.map((a) => `/search?q=${encodeURIComponent(a.label)}`),
    );
    const labelApi = list(
      "label-api",
      fx.atoms.map((a) => `/api/v1/search?q=${encodeURIComponent(a.label)}&limit=20`),
    );
    const targets: { name: PageTarget; file: string; accept?: string }[] = [
      { name: "atom-html", file: atomPages },
      { name: "atom-json", file: atomPages, accept: "application/json" },
      { name: "atom-api", file: atomApi },
      { name: "search-html", file: searchPages },
      { name: "search-api", file: searchApi },
      { name: "label-html", file: labelPages },
      { name: "label-api", file: labelApi },
    ];
    for (const t of targets) {
      const w = await wrk(cfg, script, t.file, reg.url, cfg.warmupSec, 1, [reg.pid], t.accept);
      log(`registry pages: warm-up ${t.name}: ${Math.round(w.rps)} req/s`);
    }
    const results = Object.fromEntries(targets.map((t) => [t.name, [] as WrkResult[]])) as Record<PageTarget, WrkResult[]>;
    for (let r = 0; r < cfg.runs; r++) {
      for (const t of r % 2 === 0 ? targets : [...targets].reverse()) {
        const w = await wrk(cfg, script, t.file, reg.url, cfg.durationSec, r + 2, [reg.pid], t.accept);
        results[t.name].push(w);
        log(
          `registry pages: ${t.name} run ${r + 1}/${cfg.runs}: ${Math.round(w.rps)} req/s, p50 ${(w.p50 / 1000).toFixed(2)} ms, p99 ${(w.p99 / 1000).toFixed(2)} ms`,
        );
      }
    }
    const med = (name: PageTarget, f: (w: WrkResult) => number) => median(results[name].map(f));
    const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
    const bytes = (name: PageTarget) => Math.round(med(name, (w) => w.bytes / w.requests));
    const deps = fx.versions.filter((v) => v.manifest.includes("[deps.from.home]")).length;
    // The machine's load when the runs ended: other work on its cores shows in every p99 here.
    const [load1, load5] = loadavg();
    const shape = `cpr serve + SQLite (the cached fixture: ${fx.builds.length.toLocaleString("en-US")} build records, ${fx.atoms.length.toLocaleString("en-US")} atoms × ${cfg.versions} versions, ${deps.toLocaleString("en-US")} versions with atom dependencies, mostly on the first 50 atoms); wrk ${cfg.threads} thread, ${cfg.connections} connections, ${cfg.runs} runs of ${cfg.durationSec} s after a ${cfg.warmupSec} s warm-up, median; load average ${load1!.toFixed(1)} (1 min) and ${load5!.toFixed(1)} (5 min) on ${cpus().length} cores at the end`;
    const figures: RegistryFigure[] = [
      {
        id: "registry.pages.atom.p99",
        title: "atom page p99 latency under load (HTML, a random built version per request)",
        unit: "ms",
        baselineName: "GET /api/v1/atoms/<id>",
        ratioKind: "cost",
        ratioLabel: "page ÷ API",
        target: null,
        absoluteTarget: { op: "<", value: 20, text: "< 20 ms" },
        samples: { cpr: results["atom-html"].map((w) => w.p99 / 1000), baseline: results["atom-api"].map((w) => w.p99 / 1000) },
        note: `${shape}; the page reads the atom, its versions, which are built, the version's manifest, builds, closure sizes (kept on each path when stored) and the first page of dependents (an index walk); p50 ${ms(med("atom-html", (w) => w.p50))}, p99.9 ${ms(med("atom-html", (w) => w.p999))}; ${bytes("atom-html").toLocaleString("en-US")} B per page (API: ${bytes("atom-api").toLocaleString("en-US")} B)`,
      },
      {
        id: "registry.pages.atom.rps",
        title: "atom page throughput against the JSON API for the same atom",
        unit: "req/s",
        baselineName: "GET /api/v1/atoms/<id>",
        ratioKind: "cost",
        ratioLabel: "page ÷ API",
        target: null,
        samples: { cpr: results["atom-html"].map((w) => w.rps), baseline: results["atom-api"].map((w) => w.rps) },
        note: `the same page as JSON (Accept: application/json): ${Math.round(med("atom-json", (w) => w.rps)).toLocaleString("en-US")} req/s, p99 ${ms(med("atom-json", (w) => w.p99))}`,
      },
      {
        id: "registry.pages.label.p99",
        title: "search results page p99 latency under load (HTML, an atom's label)",
        unit: "ms",
        baselineName: "GET /api/v1/search?q=…&limit=20",
        ratioKind: "cost",
        ratioLabel: "page ÷ API",
        target: null,
        absoluteTarget: { op: "<", value: 20, text: "< 20 ms" },
        samples: { cpr: results["label-html"].map((w) => w.p99 / 1000), baseline: results["label-api"].map((w) => w.p99 / 1000) },
        note: `a random atom's label per request (a few matches each: the trigram index finds them, and they are ranked at once); p50 ${ms(med("label-html", (w) => w.p50))}, p99.9 ${ms(med("label-html", (w) => w.p999))}`,
      },
      {
        id: "registry.pages.label.rps",
        title: "search results page throughput against the JSON API (an atom's label)",
        unit: "req/s",
        baselineName: "GET /api/v1/search?q=…&limit=20",
        ratioKind: "cost",
        ratioLabel: "page ÷ API",
        target: null,
        samples: { cpr: results["label-html"].map((w) => w.rps), baseline: results["label-api"].map((w) => w.rps) },
      },
      {
        id: "registry.pages.search.p99",
        title: "search results page p99 latency under load (HTML, a common syllable: ~1,000 matches, first page of 20)",
        unit: "ms",
        baselineName: "GET /api/v1/search?q=…&limit=20",
        ratioKind: "cost",
        ratioLabel: "page ÷ API",
        target: null,
        absoluteTarget: { op: "<", value: 20, text: "< 20 ms" },
        samples: { cpr: results["search-html"].map((w) => w.p99 / 1000), baseline: results["search-api"].map((w) => w.p99 / 1000) },
        note: `a random one of ${SYLLABLES.length} common syllables per request (each matches about a tenth of the atoms; the page's tiers are read in label order only as far as its 20 rows, never ranking every match); p50 ${ms(med("search-html", (w) => w.p50))}, p99.9 ${ms(med("search-html", (w) => w.p999))}`,
      },
      {
        id: "registry.pages.search.rps",
        title: "search results page throughput against the JSON API (a common syllable)",
        unit: "req/s",
        baselineName: "GET /api/v1/search?q=…&limit=20",
        ratioKind: "cost",
        ratioLabel: "page ÷ API",
        target: null,
        samples: { cpr: results["search-html"].map((w) => w.rps), baseline: results["search-api"].map((w) => w.rps) },
      },
    ];
    return { figures, details: { wrk: results } };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 2: cpr get of a built package against nix-build of the same atom from source

const NIX_CONFIG = "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command";

/**
 * The atom's derivation: real work with /bin/sh only (no nixpkgs here): it writes `mib` MiB of text files — a
 * generated "source tree" of 64 KiB files whose lines are computed by the shell (arithmetic and string building per
 * line) — then a checksum-free index of them. No sleeps: the time is the shell's.
 */
function payloadNix(mib: number): string {
  // A plain derivation: under cpr it is the atom's value (docs/evaluation.md), and nix-build builds the same file.
  // builtins.currentSystem is Nix's system setting, which cpr build sets to the target system.
  return `derivation {
  name = "payload";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" ''
    set -e
    mkdir -p $out/share/payload
    i=0
    files=$(( ${mib} * 16 ))
    while [ $i -lt $files ]; do
      f=$out/share/payload/file-$i.txt
      j=0
      line=""
      while [ $j -lt 32 ]; do line="$line$(( (i * 131 + j * 7919) % 100003 ))-"; j=$((j + 1)); done
      # 64 KiB per file: the line (about 200 bytes) repeated, each copy numbered.
      k=0
      : > $f
      while [ $k -lt 320 ]; do echo "$k $line" >> $f; k=$((k + 1)); done
      i=$((i + 1))
    done
    ls -l $out/share/payload > $out/share/index.txt
  '' ];
}
`;
}

interface GetResult {
  figures: RegistryFigure[];
  details: Record<string, unknown>;
}

/** cpr build and get are being written: true when the placeholders are gone. */
async function cliLanded(): Promise<string | null> {
  for (const verb of ["build", "get"]) {
    const r = await run(CPR_BIN, [verb, "--help"], { check: false, timeoutMs: 30_000 });
    if (/not (yet )?available/i.test(r.stdout + r.stderr)) return `cpr ${verb} has not landed (placeholder)`;
  }
  return null;
}

async function benchGet(cfg: RegistryBenchConfig, scratch: string): Promise<GetResult> {
  const missing = await cliLanded();
  if (missing) throw new BenchError(missing);
  for (const tool of ["nix-build", "nix-store"]) if (!findTool(tool)) throw new BenchError(`${tool} is not installed`);
  const dir = ensureDir(join(scratch, "get"));
  const env = benchEnv({
    NIX_CONFIG,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_CACHE_HOME: join(dir, "cache"),
    CPR_CACHE_DIR: join(dir, "cpr-cache"),
    TMPDIR: dir,
  });
  // The set: one atom `payload`, published by cpr to a bare remote.
  const src = ensureDir(join(dir, "set"));
  const remote = join(dir, "set.git");
  mkdirSync(join(src, "payload"), { recursive: true });
  writeFileSync(
    join(src, "payload", "atom.toml"),
    `[package]\nlabel = "payload"\nversion = "1.0.0"\n\n[compose.as]\nnix = "default.nix"\n`,
  );
  writeFileSync(join(src, "payload", "default.nix"), payloadNix(cfg.workMiB));
  await git(src, ["init", "-q", "-b", "main"], { env });
  // A composed atom is published with its lock (docs/formats.md §12); the default locker needs no network.
  await run(CPR_BIN, ["resolve"], { cwd: join(src, "payload"), env });
  await git(src, ["add", "-A"], { env });
  await git(src, ["commit", "-q", "-m", "payload"], { env });
  await git(dir, ["init", "-q", "--bare", remote], { env });
  await run(CPR_BIN, ["init", "--remote", remote], { cwd: src, env });
  await run(CPR_BIN, ["publish", "--all", "--remote", remote], { cwd: src, env });
  const root = await git(src, ["rev-list", "--max-parents=0", "HEAD"], { env });

  // The registry, indexing that set; a token for it.
  const data = ensureDir(join(dir, "registry"));
  const dbUrl = `sqlite:${join(data, "registry.sqlite")}`;
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, "--serve", JSON.stringify({ dataDir: data, db: dbUrl, sets: [remote] })], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-8000)));
  const info = await new Promise<{ url: string; publicKey: string }>((resolvePromise, reject) => {
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolvePromise(JSON.parse(out.slice(0, out.indexOf("\n"))));
    });
    child.on("exit", (code) => reject(new BenchError(`the registry exited (${code}): ${err}`)));
  });
  try {
    const token = (await run(CPR_BIN, ["registry", "token", "create", "--data", data, "--db", dbUrl, "--set", root], { env })).stdout
      .trim()
      .split("\n")
      .pop()!
      .trim();
    const uri = `${remote}::payload@=1.0.0`;
    // Build once (into the machine's store) and push.
    const built = await run(CPR_BIN, ["build", uri, "--push", info.url, "--token", token, "--json"], {
      cwd: dir,
      env,
      timeoutMs: 30 * 60_000,
    });
    const out = (JSON.parse(built.stdout) as { outputs: { out: string } }).outputs.out;
    log(`registry get: built and pushed ${out} in ${fmtMs(built.ms)}`);
    const expr = join(src, "payload", "default.nix");

    const getMs: number[] = [];
    const buildMs: number[] = [];
    // A directory names a local store rooted there (as nix-store --store DIR); /nix/store inside it.
    const storeArgs = (store: string) => ["--store", store];
    // Nix builds into a diverted store in a chroot: the builder's /bin/sh and coreutils come from the host's /usr.
    const chrootPaths = ["--option", "sandbox-paths", "/bin=/usr/bin /lib=/usr/lib /lib64=/usr/lib64 /usr"];
    for (let i = 0; i < cfg.getReps; i++) {
      const order = i % 2 === 0 ? ["get", "build"] : ["build", "get"];
      for (const which of order) {
        const store = join(dir, `store-${which}-${i}`);
        mkdirSync(store, { recursive: true });
        try {
          if (which === "get") {
            const r = await run(
              CPR_BIN,
              ["get", uri, "--registry", info.url, "--key", info.publicKey, ...storeArgs(store), "--no-out-link", "--json"],
              { cwd: dir, env, timeoutMs: 30 * 60_000 },
            );
            const got =
              (JSON.parse(r.stdout) as { outputs?: { out: string }; path?: string }).outputs?.out ??
              (JSON.parse(r.stdout) as { path?: string }).path;
            if (got !== out) throw new BenchError(`cpr get realised ${got}, cpr build built ${out}`);
            if (!existsSync(join(store, out, "share", "index.txt")))
              throw new BenchError(`cpr get: ${out} is not in the throwaway store ${store}`);
            getMs.push(r.ms);
            log(`registry get: cpr get ${fmtMs(r.ms)}`);
          } else {
            const r = await run("nix-build", [expr, "--no-out-link", ...storeArgs(store), ...chrootPaths], {
              cwd: dir,
              env,
              timeoutMs: 30 * 60_000,
            });
            const path = r.stdout.trim().split("\n").pop();
            if (path !== out) throw new BenchError(`nix-build built ${path}, cpr build ${out}: not the same derivation`);
            buildMs.push(r.ms);
            log(`registry get: nix-build ${fmtMs(r.ms)}`);
          }
        } finally {
          makeWritable(store);
          rmSync(store, { recursive: true, force: true });
        }
      }
    }
    const size = execFileSync("du", ["-sb", out], { encoding: "utf8" }).split("\t")[0];
    return {
      figures: [
        {
          id: "registry.get.time",
          title: "cpr get of a built package vs nix-build from source: time",
          unit: "ms",
          baselineName: "nix-build of the same atom",
          ratioKind: "speedup",
          target: null,
          samples: { cpr: getMs, baseline: buildMs },
          note: `one atom whose /bin/sh builder writes ${cfg.workMiB} MiB of generated text files (${Number(size).toLocaleString("en-US")} bytes output); each into a fresh throwaway store (--store DIR); registry and Nix on loopback; ${cfg.getReps} runs each, alternating, median`,
        },
      ],
      details: { getMs, buildMs, out, outBytes: Number(size) },
    };
  } finally {
    await stopper(child)();
  }
}

function makeWritable(path: string): void {
  try {
    execFileSync("chmod", ["-R", "u+w", path], { stdio: "ignore" });
  } catch {
    /* ignore */
  }
}

// ---------------------------------------------------------------------------------------------------------------

export async function benchRegistry(
  cfg: RegistryBenchConfig,
): Promise<{ figures: RegistryFigure[]; details: Record<string, unknown>; errors: string[] }> {
  const scratch = mkdtempSync(join(scratchRoot(), "registry-"));
  chmodSync(scratch, 0o755);
  const figures: RegistryFigure[] = [];
  const details: Record<string, unknown> = {};
  const errors: string[] = [];
  try {
    if (cfg.parts.has("narinfo")) {
      try {
        const r = await benchNarinfo(cfg, ensureDir(join(scratch, "narinfo")));
        figures.push(...r.figures);
        details.narinfo = r.details;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        errors.push(`registry narinfo: ${msg}`);
        figures.push({
          id: "registry.narinfo.sqlite.rps",
          title: "narinfo throughput, cpr serve",
          unit: "req/s",
          baselineName: "nginx",
          ratioKind: "cost",
          target: { op: ">=", value: 0.5 },
          samples: { cpr: [], baseline: [] },
          error: msg,
        });
      }
    }
    if (cfg.parts.has("pages")) {
      try {
        const r = await benchPages(cfg, ensureDir(join(scratch, "pages")));
        figures.push(...r.figures);
        details.pages = r.details;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        errors.push(`registry pages: ${msg}`);
        figures.push({
          id: "registry.pages.atom.p99",
          title: "atom page p99 latency under load",
          unit: "ms",
          baselineName: "GET /api/v1/atoms/<id>",
          ratioKind: "cost",
          target: null,
          absoluteTarget: { op: "<", value: 20, text: "< 20 ms" },
          samples: { cpr: [], baseline: [] },
          error: msg,
        });
      }
    }
    if (cfg.parts.has("get")) {
      try {
        const r = await benchGet(cfg, scratch);
        figures.push(...r.figures);
        details.get = r.details;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        errors.push(`registry get: ${msg}`);
        figures.push({
          id: "registry.get.time",
          title: "cpr get of a built package vs nix-build from source: time",
          unit: "ms",
          baselineName: "nix-build",
          ratioKind: "speedup",
          target: null,
          samples: { cpr: [], baseline: [] },
          error: msg,
        });
      }
    }
    return { figures, details, errors };
  } finally {
    makeWritable(scratch);
    rmSync(scratch, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

function fmtValue(unit: RegistryFigure["unit"], v: number): string {
  if (Number.isNaN(v)) return "–";
  if (unit === "req/s") return `${Math.round(v).toLocaleString("en-US")} req/s`;
  if (unit === "ms" && v < 10) return `${v.toFixed(2)} ms`;
  return fmtMs(v);
}

/** pass/miss of a figure: the absolute target when it has one, else the ratio target. */
export function registryPass(f: RegistryFigure): boolean | null {
  const v = f.samples.cpr.length ? median(f.samples.cpr) : NaN;
  const b = f.samples.baseline.length ? median(f.samples.baseline) : NaN;
  if (f.absoluteTarget)
    return Number.isNaN(v) ? null : f.absoluteTarget.op === "<" ? v < f.absoluteTarget.value : v <= f.absoluteTarget.value;
  if (!f.target) return null;
  const ratio = f.ratioKind === "cost" ? v / b : b / v;
  if (!Number.isFinite(ratio)) return null;
  return f.target.op === "<=" ? ratio <= f.target.value : ratio >= f.target.value;
}

function row(f: RegistryFigure): string[] {
  const v = f.samples.cpr.length ? median(f.samples.cpr) : NaN;
  const b = f.samples.baseline.length ? median(f.samples.baseline) : NaN;
  const ratio = f.ratioKind === "cost" ? v / b : b / v;
  const ok = Number.isFinite(ratio);
  const how = f.ratioLabel ?? (f.ratioKind === "cost" ? "cpr ÷ baseline" : "baseline ÷ cpr");
  const target = f.absoluteTarget
    ? f.absoluteTarget.text
    : f.target === null
      ? "info"
      : `${f.target.op === "<=" ? "≤" : "≥"} ${f.target.value}×`;
  const pass = registryPass(f);
  const mark = f.error ? "✗ error" : pass === null ? "" : pass ? "✓ pass" : "✗ miss";
  return [
    f.title,
    fmtValue(f.unit, v),
    `${fmtValue(f.unit, b)} (${f.baselineName})`,
    ok ? `${ratio >= 100 ? Math.round(ratio) : ratio.toFixed(2)}× (${how})` : f.error ? `not measured: ${f.error.split("\n")[0]}` : "–",
    target,
    mark,
  ];
}

export function registryMarkdown(figures: readonly RegistryFigure[], cfg: RegistryBenchConfig, rev: string): string {
  const notes = figures.filter((f) => f.note).map((f) => `- ${f.title}: ${f.note}.`);
  return figuresSection(`at cpr ${rev}${cfg.quick ? " with `--quick`" : ""}.`, figures.map(row), notes);
}

/** The README sections to rewrite: the pages' figures in their own, the rest in registry-figures; empty ones left. */
export function registryReadmeSections(figures: readonly RegistryFigure[], cfg: RegistryBenchConfig, rev: string): [string, string][] {
  const pages = figures.filter((f) => f.id.startsWith("registry.pages."));
  const rest = figures.filter((f) => !f.id.startsWith("registry.pages."));
  const out: [string, string][] = [];
  if (rest.length) out.push(["registry-figures", registryMarkdown(rest, cfg, rev)]);
  if (pages.length) out.push(["registry-pages-figures", registryMarkdown(pages, cfg, rev)]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args[0] === "--serve") {
    serveMain(args[1] ?? "{}").catch((e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    });
  } else {
    const cfg = registryConfig(args.includes("--quick"));
    benchRegistry(cfg).then(
      ({ figures, errors }) => {
        for (const f of figures) console.log(row(f).join("  |  "));
        for (const e of errors) console.error(`[bench] *** ${e}`);
        if (args.includes("--write-readme")) {
          const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: BENCH_DIR, encoding: "utf8" }).trim();
          for (const [name, text] of registryReadmeSections(figures, cfg, rev)) rewriteReadmeSection(name, text);
        }
        if (errors.length) process.exitCode = 1;
      },
      (e: unknown) => {
        console.error(e instanceof Error ? e.message : e);
        process.exitCode = 1;
      },
    );
  }
}
