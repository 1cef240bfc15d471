import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { gitEnv } from "../exec.js";
import { classifyStderr, remoteError, stderrTail, transportError } from "./errors.js";
import { spawnSession, type ChildExit } from "./child.js";
import type { Session, TransportContext } from "./types.js";

/** The repository path of a file:// URL or plain path, made absolute against `cwd`. */
export function localPath(ctx: TransportContext): string {
  let p = ctx.url.path;
  if (/^file:\/\//i.test(ctx.url.url) && p === "") p = "/";
  return resolve(ctx.cwd, p);
}

/**
 * Environment for a local upload-pack: the caller's, minus the variables that describe the calling repository (as
 * git removes them, so that e.g. running inside a hook cannot redirect it), plus v2.
 */
export function localEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...gitEnv(env, "remote"), GIT_PROTOCOL: "version=2" };
}

/** `git upload-pack <path>` as a child process speaking protocol v2 on stdin/stdout. */
export function openLocal(ctx: TransportContext): Session {
  const path = localPath(ctx);
  if (!existsSync(path)) {
    throw remoteError(
      "remote.not-found",
      ctx.display,
      `${ctx.display}: no such repository: ${path} does not exist`,
      "check the path (relative paths are resolved against the current directory)",
    );
  }
  return spawnSession(
    {
      file: "git",
      args: ["upload-pack", path],
      env: localEnv(ctx.env),
      cwd: ctx.cwd,
      program: "git upload-pack",
      classify: (what, stderr, exit) => classifyLocal(ctx, path, what, stderr, exit),
    },
    ctx,
  );
}

function classifyLocal(ctx: TransportContext, path: string, what: string, stderr: string, exit: ChildExit): Error {
  const detail = stderrTail(stderr) || `exit ${exit.code ?? exit.signal ?? "?"}`;
  if (classifyStderr(stderr) === "remote.not-found") {
    return remoteError(
      "remote.not-found",
      ctx.display,
      `${ctx.display}: ${path} is not a git repository (${detail})`,
      "point at a repository directory (bare, or one containing .git)",
    );
  }
  return transportError(ctx.display, `git upload-pack ${what} (${detail})`);
}
