/**
 * Labels and tags (docs/formats.md §2). Validation reads the pinned XID tables in `unicode-xid.ts` (see
 * `scripts/gen-xid.ts`), never the running Node's regex Unicode data, so results do not depend on the Node version.
 * NFKC normalization itself is `String.prototype.normalize`, whose results are stable for assigned characters.
 */
import { CprError, type ErrorCode } from "./errors.js";
import { XID_CONTINUE, XID_START } from "./unicode-xid.js";

/** Label: atom labels, dependency names. Tag: set tags and meta tags (adds `.` and `:`, forbids `..`). */
export type LabelKind = "label" | "tag";

/** Maximum UTF-8 length of a normalised label or tag, in bytes. */
export const MAX_LABEL_BYTES = 128;

/** True when `cp` lies in one of the flattened inclusive ranges `[s0, e0, s1, e1, …]` (binary search). */
export function inRanges(ranges: readonly number[], cp: number): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (cp < ranges[2 * mid]!) hi = mid - 1;
    else if (cp > ranges[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Unicode XID_Start, from the pinned table. */
export function isXidStart(cp: number): boolean {
  return inRanges(XID_START, cp);
}

/** Unicode XID_Continue, from the pinned table. */
export function isXidContinue(cp: number): boolean {
  return inRanges(XID_CONTINUE, cp);
}

/** Whether `cp` may follow the first character of a label or tag. */
function allowedAfterStart(cp: number, kind: LabelKind): boolean {
  if (cp === 0x2d /* - */ || isXidContinue(cp)) return true;
  return kind === "tag" && (cp === 0x2e /* . */ || cp === 0x3a) /* : */;
}

/** Names of characters that are invisible or easily mistaken, shown instead of the character itself. */
const CHAR_NAMES: Readonly<Record<number, string>> = {
  0x09: "CHARACTER TABULATION (tab)",
  0x0a: "LINE FEED",
  0x0b: "LINE TABULATION",
  0x0c: "FORM FEED",
  0x0d: "CARRIAGE RETURN",
  0x20: "SPACE",
  0x7f: "DELETE",
  0x85: "NEXT LINE",
  0xa0: "NO-BREAK SPACE",
  0xad: "SOFT HYPHEN",
  0x034f: "COMBINING GRAPHEME JOINER",
  0x061c: "ARABIC LETTER MARK",
  0x115f: "HANGUL CHOSEONG FILLER",
  0x1160: "HANGUL JUNGSEONG FILLER",
  0x1680: "OGHAM SPACE MARK",
  0x180e: "MONGOLIAN VOWEL SEPARATOR",
  0x2000: "EN QUAD",
  0x2001: "EM QUAD",
  0x2002: "EN SPACE",
  0x2003: "EM SPACE",
  0x2004: "THREE-PER-EM SPACE",
  0x2005: "FOUR-PER-EM SPACE",
  0x2006: "SIX-PER-EM SPACE",
  0x2007: "FIGURE SPACE",
  0x2008: "PUNCTUATION SPACE",
  0x2009: "THIN SPACE",
  0x200a: "HAIR SPACE",
  0x200b: "ZERO WIDTH SPACE",
  0x200c: "ZERO WIDTH NON-JOINER",
  0x200d: "ZERO WIDTH JOINER",
  0x200e: "LEFT-TO-RIGHT MARK",
  0x200f: "RIGHT-TO-LEFT MARK",
  0x2028: "LINE SEPARATOR",
  0x2029: "PARAGRAPH SEPARATOR",
  0x202a: "LEFT-TO-RIGHT EMBEDDING",
  0x202b: "RIGHT-TO-LEFT EMBEDDING",
  0x202c: "POP DIRECTIONAL FORMATTING",
  0x202d: "LEFT-TO-RIGHT OVERRIDE",
  0x202e: "RIGHT-TO-LEFT OVERRIDE",
  0x202f: "NARROW NO-BREAK SPACE",
  0x205f: "MEDIUM MATHEMATICAL SPACE",
  0x2060: "WORD JOINER",
  0x2061: "FUNCTION APPLICATION",
  0x2062: "INVISIBLE TIMES",
  0x2063: "INVISIBLE SEPARATOR",
  0x2064: "INVISIBLE PLUS",
  0x2066: "LEFT-TO-RIGHT ISOLATE",
  0x2067: "RIGHT-TO-LEFT ISOLATE",
  0x2068: "FIRST STRONG ISOLATE",
  0x2069: "POP DIRECTIONAL ISOLATE",
  0x3000: "IDEOGRAPHIC SPACE",
  0x3164: "HANGUL FILLER",
  0xfeff: "ZERO WIDTH NO-BREAK SPACE (byte order mark)",
  0xfffc: "OBJECT REPLACEMENT CHARACTER",
  0xfffd: "REPLACEMENT CHARACTER",
};

/** Characters that render as nothing or as blank space, or that are not characters at all. */
const INVISIBLE = /^[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}]$/u;
/** Combining marks: invisible when shown on their own. */
const COMBINING = /^[\p{Mn}\p{Me}]$/u;

function hex(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * How a character is shown in messages: `'!'` when it is visible, else `U+200B ZERO WIDTH SPACE`, or a code
 * point with its kind (`U+0007 (control character)`) for invisible characters without a listed name.
 */
export function describeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  const name = CHAR_NAMES[cp];
  if (name !== undefined) return `${hex(cp)} ${name}`;
  if (!INVISIBLE.test(ch) && !COMBINING.test(ch)) return ch === "'" ? `"'"` : `'${ch}'`;
  if (/^\p{Cc}$/u.test(ch)) return `${hex(cp)} (control character)`;
  if (/^\p{Cf}$/u.test(ch)) return `${hex(cp)} (invisible format character)`;
  if (/^\p{Z}$/u.test(ch)) return `${hex(cp)} (space)`;
  if (/^\p{Cs}$/u.test(ch)) return `${hex(cp)} (lone surrogate)`;
  if (COMBINING.test(ch)) return `${hex(cp)} (combining mark)`;
  return `${hex(cp)} (unassigned or private-use)`;
}

/** The input for messages: JSON-quoted (escaping controls), with other invisible characters as `\u{…}`. */
function quote(text: string): string {
  let out = "";
  for (const ch of JSON.stringify(text)) {
    out += INVISIBLE.test(ch) && ch !== " " ? `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}` : ch;
  }
  return out;
}

function allowedText(kind: LabelKind): string {
  const start = "start with a letter (Unicode XID_Start; not a digit, '_', '-' or punctuation)";
  const rest =
    kind === "tag"
      ? "continue with letters, digits, marks, '_', '-', '.' or ':' (never '..')"
      : "continue with letters, digits, marks, '_' or '-'";
  return `a ${kind} must ${start} and ${rest}, at most ${MAX_LABEL_BYTES} UTF-8 bytes`;
}

function fail(code: ErrorCode, message: string, kind: LabelKind): never {
  throw new CprError(code, message, { hint: allowedText(kind) });
}

/** The characters after the first that `kind` does not allow, in input order, with repeats. */
function invalidLaterChars(chars: readonly string[], kind: LabelKind): string[] {
  return chars.slice(1).filter((ch) => !allowedAfterStart(ch.codePointAt(0)!, kind));
}

function listChars(chars: readonly string[]): string {
  return chars.map(describeChar).join(", ");
}

/**
 * Validate per docs/formats.md §2 and return the NFKC-normalised string. Throws CprError with code
 * `label.empty` | `label.too-long` | `label.invalid-start` | `label.invalid-chars` | `tag.double-dot`; the message
 * names the offending characters (all of them, in input order, with repeats, showing U+XXXX for invisible ones).
 * `what` names the thing in messages, e.g. "label" or "[package].label".
 */
export function normalizeLabel(input: string, kind: LabelKind = "label", what?: string): string {
  const name = what ?? kind;
  const text = input.normalize("NFKC");
  if (text === "") fail("label.empty", `${name} is empty`, kind);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_LABEL_BYTES) {
    fail("label.too-long", `${name} ${quote(text)} is ${bytes} UTF-8 bytes long; the limit is ${MAX_LABEL_BYTES}`, kind);
  }
  const chars = Array.from(text);
  const first = chars[0]!;
  const invalid = invalidLaterChars(chars, kind);
  if (!isXidStart(first.codePointAt(0)!)) {
    const also = invalid.length ? `; it also has invalid characters: ${listChars(invalid)}` : "";
    fail("label.invalid-start", `${name} ${quote(text)} cannot start with ${describeChar(first)}${also}`, kind);
  }
  if (invalid.length > 0) {
    const noun = invalid.length === 1 ? "an invalid character" : "invalid characters";
    fail("label.invalid-chars", `${name} ${quote(text)} has ${noun}: ${listChars(invalid)}`, kind);
  }
  if (kind === "tag" && text.includes("..")) fail("tag.double-dot", `${name} ${quote(text)} contains '..'`, kind);
  return text;
}

/** True when `normalizeLabel` would accept the input unchanged by errors. */
export function isValidLabel(input: string, kind: LabelKind = "label"): boolean {
  try {
    normalizeLabel(input, kind);
    return true;
  } catch {
    return false;
  }
}
