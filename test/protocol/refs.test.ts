import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  atomRef,
  compareUtf8,
  groupListing,
  INIT_REF,
  isValidRefName,
  listingPrefixes,
  manifestRef,
  originRef,
  type ListedRef,
} from "../../src/protocol/refs.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const D = "d".repeat(40);
const E = "e".repeat(40);

test("ref builders follow docs/formats.md §8.1", () => {
  assert.equal(atomRef("ひらがな", "0.1.0"), "refs/eka/atoms/ひらがな/0.1.0");
  assert.equal(manifestRef("foo", "1.2.3-rc.1"), "refs/eka/meta/foo/1.2.3-rc.1/manifest");
  assert.equal(originRef("foo", "1.2.3"), "refs/eka/meta/foo/1.2.3/origin");
});

/** [name, expected]; every expectation is also checked against real `git check-ref-format`. */
const REF_NAMES: Array<[string, boolean]> = [
  ["refs/eka/atoms/foo/1.0.0", true],
  ["refs/eka/atoms/ひらがな/0.1.0", true],
  ["refs/eka/atoms/foo/1.0.0-lock", true],
  ["refs/eka/atoms/foo/1.0.0-x.lock", false],
  ["refs/eka/atoms/foo/1.0.0+build.lock", false],
  ["refs/eka/atoms/foo/1.0.0-rc.1+build.5", true],
  ["refs/a/x.lock.y", true],
  ["refs/a/b.lock/c", false],
  ["refs/a/.lock", false],
  ["refs/a/.x", false],
  ["refs/a/x.", false],
  ["refs/a/x./y", true],
  ["refs/a/..", false],
  ["refs/a/x..y", false],
  ["refs/a//b", false],
  ["/refs/a", false],
  ["refs/a/", false],
  ["refs", false],
  ["", false],
  ["@", false],
  ["refs/a/@", true],
  ["refs/a@b", true],
  ["refs/a/b@{c", false],
  ["refs/a/b{c", true],
  ["refs/a/b c", false],
  ["refs/a/b\tc", false],
  ["refs/a/b\x7fc", false],
  ["refs/a/b\x01c", false],
  ["refs/a/b~1", false],
  ["refs/a/b^1", false],
  ["refs/a/b:c", false],
  ["refs/a/b?", false],
  ["refs/a/b*", false],
  ["refs/a/b[0]", false],
  ["refs/a/b\\c", false],
  ["refs/a/-b", true],
  ["refs/a/b]", true],
  ["refs/a/b!#$%&'()", true],
  ["refs/eka/atoms/кириллица/1.0.0-alpha.beta", true],
  ["refs/eka/atoms/\u{10000}/1.0.0", true],
];

test("isValidRefName: expectations", () => {
  for (const [name, ok] of REF_NAMES) assert.equal(isValidRefName(name), ok, JSON.stringify(name));
  assert.equal(isValidRefName("refs/a/\uD800"), false, "a lone surrogate has no UTF-8 form");
});

test("isValidRefName agrees with real git check-ref-format", () => {
  for (const [name] of REF_NAMES) {
    if (name === "") continue; // git treats an empty argv differently from an empty ref
    const r = spawnSync("git", ["check-ref-format", name]);
    assert.ok(r.status === 0 || r.status === 1, `git check-ref-format ran for ${JSON.stringify(name)}`);
    assert.equal(isValidRefName(name), r.status === 0, `git says ${r.status === 0 ? "valid" : "invalid"}: ${JSON.stringify(name)}`);
  }
});

test("compareUtf8 is byte order, not UTF-16 order", () => {
  // U+FA0E is one UTF-16 unit above the surrogates; U+10000 is a surrogate pair. JS `<` says U+10000 sorts first.
  assert.ok("\u{10000}" < "\uFA0E");
  assert.ok(compareUtf8("\uFA0E", "\u{10000}") < 0);
  assert.ok(compareUtf8("Z", "a") < 0);
  assert.equal(compareUtf8("é", "é"), 0);
});

test("groupListing: atoms with meta refs, peeled ids, init root", () => {
  const refs: ListedRef[] = [
    { name: "refs/eka/atoms/foo/0.2.0", oid: A, peeled: B },
    { name: "refs/eka/atoms/foo/0.1.0", oid: C },
    { name: "refs/eka/meta/foo/0.1.0/manifest", oid: D },
    { name: "refs/eka/meta/foo/0.1.0/origin", oid: E },
    { name: "refs/eka/yank/foo/0.2.0", oid: D },
    { name: "refs/eka/yank/foo/not-a-version", oid: D },
    { name: INIT_REF, oid: A },
    { name: "refs/heads/main", oid: E },
  ];
  const set = groupListing(refs);
  assert.equal(set.root, A);
  assert.equal(set.rootIsTag, false);
  assert.equal(set.skipped, 1, "the malformed yank name");
  assert.deepEqual(set.atoms, [
    { label: "foo", version: "0.1.0", rev: C, manifest: D, origin: E, format: "pre1", yank: null },
    { label: "foo", version: "0.2.0", rev: B, manifest: null, origin: null, format: "pre1", yank: D },
  ]);
});

test("groupListing: no init ref means root null; a peeled init is a tag", () => {
  assert.deepEqual(groupListing([]), { root: null, rootIsTag: false, atoms: [], skipped: 0 });
  const tagged = groupListing([{ name: INIT_REF, oid: A, peeled: B }]);
  assert.equal(tagged.root, A, "the direct value, not the peeled one");
  assert.equal(tagged.rootIsTag, true);
});

test("groupListing: sorts labels in UTF-8 byte order, then by semver precedence", () => {
  const names = [
    "refs/eka/atoms/foo/1.10.0",
    "refs/eka/atoms/\u{10000}/1.0.0",
    "refs/eka/atoms/foo/1.2.0",
    "refs/eka/atoms/\uFA0E/1.0.0",
    "refs/eka/atoms/foo/1.0.0",
    "refs/eka/atoms/foo/1.0.0-rc.1",
    "refs/eka/atoms/foo/1.0.0-alpha",
    "refs/eka/atoms/Zed/2.0.0",
    "refs/eka/atoms/ひらがな/0.1.0",
  ];
  const set = groupListing(names.map((name) => ({ name, oid: A })));
  assert.equal(set.skipped, 0);
  assert.deepEqual(
    set.atoms.map((a) => `${a.label}@${a.version}`),
    [
      "Zed@2.0.0",
      "foo@1.0.0-alpha",
      "foo@1.0.0-rc.1",
      "foo@1.0.0",
      "foo@1.2.0",
      "foo@1.10.0",
      "ひらがな@0.1.0",
      "\uFA0E@1.0.0",
      "\u{10000}@1.0.0",
    ],
  );
});

test("groupListing: invalid labels, versions and shapes are skipped and counted, never thrown", () => {
  const bad = [
    "refs/eka/atoms/-atom/1.0.0", // invalid start
    "refs/eka/atoms/'atom/1.0.0",
    "refs/eka/atoms/a b/1.0.0",
    "refs/eka/atoms/\uFB01le/1.0.0", // "ﬁle": valid after NFKC, but refs hold the normalised label
    "refs/eka/atoms/foo/v1.0.0",
    "refs/eka/atoms/foo/01.0.0",
    "refs/eka/atoms/foo/1.0",
    "refs/eka/atoms/foo",
    "refs/eka/atoms/foo/1.0.0/extra",
    "refs/eka/meta/foo/1.0.0/other",
    "refs/eka/meta/foo/1.0.0",
    "refs/eka/meta/foo/nope/origin",
    "refs/atoms/foo/1.0.0/weird",
    "refs/atoms/foo",
  ];
  const refs: ListedRef[] = bad.map((name) => ({ name, oid: A }));
  refs.push({ name: "refs/eka/atoms/foo/1.0.0", oid: B });
  refs.push({ name: "refs/tags/v1.0.0", oid: C }); // outside the atom prefixes: ignored, not counted
  const set = groupListing(refs);
  assert.equal(set.skipped, bad.length);
  assert.deepEqual(
    set.atoms.map((a) => `${a.label}@${a.version}`),
    ["foo@1.0.0"],
  );
});

test("groupListing: legacy layouts are read as legacy; pre1 wins for the same version", () => {
  const refs: ListedRef[] = [
    { name: "refs/atoms/old/0.1.0", oid: A }, // format 1
    { name: "refs/atoms/old/_specs/0.1.0", oid: B },
    { name: "refs/atoms/old/_srcs/0.1.0", oid: C },
    { name: "refs/atoms/mid/0.3.0/atom", oid: D, peeled: E }, // short-lived variant
    { name: "refs/atoms/mid/0.3.0/spec", oid: B },
    { name: "refs/atoms/mid/0.3.0/src", oid: C },
    { name: "refs/atoms/both/1.0.0", oid: A },
    { name: "refs/eka/atoms/both/1.0.0", oid: B },
    { name: "refs/eka/meta/both/1.0.0/origin", oid: C },
  ];
  const set = groupListing(refs);
  assert.equal(set.skipped, 0);
  assert.deepEqual(set.atoms, [
    { label: "both", version: "1.0.0", rev: B, manifest: null, origin: C, format: "pre1", yank: null },
    { label: "mid", version: "0.3.0", rev: E, manifest: null, origin: null, format: "legacy", yank: null },
    { label: "old", version: "0.1.0", rev: A, manifest: null, origin: null, format: "legacy", yank: null },
  ]);
  // order in the listing does not matter
  assert.deepEqual(groupListing([...refs].reverse()).atoms, set.atoms);
});

test("groupListing: the labels filter drops what the server sent beyond the request", () => {
  const refs: ListedRef[] = [
    { name: "refs/eka/atoms/foo/1.0.0", oid: A },
    { name: "refs/eka/atoms/bar/1.0.0", oid: B },
    { name: "refs/eka/atoms/ひらがな/1.0.0", oid: C },
    { name: "refs/eka/atoms/-bad/1.0.0", oid: C },
  ];
  const set = groupListing(refs, ["foo", "ひらがな"]);
  assert.deepEqual(
    set.atoms.map((a) => a.label),
    ["foo", "ひらがな"],
  );
  assert.equal(set.skipped, 1);
});

test("groupListing: distinct build metadata are distinct refs, ordered deterministically", () => {
  const set = groupListing([
    { name: "refs/eka/atoms/foo/1.0.0+b", oid: A },
    { name: "refs/eka/atoms/foo/1.0.0+a", oid: B },
  ]);
  assert.deepEqual(
    set.atoms.map((a) => a.version),
    ["1.0.0+a", "1.0.0+b"],
  );
});

test("listingPrefixes", () => {
  assert.deepEqual(listingPrefixes(), ["refs/eka/atoms/", INIT_REF]);
  assert.deepEqual(listingPrefixes(undefined, { meta: true, legacy: true }), [
    "refs/eka/atoms/",
    "refs/eka/meta/",
    "refs/eka/yank/",
    "refs/atoms/",
    INIT_REF,
  ]);
  assert.deepEqual(listingPrefixes(["foo", "ひらがな", "foo"]), ["refs/eka/atoms/foo/", "refs/eka/atoms/ひらがな/", INIT_REF]);
  assert.deepEqual(listingPrefixes(["foo"], { meta: true, legacy: true }), [
    "refs/eka/atoms/foo/",
    "refs/eka/meta/foo/",
    "refs/eka/yank/foo/",
    "refs/atoms/foo/",
    INIT_REF,
  ]);
  assert.deepEqual(listingPrefixes([]), [INIT_REF]);
});
