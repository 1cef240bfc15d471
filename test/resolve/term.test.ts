import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRequirement } from "../../src/protocol/requirement.js";
import { VersionSet } from "../../src/protocol/version-set.js";
import { parseVersion } from "../../src/protocol/version.js";
import { contradicts, intersectTerms, negate, negativeTerm, positiveTerm, rangeText, satisfies, termText } from "../../src/resolve/term.js";

const set = (text: string): VersionSet => VersionSet.fromRequirement(parseRequirement(text));
const v = parseVersion;

test("rangeText gives Cargo-ish text for requirement-shaped sets", () => {
  const cases: Array<[string, string]> = [
    ["^1", "^1"],
    ["^1.2", "^1.2"],
    ["^1.2.3", "^1.2.3"],
    ["^0.2", "^0.2"],
    ["^0.2.3", "^0.2.3"],
    ["^0.0.3", "0.0.3"],
    ["~1.2.3", "~1.2.3"],
    ["~1.2", "~1.2"],
    ["=1.0.0", "1.0.0"],
    [">=1.0.0, <1.5.0", ">=1.0.0, <1.5.0"],
    ["<2", "<2.0.0"],
    [">=1.1", ">=1.1.0"],
    ["*", "*"],
    ["^1.0.0-rc.1", "^1.0.0-rc.1"],
    ["=1.0.0-rc.1", "1.0.0-rc.1"],
    [">=1.0.0-rc.1, <1.0.0", ">=1.0.0-rc.1, <1.0.0"],
  ];
  for (const [req, text] of cases) assert.equal(rangeText(set(req)), text, req);
  assert.equal(rangeText(set("^1").union(set("^3"))), "^1 or ^3");
  assert.equal(rangeText(VersionSet.empty), "no version");
  assert.equal(rangeText(VersionSet.interval(null, { version: v("1.1.0"), inclusive: false }).intersect(VersionSet.releases)), "<1.1.0");
  // An open-ended range from a version list covers the pre-releases above it too: they are not worth a mention.
  assert.equal(rangeText(VersionSet.interval({ version: v("1.1.0"), inclusive: true }, null)), ">=1.1.0");
});

test("termText names packages, every version, negations", () => {
  const name = (p: string): string => p.toUpperCase();
  assert.equal(termText(positiveTerm("foo", set("^1")), name), "FOO ^1");
  assert.equal(termText(positiveTerm("foo", VersionSet.full), name, { every: true }), "every version of FOO");
  assert.equal(termText(positiveTerm("foo", VersionSet.releases), name), "FOO *");
  assert.equal(termText(negativeTerm("foo", set("^1")), name), "not FOO ^1");
  assert.equal(termText(positiveTerm("app", VersionSet.full), name, { every: true, root: "app" }), "APP");
  assert.equal(termText(positiveTerm("app", set("^2")), name, { root: "app" }), "APP ^2");
});

test("term relations follow the positive/negative semantics", () => {
  const foo1 = positiveTerm("foo", set("^1"));
  const foo12 = positiveTerm("foo", set("^1.2"));
  const notFoo1 = negate(foo1);
  assert.ok(satisfies(foo12, foo1));
  assert.ok(!satisfies(foo1, foo12));
  assert.ok(contradicts(foo12, notFoo1));
  assert.ok(!satisfies(notFoo1, positiveTerm("foo", set("^2")))); // "not selected" is allowed by the negative term
  assert.ok(!contradicts(notFoo1, negativeTerm("foo", set("^2")))); // both allow "not selected"
  assert.ok(satisfies(negativeTerm("foo", set("*")), notFoo1));
  const both = intersectTerms(foo1, negativeTerm("foo", set("^1.2")));
  assert.ok(both.positive);
  assert.equal(rangeText(both.set), ">=1.0.0, <1.2.0");
  assert.ok(negate(negate(foo1)).set.equals(foo1.set));
});
