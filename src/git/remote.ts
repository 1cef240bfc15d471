import { isAbsolute, resolve } from "node:path";
import { CprError, UsageError } from "../protocol/errors.js";
import { parseGitUrl, redactUrl, type GitUrl } from "../protocol/uri.js";
import type { Repo } from "./repo.js";

/** A remote to read from (`url`, for ls-refs) and push to (`pushUrl`, as given to `git push`). */
export interface ResolvedRemote {
  /** The remote's name in the current repository, or null for a URL or path. */
  readonly name: string | null;
  readonly url: GitUrl;
  readonly pushUrl: string;
  /** What to show the user: the name, or the URL without password. */
  readonly display: string;
}

/**
 * Resolve a REMOTE argument: a remote name of `repo` (its URLs as git expands them, `insteadOf` and `pushurl`
 * included), else a URL, a path or an alias such as `gh:owner/repo` (docs/formats.md §13). Relative paths are taken from `cwd`.
 * Without an argument: the current branch's upstream remote, else `origin`; a clear error when neither exists.
 */
export async function resolveRemote(arg: string | undefined, repo: Repo | null, cwd: string): Promise<ResolvedRemote> {
  if (arg === undefined) {
    if (!repo) throw new UsageError("no remote given", { hint: "pass a remote name, URL or path" });
    const name = await defaultRemoteName(repo);
    if (!name) {
      throw new CprError("remote.none", "no remote given, and the current branch has no upstream remote and there is no 'origin'", {
        where: repo.cwd,
        hint: "pass --remote NAME_OR_URL, or add one with `git remote add origin URL`",
      });
    }
    return namedRemote(repo, name);
  }
  if (repo && isRemoteName(arg) && (await repo.config(`remote.${arg}.url`)) !== null) return namedRemote(repo, arg);
  const url = parseRemoteUrl(arg, cwd);
  return { name: null, url, pushUrl: url.url, display: displayUrl(url) };
}

/** The current branch's upstream remote (when it is a real remote), else `origin` if configured, else null. */
export async function defaultRemoteName(repo: Repo): Promise<string | null> {
  const branch = await repo.git(["symbolic-ref", "--quiet", "--short", "HEAD"], { okCodes: [0, 1, 128] });
  if (branch) {
    const upstream = await repo.config(`branch.${branch}.remote`);
    if (upstream && upstream !== "." && (await repo.config(`remote.${upstream}.url`)) !== null) return upstream;
  }
  return (await repo.config("remote.origin.url")) !== null ? "origin" : null;
}

async function namedRemote(repo: Repo, name: string): Promise<ResolvedRemote> {
  const [fetchUrl, pushUrl] = await Promise.all([repo.git(["remote", "get-url", name]), repo.git(["remote", "get-url", "--push", name])]);
  // Relative paths in a repository's config are relative to the top of that repository.
  const url = parseRemoteUrl(fetchUrl, repo.cwd, `remote '${name}'`);
  const push = parseRemoteUrl(pushUrl, repo.cwd, `remote '${name}'`);
  return { name, url, pushUrl: push.url, display: name };
}

function isRemoteName(arg: string): boolean {
  return arg.length > 0 && !arg.includes(":") && !arg.includes("\n");
}

/** Parse a URL, path or alias; a relative path becomes absolute from `base`. */
export function parseRemoteUrl(text: string, base: string, what = "remote"): GitUrl {
  let url: GitUrl;
  try {
    url = parseGitUrl(text);
  } catch (err) {
    if (err instanceof CprError) {
      throw new CprError(err.code, `${what} '${text}' is neither a configured remote nor a valid URL or path: ${err.message}`, {
        where: err.where ?? text,
        hint: err.hint ?? "use a remote name from `git remote`, a URL, or a path such as ./repo.git",
        cause: err,
      });
    }
    throw err;
  }
  if (url.scheme === "file" && !url.url.startsWith("file://") && !isAbsolute(url.url)) {
    const abs = resolve(base, url.url);
    return { ...url, url: abs, path: abs };
  }
  return url;
}

/** A URL for messages: no password (redactUrl). */
export function displayUrl(url: GitUrl): string {
  return redactUrl(url.url);
}
