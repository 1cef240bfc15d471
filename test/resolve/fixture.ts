import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { recordingReporter } from "../../src/protocol/report.js";
import { newStats } from "../../src/resolve/connections.js";
import { lockProject, type LockOptions, type LockOutcome } from "../../src/resolve/lock-project.js";
import { GIT_TEST_ENV, gitIn, makeRepo, tempDir, writeFiles } from "../support/repo.js";

/**
 * Generated atom sets for the resolver tests. Refs are written directly (what `cpr publish` leaves on a remote:
 * refs/ekala/init, refs/eka/atoms/<label>/<version> and refs/eka/meta/<label>/<version>/manifest), which is all
 * resolution reads; the atom ref points at a real commit of the set.
 */

export type Deps = Record<string, Record<string, string>>;
export interface VersionSpec {
  /** tag → mirror(s) */
  sets?: Record<string, string | string[]>;
  deps?: Deps;
}
/** label → version → spec */
export type SetSpec = Record<string, Record<string, VersionSpec>>;

export function manifestText(label: string, version: string, spec: VersionSpec = {}): string {
  let s = `[package]\nlabel = "${label}"\nversion = "${version}"\n`;
  const sets = Object.entries(spec.sets ?? {});
  if (sets.length) {
    s += "\n[package.sets]\n";
    for (const [t, m] of sets) s += `${t} = ${JSON.stringify(m)}\n`;
  }
  s += `\n[compose.as]\nnix = "."\n`;
  for (const [tag, reqs] of Object.entries(spec.deps ?? {})) {
    s += `\n[deps.from.${tag}]\n`;
    for (const [l, r] of Object.entries(reqs)) s += `${l} = "${r}"\n`;
  }
  return s;
}

/** A set repository (non-bare, with one commit) at `dir` (created), holding the given published atoms. Returns its root. */
export function makeSet(dir: string, atoms: SetSpec, seed = "set"): string {
  execFileSync("git", ["init", "-q", "-b", "main", dir], { env: { ...process.env, ...GIT_TEST_ENV } });
  writeFiles(dir, { README: `${seed}\n` });
  gitIn(dir, "add", "-A");
  gitIn(dir, "commit", "-q", "-m", `set ${seed}`);
  const root = gitIn(dir, "rev-parse", "HEAD");
  const updates = [`update refs/ekala/init ${root}`];
  for (const [label, versions] of Object.entries(atoms)) {
    for (const [version, spec] of Object.entries(versions)) updates.push(...publishLines(dir, root, label, version, spec));
  }
  execFileSync("git", ["update-ref", "--stdin"], { cwd: dir, input: updates.join("\n") + "\n" });
  return root;
}

function publishLines(dir: string, root: string, label: string, version: string, spec: VersionSpec): string[] {
  const blob = execFileSync("git", ["hash-object", "-w", "--stdin"], { cwd: dir, input: manifestText(label, version, spec) })
    .toString()
    .trim();
  // A distinct commit per version, so revs differ: a tree holding the manifest.
  const tree = execFileSync("git", ["mktree"], { cwd: dir, input: `100644 blob ${blob}\tatom.toml\n` })
    .toString()
    .trim();
  const commit = execFileSync("git", ["commit-tree", tree, "-m", `publish(${label}): ${version}`], {
    cwd: dir,
    env: { ...process.env, ...GIT_TEST_ENV },
  })
    .toString()
    .trim();
  return [
    `update refs/eka/atoms/${label}/${version} ${commit}`,
    `update refs/eka/meta/${label}/${version}/manifest ${blob}`,
    `update refs/eka/meta/${label}/${version}/origin ${root}`,
  ];
}

/** Publish more versions into an existing set. */
export function publishMore(dir: string, atoms: SetSpec): void {
  const root = gitIn(dir, "rev-parse", "refs/ekala/init");
  const lines: string[] = [];
  for (const [label, versions] of Object.entries(atoms))
    for (const [version, spec] of Object.entries(versions)) lines.push(...publishLines(dir, root, label, version, spec));
  execFileSync("git", ["update-ref", "--stdin"], { cwd: dir, input: lines.join("\n") + "\n" });
}

/** A project repository with the atom `app` at `app/`. Returns the atom directory. */
export function makeProject(spec: VersionSpec, extraFiles: Record<string, string> = {}, label = "app"): string {
  const repo = makeRepo({ [`${label}/atom.toml`]: manifestText(label, "0.1.0", spec), ...extraFiles });
  return join(repo, label);
}

/** An isolated environment: its own home, cache and config directories (the default locker needs no network). */
export function isolatedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = tempDir("cpr-home-");
  return {
    ...process.env,
    ...GIT_TEST_ENV,
    HOME: home,
    XDG_CACHE_HOME: join(home, "cache"),
    XDG_CONFIG_HOME: join(home, "config"),
    CPR_CACHE_DIR: join(home, "cache", "cpr"),
    ...extra,
  };
}

export interface LockRun extends LockOutcome {
  warnings: string[];
  infos: string[];
}

export async function lock(dir: string, env: NodeJS.ProcessEnv, opts: Partial<LockOptions> = {}): Promise<LockRun> {
  const reporter = recordingReporter();
  const out = await lockProject({ cwd: dir, env, reporter, stats: newStats(), ...opts });
  return { ...out, warnings: reporter.warnings, infos: reporter.infos };
}

/** label → version of the atom entries of a lock run. */
export function versionsOf(run: LockOutcome): Record<string, string> {
  const lockv = run.resolution?.lock ?? run.project.lock;
  const out: Record<string, string> = {};
  for (const d of lockv?.deps ?? []) if (d.type === "atom") out[d.label] = d.version;
  return out;
}
