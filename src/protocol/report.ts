/**
 * How capabilities talk to the user without knowing about terminals: the CLI passes a Reporter that writes to
 * stderr (with colour and progress only on a TTY); tests and the registry pass their own or `silentReporter`.
 */
import type { WarningCode } from "./error-codes.js";

/** A finding that does not fail the command: a code of WARNING_CODES (docs/errors.md) and a sentence. */
export interface Warning {
  readonly code: WarningCode;
  readonly message: string;
}

export interface Progress {
  /** Advance by `n` (default 1). */
  tick(n?: number): void;
  /** Finish and clear the bar. */
  done(): void;
}

export interface Reporter {
  info(message: string): void;
  /** A warning: `--json` output lists it as `{code, message}`, humans see the message on stderr. */
  warn(code: WarningCode, message: string): void;
  /** A progress bar for `total` steps; only drawn on a TTY, and only when worth it. */
  progress(label: string, total: number): Progress;
}

const noProgress: Progress = { tick() {}, done() {} };

export const silentReporter: Reporter = {
  info() {},
  warn() {},
  progress() {
    return noProgress;
  },
};

/** A reporter that records messages; handy in tests. `warnings` holds the warnings' messages, `warned` all of each. */
export function recordingReporter(): Reporter & { infos: string[]; warnings: string[]; warned: Warning[] } {
  const infos: string[] = [];
  const warnings: string[] = [];
  const warned: Warning[] = [];
  return {
    infos,
    warnings,
    warned,
    info: (m) => void infos.push(m),
    warn: (code, message) => {
      warnings.push(message);
      warned.push({ code, message });
    },
    progress: () => noProgress,
  };
}
