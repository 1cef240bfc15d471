import { test } from "node:test";
import assert from "node:assert/strict";
import {
  atomId,
  atomIdDigest,
  atomIdKey,
  base32hexDecode,
  base32hexEncode,
  isAtomId,
  NULL_ROOT,
  parseAtomId,
  rootBytes,
} from "../../src/protocol/id.js";
import { cprFailure } from "../support/assert.js";

const ROOT = "4abbd2644bc3585e9be95deb277ccf48f6ed26ac";
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

const errorCode = (fn: () => unknown): string => cprFailure(fn).code;

test("docs/formats.md §5.5 vectors", () => {
  assert.equal(atomId(ROOT, "foo"), "bqrs2vomv79n9e5bullf1ibbpetfskdlgn52hupgbf59ah9r5hg0");
  assert.equal(Buffer.from("ひらがな", "utf8").toString("hex"), "e381b2e38289e3818ce381aa");
  assert.equal(atomId(ROOT, "ひらがな"), "7p08gc7p7ssf2p9f3ahc42ft3jcutcljrv1o92ipjehkm7poj5kg");
  assert.equal(atomId("0000000000000000000000000000000000000000", "foo"), "e5nvfs21g1dblt0fe2q8vq3ltnbdu0c65i0mn74tkqmvala1bo20");
});

test("docs/formats.md §5.5 derived key vector", () => {
  assert.equal(hex(atomIdKey(ROOT)), "08e6ded564b14e436fb0dcbb2c84511c99c1cf7ca1a658acad30cfd562b4ac16");
});

test("NULL_ROOT is 20 zero bytes", () => {
  assert.equal(NULL_ROOT, "0".repeat(40));
  assert.deepEqual(rootBytes(NULL_ROOT), new Uint8Array(20));
  assert.equal(atomId(NULL_ROOT, "foo"), "e5nvfs21g1dblt0fe2q8vq3ltnbdu0c65i0mn74tkqmvala1bo20");
});

test("raw root bytes and hex text give the same ids", () => {
  assert.equal(atomId(rootBytes(ROOT), "foo"), atomId(ROOT, "foo"));
  assert.equal(atomId(ROOT.toUpperCase(), "foo"), atomId(ROOT, "foo"));
  assert.equal(rootBytes(ROOT).length, 20);
});

test("SHA-256 roots: 32 raw bytes of key material", () => {
  const root = "ab".repeat(32);
  assert.equal(rootBytes(root).length, 32);
  const id = atomId(root, "foo");
  assert.equal(id.length, 52);
  assert.equal(id, atomId(rootBytes(root), "foo"));
  assert.notEqual(id, atomId("ab".repeat(20), "foo"), "the root length matters");
  assert.notEqual(hex(atomIdKey(root)), hex(atomIdKey("ab".repeat(20))));
});

test("the id depends on root and label only", () => {
  assert.notEqual(atomId(ROOT, "foo"), atomId(ROOT, "fop"));
  assert.notEqual(atomId(ROOT, "foo"), atomId(NULL_ROOT, "foo"));
  assert.equal(atomIdDigest(ROOT, "foo").length, 32);
});

test("bad roots are root.invalid", () => {
  for (const bad of ["", "abc", ROOT.slice(1), ROOT + "0", "g".repeat(40), "a".repeat(63), " " + ROOT.slice(1)]) {
    assert.equal(
      errorCode(() => rootBytes(bad)),
      "root.invalid",
      bad,
    );
  }
  assert.equal(
    errorCode(() => atomIdKey(new Uint8Array(21))),
    "root.invalid",
  );
  assert.equal(
    errorCode(() => atomId("xyz", "foo")),
    "root.invalid",
  );
});

test("labels must be NFKC and non-empty", () => {
  assert.equal(
    errorCode(() => atomId(ROOT, "ｆｏｏ")),
    "label.not-normalized",
  );
  assert.equal(
    errorCode(() => atomId(ROOT, "")),
    "label.not-normalized",
  );
});

test("RFC 4648 base32hex vectors, lowercase and unpadded", () => {
  const vectors: Array<[string, string]> = [
    ["", ""],
    ["f", "co"],
    ["fo", "cpng"],
    ["foo", "cpnmu"],
    ["foob", "cpnmuog"],
    ["fooba", "cpnmuoj1"],
    ["foobar", "cpnmuoj1e8"],
  ];
  for (const [plain, encoded] of vectors) {
    assert.equal(base32hexEncode(new TextEncoder().encode(plain)), encoded, plain);
    assert.equal(new TextDecoder().decode(base32hexDecode(encoded)), plain, encoded);
  }
});

test("base32hex round-trips every length and byte value", () => {
  for (let n = 0; n <= 40; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n * 31) & 0xff);
    assert.deepEqual(base32hexDecode(base32hexEncode(bytes)), bytes);
  }
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(base32hexDecode(base32hexEncode(all)), all);
});

test("base32hexDecode rejects non-canonical text", () => {
  for (const bad of ["CO", "co==", "c", "cpn", "cpnmuo", "cp", "cw", "c!", "cpnmuog="]) {
    assert.equal(
      errorCode(() => base32hexDecode(bad)),
      "id.invalid",
      bad,
    );
  }
});

test("an AtomId ends in 0 or g (one data bit, four zero bits)", () => {
  for (let i = 0; i < 200; i++) {
    const id = atomId(ROOT, `label${i}`);
    assert.equal(id.length, 52);
    assert.match(id, /^[0-9a-v]{51}[0g]$/);
  }
});

test("parseAtomId accepts only the canonical 52-character text", () => {
  const id = atomId(ROOT, "foo");
  assert.deepEqual(parseAtomId(id), atomIdDigest(ROOT, "foo"));
  assert.equal(isAtomId(id), true);
  const last = id[51] === "0" ? "g" : "0";
  const rejected = [
    id.toUpperCase(),
    id.slice(0, 51),
    id + "0",
    id.slice(0, 51) + "1", // non-zero trailing bits
    id.slice(0, 51) + "h",
    id.slice(0, 50) + "w" + id[51],
    id.slice(0, 48) + "====",
    " " + id.slice(1),
  ];
  for (const bad of rejected) {
    assert.equal(isAtomId(bad), false, bad);
    assert.equal(
      errorCode(() => parseAtomId(bad)),
      "id.invalid",
      bad,
    );
  }
  assert.equal(isAtomId(id.slice(0, 51) + last), true, "the other data bit is still canonical");
});
