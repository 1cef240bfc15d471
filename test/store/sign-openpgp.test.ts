import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { verifyRemote, type AtomReport, type VerifyRequest } from "../../src/store/verify.js";
import { signaturePayload } from "../../src/protocol/signature.js";
import { parseGitUrl } from "../../src/protocol/uri.js";
import { atomToml, commitAll, gitIn, tempDir, writeFiles } from "../support/repo.js";
import { runCpr } from "../support/cli.js";
import { needTools } from "../support/tools.js";
import { copyBare, env, newCache, publishedSet, setRef, sshKey, writeObject } from "./fixture.js";

/** OpenPGP signatures: `publish --sign <key id>` through gpg, checked by real git verify-tag and by cpr verify --trust. */

interface PgpKey {
  readonly home: string;
  readonly fpr: string;
  /** The armored public key (`gpg --armor --export`): a trust file. */
  readonly asc: string;
}

const homes: string[] = [];

/** A throwaway GnuPG home with one passphrase-less ed25519 signing key. */
function pgpKey(name: string, email: string): PgpKey {
  const home = tempDir("cpr-gpg-");
  homes.push(home);
  const genv = { ...process.env, GNUPGHOME: home };
  execFileSync("gpg", ["--batch", "--quiet", "--passphrase", "", "--quick-gen-key", `${name} <${email}>`, "ed25519", "sign", "never"], {
    env: genv,
    stdio: "ignore",
  });
  const colons = execFileSync("gpg", ["--batch", "--with-colons", "--fingerprint", "--list-secret-keys"], { env: genv, encoding: "utf8" });
  const fpr = /^fpr:(?::*)([0-9A-F]{40}):/m.exec(colons)![1]!;
  const asc = join(tempDir("cpr-trust-"), `${name.toLowerCase()}.asc`);
  writeFileSync(asc, execFileSync("gpg", ["--batch", "--armor", "--export", fpr], { env: genv }));
  return { home, fpr, asc };
}

function gpgSign(key: PgpKey, payload: string): string {
  return execFileSync("gpg", ["--batch", "--quiet", "-bsau", key.fpr], {
    env: { ...process.env, GNUPGHOME: key.home },
    input: payload,
    encoding: "utf8",
  });
}

async function verify(remote: string, trust: string, reqs: VerifyRequest[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<AtomReport[]> {
  const cache = await newCache();
  try {
    return await verifyRemote(parseGitUrl(remote), reqs, { cache, cwd: tempDir(), env: { ...env, ...extraEnv }, trust });
  } finally {
    cache.close();
  }
}

const problems = (reports: AtomReport[], label: string, version: string) =>
  reports.find((r) => r.label === label && r.version === version)!.problems.join("\n");

const cpr = (args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv) => runCpr(args, { cwd, env: { ...env, ...extraEnv } });

test("OpenPGP: publish --sign KEYID signs with gpg; real git verify-tag and cpr verify --trust (armored keys) accept it; untrusted keys, bad signatures and wrong digests are refused", async (t) => {
  if (!needTools(t, "gpg")) return;
  t.after(() => {
    for (const home of homes) spawnSync("gpgconf", ["--kill", "all"], { env: { ...process.env, GNUPGHOME: home }, stdio: "ignore" });
  });
  const alice = pgpKey("Alice", "alice@example.org");
  const mallory = pgpKey("Mallory", "mallory@example.org");
  const aliceEnv = { GNUPGHOME: alice.home };
  const set = await publishedSet({ sign: alice.fpr, extraEnv: aliceEnv });
  const sig = "refs/eka/meta/a/0.1.0/sig";
  const tagId = gitIn(set.remote, "rev-parse", sig);
  assert.equal(gitIn(set.remote, "cat-file", "-t", tagId), "tag");
  assert.equal(gitIn(set.remote, "rev-parse", `${sig}^{commit}`), set.revs["a@0.1.0"]);
  const raw = gitIn(set.remote, "cat-file", "tag", tagId) + "\n";
  assert.match(raw, /\ntree-digest: blake3:[0-9a-f]{64}\ndigest-format: cpr-tree-digest-v1\n-----BEGIN PGP SIGNATURE-----\n/);

  // Real git verify-tag, with Alice's GnuPG home.
  const ok = spawnSync("git", ["verify-tag", sig], { cwd: set.remote, env: { ...env, ...aliceEnv }, encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /Good signature from "Alice <alice@example\.org>"/);
  // Real gpg --verify on the payload and the detached signature.
  const cut = raw.indexOf("-----BEGIN PGP SIGNATURE-----");
  const dir = tempDir();
  writeFileSync(join(dir, "payload"), raw.slice(0, cut));
  writeFileSync(join(dir, "payload.asc"), raw.slice(cut));
  execFileSync("gpg", ["--batch", "--verify", join(dir, "payload.asc"), join(dir, "payload")], {
    env: { ...process.env, ...aliceEnv },
    stdio: "ignore",
  });

  // cpr verify --trust <armored public key>: every version ok, the signer named by uid and fingerprint.
  const trusted = await verify(set.remote, alice.asc);
  assert.deepEqual(
    trusted.map((r) => [r.label, r.version, r.status, r.problems]),
    [
      ["a", "0.1.0", "ok", []],
      ["a", "0.2.0", "ok", []],
      ["b", "2.0.0", "ok", []],
    ],
  );
  assert.equal(trusted[0]!.signer, `Alice <alice@example.org> (OpenPGP ${alice.fpr})`);

  // Trust is the file's keys only: with Mallory's key as the trust file, Alice's signature is refused even though the
  // user's own GnuPG home (GNUPGHOME) holds Alice's key with ultimate trust.
  assert.match(
    problems(await verify(set.remote, mallory.asc, [{ label: "a", version: "0.1.0" }], aliceEnv), "a", "0.1.0"),
    new RegExp(`^signed by an untrusted key \\(OpenPGP key ${alice.fpr}, not in .*/mallory\\.asc\\)$`),
  );
  // Likewise an ssh-only trust file never falls back to the user's keyring for an OpenPGP signature.
  const ssh = sshKey("alice@example.org");
  assert.match(
    problems(await verify(set.remote, ssh.allowed, [{ label: "a", version: "0.1.0" }], aliceEnv), "a", "0.1.0"),
    new RegExp(`^signed by an untrusted key \\(OpenPGP key ${alice.fpr}, not in .*allowed_signers\\)$`),
  );

  // A tag signed by another, untrusted key (Mallory signs a faithful payload).
  const digest = /^tree-digest: (\S+)$/m.exec(raw)![1]!;
  const byMallory = copyBare(set.remote);
  const faithful = signaturePayload(
    { label: "a", version: "0.1.0", commit: set.revs["a@0.1.0"]! },
    digest,
    "Mallory <mallory@example.org> 0 +0000",
  );
  setRef(byMallory, sig, writeObject(byMallory, "tag", faithful + gpgSign(mallory, faithful)));
  assert.match(
    problems(await verify(byMallory, alice.asc, [{ label: "a", version: "0.1.0" }]), "a", "0.1.0"),
    new RegExp(`^signed by an untrusted key \\(OpenPGP key ${mallory.fpr}, not in .*/alice\\.asc\\)$`),
  );

  // A bad signature: the tag text altered, Alice's signature kept.
  const bad = copyBare(set.remote);
  setRef(bad, sig, writeObject(bad, "tag", raw.replace("publish(a): 0.1.0", "publish(a): 0.1.0 (forged)")));
  assert.match(
    problems(await verify(bad, alice.asc, [{ label: "a", version: "0.1.0" }]), "a", "0.1.0"),
    new RegExp(
      `^bad signature on refs/eka/meta/a/0\\.1\\.0/sig: the OpenPGP signature of key ${alice.fpr.slice(-16)} \\(Alice <alice@example\\.org>\\) does not match the tag$`,
    ),
  );

  // A tampered digest: a valid signature by Alice over a wrong digest; the content check fails.
  const wrong = signaturePayload(
    { label: "a", version: "0.1.0", commit: set.revs["a@0.1.0"]! },
    `blake3:${"0".repeat(64)}`,
    "Alice <alice@example.org> 0 +0000",
  );
  const wrongDigest = copyBare(set.remote);
  setRef(wrongDigest, sig, writeObject(wrongDigest, "tag", wrong + gpgSign(alice, wrong)));
  assert.match(
    problems(await verify(wrongDigest, alice.asc, [{ label: "a", version: "0.1.0" }]), "a", "0.1.0"),
    /^BLAKE3 tree digest differs: the signature says blake3:0{64}, the fetched content is blake3:[0-9a-f]{64}$/,
  );

  // One trust file may mix ssh allowed-signers lines and armored OpenPGP keys: each scheme is checked against its own.
  const mixed = join(tempDir(), "trusted");
  writeFileSync(mixed, readFileSync(ssh.allowed, "utf8") + readFileSync(alice.asc, "utf8"));
  assert.deepEqual(
    (await verify(set.remote, mixed)).map((r) => r.status),
    ["ok", "ok", "ok"],
  );
  const sshSet = await publishedSet({ sign: ssh.key });
  const sshReports = await verify(sshSet.remote, mixed);
  assert.deepEqual(
    sshReports.map((r) => r.status),
    ["ok", "ok", "ok"],
  );
  assert.match(sshReports[0]!.signer!, /^alice@example\.org \(ED25519 SHA256:/);
  // An OpenPGP-only trust file does not trust ssh keys.
  assert.match(
    problems(await verify(sshSet.remote, alice.asc, [{ label: "a", version: "0.1.0" }]), "a", "0.1.0"),
    /^signed by an untrusted key \(ED25519 key SHA256:\S+, not in .*\/alice\.asc\)$/,
  );

  // The CLI: cpr publish --sign <fingerprint>, then cpr verify --trust FILE, and a per-set [trust] list in config.
  writeFiles(set.work, { "b/atom.toml": atomToml("b", "2.1.0") });
  commitAll(set.work, "b 2.1.0");
  const cacheDir = tempDir("cpr-cache-");
  const config = tempDir("cpr-config-");
  const cliEnv = { ...aliceEnv, CPR_CACHE_DIR: cacheDir, XDG_CONFIG_HOME: config };
  const typo = cpr(["publish", "--all", "--remote", set.remote, "--sign", "./keys/id_typo"], set.work, cliEnv);
  assert.notEqual(typo.code, 0);
  assert.match(typo.stderr, /no such key file: \.\/keys\/id_typo/);
  assert.equal(
    spawnSync("git", ["rev-parse", "--verify", "-q", "refs/eka/atoms/b/2.1.0"], { cwd: set.remote }).status,
    1,
    "nothing pushed",
  );
  const pub = cpr(["publish", "--all", "--remote", set.remote, "--sign", alice.fpr], set.work, cliEnv);
  assert.equal(pub.code, 0, pub.stderr);
  assert.equal(
    gitIn(set.remote, "rev-parse", "refs/eka/meta/b/2.1.0/sig^{commit}"),
    gitIn(set.remote, "rev-parse", "refs/eka/atoms/b/2.1.0"),
  );
  const v = cpr(["verify", set.remote, "b@2.1.0", "--trust", alice.asc], set.work, cliEnv);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, new RegExp(`^ok +b 2\\.1\\.0 .*signed by Alice <alice@example\\.org> \\(OpenPGP ${alice.fpr}\\)$`, "m"));
  const refused = cpr(["verify", set.remote, "b@2.1.0", "--trust", mallory.asc], set.work, cliEnv);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stdout + refused.stderr, new RegExp(`signed by an untrusted key \\(OpenPGP key ${alice.fpr}, not in `));
  mkdirSync(join(config, "cpr"));
  writeFileSync(join(config, "cpr", "config.toml"), `[trust]\n${set.root} = ["""\n${readFileSync(alice.asc, "utf8")}"""]\n`);
  const fromConfig = cpr(["verify", set.remote, "b@2.1.0", "--json"], set.work, cliEnv);
  assert.equal(fromConfig.code, 0, fromConfig.stdout + fromConfig.stderr);
  assert.equal(JSON.parse(fromConfig.stdout).atoms[0].signer, `Alice <alice@example.org> (OpenPGP ${alice.fpr})`);
});
