import type { Command } from "../command.js";
import { UsageError } from "../../protocol/errors.js";
import { loadConfig, type ConfigEntry } from "../../config/config.js";
import { ENV_VARIABLES } from "../../config/env.js";

function show(value: unknown): string {
  if (Array.isArray(value)) return value.length === 1 ? JSON.stringify(value[0]) : `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function from(e: ConfigEntry): string {
  return e.origin === null ? e.source : `${e.source}: ${e.origin}`;
}

/** One line per CPR_* variable: `NAME=VALUE-FORM  key: meaning`. */
const VARIABLES = (() => {
  const rows = ENV_VARIABLES.map((v) => [`${v.name}=${v.value}`, `${v.key}: ${v.meaning}`] as const);
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join("\n");
})();

/** `cpr config list`: every effective setting and where it came from, then every CPR_* variable. */
export const command: Command = {
  name: "config",
  usage: "cpr config list [--json]",
  summary: "Show the effective configuration and where each value comes from",
  help: `Prints every effective setting as "key = value  (source)", where source is default, user (the user config
file), project (cpr.toml at the set root) or env (a CPR_* variable). Later layers override earlier ones, per key.
Then every CPR_* variable cpr reads, the key it sets, and whether it is set here.

Files: $XDG_CONFIG_HOME/cpr/config.toml (default ~/.config/cpr/config.toml), then cpr.toml at the top of the git
work tree. Keys:
  [aliases]  NAME = "VALUE"          added to the default aliases (docs/formats.md §13.2), or overriding one
  [cache]    dir = "PATH"            cache directory (default $XDG_CACHE_HOME/cpr when absolute, else ~/.cache/cpr)
             listing-ttl = SECONDS   how long an ls-refs listing stays fresh (default 300)
  [locker]   label = "LABEL"         the Nix locker a new atom.lock names (default docs/formats.md §11.9's: nix-lock
             version = "VERSION"       0.1.6 of the eka set, at its published rev; no network needed)
             set = "ROOT"            the locker's set root (40 or 64 hex)
             mirror = "URL"          written in the lock; asked for the rev when none is configured
             rev = "COMMIT"          refs/eka/atoms/<label>/<version>'s commit; shown as null when it is
                                       to be asked (another label, version, set or mirror without a rev)
  [trust]    TAG-OR-ROOT = ["LINE"]  allowed-signers lines or armored OpenPGP keys trusted for a set
  [registry] urls = ["URL"]          registries searched by cpr search/get, and cpr build --push's default
             keys = ["NAME:BASE64"]  public keys trusted for binary-cache signatures (cpr get)
             token = "TOKEN"         write token for cpr build --push (keep it in the user config only)
             sets = ["URL"]          sets cpr serve indexes and cpr search queries directly
             data = "PATH"           cpr serve's data dir (default $XDG_DATA_HOME/cpr/registry)
             db = "URL"              sqlite:PATH or postgres://… (default DATA/registry.sqlite)
             listen = "HOST:PORT"    cpr serve's address (default 127.0.0.1:8080)
             refresh = SECONDS       how often cpr serve re-indexes its sets (default 300)
  [new]      composer = "LABEL"      the composer cpr new writes: [compose.with.LABEL] (default atom-nix)
             composer-tag = "TAG"    its set's [package.sets] tag, and its from (default atom)
             composer-url = "URL"    that set's mirror (default https://github.com/ekala-project/atom)

Environment (over both files; an empty variable counts as unset; lists are comma-separated):
${VARIABLES}
Unknown keys are reported as warnings; invalid values are errors with file:line:col.

Options:
  --json   Print {"files":{"user","project"},"entries":[{"key","value","source","origin"}],"warnings":[{"code","message"}],
           "variables":[{"name","key","value","meaning","set"}]}
`,
  options: {},
  maxPositionals: 1,
  async run(ctx, args) {
    const sub = args.positionals[0];
    if (sub !== "list") {
      throw new UsageError(sub === undefined ? "missing subcommand" : `unknown subcommand '${sub}'`, {
        hint: "use `cpr config list`",
      });
    }
    const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    for (const w of loaded.warnings) ctx.term.warn(w.code, w.message);
    if (args.values.json === true) {
      ctx.term.json({ files: loaded.files, entries: loaded.entries, warnings: loaded.warnings, variables: loaded.variables });
      return 0;
    }
    const rows = loaded.entries.map((e) => [`${e.key} = ${show(e.value)}`, from(e)] as const);
    const width = Math.max(...rows.map(([l]) => l.length));
    for (const [line, source] of rows) ctx.term.out(`${line.padEnd(width)}  ${ctx.term.dim(`(${source})`)}`);
    ctx.term.out("");
    ctx.term.out("environment:");
    const nameWidth = Math.max(...loaded.variables.map((v) => v.name.length));
    const keyWidth = Math.max(...loaded.variables.map((v) => v.key.length));
    for (const v of loaded.variables) {
      ctx.term.out(`  ${v.name.padEnd(nameWidth)}  ${v.key.padEnd(keyWidth)}  ${ctx.term.dim(v.set ? "(set)" : "(unset)")}`);
    }
    return 0;
  },
};
