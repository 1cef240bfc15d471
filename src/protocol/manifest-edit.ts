import { CprError } from "./errors.js";
import { dottedKey, parseTomlFile, scanKey, skipTomlSpace as skipSpace, tomlBasicString, tomlKey, type TomlTable } from "./toml.js";

/**
 * Format-preserving edits of `atom.toml` (docs/formats.md §6.3), string → string, for `cpr add` and `cpr remove`.
 *
 * A small line-based editor: it understands table headers, (dotted, quoted) keys, comments, multi-line arrays and
 * multi-line strings, and touches only the statements it edits. Everything else (comments, blank lines, key order,
 * spacing, quoting style) stays byte for byte. Line endings follow the file: a file with any CRLF is written with
 * CRLF throughout; a missing final newline stays missing.
 *
 * Keys are matched after NFKC normalisation, as the manifest reader does. A value written as an inline table that
 * would need a key added inside it (e.g. `sets = { a = "…" }` under [package]) is refused with `edit.inline-table`.
 */

type Path = readonly string[];

interface Pos {
  readonly line: number;
  readonly col: number;
}

interface Header {
  readonly kind: "header";
  readonly path: Path;
  readonly array: boolean;
  readonly line: number;
}

interface KeyValue {
  readonly kind: "kv";
  /** The table the statement is in. */
  readonly table: Path;
  /** Full path: table + dotted key. */
  readonly path: Path;
  readonly start: number;
  readonly end: number;
  readonly valueStart: Pos;
  readonly valueEnd: Pos;
  readonly indent: string;
}

type Stmt = Header | KeyValue;

interface Doc {
  readonly lines: string[];
  readonly eol: string;
  readonly finalNewline: boolean;
  readonly stmts: readonly Stmt[];
}

function norm(k: string): string {
  return k.normalize("NFKC");
}
function samePath(a: Path, b: Path): boolean {
  return a.length === b.length && a.every((k, i) => norm(k) === norm(b[i]!));
}
function startsWith(path: Path, prefix: Path): boolean {
  return path.length >= prefix.length && prefix.every((k, i) => norm(k) === norm(path[i]!));
}

function syntaxError(message: string, line: number, col: number): never {
  throw new CprError("manifest.syntax", `atom.toml cannot be edited: ${message}`, {
    where: `atom.toml:${line + 1}:${col + 1}`,
    hint: "fix the TOML syntax at the position shown",
  });
}

/** Reads `a."b c".'d'` at `i` (scanKey); `end` is past the spaces after it. */
function readKey(s: string, i: number, line: number): { keys: string[]; end: number } {
  const r = scanKey(s, i);
  if (!r.ok) syntaxError(r.message, line, r.at);
  return { keys: r.keys, end: skipSpace(s, r.end) };
}

/** From a value's first character, the position just past its last character (across lines for arrays/strings). */
function scanValue(lines: readonly string[], line: number, col: number): Pos {
  let depth = 0;
  let started = false;
  let l = line;
  let c = col;
  let last: Pos = { line, col };
  for (;;) {
    if (l >= lines.length) {
      if (depth > 0) syntaxError("unterminated array or inline table", line, col);
      return last;
    }
    const s = lines[l]!;
    if (c >= s.length || s[c] === "#") {
      if (depth === 0) {
        if (!started) syntaxError("expected a value after '='", line, col);
        return last;
      }
      l++;
      c = 0;
      continue;
    }
    const ch = s[c]!;
    if (ch === " " || ch === "\t" || ch === ",") {
      c++;
      continue;
    }
    if (depth === 0 && started) return last; // only a comment may follow a complete value
    started = true;
    if (s.startsWith('"""', c) || s.startsWith("'''", c)) {
      const delim = s.slice(c, c + 3);
      c += 3;
      for (;;) {
        if (l >= lines.length) syntaxError("unterminated multi-line string", line, col);
        const t = lines[l]!;
        let found = -1;
        for (let k = c; k < t.length; k++) {
          if (delim === '"""' && t[k] === "\\") {
            k++;
            continue;
          }
          if (t.startsWith(delim, k)) {
            found = k;
            break;
          }
        }
        if (found !== -1) {
          c = found + 3;
          while (t[c] === delim[0] && c < found + 5) c++;
          break;
        }
        l++;
        c = 0;
      }
    } else if (ch === '"' || ch === "'") {
      let j = c + 1;
      while (j < s.length && s[j] !== ch) j += ch === '"' && s[j] === "\\" ? 2 : 1;
      if (j >= s.length) syntaxError("unterminated string", l, c);
      c = j + 1;
    } else if (ch === "[" || ch === "{") {
      depth++;
      c++;
    } else if (ch === "]" || ch === "}") {
      depth--;
      c++;
    } else {
      // a bare scalar (number, boolean, date) or, inside an inline table, a bare key or '='
      c++;
      while (c < s.length && !/[\s#,\]}\[{"']/.test(s[c]!)) c++;
    }
    last = { line: l, col: c };
  }
}

function scan(text: string): Doc {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text.split(/\r?\n/);
  const finalNewline = lines.length > 1 && lines[lines.length - 1] === "";
  if (finalNewline) lines.pop();
  const stmts: Stmt[] = [];
  let table: Path = [];
  let i = 0;
  while (i < lines.length) {
    const s = lines[i]!;
    const start = skipSpace(s, 0);
    if (start >= s.length || s[start] === "#") {
      i++;
      continue;
    }
    if (s[start] === "[") {
      const array = s[start + 1] === "[";
      const { keys, end } = readKey(s, start + (array ? 2 : 1), i);
      table = keys;
      stmts.push({ kind: "header", path: keys, array, line: i });
      void end;
      i++;
      continue;
    }
    const { keys, end } = readKey(s, start, i);
    if (s[end] !== "=") syntaxError("expected '=' after a key", i, end);
    const vs = skipSpace(s, end + 1);
    const ve = scanValue(lines, i, vs);
    stmts.push({
      kind: "kv",
      table,
      path: [...table, ...keys],
      start: i,
      end: ve.line,
      valueStart: { line: i, col: vs },
      valueEnd: ve,
      indent: s.slice(0, start),
    });
    i = ve.line + 1;
  }
  return { lines, eol, finalNewline, stmts };
}

function render(doc: Doc, lines: readonly string[]): string {
  return lines.join(doc.eol) + (doc.finalNewline || lines.length === 0 ? doc.eol : "");
}

/** Parses the file (the edit's input or output): a syntax error is `manifest.syntax` at its position. */
function checkToml(text: string, file = "atom.toml"): TomlTable {
  return parseTomlFile(text, file, {
    code: "manifest.syntax",
    hint: "fix the TOML syntax at the position shown, then run the command again",
  });
}

function kvs(doc: Doc): KeyValue[] {
  return doc.stmts.filter((s): s is KeyValue => s.kind === "kv");
}
function headers(doc: Doc): Header[] {
  return doc.stmts.filter((s): s is Header => s.kind === "header");
}

/** The last line of a header's section that holds a statement (the header itself when empty). */
function sectionEnd(doc: Doc, h: Header): number {
  let end = h.line;
  for (const s of doc.stmts) {
    if (s.kind === "header" && s.line > h.line) break;
    if (s.kind === "kv" && s.start > h.line) end = s.end;
  }
  return end;
}

/** The statements of a header's section. */
function sectionKvs(doc: Doc, h: Header): KeyValue[] {
  const out: KeyValue[] = [];
  for (const s of doc.stmts) {
    if (s.kind === "header" && s.line > h.line) break;
    if (s.kind === "kv" && s.start > h.line) out.push(s);
  }
  return out;
}

function isBlank(s: string | undefined): boolean {
  return s !== undefined && s.trim() === "";
}

/** Replaces a statement's value, keeping its key text, spacing and trailing comment. */
function replaceValue(doc: Doc, kv: KeyValue, value: string): string {
  const lines = [...doc.lines];
  const prefix = lines[kv.valueStart.line]!.slice(0, kv.valueStart.col);
  const suffix = lines[kv.valueEnd.line]!.slice(kv.valueEnd.col);
  lines.splice(kv.start, kv.end - kv.start + 1, prefix + value + suffix);
  return render(doc, lines);
}

/** Removes statements (and a blank line made redundant). */
function removeStatements(doc: Doc, remove: readonly KeyValue[]): string {
  const lines = [...doc.lines];
  for (const kv of [...remove].sort((a, b) => b.start - a.start)) {
    lines.splice(kv.start, kv.end - kv.start + 1);
    const before = lines[kv.start - 1];
    const after = lines[kv.start];
    if ((kv.start === 0 || isBlank(before)) && (after === undefined || isBlank(after)) && lines.length > 0) {
      lines.splice(kv.start === 0 ? 0 : kv.start - 1, 1);
    }
  }
  return render(doc, lines);
}

/**
 * Removes the header of `path` when its section holds no keys, then the headers of ancestors left with no keys and
 * no descendants. Comments in a removed section stay; its blank lines go.
 */
function dropEmptyTables(text: string, path: Path): string {
  for (let n = path.length; n >= 1; n--) {
    const doc = scan(text);
    const t = path.slice(0, n);
    const h = headers(doc).find((x) => !x.array && samePath(x.path, t));
    if (!h) continue;
    if (sectionKvs(doc, h).length > 0) return text;
    if (doc.stmts.some((s) => s !== h && startsWith(s.path, t))) return text;
    const next = doc.stmts.find((s) => s.kind === "header" && s.line > h.line);
    const stop = next ? (next as Header).line : doc.lines.length;
    const lines = doc.lines.slice(0, h.line);
    const rest = doc.lines.slice(stop);
    const comments = doc.lines.slice(h.line + 1, stop).filter((l) => !isBlank(l));
    // Keep one blank line between what precedes and what follows, none at the end of the file.
    while (lines.length > 0 && isBlank(lines[lines.length - 1])) lines.pop();
    const after = [...comments, ...rest];
    if (lines.length > 0 && after.length > 0) lines.push("");
    lines.push(...after);
    text = render(doc, lines);
  }
  return text;
}

/** Prefixes of `table` to look for, longest first, when choosing where a new table goes. */
function anchorFor(doc: Doc, table: Path): number | null {
  const hs = headers(doc);
  for (let n = table.length - 1; n >= 1; n--) {
    const prefix = table.slice(0, n);
    const related = hs.filter((h) => startsWith(h.path, prefix));
    if (related.length > 0) return sectionEnd(doc, related[related.length - 1]!);
  }
  return null;
}

/** Inserts `key = value` into `table`, creating the table after its last related table when missing. */
function insertKey(doc: Doc, table: Path, key: Path, value: string): string {
  const lines = [...doc.lines];
  const exact = kvs(doc).find((kv) => samePath(kv.path, table) || startsWith(table, kv.path));
  if (exact) {
    throw new CprError(
      "edit.inline-table",
      `[${dottedKey(table)}] is written as an inline value; cpr cannot add "${key.join(".")}" to it`,
      {
        where: `atom.toml:${exact.start + 1}:${exact.indent.length + 1}`,
        hint: `write it as a [${dottedKey(table)}] table, then run the command again`,
      },
    );
  }
  const h = headers(doc).find((x) => !x.array && samePath(x.path, table));
  if (h) {
    const inside = sectionKvs(doc, h);
    const lastKv = inside[inside.length - 1];
    const at = lastKv ? lastKv.end + 1 : h.line + 1;
    const indent = lastKv?.indent ?? "";
    lines.splice(at, 0, `${indent}${dottedKey(key)} = ${value}`);
    return render(doc, lines);
  }
  const dotted = kvs(doc).filter((kv) => startsWith(kv.path, table) && kv.table.length < table.length);
  const lastDotted = dotted[dotted.length - 1];
  if (lastDotted) {
    const rel = [...table.slice(lastDotted.table.length), ...key];
    lines.splice(lastDotted.end + 1, 0, `${lastDotted.indent}${dottedKey(rel)} = ${value}`);
    return render(doc, lines);
  }
  const block = [`[${dottedKey(table)}]`, `${dottedKey(key)} = ${value}`];
  const anchor = anchorFor(doc, table);
  if (anchor === null) {
    while (lines.length > 0 && isBlank(lines[lines.length - 1])) lines.pop();
    if (lines.length > 0) lines.push("");
    lines.push(...block);
    return lines.join(doc.eol) + doc.eol;
  }
  const next = lines[anchor + 1];
  lines.splice(anchor + 1, 0, "", ...block, ...(next !== undefined && !isBlank(next) ? [""] : []));
  return render(doc, lines);
}

/** Sets `table.key` (full path) to `value`: replaces the value in place, or inserts a new key. */
function setKey(text: string, table: Path, key: Path, value: string): string {
  checkToml(text);
  const doc = scan(text);
  const full = [...table, ...key];
  const existing = kvs(doc).find((kv) => samePath(kv.path, full));
  const out = existing ? replaceValue(doc, existing, value) : insertKey(doc, table, key, value);
  checkToml(out);
  return out;
}

/** Removes every statement at or under `full`, then the tables left empty up to `table`. */
function removeKey(text: string, full: Path, table: Path): string {
  checkToml(text);
  const doc = scan(text);
  const remove = kvs(doc).filter((kv) => startsWith(kv.path, full));
  const subHeaders = headers(doc).filter((h) => startsWith(h.path, full));
  let out = remove.length > 0 ? removeStatements(doc, remove) : text;
  for (let k = 0; k < subHeaders.length; k++) out = dropEmptyTables(out, subHeaders[k]!.path);
  out = dropEmptyTables(out, table);
  checkToml(out);
  return out;
}

function stringArray(items: readonly string[]): string {
  return `[${items.map(tomlBasicString).join(", ")}]`;
}

// ---------------------------------------------------------------------------------------------------------------
// Operations

/** Mirrors as docs/formats.md §6.3 writes them in an array: `"::"` first, then the rest in the order given, without duplicates. */
export function orderMirrors(mirrors: readonly string[]): string[] {
  const unique = [...new Set(mirrors)];
  return unique.includes("::") ? ["::", ...unique.filter((m) => m !== "::")] : unique;
}

/** Sets `[package.sets] <tag>` to one mirror (a string) or several (an array, `"::"` first, no duplicates). */
export function setPackageSet(text: string, tag: string, mirrors: string | readonly string[]): string {
  const value = typeof mirrors === "string" ? tomlBasicString(mirrors) : stringArray(orderMirrors(mirrors));
  return setKey(text, ["package", "sets"], [tag], value);
}

/** The mirrors of `[package.sets] <tag>` as written, or null. */
export function readPackageSet(text: string, tag: string): string[] | null {
  const doc = checkToml(text);
  const pkg = doc.package as Record<string, unknown> | undefined;
  const sets = pkg?.sets as Record<string, unknown> | undefined;
  if (!sets || typeof sets !== "object") return null;
  for (const [k, v] of Object.entries(sets)) {
    if (norm(k) !== norm(tag)) continue;
    if (typeof v === "string") return [v];
    if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  }
  return null;
}

/**
 * Adds one mirror to `[package.sets] <tag>`: a new tag gets a string; an existing tag keeps its value when the
 * mirror is already there, else becomes an array (`"::"` first, no duplicates).
 */
export function addPackageSetMirror(text: string, tag: string, mirror: string): string {
  const current = readPackageSet(text, tag);
  if (current === null) return setPackageSet(text, tag, mirror);
  if (current.includes(mirror)) return text;
  return setPackageSet(text, tag, [...current, mirror]);
}

/** Removes `[package.sets] <tag>` (and the table when it becomes empty). */
export function removePackageSet(text: string, tag: string): string {
  return removeKey(text, ["package", "sets", tag], ["package", "sets"]);
}

/** Sets `[deps.from.<tag>] <label> = "<requirement>"`, creating the table after the last related one if missing. */
export function setDependency(text: string, tag: string, label: string, requirement: string): string {
  return setKey(text, ["deps", "from", tag], [label], tomlBasicString(requirement));
}

/** Removes `[deps.from.<tag>] <label>`, and the table when it becomes empty. */
export function removeDependency(text: string, tag: string, label: string): string {
  return removeKey(text, ["deps", "from", tag, label], ["deps", "from", tag]);
}

/** A `[deps.direct.nix]` entry in one of the four forms of docs/formats.md §6.1. */
export type DirectNixSpec =
  | { readonly kind: "url" | "tar"; readonly name: string; readonly url: string; readonly fromVersion?: readonly [string, string] | null }
  | {
      readonly kind: "build";
      readonly name: string;
      readonly url: string;
      readonly unpack?: boolean;
      readonly fromVersion?: readonly [string, string] | null;
    }
  | {
      readonly kind: "git";
      readonly name: string;
      readonly url: string;
      /** `"HEAD"` is the same as none and is not written. */
      readonly ref?: string | null;
      readonly version?: string | null;
      readonly fromVersion?: readonly [string, string] | null;
    };

/** The key/value pairs of an entry, in the order written. */
function directFields(spec: DirectNixSpec): [string, string][] {
  const fields: [string, string][] = [[spec.kind, tomlBasicString(spec.url)]];
  if (spec.kind === "build" && spec.unpack === true) fields.push(["unpack", "true"]);
  if (spec.kind === "git") {
    if (spec.ref != null && spec.version != null)
      throw new CprError("edit.direct-dep", `a git dependency takes ref or version, not both (${spec.name})`, {
        hint: "pin a branch or tag with ref, or a SemVer tag range with version",
      });
    if (spec.ref != null && spec.ref !== "HEAD") fields.push(["ref", tomlBasicString(spec.ref)]);
    if (spec.version != null) fields.push(["version", tomlBasicString(spec.version)]);
  }
  if (spec.fromVersion) fields.push(["from_version", stringArray(spec.fromVersion)]);
  return fields;
}

/** The line cpr writes for an entry: `name.url = "…"` for one key, else `name = { git = "…", ref = "…" }`. */
export function formatDirectNix(spec: DirectNixSpec): string {
  const fields = directFields(spec);
  if (fields.length === 1) return `${tomlKey(spec.name)}.${fields[0]![0]} = ${fields[0]![1]}`;
  return `${tomlKey(spec.name)} = { ${fields.map(([k, v]) => `${k} = ${v}`).join(", ")} }`;
}

/**
 * Sets `[deps.direct.nix] <name>`: an existing entry (dotted keys, inline table or its own sub-table) is replaced
 * where it stood; a new one is added at the end of the table, created after the last related table if missing.
 */
export function setDirectNix(text: string, spec: DirectNixSpec): string {
  checkToml(text);
  const table = ["deps", "direct", "nix"];
  const full = [...table, spec.name];
  const doc = scan(text);
  const line = formatDirectNix(spec);
  const existing = kvs(doc).filter((kv) => startsWith(kv.path, full));
  const ownTable = headers(doc).some((h) => startsWith(h.path, full));
  const first = existing[0];
  if (first && !ownTable && existing.every((kv) => kv.table.length <= table.length)) {
    // Replace in place: the first statement becomes the new line (keyed relative to its table), the rest go.
    const rel = first.table.length < table.length ? dottedKey(table.slice(first.table.length)) + "." : "";
    const lines = [...doc.lines];
    for (const kv of [...existing].reverse()) {
      if (kv === first) {
        const suffix = lines[kv.valueEnd.line]!.slice(kv.valueEnd.col);
        lines.splice(kv.start, kv.end - kv.start + 1, `${kv.indent}${rel}${line}${suffix}`);
      } else lines.splice(kv.start, kv.end - kv.start + 1);
    }
    const out = render(doc, lines);
    checkToml(out);
    return out;
  }
  let base = existing.length > 0 || ownTable ? removeDirectNix(text, spec.name) : text;
  const d = scan(base);
  const fields = directFields(spec);
  const key = fields.length === 1 ? [spec.name, fields[0]![0]] : [spec.name];
  const value = fields.length === 1 ? fields[0]![1] : `{ ${fields.map(([k, v]) => `${k} = ${v}`).join(", ")} }`;
  base = insertKey(d, table, key, value);
  checkToml(base);
  return base;
}

/** Removes `[deps.direct.nix] <name>` in any form, and tables left empty. */
export function removeDirectNix(text: string, name: string): string {
  return removeKey(text, ["deps", "direct", "nix", name], ["deps", "direct", "nix"]);
}

// ---------------------------------------------------------------------------------------------------------------
// ekala.toml

/** Where a line's content ends: before a comment (outside strings) and trailing whitespace. */
function contentEnd(line: string): number {
  let quote: string | null = null;
  let end = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (quote === '"' && c === "\\") i++;
      else if (c === quote) quote = null;
      end = i + 1;
    } else if (c === "#") break;
    else if (c === '"' || c === "'") {
      quote = c;
      end = i + 1;
    } else if (c !== " " && c !== "\t") end = i + 1;
  }
  return end;
}

/** `[set] packages` of ekala.toml as written (strings), or null. */
function setPackages(doc: Record<string, unknown>): unknown[] | null {
  const set = doc.set as Record<string, unknown> | undefined;
  return set && typeof set === "object" && Array.isArray(set.packages) ? set.packages : null;
}

/**
 * Adds `path` to ekala.toml's `[set] packages` (docs/formats.md §6.2), keeping the rest of the file byte for byte. In a
 * multi-line array the new entry goes on its own line before the closing bracket, indented as the entry above it
 * (two spaces by default), with a trailing comma (one is added after the previous entry if it had none). A
 * one-line array, or one whose last entry shares the closing bracket's line, is rewritten in the writer's layout:
 * one entry per line, indented two spaces, each with a trailing comma. The caller has validated the file
 * (parseSetManifest) and checked that `path` is not listed yet.
 */
export function addSetPackage(text: string, path: string): string {
  const before = setPackages(checkToml(text, "ekala.toml"));
  if (before === null) {
    throw new CprError("edit.set-packages", "ekala.toml has no [set] packages array to add the atom to", {
      where: "ekala.toml",
      hint: "add packages = [] under [set]",
    });
  }
  const wanted = JSON.stringify([...before, path]);
  const doc = scan(text);
  const kv = kvs(doc).find((k) => samePath(k.path, ["set", "packages"]));
  if (!kv)
    throw new CprError("edit.set-packages", "ekala.toml's [set] packages cannot be edited in place", {
      where: "ekala.toml",
      hint: "write it as packages = [ ... ] under [set]",
    });
  const rewrite = () =>
    replaceValue(doc, kv, `[${doc.eol}${[...before, path].map((p) => `  ${tomlBasicString(String(p))},${doc.eol}`).join("")}]`);
  let out: string | null = null;
  const closing = doc.lines[kv.valueEnd.line]!;
  const bracket = kv.valueEnd.col - 1;
  if (kv.valueEnd.line > kv.start && closing.slice(0, bracket).trim() === "") {
    const lines = [...doc.lines];
    // The last line holding an entry (not blank, not only a comment), above the closing bracket.
    let last = kv.valueEnd.line - 1;
    while (last > kv.start && contentEnd(lines[last]!) === 0) last--;
    const lastLine = lines[last]!;
    const end = contentEnd(lastLine);
    const indent = last > kv.start ? /^[ \t]*/.exec(lastLine)![0] : "  ";
    if (last > kv.start && lastLine[end - 1] !== "," && lastLine[end - 1] !== "[")
      lines[last] = lastLine.slice(0, end) + "," + lastLine.slice(end);
    lines.splice(kv.valueEnd.line, 0, `${indent}${tomlBasicString(path)},`);
    out = render(doc, lines);
  }
  for (const candidate of out === null ? [rewrite()] : [out, rewrite()]) {
    try {
      if (JSON.stringify(setPackages(checkToml(candidate, "ekala.toml"))) === wanted) return candidate;
    } catch (e) {
      if (!(e instanceof CprError)) throw e;
    }
  }
  throw new CprError("edit.set-packages", `ekala.toml's [set] packages could not be edited to add "${path}"`, {
    where: "ekala.toml",
    hint: `add "${path}" to [set] packages by hand`,
  });
}
