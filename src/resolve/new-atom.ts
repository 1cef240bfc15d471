/**
 * `cpr new PATH`: a new atom, as `eka new` makes one: `PATH/atom.toml` with `[package]` (the label from the
 * directory name or given, version 0.1.0) and a composer (`[compose.with.<composer>]` from config, or `--nix`: a
 * trivial atom with a `default.nix` evaluated in the docs/formats.md §12 convention), listed in the repository's `ekala.toml`
 * when there is one. Every check runs first; then the files go to temporary files and are linked or renamed into
 * place, `ekala.toml` last. On any failure nothing stays: files and directories made by the run are removed.
 */
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { link, mkdir, rename, rm, rmdir } from "node:fs/promises";
import { basename, dirname, join, relative, resolve as resolvePath, sep } from "node:path";
import { Repo } from "../git/repo.js";
import { CprError } from "../protocol/errors.js";
import { normalizeLabel } from "../protocol/label.js";
import { addSetPackage } from "../protocol/manifest-edit.js";
import { normalizeRelativePath } from "../protocol/atom-manifest.js";
import { parseSetManifest } from "../protocol/set-manifest.js";
import { tomlBasicString, tomlKey } from "../protocol/toml.js";
import { MANIFEST_NAME, syncDir, writeTemp } from "./lockfile.js";
import { workTreeAtoms } from "./project.js";

export const NEW_VERSION = "0.1.0";
const SET_MANIFEST = "ekala.toml";
const NIX_ENTRY = "default.nix";

/** The composer a new atom gets (config `[new]`): `[compose.with.<label>]` from the set `<tag>` at `<url>`. */
export interface NewComposer {
  readonly label: string;
  readonly tag: string;
  readonly url: string;
}

export interface NewAtomOptions {
  readonly cwd: string;
  /** The atom directory (created when missing), relative to `cwd`. */
  readonly path: string;
  /** The label; default: the directory's name. */
  readonly label?: string;
  /** A trivial atom (`[compose.as] nix = "default.nix"`) instead of the composer. */
  readonly nix: boolean;
  readonly composer: NewComposer;
  readonly env: NodeJS.ProcessEnv;
}

export interface NewAtomResult {
  readonly label: string;
  readonly version: string;
  /** The atom directory (absolute). */
  readonly dir: string;
  /** Files written (absolute), in the order written. */
  readonly created: readonly string[];
  /** Files that were there and were used as they are (an existing default.nix with --nix). */
  readonly kept: readonly string[];
  /** The `ekala.toml` that now lists the atom, and its entry; null without one (or when it already listed it). */
  readonly set: { readonly file: string; readonly entry: string } | null;
  /** The composer written, as the manifest says it. */
  readonly compose: string;
}

/** The atom.toml of a new atom. */
export function newManifestText(label: string, composer: NewComposer | null): string {
  const pkg = `[package]\nlabel = ${tomlBasicString(label)}\nversion = "${NEW_VERSION}"\n`;
  if (composer === null) return `${pkg}\n[compose.as]\nnix = "${NIX_ENTRY}"\n`;
  return `${pkg}\n[package.sets]\n${tomlKey(composer.tag)} = ${tomlBasicString(composer.url)}\n\n[compose.with.${tomlKey(composer.label)}]\nfrom = ${tomlBasicString(composer.tag)}\n`;
}

/** The default.nix of a trivial atom (`--nix`): its value under the §14 convention. */
export function newNixText(label: string): string {
  return `# The atom ${label}. Its value is this file's (docs/formats.md §12): it is imported with \`scopedImport\`, with in scope
#   atoms  its inputs: atoms.deps.from.<set>.<label> ([deps.from.*] in atom.toml, each evaluated from its own
#          published tree and lock), atoms.deps.pins.<name> and atoms.deps.get.<name> ([deps.direct.nix]);
#   cfg    cfg.package, the [package] table of atom.toml, and cfg.system, the system built for.
# \`cpr build\` builds the value when it is a derivation (or an attribute set with a \`default\` one).
derivation {
  name = "\${cfg.package.label}-\${cfg.package.version}";
  system = cfg.system;
  builder = "/bin/sh";
  args = [ "-c" "echo \${cfg.package.label} \${cfg.package.version} > $out" ];
}
`;
}

/** The nearest existing ancestor of `dir` (itself when it exists). */
function existingAncestor(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

export async function newAtom(opts: NewAtomOptions): Promise<NewAtomResult> {
  const dir = resolvePath(opts.cwd, opts.path);
  const shown = relative(opts.cwd, dir) || ".";
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new CprError("new.not-a-directory", `${shown} exists and is not a directory`, {
      where: shown,
      hint: "give the directory the atom should live in",
    });
  }
  const manifestFile = join(dir, MANIFEST_NAME);
  if (existsSync(manifestFile)) {
    throw new CprError("new.exists", `${join(shown, MANIFEST_NAME)} already exists: ${shown} is an atom already`, {
      where: join(shown, MANIFEST_NAME),
      hint: "edit that atom.toml, or give another PATH",
    });
  }
  const label = newLabel(opts.label, dir, shown);

  // The repository (if any): the atom must not be its root; its set's labels must not include this one.
  let set: { file: string; text: string; entry: string; listed: boolean } | null = null;
  let repo: Repo | null = null;
  try {
    repo = await Repo.open(existingAncestor(dir), { env: opts.env, repo: "user" });
  } catch {
    repo = null;
  }
  try {
    const top = repo?.workTree ?? null;
    if (repo && top) {
      // git prints the top with symlinks resolved: compare real paths.
      const ancestor = existingAncestor(dir);
      const rel = relative(top, join(realpathSync(ancestor), relative(ancestor, dir)))
        .split(sep)
        .join("/");
      if (rel === "") {
        throw new CprError("new.at-root", "an atom cannot sit at the repository root", {
          where: shown,
          hint: "give a subdirectory, e.g. `cpr new pkgs/foo`",
        });
      }
      const file = join(top, SET_MANIFEST);
      if (existsSync(file)) {
        const text = readFileSync(file, "utf8");
        const packages = parseSetManifest(text, file).packages;
        const entry = normalizeRelativePath(rel);
        if (!entry.ok) throw new CprError("new.outside", `${shown} is not inside the repository at ${top}`, { where: shown });
        set = { file, text, entry: entry.path, listed: packages.includes(entry.path) };
      }
      const other = (await workTreeAtoms(repo, top)).get(label);
      if (other) {
        throw new CprError(
          "new.duplicate-label",
          `label '${label}' is already used by the atom in ${relative(opts.cwd, other.dir) || "."}`,
          {
            where: set ? set.file : shown,
            hint: "labels are unique within a set: choose another with --label L",
          },
        );
      }
    }
  } finally {
    repo?.close();
  }
  const newSetText = set && !set.listed ? addSetPackage(set.text, set.entry) : null;

  const manifestText = newManifestText(label, opts.nix ? null : opts.composer);
  const nixFile = join(dir, NIX_ENTRY);
  const writeNix = opts.nix && !existsSync(nixFile);
  const compose = opts.nix
    ? `[compose.as] nix = "${NIX_ENTRY}"`
    : `[compose.with.${opts.composer.label}] from ${opts.composer.tag} (${opts.composer.url})`;

  // Write: directories, temporary files, then links (which never replace a file) and the ekala.toml rename.
  const base = existingAncestor(dir);
  const madeDirs: string[] = [];
  for (let d = dir; d !== base; d = dirname(d)) madeDirs.push(d);
  const temps: string[] = [];
  const placed: string[] = [];
  try {
    await mkdir(dir, { recursive: true });
    const files: [string, string][] = [
      ...(writeNix ? ([[nixFile, newNixText(label)]] as [string, string][]) : []),
      [manifestFile, manifestText],
    ];
    const staged: [string, string][] = [];
    for (const [file, text] of files) {
      const tmp = await writeTemp(dir, basename(file), text);
      temps.push(tmp);
      staged.push([tmp, file]);
    }
    const setTmp = newSetText !== null ? await writeTemp(dirname(set!.file), SET_MANIFEST, newSetText) : null;
    if (setTmp) temps.push(setTmp);
    for (const [tmp, file] of staged) {
      await link(tmp, file);
      placed.push(file);
    }
    if (setTmp) {
      await rename(setTmp, set!.file);
      temps.splice(temps.indexOf(setTmp), 1);
    }
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    await syncDir(dir);
    if (set) await syncDir(dirname(set.file));
    return {
      label,
      version: NEW_VERSION,
      dir,
      created: placed,
      kept: opts.nix && !writeNix ? [nixFile] : [],
      set: newSetText !== null ? { file: set!.file, entry: set!.entry } : null,
      compose,
    };
  } catch (e) {
    await Promise.all([...temps, ...placed].map((f) => rm(f, { force: true }).catch(() => {})));
    for (const d of madeDirs) await rmdir(d).catch(() => {});
    if (e instanceof CprError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new CprError("new.write", `could not create the atom in ${shown}: ${err.message}; nothing was written`, {
      where: err.path ?? shown,
      hint:
        err.code === "EEXIST"
          ? "another process created the file meanwhile; look at it, then run again"
          : "check that the directories are writable",
      cause: e,
    });
  }
}

function newLabel(given: string | undefined, dir: string, shown: string): string {
  const raw = given ?? basename(dir);
  try {
    return normalizeLabel(raw, "label", given !== undefined ? "--label" : "the label taken from the directory's name,");
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError(e.code, e.message, {
      where: given !== undefined ? "--label" : shown,
      hint:
        given !== undefined
          ? "a label starts with a letter and holds letters, digits, '_' and '-' (docs/formats.md §2)"
          : "give a valid label with --label L (docs/formats.md §2: a letter first, then letters, digits, '_' and '-')",
      cause: e,
    });
  }
}
