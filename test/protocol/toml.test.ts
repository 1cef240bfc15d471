import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { CprError } from "../../src/protocol/errors.js";
import {
  dottedKey,
  KeyLocator,
  keyPathText,
  parseTomlFile,
  scanKey,
  tableText,
  tomlBasicString,
  tomlKey,
  TomlReader,
  type KeyScan,
} from "../../src/protocol/toml.js";
import { cprFailure } from "../support/assert.js";

function keysOf(scan: KeyScan): string[] {
  assert.ok(scan.ok, scan.ok ? "" : `${scan.message} at ${scan.at}`);
  return scan.keys;
}

/** The key path smol-toml gives `<key> = 1`: the chain of single-key tables down to the value. */
function parsedPath(keyText: string): string[] {
  let node: unknown = parse(`${keyText} = 1`);
  const path: string[] = [];
  while (typeof node === "object" && node !== null) {
    const keys = Object.keys(node);
    assert.equal(keys.length, 1);
    path.push(keys[0]!);
    node = (node as Record<string, unknown>)[keys[0]!];
  }
  return path;
}

test("scanKey reads bare, quoted and dotted keys, with spaces or tabs around the dots", () => {
  assert.deepEqual(scanKey("foo-bar_1 = 2", 0), { ok: true, keys: ["foo-bar_1"], end: 9 });
  assert.deepEqual(scanKey("  a.b.c=1", 0), { ok: true, keys: ["a", "b", "c"], end: 7 }, "leading spaces skipped, end after the last part");
  assert.deepEqual(scanKey("[ a . \"b c\"\t.\t'd' ]", 1), { ok: true, keys: ["a", "b c", "d"], end: 17 });
  assert.deepEqual(scanKey('"" = 1', 0), { ok: true, keys: [""], end: 2 }, "an empty quoted key is a key");
  assert.deepEqual(scanKey("x = 'a.b'", 4), { ok: true, keys: ["a.b"], end: 9 }, "a dot inside quotes does not split");
  assert.deepEqual(keysOf(scanKey("1234 = 1", 0)), ["1234"], "digits only is a bare key");
});

test("scanKey reads TOML's escapes in basic quoted keys and none in literal ones", () => {
  const cases: [string, string][] = [
    ['"tab\\there"', "tab\there"],
    ['"q\\"uote"', 'q"uote'],
    ['"back\\\\slash"', "back\\slash"],
    ['"\\b\\f\\n\\r"', "\b\f\n\r"],
    ['"caf\\u00E9"', "café"],
    ['"smile\\U0001F600"', "smile😀"],
    ['"esc\\e"', "esc\x1b"],
    ['"hex\\x41"', "hexA"],
    ["'lit\\n\\u0041'", "lit\\n\\u0041"],
    ['"ünï ☃"', "ünï ☃"],
  ];
  for (const [text, key] of cases) {
    assert.deepEqual(keysOf(scanKey(text, 0)), [key], text);
    assert.deepEqual(parsedPath(text), [key], `smol-toml agrees on ${text}`);
  }
});

test("scanKey rejects what TOML rejects, pointing at the offending character", () => {
  const cases: [string, RegExp, number][] = [
    ['"bad\\q"', /invalid escape "\\q"/, 4],
    ['"sur\\uD800"', /Unicode scalar value/, 4],
    ['"big\\U00110000"', /Unicode scalar value/, 4],
    ['"short\\u12"', /4 hex digits/, 6],
    ['"open', /unterminated quoted key/, 0],
    ["'open", /unterminated quoted key/, 0],
    ["ひらがな", /expected a key/, 0],
    ["a.", /expected a key/, 2],
    ["a..b", /expected a key/, 2],
    ['"""multi"""', /multi-line string cannot be a key/, 0],
    ['"ctl\u0001"', /control character/, 4],
    ["= 1", /expected a key/, 0],
  ];
  for (const [text, message, at] of cases) {
    const scan = scanKey(text, 0);
    assert.ok(!scan.ok, `${text} is not a key`);
    assert.match(scan.message, message, text);
    assert.equal(scan.at, at, `${text}: position`);
    assert.throws(() => parse(`${text} = 1`), `smol-toml rejects ${text} too`);
  }
});

test("tomlKey writes bare keys bare and quotes the rest; scanKey and smol-toml read them back", () => {
  assert.equal(tomlKey("foo-bar_1"), "foo-bar_1");
  assert.equal(tomlKey("a b"), '"a b"');
  assert.equal(tomlKey(""), '""');
  const keys = ["plain", "", "a b", "dot.ted", 'quo"te', "back\\slash", "tab\there", "nl\nx", "\u0000ctl\u007f", "ünï", "😀", "1.2", "'"];
  for (const key of keys) {
    assert.deepEqual(keysOf(scanKey(tomlKey(key), 0)), [key], JSON.stringify(key));
  }
  const path = ["deps", "from", "my set", "ünï"];
  assert.equal(dottedKey(path), 'deps.from."my set"."ünï"');
  assert.deepEqual(keysOf(scanKey(dottedKey(path), 0)), path);
  assert.deepEqual(parsedPath(dottedKey(path)), path);
  assert.deepEqual(parsedPath(dottedKey(keys)), keys, "smol-toml reads every quoted key back");
});

test("tomlBasicString round-trips through smol-toml", () => {
  for (const s of ["", "plain", 'q"uote', "back\\slash", "\t\n\r\b\f", "\u0000\u001f\u007f", "ünï ☃ 😀", "__VERSION__"]) {
    assert.equal(parse(`x = ${tomlBasicString(s)}`).x, s, JSON.stringify(s));
  }
});

test("keys and tables are named in messages as TOML writes them", () => {
  assert.equal(keyPathText(["package", "version"]), "[package].version");
  assert.equal(keyPathText(["package"]), "[package]");
  assert.equal(keyPathText(["deps", "from", "my set", "x"]), '[deps.from."my set"].x');
  assert.equal(keyPathText(["deps", 1, "hash"]), "[[deps]] #2 hash");
  assert.equal(tableText([]), "the top level");
  assert.equal(tableText(["compose", "with", "atom-nix"]), "[compose.with.atom-nix]");
  assert.equal(tableText(["deps", 0]), "[[deps]] #1");
});

test("parseTomlFile: a syntax error is the caller's CprError at file:line:col", () => {
  const error = { code: "config.syntax" as const, hint: "fix it" };
  assert.equal(JSON.stringify(parseTomlFile("a = 1\n[b]\nc = 'x'\n", "f.toml", error)), '{"a":1,"b":{"c":"x"}}');
  const dup = cprFailure(() => parseTomlFile("a = 1\na = 2\n", "dir/f.toml", error));
  assert.equal(dup.code, "config.syntax");
  assert.equal(dup.where, "dir/f.toml:2:1");
  assert.match(dup.message, /^dir\/f\.toml is not valid TOML: /);
  assert.doesNotMatch(dup.message, /Invalid TOML document|\n/, "smol-toml's prefix and code excerpt are dropped");
  assert.equal(dup.hint, "fix it");
  const missing = cprFailure(() => parseTomlFile("a = 1\nb = \n", "f.toml", error));
  assert.equal(missing.where, "f.toml:2:5", "the column of the missing value");
});

const LOCKISH = `version = 1

[sets.abc]
tag = "home"

[[deps]]
type = "atom"
label = "a"

[[deps]]
# a comment
type = "nix"
hash = "sha256-x"
text = """
[[deps]]
hash = "inside a string"
"""

[deps.sub]
k = 1

[[deps]]
type = { inline = true, "quoted\\u0020key" = 2 }
`;

test("KeyLocator finds keys under arrays of tables, quoted keys and inline tables; not inside multi-line strings", () => {
  const l = new KeyLocator(LOCKISH);
  assert.deepEqual(l.find(["version"]), { line: 1, col: 1 });
  assert.deepEqual(l.find(["sets", "abc", "tag"]), { line: 4, col: 1 });
  assert.deepEqual(l.find(["deps"]), { line: 6, col: 1 }, "the first [[deps]]");
  assert.deepEqual(l.find(["deps", 0, "label"]), { line: 8, col: 1 });
  assert.deepEqual(l.find(["deps", 1, "hash"]), { line: 13, col: 1 }, "the second entry's hash, not the first's or the string's");
  assert.deepEqual(l.find(["deps", 1, "missing"]), { line: 10, col: 1 }, "an absent key: its entry's header");
  assert.deepEqual(l.find(["deps", 1, "sub", "k"]), { line: 20, col: 1 }, "a sub-table belongs to the last entry");
  assert.deepEqual(l.find(["deps", 2, "type", "quoted key"]), { line: 23, col: 25 }, "escaped quoted key in an inline table");
  assert.deepEqual(l.find(["deps", 3, "type"]), { line: 6, col: 1 }, "no fourth entry: the array");
  assert.equal(l.find(["nothing"]), null);
  assert.deepEqual(new KeyLocator('a = ["x",\n  "y"]\n').findValue(["a"], "y"), { line: 2, col: 3 });
});

const READER_TEXT = '[package]\nlabel = "foo"\ntags = ["ok", "-bad"]\ncount = 3\n\n[package.meta]\nother = 1\n';

function reader(regenerate?: string): TomlReader {
  const codes = { type: "lock.type", missing: "lock.missing", unknownKey: "lock.unknown-key" } as const;
  return new TomlReader("d/x.toml", READER_TEXT, regenerate === undefined ? { codes } : { codes, regenerate });
}

test("TomlReader's typed getters fail with the caller's codes, the key's name, its position and a hint", () => {
  const doc = parseTomlFile(READER_TEXT, "d/x.toml", { code: "lock.syntax", hint: "h" });
  const r = reader();
  const pkg = r.table(doc.package, ["package"]);
  assert.equal(r.string(pkg.label, ["package", "label"]), "foo");
  assert.deepEqual(r.strings(pkg.tags, ["package", "tags"]), ["ok", "-bad"]);

  const notString = cprFailure(() => r.string(pkg.count, ["package", "count"], '"three"'));
  assert.equal(notString.code, "lock.type");
  assert.equal(notString.message, "[package].count must be a string, got 3 (a number)");
  assert.equal(notString.where, "d/x.toml:4:1");
  assert.equal(notString.hint, 'write e.g. count = "three"');

  const notTable = cprFailure(() => r.table(pkg.label, ["package", "label"]));
  assert.equal(notTable.message, '[package].label must be a table, got "foo"');
  assert.equal(notTable.hint, "write it as a [package.label] table");
  assert.equal(notTable.where, "d/x.toml:2:1");

  const notStrings = cprFailure(() => r.strings(pkg.count, ["package", "count"]));
  assert.match(notStrings.message, /must be an array of strings, got 3/);

  const missing = cprFailure(() => r.required(pkg, "version", ["package"]));
  assert.equal(missing.code, "lock.missing");
  assert.equal(missing.message, '[package] has no "version"');
  assert.equal(missing.where, "d/x.toml:1:1");

  const unknown = cprFailure(() => r.onlyKeys(r.table(pkg.meta, ["package", "meta"]), ["package", "meta"], ["description"]));
  assert.equal(unknown.code, "lock.unknown-key");
  assert.equal(unknown.message, 'unknown key "other" in [package.meta]; expected only "description"');
  assert.equal(unknown.where, "d/x.toml:7:1");
  assert.equal(unknown.hint, 'remove "other" or check its spelling');
  const top = cprFailure(() => r.onlyKeys(doc, [], ["meta"], "custom hint"));
  assert.match(top.message, /"package" at the top level/);
  assert.equal(top.hint, "custom hint");

  const badTag = cprFailure(() => r.label("-bad", "tag", ["package", "tags"], "tag", "-bad"));
  assert.equal(badTag.code, "label.invalid-start");
  assert.equal(badTag.where, "d/x.toml:3:15", "the offending element of the array");
  assert.ok(badTag.hint);
  assert.ok(badTag instanceof CprError);
});

test("TomlReader: a generated file's errors say how to regenerate it", () => {
  const r = reader("regenerate it");
  const doc = parseTomlFile(READER_TEXT, "d/x.toml", { code: "lock.syntax", hint: "h" });
  const pkg = r.table(doc.package, ["package"]);
  assert.equal(cprFailure(() => r.string(pkg.count, ["package", "count"])).hint, "regenerate it");
  assert.equal(cprFailure(() => r.table(pkg.count, ["package", "count"])).hint, "regenerate it");
  assert.equal(cprFailure(() => r.required(pkg, "version", ["package"])).hint, "regenerate it");
  assert.equal(cprFailure(() => r.onlyKeys(pkg, ["package"], ["label"])).hint, "remove it, or regenerate it");
});
