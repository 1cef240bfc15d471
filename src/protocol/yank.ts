/**
 * Yank records (docs/formats.md §15.5), pure: the ref a yank lives under, the record's bytes, and reading one back.
 * A yank withdraws a published version without deleting it: its atom refs stay as they are (so every existing lock
 * still fetches it, and eka, which lists only refs/eka/atoms/, sees no difference), and cpr's resolver stops picking
 * it for new locks. The record is a blob holding who yanked which commit and why, optionally signed as publishes
 * are (§15.1).
 */
import { CprError } from "./errors.js";
import { YANK_REFS_PREFIX } from "./refs.js";

/** Where yank records live: `refs/eka/yank/<label>/<version>`, parallel to refs/eka/atoms/. */
export const YANK_PREFIX = YANK_REFS_PREFIX;

/** `refs/eka/yank/<label>/<version>`: the yank record (a blob) of that version. */
export function yankRef(label: string, version: string): string {
  return `${YANK_PREFIX}${label}/${version}`;
}

/** The longest reason accepted, in bytes. */
export const MAX_REASON_BYTES = 4096;

export interface YankFields {
  readonly label: string;
  readonly version: string;
  /** The atom commit being yanked. */
  readonly commit: string;
  /** The yanker's git identity and time (`Name <email> 1700000000 +0000`). */
  readonly yanker: string;
  readonly reason: string;
}

/** A reason as the record holds it: trimmed, LF line ends, not empty, no NUL, at most MAX_REASON_BYTES. */
export function checkReason(text: string): string {
  const reason = text.replace(/\r\n?/g, "\n").trim();
  if (reason === "")
    throw new CprError("yank.reason", "the yank reason is empty", { hint: 'say why, e.g. --reason "data loss on upgrade, use 1.2.4"' });
  if (reason.includes("\0")) throw new CprError("yank.reason", "the yank reason holds a NUL byte");
  if (Buffer.byteLength(reason, "utf8") > MAX_REASON_BYTES)
    throw new CprError("yank.reason", `the yank reason is longer than ${MAX_REASON_BYTES} bytes`, { hint: "say it in a few lines" });
  return reason;
}

/** The unsigned record: header lines, a blank line, the reason, LF. A signature, when there is one, follows it. */
export function yankPayload(f: YankFields): string {
  return `yank ${f.label} ${f.version}\nobject ${f.commit}\nyanker ${f.yanker}\n\n${checkReason(f.reason)}\n`;
}

export interface YankRecord extends YankFields {
  /** The bytes a signature covers (everything before it). */
  readonly payload: string;
  /** An SSH or OpenPGP signature block, or null. */
  readonly signature: string | null;
}

const SIG_START = /^-----BEGIN (?:SSH SIGNATURE|PGP SIGNATURE)-----$/m;

/** Read a record; `where` names it in errors. */
export function parseYankRecord(text: string, where: string): YankRecord {
  const bad = (why: string) =>
    new CprError("yank.invalid", `${where} is not a yank record: ${why}`, {
      where,
      hint: "yank the version again with `cpr yank --undo`, then `cpr yank … --reason …`",
    });
  const m = SIG_START.exec(text);
  const payload = m ? text.slice(0, m.index) : text;
  const signature = m ? text.slice(m.index) : null;
  const split = payload.indexOf("\n\n");
  if (split < 0) throw bad("no blank line after the header");
  const head = payload.slice(0, split).split("\n");
  const first = /^yank (\S+) (\S+)$/.exec(head[0] ?? "");
  const object = /^object ([0-9a-f]{40}|[0-9a-f]{64})$/.exec(head[1] ?? "");
  const yanker = /^yanker (.+)$/.exec(head[2] ?? "");
  if (!first) throw bad("the first line is not `yank <label> <version>`");
  if (!object) throw bad("the second line is not `object <atom commit>`");
  if (!yanker || head.length !== 3) throw bad("the third and last header line is not `yanker <identity>`");
  const reason = payload.slice(split + 2).replace(/\n$/, "");
  if (reason.trim() === "") throw bad("the reason is empty");
  return { label: first[1]!, version: first[2]!, commit: object[1]!, yanker: yanker[1]!, reason, payload, signature };
}

/** The first line of a reason, for one-line displays (tables, warnings). */
export function reasonLine(reason: string): string {
  const [first, ...rest] = reason.split("\n");
  return rest.length ? `${first!} …` : first!;
}
