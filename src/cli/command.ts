import type { ParseArgsConfig } from "node:util";
import type { Terminal } from "./terminal.js";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export interface Context {
  term: Terminal;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** One `cpr <verb>`. `run` returns the exit code (0 ok, 1 failed); usage errors are thrown as UsageError. */
export interface Command {
  name: string;
  /** `cpr publish [PATH|LABEL ...] [--all] …` */
  usage: string;
  /** One line, shown in `cpr --help`. */
  summary: string;
  /** Paragraphs after the usage line in `cpr <verb> --help`, including an options list. */
  help: string;
  options: OptionSpec;
  /** Maximum number of positionals, or Infinity. */
  maxPositionals?: number;
  run(ctx: Context, args: ParsedArgs): Promise<number>;
}

/** Helpers for reading parsed options with the right types. */
export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
  return typeof v === "string" ? v : undefined;
}

export function strs(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === "string");
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** Options every verb accepts. */
export const commonOptions: OptionSpec = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
};
