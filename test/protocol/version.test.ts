import { test } from "node:test";
import assert from "node:assert/strict";
import semver from "semver";
import { compareVersions, parseVersion, tryParseVersion } from "../../src/protocol/version.js";
import { cprFailure } from "../support/assert.js";

const v = parseVersion;
const failure = cprFailure;

test("parseVersion reads strict SemVer and keeps build metadata in the text", () => {
  const version = v("1.2.3-rc.1+build.05");
  assert.equal(version.major, 1);
  assert.equal(version.minor, 2);
  assert.equal(version.patch, 3);
  assert.deepEqual(version.prerelease, ["rc", 1]);
  assert.deepEqual(version.build, ["build", "05"]);
  assert.equal(version.text, "1.2.3-rc.1+build.05");
  assert.equal(v("0.0.0").text, "0.0.0");
  assert.deepEqual(v("1.0.0-0a.1.1-x.--").prerelease, ["0a", 1, "1-x", "--"]);
  assert.equal(v(`${Number.MAX_SAFE_INTEGER}.0.0`).major, Number.MAX_SAFE_INTEGER);
});

test("parseVersion rejects loose forms with version.invalid and a message naming the input", () => {
  const rejected = [
    "v1.2.3",
    "V1.2.3",
    "=1.2.3",
    "01.2.3",
    "1.02.3",
    "1.2.03",
    "1.2",
    "1",
    "1.2.3.4",
    " 1.2.3",
    "1.2.3 ",
    "1.2.3-",
    "1.2.3-01",
    "1.2.3+",
    "1.2.3-a..b",
    "1.2.3+a..b",
    "1.2.3-ü",
    "",
    "a.b.c",
    "1.2.3-rc.1+",
    "9007199254740992.0.0",
    "1.2.3-9007199254740992",
    `1.2.3-${"a".repeat(300)}`,
  ];
  for (const text of rejected) {
    const err = failure(() => parseVersion(text));
    assert.equal(err.code, "version.invalid", text);
    assert.ok(err.message.includes(JSON.stringify(text)), err.message);
    assert.ok(err.hint, text);
    assert.equal(tryParseVersion(text), null, text);
  }
  assert.match(failure(() => parseVersion("v1.2.3")).hint ?? "", /leading 'v'/);
  assert.match(failure(() => parseVersion("1.2")).hint ?? "", /MAJOR\.MINOR\.PATCH/);
});

test("SemVer precedence (semver.org §11), build metadata ignored", () => {
  const order = [
    "0.0.0-0",
    "0.0.0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1-0",
    "1.0.1",
    "1.1.0",
    "1.10.0",
    "2.0.0",
  ].map(v);
  for (let i = 0; i < order.length; i++) {
    for (let j = 0; j < order.length; j++) {
      assert.equal(compareVersions(order[i]!, order[j]!), Math.sign(i - j), `${order[i]!.text} vs ${order[j]!.text}`);
    }
  }
  assert.equal(compareVersions(v("1.0.0+a"), v("1.0.0+b")), 0);
  assert.equal(compareVersions(v("1.0.0-rc.1+a"), v("1.0.0-rc.1")), 0);
});

test("compareVersions agrees with the semver package", () => {
  const texts = [
    "1.0.0",
    "1.0.0-1",
    "1.0.0-a",
    "1.0.0-a.1",
    "1.0.0-a.b",
    "1.0.0-1.a",
    "1.0.0-10",
    "1.0.0-9",
    "0.9.9",
    "1.0.0-A",
    "1.0.0--",
    "2.0.0-0",
  ];
  for (const a of texts) for (const b of texts) assert.equal(compareVersions(v(a), v(b)), semver.compare(a, b), `${a} vs ${b}`);
});
