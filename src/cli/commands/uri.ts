import { flag, strs, type Command, type Context } from "../command.js";
import { UsageError } from "../../protocol/errors.js";
import {
  aliasCandidate,
  DEFAULT_ALIASES,
  explainAtomUri,
  explainGitUrl,
  formatAtomUri,
  type Aliases,
  type GitUrl,
} from "../../protocol/uri.js";

/** What `cpr uri --json` prints: exactly these keys, null where a field does not apply. */
export interface UriReport {
  url: string | null;
  scheme: string | null;
  user: string | null;
  host: string | null;
  port: number | null;
  path: string | null;
  label: string | null;
  version: string | null;
}

interface Explained {
  readonly report: UriReport;
  /** Alias rewrites, written fragment first; empty without an alias. */
  readonly aliasSteps: readonly string[];
  /** `<url>::<label>[@req]` for atom URIs, null for a URL only. */
  readonly canonical: string | null;
}

/** `cpr uri`: show how an atom URI (or, with --url, a URL) expands. */
export const command: Command = {
  name: "uri",
  usage: "cpr uri URI [--url] [--alias NAME=VALUE ...] [--json]",
  summary: "Explain how an atom URI expands",
  help: `Parses URI as an atom URI, [URL::]LABEL[@REQUIREMENT] (docs/formats.md §13), and prints what it expands to: the git
URL, its scheme, user, host, port and path, the atom label and the version requirement in canonical form (a bare
version is a caret requirement: 1.2 means ^1.2). Nothing is fetched.

Input without '::' that contains ':' or '/' is read as a URL only (no label); --url forces that, e.g. for 'bb'.

Default aliases: gh github.com, gl gitlab.com, bb bitbucket.org, cb codeberg.org, sh sr.ht,
ekl gh:ekala-project, atom ekl:atom, cogs ekl:corepkgs, eka ekl:eka, nxs gh:nixos, pkgs nxs:nixpkgs.
An unknown alias is an error; write ./name for a relative directory.

Options:
  --url               Parse URI as a URL only (the form \`add direct nix\` takes)
  --alias NAME=VALUE  Add or override an alias for this run (repeatable), e.g. --alias work=gh:my-org
  --json              Print {"url","scheme","user","host","port","path","label","version"} on stdout;
                      fields that do not apply are null

Examples:
  cpr uri gh:owner/repo::foo@^1
  cpr uri pkgs::zlib@1.2           # https://github.com/nixos/nixpkgs, label zlib, version ^1.2
  cpr uri git@github.com:owner/repo::this-atom --json
  cpr uri ./repo::foo
  cpr uri --url bb

Exit codes: 0 parsed, 1 invalid URI (unknown alias, bad URL, label or requirement), 2 usage error.
`,
  options: { url: { type: "boolean" }, alias: { type: "string", multiple: true } },
  maxPositionals: 1,
  async run(ctx, args) {
    const input = args.positionals[0];
    if (input === undefined) throw new UsageError("missing URI", { hint: "e.g. `cpr uri gh:owner/repo::foo@^1`" });
    const aliases = withAliasOptions(strs(args, "alias"));
    const urlOnly = flag(args, "url") || (!input.includes("::") && /[:/]/.test(input));
    const explained = urlOnly ? explainUrl(input, aliases) : explainUri(input, aliases);
    if (args.values.json === true) ctx.term.json(explained.report);
    else printHuman(ctx, explained);
    return 0;
  },
};

/** DEFAULT_ALIASES plus `--alias NAME=VALUE` options. */
function withAliasOptions(options: readonly string[]): Aliases {
  const aliases: Record<string, string> = { ...DEFAULT_ALIASES };
  for (const option of options) {
    const eq = option.indexOf("=");
    const name = eq < 0 ? option : option.slice(0, eq);
    if (eq < 0 || aliasCandidate(name)?.name !== name) {
      throw new UsageError(`--alias expects NAME=VALUE with a NAME free of ':', '/' and '.', got '${option}'`, {
        hint: "e.g. --alias work=gh:my-org",
      });
    }
    aliases[name] = option.slice(eq + 1);
  }
  return aliases;
}

function urlFields(url: GitUrl | null): Omit<UriReport, "label" | "version"> {
  if (url === null) return { url: null, scheme: null, user: null, host: null, port: null, path: null };
  return { url: url.url, scheme: url.scheme, user: url.user, host: url.host, port: url.port, path: url.path };
}

function explainUri(input: string, aliases: Aliases): Explained {
  const { uri, aliasSteps } = explainAtomUri(input, aliases);
  const report = { ...urlFields(uri.url), label: uri.label, version: uri.requirement?.text ?? null };
  return { report, aliasSteps, canonical: formatAtomUri(uri) };
}

function explainUrl(input: string, aliases: Aliases): Explained {
  const { url, aliasSteps } = explainGitUrl(input, aliases);
  return { report: { ...urlFields(url), label: null, version: null }, aliasSteps, canonical: null };
}

function printHuman(ctx: Context, { report, aliasSteps, canonical }: Explained): void {
  const rows: Array<[string, string]> = [];
  if (aliasSteps.length > 0) rows.push(["alias", aliasSteps.join(" → ")]);
  rows.push(["url", report.url ?? "- (local atom)"]);
  if (report.url !== null) {
    rows.push(["scheme", report.scheme ?? "-"], ["user", report.user ?? "-"], ["host", report.host ?? "-"]);
    rows.push(["port", report.port === null ? "-" : String(report.port)], ["path", report.path ?? "-"]);
  }
  if (canonical !== null) {
    rows.push(["label", report.label ?? "-"], ["version", report.version ?? "- (any)"], ["uri", canonical]);
  }
  const width = Math.max(...rows.map(([key]) => key.length));
  for (const [key, value] of rows) ctx.term.out(`${key.padEnd(width)}  ${value}`);
}
