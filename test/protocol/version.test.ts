import { test } from "node:test";
import assert from "node:assert/strict";
import semver from "semver";
import {
  caretOf,
  compareVersions,
  makeVersion,
  matches,
  maxSatisfying,
  parseRequirement,
  parseVersion,
  tryParseVersion,
  VersionSet,
  type Requirement,
  type Version,
} from "../../src/protocol/version.js";
import { cprFailure } from "../support/assert.js";
import { seededRandom } from "../support/random.js";

const v = parseVersion;
const req = parseRequirement;
const set = (text: string) => VersionSet.fromRequirement(req(text));

const failure = cprFailure;

function matchAll(r: Requirement, versions: readonly string[]): void {
  for (const text of versions) assert.ok(matches(r, v(text)), `${r.text} should match ${text}`);
}
function matchNone(r: Requirement, versions: readonly string[]): void {
  for (const text of versions) assert.ok(!matches(r, v(text)), `${r.text} should not match ${text}`);
}

// -------------------------------------------------------------------------------------------------------------
// Versions
// -------------------------------------------------------------------------------------------------------------

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
    "v1.2.3", "V1.2.3", "=1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2", "1", "1.2.3.4", " 1.2.3", "1.2.3 ",
    "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b", "1.2.3+a..b", "1.2.3-ü", "", "a.b.c", "1.2.3-rc.1+",
    "9007199254740992.0.0", "1.2.3-9007199254740992", `1.2.3-${"a".repeat(300)}`,
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
    "0.0.0-0", "0.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1-0", "1.0.1", "1.1.0", "1.10.0", "2.0.0",
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
  const texts = ["1.0.0", "1.0.0-1", "1.0.0-a", "1.0.0-a.1", "1.0.0-a.b", "1.0.0-1.a", "1.0.0-10", "1.0.0-9", "0.9.9", "1.0.0-A", "1.0.0--", "2.0.0-0"];
  for (const a of texts) for (const b of texts) assert.equal(compareVersions(v(a), v(b)), semver.compare(a, b), `${a} vs ${b}`);
});

// -------------------------------------------------------------------------------------------------------------
// Requirements: syntax
// -------------------------------------------------------------------------------------------------------------

test("canonical requirement text (Rust crate display)", () => {
  const cases: Array<[string, string]> = [
    ["1.0.0", "^1.0.0"],
    ["=1.0.0", "=1.0.0"],
    ["=0.1.0-beta2.a", "=0.1.0-beta2.a"],
    ["=0.1.0+meta", "=0.1.0"],
    [">= 1.0.0", ">=1.0.0"],
    [">= 2.1.0-alpha2", ">=2.1.0-alpha2"],
    ["< 1.0.0", "<1.0.0"],
    ["> 0.0.9, <= 2.5.3", ">0.0.9, <=2.5.3"],
    ["0.3.0, 0.4.0", "^0.3.0, ^0.4.0"],
    ["<= 0.2.0, >= 0.5.0", "<=0.2.0, >=0.5.0"],
    ["0.1.0, 0.1.4, 0.1.6", "^0.1.0, ^0.1.4, ^0.1.6"],
    [">=0.5.1-alpha3, <0.6", ">=0.5.1-alpha3, <0.6"],
    ["*", "*"], ["x", "*"], ["X", "*"], ["  *  ", "*"],
    ["1.*", "1.*"], ["1.x", "1.*"], ["1.X", "1.*"], ["1.*.*", "1.*"],
    ["1.2.*", "1.2.*"], ["1.2.x", "1.2.*"], ["1.2.X", "1.2.*"],
    ["0.*.*", "0.*"], ["0.0.*", "0.0.*"], ["2.X", "2.*"], ["2.x.x", "2.*"],
    ["2", "^2"], ["1.2.3-alpha", "^1.2.3-alpha"], [">=1.*", ">=1"],
    ["^0.2", "^0.2"], [">=1.2, <1.5", ">=1.2, <1.5"], ["~ 1.2", "~1.2"], [" >=1.2 ,<1.5 ", ">=1.2, <1.5"],
    [">1.0.0-alpha,<1.0", ">1.0.0-alpha, <1.0"],
  ];
  for (const [input, text] of cases) assert.equal(req(input).text, text, input);
  assert.deepEqual(req("x"), req("*"));
  assert.deepEqual(req("1.x").comparators, req("1.*").comparators);
  assert.deepEqual(req(">=1.2.3-rc.1").comparators, [{ op: ">=", major: 1, minor: 2, patch: 3, prerelease: ["rc", 1] }]);
  assert.deepEqual(req("1.2.*").comparators, [{ op: "*", major: 1, minor: 2, patch: null, prerelease: [] }]);
  assert.deepEqual(req("*").comparators, []);
});

test("leading digits in pre-release and build identifiers (Rust crate cases)", () => {
  for (const op of ["=", ">", ">=", "<", "<=", "~", "^"]) {
    for (const tail of ["1.2.3-1a", "1.2.3+1a", "1.2.3-01a", "1.2.3+01", "1.2.3-1+1", "1.2.3-1-1+1-1-1", "1.2.3-1a+1a", "1.2.3-1a-1a+1a-1a-1a"]) {
      assert.doesNotThrow(() => req(`${op} ${tail}`), `${op} ${tail}`);
    }
  }
});

test("invalid requirements are requirement.invalid with helpful messages (Rust crate cases)", () => {
  const cases: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ["> 0.1.0,", /unexpected end of input while parsing the major version number/],
    ["> 0.3.0, ,", /unexpected character ',' while parsing the major version number/],
    ["1.2.3 - 2.3.4", /expected comma after the patch version number, found '-'/],
    ["> 0.0.9 <= 2.5.3", /expected comma after the patch version number, found '<'/],
    ["=1.2.3 || =2.3.4", /expected comma after the patch version number, found '\|'/],
    ["1.1 || =1.2.3", /expected comma after the minor version number, found '\|'/],
    ["6.* || 8.* || >= 10.*", /expected comma after the minor version number, found '\|'/],
    ["\0", /unexpected character '\0' while parsing the major version number/],
    [">= >= 0.0.2", /unexpected character '>' while parsing the major version number/],
    [">== 0.0.2", /unexpected character '=' while parsing the major version number/],
    ["a.0.0", /unexpected character 'a' while parsing the major version number/],
    ["1.0.0-", /empty identifier segment in the pre-release/],
    [">=", /unexpected end of input while parsing the major version number/],
    ["1.2.3-01", /invalid leading zero in the pre-release identifier/],
    ["1.2.3+4.", /empty identifier segment in the build metadata/],
    [">", /unexpected end of input while parsing the major version number/],
    ["1.", /unexpected end of input while parsing the minor version number/],
    ["1.*.", /unexpected character after wildcard/],
    ["1.2.3+4ÿ", /expected comma after the build metadata, found 'ÿ'/],
    ["*.1", /unexpected character after wildcard/],
    ["1.*.1", /unexpected character after wildcard/],
    [">=1.*.1", /unexpected character after wildcard/],
    ["*, 0.20.0-any", /wildcard req \(\*\) must be the only comparator/],
    ["0.20.0-any, *", /wildcard req \(\*\) must be the only comparator/],
    ["0.20.0-any, *, 1.0", /wildcard req \(\*\) must be the only comparator/],
    ["v1.2.3", /unexpected character 'v'/],
    ["01.2", /invalid leading zero/],
    ["1.2.3\t", /found '\t'/],
  ];
  for (const [input, message] of cases) {
    const err = failure(() => parseRequirement(input));
    assert.equal(err.code, "requirement.invalid", input);
    assert.match(err.message, message, input);
    assert.ok(err.message.includes(JSON.stringify(input)), err.message);
    assert.ok(err.hint, input);
  }
});

test("hints for ||, hyphen ranges, missing commas and a leading v", () => {
  assert.match(failure(() => req("^1 || ^2")).hint ?? "", /no `\|\|`/);
  assert.match(failure(() => req("1.0.0 - 2.0.0")).hint ?? "", /`>=1\.0\.0, <=2\.0\.0`/);
  assert.match(failure(() => req(">1 <2")).hint ?? "", /separate comparators with a comma/);
  assert.match(failure(() => req("v1")).hint ?? "", /leading 'v'/);
  assert.match(failure(() => req("")).hint ?? "", /`\*`/);
});

test("at most 32 comparators, as in the Rust crate", () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => `>${i + 1}`).join(", ");
  assert.equal(req(many(32)).comparators.length, 32);
  assert.match(failure(() => req(many(33))).message, /excessive number of version comparators/);
});

// -------------------------------------------------------------------------------------------------------------
// Requirements: matching (Rust crate test_version_req.rs cases)
// -------------------------------------------------------------------------------------------------------------

test("basic and exact", () => {
  matchAll(req("1.0.0"), ["1.0.0", "1.1.0", "1.0.1"]);
  matchNone(req("1.0.0"), ["0.9.9", "0.10.0", "0.1.0", "1.0.0-pre", "1.0.1-pre"]);
  matchAll(req("=1.0.0"), ["1.0.0"]);
  matchNone(req("=1.0.0"), ["1.0.1", "0.9.9", "0.10.0", "0.1.0", "1.0.0-pre"]);
  matchAll(req("=0.9.0"), ["0.9.0"]);
  matchNone(req("=0.9.0"), ["0.9.1", "1.9.0", "0.0.9", "0.9.0-pre"]);
  matchAll(req("=0.0.2"), ["0.0.2"]);
  matchNone(req("=0.0.2"), ["0.0.1", "0.0.3", "0.0.2-pre"]);
  matchAll(req("=0.1.0-beta2.a"), ["0.1.0-beta2.a"]);
  matchNone(req("=0.1.0-beta2.a"), ["0.9.1", "0.1.0", "0.1.1-beta2.a", "0.1.0-beta2"]);
  matchAll(req("=0.1.0+meta"), ["0.1.0", "0.1.0+meta", "0.1.0+any"]);
  matchAll(req("=2.1.1-really.0"), ["2.1.1-really.0"]);
});

test("greater and less than", () => {
  matchAll(req(">= 1.0.0"), ["1.0.0", "2.0.0"]);
  matchNone(req(">= 1.0.0"), ["0.1.0", "0.0.1", "1.0.0-pre", "2.0.0-pre"]);
  matchAll(req(">= 2.1.0-alpha2"), ["2.1.0-alpha2", "2.1.0-alpha3", "2.1.0", "3.0.0"]);
  matchNone(req(">= 2.1.0-alpha2"), ["2.0.0", "2.1.0-alpha1", "2.0.0-alpha2", "3.0.0-alpha2"]);
  matchAll(req("< 1.0.0"), ["0.1.0", "0.0.1"]);
  matchNone(req("< 1.0.0"), ["1.0.0", "1.0.0-beta", "1.0.1", "0.9.9-alpha"]);
  matchAll(req("<= 2.1.0-alpha2"), ["2.1.0-alpha2", "2.1.0-alpha1", "2.0.0", "1.0.0"]);
  matchNone(req("<= 2.1.0-alpha2"), ["2.1.0", "2.2.0-alpha1", "2.0.0-alpha2", "1.0.0-alpha2"]);
  matchAll(req(">1.0.0-alpha, <1.0.0"), ["1.0.0-beta"]);
  matchNone(req(">1.0.0-alpha, <1.0"), ["1.0.0-beta"]);
  matchNone(req(">1.0.0-alpha, <1"), ["1.0.0-beta"]);
});

test("multiple comparators", () => {
  matchAll(req("> 0.0.9, <= 2.5.3"), ["0.0.10", "1.0.0", "2.5.3"]);
  matchNone(req("> 0.0.9, <= 2.5.3"), ["0.0.8", "2.5.4"]);
  matchNone(req("0.3.0, 0.4.0"), ["0.0.8", "0.3.0", "0.4.0"]);
  matchNone(req("<= 0.2.0, >= 0.5.0"), ["0.0.8", "0.3.0", "0.5.1"]);
  matchAll(req("0.1.0, 0.1.4, 0.1.6"), ["0.1.6", "0.1.9"]);
  matchNone(req("0.1.0, 0.1.4, 0.1.6"), ["0.1.0", "0.1.4", "0.2.0"]);
  matchAll(req(">=0.5.1-alpha3, <0.6"), ["0.5.1-alpha3", "0.5.1-alpha4", "0.5.1-beta", "0.5.1", "0.5.5"]);
  matchNone(req(">=0.5.1-alpha3, <0.6"), ["0.5.1-alpha1", "0.5.2-alpha3", "0.5.5-pre", "0.5.0-pre", "0.6.0", "0.6.0-pre"]);
});

test("tilde", () => {
  matchAll(req("~1"), ["1.0.0", "1.0.1", "1.1.1"]);
  matchNone(req("~1"), ["0.9.1", "2.9.0", "0.0.9"]);
  matchAll(req("~1.2"), ["1.2.0", "1.2.1"]);
  matchNone(req("~1.2"), ["1.1.1", "1.3.0", "0.0.9"]);
  matchAll(req("~1.2.2"), ["1.2.2", "1.2.4"]);
  matchNone(req("~1.2.2"), ["1.2.1", "1.9.0", "1.0.9", "2.0.1", "0.1.3"]);
  matchAll(req("~1.2.3-beta.2"), ["1.2.3", "1.2.4", "1.2.3-beta.2", "1.2.3-beta.4"]);
  matchNone(req("~1.2.3-beta.2"), ["1.3.3", "1.1.4", "1.2.3-beta.1", "1.2.4-beta.2"]);
});

test("caret", () => {
  matchAll(req("^1"), ["1.1.2", "1.1.0", "1.2.1", "1.0.1"]);
  matchNone(req("^1"), ["0.9.1", "2.9.0", "0.1.4", "1.0.0-beta1", "0.1.0-alpha", "1.0.1-pre"]);
  matchAll(req("^1.1"), ["1.1.2", "1.1.0", "1.2.1"]);
  matchNone(req("^1.1"), ["0.9.1", "2.9.0", "1.0.1", "0.1.4"]);
  matchAll(req("^1.1.2"), ["1.1.2", "1.1.4", "1.2.1"]);
  matchNone(req("^1.1.2"), ["0.9.1", "2.9.0", "1.1.1", "0.0.1", "1.1.2-alpha1", "1.1.3-alpha1", "2.9.0-alpha1"]);
  matchAll(req("^0.1.2"), ["0.1.2", "0.1.4"]);
  matchNone(req("^0.1.2"), ["0.9.1", "2.9.0", "1.1.1", "0.0.1", "0.1.2-beta", "0.1.3-alpha", "0.2.0-pre"]);
  matchAll(req("^0.5.1-alpha3"), ["0.5.1-alpha3", "0.5.1-alpha4", "0.5.1-beta", "0.5.1", "0.5.5"]);
  matchNone(req("^0.5.1-alpha3"), ["0.5.1-alpha1", "0.5.2-alpha3", "0.5.5-pre", "0.5.0-pre", "0.6.0"]);
  matchAll(req("^0.0.2"), ["0.0.2"]);
  matchNone(req("^0.0.2"), ["0.9.1", "2.9.0", "1.1.1", "0.0.1", "0.1.4"]);
  matchAll(req("^0.0"), ["0.0.2", "0.0.0"]);
  matchNone(req("^0.0"), ["0.9.1", "2.9.0", "1.1.1", "0.1.4"]);
  matchAll(req("^0"), ["0.9.1", "0.0.2", "0.0.0"]);
  matchNone(req("^0"), ["2.9.0", "1.1.1"]);
  matchAll(req("^1.4.2-beta.5"), ["1.4.2", "1.4.3", "1.4.2-beta.5", "1.4.2-beta.6", "1.4.2-c"]);
  matchNone(req("^1.4.2-beta.5"), ["0.9.9", "2.0.0", "1.4.2-alpha", "1.4.2-beta.4", "1.4.3-beta.5"]);
});

test("wildcards", () => {
  matchAll(req("*"), ["0.9.1", "2.9.0", "0.0.9", "1.0.1", "1.1.1"]);
  matchNone(req("*"), ["1.0.0-pre"]);
  matchAll(req("1.*"), ["1.2.0", "1.2.1", "1.1.1", "1.3.0"]);
  matchNone(req("1.*"), ["0.0.9", "1.2.0-pre"]);
  matchAll(req("1.2.*"), ["1.2.0", "1.2.2", "1.2.4"]);
  matchNone(req("1.2.*"), ["1.9.0", "1.0.9", "2.0.1", "0.1.3", "1.2.2-pre"]);
  matchAll(req("0.*.*"), ["0.5.0"]);
});

// -------------------------------------------------------------------------------------------------------------
// docs/formats.md §3
// -------------------------------------------------------------------------------------------------------------

test("docs/formats.md §3.5 table", () => {
  // `1.2.3` is `>=1.2.3, <2.0.0`; 1.2.4 matches (node-semver: exact).
  assert.equal(req("1.2.3").text, "^1.2.3");
  assert.ok(set("1.2.3").equals(set(">=1.2.3, <2.0.0")));
  assert.ok(matches(req("1.2.3"), v("1.2.4")));
  assert.ok(!semver.satisfies("1.2.4", "1.2.3"), "node-semver reads a bare version as exact");
  // `>=1.2, <1.5` is valid (AND).
  assert.equal(req(">=1.2, <1.5").comparators.length, 2);
  matchAll(req(">=1.2, <1.5"), ["1.2.0", "1.4.9"]);
  matchNone(req(">=1.2, <1.5"), ["1.1.9", "1.5.0"]);
  // `^1 || ^2` and `1.0.0 - 2.0.0` are invalid.
  assert.equal(failure(() => req("^1 || ^2")).code, "requirement.invalid");
  assert.equal(failure(() => req("1.0.0 - 2.0.0")).code, "requirement.invalid");
  // `^1.2.3-alpha.1` does not match 1.2.4-alpha.1.
  assert.ok(!matches(req("^1.2.3-alpha.1"), v("1.2.4-alpha.1")));
  assert.ok(!set("^1.2.3-alpha.1").contains(v("1.2.4-alpha.1")));
  // Version `v1.2.3` is rejected.
  assert.equal(failure(() => parseVersion("v1.2.3")).code, "version.invalid");
});

test("docs/formats.md §3.2 operator meanings, as exact set equalities", () => {
  const same: Array<[string, string]> = [
    ["^1.2.3", ">=1.2.3, <2.0.0"],
    ["^0.2.3", ">=0.2.3, <0.3.0"],
    ["^0.0.3", "=0.0.3"],
    ["~1.2.3", ">=1.2.3, <1.3.0"],
    ["=1.2", ">=1.2.0, <1.3.0"],
    [">1.2", ">=1.3.0"],
    ["<=1.2", "<1.3.0"],
    ["1.*", ">=1.0.0, <2.0.0"],
    ["1.2.*", "=1.2"],
    ["~1", "^1"],
  ];
  for (const [a, b] of same) assert.ok(set(a).equals(set(b)), `${a} ≡ ${b}: ${set(a)} vs ${set(b)}`);
  assert.ok(!set("^1.2.3").equals(set(">=1.2.3, <=2.0.0")));
});

test("docs/formats.md §3.3 pre-release rule: a comparator with the same major.minor.patch and its own pre-release", () => {
  const r = req(">=1.2.3-alpha.1, <2");
  matchAll(r, ["1.2.3-alpha.1", "1.2.3-beta", "1.2.3", "1.9.0"]);
  matchNone(r, ["1.2.3-alpha.0", "1.2.4-alpha.1", "1.9.0-rc.1", "2.0.0-0"]);
  assert.ok(!matches(req("*"), v("1.0.0-pre")));
  assert.ok(!matches(req(">=0.0.0"), v("1.0.0-pre")));
});

test("caretOf records ^<version> without build metadata", () => {
  assert.equal(caretOf(v("0.1.1")).text, "^0.1.1");
  assert.equal(caretOf(v("1.2.3-rc.1+b.7")).text, "^1.2.3-rc.1");
  assert.ok(matches(caretOf(v("1.2.3-rc.1")), v("1.2.3-rc.1")));
  assert.ok(matches(caretOf(v("0.1.1")), v("0.1.9")) && !matches(caretOf(v("0.1.1")), v("0.2.0")));
});

test("maxSatisfying picks the highest match", () => {
  const versions = ["0.9.0", "1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0"].map(v);
  assert.equal(maxSatisfying(versions, req("^1"))?.text, "1.4.2");
  assert.equal(maxSatisfying(versions, req(">=1.5.0-rc.1, <2"))?.text, "1.5.0-rc.1");
  assert.equal(maxSatisfying(versions, req("^3")), null);
});

// -------------------------------------------------------------------------------------------------------------
// VersionSet
// -------------------------------------------------------------------------------------------------------------

const PRERELEASES: readonly (readonly (string | number)[])[] = [[], [0], [0, 0], [1], ["alpha"], ["alpha", 0], ["alpha", 1], ["beta"], ["rc", 1]];

/** Every version with parts 0–4 and each of the pre-releases above: boundaries on both sides of 0–3. */
const SAMPLE: readonly Version[] = (() => {
  const out: Version[] = [];
  for (let major = 0; major <= 4; major++)
    for (let minor = 0; minor <= 4; minor++)
      for (let patch = 0; patch <= 4; patch++) for (const pre of PRERELEASES) out.push(makeVersion(major, minor, patch, pre));
  return out;
})();

function randomComparator(rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const n = () => String(Math.floor(rand() * 4));
  const shape = rand();
  if (shape < 0.1) return `${n()}.*`;
  if (shape < 0.2) return `${n()}.${n()}.*`;
  const op = pick(["", "=", ">", ">=", "<", "<=", "~", "^"]);
  const parts = pick([1, 2, 3, 3, 3]);
  let text = op + [n(), n(), n()].slice(0, parts).join(".");
  if (parts === 3 && rand() < 0.4) text += "-" + pick(PRERELEASES.slice(1)).join(".");
  return text;
}

function randomRequirement(rand: () => number): Requirement {
  if (rand() < 0.03) return req("*");
  const count = 1 + Math.floor(rand() * 3);
  return req(Array.from({ length: count }, () => randomComparator(rand)).join(", "));
}

test("fromRequirement contains exactly the versions matches() accepts (property test)", () => {
  const rand = seededRandom(20240611);
  for (let i = 0; i < 1200; i++) {
    const r = randomRequirement(rand);
    const s = VersionSet.fromRequirement(r);
    for (const version of SAMPLE) {
      if (s.contains(version) !== matches(r, version)) {
        assert.fail(`${r.text} on ${version.text}: set ${s.contains(version)}, matches ${matches(r, version)}; set = ${s}`);
      }
    }
  }
});

test("set algebra agrees with pointwise logic (property test)", () => {
  const rand = seededRandom(7);
  const randomSet = (): VersionSet => {
    const base = VersionSet.fromRequirement(randomRequirement(rand));
    const k = rand();
    if (k < 0.2) return base.complement();
    if (k < 0.3) return base.union(VersionSet.exact(SAMPLE[Math.floor(rand() * SAMPLE.length)]!));
    if (k < 0.4) return VersionSet.interval({ version: SAMPLE[Math.floor(rand() * SAMPLE.length)]!, inclusive: rand() < 0.5 }, null);
    return base;
  };
  for (let i = 0; i < 400; i++) {
    const a = randomSet();
    const b = randomSet();
    const union = a.union(b);
    const inter = a.intersect(b);
    const comp = a.complement();
    let subset = true;
    for (const version of SAMPLE) {
      const inA = a.contains(version);
      const inB = b.contains(version);
      assert.equal(union.contains(version), inA || inB, `${a} ∪ ${b} at ${version.text}`);
      assert.equal(inter.contains(version), inA && inB, `${a} ∩ ${b} at ${version.text}`);
      assert.equal(comp.contains(version), !inA, `¬${a} at ${version.text}`);
      if (inA && !inB) subset = false;
    }
    if (!subset) assert.equal(a.isSubsetOf(b), false, `${a} ⊄ ${b}`);
    if (a.isSubsetOf(b)) assert.ok(subset);
    assert.ok(inter.isSubsetOf(a) && inter.isSubsetOf(b) && a.isSubsetOf(union));
    assert.ok(comp.complement().equals(a), `¬¬${a}`);
    assert.ok(a.union(comp).equals(VersionSet.full));
    assert.ok(a.intersect(comp).isEmpty());
    assert.ok(union.equals(b.union(a)) && inter.equals(b.intersect(a)));
    assert.ok(a.union(b).complement().equals(comp.intersect(b.complement())), "De Morgan");
  }
});

test("VersionSet constants, exact and interval", () => {
  assert.ok(VersionSet.empty.isEmpty() && !VersionSet.full.isEmpty());
  assert.ok(VersionSet.full.contains(v("0.0.0-0")) && VersionSet.full.contains(v("99.0.0")));
  assert.ok(VersionSet.releases.equals(set("*")));
  assert.ok(!VersionSet.releases.contains(v("1.0.0-rc.1")));
  assert.ok(VersionSet.empty.complement().equals(VersionSet.full));
  const one = VersionSet.exact(v("1.2.3"));
  assert.ok(one.contains(v("1.2.3")) && one.contains(v("1.2.3+build")) && !one.contains(v("1.2.4")) && !one.contains(v("1.2.3-rc.1")));
  assert.ok(one.equals(set("=1.2.3")));
  const pre = VersionSet.exact(v("1.2.3-rc.1"));
  assert.ok(pre.contains(v("1.2.3-rc.1")) && !pre.contains(v("1.2.3-rc.1.0")) && !pre.contains(v("1.2.3")));
  assert.ok(pre.equals(set("=1.2.3-rc.1")));
  const range = VersionSet.interval({ version: v("1.0.0-beta"), inclusive: false }, { version: v("1.0.0"), inclusive: true });
  assert.ok(range.contains(v("1.0.0-beta.0")) && range.contains(v("1.0.0-rc")) && range.contains(v("1.0.0")));
  assert.ok(!range.contains(v("1.0.0-beta")) && !range.contains(v("1.0.1-0")));
  assert.ok(range.isSubsetOf(VersionSet.full) && !VersionSet.full.isSubsetOf(range));
});

test("intervals and prereleaseIntervals are canonical: inclusive lower, exclusive upper", () => {
  const s = set(">=1.2.3-alpha.1, <2");
  assert.deepEqual(
    s.intervals.map((i) => [i.lower?.version.text, i.lower?.inclusive, i.upper?.version.text, i.upper?.inclusive]),
    [["1.2.3", true, "2.0.0", false]],
  );
  assert.deepEqual(
    s.prereleaseIntervals.map((i) => [i.lower?.version.text, i.lower?.inclusive, i.upper?.version.text, i.upper?.inclusive]),
    [["1.2.3-alpha.1", true, "1.2.4-0", false]],
  );
  assert.deepEqual(set("<=1.2.3").intervals.map((i) => [i.lower, i.upper?.version.text]), [[null, "1.2.4"]]);
  assert.deepEqual(set(">1.2.3").intervals.map((i) => [i.lower?.version.text, i.upper]), [["1.2.4", null]]);
  assert.equal(set("^1").prereleaseIntervals.length, 0);
  assert.equal(set("*").intervals.length, 1);
  assert.equal(set("*").intervals[0]!.lower, null);
  // Touching ranges merge.
  assert.equal(set("^1").union(set("^2")).intervals.length, 1);
  assert.ok(set("^1").union(set("^2")).equals(set(">=1.0.0, <3.0.0")));
  assert.equal(set("=1.0.0").union(set("=1.0.2")).intervals.length, 2);
});

test("VersionSet.toString", () => {
  assert.equal(set("^1.2.3").toString(), ">=1.2.3, <2.0.0");
  assert.equal(set("=1.2.3").toString(), "=1.2.3");
  assert.equal(set(">=1.2.3-rc.1, <2").toString(), ">=1.2.3, <2.0.0 || pre(>=1.2.3-rc.1, <1.2.4-0)");
  assert.equal(set("=1.0.0").union(set(">=3")).toString(), "=1.0.0 || >=3.0.0");
  assert.equal(VersionSet.empty.toString(), "∅");
  assert.equal(VersionSet.full.toString(), "* || pre(*)");
  assert.equal(set("<1").toString(), "<1.0.0");
});
