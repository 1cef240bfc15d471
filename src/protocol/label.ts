import { CprError } from "./errors.js";

/** Label: atom labels, dependency names. Tag: set tags and meta tags (adds `.` and `:`, forbids `..`). */
export type LabelKind = "label" | "tag";

/** Maximum UTF-8 length of a normalised label or tag, in bytes. */
export const MAX_LABEL_BYTES = 128;

/**
 * Validate per spec §2 and return the NFKC-normalised string. Throws CprError with code
 * `label.empty` | `label.too-long` | `label.invalid-start` | `label.invalid-chars` | `tag.double-dot`; the message
 * names the offending characters (all of them, in input order, with repeats, showing U+XXXX for invisible ones).
 * `what` names the thing in messages, e.g. "label" or "[package].label".
 */
export function normalizeLabel(input: string, kind: LabelKind = "label", what?: string): string {
  void input; void kind; void what;
  throw new CprError("todo", "not implemented");
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
