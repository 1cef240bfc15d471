/**
 * A real, throwaway PostgreSQL server for a test: initdb into a temporary directory, `postgres` on 127.0.0.1 with a
 * free port (unix socket inside the temporary directory), trust authentication, superuser `postgres`, and no fsync
 * (nothing here must survive a crash). Start one per test file (sharedPostgres) and give each test its own database
 * (createDatabase), which costs a few milliseconds rather than an initdb.
 *
 * PostgreSQL refuses to run as root: as root, the directory is chowned to the `postgres` user and initdb/postgres run
 * through `setpriv` (or `runuser`) as that user. Binaries are looked up on PATH and under /usr/lib/postgresql/N/bin
 * (Debian's `postgresql` package, which .ci/run installs); without them the test is skipped, or fails under CI=true.
 * The benchmarks start theirs with launchPostgres (bench/registry.ts), with settings of their own.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import pg from "pg";
import { freePort } from "./servers.js";
import { findTool, inCI } from "./tools.js";

export interface PgServer {
  /** URL of the server's `postgres` database, as superuser `postgres`. */
  readonly url: string;
  readonly port: number;
  /** The postmaster's process id (from its postmaster.pid), while it runs. */
  postmasterPid(): number | undefined;
  /** Creates a fresh, empty database (a unique name unless given) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Fast shutdown (SIGINT), then removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

/** The directory holding initdb and postgres (newest major version first), or null. */
export function postgresBinDir(): string | null {
  const onPath = findTool("initdb");
  if (onPath && existsSync(onPath.replace(/initdb$/, "postgres"))) return onPath.replace(/\/initdb$/, "");
  const base = "/usr/lib/postgresql";
  let majors: string[] = [];
  try {
    majors = readdirSync(base).filter((d) => /^\d+(\.\d+)?$/.test(d));
  } catch {
    return null;
  }
  majors.sort((a, b) => Number(b) - Number(a));
  for (const m of majors) {
    const bin = join(base, m, "bin");
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres"))) return bin;
  }
  return null;
}

function skipOrFail(t: TestContext, reason: string): null {
  if (inCI) throw new Error(`CI=true but PostgreSQL cannot be started: ${reason}`);
  t.skip(reason);
  return null;
}

/** How to run a binary as an unprivileged user: the argv prefix, and the uid/gid to chown the directory to. */
interface RunAs {
  readonly prefix: string[];
  readonly uid: number;
  readonly gid: number;
}

function runAsPostgres(): RunAs | string {
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  } catch {
    return "running as root needs a `postgres` user to run PostgreSQL as (Debian's postgresql package creates it)";
  }
  const setpriv = findTool("setpriv");
  if (setpriv) return { prefix: [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"], uid, gid };
  const runuser = findTool("runuser");
  if (runuser) return { prefix: [runuser, "-u", "postgres", "--"], uid, gid };
  return "running as root needs setpriv or runuser (util-linux) to drop to the postgres user";
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${argv.join(" ")} failed (${signal ?? `exit ${code}`}):\n${out}`)),
    );
  });
}

/** Starts `postgres` and resolves once it logs that it accepts connections; rejects (with its log) if it exits. */
function launch(argv: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; log: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    let ready = false;
    const onData = (d: Buffer): void => {
      log += d.toString();
      if (log.length > 200_000) log = log.slice(-100_000);
      if (!ready && log.includes("database system is ready to accept connections")) {
        ready = true;
        resolve({ child, log: () => log });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (!ready) reject(new Error(`postgres exited before accepting connections (${signal ?? `exit ${code}`}):\n${log}`));
    });
  });
}

let dbCounter = 0;

/** PostgreSQL cannot be started on this machine (not installed; root without a `postgres` user…): the reason. */
export class PostgresUnavailable extends Error {
  override name = "PostgresUnavailable";
}

/** Options for launchPostgres. */
export interface PostgresOptions {
  /** Server settings (`-c NAME=VALUE`) over the defaults: fsync, synchronous_commit, full_page_writes off; shared_buffers 32MB; max_connections 200. */
  readonly settings?: Readonly<Record<string, string>>;
  /** The directory to make the server's temporary directory in (default: the system's temporary directory). */
  readonly parent?: string;
}

const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  shared_buffers: "32MB",
  max_connections: "200",
};

/**
 * Starts a throwaway server for `t`. Returns null (the test skipped) when PostgreSQL is not installed; throws under
 * CI=true. The caller must `stop()` it (t.after(() => pg.stop()) or an `after` hook).
 */
export async function startPostgres(t: TestContext, opts: PostgresOptions = {}): Promise<PgServer | null> {
  try {
    return await launchPostgres(opts);
  } catch (err) {
    if (err instanceof PostgresUnavailable) return skipOrFail(t, err.message);
    throw err;
  }
}

/**
 * Starts a throwaway server; throws PostgresUnavailable when this machine cannot run one. The caller must `stop()`
 * it.
 */
export async function launchPostgres(opts: PostgresOptions = {}): Promise<PgServer> {
  const bin = postgresBinDir();
  if (!bin) throw new PostgresUnavailable("needs PostgreSQL (initdb, postgres; Debian: the postgresql package, see .ci/run)");
  let runAs: RunAs | null = null;
  if (process.getuid?.() === 0) {
    const r = runAsPostgres();
    if (typeof r === "string") throw new PostgresUnavailable(r);
    runAs = r;
  }
  const settings = Object.entries({ ...DEFAULT_SETTINGS, ...opts.settings }).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
  const dir = mkdtempSync(join(opts.parent ?? tmpdir(), "cpr-pg-"));
  const data = join(dir, "data");
  const env = { ...process.env, LC_ALL: "C", LANG: "C" };
  const as = (argv: string[]): string[] => (runAs ? [...runAs.prefix, ...argv] : argv);
  let child: ChildProcess | null = null;
  let onExit: (() => void) | null = null;
  try {
    if (runAs) chownSync(dir, runAs.uid, runAs.gid);
    await run(
      as([join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]),
      env,
    );
    let port = 0;
    // The free port may be taken between probing and binding; try a few.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        ({ child } = await launch(
          as([join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", String(port), ...settings]),
          env,
        ));
        break;
      } catch (err) {
        if (attempt < 4 && /could not bind|address already in use/i.test(String(err))) continue;
        throw err;
      }
    }
    const started = child!;
    const postmasterPid = (): number | undefined => {
      try {
        const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
        return Number.isInteger(pid) && pid > 0 ? pid : undefined;
      } catch {
        return started.pid;
      }
    };
    // If the test process dies without stop(), do not leave a server behind.
    onExit = () => {
      const pid = postmasterPid();
      if (pid) {
        try {
          process.kill(pid, "SIGQUIT");
        } catch {
          /* already gone */
        }
      }
    };
    process.once("exit", onExit);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    let stopping: Promise<void> | null = null;
    return {
      url,
      port,
      postmasterPid,
      async createDatabase(name?: string): Promise<string> {
        const db = name ?? `t${process.pid}_${++dbCounter}`;
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE "${db.replace(/"/g, '""')}"`);
        } finally {
          await client.end();
        }
        return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(db)}`;
      },
      stop(): Promise<void> {
        stopping ??= (async () => {
          if (onExit) process.removeListener("exit", onExit);
          if (started.exitCode === null && started.signalCode === null) {
            const exited = new Promise<void>((resolve) => started.once("exit", () => resolve()));
            const pid = postmasterPid();
            try {
              process.kill(pid ?? started.pid!, "SIGINT"); // fast shutdown
            } catch {
              /* already gone */
            }
            await exited;
          }
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (err) {
    if (onExit) process.removeListener("exit", onExit);
    if (child && child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * One server for a whole test file, started by the first test that asks: `const pg = sharedPostgres();` at top
 * level, `after(() => pg.stop())`, and in each test `const server = await pg.get(t); if (!server) return;`.
 * Every test asking after a skip is skipped too, with the same reason.
 */
export function sharedPostgres(): { get(t: TestContext): Promise<PgServer | null>; stop(): Promise<void> } {
  let started: Promise<PgServer | null> | null = null;
  let skipReason: string | null = null;
  return {
    async get(t: TestContext): Promise<PgServer | null> {
      if (skipReason !== null) {
        t.skip(skipReason);
        return null;
      }
      if (!started) {
        const probe = {
          skip: (reason?: string) => {
            skipReason = reason ?? "PostgreSQL unavailable";
            t.skip(reason);
          },
        } as unknown as TestContext;
        started = startPostgres(probe);
      }
      const server = await started;
      if (!server && skipReason !== null) t.skip(skipReason);
      return server;
    },
    async stop(): Promise<void> {
      const server = await started?.catch(() => null);
      await server?.stop();
    },
  };
}
