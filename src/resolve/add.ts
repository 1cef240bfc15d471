/**
 * Adding a dependency (`cpr add`): atom.toml edited in its text (comments and layout kept), the whole graph
 * resolved, and atom.lock and atom.toml written as a pair; nothing is written when resolution fails.
 *
 * An atom: its set and mirror go into [package.sets] (under an existing tag that already lists this URL, else the
 * tag asked for, else a tag named after the repository), the requirement into [deps.from.<tag>]. Without a
 * requirement, `^<resolved version>` is recorded. A direct Nix dependency goes into [deps.direct.nix] and is locked.
 */
import { isAbsolute, relative, resolve as resolvePath } from "node:path";
import { CprError } from "../protocol/errors.js";
import { atomId } from "../protocol/id.js";
import { normalizeLabel } from "../protocol/label.js";
import type { LockDirectDep } from "../protocol/lock.js";
import { unlocal } from "../protocol/lock-check.js";
import { addPackageSetMirror, readPackageSet, setDependency, setDirectNix, type DirectNixSpec } from "../protocol/manifest-edit.js";
import type { Reporter } from "../protocol/report.js";
import type { AtomUri } from "../protocol/uri.js";
import { caretOf } from "../protocol/requirement.js";
import { parseVersion } from "../protocol/version.js";
import { ROOT_PKG, saveGraph } from "./graph.js";
import { writeManifestAndLock } from "./lockfile.js";
import { lockProject, type LockOutcome, type ResolverConfig } from "./lock-project.js";
import { findProjectDir, loadProject } from "./project.js";

export interface AddOptions {
  /** Where the command runs: the project is the atom containing it; relative set paths are relative to it. */
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly reporter: Reporter;
  readonly config: ResolverConfig;
  readonly offline?: boolean;
}

/** The atom `addAtom` added, as written and locked. */
export interface AddedAtom {
  readonly label: string;
  readonly tag: string;
  readonly requirement: string;
  readonly version: string;
  readonly id: string;
}

/** A tag from a URL: the last path component without `.git`, made a valid tag. */
function tagFromUrl(url: string): string {
  const last = url.replace(/\/+$/, "").split(/[/:]/).pop() ?? "";
  let t = last
    .replace(/\.git$/, "")
    .replace(/[^\p{L}\p{N}_.:-]/gu, "-")
    .replace(/\.\.+/g, ".");
  if (!/^\p{L}/u.test(t)) t = `set-${t}`;
  try {
    return normalizeLabel(t, "tag", "tag");
  } catch {
    return "set";
  }
}

/** Adds the atom `uri` names (under `tag` when given, already a valid tag), resolves and writes. */
export async function addAtom(
  uri: AtomUri,
  tag: string | undefined,
  opts: AddOptions,
): Promise<{ outcome: LockOutcome; added: AddedAtom }> {
  const { config } = opts;
  const dir = findProjectDir(opts.cwd);
  const project = loadProject(dir);
  let text = project.manifestText;
  let mirror: string;
  if (uri.url === null) mirror = "::";
  else if (uri.url.scheme === "file" && !uri.url.url.startsWith("file://")) {
    // Paths are stored relative to the atom (or absolute when given so).
    const abs = resolvePath(opts.cwd, uri.url.url);
    const rel = relative(dir, abs) || ".";
    mirror = isAbsolute(uri.url.url) ? abs : rel.startsWith(".") ? rel : `./${rel}`;
  } else mirror = uri.url.url;
  const sets = project.manifest.package.sets;
  tag ??= Object.keys(sets).find((t) => sets[t]!.includes(mirror));
  if (tag === undefined) {
    const base = mirror === "::" ? "local" : tagFromUrl(mirror);
    tag = base;
    for (let i = 2; Object.hasOwn(sets, tag); i++) tag = `${base}-${i}`;
  }
  if (!(readPackageSet(text, tag) ?? []).includes(mirror)) text = addPackageSetMirror(text, tag, mirror);
  text = setDependency(text, tag, uri.label, uri.requirement?.text ?? "*");
  const outcome = await relock(dir, text, opts, { dryRun: true, config });
  const lock = outcome.resolution!.lock;
  // The added atom: the lock entry of (root of the tag, label).
  const root = Object.entries(lock.sets).find(([, s]) => s.tag === tag)?.[0];
  const entry = lock.deps.find((d) => d.type === "atom" && root !== undefined && d.id === atomId(root, uri.label));
  if (!entry || entry.type !== "atom") throw new CprError("add.not-locked", `${uri.label} was not locked`);
  let requirement = uri.requirement?.text;
  if (requirement === undefined) {
    const v = unlocal(entry.version).version;
    requirement = caretOf(parseVersion(v.text)).text;
    text = setDependency(text, tag, uri.label, requirement);
  }
  await writeManifestAndLock(dir, text, outcome.resolution!.lockText);
  // The graph was resolved with a provisional `*`: record the requirement written.
  const edges = { ...outcome.resolution!.edges };
  edges[ROOT_PKG] = (edges[ROOT_PKG] ?? []).map((e) => (e.dep === entry.id ? { dep: e.dep, req: requirement! } : e));
  saveGraph(config.cacheDir, outcome.resolution!.lockText, edges);
  return {
    outcome: { ...outcome, status: "written" },
    added: { label: uri.label, tag, requirement, version: entry.version, id: entry.id },
  };
}

/** Adds (or replaces) the direct Nix dependency `spec`, resolves and writes; `entry` is its new lock entry. */
export async function addDirectNix(spec: DirectNixSpec, opts: AddOptions): Promise<{ outcome: LockOutcome; entry: LockDirectDep | null }> {
  const dir = findProjectDir(opts.cwd);
  const project = loadProject(dir);
  const text = setDirectNix(project.manifestText, spec);
  const outcome = await relock(dir, text, opts, { config: opts.config });
  const entry = outcome.resolution?.lock.deps.find((d): d is LockDirectDep => d.type !== "atom" && d.name === spec.name);
  return { outcome, entry: entry ?? null };
}

/** Locks the project at `dir` as if its atom.toml were `manifestText`. */
function relock(
  dir: string,
  manifestText: string,
  opts: AddOptions,
  extra: { dryRun?: boolean; config?: AddOptions["config"] },
): Promise<LockOutcome> {
  return lockProject({ cwd: dir, env: opts.env, reporter: opts.reporter, manifestText, offline: opts.offline === true, ...extra });
}
