/**
 * Errors every layer raises. A CprError carries what went wrong (`message`), where (`where`: a file, file:line:col,
 * a ref or a URL) and how to fix it (`hint`). The CLI prints all three and maps the class to an exit code:
 * UsageError → 2, any other CprError → 1. Its code is one of ERROR_CODES (src/protocol/error-codes.ts, docs/errors.md).
 */
import type { ErrorCode } from "./error-codes.js";

export type { ErrorCode } from "./error-codes.js";

export interface ErrorDetails {
  /** Where the problem is: `path/atom.toml:3:9`, a ref name, a URL… */
  where?: string;
  /** One sentence saying how to fix it. */
  hint?: string;
  cause?: unknown;
}

export class CprError extends Error {
  /** Stable machine-readable code, e.g. `label.invalid-start`, `publish.root-mismatch` (listed in ERROR_CODES). */
  readonly code: ErrorCode;
  readonly where: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "CprError";
    this.code = code;
    this.where = details.where;
    this.hint = details.hint;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, where: this.where ?? null, hint: this.hint ?? null };
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends CprError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("usage", message, details);
    this.name = "UsageError";
  }
}

/** Format an error on one or more lines for humans: `message (at where)` then `hint: …`. */
export function describeError(err: unknown): string {
  if (err instanceof CprError) {
    let s = err.message;
    if (err.where) s += `\n  at: ${err.where}`;
    if (err.hint) s += `\n  hint: ${err.hint}`;
    return s;
  }
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}
