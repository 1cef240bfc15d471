/**
 * docs/formats.md stays true: every table and block it marks `<!-- vectors: NAME -->` is checked against the code,
 * and every `docs/formats.md §N` reference in the repository (`formats.md §N` within docs/) names a section (or
 * numbered item) that exists.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { atomCommitBody, atomCommitId, parseAtomCommit } from "../../src/protocol/commit.js";
import { atomId, atomIdKey } from "../../src/protocol/id.js";
import { normalizeLabel } from "../../src/protocol/label.js";
import { DEFAULT_LOCKER_SET, formatLock, parseLock } from "../../src/protocol/lock.js";
import { parseAtomManifest } from "../../src/protocol/atom-manifest.js";
import { formatSetManifest, parseSetManifest } from "../../src/protocol/set-manifest.js";
import { parseAtomUri, parseGitUrl } from "../../src/protocol/uri.js";
import { parseRequirement } from "../../src/protocol/requirement.js";
import { VersionSet } from "../../src/protocol/version-set.js";
import { cprFailure } from "../support/assert.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const DOC_PATH = join(root, "docs", "formats.md");
const doc = readFileSync(DOC_PATH, "utf8");
const lines = doc.split("\n");

/** The table or fenced block that follows `<!-- vectors: name -->`. */
function marked(name: string): { rows: string[][] } | { code: string } {
  const at = lines.indexOf(`<!-- vectors: ${name} -->`);
  assert.ok(at >= 0, `docs/formats.md has no block marked "vectors: ${name}"`);
  let i = at + 1;
  while (lines[i] === "") i++;
  if (lines[i]!.startsWith("```")) {
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `the ${name} block is not closed`);
    return { code: lines.slice(i + 1, end).join("\n") + "\n" };
  }
  const rows: string[][] = [];
  for (; lines[i]?.startsWith("|"); i++) {
    rows.push(
      lines[i]!.slice(1, -1)
        .split(" | ")
        .map((c) => c.trim()),
    );
  }
  assert.ok(rows.length > 2, `the ${name} block is neither a table nor a fenced block`);
  return { rows: rows.slice(2) };
}
function table(name: string): string[][] {
  const m = marked(name);
  assert.ok("rows" in m, `${name} is not a table`);
  return m.rows;
}
function block(name: string): string {
  const m = marked(name);
  assert.ok("code" in m, `${name} is not a fenced block`);
  return m.code;
}
/** The text of the first `code` span of a cell (spaces kept), or the cell; `–` is null. */
function cell(text: string): string | null {
  const m = /`([^`]*)`/.exec(text);
  if (m) return m[1]!;
  return text === "–" ? null : text;
}

test("docs/formats.md §2: the label table", () => {
  const rows = table("labels");
  assert.ok(rows.length >= 20);
  for (const [input, result] of rows) {
    const label = cell(input!)!;
    if (result === "valid") {
      assert.equal(normalizeLabel(label), label, label);
      continue;
    }
    const err = cprFailure(() => normalizeLabel(label), `${label} should be refused`);
    assert.equal(err.code, cell(result!), label);
    const listed = result!.includes(":") ? result!.slice(result!.indexOf(":") + 1) : "";
    for (const m of listed.matchAll(/`([^`]+)`/g)) assert.ok(err.message.includes(`'${m[1]}'`), `${label}: ${err.message}`);
    for (const m of listed.matchAll(/U\+[0-9A-F]{4} [A-Z ]+/g)) assert.ok(err.message.includes(m[0].trim()), `${label}: ${err.message}`);
  }
});

test("docs/formats.md §3: requirement meanings and canonical text", () => {
  const set = (text: string) => VersionSet.fromRequirement(parseRequirement(text));
  for (const [a, b] of table("requirements")) assert.ok(set(cell(a!)!).equals(set(cell(b!)!)), `${a} ≡ ${b}`);
  for (const [input, written] of table("canonical-requirements")) assert.equal(parseRequirement(cell(input!)!).text, cell(written!), input);
});

test("docs/formats.md §5: AtomId vectors and the derived key", () => {
  const rows = table("atomid");
  assert.ok(rows.length >= 7);
  for (const [rootHex, label, id] of rows) assert.equal(atomId(cell(rootHex!)!, cell(label!)!), cell(id!), `${label}`);
  const key = Buffer.from(atomIdKey("4abbd2644bc3585e9be95deb277ccf48f6ed26ac")).toString("hex");
  assert.equal(block("atomid-key").trim(), key);
});

test("docs/formats.md §7: the worked example's exact bytes, length and id; the second vector's id", () => {
  const text = block("commit").replace(/\n$/, ""); // no byte after the version
  const parsed = parseAtomCommit(Buffer.from(text, "utf8"));
  assert.equal(parsed.format, "pre1");
  assert.equal(parsed.canonical, true);
  const input = { tree: parsed.tree, origin: parsed.origin!, label: parsed.label!, version: parsed.version! };
  const body = atomCommitBody(input);
  assert.equal(body.toString("utf8"), text);
  assert.ok(doc.includes(`**${body.length} bytes**`), `the length ${body.length} is stated`);
  assert.ok(doc.includes(`Its id is **\`${atomCommitId(input)}\`**`), `the id ${atomCommitId(input)} is stated`);
  const second = atomCommitId({ tree: "3".repeat(40), origin: "4".repeat(40), label: "ひらがな", version: "1.0.0-rc.1" });
  assert.ok(doc.includes(`**\`${second}\`**`), `the second id ${second} is stated`);
});

test("docs/formats.md §6: the atom.toml example parses completely, the ekala.toml example is what the writer writes", () => {
  const m = parseAtomManifest(block("atom-toml"), "atom.toml", "full");
  assert.equal(m.compose?.kind, "with");
  assert.deepEqual(Object.keys(m.package.sets), ["atom", "mine"]);
  assert.deepEqual(
    m.directNix.map((d) => d.kind),
    ["git", "git", "tar", "url", "build"],
  );
  assert.deepEqual(m.directNix[4]!.fromVersion, ["mine", "theme"]);
  const set = block("ekala-toml");
  assert.equal(formatSetManifest(parseSetManifest(set, "ekala.toml")), set);
  assert.equal(formatSetManifest({ packages: [], tags: [] }), "[set]\npackages = []\n\n[metadata]\ntags = []\n");
});

test("docs/formats.md §11: the example lock round-trips byte for byte, with the default locker", () => {
  const text = block("lock");
  const lock = parseLock(text, "atom.lock"); // every id is checked here
  assert.equal(formatLock(lock), text);
  assert.equal(lock.locker?.set, DEFAULT_LOCKER_SET);
  assert.equal(lock.locker?.id, atomId(DEFAULT_LOCKER_SET, "nix-lock"));
  assert.ok(doc.includes(`\`id\` = \`${lock.locker?.id}\``), "docs/formats.md §11.9 states the locker's id");
  assert.ok(
    doc.includes(`its commit is\n\`${lock.locker?.rev}\``) || doc.includes(`its commit is \`${lock.locker?.rev}\``),
    "docs/formats.md §11.9 states the locker's rev",
  );
});

test("docs/formats.md §13: URI vectors and the URL-only form", () => {
  const rows = table("uris");
  assert.ok(rows.length >= 12);
  for (const [input, scheme, user, host, port, path, label, requirement, url] of rows) {
    const uri = parseAtomUri(cell(input!)!);
    assert.ok(uri.url !== null, input);
    assert.equal(uri.url.scheme, scheme, input);
    assert.equal(uri.url.user, cell(user!), input);
    assert.equal(uri.url.host, cell(host!), input);
    assert.equal(uri.url.port === null ? null : String(uri.url.port), cell(port!), input);
    assert.equal(uri.url.path, cell(path!), input);
    assert.equal(uri.label, cell(label!), input);
    assert.equal(uri.requirement?.text ?? null, cell(requirement!), input);
    assert.equal(uri.url.url, cell(url!), input);
  }
  for (const [input, url] of table("url-only")) assert.equal(parseGitUrl(cell(input!)!).url, cell(url!), input);
});

/** Sections of the document: `§N` and `§N.M` headings, and `N.`-numbered items directly in a `## §N` section. */
function sections(): Set<string> {
  const found = new Set<string>();
  let top: string | null = null;
  for (const line of lines) {
    const h = /^#{2,3} §(\d+(?:\.\d+)?) /.exec(line);
    if (h) {
      found.add(h[1]!);
      top = line.startsWith("## ") ? h[1]! : null; // numbered items count only directly under a `## §N` heading
      continue;
    }
    const item = /^(\d+)\. /.exec(line);
    if (item && top !== null) found.add(`${top}.${item[1]}`);
  }
  return found;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|md|sh|nix|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

test("every docs/formats.md §N reference names an existing section", () => {
  const known = sections();
  for (const n of ["1", "2", "5.1", "6.1", "6.2", "9.1", "9.7", "12.6", "13.3", "14.9", "15.2"]) assert.ok(known.has(n), `§${n} exists`);
  const files = [...["src", "test", "bench", "scripts", "docs"].flatMap((d) => walk(join(root, d))), join(root, "README.md")];
  const bad: string[] = [];
  let count = 0;
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/formats\.md(?:\]\(formats\.md\))? §(\d+(?:\.\d+)?)/g)) {
      count++;
      if (!known.has(m[1]!)) bad.push(`${relative(root, file)}: §${m[1]}`);
    }
  }
  assert.ok(count > 50, `found only ${count} references`);
  assert.deepEqual(bad, []);
});
