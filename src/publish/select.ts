import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { CprError, UsageError } from "../protocol/errors.js";
import type { Reporter } from "../protocol/report.js";
import type { Repo } from "../git/repo.js";
import type { SourceAtom, SourceAtoms } from "./atoms.js";

/**
 * Which atoms a publish run is about: PATH or LABEL arguments, `--all`, or by default the atom containing the
 * current directory. A requested atom that is not valid is an error; problems of atoms not requested are warnings.
 */

export interface Selection {
  readonly targets: readonly string[];
  readonly all: boolean;
  readonly cwd: string;
  readonly repo: Repo;
  /** The revision, for messages. */
  readonly rev: string;
}

/** Resolve the selection against the commit's atoms. */
export function selectAtoms(source: SourceAtoms, sel: Selection, reporter: Reporter): SourceAtom[] {
  const paths = sel.all
    ? allPaths(source)
    : sel.targets.length
      ? sel.targets.map((t) => resolveTarget(source, t, sel))
      : [cwdAtom(source, sel)];
  const wanted = new Set(paths);
  const byPath = new Map(source.atoms.map((a) => [a.path, a]));
  const errors = source.problems.filter((p) => wanted.has(p.path));
  for (const p of source.problems) {
    if (!wanted.has(p.path)) reporter.warn("publish.ignored-atom", `ignoring ${p.path || "the repository root"}: ${p.error.message}`);
  }
  if (errors.length === 1) throw errors[0]!.error;
  if (errors.length > 1) {
    throw new CprError(
      "publish.invalid-atoms",
      `${errors.length} atoms are invalid:\n${errors.map((e) => `  - ${describe(e.error)}`).join("\n")}`,
      {
        hint: "fix them (and commit), or publish only the valid atoms by PATH or LABEL",
      },
    );
  }
  return [...wanted].map((p) => byPath.get(p)!);
}

function describe(err: CprError): string {
  return err.where ? `${err.where}: ${err.message}` : err.message;
}

function allPaths(source: SourceAtoms): string[] {
  const paths = [...source.atoms.map((a) => a.path), ...source.problems.map((p) => p.path)];
  if (paths.length === 0) {
    throw new CprError("publish.no-atoms", `commit ${source.commit} has no atoms`, {
      hint: source.listed ? "list atom directories in ekala.toml [set].packages" : "add a directory with an atom.toml and commit it",
    });
  }
  return paths;
}

/** The repository-relative path of a PATH|LABEL argument. */
function resolveTarget(source: SourceAtoms, target: string, sel: Selection): string {
  const known = new Set([...source.atoms.map((a) => a.path), ...source.problems.map((p) => p.path)]);
  const byLabel = source.atoms.find((a) => a.label === target.normalize("NFKC"));
  const pathLike = target.includes("/") || target === "." || target === ".." || existsSync(resolve(sel.cwd, target));
  const rel = pathLike ? sel.repo.repoRelative(target, sel.cwd) : null;
  if (rel !== null && known.has(rel)) return rel;
  if (byLabel) return byLabel.path;
  if (rel === null && !pathLike) {
    throw new CprError("publish.unknown-label", `no atom with label '${target}' at ${sel.rev} (${source.commit.slice(0, 12)})`, {
      where: target,
      hint: "pass an atom's directory or label; `cpr id --all` lists the atoms of the repository",
    });
  }
  throw notAnAtom(source, target, rel, sel);
}

function notAnAtom(source: SourceAtoms, target: string, rel: string | null, sel: Selection): CprError {
  if (rel === null) {
    return new CprError("publish.outside", `'${target}' is not inside the repository's work tree`, {
      where: target,
      hint: sel.repo.workTree ? `atoms live under ${sel.repo.workTree}` : "in a bare repository, name atoms by label",
    });
  }
  if (rel === "")
    return new CprError("atom.at-root", "an atom cannot sit at the repository root", {
      where: "atom.toml",
      hint: "move the atom into a subdirectory",
    });
  if (source.listed && source.candidates.has(rel)) {
    return new CprError("publish.not-listed", `'${rel}' has an atom.toml but is not listed in ekala.toml [set].packages`, {
      where: "ekala.toml",
      hint: `add "${rel}" to [set].packages and commit`,
    });
  }
  return new CprError("publish.not-an-atom", `'${rel}' is not an atom directory at ${sel.rev} (${source.commit.slice(0, 12)})`, {
    where: rel,
    hint: "an atom is a committed directory holding atom.toml; commit it first if it is new",
  });
}

/** The atom containing the current directory: the deepest atom directory above it. */
function cwdAtom(source: SourceAtoms, sel: Selection): string {
  const rel = sel.repo.repoRelative(".", sel.cwd);
  const contains = (dir: string) => rel !== null && (dir === "" || rel === dir || rel.startsWith(dir + "/"));
  const deepest = (dirs: Iterable<string>) => [...dirs].filter(contains).sort((a, b) => b.length - a.length)[0];
  const listed = deepest([...source.atoms.map((a) => a.path), ...source.problems.map((p) => p.path)]);
  const unlisted = deepest(source.candidates);
  if (unlisted !== undefined && (listed === undefined || unlisted.length > listed.length)) throw notAnAtom(source, unlisted, unlisted, sel);
  if (listed !== undefined) return listed;
  throw new UsageError("the current directory is not inside an atom", {
    hint: "pass the atoms to publish as PATH or LABEL, or --all for every atom of the set",
  });
}
