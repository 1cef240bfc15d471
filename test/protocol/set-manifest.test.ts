import { test } from "node:test";
import assert from "node:assert/strict";
import { formatSetManifest, parseSetManifest } from "../../src/protocol/set-manifest.js";
import { cprFailureWith } from "../support/assert.js";

/** The upstream atom protocol's ekala.toml example (docs/formats.md §6.2), verbatim. */
const SPEC_SET = `[set]
packages = [
  "foo",
  "hosts",
  "tools/lint",
]

[metadata]
tags = ["example"]
`;

const NEW_SET = "[set]\npackages = []\n\n[metadata]\ntags = []\n";

const set = (text: string) => parseSetManifest(text, "ekala.toml");

test("the upstream ekala.toml example and a new set parse (docs/formats.md §6.2)", () => {
  assert.deepEqual(set(SPEC_SET), { packages: ["foo", "hosts", "tools/lint"], tags: ["example"] });
  assert.deepEqual(set(NEW_SET), { packages: [], tags: [] });
  assert.deepEqual(set("[set]\npackages = []\n"), { packages: [], tags: [] });
});

test("[set].packages are normalised", () => {
  const m = set('[set]\npackages = ["./foo/", "a//b", "a/./c", "x/../y", "deep/dir/"]\n');
  assert.deepEqual(m.packages, ["foo", "a/b", "a/c", "y", "deep/dir"]);
});

test("[set].packages may not escape, be the root, be absolute or repeat", () => {
  for (const p of ["..", "../x", "a/../../x"])
    cprFailureWith(() => set(`[set]\npackages = [${JSON.stringify(p)}]\n`), "manifest.bad-path", /escapes the repository/);
  for (const p of [".", "", "./", "a/.."])
    cprFailureWith(() => set(`[set]\npackages = [${JSON.stringify(p)}]\n`), "manifest.bad-path", /repository root/);
  cprFailureWith(() => set('[set]\npackages = ["/abs"]\n'), "manifest.bad-path", /must be relative/);
  const dup = cprFailureWith(() => set('[set]\npackages = [\n  "foo",\n  "bar",\n  "./foo/",\n]\n'), "manifest.duplicate", /"foo" twice/);
  assert.equal(dup.where, "ekala.toml:5:3", "points at the repeated entry");
});

test("ekala.toml structure errors", () => {
  cprFailureWith(() => set("[metadata]\ntags = []\n"), "manifest.missing", /no \[set\] table/);
  cprFailureWith(() => set("[set]\n"), "manifest.missing", /packages is missing/);
  const u = cprFailureWith(() => set("[set]\npackages = []\nmembers = []\n"), "manifest.unknown-key", /"members" in \[set\]/);
  assert.equal(u.where, "ekala.toml:3:1");
  cprFailureWith(() => set("[set]\npackages = []\n\n[workspace]\nx = 1\n"), "manifest.unknown-key", /"workspace" at the top level/);
  cprFailureWith(() => set('[set]\npackages = "foo"\n'), "manifest.type", /array of strings/);
  cprFailureWith(() => set("[set]\npackages = [1]\n"), "manifest.type");
  cprFailureWith(() => set("[set]\npackages = [\n"), "manifest.syntax");
});

test("[metadata]: tags are Tags, other keys ignored", () => {
  assert.deepEqual(set('[set]\npackages = []\n[metadata]\ntags = ["a:b", "x.y"]\nowner = "me"\n').tags, ["a:b", "x.y"]);
  cprFailureWith(() => set('[set]\npackages = []\n[metadata]\ntags = ["a..b"]\n'), "tag.double-dot");
  cprFailureWith(() => set('[set]\npackages = []\n[metadata]\ntags = ["-a"]\n'), "label.invalid-start");
  cprFailureWith(() => set("metadata = 1\n[set]\npackages = []\n"), "manifest.type", /\[metadata\] must be a table/);
});

test("formatSetManifest follows the docs/formats.md §6.2 writer rules", () => {
  assert.equal(formatSetManifest({ packages: [], tags: [] }), NEW_SET);
  assert.equal(formatSetManifest({ packages: ["foo", "hosts", "tools/lint"], tags: ["example"] }), SPEC_SET);
  assert.equal(formatSetManifest({ packages: ["one"], tags: [] }), '[set]\npackages = [\n  "one",\n]\n\n[metadata]\ntags = []\n');
  assert.equal(
    formatSetManifest({ packages: ['we"ird\\ひ'], tags: ["a", "b"] }),
    '[set]\npackages = [\n  "we\\"ird\\\\ひ",\n]\n\n[metadata]\ntags = [\n  "a",\n  "b",\n]\n',
  );
  for (const m of [
    { packages: ["a", "b/c", 'q"'], tags: ["x", "y:z"] },
    { packages: [], tags: [] },
  ]) {
    assert.deepEqual(set(formatSetManifest(m)), m, "round trip");
  }
});
