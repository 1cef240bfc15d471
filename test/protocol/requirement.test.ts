import { test } from "node:test";
import assert from "node:assert/strict";
import semver from "semver";
import { caretOf, matches, maxSatisfying, parseRequirement, type Requirement } from "../../src/protocol/requirement.js";
import { VersionSet } from "../../src/protocol/version-set.js";
import { parseVersion } from "../../src/protocol/version.js";
import { cprFailure } from "../support/assert.js";

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
    ["*", "*"],
    ["x", "*"],
    ["X", "*"],
    ["  *  ", "*"],
    ["1.*", "1.*"],
    ["1.x", "1.*"],
    ["1.X", "1.*"],
    ["1.*.*", "1.*"],
    ["1.2.*", "1.2.*"],
    ["1.2.x", "1.2.*"],
    ["1.2.X", "1.2.*"],
    ["0.*.*", "0.*"],
    ["0.0.*", "0.0.*"],
    ["2.X", "2.*"],
    ["2.x.x", "2.*"],
    ["2", "^2"],
    ["1.2.3-alpha", "^1.2.3-alpha"],
    [">=1.*", ">=1"],
    ["^0.2", "^0.2"],
    [">=1.2, <1.5", ">=1.2, <1.5"],
    ["~ 1.2", "~1.2"],
    [" >=1.2 ,<1.5 ", ">=1.2, <1.5"],
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
    for (const tail of [
      "1.2.3-1a",
      "1.2.3+1a",
      "1.2.3-01a",
      "1.2.3+01",
      "1.2.3-1+1",
      "1.2.3-1-1+1-1-1",
      "1.2.3-1a+1a",
      "1.2.3-1a-1a+1a-1a-1a",
    ]) {
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
