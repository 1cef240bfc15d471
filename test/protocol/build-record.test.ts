import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { canonicalJson, configHash, parseBuildRecord } from "../../src/protocol/build-record.js";
import { atomId } from "../../src/protocol/id.js";
import { cprFailure } from "../support/assert.js";

const SET = "0123456789abcdef0123456789abcdef01234567";
const REV = "89abcdef0123456789abcdef0123456789abcdef";
const H1 = "xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c";
const H2 = "lxih6h0h8iqkgrh159kzyqdppgraf75k";

function body(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    set: SET,
    label: "hello",
    id: atomId(SET, "hello"),
    version: "2.12.2",
    rev: REV,
    system: "x86_64-linux",
    config: { system: "x86_64-linux" },
    drv: `/nix/store/${H1}-hello-2.12.2.drv`,
    outputs: { out: `/nix/store/${H2}-hello-2.12.2` },
    ...over,
  };
}

test("canonicalJson: sorted keys (UTF-16 order), no whitespace, JSON escapes", () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, "x"], c: { z: 0, y: -1.5 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":-1.5,"z":0}}');
  // UTF-16 code unit order: U+E000 (one unit) sorts after U+1F600 (surrogates D83D…), and "B" before "a".
  assert.equal(canonicalJson({ "\uE000": 1, "😀": 2, a: 3, B: 4 }), '{"B":4,"a":3,"😀":2,"\uE000":1}');
  assert.equal(canonicalJson('quote" \n'), JSON.stringify('quote" \n'));
  assert.equal(canonicalJson([]), "[]");
  assert.equal(canonicalJson({}), "{}");
  assert.equal(canonicalJson(JSON.parse('{"__proto__":{"x":1}}')), '{"__proto__":{"x":1}}');
  for (const [bad, re] of [
    [{ a: undefined }, /cannot write value\.a as canonical JSON: it is undefined/],
    [{ a: [1, Number.NaN] }, /value\.a\[1\] as canonical JSON: NaN is not a finite number/],
    [Infinity, /Infinity is not a finite number/],
    [{ d: new Date(0) }, /value\.d as canonical JSON: it is not a plain object/],
    [{ f: () => 1 }, /it is a function/],
    [10n, /it is a bigint/],
  ] as [unknown, RegExp][]) {
    const err = cprFailure(() => canonicalJson(bad));
    assert.equal(err.code, "build.canonical-json");
    assert.match(err.message, re);
  }
});

test("configHash: hex SHA-256 of the canonical JSON, independent of key order", () => {
  const want = createHash("sha256").update('{"a":1,"system":"x86_64-linux"}').digest("hex");
  assert.equal(configHash({ system: "x86_64-linux", a: 1 }), want);
  assert.equal(configHash({ a: 1, system: "x86_64-linux" }), want);
  assert.match(configHash({}), /^[0-9a-f]{64}$/);
  assert.notEqual(configHash({ a: 1 }), configHash({ a: "1" }));
});

test("parseBuildRecord accepts the documented body (SHA-1 and SHA-256 roots) and drops unknown fields", () => {
  const ok = parseBuildRecord(JSON.parse(JSON.stringify(body({ extra: "ignored" }))));
  assert.deepEqual(ok, body());
  const set256 = "ab".repeat(32);
  const r = parseBuildRecord(
    body({
      set: set256,
      id: atomId(set256, "hello"),
      rev: "cd".repeat(32),
      version: "1.0.0-rc.1+build.5",
      system: "aarch64-darwin",
      outputs: { out: `/nix/store/${H2}-x`, dev: `/nix/store/${H1}-x-dev` },
    }),
  );
  assert.deepEqual(Object.keys(r.outputs).sort(), ["dev", "out"]);
  const proto = parseBuildRecord(JSON.parse(JSON.stringify(body()).replace('"out"', '"__proto__"')));
  assert.deepEqual(Object.keys(proto.outputs), ["__proto__"], "an output named __proto__ stays data");
  assert.equal(parseBuildRecord(body({ mainProgram: "hello" })).mainProgram, "hello", "meta.mainProgram, optional");
  assert.equal(parseBuildRecord(body({ mainProgram: null })).mainProgram, undefined);
});

test("parseBuildRecord names each bad field (code build.invalid)", () => {
  const cases: [unknown, string, RegExp][] = [
    [body({ set: undefined }), "set", /is missing/],
    [body({ set: SET.toUpperCase() }), "set", /40 or 64 lowercase hex/],
    [body({ set: SET.slice(1) }), "set", /40 or 64 lowercase hex/],
    [body({ label: 5 }), "label", /must be a string, got 5/],
    [body({ label: "1abc" }), "label", /is not a valid label/],
    [body({ label: "ﬁle", id: atomId(SET, "file") }), "label", /NFKC-normalised/],
    [body({ id: atomId(SET, "other") }), "id", /is not the AtomId of set/],
    [body({ version: "v2.12.2" }), "version", /is not a valid version/],
    [body({ version: "2.12" }), "version", /is not a valid version/],
    [body({ rev: "HEAD" }), "rev", /40 or 64 lowercase hex/],
    [body({ system: "x86_64" }), "system", /Nix system such as x86_64-linux/],
    [body({ system: "X86_64-Linux" }), "system", /Nix system/],
    [body({ config: undefined }), "config", /is missing/],
    [body({ config: [1] }), "config", /must be a JSON object/],
    [body({ config: null }), "config", /must be a JSON object/],
    [body({ config: { n: Number.NaN } }), "config", /not a finite number/],
    [body({ drv: `/nix/store/${H1}-hello` }), "drv", /ending in \.drv/],
    [body({ drv: "/tmp/hello.drv" }), "drv", /is not a store path/],
    [body({ outputs: undefined }), "outputs", /is missing/],
    [body({ outputs: {} }), "outputs", /is empty/],
    [body({ outputs: "out" }), "outputs", /must be a JSON object/],
    [body({ outputs: { out: 1 } }), "outputs.out", /must be a store path string/],
    [body({ outputs: { out: "/tmp/x" } }), "outputs.out", /is not a store path/],
    [body({ outputs: { ".x": `/nix/store/${H2}-x` } }), "outputs..x", /invalid output name/],
    [body({ mainProgram: "bin/hello" }), "mainProgram", /must be a file name \(no "\/"\) or null/],
    [body({ mainProgram: ".." }), "mainProgram", /must be a file name/],
    [body({ mainProgram: 3 }), "mainProgram", /must be a file name/],
  ];
  for (const [input, field, re] of cases) {
    const err = cprFailure(() => parseBuildRecord(input), field);
    assert.equal(err.code, "build.invalid", field);
    assert.equal(err.where, field);
    assert.ok(err.message.startsWith(`build record field "${field}" `), err.message);
    assert.match(err.message, re, field);
    assert.ok(err.hint, field);
  }
  for (const bad of [null, [], "x", 1]) {
    const err = cprFailure(() => parseBuildRecord(bad));
    assert.equal(err.code, "build.invalid");
    assert.match(err.message, /must be a JSON object/);
  }
});
