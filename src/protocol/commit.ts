/**
 * The atom commit (spec §7): exact bytes of format pre1, object ids, and a reader that recognises legacy formats.
 */

export type ObjectFormat = "sha1" | "sha256";

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

/** The commit object body (no `commit <len>\0` header). */
export declare function atomCommitBody(input: AtomCommitInput): Buffer;
/** git object id: hash of `<type> <len>\0<body>` with SHA-1 or SHA-256. */
export declare function gitObjectId(type: "commit" | "tree" | "blob" | "tag", body: Uint8Array, format?: ObjectFormat): string;
/** atomCommitBody + gitObjectId. Object format is inferred from the tree id length (40 → sha1, 64 → sha256). */
export declare function atomCommitId(input: AtomCommitInput): string;

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
  /** From the message `publish(<label>): <version>` (pre1) or `<label>: <version>` (pre1.0), else null. */
  readonly label: string | null;
  readonly version: string | null;
  /** True when the body is exactly what atomCommitBody would produce for (tree, origin, label, version). */
  readonly canonical: boolean;
}

/** Parse a raw commit body. Never throws on odd-but-valid git commits; throws CprError `commit.malformed` otherwise. */
export declare function parseAtomCommit(body: Uint8Array): ParsedAtomCommit;
