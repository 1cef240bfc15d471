/** Small helpers for TOML values: writing strings by hand (atom.lock, ekala.toml, manifest edits are written byte for
 * byte), and checking and describing parsed values in error messages. */

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
