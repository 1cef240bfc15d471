import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizeRelativePath, parseAtomManifest, type AtomManifest, type ManifestMode } from "../../src/protocol/atom-manifest.js";
import { cprFailureWith } from "../support/assert.js";

/** The upstream atom protocol's atom.toml example (docs/formats.md §6.1 restates its rules), verbatim. */
const SPEC_ATOM = `[package]
label = "foo"
version = "0.1.0"

[package.meta]
description = "Example atom."
tags = ["example", "lang:nix"]

[package.sets]
atom = "https://github.com/ekala-project/atom"
home = ["::", "https://example.org/me/home.git"]

[compose.with.atom-nix]
from = "atom"
version = "^0.4"
entry = "src"

[deps.from.home]
hosts = "^0.1.0"

[deps.direct.nix]
nixpkgs = { git = "https://github.com/nixos/nixpkgs", ref = "nixpkgs-unstable" }
tool = { git = "https://example.org/tool.git", version = "^2" }
nixpkgs-unstable.tar = "https://github.com/nixos/nixpkgs/archive/nixpkgs-unstable.tar.gz"
patch.url = "https://example.org/fix.patch"
zlib-1 = { build = "https://www.zlib.net/zlib-1.3.1.tar.gz", unpack = true }
`;

const PKG = '[package]\nlabel = "foo"\nversion = "0.1.0"\n';
const SETS = '\n[package.sets]\natom = "https://github.com/ekala-project/atom"\nhome = "::"\n';
const COMPOSE = '\n[compose.with.atom-nix]\nfrom = "atom"\n';

const atom = (text: string, mode: ManifestMode = "full"): AtomManifest => parseAtomManifest(text, "a/atom.toml", mode);
const fails = (text: string, code: string, message?: RegExp, mode: ManifestMode = "full") =>
  cprFailureWith(() => atom(text, mode), code, message);

test("the upstream atom.toml example parses completely (docs/formats.md §6.1)", () => {
  const m = atom(SPEC_ATOM);
  assert.equal(m.package.label, "foo");
  assert.equal(m.package.version.text, "0.1.0");
  assert.equal(m.package.description, "Example atom.");
  assert.deepEqual(m.package.tags, ["example", "lang:nix"]);
  assert.deepEqual(m.package.sets, {
    atom: ["https://github.com/ekala-project/atom"],
    home: ["::", "https://example.org/me/home.git"],
  });
  assert.ok(m.compose && m.compose.kind === "with");
  assert.equal(m.compose.label, "atom-nix");
  assert.equal(m.compose.from, "atom");
  assert.equal(m.compose.requirement.text, "^0.4");
  assert.equal(m.compose.entry, "src");
  assert.deepEqual(Object.keys(m.depsFrom), ["home"]);
  assert.equal(m.depsFrom.home?.hosts?.text, "^0.1.0");
  const direct = m.directNix.map((d) => ({
    ...d,
    requirement: "requirement" in d ? (d.requirement?.text ?? null) : undefined,
  }));
  assert.deepEqual(direct, [
    {
      kind: "git",
      name: "nixpkgs",
      url: "https://github.com/nixos/nixpkgs",
      ref: "nixpkgs-unstable",
      requirement: null,
      fromVersion: null,
    },
    { kind: "git", name: "tool", url: "https://example.org/tool.git", ref: null, requirement: "^2", fromVersion: null },
    {
      kind: "tar",
      name: "nixpkgs-unstable",
      url: "https://github.com/nixos/nixpkgs/archive/nixpkgs-unstable.tar.gz",
      fromVersion: null,
      requirement: undefined,
    },
    { kind: "url", name: "patch", url: "https://example.org/fix.patch", fromVersion: null, requirement: undefined },
    {
      kind: "build",
      name: "zlib-1",
      url: "https://www.zlib.net/zlib-1.3.1.tar.gz",
      unpack: true,
      fromVersion: null,
      requirement: undefined,
    },
  ]);
});

test("publish mode reads only [package]: no [compose], unknown tables and broken deps are fine", () => {
  const text = PKG + "\n[locker.nix-lock]\nfoo = 1\n\n[compose]\nnonsense = true\n\n[deps.whatever]\nx = 1\n\n[something-else]\n";
  const m = atom(text, "publish");
  assert.equal(m.package.label, "foo");
  assert.equal(m.compose, null);
  assert.deepEqual(m.depsFrom, {});
  assert.deepEqual(m.directNix, []);
  assert.equal(atom(PKG, "publish").compose, null);
  // the same files are refused by the full reader
  fails(PKG, "manifest.missing", /no \[compose\] table/);
  const e = fails(text, "manifest.unknown-key", /"locker"/);
  assert.equal(e.where, "a/atom.toml:5:1");
});

test("mode defaults to full", () => {
  cprFailureWith(() => parseAtomManifest(PKG, "x/atom.toml"), "manifest.missing", /\[compose\]/);
});

test("[package] version must be strict SemVer, with position and hint", () => {
  const e = fails('[package]\nlabel = "foo"\nversion = "v1"\n', "manifest.invalid-version", undefined, "publish");
  assert.equal(e.message, '[package].version must be a SemVer version like 1.2.3, got "v1"');
  assert.equal(e.where, "a/atom.toml:3:1");
  for (const v of ["1.2", "01.2.3", "1.2.3.4", "v1.2.3", "", " 1.2.3", "1.2.3-"]) {
    fails(`[package]\nlabel = "foo"\nversion = ${JSON.stringify(v)}\n`, "manifest.invalid-version", undefined, "publish");
  }
  const ok = atom('[package]\nlabel = "foo"\nversion = "1.0.0-rc.1+build.5"\n', "publish");
  assert.equal(ok.package.version.text, "1.0.0-rc.1+build.5");
  fails('[package]\nlabel = "foo"\nversion = 1\n', "manifest.type", /\[package\]\.version must be a string, got 1/, "publish");
});

test("[package] label is validated and NFKC-normalised", () => {
  assert.equal(atom('[package]\nlabel = "\uFB01le"\nversion = "0.1.0"\n', "publish").package.label, "file");
  assert.equal(atom('[package]\nlabel = "ひらがな"\nversion = "0.1.0"\n', "publish").package.label, "ひらがな");
  const e = cprFailureWith(() => atom('[package]\nversion = "0.1.0"\nlabel = "-atom"\n', "publish"), "label.invalid-start");
  assert.equal(e.where, "a/atom.toml:3:1");
  cprFailureWith(() => atom('[package]\nlabel = "a b"\nversion = "0.1.0"\n', "publish"), "label.invalid-chars");
});

test("[package] requires label and version and rejects unknown keys and a misplaced description", () => {
  fails('[package]\nversion = "0.1.0"\n', "manifest.missing", /label is missing/, "publish");
  fails('[package]\nlabel = "foo"\n', "manifest.missing", /version is missing/, "publish");
  fails("[other]\n", "manifest.missing", /no \[package\] table/, "publish");
  fails('package = "foo"\n', "manifest.type", /\[package\] must be a table/, "publish");
  const d = fails(PKG + 'description = "x"\n', "manifest.misplaced-key", /belongs in \[package\.meta\]/, "publish");
  assert.equal(d.where, "a/atom.toml:4:1");
  const u = fails(PKG + "homepage = 1\n", "manifest.unknown-key", /"homepage" in \[package\]/, "publish");
  assert.equal(u.where, "a/atom.toml:4:1");
});

test("[package.meta]: description and tags; other keys tolerated; tags are Tags", () => {
  const m = atom(PKG + '[package.meta]\ndescription = "d"\ntags = ["a.b", "lang:nix"]\nhomepage = "x"\n', "publish");
  assert.equal(m.package.description, "d");
  assert.deepEqual(m.package.tags, ["a.b", "lang:nix"]);
  const e = cprFailureWith(() => atom(PKG + '[package.meta]\ntags = [\n  "ok",\n  "a..b",\n]\n', "publish"), "tag.double-dot");
  assert.equal(e.where, "a/atom.toml:7:3", "points at the offending element");
  fails(PKG + "[package.meta]\ntags = 3\n", "manifest.type", /array of strings/, "publish");
  fails(PKG + "[package.meta]\ndescription = 3\n", "manifest.type", /description must be a string/, "publish");
});

test("[package.sets]: mirror or array, tags normalised, duplicates dropped, bad values rejected", () => {
  const m = atom(PKG + '[package.sets]\na = "::"\n"b.c" = ["::", "git@example.org:me/x.git", "::"]\n', "publish");
  assert.deepEqual(m.package.sets, { a: ["::"], "b.c": ["::", "git@example.org:me/x.git"] });
  fails(PKG + "[package.sets]\na = []\n", "manifest.type", /at least one mirror/, "publish");
  fails(PKG + '[package.sets]\na = "has space"\n', "manifest.bad-mirror", undefined, "publish");
  fails(PKG + "[package.sets]\na = 1\n", "manifest.type", undefined, "publish");
  cprFailureWith(() => atom(PKG + '[package.sets]\n"-x" = "::"\n', "publish"), "label.invalid-start");
  fails(PKG + '[package.sets]\n"\uFB01" = "::"\nfi = "::"\n', "manifest.duplicate", /"fi" twice/, "publish");
});

test("TOML syntax errors carry the parser's line and column", () => {
  const e = fails('[package]\nlabel = "foo"\nversion = \n', "manifest.syntax", /not valid TOML: invalid value/, "publish");
  assert.equal(e.where, "a/atom.toml:3:11");
  assert.ok(!e.message.includes("\n"), "one-line message");
});

test("full mode: unknown top-level keys are named", () => {
  const e = fails(PKG + SETS + COMPOSE + "\n[locker]\nx = 1\n", "manifest.unknown-key", /"locker" at the top level/);
  assert.match(e.hint ?? "", /\[package\], \[compose\] and \[deps\]/);
});

test("[compose.with]: one composer, from must be a set, version defaults to *, entry defaults to .", () => {
  const m = atom(PKG + SETS + COMPOSE);
  assert.deepEqual(m.compose && m.compose.kind === "with" ? { ...m.compose, requirement: m.compose.requirement.text } : null, {
    kind: "with",
    label: "atom-nix",
    from: "atom",
    requirement: "*",
    entry: ".",
  });
  const entry = atom(PKG + SETS + COMPOSE + 'entry = "./src/nix/"\n').compose;
  assert.equal(entry?.kind === "with" ? entry.entry : null, "src/nix");
  fails(PKG + SETS + COMPOSE + 'entry = "../x"\n', "manifest.bad-path");
  fails(PKG + SETS + COMPOSE + 'entry = "/abs"\n', "manifest.bad-path");
  const unknown = fails(
    PKG + SETS + '\n[compose.with.atom-nix]\nfrom = "nowhere"\n',
    "manifest.unknown-set",
    /"nowhere", which is not a key of \[package\.sets\]/,
  );
  assert.equal(unknown.where, "a/atom.toml:10:1");
  assert.match(unknown.hint ?? "", /"atom", "home"/);
  fails(PKG + SETS + "\n[compose.with.atom-nix]\n", "manifest.missing", /from is missing/);
  fails(PKG + SETS + COMPOSE + '\n[compose.with.other]\nfrom = "atom"\n', "manifest.compose", /exactly one composer, found 2/);
  fails(PKG + SETS + COMPOSE + "extra = 1\n", "manifest.unknown-key", /"extra"/);
  fails(
    PKG + SETS + COMPOSE + 'version = "^1 || ^2"\n',
    "manifest.invalid-requirement",
    /\[compose\.with\.atom-nix\]\.version must be a version requirement/,
  );
  cprFailureWith(() => atom(PKG + SETS + '\n[compose.with."1bad"]\nfrom = "atom"\n'), "label.invalid-start");
});

test('[compose]: exactly one of with/as; [compose.as] nix or static = "config"', () => {
  fails(PKG + SETS + COMPOSE + '\n[compose.as]\nnix = "x.nix"\n', "manifest.compose", /exactly one of/);
  fails(PKG + "\n[compose]\n", "manifest.compose", /exactly one of/);
  fails(PKG + "\n[compose]\nfoo = 1\n", "manifest.unknown-key", /"foo" in \[compose\]/);
  assert.deepEqual(atom(PKG + '\n[compose.as]\nnix = "./default.nix"\n').compose, { kind: "nix", path: "default.nix" });
  assert.deepEqual(atom(PKG + '\n[compose.as]\nstatic = "config"\n').compose, { kind: "static" });
  fails(PKG + '\n[compose.as]\nstatic = "other"\n', "manifest.compose", /must be "config", got "other"/);
  fails(PKG + '\n[compose.as]\nstatic = "config"\nnix = "x"\n', "manifest.compose", /exactly one of nix or static/);
  fails(PKG + "\n[compose.as]\n", "manifest.compose");
  fails(PKG + '\n[compose.as]\nflake = "x"\n', "manifest.unknown-key", /"flake"/);
  fails(PKG + '\n[compose.as]\nnix = "../up.nix"\n', "manifest.bad-path");
});

test("static atoms may not declare dependencies", () => {
  const base = PKG + SETS + '\n[compose.as]\nstatic = "config"\n';
  assert.equal(atom(base + "\n[deps]\n").compose?.kind, "static");
  fails(base + '\n[deps.from.home]\nhosts = "^0.1"\n', "manifest.static-deps");
  fails(base + '\n[deps.direct.nix]\npatch.url = "https://x/y"\n', "manifest.static-deps");
});

test("[deps.from]: tags must be set keys; labels and requirements validated", () => {
  const base = PKG + SETS + COMPOSE;
  const m = atom(base + '\n[deps.from.home]\nhosts = "^0.1.0"\n"\uFB01x" = ">=1.2, <1.5"\n');
  assert.deepEqual(Object.keys(m.depsFrom.home ?? {}), ["hosts", "fix"]);
  assert.equal(m.depsFrom.home?.fix?.text, ">=1.2, <1.5");
  const e = fails(
    base + '\n[deps.from.elsewhere]\nhosts = "^0.1.0"\n',
    "manifest.unknown-set",
    /\[deps\.from\.elsewhere\] names the set "elsewhere"/,
  );
  assert.equal(e.where, "a/atom.toml:12:1");
  const r = fails(base + '\n[deps.from.home]\nhosts = "^1 || ^2"\n', "manifest.invalid-requirement");
  assert.match(r.message, /\[deps\.from\.home\]\.hosts must be a version requirement/);
  assert.equal(r.where, "a/atom.toml:13:1");
  fails(base + "\n[deps.from.home]\nhosts = 1\n", "manifest.type");
  cprFailureWith(() => atom(base + '\n[deps.from.home]\n"_x" = "^1"\n'), "label.invalid-start");
  fails(base + '\n[deps.from.home]\nfi = "^1"\n"\uFB01" = "^2"\n', "manifest.duplicate");
  fails(base + "\n[deps.other]\nx = 1\n", "manifest.unknown-key", /"other" in \[deps\]/);
  fails(base + "\n[deps.direct.npm]\nx = 1\n", "manifest.unknown-key", /"npm" in \[deps\.direct\]/);
});

test("[deps.direct.nix]: the four forms and their key rules", () => {
  const base = PKG + SETS + COMPOSE + "\n[deps.direct.nix]\n";
  const one = (line: string) => atom(base + line + "\n").directNix[0];
  assert.deepEqual(one('a.url = "https://x/a"'), { kind: "url", name: "a", url: "https://x/a", fromVersion: null });
  assert.deepEqual(one('a = { tar = "https://x/a.tgz" }'), {
    kind: "tar",
    name: "a",
    url: "https://x/a.tgz",
    fromVersion: null,
  });
  assert.deepEqual(one('a.build = "https://x/a.tgz"'), {
    kind: "build",
    name: "a",
    url: "https://x/a.tgz",
    unpack: false,
    fromVersion: null,
  });
  assert.deepEqual(one('a = { build = "https://x/a.tgz", unpack = false }'), {
    kind: "build",
    name: "a",
    url: "https://x/a.tgz",
    unpack: false,
    fromVersion: null,
  });
  assert.deepEqual(one('a.git = "https://x/a.git"'), {
    kind: "git",
    name: "a",
    url: "https://x/a.git",
    ref: null,
    requirement: null,
    fromVersion: null,
  });
  assert.deepEqual(one('a = { git = "https://x/a.git", ref = "HEAD" }'), {
    kind: "git",
    name: "a",
    url: "https://x/a.git",
    ref: null,
    requirement: null,
    fromVersion: null,
  });
  assert.equal(
    (one('a = { git = "https://x/a.git", version = "~1.2.3" }') as { requirement: { text: string } }).requirement.text,
    "~1.2.3",
  );

  fails(
    base + 'a = { url = "https://x", tar = "https://y" }\n',
    "manifest.direct-dep",
    /exactly one of url, tar, build or git, found "url", "tar"/,
  );
  fails(base + 'a = { ref = "main" }\n', "manifest.direct-dep", /found none/);
  const unpack = fails(base + 'a = { url = "https://x", unpack = true }\n', "manifest.unknown-key", /"unpack"/);
  assert.equal(unpack.where, "a/atom.toml:13:26", "points inside the inline table");
  fails(base + 'a = { tar = "https://x", ref = "main" }\n', "manifest.unknown-key", /"ref"/);
  fails(base + 'a = { git = "https://x", ref = "main", version = "^1" }\n', "manifest.direct-dep", /ref or version, not both/);
  fails(base + 'a = { git = "https://x", ref = "" }\n', "manifest.direct-dep");
  fails(base + 'a = { build = "https://x", unpack = "yes" }\n', "manifest.type", /true or false/);
  fails(base + 'a.url = ""\n', "manifest.direct-dep", /must not be empty/);
  fails(base + "a.url = 3\n", "manifest.type");
  fails(base + 'a = "https://x"\n', "manifest.type", /must be a table/);
  cprFailureWith(() => atom(base + '"9a".url = "https://x"\n'), "label.invalid-start");
  fails(base + 'a = { git = "https://x", version = "1.0.0 - 2.0.0" }\n', "manifest.invalid-requirement");
});

test("[deps.direct.nix] from_version names an atom dependency and needs __VERSION__ in the URL", () => {
  const base = PKG + SETS + COMPOSE + '\n[deps.from.home]\nhosts = "^0.1"\n\n[deps.direct.nix]\n';
  const d = atom(base + 'src = { tar = "https://x/hosts-__VERSION__.tar.gz", from_version = ["home", "hosts"] }\n').directNix[0];
  assert.deepEqual(d, {
    kind: "tar",
    name: "src",
    url: "https://x/hosts-__VERSION__.tar.gz",
    fromVersion: ["home", "hosts"],
  });
  fails(
    base + 'src = { tar = "https://x/hosts.tar.gz", from_version = ["home", "hosts"] }\n',
    "manifest.direct-dep",
    /must contain __VERSION__/,
  );
  fails(
    base + 'src = { tar = "https://x/__VERSION__", from_version = ["atom", "hosts"] }\n',
    "manifest.direct-dep",
    /not a dependency in \[deps\.from\.atom\]/,
  );
  fails(base + 'src = { tar = "https://x/__VERSION__", from_version = ["nope", "hosts"] }\n', "manifest.unknown-set");
  fails(base + 'src = { tar = "https://x/__VERSION__", from_version = ["home"] }\n', "manifest.direct-dep", /pair/);
  fails(base + 'src = { tar = "https://x/__VERSION__", from_version = "home.hosts" }\n', "manifest.type");
});

test("semantic errors point at the key's line, also for quoted and dotted keys", () => {
  const text = PKG + SETS + COMPOSE + '\n[deps.direct.nix]\n"quoted" = { git = "https://x", ref = "a" }\npatch.url = 1\n';
  const e = fails(text, "manifest.type");
  assert.equal(e.where, "a/atom.toml:14:1");
  const q = fails(
    PKG + SETS + COMPOSE + '\n[deps.direct.nix]\n"quoted" = { git = "https://x", ref = "a", version = "^1" }\n',
    "manifest.direct-dep",
  );
  assert.equal(q.where, "a/atom.toml:13:1");
  // a key that only appears inside a multi-line string is not mistaken for a real one
  const ml = fails(
    '[package]\nlabel = "foo"\nversion = "0.1.0"\n[package.meta]\ndescription = """\n[package.x]\n"""\n[package.x]\n',
    "manifest.unknown-key",
    /"x"/,
    "publish",
  );
  assert.equal(ml.where, "a/atom.toml:8:1");
});

test("normalizeRelativePath", () => {
  assert.deepEqual(normalizeRelativePath("./a//b/./c/"), { ok: true, path: "a/b/c" });
  assert.deepEqual(normalizeRelativePath("a/.."), { ok: true, path: "" });
  assert.deepEqual(normalizeRelativePath("a/../.."), { ok: false, reason: "escapes" });
  assert.deepEqual(normalizeRelativePath("/a"), { ok: false, reason: "absolute" });
});
