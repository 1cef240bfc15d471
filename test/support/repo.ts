import { mkdtempSync, mkdirSync, writeFileSync, rmSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execFileSync } from "node:child_process";

/** Temporary directories removed at process exit unless CPR_KEEP_TMP is set. */
const made: string[] = [];
process.on("exit", () => {
  if (process.env.CPR_KEEP_TMP) return;
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = "cpr-test-"): string {
  const d = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  made.push(d);
  return d;
}

/** Deterministic identity and dates so that commit ids are reproducible across runs and clones. */
export const GIT_TEST_ENV: NodeJS.ProcessEnv = {
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.org",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.org",
  GIT_AUTHOR_DATE: "2024-01-01T00:00:00Z",
  GIT_COMMITTER_DATE: "2024-01-01T00:00:00Z",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

export function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...GIT_TEST_ENV, ...env }, encoding: "utf8" }).trim();
}

export function gitIn(cwd: string, ...args: string[]): string {
  return sh("git", args, cwd);
}

/** Write files (path → content) under `root`, creating directories. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [p, content] of Object.entries(files)) {
    const full = join(root, p);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

export function atomToml(label: string, version: string, extra = ""): string {
  return `[package]\nlabel = "${label}"\nversion = "${version}"\n${extra}`;
}

/** A new work repository with `files` committed as the first commit. Returns its path. */
export function makeRepo(files: Record<string, string>, opts: { objectFormat?: "sha1" | "sha256" } = {}): string {
  const dir = tempDir("cpr-repo-");
  gitIn(dir, "init", "-q", "-b", "main", `--object-format=${opts.objectFormat ?? "sha1"}`);
  writeFiles(dir, files);
  gitIn(dir, "add", "-A");
  gitIn(dir, "commit", "-q", "-m", "initial");
  return dir;
}

/** Commit everything in `dir` with `message`; returns the new HEAD id. */
export function commitAll(dir: string, message: string): string {
  gitIn(dir, "add", "-A");
  gitIn(dir, "commit", "-q", "--allow-empty", "-m", message);
  return gitIn(dir, "rev-parse", "HEAD");
}

/** A bare repository to push to. */
export function makeBare(opts: { objectFormat?: "sha1" | "sha256" } = {}): string {
  const dir = tempDir("cpr-bare-");
  gitIn(dir, "init", "-q", "--bare", `--object-format=${opts.objectFormat ?? "sha1"}`);
  return dir;
}

/** Every ref of a repository as `oid name` lines, for byte-for-byte before/after comparisons. */
export function refsOf(dir: string): string {
  return gitIn(dir, "for-each-ref", "--format=%(objectname) %(refname)");
}
