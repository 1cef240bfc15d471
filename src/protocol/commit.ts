/**
 * The atom commit (docs/formats.md §7): exact bytes of format pre1, its object id (hashed as git-object.ts hashes every object),
 * and a reader that recognises legacy formats. Pure: no I/O. Writing the object into a repository is the git layer's job.
 */
import { CprError } from "./errors.js";
import { gitObjectId, isObjectId, objectFormatOf } from "./git-object.js";

export interface AtomCommitInput {
  /** Hex id of the atom directory's existing tree in the origin commit. */
  readonly tree: string;
  /** Hex id of the origin commit. */
  readonly origin: string;
  /** NFKC label. */
  readonly label: string;
  /** Canonical version text. */
  readonly version: string;
}

/** The identity line tail of every atom commit: empty name, empty email, time 0, UTC. */
const EMPTY_IDENTITY = " <> 0 +0000";
/** The `format` header value this module writes. */
export const ATOM_FORMAT = "pre1";

/** The commit object body (no `commit <len>\0` header). */
export function atomCommitBody(input: AtomCommitInput): Buffer {
  const { tree, origin, label, version } = input;
  if (objectFormatOf(tree) !== objectFormatOf(origin)) {
    throw new CprError("commit.bad-id", `tree ${tree} and origin ${origin} come from different object formats`, {
      hint: "both ids must come from the same repository",
    });
  }
  for (const [what, value] of [
    ["label", label],
    ["version", version],
  ] as const) {
    if (value === "" || /[\n\0]/.test(value)) {
      throw new CprError(
        "commit.bad-field",
        `the atom ${what} must be non-empty and hold no newline or NUL, got ${JSON.stringify(value)}`,
        {
          hint: `validate the ${what} before building the commit`,
        },
      );
    }
  }
  const text =
    `tree ${tree}\n` +
    `author ${EMPTY_IDENTITY}\n` +
    `committer ${EMPTY_IDENTITY}\n` +
    `origin ${origin}\n` +
    `format ${ATOM_FORMAT}\n` +
    `\n` +
    `publish(${label}): ${version}`;
  return Buffer.from(text, "utf8");
}

/** atomCommitBody + gitObjectId. Object format is inferred from the tree id length (40 → sha1, 64 → sha256). */
export function atomCommitId(input: AtomCommitInput): string {
  return gitObjectId("commit", atomCommitBody(input), objectFormatOf(input.tree));
}

export type AtomCommitFormat = "pre1" | "pre1.0" | "1" | "unknown";

export interface ParsedAtomCommit {
  readonly tree: string;
  readonly parents: readonly string[];
  /** Origin commit (`origin` header in pre1/pre1.0, `src` in format 1), or null. */
  readonly origin: string | null;
  /** `path` header (pre1.0 and format 1), else null. */
  readonly path: string | null;
  readonly format: AtomCommitFormat;
  /** true for anything but pre1. */
  readonly legacy: boolean;
  /**
   * From the message `publish(<label>): <version>` (pre1) or `<label>: <version>` (pre1.0 and format 1), else null.
   * A trailing newline is tolerated on legacy messages.
   */
  readonly label: string | null;
  readonly version: string | null;
  /** True when the body is exactly what atomCommitBody would produce for (tree, origin, label, version). */
  readonly canonical: boolean;
}

function malformed(why: string): CprError {
  return new CprError("commit.malformed", `not a valid git commit object: ${why}`, {
    hint: "the ref does not point at a commit that git itself could have written; check the remote",
  });
}

/** Header lines in order; continuation lines (starting with a space) are folded into the previous value. */
function parseHeaders(text: string): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (const line of text.split("\n")) {
    const last = headers[headers.length - 1];
    if (line.startsWith(" ")) {
      if (!last) throw malformed("continuation line before any header");
      last[1] += "\n" + line.slice(1);
      continue;
    }
    const sp = line.indexOf(" ");
    if (sp <= 0) throw malformed(`header line ${JSON.stringify(line)} has no key`);
    headers.push([line.slice(0, sp), line.slice(sp + 1)]);
  }
  return headers;
}

/** Parse a raw commit body. Never throws on odd-but-valid git commits; throws CprError `commit.malformed` otherwise. */
export function parseAtomCommit(body: Uint8Array): ParsedAtomCommit {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  const split = text.indexOf("\n\n");
  const headerText = split === -1 ? text.replace(/\n$/, "") : text.slice(0, split);
  const message = split === -1 ? "" : text.slice(split + 2);
  if (headerText === "") throw malformed("it is empty");
  const headers = parseHeaders(headerText);

  const first = headers[0];
  if (!first || first[0] !== "tree" || !isObjectId(first[1])) throw malformed("the first line must be `tree <id>`");
  const tree = first[1];
  const parents: string[] = [];
  let i = 1;
  for (; i < headers.length && headers[i]![0] === "parent"; i++) {
    const p = headers[i]![1];
    if (!isObjectId(p) || p.length !== tree.length) throw malformed(`bad parent id ${JSON.stringify(p)}`);
    parents.push(p);
  }
  if (headers[i]?.[0] !== "author") throw malformed("`author` must follow tree and parents");
  if (headers[i + 1]?.[0] !== "committer") throw malformed("`committer` must follow `author`");

  const extra = headers.slice(i + 2);
  const header = (key: string): string | null => extra.find(([k]) => k === key)?.[1] ?? null;
  const formatHeader = header("format");
  const src = header("src");
  const path = header("path");

  let format: AtomCommitFormat;
  if (formatHeader === "pre1") format = "pre1";
  else if (formatHeader === "pre1.0") format = "pre1.0";
  else if ((formatHeader === null || formatHeader === "1") && src !== null && path !== null) format = "1";
  else format = "unknown";

  const origin = format === "1" ? src : header("origin");

  let label: string | null = null;
  let version: string | null = null;
  const m =
    format === "pre1"
      ? /^publish\(([^\n]+)\): ([^\s]+)$/.exec(message)
      : format === "pre1.0" || format === "1"
        ? /^([^\n:]+): ([^\s]+)\n?$/.exec(message)
        : null;
  if (m) {
    label = m[1]!;
    version = m[2]!;
  }

  let canonical = false;
  if (format === "pre1" && origin !== null && label !== null && version !== null && isObjectId(origin)) {
    try {
      canonical = Buffer.from(body).equals(atomCommitBody({ tree, origin, label, version }));
    } catch {
      canonical = false;
    }
  }

  return { tree, parents, origin, path, format, legacy: format !== "pre1", label, version, canonical };
}
