/**
 * HTML output for the pages, escaped by construction: `html` is a tagged template whose interpolated values are
 * escaped text unless they are `Html` themselves (the output of another `html` template). Nothing else makes Html,
 * so text from manifests (labels, descriptions, tags, URLs) cannot become markup. Bidirectional-override characters
 * are shown as visible `U+XXXX` marks, so they cannot reorder what a reader sees.
 */

/** Markup that is safe to emit as is. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
/** Bidi controls (embeddings, overrides, isolates, marks): shown, never applied. */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** Other controls a manifest may hold (C0 but tab, newline and carriage return; DEL; C1). */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

/** Whether a text holds anything escapeText or attr change (most labels, versions and paths do not). */
const NEEDS_ESCAPE = /[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const codePoint = (c: string): string => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;

/** Text as HTML character data: escaped, with bidi and control characters replaced by visible marks. */
export function escapeText(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text
    .replace(/[&<>"']/g, (c) => ESCAPES[c]!)
    .replace(BIDI, (c) => `<span class=ctl>${codePoint(c)}</span>`)
    .replace(CONTROL, (c) => `<span class=ctl>${codePoint(c)}</span>`);
}

/** Text for an attribute value or a title (no markup there): escaped, bidi and controls as plain `[U+XXXX]`. */
export function attr(text: string): Html {
  if (!NEEDS_ESCAPE.test(text)) return new Html(text);
  return new Html(
    text
      .replace(/[&<>"']/g, (c) => ESCAPES[c]!)
      .replace(BIDI, (c) => `[${codePoint(c)}]`)
      .replace(CONTROL, (c) => `[${codePoint(c)}]`),
  );
}

type Piece = Html | string | number | null | undefined | false | readonly Piece[];

function piece(v: Piece): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return (v as readonly Piece[]).map(piece).join("");
  return escapeText(String(v));
}

/** The template: literal parts are markup, interpolations are escaped (Html and arrays of Html pass through). */
export function html(strings: TemplateStringsArray, ...values: Piece[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** A path of this server, each segment percent-encoded: `/atoms/<id>/<version>`. */
export function href(...segments: string[]): string {
  return "/" + segments.map(encodeURIComponent).join("/");
}

/** `path?k=v&…`, skipping null values, each part percent-encoded. */
export function withQuery(path: string, query: Record<string, string | number | null | undefined>): string {
  const parts = Object.entries(query)
    .filter((e): e is [string, string | number] => e[1] !== null && e[1] !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `${path}?${parts.join("&")}` : path;
}

/** A word for a POSIX shell: as is when it holds only safe characters, else single-quoted. */
export function shellWord(word: string): string {
  if (/^[A-Za-z0-9@%+=:,./_^~-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Bytes for people: `1.2 MiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** A unix-ms time as an ISO 8601 UTC text (to the second). */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
