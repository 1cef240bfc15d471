import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFileSync, spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { readFileSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parseGitUrl, type GitUrl } from "../../src/protocol/uri.js";
import type { ListedRef } from "../../src/protocol/refs.js";
import { recordingReporter } from "../../src/protocol/report.js";
import {
  UploadPackConnection,
  filterRefs,
  lsRefs,
  lsRefsRequest,
  normalizePrefixes,
  parseRefLine,
  prefixBatches,
  type LsRefsResult,
} from "../../src/git/lsrefs.js";
import { redactUrl } from "../../src/protocol/uri.js";
import { daemonRequest } from "../../src/git/transport/daemon.js";
import { shellQuote, sshArgs, sshPath } from "../../src/git/transport/ssh.js";
import { DELIM_PKT, FLUSH_PKT, RESPONSE_END_PKT, decodeAll, encodeLine, pktText } from "../../src/git/pktline.js";
import { GIT_TEST_ENV, gitIn, makeRepo, tempDir, atomToml } from "../support/repo.js";
import { cprRejection } from "../support/assert.js";
import { needTools } from "../support/tools.js";
import {
  freePort,
  isNudge,
  startGitDaemon,
  startHttpBackend,
  startProxy,
  startScriptedDaemon,
  startSshd,
  type ScriptStep,
  type ScriptedRequest,
  type SshTestServer,
} from "../support/servers.js";

// ---------------------------------------------------------------------------------------------------------------
// GitUrl values are built by hand here: the URI parser (src/protocol/uri.ts) is tested on its own.

function urlOf(text: string): GitUrl {
  const u = new URL(text);
  return {
    url: text,
    scheme: u.protocol.slice(0, -1) as GitUrl["scheme"],
    user: u.username ? decodeURIComponent(u.username) : null,
    password: u.password ? decodeURIComponent(u.password) : null,
    host: u.hostname || null,
    port: u.port ? Number(u.port) : null,
    path: decodeURIComponent(u.pathname),
    scpLike: false,
  };
}

function pathUrl(path: string): GitUrl {
  return { url: path, scheme: "file", user: null, password: null, host: null, port: null, path, scpLike: false };
}

function scpUrl(user: string, host: string, path: string): GitUrl {
  return { url: `${user}@${host}:${path}`, scheme: "ssh", user, password: null, host, port: null, path: `/${path}`, scpLike: true };
}

// ---------------------------------------------------------------------------------------------------------------
// Fixture: one bare repository with atom refs, meta refs, the init marker, annotated tags, a near-miss ref, a UTF-8
// label and 5,000 unrelated refs; an empty repository; and a sha256 repository.

const ATOM_PREFIXES = ["refs/eka/atoms/", "refs/ekala/init"];
const NOISE = 5000;

interface Fixture {
  base: string;
  repo: string;
  c1: string;
  c2: string;
  tag: string;
}

let fx: Fixture;

before(() => {
  const work = makeRepo({ "foo/atom.toml": atomToml("foo", "0.1.0"), "ekala.toml": "[set]\n" });
  const c1 = gitIn(work, "rev-parse", "HEAD");
  writeFileSync(join(work, "foo/atom.toml"), atomToml("foo", "0.2.0"));
  gitIn(work, "commit", "-q", "-am", "bump");
  const c2 = gitIn(work, "rev-parse", "HEAD");
  const base = tempDir("cpr-serve-");
  const repo = join(base, "atoms.git");
  gitIn(base, "clone", "-q", "--bare", work, repo);
  gitIn(repo, "tag", "-a", "-m", "release", "v1", c1);
  gitIn(repo, "tag", "-a", "-m", "atom tag", "atomtag", c2);
  const tag = gitIn(repo, "rev-parse", "refs/tags/atomtag");
  const blob = gitIn(repo, "rev-parse", `${c1}:foo/atom.toml`);
  const updates = [
    `create refs/eka/atoms/foo/0.1.0 ${c1}`,
    `create refs/eka/atoms/foo/0.2.0 ${c2}`,
    `create refs/eka/atoms/bar/1.0.0 ${c2}`,
    `create refs/eka/atoms/ひらがな/0.1.0 ${c1}`,
    `create refs/eka/atoms/tagged/1.0.0 ${tag}`,
    `create refs/eka/meta/foo/0.1.0/manifest ${blob}`,
    `create refs/eka/meta/foo/0.1.0/origin ${c1}`,
    `create refs/ekala/init ${c1}`,
    `create refs/eka/atomsX/evil/1.0.0 ${c1}`,
    `create refs/ekala/initial ${c2}`,
  ];
  for (let i = 0; i < NOISE; i++) updates.push(`create refs/heads/noise/branch-${String(i).padStart(5, "0")} ${i % 2 ? c1 : c2}`);
  runStdin(repo, ["update-ref", "--stdin"], `${updates.join("\n")}\n`);
  gitIn(repo, "pack-refs", "--all");
  gitIn(base, "init", "-q", "--bare", "empty.git");
  fx = { base, repo, c1, c2, tag };
});

function runStdin(cwd: string, args: string[], input: string): void {
  const r = spawnSync("git", args, { cwd, input, env: { ...process.env, ...GIT_TEST_ENV } });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${String(r.stderr)}`);
}

/** What git itself says the repository holds under `prefixes` (all refs for an empty list). */
function expected(repo: string, prefixes: readonly string[]): ListedRef[] {
  const out = gitIn(repo, "for-each-ref", "--format=%(objectname) %(refname) %(*objectname)");
  const refs: ListedRef[] = [];
  for (const line of out.split("\n")) {
    const [oid = "", name = "", peeled = ""] = line.split(" ");
    if (prefixes.length > 0 && !prefixes.some((p) => name.startsWith(p))) continue;
    refs.push(peeled ? { name, oid, peeled } : { name, oid });
  }
  return sortRefs(refs);
}

function sortRefs(refs: readonly ListedRef[]): ListedRef[] {
  return [...refs].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/** The expected atom listing, checked field by field (peeled ids included). */
function assertAtomListing(r: LsRefsResult, protocol: 0 | 2 = 2): void {
  assert.equal(r.protocol, protocol);
  assert.deepEqual(sortRefs(r.refs), expected(fx.repo, ATOM_PREFIXES));
  const names = r.refs.map((x) => x.name);
  assert.ok(names.includes("refs/eka/atoms/ひらがな/0.1.0"), "UTF-8 label listed");
  assert.ok(!names.includes("refs/eka/atomsX/evil/1.0.0"), "near-miss ref filtered");
  assert.ok(names.includes("refs/ekala/initial"), "ref-prefix is a plain string prefix, as on the server");
  const tagged = r.refs.find((x) => x.name === "refs/eka/atoms/tagged/1.0.0");
  assert.deepEqual(tagged, { name: "refs/eka/atoms/tagged/1.0.0", oid: fx.tag, peeled: fx.c2 });
  const init = r.refs.find((x) => x.name === "refs/ekala/init");
  assert.deepEqual(init, { name: "refs/ekala/init", oid: fx.c1 });
}

/** A clean environment: no user/system git config, no ssh or credential settings from the machine. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", ...extra };
  for (const k of ["GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "SSH_ASKPASS"]) if (!(k in extra)) delete env[k];
  return env;
}

// ---------------------------------------------------------------------------------------------------------------
// Lazily started servers, shared by the tests and always stopped.

const running: Array<{ stop(): Promise<void> }> = [];
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
});

function lazy<T extends { stop(): Promise<void> }>(start: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () =>
    (p ??= start().then((s) => {
      running.push(s);
      return s;
    }));
}

const daemon = lazy(() => startGitDaemon(fx.base));
const httpd = lazy(() => startHttpBackend(fx.base));
const httpdAuth = lazy(() => startHttpBackend(fx.base, { auth: { user: "alice", password: "s3cret" } }));
const sshd = lazy(() => startSshd(fx.base));
const sshdV0 = lazy(() => startSshd(fx.base, { acceptEnv: false }));

function sshEnv(s: SshTestServer): NodeJS.ProcessEnv {
  return cleanEnv({ GIT_SSH_COMMAND: s.sshCommand });
}

// ---------------------------------------------------------------------------------------------------------------

describe("pure parts", () => {
  test("prefixes are validated, deduplicated and reduced to the shortest covering ones", () => {
    assert.deepEqual(normalizePrefixes(["refs/eka/atoms/foo/", "refs/eka/atoms/", "refs/ekala/init", "refs/eka/atoms/"]), [
      "refs/eka/atoms/",
      "refs/ekala/init",
    ]);
    assert.deepEqual(normalizePrefixes(["refs/a", ""]), []);
    assert.deepEqual(normalizePrefixes([]), []);
    assert.throws(() => normalizePrefixes(["refs/a\nb"]), /invalid ref prefix/);
    assert.throws(() => normalizePrefixes(["x".repeat(70000)]), /too long/);
  });

  test("batches hold at most 65535 prefixes; listing everything is one empty batch", () => {
    assert.deepEqual(prefixBatches([]), [[]]);
    const many = Array.from({ length: 65536 * 2 + 3 }, (_, i) => `p${i}`);
    assert.deepEqual(
      prefixBatches(many).map((b) => b.length),
      [65535, 65535, 5],
    );
  });

  test("local filtering keeps exactly the refs under a prefix", () => {
    const refs: ListedRef[] = [
      "HEAD",
      "refs/eka/atoms/a/1.0.0",
      "refs/eka/atomsX/a",
      "refs/ekala/init",
      "refs/ekala/initial",
      "refs/heads/main",
      "refs/eka/meta/a/1.0.0/origin",
    ].map((name) => ({ name, oid: "0".repeat(40) }));
    const kept = filterRefs(refs, normalizePrefixes(["refs/eka/atoms/", "refs/ekala/init", "refs/eka/meta/a/"]));
    assert.deepEqual(
      kept.map((r) => r.name),
      ["refs/eka/atoms/a/1.0.0", "refs/ekala/init", "refs/ekala/initial", "refs/eka/meta/a/1.0.0/origin"],
    );
    assert.equal(filterRefs(refs, []).length, refs.length);
  });

  test("ref lines: peeled ids, symref targets, unborn HEAD, garbage", () => {
    const a = "a".repeat(40);
    const b = "b".repeat(40);
    assert.deepEqual(parseRefLine(`${a} refs/tags/v1 peeled:${b}`), { name: "refs/tags/v1", oid: a, peeled: b });
    assert.deepEqual(parseRefLine(`${a} HEAD symref-target:refs/heads/main`), { name: "HEAD", oid: a });
    assert.equal(parseRefLine("unborn HEAD symref-target:refs/heads/main"), null);
    assert.equal(parseRefLine("xyz refs/heads/main"), "bad");
    assert.equal(parseRefLine(`${a} refs/tags/v1 peeled:zz`), "bad");
    assert.deepEqual(parseRefLine(`${"c".repeat(64)} refs/heads/x`), { name: "refs/heads/x", oid: "c".repeat(64) });
  });

  test("the ls-refs request: command, agent, object-format, delim, peel, prefixes, flush", () => {
    const caps = new Map<string, string | null>([
      ["agent", "git/2.39.5"],
      ["ls-refs", "unborn"],
      ["object-format", "sha256"],
    ]);
    const pkts = decodeAll(lsRefsRequest(["refs/eka/atoms/ひらがな/", "refs/ekala/init"], caps, "1.2.3"));
    const shown = pkts.map((p) => (p.kind === "data" ? pktText(p.data) : p.kind));
    assert.deepEqual(shown, [
      "command=ls-refs",
      "agent=cpr/1.2.3",
      "object-format=sha256",
      "delim",
      "peel",
      "ref-prefix refs/eka/atoms/ひらがな/",
      "ref-prefix refs/ekala/init",
      "flush",
    ]);
    const bare = decodeAll(lsRefsRequest([], new Map([["ls-refs", null]]), "1")).map((p) => (p.kind === "data" ? pktText(p.data) : p.kind));
    assert.deepEqual(bare, ["command=ls-refs", "delim", "peel", "flush"]);
  });

  test("passwords are removed from URLs in messages", () => {
    assert.equal(redactUrl("https://u:p%40ss@example.com/o/r"), "https://u@example.com/o/r");
    assert.equal(redactUrl("https://tok@example.com/o/r"), "https://tok@example.com/o/r");
    assert.equal(redactUrl("git@github.com:o/r"), "git@github.com:o/r");
    assert.equal(redactUrl("./rel/path"), "./rel/path");
  });

  test("git:// request packet and ssh command line are built as git builds them", () => {
    assert.equal(
      daemonRequest("/r.git", "example.com", null).toString("latin1"),
      "0037git-upload-pack /r.git\0host=example.com\0\0version=2\0",
    );
    assert.equal(daemonRequest("/r.git", "::1", 9999).toString("latin1").split("\0")[1], "host=[::1]:9999");
    assert.equal(shellQuote("/a b/it's!"), "'/a b/it'\\''s'\\!''");
    const ssh = urlOf("ssh://git@example.com:2222/~bob/repo.git");
    assert.equal(sshPath(ssh), "~bob/repo.git");
    assert.deepEqual(sshArgs("ssh", ssh, "git-upload-pack '~bob/repo.git'"), [
      "-o",
      "SendEnv=GIT_PROTOCOL",
      "-p",
      "2222",
      "git@example.com",
      "git-upload-pack '~bob/repo.git'",
    ]);
    assert.deepEqual(sshArgs("plink", ssh, "cmd"), ["-P", "2222", "git@example.com", "cmd"]);
    assert.equal(sshPath(scpUrl("git", "github.com", "owner/repo")), "owner/repo");
    assert.equal(sshPath(scpUrl("git", "host", "/abs/repo.git")), "/abs/repo.git");
    // scp-like URLs normalised to ssh:// text: the path is "/" + what followed the colon (docs/formats.md §13.3).
    const scpNormalised = (path: string): GitUrl => ({
      url: `ssh://git@host${path}`,
      scheme: "ssh",
      user: "git",
      password: null,
      host: "host",
      port: null,
      path,
      scpLike: true,
    });
    assert.equal(sshPath(scpNormalised("/owner/repo")), "owner/repo");
    assert.equal(sshPath(scpNormalised("//srv/repo.git")), "/srv/repo.git");
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("local transport (git upload-pack)", () => {
  test("a relative path resolves against opts.cwd", async () => {
    const r = await lsRefs(pathUrl("atoms.git"), ATOM_PREFIXES, { cwd: fx.base, env: cleanEnv() });
    assertAtomListing(r);
    assert.equal(r.roundTrips, 2);
  });

  test("file:// URL", async () => {
    assertAtomListing(await lsRefs(urlOf(`file://${fx.repo}`), ATOM_PREFIXES, { env: cleanEnv() }));
  });

  test("a single UTF-8 label", async () => {
    const r = await lsRefs(pathUrl(fx.repo), ["refs/eka/atoms/ひらがな/"], { env: cleanEnv() });
    assert.deepEqual(r.refs, [{ name: "refs/eka/atoms/ひらがな/0.1.0", oid: fx.c1 }]);
  });

  test("the server filters: the filtered reply is a small fraction of the full listing", async () => {
    const all = await lsRefs(pathUrl(fx.repo), [], { env: cleanEnv() });
    assert.deepEqual(sortRefs(all.refs), sortRefs([...expected(fx.repo, []), { name: "HEAD", oid: fx.c2 }]));
    assert.ok(all.refs.length > NOISE);
    const some = await lsRefs(pathUrl(fx.repo), ATOM_PREFIXES, { env: cleanEnv() });
    assert.ok(some.bytesReceived * 50 < all.bytesReceived, `${some.bytesReceived} bytes filtered vs ${all.bytesReceived} in full`);
  });

  test("more than 65535 prefixes are split into several requests on one connection", async () => {
    const many = Array.from({ length: 70_000 }, (_, i) => `refs/eka/atoms/missing-${i}/`);
    many.push("refs/eka/atoms/foo/", "refs/eka/atoms/ひらがな/", "refs/ekala/init");
    const r = await lsRefs(pathUrl(fx.repo), many, { env: cleanEnv() });
    assert.equal(r.roundTrips, 3, "advertisement + two ls-refs requests");
    assert.deepEqual(
      r.refs.map((x) => x.name),
      ["refs/eka/atoms/foo/0.1.0", "refs/eka/atoms/foo/0.2.0", "refs/eka/atoms/ひらがな/0.1.0", "refs/ekala/init", "refs/ekala/initial"],
    );
    // Had the server seen all prefixes in one request, it would have ignored them and sent everything.
    assert.ok(r.bytesReceived < 20_000, `received ${r.bytesReceived} bytes`);
  });

  test("an empty repository lists nothing", async () => {
    const r = await lsRefs(pathUrl(join(fx.base, "empty.git")), ATOM_PREFIXES, { env: cleanEnv() });
    assert.deepEqual(r.refs, []);
    assert.equal(r.protocol, 2);
  });

  test("sha256 repositories: object-format is negotiated and 64-hex ids come back", async () => {
    const work = makeRepo({ "a/atom.toml": atomToml("a", "1.0.0") }, { objectFormat: "sha256" });
    const head = gitIn(work, "rev-parse", "HEAD");
    gitIn(work, "update-ref", "refs/eka/atoms/a/1.0.0", head);
    const r = await lsRefs(pathUrl(work), ["refs/eka/atoms/"], { env: cleanEnv() });
    assert.deepEqual(r.refs, [{ name: "refs/eka/atoms/a/1.0.0", oid: head }]);
    assert.equal(head.length, 64);
  });

  test("a nonexistent path is remote.not-found naming the path", async () => {
    const e = await cprRejection(lsRefs(pathUrl("no-such.git"), ATOM_PREFIXES, { cwd: fx.base }), "remote.not-found", /no-such\.git/);
    assert.match(e.message, new RegExp(join(fx.base, "no-such.git").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });

  test("a directory that is not a repository is remote.not-found", async () => {
    await cprRejection(lsRefs(pathUrl(tempDir()), ATOM_PREFIXES, { env: cleanEnv() }), "remote.not-found", /not a git repository/);
  });

  test("the caller's GIT_DIR does not leak into upload-pack", async () => {
    const r = await lsRefs(pathUrl(fx.repo), ["refs/ekala/init"], { env: cleanEnv({ GIT_DIR: join(fx.base, "empty.git") }) });
    assert.equal(r.refs.length, 2);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("git daemon (git://)", () => {
  test("lists atoms with server-side filtering", async (t) => {
    if (!needTools(t, "git-daemon")) return;
    const d = await daemon();
    const r = await lsRefs(urlOf(d.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv() });
    assertAtomListing(r);
    const all = await lsRefs(urlOf(d.url("atoms.git")), [], { env: cleanEnv() });
    assert.ok(r.bytesReceived * 50 < all.bytesReceived);
  });

  test("a repository the daemon does not serve is remote.not-found", async (t) => {
    if (!needTools(t, "git-daemon")) return;
    const d = await daemon();
    await cprRejection(
      lsRefs(urlOf(d.url("missing.git")), ATOM_PREFIXES, { env: cleanEnv() }),
      "remote.not-found",
      /missing\.git.*not exported/,
    );
  });

  test("a refused port is remote.unreachable", async () => {
    const port = await freePort();
    await cprRejection(lsRefs(urlOf(`git://127.0.0.1:${port}/atoms.git`), ATOM_PREFIXES), "remote.unreachable", /connection refused/);
  });

  test("a server that never answers times out as remote.unreachable", async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const addr = silent.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    try {
      await cprRejection(
        lsRefs(urlOf(`git://127.0.0.1:${port}/atoms.git`), ATOM_PREFIXES, { timeoutMs: 300 }),
        "remote.unreachable",
        /no reply within 0\.3s/,
      );
    } finally {
      silent.close();
      silent.unref();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("smart HTTP (lighttpd + git http-backend)", () => {
  const tools = ["lighttpd", "git-http-backend"] as const;

  test("lists atoms with server-side filtering", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpd();
    const r = await lsRefs(urlOf(h.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv() });
    assertAtomListing(r);
    assert.equal(r.roundTrips, 2, "GET info/refs + one POST");
    const all = await lsRefs(urlOf(h.url("atoms.git")), [], { env: cleanEnv() });
    assert.ok(r.bytesReceived * 50 < all.bytesReceived, `${r.bytesReceived} vs ${all.bytesReceived}`);
  });

  test("gzip-encoded responses are decoded (bytesReceived counts the wire bytes)", async (t) => {
    if (!needTools(t, ...tools)) return;
    const proxy = await startProxy(await httpd(), { gzip: true });
    running.push(proxy);
    const r = await lsRefs(urlOf(proxy.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv() });
    assertAtomListing(r);
    assert.equal(proxy.gzipped(), 2);
    const all = await lsRefs(urlOf(proxy.url("atoms.git")), [], { env: cleanEnv() });
    const plain = await lsRefs(urlOf((await httpd()).url("atoms.git")), [], { env: cleanEnv() });
    assert.equal(all.refs.length, plain.refs.length);
    assert.ok(all.bytesReceived < plain.bytesReceived / 2, "compressed on the wire");
  });

  test("a v0 answer over HTTP (no Git-Protocol header reaches the server) is filtered locally, with a warning", async (t) => {
    if (!needTools(t, ...tools)) return;
    const proxy = await startProxy(await httpd(), { dropRequestHeaders: ["git-protocol"] });
    running.push(proxy);
    const rep = recordingReporter();
    const r = await lsRefs(urlOf(proxy.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv(), reporter: rep });
    assertAtomListing(r, 0);
    assert.equal(r.roundTrips, 1, "the GET carries the whole advertisement");
    assert.match(rep.warnings.join("\n"), /does not speak git protocol v2.*whole ref listing was downloaded/);
  });

  test("dumb HTTP (static info/refs) is read and filtered locally, with a warning", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpd();
    gitIn(fx.repo, "update-server-info");
    const rep = recordingReporter();
    const r = await lsRefs(urlOf(h.dumbUrl("atoms.git")), ATOM_PREFIXES, { env: cleanEnv(), reporter: rep });
    assertAtomListing(r, 0);
    assert.match(rep.warnings.join("\n"), /only offers dumb HTTP/);
    await cprRejection(lsRefs(urlOf(h.dumbUrl("missing.git")), ATOM_PREFIXES, { env: cleanEnv() }), "remote.not-found", /404/);
  });

  test("a redirected info/refs moves the base URL, as git does", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpd();
    const target = h.url("atoms.git");
    const redirector = http.createServer((req, res) => {
      res.writeHead(301, { location: `${target}${(req.url ?? "").replace(/^\/old\/atoms\.git/, "")}` });
      res.end();
    });
    await new Promise<void>((r) => redirector.listen(0, "127.0.0.1", r));
    const addr = redirector.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    try {
      const rep = recordingReporter();
      const r = await lsRefs(urlOf(`http://127.0.0.1:${port}/old/atoms.git`), ATOM_PREFIXES, { env: cleanEnv(), reporter: rep });
      assertAtomListing(r);
      assert.match(rep.warnings.join("\n"), /redirecting to http:\/\/127\.0\.0\.1:\d+\/git\/atoms\.git/);
    } finally {
      redirector.close();
      redirector.closeAllConnections();
    }
  });

  test("a missing repository is remote.not-found (HTTP 404)", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpd();
    await cprRejection(lsRefs(urlOf(h.url("missing.git")), ATOM_PREFIXES, { env: cleanEnv() }), "remote.not-found", /missing\.git.*404/);
  });

  test("a refused port is remote.unreachable", async () => {
    const port = await freePort();
    await cprRejection(
      lsRefs(urlOf(`http://127.0.0.1:${port}/git/atoms.git`), ATOM_PREFIXES, { env: cleanEnv() }),
      "remote.unreachable",
      /connection refused/,
    );
  });
});

describe("smart HTTP with Basic auth", () => {
  const tools = ["lighttpd", "git-http-backend"] as const;

  /** A credential helper that logs each action and its input, and answers `get` with the given password. */
  function helperEnv(password: string): { env: NodeJS.ProcessEnv; log: string } {
    const dir = tempDir("cpr-cred-");
    const log = join(dir, "log");
    const script = join(dir, "helper.sh");
    writeFileSync(
      script,
      `#!/bin/sh\necho "action=$1" >> '${log}'\ncat >> '${log}'\nif [ "$1" = get ]; then echo username=alice; echo password=${password}; fi\n`,
    );
    chmodSync(script, 0o755);
    return { env: cleanEnv({ GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "credential.helper", GIT_CONFIG_VALUE_0: script }), log };
  }

  function actions(log: string): string[] {
    return existsSync(log) ? [...readFileSync(log, "utf8").matchAll(/^action=(\w+)$/gm)].map((m) => m[1] ?? "") : [];
  }

  test("401 → git credential fill → retry → approve", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpdAuth();
    const { env, log } = helperEnv("s3cret");
    assertAtomListing(await lsRefs(urlOf(h.url("atoms.git")), ATOM_PREFIXES, { env }));
    assert.deepEqual(actions(log), ["get", "store"]);
    const text = readFileSync(log, "utf8");
    assert.match(text, /^protocol=http$/m);
    assert.match(text, new RegExp(`^host=127\\.0\\.0\\.1:${h.port}$`, "m"));
  });

  test("a wrong password from the helper is remote.auth, and the helper is told to erase it", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpdAuth();
    const { env, log } = helperEnv("wrong");
    await cprRejection(lsRefs(urlOf(h.url("atoms.git")), ATOM_PREFIXES, { env }), "remote.auth", /authentication failed/);
    assert.deepEqual(actions(log), ["get", "erase"]);
  });

  test("credentials in the URL are used first; a wrong one fails without leaking the password", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpdAuth();
    const { env, log } = helperEnv("unused");
    const good = h.url("atoms.git").replace("http://", "http://alice:s3cret@");
    assertAtomListing(await lsRefs(urlOf(good), ATOM_PREFIXES, { env }));
    // Userinfo is percent-decoded from the URL text, whatever the GitUrl fields hold.
    const encoded = h.url("atoms.git").replace("http://", "http://%61lice:s3cr%65t@");
    assertAtomListing(await lsRefs({ ...urlOf(encoded), user: "%61lice", password: "s3cr%65t" }, ATOM_PREFIXES, { env }));
    const bad = h.url("atoms.git").replace("http://", "http://alice:hunter2@");
    const e = await cprRejection(lsRefs(urlOf(bad), ATOM_PREFIXES, { env }), "remote.auth", /http:\/\/alice@127\.0\.0\.1/);
    assert.doesNotMatch(`${e.message} ${e.where ?? ""} ${e.hint ?? ""}`, /hunter2/);
    assert.deepEqual(actions(log), []);
  });

  test("no credential helper and no terminal: remote.auth with a hint", async (t) => {
    if (!needTools(t, ...tools)) return;
    const h = await httpdAuth();
    const e = await cprRejection(
      lsRefs(urlOf(h.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv({ GIT_TERMINAL_PROMPT: "0" }) }),
      "remote.auth",
      /authentication required/,
    );
    assert.match(e.hint ?? "", /credential helper/);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("ssh (OpenSSH sshd)", () => {
  const tools = ["sshd", "ssh", "ssh-keygen"] as const;

  test("ssh:// URL through GIT_SSH_COMMAND, protocol v2 via AcceptEnv", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    const r = await lsRefs(urlOf(s.url("atoms.git")), ATOM_PREFIXES, { env: sshEnv(s) });
    assertAtomListing(r);
    assert.equal(r.roundTrips, 2);
  });

  test("scp-like user@host:path (port from the ssh command)", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    assertAtomListing(await lsRefs(scpUrl(s.user, "127.0.0.1", join(fx.base, "atoms.git")), ATOM_PREFIXES, { env: sshEnv(s) }));
  });

  test("GIT_SSH names a program run without a shell", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    const wrapper = join(tempDir("cpr-gitssh-"), "my-ssh");
    writeFileSync(wrapper, `#!/bin/sh\nexec ${s.sshCommand} "$@"\n`);
    chmodSync(wrapper, 0o755);
    assertAtomListing(await lsRefs(urlOf(s.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv({ GIT_SSH: wrapper }) }));
  });

  test("core.sshCommand from git config is honoured", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    const env = cleanEnv({ GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "core.sshCommand", GIT_CONFIG_VALUE_0: s.sshCommand });
    assertAtomListing(await lsRefs(urlOf(s.url("atoms.git")), ATOM_PREFIXES, { env }));
  });

  test("an ssh program that fails the -G probe is used as the 'simple' variant: no options, so v0", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    const wrapper = join(tempDir("cpr-simplessh-"), "simple-ssh");
    // Accepts only `host command`, like the simplest ssh replacements.
    writeFileSync(wrapper, `#!/bin/sh\ncase "$1" in -*) exit 1;; esac\nexec ${s.sshCommand} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const rep = recordingReporter();
    const url = scpUrl(s.user, "127.0.0.1", join(fx.base, "atoms.git"));
    const r = await lsRefs(url, ATOM_PREFIXES, { env: cleanEnv({ GIT_SSH: wrapper }), reporter: rep });
    assertAtomListing(r, 0);
    await cprRejection(
      lsRefs(urlOf(s.url("atoms.git")), ATOM_PREFIXES, { env: cleanEnv({ GIT_SSH: wrapper }) }),
      "remote.protocol",
      /'simple' does not support setting a port/,
    );
  });

  test("a server without AcceptEnv GIT_PROTOCOL answers v0: full advertisement, filtered locally, with a warning", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshdV0();
    const rep = recordingReporter();
    const r = await lsRefs(urlOf(s.url("atoms.git")), ATOM_PREFIXES, { env: sshEnv(s), reporter: rep });
    assertAtomListing(r, 0);
    assert.equal(r.roundTrips, 1);
    assert.ok(r.bytesReceived > NOISE * 50, "the whole listing came over");
    assert.equal(rep.warnings.length, 1);
    assert.match(rep.warnings[0] ?? "", /does not speak git protocol v2.*AcceptEnv GIT_PROTOCOL.*whole ref listing was downloaded/);
    const empty = await lsRefs(urlOf(s.url("empty.git")), ATOM_PREFIXES, { env: sshEnv(s), reporter: rep });
    assert.deepEqual(empty.refs, []);
  });

  test("a missing repository is remote.not-found", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    await cprRejection(
      lsRefs(urlOf(s.url("missing.git")), ATOM_PREFIXES, { env: sshEnv(s) }),
      "remote.not-found",
      /does not appear to be a git repository/,
    );
  });

  test("an unauthorised key is remote.auth", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    const other = join(tempDir("cpr-key-"), "k");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const env = cleanEnv({ GIT_SSH_COMMAND: s.sshCommand.replace(s.clientKey, other) });
    await cprRejection(lsRefs(urlOf(s.url("atoms.git")), ATOM_PREFIXES, { env }), "remote.auth", /Permission denied/);
  });

  test("a refused port is remote.unreachable", async (t) => {
    if (!needTools(t, ...tools)) return;
    const s = await sshd();
    const port = await freePort();
    const env = cleanEnv({ GIT_SSH_COMMAND: s.sshCommand.replace(/-p \d+/, "") });
    await cprRejection(
      lsRefs(urlOf(`ssh://${s.user}@127.0.0.1:${port}${fx.repo}`), ATOM_PREFIXES, { env }),
      "remote.unreachable",
      /Connection refused/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("with GitUrls from the URI parser", () => {
  test("path, file://, git://, http:// and ssh:// URLs parse and list", async (t) => {
    if (!needTools(t, "git-daemon", "lighttpd", "git-http-backend", "sshd", "ssh", "ssh-keygen")) return;
    const [d, h, s] = await Promise.all([daemon(), httpd(), sshd()]);
    const cases: Array<[string, NodeJS.ProcessEnv]> = [
      [fx.repo, cleanEnv()],
      [`file://${fx.repo}`, cleanEnv()],
      [d.url("atoms.git"), cleanEnv()],
      [h.url("atoms.git"), cleanEnv()],
      [s.url("atoms.git"), sshEnv(s)],
    ];
    for (const [text, env] of cases) {
      const url = parseGitUrl(text);
      assertAtomListing(await lsRefs(url, ATOM_PREFIXES, { env }));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Crafted replies from a scripted git:// server: what counts as an answer. Only a complete reply (up to its final
// flush) to the very request it is read for is a listing; anything else is remote.transport, never "no refs".

describe("crafted replies (scripted git:// server)", () => {
  const OID = "1".repeat(40);
  const INIT = `${OID} refs/ekala/init`;

  async function scripted(answer: (req: ScriptedRequest) => readonly ScriptStep[]) {
    const s = await startScriptedDaemon(answer);
    running.push(s);
    return s;
  }

  /** lsRefs of refs/ekala/init against a server that answers every ls-refs with `reply`: a transport failure, tried twice. */
  async function failsAsTransport(reply: readonly ScriptStep[], match: RegExp): Promise<void> {
    const s = await scripted(() => reply);
    const e = await cprRejection(lsRefs(urlOf(s.url("s.git")), ["refs/ekala/init"]), "remote.transport", match);
    assert.match(e.message, new RegExp(`^git://127\\.0\\.0\\.1:${s.port}/s\\.git: transport failure: `));
    assert.equal(s.connections(), 2, "tried once more on a fresh connection");
  }

  test("a complete reply lists its refs; a complete empty reply (a bare flush) is the only 'no refs'", async () => {
    const full = await scripted(() => [encodeLine(INIT), FLUSH_PKT]);
    assert.deepEqual((await lsRefs(urlOf(full.url("s.git")), ["refs/ekala/init"])).refs, [{ name: "refs/ekala/init", oid: OID }]);
    const empty = await scripted(() => [FLUSH_PKT]);
    assert.deepEqual((await lsRefs(urlOf(empty.url("s.git")), ["refs/ekala/init"])).refs, []);
    assert.equal(empty.connections(), 1);
  });

  test("an empty reply (the connection closes before any byte of it) is a transport failure", async () => {
    await failsAsTransport(["close"], /git daemon ended inside the ls-refs reply \(after 0 ref\(s\), before its final flush\)/);
  });

  test("a reply missing its final flush is a transport failure", async () => {
    await failsAsTransport([encodeLine(INIT), "close"], /ended inside the ls-refs reply \(after 1 ref\(s\), before its final flush\)/);
  });

  test("a reply cut inside a pkt-line is a transport failure", async () => {
    await failsAsTransport([encodeLine(INIT).subarray(0, 20), "close"], /malformed reply from the server: stream ended inside a pkt-line/);
  });

  test("a response-end or a delimiter where the flush belongs is a transport failure", async () => {
    await failsAsTransport([encodeLine(INIT), RESPONSE_END_PKT], /unexpected response-end packet in the ls-refs reply/);
    await failsAsTransport([DELIM_PKT, FLUSH_PKT], /unexpected delim packet in the ls-refs reply \(after 0 ref/);
  });

  test("a reply for another prefix (from git's own server) is a transport failure, not an empty listing", async () => {
    await failsAsTransport(
      [encodeLine(`${OID} refs/eka/atoms/foo/1.0.0`), FLUSH_PKT],
      /out of step.*refs\/eka\/atoms\/foo\/1\.0\.0.*refs\/ekala\/init/,
    );
  });

  test("a failure on the first connection only: the fresh one's listing is the answer", async () => {
    const s = await scripted((r) => (r.connection === 0 ? [encodeLine(INIT), "close"] : [encodeLine(INIT), FLUSH_PKT]));
    assert.deepEqual((await lsRefs(urlOf(s.url("s.git")), ["refs/ekala/init"])).refs, [{ name: "refs/ekala/init", oid: OID }]);
    assert.equal(s.connections(), 2);
  });

  test("nudges: each reply is read for its own request, however the nudges' replies arrive", async () => {
    // The first listing comes in three pieces, each sent only once the client has nudged (so two nudges are
    // outstanding when it ends); their replies arrive one at a time during the next request's exchange, the second
    // one only after a third nudge. A client that counted nudges instead of matching replies read the second
    // listing's reply as a nudge's and the third nudge's empty reply as the listing: refs/ekala/init "missing".
    const line = (i: number) => encodeLine(`${OID} refs/eka/atoms/big/1.0.${i}`);
    const s = await scripted((r) => {
      const next = { untilRequest: r.index + 1 };
      if (r.index === 0) return [line(0), next, line(1), { untilRequest: r.index + 2 }, line(2), FLUSH_PKT];
      if (isNudge(r) && r.index <= 2) return [{ untilRequest: 3 }, FLUSH_PKT, ...(r.index === 1 ? [{ untilRequest: 4 }] : [])];
      if (isNudge(r)) return [FLUSH_PKT];
      return [encodeLine(INIT), FLUSH_PKT];
    });
    const conn = await UploadPackConnection.open(urlOf(s.url("s.git")));
    try {
      assert.equal((await conn.lsRefs(["refs/eka/atoms/big/"])).length, 3);
      assert.deepEqual(await conn.lsRefs(["refs/ekala/init"]), [{ name: "refs/ekala/init", oid: OID }]);
      assert.deepEqual(await conn.lsRefs(["refs/ekala/init"]), [{ name: "refs/ekala/init", oid: OID }]);
    } finally {
      await conn.close();
    }
    const reqs = s.requests();
    assert.ok(reqs.filter(isNudge).length >= 3, s.log());
  });

  test("a nudge's reply that is not a bare flush: replies out of step, a transport failure", async () => {
    const s = await scripted((r) => {
      if (r.index === 0) return [encodeLine(`${OID} refs/eka/atoms/big/1.0.0`), { untilRequest: 1 }, FLUSH_PKT];
      if (isNudge(r)) return [encodeLine(INIT), FLUSH_PKT];
      return [encodeLine(INIT), FLUSH_PKT];
    });
    const conn = await UploadPackConnection.open(urlOf(s.url("s.git")));
    try {
      assert.equal((await conn.lsRefs(["refs/eka/atoms/big/"])).length, 1);
      await cprRejection(conn.lsRefs(["refs/ekala/init"]), "remote.transport", /out of step.*refs\/cpr\/nudge\/none\/.*refs\/ekala\/init/);
      assert.equal(conn.broken, true);
    } finally {
      await conn.close();
    }
  });
});
