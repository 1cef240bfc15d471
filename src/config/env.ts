/**
 * Every environment variable cpr reads of its own (CPR_*): its name, the config key it sets, what it means. Nothing
 * outside src/config reads a CPR_* variable; `cpr config list` shows each with whether it is set, and its `--help`
 * lists them from here. An empty (or all-blank) variable counts as unset.
 *
 * Variables the tests and benchmarks read (CPR_BENCH_* and others) are theirs, not cpr's: cpr ignores them.
 */

export interface EnvVariable {
  /** The variable, e.g. `CPR_CACHE_DIR`. */
  readonly name: string;
  /** The config key it sets (`aliases.NAME` for each alias of CPR_ALIASES). */
  readonly key: string;
  /** The form of its value, for help texts. */
  readonly value: string;
  /** What it sets, in a few words. */
  readonly meaning: string;
}

/** cpr's variables, in the order `cpr config list` and `--help` show them. */
export const ENV_VARIABLES = [
  {
    name: "CPR_CACHE_DIR",
    key: "cache.dir",
    value: "PATH",
    meaning: "the cache directory (a relative path is relative to the working directory)",
  },
  { name: "CPR_LISTING_TTL", key: "cache.listing-ttl", value: "SECONDS", meaning: "how long an ls-refs listing stays fresh" },
  { name: "CPR_ALIASES", key: "aliases.NAME", value: "NAME=VALUE,…", meaning: "aliases added or overridden" },
  { name: "CPR_LOCKER_LABEL", key: "locker.label", value: "LABEL", meaning: "the Nix locker a new atom.lock names" },
  { name: "CPR_LOCKER_VERSION", key: "locker.version", value: "VERSION", meaning: "the locker's version" },
  { name: "CPR_LOCKER_SET", key: "locker.set", value: "ROOT", meaning: "the locker's set root (40 or 64 hex)" },
  { name: "CPR_LOCKER_MIRROR", key: "locker.mirror", value: "URL", meaning: "the locker's mirror" },
  { name: "CPR_LOCKER_REV", key: "locker.rev", value: "COMMIT", meaning: "the locker's commit" },
  { name: "CPR_REGISTRY", key: "registry.urls", value: "URL,…", meaning: "registries searched by cpr search/get and cpr build --push" },
  { name: "CPR_REGISTRY_KEYS", key: "registry.keys", value: "NAME:BASE64,…", meaning: "trusted registry public keys" },
  { name: "CPR_REGISTRY_TOKEN", key: "registry.token", value: "TOKEN", meaning: "write token for cpr build --push" },
  {
    name: "CPR_REGISTRY_DATA",
    key: "registry.data",
    value: "PATH",
    meaning: "cpr serve's data directory (relative: to the working directory)",
  },
  {
    name: "CPR_REGISTRY_DB",
    key: "registry.db",
    value: "URL",
    meaning: "cpr serve's database (a relative path: to the working directory)",
  },
  { name: "CPR_REGISTRY_LISTEN", key: "registry.listen", value: "HOST:PORT", meaning: "cpr serve's address" },
  {
    name: "CPR_REGISTRY_STORE",
    key: "registry.store",
    value: "s3://BUCKET/PREFIX?endpoint=URL",
    meaning: "where cpr serve keeps NARs (default: its data directory)",
  },
] as const satisfies readonly EnvVariable[];

export type EnvName = (typeof ENV_VARIABLES)[number]["name"];

/** The value of one of cpr's variables, as set; undefined when it is unset, empty or blank. */
export function envValue(env: NodeJS.ProcessEnv, name: EnvName): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v;
}
