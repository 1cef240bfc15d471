import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GRAFT_TYPE, canonicalReplacements, graftDescriptor, graftPath, planGraft } from "../../src/protocol/graft.js";
import { makeStorePath, parseStorePath } from "../../src/protocol/store-path.js";
import { cprFailure } from "../support/assert.js";

const path = (name: string): string => makeStorePath("output:out", createHash("sha256").update(name).digest("hex"), name);
const Y32 = path("y-3.2");
const Y33 = path("y-3.3");
const Z1 = path("z-1.0");
const Z2 = path("z-2.0");
const X = path("x-1.0");

test("the descriptor is the documented canonical text, and the graft path hashes it as type cpr-graft-v1 with the original's name", () => {
  const d = graftDescriptor(
    X,
    new Map([
      [Z1, Z2],
      [Y32, Y33],
    ]),
  );
  const sorted = [
    [Y32, Y33],
    [Z1, Z2],
  ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
  assert.equal(d, `cpr-graft-v1\noriginal ${X}\n${sorted.map(([o, n]) => `replace ${o} ${n}\n`).join("")}`);
  const g = graftPath(
    X,
    new Map([
      [Z1, Z2],
      [Y32, Y33],
    ]),
  );
  assert.equal(g, makeStorePath(GRAFT_TYPE, createHash("sha256").update(d).digest("hex"), "x-1.0"));
  assert.equal(parseStorePath(g).basename.length, parseStorePath(X).basename.length);
});

test("the graft path depends on the original and the replacements, never on their order or form", () => {
  const a = graftPath(
    X,
    new Map([
      [Y32, Y33],
      [Z1, Z2],
    ]),
  );
  assert.equal(
    graftPath(X, [
      { old: Z1, new: Z2 },
      { old: Y32, new: Y33 },
    ]),
    a,
  );
  assert.equal(
    graftPath(X, [
      { old: Z1, new: Z2 },
      { old: Y32, new: Y33 },
      { old: Z1, new: Z2 },
    ]),
    a,
    "a repeated identical pair is the same map",
  );
  assert.notEqual(graftPath(X, new Map([[Y32, Y33]])), a);
  assert.notEqual(
    graftPath(
      path("x-1.1"),
      new Map([
        [Y32, Y33],
        [Z1, Z2],
      ]),
    ),
    a,
  );
  assert.notEqual(
    graftPath(
      X,
      new Map([
        [Y32, path("y-3.4")],
        [Z1, Z2],
      ]),
    ),
    a,
  );
  // The store directory is part of the address (through the paths and the fingerprint).
  const inDir = (dir: string): string => {
    const at = (p: string): string => `${dir}/${parseStorePath(p).basename}`;
    return graftPath(at(X), new Map([[at(Y32), at(Y33)]]), dir).slice(dir.length + 1, dir.length + 33);
  };
  assert.notEqual(inDir("/gnu/store"), inDir("/nix/store"));
});

test("refused replacements: unequal lengths (with the hint), identity, conflicts, chains, the original itself, other store dirs", () => {
  const y310 = path("y-3.10");
  const len = cprFailure(() => graftPath(X, new Map([[path("y-3.9"), y310]])));
  assert.equal(len.code, "graft.length");
  assert.match(len.message, /basenames are 38 and 39 characters long/);
  assert.match(len.hint ?? "", /"y-3\.9" has 5 characters, "y-3\.10" has 6/);
  assert.equal(cprFailure(() => graftPath(X, new Map([[Y32, Y32]]))).code, "graft.same");
  assert.equal(
    cprFailure(() =>
      canonicalReplacements([
        { old: Y32, new: Y33 },
        { old: Y32, new: path("y-3.4") },
      ]),
    ).code,
    "graft.conflict",
  );
  assert.equal(
    cprFailure(() =>
      canonicalReplacements([
        { old: Y32, new: Y33 },
        { old: Y33, new: path("y-3.4") },
      ]),
    ).code,
    "graft.chain",
  );
  assert.equal(
    cprFailure(() =>
      canonicalReplacements([
        { old: Y32, new: Y33 },
        { old: Y33, new: Y32 },
      ]),
    ).code,
    "graft.chain",
  );
  assert.equal(cprFailure(() => graftPath(Y32, new Map([[Y32, Y33]]))).code, "graft.self");
  assert.equal(cprFailure(() => canonicalReplacements(new Map())).code, "graft.empty");
  assert.equal(
    cprFailure(() => graftPath(X, new Map([["/gnu/store/0c7n7g2ii1k4m0yrqqmrvm5ycfz8b3k4-y-3.2", Y33]]))).code,
    "narinfo.store-path",
  );
});

test("planGraft: members that reach an old path get graft paths, dependencies first; rewrites and references follow", () => {
  const L = path("libz-1.0"); // refers to y
  const M = path("libm-1.0"); // refers to nothing that changes
  const Top = path("app-1.0"); // refers to itself, L, M and z
  const closure = [
    { path: Top, references: [Top, L, M, Z1] },
    { path: L, references: [Y32] },
    { path: M, references: [] },
    { path: Y32, references: [] },
    { path: Z1, references: [parseStorePath(M).basename] }, // basenames are accepted too
  ];
  const plan = planGraft(
    closure,
    new Map([
      [Y32, Y33],
      [Z1, Z2],
      [path("w-1"), path("w-2")],
    ]),
  );
  assert.deepEqual(
    plan.members.map((m) => m.original),
    [L, Top],
  );
  const [l, top] = plan.members;
  // A member's descriptor lists only the replacements in its closure.
  assert.equal(l!.graft, graftPath(L, new Map([[Y32, Y33]])));
  assert.equal(
    top!.graft,
    graftPath(
      Top,
      new Map([
        [Y32, Y33],
        [Z1, Z2],
      ]),
    ),
  );
  const base = (p: string): string => parseStorePath(p).basename;
  const hash = (p: string): string => parseStorePath(p).hash;
  const pairs = (m: { rewrites: readonly { from: string; to: string }[] }): string[] => m.rewrites.map((r) => `${r.from}>${r.to}`).sort();
  // Same name (a grafted member): the hash part; another name (y-3.2 → y-3.3): the basename and the hash part.
  assert.deepEqual(
    l!.rewrites.map((r) => r.from),
    [...l!.rewrites.map((r) => r.from)].sort(),
    "sorted by from",
  );
  assert.deepEqual(pairs(l!), [`${hash(L)}>${hash(l!.graft)}`, `${hash(Y32)}>${hash(Y33)}`, `${base(Y32)}>${base(Y33)}`].sort());
  assert.deepEqual(
    pairs(top!),
    [`${hash(Top)}>${hash(top!.graft)}`, `${hash(L)}>${hash(l!.graft)}`, `${hash(Z1)}>${hash(Z2)}`, `${base(Z1)}>${base(Z2)}`].sort(),
  );
  assert.deepEqual(top!.references, [top!.graft, l!.graft, M, Z2].sort());
  assert.deepEqual(plan.unused, [path("w-1")]);
  assert.equal(plan.remap.get(Top), top!.graft);
  assert.equal(plan.remap.get(Y32), Y33);
  assert.equal(plan.remap.has(M), false);
});

test("planGraft refuses an incomplete closure and a reference cycle", () => {
  const A = path("a-1");
  const B = path("b-1");
  const missing = cprFailure(() => planGraft([{ path: A, references: [B] }], new Map([[Y32, Y33]])));
  assert.equal(missing.code, "graft.closure");
  assert.match(missing.message, new RegExp(`${A} refers to ${B}, which is not in the closure given`));
  const cycle = cprFailure(() =>
    planGraft(
      [
        { path: A, references: [B] },
        { path: B, references: [A, Y32] },
      ],
      new Map([[Y32, Y33]]),
    ),
  );
  assert.equal(cycle.code, "graft.cycle");
});

test("the worked example in docs/grafts.md is what graftDescriptor and graftPath compute", () => {
  const doc = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../../../docs/grafts.md"), "utf8");
  const m = /```\n(cpr-graft-v1\noriginal \S+\n(?:replace \S+ \S+\n)+)```\n\nhas sha256 `([0-9a-f]{64})` and gives\n`(\S+)`/.exec(doc);
  assert.ok(m, "docs/grafts.md has the example");
  const [, descriptor, hex, expectedPath] = m;
  const lines = descriptor!.trimEnd().split("\n");
  const original = lines[1]!.slice("original ".length);
  const replacements = new Map(lines.slice(2).map((l) => l.split(" ").slice(1) as [string, string]));
  assert.equal(graftDescriptor(original, replacements), descriptor);
  assert.equal(createHash("sha256").update(descriptor!).digest("hex"), hex);
  assert.equal(graftPath(original, replacements), expectedPath);
});
