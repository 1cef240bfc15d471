import { spawnSync } from "node:child_process";
import { Repo } from "../../src/git/repo.js";
import { resolveRemote } from "../../src/git/remote.js";
import { initRemote, type InitResult } from "../../src/publish/init.js";
import { publish, type PublishOptions, type PublishResult } from "../../src/publish/publish.js";
import { recordingReporter } from "../../src/protocol/report.js";
import { atomCommitBody } from "../../src/protocol/commit.js";
import { GIT_TEST_ENV, gitIn, tempDir } from "../support/repo.js";

/** Shared helpers of the publish tests: run the capabilities against real repositories. */

export const env: NodeJS.ProcessEnv = { ...process.env, ...GIT_TEST_ENV };

export type RunOptions = Partial<Omit<PublishOptions, "repo" | "remotes" | "reporter">> & { remotes?: string[] };

/** `env` plus `extra` (e.g. GIT_SSH_COMMAND for an ssh remote). */
function withEnv(extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  return extra ? { ...env, ...extra } : env;
}

/** Publish from `dir` to `remote` (a path or URL; several with `remotes`). */
export async function publishTo(dir: string, remote: string, opts: RunOptions = {}): Promise<PublishResult & { warnings: string[] }> {
  const runEnv = withEnv(opts.env);
  const repo = await Repo.open(opts.cwd ?? dir, { env: runEnv, repo: "user" });
  const reporter = recordingReporter();
  try {
    const remotes = await Promise.all((opts.remotes ?? [remote]).map((r) => resolveRemote(r, repo, opts.cwd ?? dir)));
    const result = await publish({ targets: [], all: true, cwd: dir, ...opts, repo, remotes, reporter, env: runEnv });
    return { ...result, warnings: reporter.warnings };
  } finally {
    repo.close();
  }
}

/** `cpr init` from `dir` to `remote`. */
export async function initTo(dir: string, remote: string, extraEnv?: NodeJS.ProcessEnv): Promise<InitResult> {
  const runEnv = withEnv(extraEnv);
  const repo = await Repo.open(dir, { env: runEnv, repo: "user" });
  try {
    return await initRemote({ repo, remote: await resolveRemote(remote, repo, dir), reporter: recordingReporter(), env: runEnv, cwd: dir });
  } finally {
    repo.close();
  }
}

/** The refs of a repository as a map. */
export function refMap(dir: string): Map<string, string> {
  const out = gitIn(dir, "for-each-ref", "--format=%(objectname) %(refname)");
  return new Map(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [oid, name] = l.split(" ") as [string, string];
        return [name, oid];
      }),
  );
}

/** `git fsck --strict` must pass with no error or warning (the unborn-HEAD notice of a bare remote is fine). */
export function fsckStrict(dir: string): void {
  const r = spawnSync("git", ["fsck", "--strict", "--no-dangling"], { cwd: dir, env, encoding: "utf8" });
  const problems = r.stderr.split("\n").filter((l) => l && !l.startsWith("notice: HEAD points to an unborn branch"));
  if (r.status !== 0 || problems.length) throw new Error(`git fsck --strict failed in ${dir}:\n${r.stderr}`);
}

/**
 * `cpr resolve` in an atom directory of a work tree (writes atom.lock), offline but for the mirrors the manifest
 * names (local paths in these tests), with a cache of its own.
 */
export async function resolveAtom(atomDir: string): Promise<void> {
  const { lockProject } = await import("../../src/resolve/lock-project.js");
  const { DEFAULT_ALIASES } = await import("../../src/protocol/uri.js");
  const { DEFAULT_LOCKER_SPEC } = await import("../../src/protocol/lock.js");
  const cacheDir = tempDir("cpr-cache-");
  await lockProject({
    cwd: atomDir,
    env: { ...env, CPR_CACHE_DIR: cacheDir },
    reporter: recordingReporter(),
    config: { aliases: DEFAULT_ALIASES, listingTtl: 0, cacheDir, locker: DEFAULT_LOCKER_SPEC },
  });
}

/**
 * Publish the atom at `path` of `dir`'s HEAD to `remote` by hand, with git plumbing and none of publish's checks:
 * the atom commit (docs/formats.md §7) and its three refs, as an older cpr (or another tool) may have left them.
 */
export function publishByHand(dir: string, remote: string, path: string, label: string, version: string): string {
  const head = gitIn(dir, "rev-parse", "HEAD");
  const tree = gitIn(dir, "rev-parse", `HEAD:${path}`);
  const manifest = gitIn(dir, "rev-parse", `HEAD:${path}/atom.toml`);
  const body = atomCommitBody({ tree, origin: head, label, version });
  const rev = spawnSync("git", ["hash-object", "-t", "commit", "-w", "--stdin"], { cwd: dir, input: body, encoding: "utf8" }).stdout.trim();
  gitIn(
    dir,
    "push",
    "-q",
    remote,
    `${rev}:refs/eka/atoms/${label}/${version}`,
    `${manifest}:refs/eka/meta/${label}/${version}/manifest`,
    `${head}:refs/eka/meta/${label}/${version}/origin`,
  );
  return rev;
}
