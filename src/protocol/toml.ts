import { parse as smolParse, TomlError } from "smol-toml";
import { CprError, type ErrorCode } from "./errors.js";
import { normalizeLabel, type LabelKind } from "./label.js";

/**
 * The TOML machinery every file format shares (atom.toml, ekala.toml, atom.lock, cpr.toml/config.toml and the
 * format-preserving editor): parsing with errors at file:line:col, writing keys and strings by hand (atom.lock,
 * ekala.toml and manifest edits are written byte for byte), the one key scanner, finding where a key is written, and
 * a typed reader whose errors say where and what was expected.
 *
 * Keys, as the scanner reads them (TOML 1.0 §Keys, and what smol-toml accepts):
 * - bare: one or more of `A-Za-z0-9_-` (ASCII only);
 * - basic quoted: `"…"` with TOML's escapes `\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX`, plus `\e` and `\xHH` (TOML
 *   1.1, which smol-toml also reads); a `\u`/`\U`/`\x` escape must be a Unicode scalar value; any other escape, and a
 *   raw control character other than tab, is an error;
 * - literal quoted: `'…'`, no escapes, no control character other than tab;
 * - dotted: parts joined by `.`, with spaces or tabs allowed around each dot.
 * Multi-line strings are never keys. Writers quote a key only when it is not bare (`tomlKey`).
 */

/** A TOML basic string: double quotes, with escapes for `"`, `\` and control characters. */
export function tomlBasicString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, "0").toUpperCase()}`;
    else out += ch;
  }
  return out + '"';
}

/** A parsed TOML table: a plain object (smol-toml gives plain objects for tables, and Date-like objects for dates). */
export type TomlTable = Record<string, unknown>;

export function isTomlTable(v: unknown): v is TomlTable {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype;
}

/** A short description of a parsed TOML value, for "got …" in messages. */
export function describeTomlValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return `${String(v)} (a ${typeof v})`;
  if (Array.isArray(v)) return "an array";
  if (isTomlTable(v)) return "a table";
  return "a date";
}

// ---------------------------------------------------------------------------------------------------------------
// Keys: writing and naming

/** A path of keys in a document; a number is an index into an array of tables (`[[deps]]`). */
export type TomlPath = readonly (string | number)[];

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** A key as TOML writes it: bare when it can be, else a basic string. */
export function tomlKey(key: string): string {
  return BARE_KEY.test(key) ? key : tomlBasicString(key);
}

/** A key path as TOML writes it: `deps.from."my set"`. */
export function dottedKey(path: readonly string[]): string {
  return path.map(tomlKey).join(".");
}

/** Splits a path at its first array index: `["deps", 1, "hash"]` → `["deps"]`, 1, `["hash"]`. */
function splitAtIndex(path: TomlPath): { before: string[]; index: number; after: string[] } | null {
  const at = path.findIndex((k) => typeof k === "number");
  if (at === -1) return null;
  return { before: path.slice(0, at).map(String), index: path[at] as number, after: path.slice(at + 1).map(String) };
}

/** A table's name in messages: `[package.sets]`, `[[deps]] #2`, or `the top level`. */
export function tableText(path: TomlPath): string {
  const split = splitAtIndex(path);
  if (split) return `[[${dottedKey(split.before)}]] #${split.index + 1}${split.after.length ? ` ${dottedKey(split.after)}` : ""}`;
  return path.length === 0 ? "the top level" : `[${dottedKey(path as readonly string[])}]`;
}

/** A key's name in messages: `[package].version`, `[package]` for a top-level name, `[[deps]] #2 hash`. */
export function keyPathText(path: TomlPath): string {
  if (path.length <= 1 || splitAtIndex(path)) return tableText(path);
  const keys = path as readonly string[];
  return `[${dottedKey(keys.slice(0, -1))}].${tomlKey(keys[keys.length - 1]!)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The key scanner

export type KeyScan =
  /** `end` is the index just past the last part (before any space). */
  | { readonly ok: true; readonly keys: string[]; readonly end: number }
  /** `at` is the index of the offending character. */
  | { readonly ok: false; readonly message: string; readonly at: number };

type PartScan = { readonly ok: true; readonly key: string; readonly end: number } | Extract<KeyScan, { ok: false }>;

/** Index of the first character at or after `i` that is not a space or tab. */
export function skipTomlSpace(s: string, i: number): number {
  while (s[i] === " " || s[i] === "\t") i++;
  return i;
}

/** Reads a dotted key (`a."b c".'d'`) of one line at `i` (spaces and tabs before it skipped); see the rules above. */
export function scanKey(line: string, i: number): KeyScan {
  const keys: string[] = [];
  for (;;) {
    const part = scanKeyPart(line, skipTomlSpace(line, i));
    if (!part.ok) return part;
    keys.push(part.key);
    i = part.end;
    const j = skipTomlSpace(line, i);
    if (line[j] !== ".") return { ok: true, keys, end: i };
    i = j + 1;
  }
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", e: "\x1b", '"': '"', "\\": "\\" };
const HEX_ESCAPES: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };

function isControl(c: number): boolean {
  return (c < 0x20 && c !== 0x09) || c === 0x7f;
}

function scanKeyPart(s: string, i: number): PartScan {
  const q = s[i];
  if (q === '"' || q === "'") {
    if (s.startsWith(q.repeat(3), i)) return { ok: false, message: "a multi-line string cannot be a key", at: i };
    let key = "";
    let j = i + 1;
    for (;;) {
      const ch = s[j];
      if (ch === undefined) return { ok: false, message: "unterminated quoted key", at: i };
      if (ch === q) return { ok: true, key, end: j + 1 };
      if (isControl(ch.charCodeAt(0))) return { ok: false, message: "a quoted key cannot hold a control character; escape it", at: j };
      if (q === "'" || ch !== "\\") {
        key += ch;
        j++;
        continue;
      }
      const e = s[j + 1] ?? "";
      const simple = SIMPLE_ESCAPES[e];
      const digits = HEX_ESCAPES[e];
      if (simple !== undefined) {
        key += simple;
        j += 2;
      } else if (digits !== undefined) {
        const hex = s.slice(j + 2, j + 2 + digits);
        const cp = /^[0-9A-Fa-f]+$/.test(hex) && hex.length === digits ? parseInt(hex, 16) : -1;
        if (cp < 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
          return { ok: false, message: `\\${e} must be followed by ${digits} hex digits of a Unicode scalar value`, at: j };
        key += String.fromCodePoint(cp);
        j += 2 + digits;
      } else {
        return { ok: false, message: `invalid escape "\\${e}" in a quoted key`, at: j };
      }
    }
  }
  const m = /[A-Za-z0-9_-]+/y;
  m.lastIndex = i;
  const bare = m.exec(s);
  if (!bare) return { ok: false, message: "expected a key", at: i };
  return { ok: true, key: bare[0], end: i + bare[0].length };
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

/** What a syntax error is called, and how to fix it (e.g. `manifest.syntax`, "fix the TOML syntax at the position shown"). */
export interface TomlSyntaxError {
  readonly code: ErrorCode;
  readonly hint: string;
}

/** Parses a whole document; a syntax error is a CprError `error.code` whose `where` is `<file>:<line>:<col>`. */
export function parseTomlFile(text: string, file: string, error: TomlSyntaxError): TomlTable {
  try {
    return smolParse(text) as TomlTable;
  } catch (e) {
    if (e instanceof TomlError) {
      const what = (e.message.split("\n")[0] ?? e.message).replace(/^Invalid TOML document:\s*/, "");
      throw new CprError(error.code, `${file} is not valid TOML: ${what}`, {
        where: `${file}:${e.line}:${e.column}`,
        hint: error.hint,
        cause: e,
      });
    }
    throw new CprError(error.code, `${file} is not valid TOML: ${e instanceof Error ? e.message : String(e)}`, {
      where: file,
      hint: error.hint,
      cause: e,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Source positions: parsed values carry none, so semantic errors find their key's line in the text.

/** 1-based. */
export interface Pos {
  readonly line: number;
  readonly col: number;
}

function pathId(path: TomlPath): string {
  return JSON.stringify(path);
}

/**
 * Finds where keys and table headers are written, by a light line scan (tables, arrays of tables, dotted and quoted
 * keys, and the keys of one-line inline tables). The n-th `[[a]]` header (from 0) and the keys under it are found
 * at `["a", n, …]`; `["a"]` is the first. Good enough to point at the line of a semantic error; never throws.
 */
export class KeyLocator {
  private readonly keys = new Map<string, Pos>();
  private readonly lines: string[];
  /** Array-of-tables path → index of its last `[[…]]` header so far. */
  private readonly arrays = new Map<string, number>();

  constructor(text: string) {
    this.lines = text.split(/\r?\n/);
    let table: TomlPath = [];
    let inString: string | null = null; // the closing delimiter of an open multi-line string
    this.lines.forEach((line, index) => {
      const lineNo = index + 1;
      if (inString !== null) {
        if (countOf(line, inString) % 2 === 1) inString = null;
        return;
      }
      const start = skipTomlSpace(line, 0);
      if (line[start] === "[") {
        const array = line[start + 1] === "[";
        const parsed = scanKey(line, start + (array ? 2 : 1));
        if (parsed.ok) {
          table = array ? this.nextElement(parsed.keys) : this.resolve(parsed.keys);
          for (let n = 1; n <= table.length; n++) this.record(table.slice(0, n), { line: lineNo, col: start + 1 });
        }
        return;
      }
      const end = this.recordKeyValue(table, line, start, lineNo);
      if (end !== null) {
        for (const delim of ['"""', "'''"]) {
          if (countOf(line.slice(end), delim) % 2 === 1) inString = delim;
        }
      }
    });
  }

  /** A header's keys with the current index after each array of tables they pass through. */
  private resolve(keys: readonly string[]): (string | number)[] {
    const out: (string | number)[] = [];
    for (const k of keys) {
      out.push(k);
      const n = this.arrays.get(pathId(out));
      if (n !== undefined) out.push(n);
    }
    return out;
  }

  /** The path of a new element of the array of tables `keys`. */
  private nextElement(keys: readonly string[]): (string | number)[] {
    const array = [...this.resolve(keys.slice(0, -1)), keys[keys.length - 1]!];
    const n = (this.arrays.get(pathId(array)) ?? -1) + 1;
    this.arrays.set(pathId(array), n);
    return [...array, n];
  }

  private record(path: TomlPath, pos: Pos): void {
    const k = pathId(path);
    if (!this.keys.has(k)) this.keys.set(k, pos);
  }

  /** Records `key = value` at `i`; returns where the value starts, or null when the line holds no key. */
  private recordKeyValue(table: TomlPath, line: string, i: number, lineNo: number): number | null {
    const parsed = scanKey(line, i);
    if (!parsed.ok) return null;
    let j = skipTomlSpace(line, parsed.end);
    if (line[j] !== "=") return null;
    const full = [...table, ...parsed.keys];
    for (let n = table.length + 1; n <= full.length; n++) this.record(full.slice(0, n), { line: lineNo, col: i + 1 });
    j = skipTomlSpace(line, j + 1);
    if (line[j] === "{") this.recordInline(full, line, j + 1, lineNo);
    return j;
  }

  /** Keys of a one-line inline table starting after its `{`. */
  private recordInline(table: TomlPath, line: string, i: number, lineNo: number): void {
    for (let guard = 0; guard < 64; guard++) {
      i = skipTomlSpace(line, i);
      if (i >= line.length || line[i] === "}") return;
      const parsed = scanKey(line, i);
      if (!parsed.ok) return;
      let j = skipTomlSpace(line, parsed.end);
      if (line[j] !== "=") return;
      const full = [...table, ...parsed.keys];
      for (let n = table.length + 1; n <= full.length; n++) this.record(full.slice(0, n), { line: lineNo, col: i + 1 });
      j = skipTomlSpace(line, j + 1);
      if (line[j] === "{") return this.recordInline(full, line, j + 1, lineNo);
      i = skipValue(line, j);
      if (line[i] !== ",") return;
      i++;
    }
  }

  /** Position of the longest recorded prefix of `path`. */
  find(path: TomlPath): Pos | null {
    for (let n = path.length; n > 0; n--) {
      const pos = this.keys.get(pathId(path.slice(0, n)));
      if (pos) return pos;
    }
    return null;
  }

  /** Position of the string literal `value` at or after the line of `path` (for array elements). */
  findValue(path: TomlPath, value: string): Pos | null {
    const from = this.find(path);
    if (!from) return null;
    const needle = JSON.stringify(value);
    for (let i = from.line - 1; i < this.lines.length; i++) {
      const col = this.lines[i]!.indexOf(needle);
      if (col !== -1) return { line: i + 1, col: col + 1 };
    }
    return from;
  }
}

function countOf(s: string, sub: string): number {
  return s.split(sub).length - 1;
}

/** Index just past one inline value (string, array, table or scalar) starting at `i`. */
function skipValue(s: string, i: number): number {
  let depth = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '"' || c === "'") {
      i++;
      while (i < s.length && s[i] !== c) i += c === '"' && s[i] === "\\" ? 2 : 1;
    } else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      if (depth === 0) return i;
      depth--;
    } else if (c === "," && depth === 0) return i;
    i++;
  }
  return i;
}

// ---------------------------------------------------------------------------------------------------------------
// Typed reading with errors that say where and what was expected.

export interface TomlReaderOptions {
  /** The codes of the reader's own errors: a value of the wrong type, a missing key, an unknown key. */
  readonly codes: { readonly type: ErrorCode; readonly missing: ErrorCode; readonly unknownKey: ErrorCode };
  /**
   * For a file a tool writes (atom.lock): how to get a good one again (e.g. "regenerate the lock with `cpr resolve`"),
   * the hint of the reader's own errors. Without it they say what to write.
   */
  readonly regenerate?: string;
}

/** `"a", "b"`: strings quoted as JSON, for messages. */
export function quotedList(items: Iterable<string>): string {
  return [...items].map((s) => JSON.stringify(s)).join(", ");
}

/** Reads the parsed values of one file; every error is a CprError whose `where` is `<file>:<line>:<col>` when known. */
export class TomlReader {
  private locator: KeyLocator | null = null;

  constructor(
    readonly file: string,
    private readonly text: string,
    private readonly options: TomlReaderOptions,
  ) {}

  /** Key positions, scanned only when an error needs one (a valid file never pays for the scan). */
  get locate(): KeyLocator {
    this.locator ??= new KeyLocator(this.text);
    return this.locator;
  }

  /** `<file>:<line>:<col>` of `path` (or of the string `value` in the array at `path`), else `<file>`. */
  where(path: TomlPath, value?: string): string {
    const pos = value === undefined ? this.locate.find(path) : this.locate.findValue(path, value);
    return pos ? `${this.file}:${pos.line}:${pos.col}` : this.file;
  }

  fail(code: ErrorCode, path: TomlPath, message: string, hint: string, value?: string): never {
    throw new CprError(code, message, { where: this.where(path, value), hint });
  }

  private typeHint(path: TomlPath, example: string | undefined): string {
    return this.options.regenerate ?? `write e.g. ${tomlKey(String(path[path.length - 1] ?? ""))} = ${example ?? '"…"'}`;
  }

  table(v: unknown, path: TomlPath): TomlTable {
    if (!isTomlTable(v)) {
      const hint = this.options.regenerate ?? `write it as a [${dottedKey(path.map(String))}] table`;
      this.fail(this.options.codes.type, path, `${keyPathText(path)} must be a table, got ${describeTomlValue(v)}`, hint);
    }
    return v;
  }

  string(v: unknown, path: TomlPath, example?: string): string {
    if (typeof v !== "string")
      this.fail(
        this.options.codes.type,
        path,
        `${keyPathText(path)} must be a string, got ${describeTomlValue(v)}`,
        this.typeHint(path, example),
      );
    return v;
  }

  strings(v: unknown, path: TomlPath, example?: string): string[] {
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
      const message = `${keyPathText(path)} must be an array of strings, got ${describeTomlValue(v)}`;
      this.fail(this.options.codes.type, path, message, this.typeHint(path, example));
    }
    return v as string[];
  }

  /** `t[key]`, which must be there. */
  required(t: TomlTable, key: string, path: TomlPath): unknown {
    if (t[key] === undefined) {
      const hint = this.options.regenerate ?? `add ${tomlKey(key)} = … to ${tableText(path)}`;
      this.fail(this.options.codes.missing, path, `${keyPathText(path)} has no "${key}"`, hint);
    }
    return t[key];
  }

  /** Rejects keys of `t` outside `allowed`, naming the first one found. */
  onlyKeys(t: TomlTable, path: TomlPath, allowed: readonly string[], hint?: string): void {
    for (const key of Object.keys(t)) {
      if (allowed.includes(key)) continue;
      const where = path.length === 0 ? "at the top level" : `in ${tableText(path)}`;
      const regenerate = this.options.regenerate;
      this.fail(
        this.options.codes.unknownKey,
        [...path, key],
        `unknown key "${key}" ${where}; expected only ${quotedList(allowed)}`,
        hint ?? (regenerate ? `remove it, or ${regenerate}` : `remove "${key}" or check its spelling`),
      );
    }
  }

  /** normalizeLabel, with this file's position (of `path`, or of the string `value` in it) attached to its error. */
  label(text: string, kind: LabelKind, path: TomlPath, what: string, value?: string): string {
    try {
      return normalizeLabel(text, kind, what);
    } catch (e) {
      if (!(e instanceof CprError)) throw e;
      throw new CprError(e.code, e.message, { where: this.where(path, value), hint: e.hint, cause: e });
    }
  }
}
