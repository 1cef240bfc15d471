import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { CprError } from "../../src/protocol/errors.js";
import { NIX32_ALPHABET, fromNix32, nix32Length, parseNixHash, toHex, toNix32, toNix32Hash, toSri } from "../../src/nix/hash.js";
import { cprFailure } from "../support/assert.js";
import { seededRandom } from "../support/random.js";
import { tempDir } from "../support/repo.js";
import { needTools } from "../support/tools.js";
import { nix, randomBytes } from "./support.js";

const sha = (s: string | Buffer): Uint8Array => new Uint8Array(createHash("sha256").update(s).digest());

test("nix32: known vectors (sha256 of the empty string and of 'hello')", () => {
  // Printed by `nix-hash --type sha256 --to-base32 <hex>` (Nix 2.8).
  assert.equal(toNix32(sha("")), "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
  assert.equal(toNix32(sha("hello")), "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic");
  assert.equal(toNix32(new Uint8Array([])), "");
  assert.equal(toNix32(new Uint8Array([0xff])), "7z");
  assert.equal(nix32Length(32), 52);
  assert.equal(nix32Length(20), 32);
});

test("nix32: round trips for every length 0..64 and random contents", () => {
  const rand = seededRandom(1);
  for (let n = 0; n <= 64; n++) {
    for (let k = 0; k < 5; k++) {
      const b = new Uint8Array(randomBytes(rand, n));
      const s = toNix32(b);
      assert.equal(s.length, nix32Length(n));
      assert.match(s, /^[0123456789abcdfghijklmnpqrsvwxyz]*$/);
      assert.deepEqual(fromNix32(s), b, `length ${n}`);
    }
  }
});

test("nix32: decoding rejects bad characters, bad lengths and excess bits", () => {
  const good = toNix32(sha("x"));
  for (const bad of ["e", "o", "u", "t", "E", "-"]) {
    const e = cprFailure(() => fromNix32(bad + good.slice(1)));
    assert.equal(e.code, "hash.nix32-char");
  }
  assert.equal(cprFailure(() => fromNix32(good.slice(1))).code, "hash.nix32-length");
  // 52 characters carry 260 bits; a digest has 256, so a first character above 7 sets excess bits.
  assert.equal(cprFailure(() => fromNix32(`z${good.slice(1)}`)).code, "hash.nix32-overflow");
  assert.ok(NIX32_ALPHABET.length === 32);
});

test("SRI and parseNixHash accept the three forms and reject the rest", () => {
  const d = sha("hello");
  const sri = toSri("sha256", d);
  assert.equal(sri, "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
  assert.deepEqual(parseNixHash(sri), { algo: "sha256", bytes: d });
  assert.deepEqual(parseNixHash(toNix32Hash("sha256", d)), { algo: "sha256", bytes: d });
  assert.deepEqual(parseNixHash(`sha256:${toHex(d)}`), { algo: "sha256", bytes: d });
  assert.deepEqual(parseNixHash(`sha256:${toHex(d).toUpperCase()}`), { algo: "sha256", bytes: d });
  const bad = [
    "",
    "sha256",
    toHex(d),
    toNix32(d),
    "sha512-" + Buffer.alloc(64).toString("base64"),
    "md5:" + toHex(d).slice(0, 32),
    "sha256-" + Buffer.alloc(31).toString("base64"),
    "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ",
    "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCR=",
    "sha256:" + toHex(d).slice(1),
    "sha256:" + toNix32(d).replace(/^./, "e"),
    "sha256:" + toNix32(d) + "0",
    " " + sri,
  ];
  for (const b of bad) {
    const e = cprFailure(() => parseNixHash(b), `expected ${JSON.stringify(b)} to be rejected`);
    assert.ok(e instanceof CprError);
    assert.equal(e.code, "hash.invalid");
    assert.ok(e.hint);
  }
  assert.throws(() => toSri("sha256", new Uint8Array(31)), CprError);
});

test("nix32 and SRI agree with real Nix (nix-hash --to-base32/--to-base16, nix hash to-sri, nix hash file)", (t) => {
  const tools = needTools(t, "nix-hash", "nix");
  if (!tools) return;
  const rand = seededRandom(42);
  for (let i = 0; i < 8; i++) {
    const d = sha(randomBytes(rand, 100 + i));
    const hex = toHex(d);
    assert.equal(nix("nix-hash", ["--type", "sha256", "--to-base32", hex]), toNix32(d));
    assert.equal(nix("nix", ["hash", "to-sri", "--type", "sha256", hex]), toSri("sha256", d));
    assert.equal(nix("nix-hash", ["--type", "sha256", "--to-base16", toNix32(d)]), hex);
    assert.deepEqual(parseNixHash(nix("nix", ["hash", "to-sri", `sha256:${toNix32(d)}`])).bytes, d);
  }
  const dir = tempDir("cpr-nix-hash-");
  const f = join(dir, "f");
  writeFileSync(f, "flat contents\n");
  assert.equal(nix("nix", ["hash", "file", f]), toSri("sha256", sha("flat contents\n")));
  assert.equal(nix("nix", ["hash", "file", "--base32", f]), toNix32(sha("flat contents\n")));
});
