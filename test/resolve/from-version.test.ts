import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { parseLock } from "../../src/protocol/lock.js";
import { substituteVersion } from "../../src/protocol/uri.js";
import { fromNix32, toSri } from "../../src/nix/hash.js";
import { runCprAsync } from "../support/cli.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { nixAsync } from "../nix/support.js";
import { isolatedEnv, makeProject, makeSet, publishMore } from "./fixture.js";

/** Serves the files of `root` at /<name>, counting requests per path. */
async function serve(root: string): Promise<{ base: string; hits: Map<string, number>; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    try {
      const body = readFileSync(join(root, path.slice(1)));
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

test("substituteVersion replaces __VERSION__ in the path only", () => {
  assert.equal(
    substituteVersion("https://h.example/__VERSION__/t-__VERSION__.tgz?v=__VERSION__#__VERSION__", "1.2.3"),
    "https://h.example/1.2.3/t-1.2.3.tgz?v=__VERSION__#__VERSION__",
  );
  assert.equal(substituteVersion("https://__VERSION__.example:80/x-__VERSION__", "2.0.0"), "https://__VERSION__.example:80/x-2.0.0");
  assert.equal(substituteVersion("git@h__VERSION__:o/r-__VERSION__.git", "1.0.0"), "git@h__VERSION__:o/r-1.0.0.git");
  assert.equal(substituteVersion("/srv/files/t-__VERSION__.tar", "0.1.0"), "/srv/files/t-0.1.0.tar");
});

test("add --nix with {<set>.<label>}: from_version recorded, the locked version fetched and hashed, re-locked when it moves", async (t) => {
  const tools = needTools(t, "nix-prefetch-url", "tar", "gzip");
  if (!tools) return;
  const files = tempDir("cpr-fv-files-");
  for (const v of ["1.0.0", "1.1.0"]) {
    const src = join(tempDir("cpr-fv-src-"), `tool-${v}`);
    mkdirSync(src);
    writeFileSync(join(src, "VERSION"), `${v}\n`);
    writeFileSync(join(src, "run.sh"), `#!/bin/sh\necho tool ${v}\n`, { mode: 0o755 });
    await new Promise<void>((ok, ko) =>
      execFile("tar", ["-czf", join(files, `tool-${v}.tar.gz`), "-C", join(src, ".."), `tool-${v}`], (e) => (e ? ko(e) : ok())),
    );
  }
  const srv = await serve(files);
  try {
    const set = join(tempDir("cpr-fv-set-"), "demo");
    makeSet(set, { hello: { "1.0.0": {} } }, "demo");
    const dir = makeProject({});
    const env = isolatedEnv();
    const add = await runCprAsync(["add", `${set}::hello@^1`, "--set", "demo"], { cwd: dir, env });
    assert.equal(add.code, 0, add.stderr);

    // The placeholder's atom must be a dependency.
    const bad = await runCprAsync(["add", "--nix", "tool", `${srv.base}/tool-{demo.nope}.tar.gz`, "--tar"], { cwd: dir, env });
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /demo\.nope/);

    const r = await runCprAsync(["add", "--nix", "tool", `${srv.base}/tool-{demo.hello}.tar.gz`, "--tar"], { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
    const manifest = readFileSync(join(dir, "atom.toml"), "utf8");
    assert.ok(manifest.includes(`tar = "${srv.base}/tool-__VERSION__.tar.gz"`), manifest);
    assert.match(manifest, /from_version = \["demo", "hello"\]/);
    let lock = parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock");
    let e = lock.deps.find((d) => d.type === "nix+tar");
    assert.ok(e && e.type === "nix+tar");
    assert.equal(e.url, `${srv.base}/tool-1.0.0.tar.gz`);
    const want1 = await nixPrefetchUnpack(`${srv.base}/tool-1.0.0.tar.gz`);
    assert.equal(e.hash, want1);

    // Still satisfied: no-op, nothing fetched.
    const before = srv.hits.get("/tool-1.0.0.tar.gz") ?? 0;
    const noop = await runCprAsync(["resolve", "--json"], { cwd: dir, env });
    assert.equal(noop.code, 0, noop.stderr);
    assert.equal(JSON.parse(noop.stdout).status, "unchanged");
    assert.equal(srv.hits.get("/tool-1.0.0.tar.gz") ?? 0, before);

    // A new hello: update moves it, and the tool's URL and hash follow.
    publishMore(set, { hello: { "1.1.0": {} } });
    const up = await runCprAsync(["update", "hello"], { cwd: dir, env });
    assert.equal(up.code, 0, up.stderr);
    lock = parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock");
    assert.equal(
      lock.deps.find((d) => d.type === "atom" && d.label === "hello")?.type === "atom" &&
        (lock.deps.find((d) => d.type === "atom" && d.label === "hello") as { version: string }).version,
      "1.1.0",
    );
    e = lock.deps.find((d) => d.type === "nix+tar");
    assert.ok(e && e.type === "nix+tar");
    assert.equal(e.url, `${srv.base}/tool-1.1.0.tar.gz`);
    assert.equal(e.hash, await nixPrefetchUnpack(`${srv.base}/tool-1.1.0.tar.gz`));
    assert.notEqual(e.hash, want1);
    assert.equal((await runCprAsync(["resolve", "--locked"], { cwd: dir, env })).code, 0);
  } finally {
    await srv.close();
  }
});

async function nixPrefetchUnpack(url: string): Promise<string> {
  const out = await nixAsync("nix-prefetch-url", ["--unpack", "--name", "src", url]);
  return toSri("sha256", fromNix32(out.split("\n").pop()!.trim()));
}
