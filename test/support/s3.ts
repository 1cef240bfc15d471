/**
 * A real, throwaway S3 server for a test: Ceph's RADOS Gateway (Debian's `radosgw`) on a one-node Ceph cluster in a
 * temporary directory, all on loopback: one monitor (`ceph-mon`, msgr2 on a free port), one OSD whose object store
 * is `memstore` (in memory: no disk, nothing to clean but the directory), and radosgw's beast frontend on another
 * free port. cephx authentication with keys made for the run, pools of size 1, no manager (radosgw does not need
 * one). Then an S3 user with a random access key, and a bucket.
 *
 * Start-up takes about 15 seconds on a 2-core machine (the OSD's first boot and radosgw creating its pools), so a
 * test file starts one (startS3 in `before`) and its tests share it with a prefix or bucket of their own.
 *
 * Debian: radosgw, ceph-mon and ceph-osd (ceph-common comes with them), which .ci/run installs. Without them the
 * test is skipped with the reason, or fails under CI=true.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { S3Client, type S3Credentials } from "../../src/serve/s3.js";
import { freePort } from "./servers.js";
import { findTool, inCI } from "./tools.js";

export interface S3Server {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The AWS variables that give these credentials (merge into a process's environment). */
  readonly env: Record<string, string>;
  /** What start-up took, in milliseconds (for the record; tests never compare it). */
  readonly startMs: number;
  /** Creates a bucket and returns a client for `s3://bucket/prefix`. */
  bucket(name: string, prefix?: string): Promise<S3Client>;
  /** `s3://bucket/prefix?endpoint=…` */
  storeUrl(bucket: string, prefix?: string): string;
  /** Stops the daemons and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const PROGRAMS = ["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool"] as const;

function exec(argv: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function daemon(argv: readonly string[], log: string): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  child.once("exit", (code, signal) => {
    if (code !== 0 && signal === null) writeFileSync(`${log}.exit`, `${argv.join(" ")} exited ${code}\n${err}`);
  });
  return child;
}

/** Why this machine cannot start the server, or null. */
export function s3Unavailable(): string | null {
  const missing = PROGRAMS.filter((p) => !findTool(p));
  return missing.length ? `needs ${missing.join(", ")} (Debian: radosgw ceph-mon ceph-osd, see .ci/run)` : null;
}

/** Starts a server for `t`, or skips the test (null) when Ceph is not installed; throws under CI=true. */
export async function startS3(t: TestContext): Promise<S3Server | null> {
  const why = s3Unavailable();
  if (why) {
    if (inCI) throw new Error(`CI=true but the S3 server cannot be started: ${why}`);
    t.skip(why);
    return null;
  }
  return launchS3();
}

/** Starts a server (the programs must be installed: s3Unavailable). The caller must stop() it. */
export async function launchS3(): Promise<S3Server> {
  const t0 = Date.now();
  const tool = (name: (typeof PROGRAMS)[number]): string => findTool(name)!;
  const dir = mkdtempSync(join(tmpdir(), "cpr-ceph-"));
  const children: ChildProcess[] = [];
  const kill = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  process.once("exit", kill);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      process.removeListener("exit", kill);
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once("exit", () => resolve());
              c.kill("SIGTERM");
              setTimeout(() => c.kill("SIGKILL"), 5000).unref();
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    for (const d of ["run", "log", "mon", "osd/0", "rgw"]) mkdirSync(join(dir, d), { recursive: true });
    const monPort = await freePort();
    const rgwPort = await freePort();
    const fsid = crypto.randomUUID();
    const conf = join(dir, "ceph.conf");
    const keyring = join(dir, "keyring");
    writeFileSync(
      conf,
      `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${keyring}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 1073741824
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$id
osd data = ${dir}/osd/$id
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
keyring = ${keyring}
`,
    );
    const authtool = (...args: string[]) => exec([tool("ceph-authtool"), keyring, ...args]);
    await authtool("--create-keyring", "--gen-key", "-n", "mon.", "--cap", "mon", "allow *");
    await authtool("--gen-key", "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *");
    await authtool(
      "--gen-key",
      "-n",
      "osd.0",
      "--cap",
      "mon",
      "allow profile osd",
      "--cap",
      "osd",
      "allow *",
      "--cap",
      "mgr",
      "allow profile osd",
    );
    await authtool("--gen-key", "-n", "client.rgw", "--cap", "mon", "allow rw", "--cap", "osd", "allow rwx", "--cap", "mgr", "allow rw");
    const monmap = join(dir, "monmap");
    await exec([tool("monmaptool"), "--create", "--addv", "a", `[v2:127.0.0.1:${monPort}]`, "--fsid", fsid, monmap]);
    await exec([tool("ceph-mon"), "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring]);
    children.push(daemon([tool("ceph-mon"), "-c", conf, "-i", "a", "-f"], join(dir, "log", "mon")));
    const ceph = (...args: string[]) => exec([tool("ceph"), "-c", conf, "--connect-timeout", "30", ...args]);
    const id = (await ceph("osd", "create")).trim();
    if (id !== "0") throw new Error(`ceph osd create answered ${JSON.stringify(id)}, expected 0`);
    await exec([tool("ceph-osd"), "-c", conf, "-i", "0", "--mkfs"]);
    await ceph("osd", "crush", "add", "osd.0", "1.0", "root=default", "host=localhost");
    children.push(daemon([tool("ceph-osd"), "-c", conf, "-i", "0", "-f"], join(dir, "log", "osd")));
    children.push(daemon([tool("radosgw"), "-c", conf, "-n", "client.rgw", "-f"], join(dir, "log", "rgw")));
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await fetch(endpoint);
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`radosgw did not answer on ${endpoint} within 120 s; logs in ${dir}/log`);
        for (const c of children) if (c.exitCode !== null) throw new Error(`a Ceph daemon exited during start-up: ${readLogs(dir)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const accessKeyId = `CPR${randomBytes(8).toString("hex").toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString("base64url");
    await exec([
      tool("radosgw-admin"),
      "-c",
      conf,
      "-n",
      "client.admin",
      "user",
      "create",
      "--uid=cpr-test",
      "--display-name=cpr tests",
      `--access-key=${accessKeyId}`,
      `--secret-key=${secretAccessKey}`,
    ]);
    const credentials: S3Credentials = { accessKeyId, secretAccessKey, source: "test" };
    const startMs = Date.now() - t0;
    const server: S3Server = {
      endpoint,
      accessKeyId,
      secretAccessKey,
      env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey },
      startMs,
      storeUrl: (bucket, prefix = "") => `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}`,
      async bucket(name, prefix = "") {
        const c = new S3Client(
          {
            bucket: name,
            prefix: prefix ? `${prefix.replace(/\/+$/, "")}/` : "",
            endpoint,
            region: "us-east-1",
            pathStyle: true,
            profile: "default",
          },
          credentials,
        );
        await c.createBucket();
        return c;
      },
      stop,
    };
    return server;
  } catch (err) {
    const logs = readLogs(dir);
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`);
  }
}

function readLogs(dir: string): string {
  const out: string[] = [];
  for (const name of ["mon.a.log", "osd.0.log", "client.rgw.log", "mon.exit", "osd.exit", "rgw.exit"]) {
    try {
      out.push(
        `── ${name}\n${readFileSync(join(dir, "log", name), "utf8")
          .split("\n")
          .slice(-15)
          .join("\n")}`,
      );
    } catch {
      /* not written */
    }
  }
  return out.join("\n");
}
