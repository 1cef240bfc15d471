/**
 * The project being resolved: the atom directory holding `atom.toml` (and maybe `atom.lock`), found from the
 * working directory upwards, plus the atoms of its work tree for local (`"::"`) resolution.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve as resolvePath } from "node:path";
import { Repo } from "../git/repo.js";
import { CprError } from "../protocol/errors.js";
import { parseLock, type Lockfile } from "../protocol/lock.js";
import { parseAtomManifest, type AtomManifest } from "../protocol/atom-manifest.js";
import { parseSetManifest } from "../protocol/set-manifest.js";
import { setRoot } from "../git/root.js";
import type { Reporter } from "../protocol/report.js";
import { LOCK_NAME, MANIFEST_NAME } from "./lockfile.js";

export interface Project {
  /** The atom directory. */
  readonly dir: string;
  readonly manifestFile: string;
  readonly lockFile: string;
  readonly manifestText: string;
  readonly manifest: AtomManifest;
  readonly lockText: string | null;
  readonly lock: Lockfile | null;
}

/** Find the atom directory containing `cwd` (nearest `atom.toml` upwards). */
export function findProjectDir(cwd: string): string {
  for (let d = resolvePath(cwd); ; d = dirname(d)) {
    if (existsSync(join(d, MANIFEST_NAME))) return d;
    if (dirname(d) === d) break;
  }
  throw new CprError("project.not-found", `no ${MANIFEST_NAME} in ${cwd} or any directory above it`, {
    hint: "run this inside an atom (a directory with an atom.toml)",
  });
}

/** Read the project's manifest (fully validated) and lock (when present). */
export function loadProject(cwd: string, manifestText?: string): Project {
  const dir = findProjectDir(cwd);
  const manifestFile = join(dir, MANIFEST_NAME);
  const lockFile = join(dir, LOCK_NAME);
  const text = manifestText ?? readFileSync(manifestFile, "utf8");
  const manifest = parseAtomManifest(text, manifestFile, "full");
  const lockText = existsSync(lockFile) ? readFileSync(lockFile, "utf8") : null;
  const lock = lockText === null ? null : parseLock(lockText, lockFile);
  return { dir, manifestFile, lockFile, manifestText: text, manifest, lockText, lock };
}

/** A work-tree atom of the project's own repository. */
export interface LocalAtom {
  readonly label: string;
  readonly dir: string;
  readonly manifestText: string;
  readonly manifest: AtomManifest;
}

/** The project's repository: its root (docs/formats.md §4) and its work-tree atoms, by label. Null outside a git repository. */
export interface LocalSet {
  readonly root: string;
  readonly atoms: ReadonlyMap<string, LocalAtom>;
}

export async function loadLocalSet(dir: string, env: NodeJS.ProcessEnv, reporter: Reporter): Promise<LocalSet | null> {
  let repo: Repo;
  try {
    repo = await Repo.open(dir, { env, repo: "user" });
  } catch {
    return null;
  }
  try {
    const top = repo.workTree;
    if (!top) return null;
    const head = await repo.revParse("HEAD");
    if (head === null) return null;
    const root = await setRoot(repo, head, reporter);
    return { root, atoms: await workTreeAtoms(repo, top) };
  } finally {
    repo.close();
  }
}

/**
 * The atoms of a repository's work tree (`top`), by label: the `[set].packages` of its `ekala.toml` when there is
 * one (listed directories without an atom.toml are skipped), else every atom.toml git knows of, tracked or not
 * ignored. Manifests are read in full, or for `[package]` only when they cannot be locked (e.g. no `[compose]`).
 */
export async function workTreeAtoms(repo: Repo, top: string): Promise<Map<string, LocalAtom>> {
  let dirs: string[];
  const ekala = join(top, "ekala.toml");
  if (existsSync(ekala)) dirs = [...parseSetManifest(readFileSync(ekala, "utf8"), ekala).packages];
  else {
    const out = await repo.git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ":(glob)**/atom.toml"]);
    dirs = out
      .split("\0")
      .filter((f) => f.includes("/"))
      .map((f) => f.slice(0, f.lastIndexOf("/")));
  }
  const atoms = new Map<string, LocalAtom>();
  for (const d of new Set(dirs)) {
    const file = join(top, d, MANIFEST_NAME);
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    let manifest: AtomManifest;
    try {
      manifest = parseAtomManifest(text, relative(top, file), "full");
    } catch {
      // An atom that cannot be locked (e.g. no [compose]) can still be depended on by label: read [package] only.
      manifest = parseAtomManifest(text, relative(top, file), "publish");
    }
    atoms.set(manifest.package.label, { label: manifest.package.label, dir: join(top, d), manifestText: text, manifest });
  }
  return atoms;
}
