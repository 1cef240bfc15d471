import { run, runSync, type ProcessErrors } from "../process/run.js";

/**
 * Whose repository a git process works on. Every git process cpr starts says which (GitRunOptions.repo,
 * Repo.open's `repo`), and its environment follows from it (gitEnv):
 *
 * - `user`: the user's own repository (publish, init, ls, the set root, git config and credential lookups): git's
 *   repository variables (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE…, as a git hook or the user sets them) are
 *   honoured, as git honours them.
 * - `cpr`: a repository cpr owns (the cache, its scratch repositories, the throw-away repository a push runs
 *   from): the repository variables are removed, so that a run inside a git hook, or with GIT_DIR exported, can
 *   neither read nor write the user's repository instead. Configuration given with `git -c` or GIT_CONFIG_COUNT is
 *   kept, as git keeps it when it runs a command in a submodule.
 * - `remote`: a process serving another repository (`git upload-pack` on a local path, ssh): every variable git
 *   itself removes before connecting, configuration included.
 */
export type GitRepoKind = "user" | "cpr" | "remote";

/** Run the real `git` binary. Everything cpr does to a repository goes through here or a long-lived child. */
export interface GitRunOptions {
  /** Whose repository this git process works on: decides which of git's variables it sees (GitRepoKind). */
  repo: GitRepoKind;
  cwd?: string;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Accept these exit codes without throwing (default [0]). */
  okCodes?: number[];
}

export interface GitResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

/**
 * The variables that describe the calling repository, as `git rev-parse --local-env-vars` prints them (git's
 * `local_repo_env`; this is git 2.39's list, which holds every later version's too). git removes them before
 * starting upload-pack on another repository.
 */
export const LOCAL_REPO_ENV: readonly string[] = [
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_CONFIG",
  "GIT_CONFIG_PARAMETERS",
  "GIT_CONFIG_COUNT",
  "GIT_OBJECT_DIRECTORY",
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_IMPLICIT_WORK_TREE",
  "GIT_GRAFT_FILE",
  "GIT_INDEX_FILE",
  "GIT_NO_REPLACE_OBJECTS",
  "GIT_REPLACE_REF_BASE",
  "GIT_PREFIX",
  "GIT_INTERNAL_SUPER_PREFIX",
  "GIT_SHALLOW_FILE",
  "GIT_COMMON_DIR",
];

/** Configuration, not location: kept for cpr's own repositories (git's prepare_other_repo_env keeps them too). */
const CONFIG_ENV: ReadonlySet<string> = new Set(["GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"]);

/**
 * Also removed for cpr's own repositories: the ref namespace of the repository a hook runs in (its keep refs
 * would land under refs/namespaces/…), and the quarantine of a pre-receive hook (git refuses every ref update
 * while GIT_QUARANTINE_PATH is set).
 */
const OWN_REPO_EXTRA = ["GIT_NAMESPACE", "GIT_QUARANTINE_PATH"] as const;

const KNOWN: ReadonlySet<string> = new Set([...LOCAL_REPO_ENV, ...OWN_REPO_EXTRA]);
/** `git rev-parse --local-env-vars` of the git on PATH, asked once, and only if ever needed. */
let installedList: readonly string[] | null = null;

/**
 * The repository variables of the installed git. Only an environment holding a GIT_ variable cpr's list does not
 * know makes cpr ask git (once per process): a newer git may name more; for the rest, the list above is exact.
 */
function localRepoVars(env: NodeJS.ProcessEnv): readonly string[] {
  if (installedList === null && Object.keys(env).some((k) => k.startsWith("GIT_") && !KNOWN.has(k))) {
    const clean: NodeJS.ProcessEnv = { ...env };
    for (const k of KNOWN) delete clean[k];
    const out = runSync("git", ["rev-parse", "--local-env-vars"], { env: clean });
    // No git: nothing will run anyway.
    installedList =
      out === null ? LOCAL_REPO_ENV : [...new Set([...LOCAL_REPO_ENV, ...out.split("\n").filter((l) => /^GIT_\w+$/.test(l))])];
  }
  return installedList ?? LOCAL_REPO_ENV;
}

/**
 * Environment for every git child (and the ssh that carries one): no prompts, no pager, stable C locale messages,
 * and the repository variables that `repo` calls for (GitRepoKind).
 */
export function gitEnv(base: NodeJS.ProcessEnv | undefined, repo: GitRepoKind): NodeJS.ProcessEnv {
  const env = base ?? process.env;
  const out: NodeJS.ProcessEnv = {
    ...env,
    GIT_TERMINAL_PROMPT: env.GIT_TERMINAL_PROMPT ?? "0",
    GIT_PAGER: "cat",
    LC_ALL: "C",
    LANGUAGE: "C",
  };
  if (repo === "user") return out;
  for (const k of localRepoVars(env)) if (repo === "remote" || !CONFIG_ENV.has(k)) delete out[k];
  if (repo === "cpr") for (const k of OWN_REPO_EXTRA) delete out[k];
  return out;
}

/** How git's failures read: `git.spawn` (git is not on PATH), `git.failed` ("git <verb> failed (exit N): …"). */
export function gitErrors(args: readonly string[], where?: string): ProcessErrors {
  return {
    name: `git ${args[0]}`,
    spawn: "git.spawn",
    hint: "install git and make sure it is on PATH",
    failed: "git.failed",
    ...(where === undefined ? {} : { where }),
  };
}

export async function runGit(args: readonly string[], opts: GitRunOptions): Promise<GitResult> {
  const r = await run("git", args, {
    cwd: opts.cwd,
    env: gitEnv(opts.env, opts.repo),
    input: opts.input ?? "",
    okCodes: opts.okCodes ?? [0],
    errors: gitErrors(args),
  });
  return { stdout: r.stdout, stderr: r.stderr, code: r.code ?? -1 };
}

/** stdout as trimmed UTF-8. */
export async function git(args: readonly string[], opts: GitRunOptions): Promise<string> {
  return (await runGit(args, opts)).stdout.toString("utf8").trim();
}
