import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { CprError } from "../protocol/errors.js";
import { atomId } from "../protocol/id.js";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import type { Reporter } from "../protocol/report.js";
import type { Repo } from "../git/repo.js";
import { setRoot } from "../git/root.js";

/**
 * AtomIds of the atoms in a work tree (`cpr id`): labels from the work tree's atom.toml files (what you are editing,
 * committed or not), root from HEAD's history.
 */

export interface LocalAtomId {
  readonly id: string;
  readonly label: string;
  /** Repository-relative directory. */
  readonly path: string;
}

export interface LocalIds {
  readonly root: string;
  readonly atoms: readonly LocalAtomId[];
}

/**
 * With `all`, every atom.toml of the work tree that git does not ignore (the root excluded); otherwise the atom
 * containing each path (walking up to the work-tree top).
 */
export async function localAtomIds(repo: Repo, paths: readonly string[], all: boolean, cwd: string, reporter: Reporter): Promise<LocalIds> {
  const top = repo.workTree;
  if (!top)
    throw new CprError("id.bare", "a bare repository has no work tree to read atoms from", { hint: "use `cpr id --root HEX LABEL`" });
  const root = await setRoot(repo, await repo.resolveCommit("HEAD"), reporter);
  const dirs = all ? await allAtomDirs(repo) : paths.map((p) => containingAtom(repo, p, cwd));
  const atoms: LocalAtomId[] = [];
  for (const dir of [...new Set(dirs)]) {
    const file = `${dir}/atom.toml`;
    const label = parseAtomManifest(await readFile(join(top, file), "utf8"), file, "publish").package.label;
    atoms.push({ id: atomId(root, label), label, path: dir });
  }
  return { root, atoms };
}

async function allAtomDirs(repo: Repo): Promise<string[]> {
  const out = await repo.git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ":(glob)**/atom.toml"]);
  const dirs = out
    .split("\0")
    .filter((f) => f.includes("/") && existsSync(join(repo.workTree!, f)))
    .map((f) => f.slice(0, f.lastIndexOf("/")));
  return [...new Set(dirs)].sort();
}

function containingAtom(repo: Repo, path: string, cwd: string): string {
  const rel = repo.repoRelative(path, cwd);
  if (rel === null) throw new CprError("id.outside", `'${path}' is not inside the work tree ${repo.workTree}`, { where: path });
  for (let dir = rel; dir !== ""; dir = dir.includes("/") ? dirname(dir) : "") {
    if (existsSync(join(repo.workTree!, dir, "atom.toml"))) return dir;
  }
  throw new CprError("id.not-in-atom", `'${path}' is not inside an atom (no atom.toml above it, below the repository top)`, {
    where: path,
    hint: "pass an atom directory, or --all for every atom of the work tree",
  });
}
