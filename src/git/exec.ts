import { spawn } from "node:child_process";
import { CprError } from "../protocol/errors.js";

/** Run the real `git` binary. Everything cpr does to a repository goes through here or a long-lived child. */
export interface GitRunOptions {
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

/** Environment for every git child: no prompts, no pager, stable C locale messages. */
export function gitEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, GIT_TERMINAL_PROMPT: env.GIT_TERMINAL_PROMPT ?? "0", GIT_PAGER: "cat", LC_ALL: "C", LANGUAGE: "C" };
}

export function runGit(args: readonly string[], opts: GitRunOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd: opts.cwd, env: gitEnv(opts.env), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) =>
      reject(new CprError("git.spawn", `could not run git: ${e.message}`, { hint: "install git and make sure it is on PATH", cause: e })),
    );
    child.on("close", (code) => {
      const result = { stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8"), code: code ?? -1 };
      if ((opts.okCodes ?? [0]).includes(result.code)) resolve(result);
      else
        reject(
          new CprError("git.failed", `git ${args[0]} failed (exit ${result.code}): ${result.stderr.trim() || "(no output)"}`, {
            where: opts.cwd,
          }),
        );
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

/** stdout as trimmed UTF-8. */
export async function git(args: readonly string[], opts: GitRunOptions = {}): Promise<string> {
  return (await runGit(args, opts)).stdout.toString("utf8").trim();
}
