import type { Progress, Reporter, Warning } from "../protocol/report.js";

/**
 * The terminal: machine output (`--json`, listings) goes to stdout; logs, warnings and progress go to stderr.
 * Colour only when stderr is a TTY and NO_COLOR is unset; progress bars only on a TTY.
 */
export interface Terminal extends Reporter {
  /** Write a line to stdout. */
  out(line: string): void;
  /**
   * Write a JSON document to stdout, indented (or on one line with `line`). A JSON object gains
   * `"warnings": [{code, message}, …]`, the warnings emitted so far, when there were any and it has no `warnings`
   * key of its own.
   */
  json(value: unknown, opts?: { line?: boolean }): void;
  /** Every warning emitted so far, in order. */
  readonly warnings: readonly Warning[];
  error(message: string): void;
  /** Style helpers, identity when colour is off. */
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  readonly color: boolean;
  readonly quiet: boolean;
}

export interface TerminalOptions {
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env?: NodeJS.ProcessEnv;
  quiet?: boolean;
}

/** `value` with `warnings` added, when it is a JSON object without its own and there are any. */
function withWarnings(value: unknown, warnings: readonly Warning[]): unknown {
  if (warnings.length === 0 || value === null || typeof value !== "object" || Array.isArray(value) || Object.hasOwn(value, "warnings"))
    return value;
  return { ...value, warnings: [...warnings] };
}

export function createTerminal(opts: TerminalOptions = {}): Terminal {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const tty = Boolean(stderr.isTTY);
  const color = tty && env.NO_COLOR === undefined && env.TERM !== "dumb";
  const quiet = Boolean(opts.quiet);
  const paint = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const yellow = paint("33");
  const red = paint("31");
  const warnings: Warning[] = [];
  let activeBar: { clear(): void; redraw(): void } | null = null;
  const log = (line: string) => {
    activeBar?.clear();
    stderr.write(line + "\n");
    activeBar?.redraw();
  };

  return {
    color,
    quiet,
    out: (line) => void stdout.write(line + "\n"),
    json: (value, o = {}) => void stdout.write(JSON.stringify(withWarnings(value, warnings), null, o.line ? undefined : 2) + "\n"),
    warnings,
    info: (m) => {
      if (!quiet) log(m);
    },
    warn: (code, message) => {
      warnings.push({ code, message });
      log(`${yellow("warning:")} ${message}`);
    },
    error: (m) => log(`${red("error:")} ${m}`),
    bold: paint("1"),
    dim: paint("2"),
    green: paint("32"),
    yellow,
    red,
    progress(label: string, total: number): Progress {
      if (!tty || quiet || total < 2) return { tick() {}, done() {} };
      let n = 0;
      let last = 0;
      const width = () => Math.max(10, Math.min(40, (stderr.columns ?? 80) - label.length - 20));
      const draw = () => {
        const w = width();
        const filled = Math.round((n / total) * w);
        stderr.write(`\r${label} [${"=".repeat(filled)}${" ".repeat(w - filled)}] ${n}/${total}`);
      };
      const bar = {
        clear: () => void stderr.write("\r\x1b[2K"),
        redraw: draw,
      };
      activeBar = bar;
      draw();
      return {
        tick(k = 1) {
          n = Math.min(total, n + k);
          const now = Date.now();
          if (now - last > 50 || n === total) {
            last = now;
            draw();
          }
        },
        done() {
          bar.clear();
          if (activeBar === bar) activeBar = null;
        },
      };
    },
  };
}
