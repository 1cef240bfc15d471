import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { verifyRemote, type AtomReport, type VerifyRequest } from "../../src/store/verify.js";
import { parseGitUrl } from "../../src/protocol/uri.js";
import { atomCommitBody } from "../../src/protocol/commit.js";
import { treeDigest } from "../../src/git/tree-digest.js";
import { Repo } from "../../src/git/repo.js";
import { gitIn, tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { copyBare, env, newCache, publishedSet, setRef, sshKey, unevaluableSet, writeObject } from "./fixture.js";

async function verify(remote: string, reqs: VerifyRequest[] = [], opts: { deep?: boolean; trust?: string } = {}): Promise<AtomReport[]> {
  const cache = await newCache();
  try {
    return await verifyRemote(parseGitUrl(remote), reqs, { cache, cwd: tempDir(), env, ...opts });
  } finally {
    cache.close();
  }
}

const problems = (reports: AtomReport[], label: string, version: string) =>
  reports.find((r) => r.label === label && r.version === version)!.problems.join("\n");

test("verify: a faithful set is ok, deep included; paths found by tree id", async () => {
  const set = await publishedSet();
  const reports = await verify(set.remote, [], { deep: true });
  assert.deepEqual(
    reports.map((r) => [r.label, r.version, r.status, r.path, r.problems]),
    [
      ["a", "0.1.0", "ok", "a", []],
      ["a", "0.2.0", "ok", "a", []],
      ["b", "2.0.0", "ok", "b", []],
    ],
  );
  const only = await verify(set.remote, [{ label: "a", version: "0.2.0" }]);
  assert.deepEqual(
    only.map((r) => r.version),
    ["0.2.0"],
  );
  const none = await verify(set.remote, [{ label: "a", version: "9.9.9" }]);
  assert.match(none[0]!.problems[0]!, /has no refs\/eka\/atoms\/a\/9\.9\.9/);
});

test("verify: each tampering is detected with a precise message", async () => {
  const set = await publishedSet();
  const origin1 = gitIn(set.remote, "rev-parse", "refs/eka/meta/a/0.1.0/origin");

  // A rewritten atom commit: same tree, origin, label and version, other bytes.
  const rewritten = copyBare(set.remote);
  const tree = gitIn(rewritten, "rev-parse", `${set.revs["a@0.1.0"]}^{tree}`);
  const body = atomCommitBody({ tree, origin: origin1, label: "a", version: "0.1.0" })
    .toString("utf8")
    .replace("committer  <> 0 +0000", "committer  <> 1 +0000");
  setRef(rewritten, "refs/eka/atoms/a/0.1.0", writeObject(rewritten, "commit", body));
  assert.match(
    problems(await verify(rewritten, [{ label: "a", version: "0.1.0" }]), "a", "0.1.0"),
    /is not the pre1 commit of \(a in [0-9a-f]{40}, a, 0\.1\.0\): rebuilt [0-9a-f]{40} \(rewritten atom commit\)/,
  );

  // A moved ref: 0.2.0 points at 0.1.0's commit.
  const moved = copyBare(set.remote);
  setRef(moved, "refs/eka/atoms/a/0.2.0", set.revs["a@0.1.0"]!);
  assert.match(
    problems(await verify(moved, [{ label: "a", version: "0.2.0" }]), "a", "0.2.0"),
    new RegExp(`refs/eka/atoms/a/0\\.2\\.0 points at ${set.revs["a@0.1.0"]}, the atom commit of a 0\\.1\\.0 \\(moved ref\\)`),
  );

  // The manifest ref points at another blob.
  const manifest = copyBare(set.remote);
  const other = gitIn(manifest, "rev-parse", "refs/eka/meta/b/2.0.0/manifest");
  const right = gitIn(manifest, "rev-parse", "refs/eka/meta/a/0.1.0/manifest");
  setRef(manifest, "refs/eka/meta/a/0.1.0/manifest", other);
  assert.match(
    problems(await verify(manifest, [{ label: "a", version: "0.1.0" }]), "a", "0.1.0"),
    new RegExp(`refs/eka/meta/a/0\\.1\\.0/manifest is blob ${other}, but the atom tree's atom.toml is ${right}`),
  );

  // A wrong root: refs/ekala/init moved to a later commit of the history (one with parents).
  const wrongRoot = copyBare(set.remote);
  const later = gitIn(wrongRoot, "rev-parse", `${origin1}~1`);
  setRef(wrongRoot, "refs/ekala/init", later);
  const deep = problems(await verify(wrongRoot, [{ label: "b", version: "2.0.0" }], { deep: true }), "b", "2.0.0");
  assert.match(deep, new RegExp(`refs/ekala/init ${later} has parents: it is not a root commit \\(wrong root\\)`));
  const vsLock = problems(
    await verify(wrongRoot, [{ label: "b", version: "2.0.0", expected: { root: set.root, rev: set.revs["b@2.0.0"] } }]),
    "b",
    "2.0.0",
  );
  assert.match(vsLock, new RegExp(`refs/ekala/init on .* is ${later}, but the lock's set is ${set.root} \\(wrong root\\)`));

  // A mirror disagreeing.
  const mirror = copyBare(set.remote);
  setRef(mirror, "refs/eka/atoms/a/0.2.0", set.revs["a@0.1.0"]!);
  const m = problems(
    await verify(set.remote, [{ label: "a", version: "0.2.0", expected: { rev: set.revs["a@0.2.0"], root: set.root, mirrors: [mirror] } }]),
    "a",
    "0.2.0",
  );
  assert.match(
    m,
    new RegExp(
      `mirror ${mirror} has refs/eka/atoms/a/0\\.2\\.0 = ${set.revs["a@0.1.0"]}, but ${set.revs["a@0.2.0"]} elsewhere \\(mirrors disagree\\)`,
    ),
  );
});

test("verify: legacy layouts are reported as legacy, not failures", async () => {
  const set = await publishedSet();
  const legacy = copyBare(set.remote);
  setRef(legacy, "refs/atoms/old/1.0.0", set.revs["b@2.0.0"]!);
  const reports = await verify(legacy, [{ label: "old", version: null }]);
  assert.deepEqual(
    reports.map((r) => [r.label, r.status]),
    [["old", "legacy"]],
  );
});

test("signatures: publish --sign pushes a tag that real git verify-tag and ssh-keygen accept; verify --trust checks key and digest", async (t) => {
  if (!needTools(t, "ssh-keygen")) return;
  const signer = sshKey("alice@example.org");
  const stranger = sshKey("mallory@example.org");
  const set = await publishedSet({ sign: signer.key });
  const sig = "refs/eka/meta/a/0.1.0/sig";
  const tagId = gitIn(set.remote, "rev-parse", sig);
  assert.equal(gitIn(set.remote, "cat-file", "-t", tagId), "tag");
  assert.equal(gitIn(set.remote, "rev-parse", `${sig}^{commit}`), set.revs["a@0.1.0"]);

  // Real git verify-tag with gpg.ssh.allowedSignersFile.
  const ok = spawnSync("git", ["-c", `gpg.ssh.allowedSignersFile=${signer.allowed}`, "verify-tag", sig], {
    cwd: set.remote,
    encoding: "utf8",
  });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /Good "git" signature for alice@example\.org/);
  // Real ssh-keygen -Y verify on the payload and the signature.
  const raw = gitIn(set.remote, "cat-file", "tag", tagId) + "\n";
  const cut = raw.indexOf("-----BEGIN SSH SIGNATURE-----");
  const dir = tempDir();
  writeFileSync(join(dir, "payload"), raw.slice(0, cut));
  writeFileSync(join(dir, "payload.sig"), raw.slice(cut));
  execFileSync(
    "ssh-keygen",
    ["-Y", "verify", "-f", signer.allowed, "-I", "alice@example.org", "-n", "git", "-s", join(dir, "payload.sig")],
    { input: raw.slice(0, cut) },
  );
  // The digest in the message is the BLAKE3 tree digest of the atom.
  const repo = await Repo.open(set.remote, { env, repo: "user" });
  try {
    assert.ok(raw.includes(`tree-digest: ${await treeDigest(repo, set.revs["a@0.1.0"]!)}`));
  } finally {
    repo.close();
  }

  const trusted = await verify(set.remote, [], { trust: signer.allowed });
  assert.deepEqual(
    trusted.map((r) => [r.label, r.version, r.status]),
    [
      ["a", "0.1.0", "ok"],
      ["a", "0.2.0", "ok"],
      ["b", "2.0.0", "ok"],
    ],
  );
  assert.match(trusted[0]!.signer!, /^alice@example\.org \(ED25519 SHA256:/);

  // An untrusted key.
  assert.match(
    problems(await verify(set.remote, [{ label: "a", version: "0.1.0" }], { trust: stranger.allowed }), "a", "0.1.0"),
    /signed by an untrusted key \(ED25519 key SHA256:\S+, not in .*allowed_signers\)/,
  );

  // A bad signature: the tag text altered, the signature kept.
  const bad = copyBare(set.remote);
  const forged = writeObject(bad, "tag", raw.replace("publish(a): 0.1.0", "publish(a): 0.1.0 (forged)"));
  setRef(bad, sig, forged);
  assert.match(
    problems(await verify(bad, [{ label: "a", version: "0.1.0" }], { trust: signer.allowed }), "a", "0.1.0"),
    /bad signature on refs\/eka\/meta\/a\/0\.1\.0\/sig: .*incorrect signature/,
  );

  // A valid signature over a wrong digest: the content check still fails.
  const { signaturePayload } = await import("../../src/protocol/signature.js");
  const payload = signaturePayload(
    { label: "a", version: "0.1.0", commit: set.revs["a@0.1.0"]! },
    `blake3:${"0".repeat(64)}`,
    "x <> 0 +0000",
  );
  writeFileSync(join(dir, "p2"), payload);
  execFileSync("ssh-keygen", ["-q", "-Y", "sign", "-n", "git", "-f", signer.key, join(dir, "p2")], { stdio: "ignore" });
  const wrongDigest = copyBare(set.remote);
  setRef(wrongDigest, sig, writeObject(wrongDigest, "tag", payload + execFileSync("cat", [join(dir, "p2.sig")], { encoding: "utf8" })));
  assert.match(
    problems(await verify(wrongDigest, [{ label: "a", version: "0.1.0" }], { trust: signer.allowed }), "a", "0.1.0"),
    /BLAKE3 tree digest differs: the signature says blake3:0{64}, the fetched content is blake3:[0-9a-f]{64}/,
  );

  // No signature at all.
  const unsigned = await publishedSet();
  assert.match(
    problems(await verify(unsigned.remote, [{ label: "b", version: "2.0.0" }], { trust: signer.allowed }), "b", "2.0.0"),
    /no signature: refs\/eka\/meta\/b\/2\.0\.0\/sig is missing/,
  );
});

test("verify: published atoms that cannot be evaluated (no lock, bad lock, unsatisfied) are warnings, not failures", async () => {
  const set = await unevaluableSet();
  const reports = await verify(set.remote);
  assert.deepEqual(
    reports.map((r) => [r.label, r.status, r.problems, r.warnings.map((w) => w.code)]),
    [
      ["badlock", "ok", [], ["verify.bad-lock"]],
      ["locked", "ok", [], []],
      ["nolock", "ok", [], ["verify.no-lock"]],
      ["plain", "ok", [], []],
      ["stale", "ok", [], ["verify.lock-unsatisfied"]],
    ],
  );
  const message = (label: string) => reports.find((r) => r.label === label)!.warnings[0]!.message;
  assert.equal(
    message("nolock"),
    'cannot be evaluated: it is composed ([compose.as] nix = "default.nix") but has no atom.lock, so no consumer can evaluate it',
  );
  assert.match(message("badlock"), /^cannot be evaluated: its atom\.lock does not parse: unsupported lock version 2/);
  assert.match(
    message("stale"),
    /^cannot be evaluated: its atom\.lock does not satisfy atom\.toml: \[deps\.direct\.nix\] patch is missing from the lock$/,
  );
});

test("verify: a yanked version is still ok, with a verify.yanked warning giving the reason", async () => {
  const set = await publishedSet();
  const { yank } = await import("../../src/publish/yank.js");
  const { Repo } = await import("../../src/git/repo.js");
  const { resolveRemote } = await import("../../src/git/remote.js");
  const repo = await Repo.open(set.work, { env, repo: "user" });
  try {
    const remote = await resolveRemote(set.remote, repo, set.work);
    const r = await yank({ repo, remote, label: "a", version: "0.1.0", reason: "wrong license\nsee the changelog", cwd: set.work, env });
    assert.equal(r.status, "yanked");
    assert.equal(r.rev, set.revs["a@0.1.0"]);
  } finally {
    repo.close();
  }
  const reports = await verify(set.remote);
  assert.deepEqual(
    reports.map((r) => [r.label, r.version, r.status, r.warnings.map((w) => `${w.code}: ${w.message}`), r.yanked?.reason ?? null]),
    [
      ["a", "0.1.0", "ok", ["verify.yanked: a 0.1.0 is yanked: wrong license …"], "wrong license\nsee the changelog"],
      ["a", "0.2.0", "ok", [], null],
      ["b", "2.0.0", "ok", [], null],
    ],
  );
});
