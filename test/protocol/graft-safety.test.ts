import { test } from "node:test";
import assert from "node:assert/strict";
import { checkGraft, checkResidue, GraftRefused, judge, requirementOn, type ReplacementFacts } from "../../src/protocol/graft-safety.js";
import { parseRequirement } from "../../src/protocol/requirement.js";

const Y32 = `/nix/store/${"1".repeat(32)}-y-3.2`;
const Y33 = `/nix/store/${"3".repeat(32)}-y-3.3`;
const Y310 = `/nix/store/${"4".repeat(32)}-y-3.10`;

function facts(over: Partial<ReplacementFacts> = {}): ReplacementFacts {
  return {
    label: "y",
    oldId: "Y",
    newId: "Y",
    oldVersion: "3.2.0",
    newVersion: "3.3.0",
    requirements: [{ by: "x 1.0.0", requirement: parseRequirement("^3.2") }],
    paths: [{ old: Y32, new: Y33 }],
    runtime: true,
    ...over,
  };
}

const codes = (r: readonly { code: string }[]) => r.map((x) => x.code);

test("a compatible, newer, same-atom, equal-length runtime replacement passes every rule", () => {
  assert.deepEqual(checkGraft({ dependent: "x 1.0.0", replacements: [facts()] }), []);
});

test("requirements: ^3.2 allows 3.3 and refuses 4.0; ^0.3 refuses 0.4; each dependent's requirement is checked", () => {
  const major = checkGraft({ dependent: "x 1.0.0", replacements: [facts({ newVersion: "4.0.0" })] });
  assert.deepEqual(codes(major), ["graft.incompatible"]);
  assert.match(major[0]!.message, /^y 3\.2\.0 → 4\.0\.0: x 1\.0\.0 requires y \^3\.2, which 4\.0\.0 does not satisfy$/);
  assert.equal(major[0]!.override, "allow-incompatible");
  const zero = (v: string) =>
    checkGraft({
      dependent: "x 1.0.0",
      replacements: [
        facts({ oldVersion: "0.3.1", newVersion: v, requirements: [{ by: "x 1.0.0", requirement: parseRequirement("^0.3") }] }),
      ],
    });
  assert.deepEqual(codes(zero("0.3.9")), []);
  assert.deepEqual(codes(zero("0.4.0")), ["graft.incompatible"]);
  const two = checkGraft({
    dependent: "x 1.0.0",
    replacements: [
      facts({
        newVersion: "3.5.0",
        requirements: [
          { by: "a 1.0.0", requirement: parseRequirement("^3.2") },
          { by: "b 2.0.0", requirement: parseRequirement(">=3.2, <3.5") },
        ],
      }),
    ],
  });
  assert.deepEqual(
    two.map((v) => v.message.includes("b 2.0.0")),
    [true],
  );
});

test("same atom, newer, equal lengths, runtime reference, one version per atom: each violation named, with its override", () => {
  const all = checkGraft({
    dependent: "x 1.0.0",
    replacements: [
      facts({ newId: "OTHER", oldVersion: "3.4.0", newVersion: "3.3.0", paths: [{ old: Y32, new: Y310 }] }),
      facts({ label: "z", runtime: false, paths: [], notRuntimeReason: "z is linked statically" }),
    ],
    newClosureAtoms: new Map([
      ["Y", { label: "y", versions: ["3.3.0"] }],
      ["W", { label: "w", versions: ["1.0.0", "1.1.0"] }],
    ]),
  });
  assert.deepEqual(codes(all), ["graft.other-atom", "graft.not-newer", "graft.length", "graft.not-runtime", "graft.two-versions"]);
  assert.deepEqual(
    all.map((v) => v.override),
    ["allow-incompatible", "allow-incompatible", "alias", null, "allow-incompatible"],
  );
  assert.match(all.find((v) => v.code === "graft.not-runtime")!.message, /z is linked statically/);
  assert.match(all.find((v) => v.code === "graft.not-runtime")!.hint, /rebuild/);
  assert.match(all.find((v) => v.code === "graft.length")!.message, /names are 5 and 6 characters long/);
});

test("judge: flags override only what they name; automatic requests override no version rule", () => {
  const vs = checkGraft({
    dependent: "x 1.0.0",
    replacements: [facts({ newVersion: "4.0.0", paths: [{ old: Y32, new: Y310 }] }), facts({ label: "z", runtime: false, paths: [] })],
  });
  const none = judge(vs, {});
  assert.equal(none.refusals.length, 3);
  const allowed = judge(vs, { allowIncompatible: true, alias: true });
  assert.deepEqual(codes(allowed.refusals), ["graft.not-runtime"]);
  assert.deepEqual(codes(allowed.warnings), ["graft.incompatible", "graft.length"]);
  const auto = judge(vs, { allowIncompatible: true, alias: true, automatic: true });
  assert.equal(auto.refusals.length, 3);
});

test("residue: hits, unscanned and damaged members refuse, --force makes them warnings", () => {
  const vs = checkResidue([
    {
      path: "/nix/store/g-x",
      hits: [{ path: "lib/y.gz", member: ["gzip"], hash: "1".repeat(32) }],
      unscanned: [{ path: "big.xz", member: ["xz"], reason: "over the cap" }],
      damaged: [{ path: "a.jar", member: ["zip:b"], reason: "CRC-32 mismatch" }],
    },
  ]);
  assert.deepEqual(codes(vs), ["graft.residue", "graft.unscanned", "graft.damaged"]);
  assert.match(vs[0]!.message, /lib\/y\.gz \(gzip\) still names 1{32} after the rewrite/);
  assert.match(vs[0]!.hint, /compressed data/);
  assert.deepEqual(judge(vs, { force: true }).refusals, []);
  assert.equal(judge(vs, {}).refusals.length, 3);
  const err = new GraftRefused("x 1.0.0", vs, { paths: [] });
  assert.equal(err.code, "graft.refused");
  assert.match(err.message, /^the graft of x 1\.0\.0 is refused:\n {2}- /);
  assert.deepEqual((err.toJSON() as { reasons: unknown[] }).reasons.length, 3);
});

test("requirementOn: the tag's set is the dependent's own (::) or one of the dependency set's mirrors", () => {
  const manifest = `[package]
label = "x"
version = "1.0.0"

[package.sets]
home = "https://example.org/set.git"
own = "::"

[compose.as]
nix = "default.nix"

[deps.from.home]
y = "^3.2"

[deps.from.own]
z = "~1.4"
`;
  assert.equal(requirementOn(manifest, "r1", "y", "r2", ["https://example.org/set/"])?.text, "^3.2");
  assert.equal(requirementOn(manifest, "r1", "y", "r2", ["https://elsewhere.org/set.git"]), null);
  assert.equal(requirementOn(manifest, "r1", "z", "r1", [])?.text, "~1.4");
  assert.equal(requirementOn(manifest, "r1", "z", "r3", []), null);
  assert.equal(requirementOn("not toml [", "r1", "y", "r2", []), null);
});
