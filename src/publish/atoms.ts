import { CprError } from "../protocol/errors.js";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import { parseSetManifest } from "../protocol/set-manifest.js";
import type { Reporter } from "../protocol/report.js";
import type { Version } from "../protocol/version.js";
import type { Repo, TreeEntry } from "../git/repo.js";

/**
 * The atoms of a commit (docs/formats.md §9.1, §9.3, §9.4), read from the commit's tree, never from the work tree: the
 * `[set].packages` of a top-level `ekala.toml` when there is one, else every directory holding an `atom.toml` blob.
 * One `git ls-tree` lists the tree; the manifests are read through the repository's `cat-file --batch`.
 */

/** A valid atom of the commit. */
export interface SourceAtom {
  /** Repository-relative directory, `/`-separated, never "". */
  readonly path: string;
  /** NFKC label from `[package].label`. */
  readonly label: string;
  readonly version: Version;
  /** The directory's existing tree in the commit. */
  readonly tree: string;
  /** The `atom.toml` blob. */
  readonly manifest: string;
  /** Its text. */
  readonly manifestText: string;
  /** The `atom.lock` entry next to it in the commit (a blob; null when there is none), for the lock check (§14). */
  readonly lock: { readonly oid: string; readonly mode: string } | null;
}

/** A listed or discovered atom directory that is not a valid atom. */
export interface AtomProblem {
  readonly path: string;
  readonly error: CprError;
}

export interface SourceAtoms {
  readonly commit: string;
  /** True when the commit has a top-level `ekala.toml` (its list is authoritative). */
  readonly listed: boolean;
  /** Valid atoms, sorted by path. Labels are unique. */
  readonly atoms: readonly SourceAtom[];
  /** Listed or discovered directories that are not valid atoms (bad manifest, missing file, the root…). */
  readonly problems: readonly AtomProblem[];
  /** Every directory of the commit holding an `atom.toml` blob, listed or not. */
  readonly candidates: ReadonlySet<string>;
}

const MANIFEST = "atom.toml";
const LOCK = "atom.lock";
const SET_MANIFEST = "ekala.toml";

/** Read the atoms of `commit`. Duplicate labels are an error naming both paths. */
export async function readSourceAtoms(repo: Repo, commit: string, reporter: Reporter): Promise<SourceAtoms> {
  // Only trees, the two manifest files and locks matter here: other blobs are skipped while parsing.
  const entries = new Map((await repo.listTree(commit, { blobNames: [MANIFEST, SET_MANIFEST, LOCK] })).map((e) => [e.path, e]));
  const candidates = new Set([...entries.values()].filter(isManifestEntry).map((e) => dirOf(e.path)));
  const setFile = entries.get(SET_MANIFEST);
  const listed = setFile?.type === "blob";
  const paths = listed ? await listedPaths(repo, setFile) : [...candidates].sort();

  const problems: AtomProblem[] = [];
  const shaped: { path: string; tree: string; manifest: string; lock: SourceAtom["lock"] }[] = [];
  for (const path of paths) {
    const problem = shapeProblem(path, entries);
    const lock = entries.get(`${path}/${LOCK}`);
    if (problem) problems.push({ path, error: problem });
    else
      shaped.push({
        path,
        tree: entries.get(path)!.oid,
        manifest: entries.get(`${path}/${MANIFEST}`)!.oid,
        lock: lock?.type === "blob" ? { oid: lock.oid, mode: lock.mode } : null,
      });
  }

  const progress = reporter.progress("Reading manifests", shaped.length);
  const blobs = await Promise.all(
    repo.readEach(shaped.map((a) => a.manifest)).map(async (read) => {
      const blob = await read;
      progress.tick();
      return blob;
    }),
  );
  progress.done();

  const atoms: SourceAtom[] = [];
  shaped.forEach((a, i) => {
    const file = `${a.path}/${MANIFEST}`;
    try {
      const blob = blobs[i];
      if (!blob) throw new CprError("atom.missing", `cannot read ${file} (${a.manifest}) from ${commit}`, { where: file });
      const manifestText = blob.data.toString("utf8");
      const pkg = parseAtomManifest(manifestText, file, "publish").package;
      atoms.push({ ...a, manifestText, label: pkg.label, version: pkg.version });
    } catch (err) {
      if (!(err instanceof CprError)) throw err;
      problems.push({ path: a.path, error: err });
    }
  });
  checkUniqueLabels(atoms);
  return { commit, listed, atoms, problems, candidates };
}

function isManifestEntry(e: TreeEntry): boolean {
  return e.type === "blob" && (e.path === MANIFEST || e.path.endsWith(`/${MANIFEST}`));
}

function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

async function listedPaths(repo: Repo, setFile: TreeEntry): Promise<string[]> {
  const blob = await repo.readObject(setFile.oid);
  if (!blob) throw new CprError("atom.missing", `cannot read ${SET_MANIFEST} (${setFile.oid})`, { where: SET_MANIFEST });
  return [...parseSetManifest(blob.data.toString("utf8"), SET_MANIFEST).packages];
}

/** Why `path` is not an atom directory of the tree, or null when it has the right shape (docs/formats.md §9.4). */
function shapeProblem(path: string, entries: ReadonlyMap<string, TreeEntry>): CprError | null {
  if (path === "") {
    return new CprError("atom.at-root", "an atom cannot sit at the repository root", {
      where: MANIFEST,
      hint: "move atom.toml (and the atom's files) into a subdirectory",
    });
  }
  const dir = entries.get(path);
  if (dir?.type !== "tree") {
    return new CprError("atom.not-found", `'${path}' is not a directory of the commit`, {
      where: path,
      hint: "fix the path in ekala.toml [set].packages, or commit the atom",
    });
  }
  const manifest = entries.get(`${path}/${MANIFEST}`);
  if (manifest?.type !== "blob" || manifest.mode === "120000") {
    return new CprError("atom.no-manifest", `'${path}' has no ${MANIFEST} file in the commit`, {
      where: `${path}/${MANIFEST}`,
      hint: "commit the atom's atom.toml (a regular file, not a symlink)",
    });
  }
  return null;
}

function checkUniqueLabels(atoms: readonly SourceAtom[]): void {
  const seen = new Map<string, string>();
  for (const a of atoms) {
    const other = seen.get(a.label);
    if (other !== undefined) {
      throw new CprError("publish.duplicate-label", `label '${a.label}' is used by two atoms: ${other} and ${a.path}`, {
        where: `${a.path}/${MANIFEST}`,
        hint: "labels must be unique within a set: rename one of them",
      });
    }
    seen.set(a.label, a.path);
  }
}
