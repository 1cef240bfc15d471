import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkKeyName,
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  parsePublicKey,
  parseSecretKey,
  publicKeyOf,
  signDetached,
  verifyDetached,
} from "../../src/protocol/nix-key.js";
import { narInfoFingerprint } from "../../src/protocol/narinfo.js";
import { cprFailure } from "../support/assert.js";
import { nixTestEnv } from "../support/nix.js";
import { needTools } from "../support/tools.js";

test("real Nix: keys from nix-store --generate-binary-cache-key parse and re-format byte for byte; Nix signs with a key we made", (t) => {
  if (!needTools(t, "nix-store", "nix")) return;
  const dir = mkdtempSync(join(tmpdir(), "cpr-nix-key-"));
  const env = nixTestEnv(process.env, { HOME: dir, XDG_CACHE_HOME: join(dir, "c"), XDG_CONFIG_HOME: join(dir, "cfg") });
  delete env.NIX_REMOTE;
  const run = (tool: string, args: string[]) =>
    execFileSync(tool, args, { env, cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  try {
    run("nix-store", ["--generate-binary-cache-key", "cache.example.org-1", "k.sec", "k.pub"]);
    const secText = readFileSync(join(dir, "k.sec"), "utf8");
    const pubText = readFileSync(join(dir, "k.pub"), "utf8");
    const sec = parseSecretKey(secText, "k.sec");
    const pub = parsePublicKey(pubText, "k.pub");
    assert.equal(sec.name, "cache.example.org-1");
    assert.equal(formatSecretKey(sec), secText.trim());
    assert.equal(formatPublicKey(pub), pubText.trim());
    assert.deepEqual(publicKeyOf(sec), pub);
    assert.equal(formatPublicKey(publicKeyOf(sec)), pubText.trim());

    // Our generated key, written in our format, is one Nix signs with; the signature is ours and verifies.
    const mine = generateSecretKey("mine-1");
    writeFileSync(join(dir, "mine.sec"), formatSecretKey(mine));
    writeFileSync(join(dir, "f"), "some bytes\n");
    const store = join(dir, "s");
    const path = run("nix-store", ["--store", store, "--add", join(dir, "f")]);
    run("nix", ["store", "sign", "--store", store, "--key-file", join(dir, "mine.sec"), path]);
    const [info] = JSON.parse(run("nix", ["path-info", "--store", store, "--json", "--sigs", path])) as {
      path: string;
      narHash: string;
      narSize: number;
      references: string[];
      signatures: string[];
    }[];
    const fp = narInfoFingerprint({ storePath: info!.path, narHash: info!.narHash, narSize: info!.narSize, references: info!.references });
    assert.deepEqual(info!.signatures, [signDetached(mine, fp)]);
    assert.ok(verifyDetached([publicKeyOf(mine)], fp, info!.signatures[0]!));
    assert.ok(!verifyDetached([pub], fp, info!.signatures[0]!), "another key does not verify it");
  } finally {
    try {
      execFileSync("chmod", ["-R", "u+w", dir], { stdio: "ignore" });
    } catch {
      /* best effort */
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test("generate, format, parse, sign and verify round-trip", () => {
  const k = generateSecretKey("test-1");
  assert.equal(k.seed.length, 32);
  assert.equal(k.publicKey.length, 32);
  const text = formatSecretKey(k);
  assert.match(text, /^test-1:[A-Za-z0-9+/]{86}==$/);
  assert.deepEqual(parseSecretKey(`${text}\n`), k);
  const pubText = formatPublicKey(publicKeyOf(k));
  assert.match(pubText, /^test-1:[A-Za-z0-9+/]{43}=$/);
  const pub = parsePublicKey(` ${pubText}\n`);
  const sig = signDetached(k, "1;message");
  assert.match(sig, /^test-1:[A-Za-z0-9+/]{86}==$/);
  assert.equal(signDetached(k, "1;message"), sig, "ed25519 is deterministic");
  assert.ok(verifyDetached([pub], "1;message", sig));
  assert.ok(!verifyDetached([pub], "1;messagf", sig));
  assert.ok(!verifyDetached([], "1;message", sig));
  assert.ok(!verifyDetached([{ name: "other", key: pub.key }], "1;message", sig), "the key is chosen by name");
  const other = publicKeyOf(generateSecretKey("test-1"));
  assert.ok(verifyDetached([other, pub], "1;message", sig), "several keys of one name: any may verify");
  // Malformed signatures are false, not errors.
  for (const bad of [
    "",
    "test-1",
    ":" + sig.slice(7),
    "test-1:",
    "test-1:not base64!",
    `test-1:${Buffer.alloc(63).toString("base64")}`,
    sig.replace(/==$/, "="),
  ])
    assert.equal(verifyDetached([pub], "1;message", bad), false, bad);
  // A different UTF-8 message.
  assert.ok(verifyDetached([pub], "ünïcödé", signDetached(k, "ünïcödé")));
});

test("bad keys: names, base64, lengths, mismatched halves — clear errors that never print the secret", () => {
  const k = generateSecretKey("n");
  const secret = formatSecretKey(k).slice(2);
  const pub = formatPublicKey(publicKeyOf(k)).slice(2);
  for (const name of ["", "a:b", "a b", "tab\there", "nl\n"]) {
    const err = cprFailure(() => checkKeyName(name));
    assert.equal(err.code, "key.name");
    assert.ok(err.hint);
    assert.equal(cprFailure(() => generateSecretKey(name)).code, "key.name");
  }
  const secretCases: [string, RegExp][] = [
    [secret, /expected name:base64/],
    [`:${secret}`, /it is empty/],
    [`a b:${secret}`, /whitespace/],
    [`n:${secret.slice(1)}`, /not valid base64/],
    [`n:${pub}`, /32 bytes long; a secret key has 64/],
    [`n:${Buffer.concat([Buffer.from(k.seed), Buffer.alloc(32)]).toString("base64")}`, /public half does not match its seed/],
  ];
  for (const [text, re] of secretCases) {
    const err = cprFailure(() => parseSecretKey(text, "signing-key.sec"));
    assert.equal(err.code, "key.invalid");
    assert.match(err.message, re);
    assert.equal(err.where, "signing-key.sec");
    assert.ok(err.hint);
    assert.ok(!err.message.includes(secret.slice(0, 20)), "the secret is not shown");
  }
  const publicCases: [string, RegExp][] = [
    [pub, /expected name:base64/],
    [`:${pub}`, /it is empty/],
    [`n:${pub.replace("=", "")}`, /not valid base64/],
    [`n:${secret}`, /64 bytes long; a public key has 32/],
    ["n:", /0 bytes long/],
  ];
  for (const [text, re] of publicCases) {
    const err = cprFailure(() => parsePublicKey(text, "registry.keys"));
    assert.equal(err.code, "key.invalid");
    assert.match(err.message, re);
    assert.ok(err.message.includes(JSON.stringify(text)), "names the public key");
    assert.equal(err.where, "registry.keys");
  }
  assert.equal(cprFailure(() => formatPublicKey({ name: "n", key: new Uint8Array(31) })).code, "key.invalid");
  assert.equal(cprFailure(() => signDetached({ ...k, seed: new Uint8Array(31) }, "m")).code, "key.invalid");
});
