/**
 * How capabilities talk to the user without knowing about terminals: the CLI passes a Reporter that writes to
 * stderr (with colour and progress only on a TTY); tests and the registry pass their own or `silentReporter`.
 */
export interface Progress {
  /** Advance by `n` (default 1). */
  tick(n?: number): void;
  /** Finish and clear the bar. */
  done(): void;
}

export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
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

/** A reporter that records messages; handy in tests. */
export function recordingReporter(): Reporter & { infos: string[]; warnings: string[] } {
  const infos: string[] = [];
  const warnings: string[] = [];
  return {
    infos,
    warnings,
    info: (m) => void infos.push(m),
    warn: (m) => void warnings.push(m),
    progress: () => noProgress,
  };
}
