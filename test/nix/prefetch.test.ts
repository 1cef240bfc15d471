import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createReadStream, existsSync, linkSync, mkdirSync, readdirSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { basename, join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import type { AddressInfo } from "node:net";
import { prefetchDirect, prefetchUrl, resolveGitRev, pickVersionTag, tagVersion } from "../../src/nix/prefetch.js";
import { fromNix32, toSri } from "../../src/nix/hash.js";
import { CprError } from "../../src/protocol/errors.js";
import { parseRequirement } from "../../src/protocol/requirement.js";
import { gitIn, makeRepo, tempDir, commitAll } from "../support/repo.js";
import { cprRejection } from "../support/assert.js";
import { findTool, needTools } from "../support/tools.js";
import { seededRandom } from "../support/random.js";
import { freePort } from "../support/servers.js";
import { cornerTree, nixAsync, randomBytes, randomTree } from "./support.js";

/** `nix-prefetch-url [--unpack] URL`, as SRI. */
async function nixPrefetch(url: string, unpack: boolean): Promise<string> {
  const out = await nixAsync("nix-prefetch-url", [...(unpack ? ["--unpack"] : []), "--name", "src", url]);
  return toSri("sha256", fromNix32(out.split("\n").pop()!.trim()));
}

/** Serves `root` on loopback: /f/<path> files, /redirect/<path> → 302 to /f/<path>, anything else 404. */
async function serve(root: string): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(u.pathname);
    if (path.startsWith("/redirect/")) {
      res.writeHead(302, { location: `/f/${path.slice("/redirect/".length)}` }).end();
      return;
    }
    if (path === "/error") {
      res.writeHead(500).end("boom");
      return;
    }
    const file = join(root, path.slice("/f/".length));
    if (!path.startsWith("/f/") || relative(root, file).startsWith("..") || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

const COMPRESSORS: Array<{ ext: string; flag: string; tool: string }> = [
  { ext: "tar", flag: "", tool: "tar" },
  { ext: "tar.gz", flag: "-z", tool: "gzip" },
  { ext: "tar.bz2", flag: "-j", tool: "bzip2" },
  { ext: "tar.xz", flag: "-J", tool: "xz" },
  { ext: "tar.zst", flag: "--zstd", tool: "zstd" },
];

describe("prefetch url/tar/build against nix-prefetch-url", () => {
  let files: string;
  let srv: { base: string; close: () => Promise<void> };
  const tarballs: string[] = [];
  before(async () => {
    files = tempDir("cpr-prefetch-files-");
    const src = tempDir("cpr-prefetch-src-");
    writeFileSync(join(files, "odd.bin"), randomBytes(seededRandom(3), 100_003));
    writeFileSync(join(files, "empty"), "");
    writeFileSync(join(files, "fix.patch"), "--- a\n+++ b\n");
    writeFileSync(join(files, "not-a-tarball.tar.gz"), "just text, not a tarball\n");
    // One top-level directory (the usual release tarball), with every corner case inside.
    const one = join(src, "one");
    mkdirSync(one);
    const top = cornerTree(one);
    linkSync(join(top, "nine"), join(top, "hardlink-to-nine"));
    // Several top-level entries: hashed as the whole unpacked directory.
    const many = randomTree(src, 11, 40);
    // One top-level regular file: hashed as that file.
    const single = join(src, "single");
    mkdirSync(single);
    writeFileSync(join(single, "lonely.txt"), "alone\n");
    chmodSync(join(single, "lonely.txt"), 0o755);
    // A read-only top directory.
    const ro = join(src, "ro");
    mkdirSync(join(ro, "locked/inner"), { recursive: true });
    writeFileSync(join(ro, "locked/inner/f"), "f");
    for (const c of COMPRESSORS) {
      if (!findTool(c.tool)) continue;
      const mk = (name: string, cwd: string, members: string[]): void => {
        const out = join(files, `${name}.${c.ext}`);
        execFileSync("tar", [...(c.flag ? [c.flag] : []), "-cf", out, "-C", cwd, "--", ...members]);
        tarballs.push(basename(out));
      };
      mk("one", one, ["corner"]);
      mk("many", many, readdirSync(many));
      mk("dot", many, ["."]);
      mk("single", single, ["lonely.txt"]);
      chmodSync(join(ro, "locked/inner"), 0o555);
      chmodSync(join(ro, "locked"), 0o555);
      mk("readonly", ro, ["locked"]);
      chmodSync(join(ro, "locked"), 0o755);
      chmodSync(join(ro, "locked/inner"), 0o755);
    }
    srv = await serve(files);
  });
  after(async () => {
    await srv?.close();
  });

  test("flat hashes over http, via a redirect, file:// and a path equal nix-prefetch-url", async (t) => {
    if (!needTools(t, "nix-prefetch-url")) return;
    for (const name of ["odd.bin", "empty", "fix.patch", "one.tar.gz"]) {
      const expected = await nixPrefetch(`${srv.base}/f/${name}`, false);
      assert.equal(expected, await nixPrefetch(pathToFileURL(join(files, name)).href, false));
      for (const url of [
        `${srv.base}/f/${name}`,
        `${srv.base}/redirect/${name}`,
        pathToFileURL(join(files, name)).href,
        join(files, name),
      ]) {
        const r = await prefetchDirect("url", url);
        assert.deepEqual(r, { kind: "url", type: "nix", url, hash: expected }, url);
      }
      const rel = await prefetchDirect("build", name, { cwd: files });
      assert.deepEqual(rel, { kind: "build", type: "nix+src", url: name, hash: expected });
    }
  });

  test("unpacked NAR hashes of tarballs (every compression, one/many/single-file/read-only tops) equal nix-prefetch-url --unpack", async (t) => {
    if (!needTools(t, "nix-prefetch-url", "tar", "gzip")) return;
    assert.ok(tarballs.length >= 10);
    for (const name of tarballs) {
      const httpUrl = `${srv.base}/f/${name}`;
      const expected = await nixPrefetch(httpUrl, true);
      assert.equal(await nixPrefetch(pathToFileURL(join(files, name)).href, true), expected, `nix itself, file:// ${name}`);
      const viaHttp = await prefetchDirect("tar", httpUrl);
      assert.deepEqual(viaHttp, { kind: "tar", type: "nix+tar", url: httpUrl, hash: expected }, name);
      const fileUrl = pathToFileURL(join(files, name)).href;
      assert.deepEqual(
        await prefetchDirect("build", fileUrl, { unpack: true }),
        { kind: "build", type: "nix+src", url: fileUrl, hash: expected, unpack: true },
        name,
      );
      assert.equal((await prefetchDirect("tar", join(files, name))).hash, expected);
    }
    // The one-directory tarball hashes as that directory: nix-hash of the tree itself.
    const h = await prefetchUrl(`${srv.base}/f/one.tar.gz`, { unpack: true });
    assert.ok(h.narSize && h.narSize > 1024 * 1024);
    assert.equal(h.singleTop, true);
    assert.equal((await prefetchUrl(`${srv.base}/f/many.tar.gz`, { unpack: true })).singleTop, false);
  });

  test("zip archives (one top directory, several entries, an executable) hash as nix-prefetch-url --unpack hashes them", async (t) => {
    if (!needTools(t, "nix-prefetch-url", "python3")) return;
    if (!findTool("bsdtar") && !needTools(t, "unzip")) return;
    const src = tempDir("cpr-zip-src-");
    mkdirSync(join(src, "one/top/sub"), { recursive: true });
    writeFileSync(join(src, "one/top/readme.txt"), "hello\n");
    writeFileSync(join(src, "one/top/sub/run.sh"), "#!/bin/sh\necho run\n");
    chmodSync(join(src, "one/top/sub/run.sh"), 0o755);
    writeFileSync(join(src, "one/top/sub/data.bin"), randomBytes(seededRandom(7), 70_001));
    // Several top-level entries (ASCII names: Nix's libarchive cannot read UTF-8 zip names under the C locale).
    const many = join(src, "many");
    mkdirSync(join(many, "lib/deep"), { recursive: true });
    writeFileSync(join(many, "a.txt"), "a\n");
    writeFileSync(join(many, "lib/deep/b.txt"), randomBytes(seededRandom(9), 5_000));
    writeFileSync(join(many, "tool"), "#!/bin/sh\n");
    chmodSync(join(many, "tool"), 0o755);
    // Python's zipfile records each entry's Unix mode, as zip(1) does.
    const zip = (name: string, dir: string): string => {
      const out = join(files, name);
      execFileSync("python3", [
        "-c",
        `
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for d, dirs, fs in sorted(os.walk(root)):
        for n in sorted(dirs) + sorted(fs):
            p = os.path.join(d, n)
            z.write(p, os.path.relpath(p, root))
`,
        dir,
        out,
      ]);
      return name;
    };
    for (const name of [zip("one.zip", join(src, "one")), zip("many.zip", many)]) {
      const url = `${srv.base}/f/${name}`;
      const expected = await nixPrefetch(url, true);
      assert.deepEqual(await prefetchDirect("tar", url), { kind: "tar", type: "nix+tar", url, hash: expected }, name);
    }
    assert.equal((await prefetchUrl(`${srv.base}/f/one.zip`, { unpack: true })).singleTop, true);
    // With neither bsdtar nor unzip on PATH, the error says what to install.
    const bare = tempDir("cpr-zip-path-");
    await assert.rejects(
      prefetchDirect("tar", `${srv.base}/f/one.zip`, { env: { ...process.env, PATH: bare } }),
      (e: unknown) => e instanceof CprError && e.code === "nix.unpack" && /zip archive/.test(e.message) && /unzip/.test(e.hint ?? ""),
    );
  });

  test("temporary files are removed", async () => {
    const tmp = tempDir("cpr-prefetch-tmp-");
    await prefetchDirect("tar", `${srv.base}/f/${tarballs.find((n) => n.startsWith("readonly"))}`, { tmpDir: tmp });
    await prefetchDirect("url", `${srv.base}/f/odd.bin`, { tmpDir: tmp });
    await assert.rejects(prefetchDirect("tar", `${srv.base}/f/not-a-tarball.tar.gz`, { tmpDir: tmp }));
    assert.deepEqual(readdirSync(tmp), []);
  });

  test("failures are clear CprErrors", async () => {
    await cprRejection(prefetchDirect("url", `${srv.base}/f/nope`), "nix.fetch-http", /HTTP 404/);
    await cprRejection(prefetchDirect("tar", `${srv.base}/error`), "nix.fetch-http", /HTTP 500/);
    const dead = `http://127.0.0.1:${await freePort()}/x`;
    await cprRejection(prefetchDirect("url", dead), "nix.fetch", /cannot fetch .*ECONNREFUSED/);
    await cprRejection(prefetchDirect("url", "ftp://example.org/x"), "nix.bad-url", /unsupported URL scheme ftp/);
    await cprRejection(prefetchDirect("url", "https://user:secret@127.0.0.1:1/x"), "nix.fetch", /^(?!.*secret)/);
    await cprRejection(prefetchDirect("url", pathToFileURL(join(files, "missing")).href), "nix.fetch", /no such file/);
    await cprRejection(prefetchDirect("url", "file://remote-host/x"), "nix.bad-url", /not a valid file URL/);
    await cprRejection(prefetchDirect("tar", files), "nix.fetch", /not a regular file/);
    await cprRejection(prefetchDirect("tar", `${srv.base}/f/not-a-tarball.tar.gz`), "nix.unpack", /tar failed/);
    await cprRejection(prefetchDirect("url", `${srv.base}/f/odd.bin`, { unpack: true }), "nix.bad-option", /unpack/);
    await cprRejection(prefetchDirect("tar", `${srv.base}/f/odd.bin`, { ref: "main" }), "nix.bad-option", /git/);
  });
});

describe("git direct dependencies resolve with ls-refs", () => {
  let repo: string;
  const revs: Record<string, string> = {};
  before(() => {
    repo = makeRepo({ README: "0\n" });
    revs["1.0.0"] = gitIn(repo, "rev-parse", "HEAD");
    gitIn(repo, "tag", "v1.0.0");
    writeFileSync(join(repo, "README"), "1\n");
    revs["1.2.0"] = commitAll(repo, "1.2");
    gitIn(repo, "tag", "1.2.0");
    writeFileSync(join(repo, "README"), "2\n");
    revs["1.5.0"] = commitAll(repo, "1.5");
    gitIn(repo, "-c", "user.name=T", "-c", "user.email=t@e", "tag", "-a", "-m", "annotated", "v1.5.0");
    writeFileSync(join(repo, "README"), "3\n");
    revs["2.0.0-rc.1"] = commitAll(repo, "2 rc");
    gitIn(repo, "tag", "v2.0.0-rc.1");
    gitIn(repo, "tag", "not-a-version");
    gitIn(repo, "tag", "v01.0.0");
    gitIn(repo, "checkout", "-q", "-b", "dev");
    writeFileSync(join(repo, "README"), "dev\n");
    revs.dev = commitAll(repo, "dev");
    gitIn(repo, "checkout", "-q", "main");
    revs.main = gitIn(repo, "rev-parse", "HEAD");
  });

  test("version requirements pick the highest matching tag, v or not, peeling annotated tags (docs/formats.md §14.6)", async () => {
    assert.deepEqual(await prefetchDirect("git", repo, { version: "^1" }), {
      kind: "git",
      type: "nix+git",
      url: repo,
      version: "1.5.0",
      rev: revs["1.5.0"],
    });
    assert.equal((await resolveGitRev(repo, { version: "~1.2" })).rev, revs["1.2.0"]);
    assert.deepEqual(await resolveGitRev(repo, { version: "=1.0.0" }), { rev: revs["1.0.0"], ref: "refs/tags/v1.0.0", version: "1.0.0" });
    assert.equal((await resolveGitRev(repo, { version: "^2.0.0-rc" })).version, "2.0.0-rc.1");
    assert.equal((await resolveGitRev(pathToFileURL(repo).href, { version: "*" })).version, "1.5.0");
    await assert.rejects(
      resolveGitRev(repo, { version: "^3" }),
      (e: unknown) => e instanceof CprError && e.code === "nix.git-no-version" && /1\.5\.0/.test(e.hint ?? ""),
    );
  });

  test("refs: HEAD by default, branches, tags, full names, revs", async () => {
    assert.deepEqual(await prefetchDirect("git", repo), { kind: "git", type: "nix+git", url: repo, rev: revs.main });
    assert.equal((await resolveGitRev(repo, { ref: "HEAD" })).rev, revs.main);
    assert.deepEqual(await resolveGitRev(repo, { ref: "dev" }), { rev: revs.dev, ref: "refs/heads/dev" });
    assert.deepEqual(await resolveGitRev(repo, { ref: "v1.5.0" }), { rev: revs["1.5.0"], ref: "refs/tags/v1.5.0" });
    assert.equal((await resolveGitRev(repo, { ref: "refs/heads/main" })).rev, revs.main);
    assert.equal((await resolveGitRev(repo, { ref: revs["1.0.0"]! })).rev, revs["1.0.0"]);
    await assert.rejects(resolveGitRev(repo, { ref: "nope" }), (e: unknown) => e instanceof CprError && e.code === "nix.git-no-ref");
    await assert.rejects(
      resolveGitRev(repo, { ref: "dev", version: "^1" }),
      (e: unknown) => e instanceof CprError && e.code === "nix.bad-option",
    );
  });

  test("tagVersion and pickVersionTag", () => {
    assert.equal(tagVersion("refs/tags/v1.2.3")?.text, "1.2.3");
    assert.equal(tagVersion("refs/tags/1.2.3")?.text, "1.2.3");
    assert.equal(tagVersion("refs/tags/vv1.2.3"), null);
    assert.equal(tagVersion("refs/heads/1.2.3"), null);
    assert.equal(tagVersion("refs/tags/v1.2.3^{}"), null);
    const refs = [
      { name: "refs/tags/v1.0.0", oid: "a".repeat(40) },
      { name: "refs/tags/1.1.0", oid: "b".repeat(40), peeled: "c".repeat(40) },
      { name: "refs/tags/v2.0.0", oid: "d".repeat(40) },
    ];
    const best = pickVersionTag(refs, parseRequirement("^1"));
    assert.equal(best?.version.text, "1.1.0");
    assert.equal(pickVersionTag(refs, parseRequirement("^3")), null);
  });
});
