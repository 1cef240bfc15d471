/**
 * Where cpr keeps things on this machine: the XDG base directories (config file, cache, registry data), and the
 * cache's layout, named once.
 *
 * The cache root is, first found: CPR_CACHE_DIR (relative to the working directory), config `[cache] dir`,
 * `$XDG_CACHE_HOME/cpr`, `~/.cache/cpr`. An XDG variable holding a relative path is ignored, as the XDG Base
 * Directory specification says. loadConfig computes it (Config.cacheDir) with cacheRootFromEnv for the parts that
 * need no config file; everything below the root is named by cacheLayout.
 *
 * The layout is versioned: `<root>/layout-version` holds CACHE_LAYOUT_VERSION, written when the cache repository is
 * created (openCacheRoot). A cache without the file is version 1 (caches made before the file existed have
 * exactly this layout). A later layout that moves a directory bumps the version and migrates older caches in
 * openCacheRoot; a cache of a newer layout than this cpr knows is refused rather than written in the old one.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { CprError } from "../protocol/errors.js";
import { envValue } from "./env.js";

/** The home directory: $HOME when absolute, else the system's. */
export function home(env: NodeJS.ProcessEnv): string {
  return env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
}

/** `$<variable>/<sub…>` when the variable holds an absolute path (XDG: a relative one is ignored), else `~/<fallback>/<sub…>`. */
function xdgDir(env: NodeJS.ProcessEnv, variable: string, fallback: string, ...sub: string[]): string {
  const xdg = env[variable];
  return xdg && isAbsolute(xdg) ? join(xdg, ...sub) : join(home(env), fallback, ...sub);
}

/** The user config file: $XDG_CONFIG_HOME/cpr/config.toml, else ~/.config/cpr/config.toml. */
export function userConfigPath(env: NodeJS.ProcessEnv): string {
  return xdgDir(env, "XDG_CONFIG_HOME", ".config", "cpr", "config.toml");
}

/** The default cache root: $XDG_CACHE_HOME/cpr, else ~/.cache/cpr. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return xdgDir(env, "XDG_CACHE_HOME", ".cache", "cpr");
}

/** The default registry data directory: $XDG_DATA_HOME/cpr/registry, else ~/.local/share/cpr/registry. */
export function defaultRegistryData(env: NodeJS.ProcessEnv): string {
  return xdgDir(env, "XDG_DATA_HOME", join(".local", "share"), "cpr", "registry");
}

/** CPR_CACHE_DIR resolved against `cwd`, or null when it is unset. */
export function envCacheDir(env: NodeJS.ProcessEnv, cwd: string): string | null {
  const dir = envValue(env, "CPR_CACHE_DIR");
  return dir === undefined ? null : resolve(cwd, dir);
}

/**
 * The cache root when no config file is read (e.g. a registry started from code): CPR_CACHE_DIR, else the
 * default. The command line reads the config (Config.cacheDir), which puts `[cache] dir` between the two.
 */
export function cacheRootFromEnv(env: NodeJS.ProcessEnv, cwd: string): string {
  return envCacheDir(env, cwd) ?? defaultCacheDir(env);
}

/** The version of the layout below, recorded in `<root>/layout-version`. */
export const CACHE_LAYOUT_VERSION = 1;

/** Every place under the cache root, by name. */
export interface CacheLayout {
  readonly root: string;
  /** The file recording the layout's version. */
  readonly versionFile: string;
  /** The bare git repository shared by every set: atom commits, manifest blobs, keep refs. */
  readonly git: string;
  /** Materialised atoms: `atoms/<AtomId>/<version>-<rev>`. */
  atom(id: string, version: string, rev: string): string;
  /** Pins, what (url, label, version) resolved to: `pins/<h[0..2]>/<h>.json`, `h` a hex hash of the three. */
  pin(hash: string): string;
  /** ls-refs listings, one file per mirror: `refs/<hex hash of the URL>.json`. */
  readonly listings: string;
  listing(hash: string): string;
  /** Resolution's own files: the index of manifest blobs by atom commit, and the dependency graph of each lock. */
  readonly resolve: string;
  readonly revIndex: string;
  readonly graphs: string;
  /** `resolve/graphs/<hex hash of the lock text>.json`. */
  graph(hash: string): string;
  /** The Nix expressions cpr build evaluates, named by their content. */
  readonly build: string;
  /** Short-lived files and scratch repositories. */
  readonly tmp: string;
  /** Grafts installed on this machine, one record per grafted output: `grafts/<hash part>.json` (docs/grafts.md). */
  graft(hashPart: string): string;
}

/** The layout (version CACHE_LAYOUT_VERSION) of the cache at `root`. Pure: creates nothing. */
export function cacheLayout(root: string): CacheLayout {
  const resolveDir = join(root, "resolve");
  const listings = join(root, "refs");
  const graphs = join(resolveDir, "graphs");
  return {
    root,
    versionFile: join(root, "layout-version"),
    git: join(root, "git"),
    atom: (id, version, rev) => join(root, "atoms", id, `${version}-${rev}`),
    pin: (hash) => join(root, "pins", hash.slice(0, 2), `${hash}.json`),
    listings,
    listing: (hash) => join(listings, `${hash}.json`),
    resolve: resolveDir,
    revIndex: join(resolveDir, "revs.json"),
    graphs,
    graph: (hash) => join(graphs, `${hash}.json`),
    build: join(root, "build"),
    tmp: join(root, "tmp"),
    graft: (hashPart) => join(root, "grafts", `${hashPart}.json`),
  };
}

/**
 * Make sure the cache root exists and is of this layout: records the version in a new cache (temp file + rename),
 * and refuses a cache of another layout (`cache.layout`). Returns its layout.
 */
export async function openCacheRoot(root: string): Promise<CacheLayout> {
  const layout = cacheLayout(root);
  let text: string | null = null;
  try {
    text = await readFile(layout.versionFile, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new CprError("cache.layout", `cannot read ${layout.versionFile}: ${(e as Error).message}`, {
        where: layout.versionFile,
        hint: "check the cache directory's permissions",
        cause: e,
      });
    }
  }
  if (text === null) {
    await mkdir(root, { recursive: true });
    const tmp = `${layout.versionFile}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, `${CACHE_LAYOUT_VERSION}\n`);
    await rename(tmp, layout.versionFile);
    return layout;
  }
  const version = /^\s*(\d+)\s*$/.exec(text)?.[1];
  if (version === undefined || Number(version) !== CACHE_LAYOUT_VERSION) {
    throw new CprError(
      "cache.layout",
      version === undefined
        ? `${layout.versionFile} does not hold a layout version: ${JSON.stringify(text.slice(0, 40))}`
        : `the cache at ${root} has layout version ${version}; this cpr knows version ${CACHE_LAYOUT_VERSION}`,
      {
        where: layout.versionFile,
        hint: "use another cache directory (CPR_CACHE_DIR or [cache] dir), or the cpr that made this cache; a cache can also be deleted and made anew",
      },
    );
  }
  return layout;
}
