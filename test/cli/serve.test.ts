/**
 * `cpr serve`, `cpr registry key` and `cpr registry token create` as an operator runs them: the real binary, a set
 * published to a real bare repository, stdout/stderr, exit codes, and a clean stop on SIGTERM and SIGINT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { env as gitEnv, initTo, publishTo } from "../publish/fixture.js";
import { CPR_BIN, runCpr } from "../support/cli.js";
import { atomToml, makeBare, makeRepo, tempDir } from "../support/repo.js";

/** An isolated environment: no user config, private data and cache directories. */
function isolated(): NodeJS.ProcessEnv {
  return {
    ...gitEnv,
    XDG_CONFIG_HOME: tempDir("cpr-config-"),
    XDG_DATA_HOME: tempDir("cpr-data-home-"),
    CPR_CACHE_DIR: tempDir("cpr-cache-"),
    NO_COLOR: "1",
  };
}

async function publishedSet(): Promise<{ bare: string; root: string }> {
  const work = makeRepo({ "pkgs/hello/atom.toml": `${atomToml("hello", "2.0.0")}\n[package.meta]\ndescription = "Greets the operator"\n` });
  const bare = makeBare();
  const root = (await initTo(work, bare)).root;
  const r = await publishTo(work, bare);
  assert.deepEqual(r.failed, []);
  return { bare, root };
}

/** Starts `cpr serve … --json`; resolves with the listening line once it is printed. */
function serve(args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CPR_BIN, "serve", ...args, "--json"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s: string) => (stderr += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<{ listening: string; publicKey: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (l) => resolve(JSON.parse(l)));
    void exited.then((e) => reject(new Error(`cpr serve exited (${e.code ?? e.signal}) before listening:\n${stderr}`)));
  });
  return { child, ready, exited, stderr: () => stderr };
}

test("cpr registry key: creates the key pair once (secret 0600) and prints the public key", () => {
  const env = isolated();
  const cwd = tempDir("cpr-cwd-");
  const data = join(tempDir("cpr-reg-"), "data");
  const first = runCpr(["registry", "key", "--data", data], { cwd, env });
  assert.equal(first.code, 0, first.stderr);
  const key = first.stdout.trim();
  assert.match(key, /^[^:\s]+:[A-Za-z0-9+/]{43}=$/);
  assert.equal(statSync(join(data, "signing-key.sec")).mode & 0o777, 0o600);
  const json = runCpr(["registry", "key", "--data", data, "--json"], { cwd, env });
  assert.deepEqual(JSON.parse(json.stdout), { publicKey: key });
  // The default data directory is $XDG_DATA_HOME/cpr/registry.
  const dflt = runCpr(["registry", "key"], { cwd, env });
  assert.equal(dflt.code, 0, dflt.stderr);
  statSync(join(env.XDG_DATA_HOME!, "cpr", "registry", "signing-key.pub"));
});

test("cpr registry token create: prints a token; usage errors exit 2, a bad root exits 1", () => {
  const env = isolated();
  const cwd = tempDir("cpr-cwd-");
  const data = tempDir("cpr-reg-");
  const ok = runCpr(["registry", "token", "create", "--data", data, "--set", "a".repeat(40), "--set", "B".repeat(64), "--note", "ci"], {
    cwd,
    env,
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^cpr_[A-Za-z0-9_-]{43}\n$/);
  assert.match(
    ok.stderr,
    new RegExp(`^warning: set ${"a".repeat(40)} is not indexed by this registry \\(yet\\)`, "m"),
    "a root the database does not know is pointed out",
  );
  const json = runCpr(
    ["registry", "token", "create", "--data", data, "--db", `sqlite:${join(data, "other.sqlite")}`, "--set", "a".repeat(40), "--json"],
    { cwd, env },
  );
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout).sets, ["a".repeat(40)]);
  assert.equal(runCpr(["registry", "token", "create", "--data", data], { cwd, env }).code, 2, "no --set");
  assert.equal(runCpr(["registry", "token", "create", "--data", data, "--set", "xyz"], { cwd, env }).code, 1, "not a root");
  assert.equal(runCpr(["registry", "token"], { cwd, env }).code, 2);
  assert.equal(runCpr(["registry", "nope"], { cwd, env }).code, 2);
  assert.equal(runCpr(["registry"], { cwd, env }).code, 2);
  const help = runCpr(["registry", "--help"], { cwd, env });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: cpr registry key/);
});

test("cpr serve: --json listening line, indexes --set, accepts a token made beforehand, JSON request logs, stops on SIGTERM and SIGINT", async () => {
  const { bare, root } = await publishedSet();
  const env = isolated();
  const cwd = tempDir("cpr-cwd-");
  const data = tempDir("cpr-reg-");
  const key = runCpr(["registry", "key", "--data", data], { cwd, env }).stdout.trim();
  const token = runCpr(["registry", "token", "create", "--data", data, "--set", root], { cwd, env }).stdout.trim();

  let indexedOnce = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const s = serve(["--data", data, "--listen", "127.0.0.1:0", "--set", bare, "--refresh", "0"], cwd, env);
    try {
      const ready = await s.ready;
      assert.match(ready.listening, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(ready.publicKey, key, "the key cpr registry key printed");
      const sets = (await (await fetch(`${ready.listening}/api/v1/sets`)).json()) as { sets: { root: string }[] };
      assert.deepEqual(
        sets.sets.map((x) => x.root),
        [root],
      );
      const refresh = await fetch(`${ready.listening}/api/v1/sets/${root}/refresh`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(refresh.status, 200);
      assert.deepEqual(await refresh.json(), { root, atoms: 1, versions: 1, added: 0 });
      const search = (await (await fetch(`${ready.listening}/api/v1/search?q=operator`)).json()) as { results: { label: string }[] };
      assert.deepEqual(
        search.results.map((r) => r.label),
        ["hello"],
      );
    } finally {
      s.child.kill(signal);
    }
    const exit = await s.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, s.stderr());
    const err = s.stderr();
    assert.match(err, /^listening on http:\/\/127\.0\.0\.1:\d+$/m);
    const logs = err
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const req = logs.find((l) => l.msg === "request" && l.route === "/api/v1/sets/:root/refresh");
    assert.ok(req, `a JSON request log line:\n${err}`);
    assert.equal(req.status, 200);
    assert.equal(req.method, "POST");
    if (!indexedOnce) {
      indexedOnce = true;
      const again = runCpr(["registry", "token", "create", "--data", data, "--set", root], { cwd, env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stderr, "", "no warning for a set the registry indexes");
    }
  }
});

test("cpr serve: config [registry] gives the sets, data directory and refresh when no flag does", async () => {
  const { bare, root } = await publishedSet();
  const env = isolated();
  const cwd = tempDir("cpr-cwd-");
  const data = join(tempDir("cpr-reg-"), "from-config");
  mkdirSync(join(env.XDG_CONFIG_HOME!, "cpr"), { recursive: true });
  writeFileSync(
    join(env.XDG_CONFIG_HOME!, "cpr", "config.toml"),
    `[registry]\nsets = [${JSON.stringify(bare)}]\ndata = ${JSON.stringify(data)}\nrefresh = 0\n`,
  );
  const s = serve(["--listen", "127.0.0.1:0"], cwd, env);
  try {
    const ready = await s.ready;
    const sets = (await (await fetch(`${ready.listening}/api/v1/sets`)).json()) as { sets: { root: string; mirrors: string[] }[] };
    assert.deepEqual(
      sets.sets.map((x) => [x.root, x.mirrors]),
      [[root, [bare]]],
    );
    assert.equal(readFileSync(join(data, "signing-key.pub"), "utf8").trim(), ready.publicKey, "the key was made in registry.data");
  } finally {
    s.child.kill("SIGTERM");
  }
  assert.deepEqual(await s.exited, { code: 0, signal: null }, s.stderr());
});

test("cpr serve: --help; bad flags are usage errors (exit 2); an unusable --listen exits 1", () => {
  const env = isolated();
  const cwd = tempDir("cpr-cwd-");
  const help = runCpr(["serve", "--help"], { cwd, env });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: cpr serve /);
  assert.match(help.stdout, /--refresh SECONDS/);
  assert.match(help.stdout, /--store-url URL +Keep NARs on S3/);
  assert.match(help.stdout, /AWS_ACCESS_KEY_ID/);
  assert.equal(runCpr(["serve", "--refresh", "soon"], { cwd, env }).code, 2);
  assert.equal(runCpr(["serve", "--bogus"], { cwd, env }).code, 2);
  const bad = runCpr(["serve", "--data", tempDir("cpr-reg-"), "--listen", "127.0.0.1:99999"], { cwd, env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /port/);
});

test("cpr serve: a port in use, a data directory that cannot be made and an unknown --db scheme are messages, not stack traces", async () => {
  const env = isolated();
  const cwd = tempDir("cpr-cwd-");
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  try {
    const port = (holder.address() as AddressInfo).port;
    const inUse = runCpr(["serve", "--data", tempDir("cpr-reg-"), "--listen", `127.0.0.1:${port}`], { cwd, env });
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use\n`));
    assert.match(inUse.stderr, /hint: stop the other server or pick another port/);
    assert.doesNotMatch(inUse.stderr, /^\s+at /m);
  } finally {
    holder.close();
  }
  const file = join(tempDir("cpr-reg-"), "a-file");
  writeFileSync(file, "not a directory\n");
  const noDir = runCpr(["serve", "--data", join(file, "data"), "--listen", "127.0.0.1:0"], { cwd, env });
  assert.equal(noDir.code, 1);
  assert.match(noDir.stderr, /^error: cannot use .*a-file\/data as the registry's data directory: ENOTDIR/);
  assert.doesNotMatch(noDir.stderr, /^\s+at (?!: )/m);

  const unknown = runCpr(["serve", "--data", tempDir("cpr-reg-"), "--db", "mysql://u:secret@db/x", "--listen", "127.0.0.1:0"], {
    cwd,
    env,
  });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown database URL "mysql:\/\/…@db\/x"/);
  assert.doesNotMatch(unknown.stderr, /secret/);
  assert.ok(!existsSync(join(cwd, "mysql:")), "nothing was created under a path made of the URL");

  // --store-url: not s3:// is a usage error; no credentials anywhere stops the server at start, saying where it looked.
  const notS3 = runCpr(["serve", "--data", tempDir("cpr-reg-"), "--store-url", "/var/nars", "--listen", "127.0.0.1:0"], { cwd, env });
  assert.equal(notS3.code, 2);
  assert.match(notS3.stderr, /--store-url \/var\/nars: not a URL/);
  const noCreds = runCpr(
    ["serve", "--data", tempDir("cpr-reg-"), "--store-url", "s3://nars/x?endpoint=http://127.0.0.1:9", "--listen", "127.0.0.1:0"],
    {
      cwd,
      env: { ...env, HOME: tempDir("cpr-home-"), AWS_ACCESS_KEY_ID: "", AWS_PROFILE: "" },
    },
  );
  assert.equal(noCreds.code, 1);
  assert.match(noCreds.stderr, /^error: no S3 credentials for profile default/m);
  assert.match(noCreds.stderr, /hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  assert.doesNotMatch(noCreds.stderr, /^\s+at /m);
});
