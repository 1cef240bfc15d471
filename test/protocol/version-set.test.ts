import { test } from "node:test";
import assert from "node:assert/strict";
import { matches, parseRequirement, type Requirement } from "../../src/protocol/requirement.js";
import { VersionSet } from "../../src/protocol/version-set.js";
import { makeVersion, parseVersion, type Version } from "../../src/protocol/version.js";
import { seededRandom } from "../support/random.js";

const v = parseVersion;
const req = parseRequirement;
const set = (text: string) => VersionSet.fromRequirement(req(text));

const PRERELEASES: readonly (readonly (string | number)[])[] = [
  [],
  [0],
  [0, 0],
  [1],
  ["alpha"],
  ["alpha", 0],
  ["alpha", 1],
  ["beta"],
  ["rc", 1],
];

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
  assert.deepEqual(
    set("<=1.2.3").intervals.map((i) => [i.lower, i.upper?.version.text]),
    [[null, "1.2.4"]],
  );
  assert.deepEqual(
    set(">1.2.3").intervals.map((i) => [i.lower?.version.text, i.upper]),
    [["1.2.4", null]],
  );
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
