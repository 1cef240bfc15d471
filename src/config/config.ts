import type { Aliases } from "../protocol/uri.js";

/**
 * Configuration: defaults, then the user config ($XDG_CONFIG_HOME/cpr/config.toml, default ~/.config/cpr/config.toml),
 * then the project config (cpr.toml at the set root), then CPR_* environment variables. Later wins.
 */
export interface Config {
  /** Default aliases (spec §12) plus the user's additions and overrides. */
  readonly aliases: Aliases;
  /** How long an ls-refs listing stays fresh in the ref cache, in seconds. */
  readonly listingTtl: number;
  /** Cache directory ($XDG_CACHE_HOME/cpr, default ~/.cache/cpr). */
  readonly cacheDir: string;
  /** Per-set trusted signing keys (issue: verify --trust): set tag or root hex → allowed-signers lines. */
  readonly trust: Readonly<Record<string, readonly string[]>>;
}

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
}

export declare function loadConfig(opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<LoadedConfig>;
