import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { CprError } from "../protocol/errors.js";
import { normalizeLabel } from "../protocol/label.js";
import { DEFAULT_LOCKER_SPEC, type LockerSpec } from "../protocol/lock.js";
import { parsePublicKey } from "../protocol/nix-key.js";
import type { Warning } from "../protocol/report.js";
import { isTomlTable as isTable, parseTomlFile, TomlReader, type TomlTable } from "../protocol/toml.js";
import { aliasCandidate, DEFAULT_ALIASES, expandAlias, redactUrl, type Aliases } from "../protocol/uri.js";
import { parseVersion } from "../protocol/version.js";
import { ENV_VARIABLES, envValue, type EnvName, type EnvVariable } from "./env.js";
import { defaultCacheDir, defaultRegistryData, envCacheDir, home, userConfigPath } from "./paths.js";

export { defaultCacheDir, defaultRegistryData, userConfigPath } from "./paths.js";

/**
 * Configuration: defaults, then the user config ($XDG_CONFIG_HOME/cpr/config.toml, default ~/.config/cpr/config.toml),
 * then the project config (cpr.toml at the set root), then CPR_* environment variables. Later wins.
 *
 * Files (both take the same keys):
 *
 *     [aliases]                 # added to the default aliases (docs/formats.md §13.2); a name given here overrides the default
 *     work = "gh:my-org"
 *
 *     [cache]
 *     dir = "~/.cache/cpr"      # "~/" is the home directory; a relative path is relative to the file's directory
 *     listing-ttl = 300         # seconds an ls-refs listing stays fresh (integer ≥ 0)
 *
 *     [locker]                  # the Nix locker new locks name (docs/formats.md §11.9; default nix-lock 0.1.6 of eka's set)
 *     label = "nix-lock"
 *     version = "0.1.6"
 *     set = "4abbd2644bc3585e9be95deb277ccf48f6ed26ac"   # the locker's set root (40 or 64 hex)
 *     mirror = "https://github.com/ekala-project/eka"    # written in the lock; asked for the rev when none is set
 *     rev = "e711aa1f48d877652dd2ba724d4af752be7b5371"   # the commit of refs/eka/atoms/<label>/<version>
 *
 *     [trust]                   # set tag or root hex → allowed-signers lines (ssh-keygen ALLOWED SIGNERS format)
 *     home = ["alice@example.org ssh-ed25519 AAAAC3Nza…"]
 *
 *     [registry]                # docs/registry.md
 *     urls = ["https://registry.example.org"]   # registries (http/https) that search, get and build --push use
 *     keys = ["registry.example.org-1:base64…"]  # trusted registry public keys, Nix's name:base64
 *     token = "cpr_…"           # write token for build --push (better in the user config or CPR_REGISTRY_TOKEN)
 *     sets = ["https://example.org/set.git"]     # set mirror URLs: serve indexes them, search queries them
 *     data = "~/registry"       # serve's data directory (default $XDG_DATA_HOME/cpr/registry, else
 *                               #   ~/.local/share/cpr/registry); "~/" and relative paths as for cache.dir
 *     db = "postgres://u@h/db"  # serve's database: postgres://…, sqlite:PATH or a path (default DATA/registry.sqlite)
 *     listen = "127.0.0.1:8080" # serve's HOST:PORT (port 0 picks a free one; IPv6 as [::1]:8080)
 *     refresh = 300             # seconds between re-indexing the sets (whole number; 0: only on request)
 *     store = "s3://bucket/prefix?endpoint=http://127.0.0.1:7480"  # serve's NARs on S3 (default: the data directory)
 *
 *     [registry.builds]         # serve's build farm policy (docs/farm.md); replaced as a whole by a later layer
 *     systems = ["x86_64-linux"]  # systems to evaluate and build for (cpr serve --build replaces it)
 *     sets = ["<root>"]         # only these set roots (default: every indexed set)
 *     labels = ["hello"]        # only these atoms (default: every atom)
 *     versions = 1              # the newest N versions of each atom, or "all"
 *     priority = 0              # higher is claimed first
 *     lease = 60                # seconds a worker's lease lasts without a heartbeat (cpr serve --lease)
 *
 *     [new]                     # what `cpr new` writes (without --nix)
 *     composer = "atom-nix"     # the composer's label: [compose.with.<composer>]
 *     composer-tag = "atom"     # its set's tag in [package.sets], and `from`
 *     composer-url = "https://github.com/ekala-project/atom"   # that set's mirror (aliases such as gh: allowed)
 *
 *     [graft]                   # docs/grafts.md
 *     auto = false              # cpr get grafts onto the newest built dependency versions the rules allow (--graft)
 *
 * A single string is accepted where an array is expected. URLs lose trailing slashes.
 *
 * A later layer replaces a key as a whole (one alias, the cache dir, the TTL, one set's trust list, one registry.*
 * key: a project's registry.urls replaces the user's list, it does not add to it; one locker.* key).
 *
 * The locker's rev: locker.rev when configured; else the default's published rev when label, version, set and
 * mirror are all the defaults; else none (null), and resolution asks the mirror for refs/eka/atoms/<label>/<version>.
 *
 * Environment: the CPR_* variables of src/config/env.ts (ENV_VARIABLES: each with the key it sets). Lists are
 * comma-separated; an empty variable counts as unset. Paths (the cache root among them) are in src/config/paths.ts.
 * `cpr config list` shows registry.token as "<hidden>" and a database URL without its password; config.registry
 * holds the real values.
 *
 * Invalid values are errors with file:line:col (or the variable's name). Unknown keys and tables are warnings with
 * file:line:col, as cargo does, so that a newer config file still works with an older cpr.
 *
 * The set root is the top of the git work tree holding `cwd`, found by walking up to a `.git` directory or file
 * (no git process is spawned), or named by GIT_WORK_TREE / GIT_DIR as git reads them (findSetRoot). Outside a git
 * work tree there is no project config.
 */
export interface Config {
  /** Default aliases (docs/formats.md §13.2) plus the user's additions and overrides. */
  readonly aliases: Aliases;
  /** How long an ls-refs listing stays fresh in the ref cache, in seconds. */
  readonly listingTtl: number;
  /** Cache directory ($XDG_CACHE_HOME/cpr, default ~/.cache/cpr). */
  readonly cacheDir: string;
  /** Per-set trusted signing keys (issue: verify --trust): set tag or root hex → allowed-signers lines. */
  readonly trust: Readonly<Record<string, readonly string[]>>;
  /** The registry: the client side (urls, keys, token) and `cpr serve` (sets, data, db, listen, refresh). */
  readonly registry: RegistryConfig;
  /** The locker new locks name (docs/formats.md §11.9); `rev` null: asked from the mirror. */
  readonly locker: LockerSpec;
  /** The composer `cpr new` writes into a new atom (without --nix). */
  readonly new: NewConfig;
  /** The `[graft]` table (docs/grafts.md): `auto`, `cpr get` grafts as with --graft. */
  readonly graft: { readonly auto: boolean };
}

/** The `[new]` table: the composer of atoms made by `cpr new`. */
export interface NewConfig {
  /** The composer's label (a Label): `[compose.with.<composer>]`. */
  readonly composer: string;
  /** The tag (a Tag) of the composer's set in `[package.sets]`, and the composer's `from`. */
  readonly composerTag: string;
  /** That set's mirror URL, as written in the config (aliases are expanded by `cpr new`). */
  readonly composerUrl: string;
}

/** `cpr new`'s default composer: atom-nix from the atom set (docs/formats.md §6.1 example). */
export const DEFAULT_NEW: NewConfig = { composer: "atom-nix", composerTag: "atom", composerUrl: "https://github.com/ekala-project/atom" };

/** The `[registry]` table (docs/registry.md). */
export interface RegistryConfig {
  /** Registry base URLs (http/https, no trailing slash) that search, get and build --push use, in order. */
  readonly urls: readonly string[];
  /** Trusted registry public keys, Nix's `name:base64` (each checked with parsePublicKey). */
  readonly keys: readonly string[];
  /** Write token for `cpr build --push`, or null. */
  readonly token: string | null;
  /** Set mirror URLs: `cpr serve` indexes them, `cpr search` queries them directly. */
  readonly sets: readonly string[];
  /** `cpr serve`'s data directory (absolute). */
  readonly data: string;
  /** `cpr serve`'s database (`postgres://…`, `sqlite:PATH` or an absolute path), or null for DATA/registry.sqlite. */
  readonly db: string | null;
  /** `cpr serve`'s listen address, HOST:PORT. */
  readonly listen: string;
  /** Seconds between re-indexing the sets (> 0). */
  readonly refresh: number;
  /** `cpr serve`'s build farm policy, `[registry.builds]` (docs/farm.md). */
  readonly builds: BuildsConfig;
  /** Where `cpr serve` keeps NARs: an `s3://…` URL, or null for the data directory. */
  readonly store: string | null;
}

/** `[registry.builds]`: which indexed versions the build farm evaluates and builds (docs/farm.md). */
export interface BuildsConfig {
  /** Systems to build for; empty: no farm policy (`cpr serve --build SYSTEM` sets it too). */
  readonly systems: readonly string[];
  /** Set roots to build, or null for every indexed set. */
  readonly sets: readonly string[] | null;
  /** Atom labels to build, or null for every atom. */
  readonly labels: readonly string[] | null;
  /** The newest N versions of each atom, or "all". */
  readonly versions: number | "all";
  /** Jobs of higher priority are claimed first. */
  readonly priority: number;
  /** Seconds a worker's lease lasts without a heartbeat. */
  readonly lease: number;
}

export const DEFAULT_BUILDS: BuildsConfig = { systems: [], sets: null, labels: null, versions: 1, priority: 0, lease: 60 };

const BUILDS_KEYS = ["systems", "sets", "labels", "versions", "priority", "lease"] as const;

export type ConfigSource = "default" | "user" | "project" | "env";

export interface ConfigEntry {
  /** Dotted key, e.g. `aliases.gh`, `cache.listing-ttl`. */
  readonly key: string;
  readonly value: unknown;
  readonly source: ConfigSource;
  /** The file (user/project) or variable (env) it came from. */
  readonly origin: string | null;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Every effective value with where it came from, for `cpr config list`. */
  readonly entries: readonly ConfigEntry[];
  /** Unknown keys and tables (config.unknown-key), each with its file:line:col, and a token in the project file. */
  readonly warnings: readonly Warning[];
  /** The files looked at, whether or not they exist. */
  readonly files: { readonly user: string; readonly project: string | null };
  /** Every CPR_* variable (src/config/env.ts), and whether it is set (non-blank) in this environment. */
  readonly variables: readonly (EnvVariable & { readonly set: boolean })[];
}

/** Default listing TTL, in seconds. */
export const DEFAULT_LISTING_TTL = 300;

/** `cpr serve`'s default listen address. */
export const DEFAULT_REGISTRY_LISTEN = "127.0.0.1:8080";
/** `cpr serve`'s default re-indexing interval, in seconds. */
export const DEFAULT_REGISTRY_REFRESH = 300;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The top of the git work tree holding `cwd`, or null, as git finds it: GIT_WORK_TREE when set (relative to
 * `cwd`); else, when GIT_DIR is set (as in some git hooks), `cwd` itself, as git takes it when no core.worktree is
 * configured; else the nearest directory from `cwd` up with a `.git` directory or file.
 */
export async function findSetRoot(cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string | null> {
  if (env.GIT_WORK_TREE) return resolve(cwd, env.GIT_WORK_TREE);
  if (env.GIT_DIR) return resolve(cwd);
  let dir = resolve(cwd);
  for (;;) {
    if (await exists(join(dir, ".git"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

// ---------------------------------------------------------------------------------------------------------------

type Table = TomlTable;

const ROOT_HEX = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

type RegistryKey = keyof RegistryConfig;
/** The [registry] keys, in the order `cpr config list` shows them. */
const REGISTRY_KEYS: readonly RegistryKey[] = ["builds", "data", "db", "keys", "listen", "refresh", "sets", "store", "token", "urls"];

type LockerKey = keyof LockerSpec;

interface LockerKeyDef {
  readonly key: LockerKey;
  /** The environment variable that sets it. */
  readonly env: EnvName;
  readonly example: string;
  /** The value checked (and normalised), else a config.invalid error naming `what` at `where`. */
  check(v: string, what: string, where: string): string;
}

/** The [locker] keys with their CPR_LOCKER_* variables, in the order `cpr config list` shows them. */
const LOCKER_KEYS: readonly LockerKeyDef[] = [
  { key: "label", env: "CPR_LOCKER_LABEL", example: '"nix-lock"', check: checkLockerLabel },
  { key: "mirror", env: "CPR_LOCKER_MIRROR", example: '"https://github.com/ekala-project/eka"', check: checkSetUrl },
  {
    key: "rev",
    env: "CPR_LOCKER_REV",
    example: '"<40 hex digits>"',
    check: (v, what, where) => checkHex(v, what, where, "commit id of refs/eka/atoms/<label>/<version>"),
  },
  {
    key: "set",
    env: "CPR_LOCKER_SET",
    example: '"<40 hex digits>"',
    check: (v, what, where) => checkHex(v, what, where, "root of the locker's set"),
  },
  { key: "version", env: "CPR_LOCKER_VERSION", example: '"0.1.6"', check: checkExactVersion },
];
type NewKey = "composer" | "composer-tag" | "composer-url";
/** The [new] keys, in the order `cpr config list` shows them. */
const NEW_KEYS: readonly NewKey[] = ["composer", "composer-tag", "composer-url"];

interface Layer {
  aliases: Map<string, { value: string; origin: string | null }>;
  cacheDir?: { value: string; origin: string | null };
  listingTtl?: { value: number; origin: string | null };
  trust: Map<string, { value: string[]; origin: string | null }>;
  registry: Map<RegistryKey, { value: unknown; origin: string | null }>;
  locker: Map<LockerKey, { value: string; origin: string | null }>;
  new: Map<NewKey, { value: string; origin: string | null }>;
  graftAuto?: { value: boolean; origin: string | null };
}

function emptyLayer(): Layer {
  return { aliases: new Map(), trust: new Map(), registry: new Map(), locker: new Map(), new: new Map() };
}

/** `~`, `~/…` and paths relative to `base`, made absolute. */
function expandPath(v: string, homeDir: string, base: string): string {
  return v === "~" ? homeDir : v.startsWith("~/") ? join(homeDir, v.slice(2)) : resolve(base, v);
}

function invalid(message: string, where: string, hint: string): CprError {
  return new CprError("config.invalid", message, { where, hint });
}

/** An http(s) registry URL, without trailing slashes. */
function checkRegistryUrl(v: string, what: string, where: string): string {
  const hint = 'give the registry\'s base URL, e.g. "https://registry.example.org"';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(`${what}: ${JSON.stringify(v)} is not a URL`, where, hint);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw invalid(`${what}: ${JSON.stringify(v)} is not an http or https URL`, where, hint);
  if (url.search !== "" || url.hash !== "")
    throw invalid(`${what}: ${JSON.stringify(v)} has a query or fragment; give the base URL`, where, hint);
  return v.replace(/\/+$/, "");
}

function checkRegistryKey(v: string, what: string, where: string): string {
  try {
    parsePublicKey(v, where);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError("config.invalid", `${what}: ${e.message}`, { where, hint: e.hint, cause: e });
  }
  return v.trim();
}

function checkToken(v: string, what: string, where: string): string {
  if (v === "" || /[\s\p{Cc}]/u.test(v))
    throw invalid(`${what} must be a non-empty token without spaces`, where, "use the token `cpr registry token create` printed");
  return v;
}

function checkSetUrl(v: string, what: string, where: string): string {
  if (v.trim() === "" || /[\s\p{Cc}]/u.test(v.trim()))
    throw invalid(
      `${what}: set mirror URL ${JSON.stringify(v)} must be non-empty and without spaces`,
      where,
      'e.g. "https://example.org/set.git" or "gh:owner/repo"',
    );
  return v.trim();
}

/** `HOST:PORT`, IPv6 hosts in brackets, port 0–65535. */
function checkListen(v: string, what: string, where: string): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):([0-9]{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535)
    throw invalid(
      `${what} must be HOST:PORT (port 0–65535), got ${JSON.stringify(v)}`,
      where,
      'e.g. "127.0.0.1:8080", "0.0.0.0:0" or "[::1]:8080"',
    );
  return v;
}

/** A root or commit id, as git prints it. */
function checkHex(v: string, what: string, where: string, meaning: string): string {
  if (!ROOT_HEX.test(v))
    throw invalid(
      `${what} must be the ${meaning}: 40 or 64 lowercase hex digits, got ${JSON.stringify(v)}`,
      where,
      "copy it from `git rev-parse` or `git ls-remote`",
    );
  return v;
}

function checkLockerLabel(v: string, what: string, where: string): string {
  try {
    return normalizeLabel(v, "label", what);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError("config.invalid", e.message, { where, hint: 'the locker atom\'s label, e.g. "nix-lock"', cause: e });
  }
}

/** An exact version (what the lock records), as written. */
function checkExactVersion(v: string, what: string, where: string): string {
  try {
    parseVersion(v);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError("config.invalid", `${what}: ${e.message}`, {
      where,
      hint: 'the locker\'s exact published version, e.g. "0.1.6"',
      cause: e,
    });
  }
  return v;
}

/** Where serve keeps NARs: an s3:// URL (checked whole when the server starts). */
function checkStore(v: string, what: string, where: string): string {
  if (!/^s3:\/\/[^/?#]+/.test(v.trim()))
    throw invalid(
      `${what} must be an s3:// URL, got ${JSON.stringify(v)}`,
      where,
      'e.g. "s3://bucket/prefix?endpoint=http://127.0.0.1:7480"; leave it out for the data directory',
    );
  return v.trim();
}

/** A database: postgres(ql)://… kept, sqlite:PATH and bare paths made absolute. */
function checkDb(v: string, what: string, where: string, homeDir: string, base: string): string {
  const hint = 'give postgres://user@host:port/db, sqlite:PATH or a path, e.g. "sqlite:~/registry.sqlite"';
  if (v.trim() === "") throw invalid(`${what} is empty`, where, hint);
  if (/^postgres(?:ql)?:\/\//.test(v)) return v;
  if (v.startsWith("sqlite:")) {
    const path = v.slice("sqlite:".length);
    if (path === "") throw invalid(`${what}: sqlite: needs a path`, where, hint);
    return `sqlite:${expandPath(path, homeDir, base)}`;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v))
    throw invalid(`${what}: unsupported database URL ${JSON.stringify(v.replace(/:\/\/.*$/, "://…"))}`, where, hint);
  return expandPath(v, homeDir, base);
}

/** Hides what `cpr config list` should not print: the token, a database URL's password. */
function shown(key: RegistryKey, value: unknown): unknown {
  if (key === "token" && typeof value === "string") return "<hidden>";
  if (key === "db" && typeof value === "string") return redactUrl(value);
  return value;
}

function splitList(v: string): string[] {
  return v
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

function checkAliasName(name: string, where: string): void {
  if (aliasCandidate(name)?.name !== name || /\s/.test(name)) {
    throw new CprError(
      "config.alias",
      `alias name ${JSON.stringify(name)} is not valid: it must be non-empty, without ':', '/', '.' or spaces`,
      {
        where,
        hint: 'e.g. work = "gh:my-org"',
      },
    );
  }
}

function checkAliasValue(name: string, value: string, where: string): void {
  if (value === "" || /\s/.test(value)) {
    throw new CprError(
      "config.alias",
      `alias ${JSON.stringify(name)} must be a non-empty value without spaces, got ${JSON.stringify(value)}`,
      {
        where,
        hint: 'give a host or another alias with a path, e.g. "github.com" or "gh:my-org"',
      },
    );
  }
}

/** Reads one config file into a layer; warnings for unknown keys (and for a token in a project file). */
function readFileLayer(text: string, file: string, homeDir: string, warnings: Warning[], project = false): Layer {
  const doc = parseTomlFile(text, file, { code: "config.syntax", hint: "fix the TOML syntax at the position shown" });
  const invalidCode = "config.invalid";
  const reader = new TomlReader(file, text, { codes: { type: invalidCode, missing: invalidCode, unknownKey: invalidCode } });
  const at = (path: string[]) => reader.where(path);
  const fail: (path: string[], message: string, hint: string) => never = (path, message, hint) =>
    reader.fail(invalidCode, path, message, hint);
  const table = (v: unknown, name: string): Table => reader.table(v, [name]);
  const layer = emptyLayer();
  const base = dirname(file);

  for (const [key, value] of Object.entries(doc)) {
    if (key === "aliases") {
      for (const [name, v] of Object.entries(table(value, "aliases"))) {
        const where = at(["aliases", name]);
        checkAliasName(name, where);
        if (typeof v !== "string") fail(["aliases", name], `aliases.${name} must be a string`, 'e.g. work = "gh:my-org"');
        checkAliasValue(name, v, where);
        layer.aliases.set(name, { value: v, origin: file });
      }
    } else if (key === "cache") {
      for (const [name, v] of Object.entries(table(value, "cache"))) {
        if (name === "dir") {
          if (typeof v !== "string" || v === "")
            fail(["cache", "dir"], "cache.dir must be a non-empty string (a directory)", 'e.g. dir = "~/.cache/cpr"');
          const dir = expandPath(v, homeDir, base);
          layer.cacheDir = { value: dir, origin: file };
        } else if (name === "listing-ttl") {
          if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
            fail(
              ["cache", "listing-ttl"],
              `cache.listing-ttl must be a whole number of seconds ≥ 0, got ${JSON.stringify(v)}`,
              "e.g. listing-ttl = 300",
            );
          layer.listingTtl = { value: v, origin: file };
        } else {
          warnings.push({
            code: "config.unknown-key",
            message: `${at(["cache", name])}: unknown key "${name}" in [cache] (known: dir, listing-ttl)`,
          });
        }
      }
    } else if (key === "trust") {
      for (const [set, v] of Object.entries(table(value, "trust"))) {
        let name = set;
        if (!ROOT_HEX.test(set)) {
          try {
            name = normalizeLabel(set, "tag", "trusted set tag");
          } catch (e) {
            if (!(e instanceof CprError)) throw e;
            fail(
              ["trust", set],
              `[trust] key ${JSON.stringify(set)} is neither a set tag nor a root (40 or 64 lowercase hex): ${e.message}`,
              "name the set by its tag or its root commit id",
            );
          }
        }
        const lines = typeof v === "string" ? [v] : v;
        if (!Array.isArray(lines) || lines.some((l) => typeof l !== "string" || l.trim().split(/\s+/).length < 3))
          fail(
            ["trust", set],
            `trust.${set} must be an allowed-signers line or an array of them ("<principals> [options] <key-type> <key>")`,
            'e.g. home = ["alice@example.org ssh-ed25519 AAAAC3Nza…"]',
          );
        layer.trust.set(name, { value: (lines as string[]).map((l) => l.trim()), origin: file });
      }
    } else if (key === "registry") {
      for (const [name, v] of Object.entries(table(value, "registry"))) {
        const path = ["registry", name];
        const where = at(path);
        const what = `registry.${name}`;
        const list = (example: string): string[] => {
          const items = typeof v === "string" ? [v] : v;
          if (!Array.isArray(items) || items.some((x) => typeof x !== "string"))
            fail(path, `${what} must be an array of strings`, `e.g. ${name} = ${example}`);
          return items as string[];
        };
        const str = (example: string): string =>
          typeof v === "string" ? v : fail(path, `${what} must be a string`, `e.g. ${name} = ${example}`);
        let parsed: unknown;
        switch (name) {
          case "urls":
            parsed = list('["https://registry.example.org"]').map((u) => checkRegistryUrl(u, what, where));
            break;
          case "keys":
            parsed = list('["registry.example.org-1:<base64>"]').map((k) => checkRegistryKey(k, what, where));
            break;
          case "sets":
            parsed = list('["https://example.org/set.git"]').map((u) => checkSetUrl(u, what, where));
            break;
          case "token":
            parsed = checkToken(str('"cpr_…"'), what, where);
            break;
          case "data": {
            const d = str('"~/registry"');
            if (d === "") fail(path, "registry.data must be a non-empty string (a directory)", 'e.g. data = "~/registry"');
            parsed = expandPath(d, homeDir, base);
            break;
          }
          case "db":
            parsed = checkDb(str('"postgres://cpr@localhost:5432/cpr"'), what, where, homeDir, base);
            break;
          case "store":
            parsed = checkStore(str('"s3://bucket/prefix?endpoint=http://127.0.0.1:7480"'), what, where);
            break;
          case "listen":
            parsed = checkListen(str('"127.0.0.1:8080"'), what, where);
            break;
          case "refresh":
            if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
              fail(
                path,
                `registry.refresh must be a whole number of seconds (0 for no scheduled re-indexing), got ${JSON.stringify(v)}`,
                "e.g. refresh = 300",
              );
            parsed = v;
            break;
          case "builds": {
            const t = table(v, "registry.builds");
            const out: { -readonly [K in keyof BuildsConfig]: BuildsConfig[K] } = { ...DEFAULT_BUILDS };
            for (const [k, x] of Object.entries(t)) {
              const kp = ["registry", "builds", k];
              const strings = (check: RegExp, example: string): string[] => {
                if (!Array.isArray(x) || x.some((y) => typeof y !== "string" || !check.test(y)))
                  fail(kp, `registry.builds.${k} must be an array of strings like ${example}`, `e.g. ${k} = [${example}]`);
                return x as string[];
              };
              if (k === "systems") out.systems = strings(/^[A-Za-z0-9_.+-]+-[A-Za-z0-9_.+-]+$/, '"x86_64-linux"');
              else if (k === "sets") out.sets = strings(ROOT_HEX, '"<set root, 40 or 64 hex>"');
              else if (k === "labels") out.labels = strings(/^\S+$/, '"hello"');
              else if (k === "versions") {
                if (x !== "all" && (typeof x !== "number" || !Number.isSafeInteger(x) || x < 1))
                  fail(
                    kp,
                    `registry.builds.versions must be a positive whole number or "all", got ${JSON.stringify(x)}`,
                    "e.g. versions = 3",
                  );
                out.versions = x as number | "all";
              } else if (k === "priority" || k === "lease") {
                if (typeof x !== "number" || !Number.isSafeInteger(x) || (k === "lease" && x < 1))
                  fail(
                    kp,
                    `registry.builds.${k} must be a whole number${k === "lease" ? " of seconds (at least 1)" : ""}, got ${JSON.stringify(x)}`,
                    `e.g. ${k} = ${k === "lease" ? 60 : 10}`,
                  );
                out[k] = x as number;
              } else
                warnings.push({
                  code: "config.unknown-key",
                  message: `${at(kp)}: unknown key "${k}" in [registry.builds] (known: ${BUILDS_KEYS.join(", ")})`,
                });
            }
            parsed = out;
            break;
          }
          default:
            warnings.push({
              code: "config.unknown-key",
              message: `${where}: unknown key "${name}" in [registry] (known: ${REGISTRY_KEYS.join(", ")})`,
            });
            continue;
        }
        layer.registry.set(name as RegistryKey, { value: parsed, origin: file });
      }
    } else if (key === "locker") {
      for (const [name, v] of Object.entries(table(value, "locker"))) {
        const def = LOCKER_KEYS.find((d) => d.key === name);
        const path = ["locker", name];
        if (!def) {
          warnings.push({
            code: "config.unknown-key",
            message: `${at(path)}: unknown key "${name}" in [locker] (known: ${LOCKER_KEYS.map((d) => d.key).join(", ")})`,
          });
          continue;
        }
        if (typeof v !== "string") fail(path, `locker.${name} must be a string`, `e.g. ${name} = ${def.example}`);
        layer.locker.set(def.key, { value: def.check(v, `locker.${name}`, at(path)), origin: file });
      }
    } else if (key === "new") {
      for (const [name, v] of Object.entries(table(value, "new"))) {
        const path = ["new", name];
        if (!(NEW_KEYS as readonly string[]).includes(name)) {
          warnings.push({
            code: "config.unknown-key",
            message: `${at(path)}: unknown key "${name}" in [new] (known: ${NEW_KEYS.join(", ")})`,
          });
          continue;
        }
        const example = name === "composer" ? '"atom-nix"' : name === "composer-tag" ? '"atom"' : '"https://github.com/ekala-project/atom"';
        if (typeof v !== "string") fail(path, `new.${name} must be a string`, `e.g. ${name} = ${example}`);
        let parsed: string;
        if (name === "composer-url") parsed = checkSetUrl(v, `new.${name}`, at(path));
        else {
          try {
            parsed = normalizeLabel(v, name === "composer" ? "label" : "tag", `new.${name}`);
          } catch (e) {
            if (!(e instanceof CprError)) throw e;
            fail(path, e.message, `e.g. ${name} = ${example}`);
          }
        }
        layer.new.set(name as NewKey, { value: parsed, origin: file });
      }
    } else if (key === "graft") {
      for (const [name, v] of Object.entries(table(value, "graft"))) {
        const path = ["graft", name];
        if (name !== "auto") {
          warnings.push({ code: "config.unknown-key", message: `${at(path)}: unknown key "${name}" in [graft] (known: auto)` });
          continue;
        }
        if (typeof v !== "boolean") fail(path, "graft.auto must be true or false", "e.g. auto = true");
        layer.graftAuto = { value: v, origin: file };
      }
    } else {
      warnings.push({
        code: "config.unknown-key",
        message: `${at([key])}: unknown ${isTable(value) ? "table" : "key"} "${key}" (known: [aliases], [cache], [graft], [locker], [new], [registry], [trust])`,
      });
    }
  }
  if (project && layer.registry.has("token"))
    warnings.push({
      code: "config.token-in-project",
      message: `${at(["registry", "token"])}: registry.token in the project's cpr.toml is committed with the set; keep it in the user config or CPR_REGISTRY_TOKEN`,
    });
  return layer;
}

function readEnvLayer(env: NodeJS.ProcessEnv, cwd: string): Layer {
  const layer = emptyLayer();
  const dir = envCacheDir(env, cwd);
  if (dir !== null) layer.cacheDir = { value: dir, origin: "CPR_CACHE_DIR" };
  const ttl = envValue(env, "CPR_LISTING_TTL");
  if (ttl !== undefined) {
    if (!/^[0-9]+$/.test(ttl.trim()) || !Number.isSafeInteger(Number(ttl.trim())))
      throw new CprError("config.invalid", `CPR_LISTING_TTL must be a whole number of seconds, got ${JSON.stringify(ttl)}`, {
        where: "CPR_LISTING_TTL",
        hint: "e.g. CPR_LISTING_TTL=60, or unset it",
      });
    layer.listingTtl = { value: Number(ttl.trim()), origin: "CPR_LISTING_TTL" };
  }
  const aliases = envValue(env, "CPR_ALIASES");
  if (aliases !== undefined) {
    for (const pair of aliases.split(",")) {
      const item = pair.trim();
      if (item === "") continue;
      const eq = item.indexOf("=");
      if (eq < 0)
        throw new CprError("config.alias", `CPR_ALIASES expects NAME=VALUE pairs separated by commas, got ${JSON.stringify(item)}`, {
          where: "CPR_ALIASES",
          hint: 'e.g. CPR_ALIASES="work=gh:my-org,mine=gl:me"',
        });
      const name = item.slice(0, eq).trim();
      const value = item.slice(eq + 1).trim();
      checkAliasName(name, "CPR_ALIASES");
      checkAliasValue(name, value, "CPR_ALIASES");
      layer.aliases.set(name, { value, origin: "CPR_ALIASES" });
    }
  }
  const set = (key: RegistryKey, variable: EnvName, parse: (v: string) => unknown) => {
    const v = envValue(env, variable);
    if (v !== undefined) layer.registry.set(key, { value: parse(v), origin: variable });
  };
  set("urls", "CPR_REGISTRY", (v) => splitList(v).map((u) => checkRegistryUrl(u, "CPR_REGISTRY", "CPR_REGISTRY")));
  set("keys", "CPR_REGISTRY_KEYS", (v) => splitList(v).map((k) => checkRegistryKey(k, "CPR_REGISTRY_KEYS", "CPR_REGISTRY_KEYS")));
  set("token", "CPR_REGISTRY_TOKEN", (v) => checkToken(v.trim(), "CPR_REGISTRY_TOKEN", "CPR_REGISTRY_TOKEN"));
  set("data", "CPR_REGISTRY_DATA", (v) => resolve(cwd, v));
  set("db", "CPR_REGISTRY_DB", (v) => checkDb(v.trim(), "CPR_REGISTRY_DB", "CPR_REGISTRY_DB", home(env), cwd));
  set("listen", "CPR_REGISTRY_LISTEN", (v) => checkListen(v.trim(), "CPR_REGISTRY_LISTEN", "CPR_REGISTRY_LISTEN"));
  set("store", "CPR_REGISTRY_STORE", (v) => checkStore(v, "CPR_REGISTRY_STORE", "CPR_REGISTRY_STORE"));
  for (const def of LOCKER_KEYS) {
    const v = envValue(env, def.env);
    if (v !== undefined) layer.locker.set(def.key, { value: def.check(v.trim(), def.env, def.env), origin: def.env });
  }
  return layer;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw new CprError("config.read", `cannot read ${path}: ${(e as Error).message}`, {
      where: path,
      hint: "check the file's permissions",
      cause: e,
    });
  }
}

export async function loadConfig(opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<LoadedConfig> {
  const { cwd, env } = opts;
  const warnings: Warning[] = [];
  const userFile = userConfigPath(env);
  const root = await findSetRoot(cwd, env);
  const projectFile = root === null ? null : join(root, "cpr.toml");

  const layers: [ConfigSource, Layer][] = [];
  const defaults = emptyLayer();
  for (const [name, value] of Object.entries(DEFAULT_ALIASES)) defaults.aliases.set(name, { value, origin: null });
  defaults.cacheDir = { value: defaultCacheDir(env), origin: null };
  defaults.listingTtl = { value: DEFAULT_LISTING_TTL, origin: null };
  defaults.graftAuto = { value: false, origin: null };
  const registryDefaults: RegistryConfig = {
    urls: [],
    keys: [],
    token: null,
    sets: [],
    data: defaultRegistryData(env),
    db: null,
    listen: DEFAULT_REGISTRY_LISTEN,
    refresh: DEFAULT_REGISTRY_REFRESH,
    builds: DEFAULT_BUILDS,
    store: null,
  };
  for (const key of REGISTRY_KEYS) defaults.registry.set(key, { value: registryDefaults[key], origin: null });
  for (const { key } of LOCKER_KEYS) defaults.locker.set(key, { value: DEFAULT_LOCKER_SPEC[key]!, origin: null });
  defaults.new.set("composer", { value: DEFAULT_NEW.composer, origin: null });
  defaults.new.set("composer-tag", { value: DEFAULT_NEW.composerTag, origin: null });
  defaults.new.set("composer-url", { value: DEFAULT_NEW.composerUrl, origin: null });
  layers.push(["default", defaults]);
  const userText = await readOptional(userFile);
  if (userText !== null) layers.push(["user", readFileLayer(userText, userFile, home(env), warnings)]);
  if (projectFile !== null) {
    const projectText = await readOptional(projectFile);
    if (projectText !== null) layers.push(["project", readFileLayer(projectText, projectFile, home(env), warnings, true)]);
  }
  layers.push(["env", readEnvLayer(env, cwd)]);

  const aliases = new Map<string, ConfigEntry>();
  const trust = new Map<string, ConfigEntry>();
  let cacheDir: ConfigEntry | undefined;
  let listingTtl: ConfigEntry | undefined;
  let graftAuto: ConfigEntry | undefined;
  const registry = new Map<RegistryKey, ConfigEntry>();
  const locker = new Map<LockerKey, ConfigEntry>();
  const newEntries = new Map<NewKey, ConfigEntry>();
  for (const [source, layer] of layers) {
    for (const [key, { value, origin }] of layer.locker) locker.set(key, { key: `locker.${key}`, value, source, origin });
    for (const [key, { value, origin }] of layer.new) newEntries.set(key, { key: `new.${key}`, value, source, origin });
    for (const [key, { value, origin }] of layer.registry) registry.set(key, { key: `registry.${key}`, value, source, origin });
    for (const [name, { value, origin }] of layer.aliases) aliases.set(name, { key: `aliases.${name}`, value, source, origin });
    for (const [name, { value, origin }] of layer.trust) trust.set(name, { key: `trust.${name}`, value, source, origin });
    if (layer.cacheDir) cacheDir = { key: "cache.dir", value: layer.cacheDir.value, source, origin: layer.cacheDir.origin };
    if (layer.graftAuto) graftAuto = { key: "graft.auto", value: layer.graftAuto.value, source, origin: layer.graftAuto.origin };
    if (layer.listingTtl) listingTtl = { key: "cache.listing-ttl", value: layer.listingTtl.value, source, origin: layer.listingTtl.origin };
  }

  const aliasRecord: Record<string, string> = {};
  for (const [name, e] of aliases) aliasRecord[name] = e.value as string;
  // Cycles are reported where the alias was defined, not later at use.
  for (const [name, e] of aliases) {
    try {
      expandAlias(name, aliasRecord);
    } catch (err) {
      if (!(err instanceof CprError)) throw err;
      throw new CprError("config.alias-cycle", err.message, { where: e.origin ?? "default aliases", hint: err.hint, cause: err });
    }
  }
  const trustRecord: Record<string, readonly string[]> = {};
  for (const [name, e] of trust) trustRecord[name] = e.value as string[];

  const byKey = (a: ConfigEntry, b: ConfigEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const entries = [...aliases.values()].sort(byKey);
  entries.push(cacheDir!, listingTtl!, graftAuto!);
  // The default rev belongs to the default locker only: another label, version, set or mirror asks its mirror.
  const lockerRev = locker.get("rev")!;
  if (lockerRev.source === "default" && LOCKER_KEYS.some(({ key }) => key !== "rev" && locker.get(key)!.source !== "default")) {
    locker.set("rev", { ...lockerRev, value: null });
  }
  for (const { key } of LOCKER_KEYS) entries.push(locker.get(key)!);
  for (const key of NEW_KEYS) entries.push(newEntries.get(key)!);
  for (const key of REGISTRY_KEYS) {
    const e = registry.get(key)!;
    entries.push({ ...e, value: shown(key, e.value) });
  }
  entries.push(...[...trust.values()].sort(byKey));
  const reg = (key: RegistryKey) => registry.get(key)!.value;
  return {
    config: {
      aliases: Object.freeze(aliasRecord),
      listingTtl: listingTtl!.value as number,
      cacheDir: cacheDir!.value as string,
      trust: trustRecord,
      registry: {
        urls: reg("urls") as string[],
        keys: reg("keys") as string[],
        token: reg("token") as string | null,
        sets: reg("sets") as string[],
        data: reg("data") as string,
        db: reg("db") as string | null,
        listen: reg("listen") as string,
        refresh: reg("refresh") as number,
        builds: reg("builds") as BuildsConfig,
        store: reg("store") as string | null,
      },
      locker: {
        label: locker.get("label")!.value as string,
        version: locker.get("version")!.value as string,
        set: locker.get("set")!.value as string,
        mirror: locker.get("mirror")!.value as string,
        rev: locker.get("rev")!.value as string | null,
      },
      new: {
        composer: newEntries.get("composer")!.value as string,
        composerTag: newEntries.get("composer-tag")!.value as string,
        composerUrl: newEntries.get("composer-url")!.value as string,
      },
      graft: { auto: graftAuto!.value as boolean },
    },
    entries,
    warnings,
    files: { user: userFile, project: projectFile },
    variables: ENV_VARIABLES.map((v) => ({ ...v, set: envValue(env, v.name) !== undefined })),
  };
}
