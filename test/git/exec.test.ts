import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { gitEnv, LOCAL_REPO_ENV, runGit } from "../../src/git/exec.js";
import { gitIn, makeBare, makeRepo } from "../support/repo.js";

/** What the installed git itself calls repository-local (`git rev-parse --local-env-vars`). */
const installed = execFileSync("git", ["rev-parse", "--local-env-vars"], { encoding: "utf8" }).split("\n").filter(Boolean);
const CONFIG = ["GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"];

function every(value = "x"): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: "/h", GIT_AUTHOR_NAME: "kept", GIT_SSH_COMMAND: "ssh -v" };
  for (const k of [...LOCAL_REPO_ENV, ...installed, "GIT_NAMESPACE", "GIT_QUARANTINE_PATH"]) env[k] = value;
  return env;
}

test("gitEnv: cpr's own repositories lose every repository variable git lists, and the namespace and quarantine; config stays", () => {
  assert.ok(installed.includes("GIT_DIR") && installed.includes("GIT_INDEX_FILE"), `unexpected git output: ${installed.join(" ")}`);
  const own = gitEnv(every(), "cpr");
  for (const k of [...installed, "GIT_NAMESPACE", "GIT_QUARANTINE_PATH"]) {
    if (CONFIG.includes(k)) assert.equal(own[k], "x", `${k} is configuration: kept`);
    else assert.equal(own[k], undefined, `${k} must be removed for cpr's own repositories`);
  }
  assert.equal(own.GIT_AUTHOR_NAME, "kept");
  assert.equal(own.GIT_SSH_COMMAND, "ssh -v");
  assert.equal(own.HOME, "/h");
  assert.equal(own.GIT_TERMINAL_PROMPT, "0");
  assert.equal(own.LC_ALL, "C");
});

test("gitEnv: a remote's upload-pack loses the configuration too (as git does); the user's repository keeps everything", () => {
  const remote = gitEnv(every(), "remote");
  for (const k of installed) assert.equal(remote[k], undefined, `${k} must be removed for a remote`);
  assert.equal(remote.GIT_SSH_COMMAND, "ssh -v");
  const user = gitEnv(every(), "user");
  for (const k of [...installed, "GIT_NAMESPACE", "GIT_QUARANTINE_PATH"])
    assert.equal(user[k], "x", `${k} is honoured in the user's repository`);
});

test("runGit: with GIT_DIR, GIT_INDEX_FILE… naming the user's repository, `cpr` runs in its own repository, `user` in the user's", async () => {
  const user = makeRepo({ README: "hi\n" });
  const own = makeBare();
  const env = {
    ...process.env,
    GIT_DIR: join(user, ".git"),
    GIT_WORK_TREE: user,
    GIT_INDEX_FILE: join(user, ".git", "index"),
    GIT_OBJECT_DIRECTORY: join(user, ".git", "objects"),
  };
  const where = async (repo: "user" | "cpr") =>
    (await runGit(["rev-parse", "--absolute-git-dir"], { cwd: own, env, repo })).stdout.toString().trim();
  assert.equal(await where("cpr"), own);
  assert.equal(await where("user"), join(user, ".git"));
  const head = gitIn(user, "rev-parse", "HEAD");
  // The user's objects are invisible from cpr's repository, whatever GIT_OBJECT_DIRECTORY says.
  const seen = await runGit(["cat-file", "-e", head], { cwd: own, env, repo: "cpr", okCodes: [0, 1, 128] });
  assert.notEqual(seen.code, 0);
});

test("runGit: inside a pre-receive quarantine (GIT_QUARANTINE_PATH), cpr's own repository can still update its refs", async () => {
  const user = makeRepo({ README: "hi\n" });
  const own = makeBare();
  gitIn(own, "fetch", "-q", user, "HEAD:refs/heads/main");
  const head = gitIn(user, "rev-parse", "HEAD");
  const env = { ...process.env, GIT_QUARANTINE_PATH: join(user, ".git", "objects", "tmp_objdir-incoming-x") };
  await runGit(["update-ref", "refs/cpr/keep/objects/" + head, head], { cwd: own, env, repo: "cpr" });
  assert.equal(gitIn(own, "rev-parse", `refs/cpr/keep/objects/${head}`), head);
  // The same command in the user's repository is refused by git: the variable really is in effect there.
  const refused = await runGit(["update-ref", "refs/heads/other", head], { cwd: user, env, repo: "user", okCodes: [0, 1, 128] });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /quarantine/);
});

test("runGit goes through the process runner: no git on PATH is git.spawn with a hint; a failure is git.failed with git's message", async () => {
  await assert.rejects(runGit(["version"], { repo: "user", env: { PATH: "/nonexistent" } }), (e: unknown) => {
    assert.ok(e instanceof CprError);
    assert.equal(e.code, "git.spawn");
    assert.equal(e.message, "git was not found on PATH");
    assert.match(e.hint ?? "", /install git/);
    return true;
  });
  const dir = makeBare();
  await assert.rejects(runGit(["rev-parse", "--verify", "refs/heads/none"], { repo: "cpr", cwd: dir }), (e: unknown) => {
    assert.ok(e instanceof CprError);
    assert.equal(e.code, "git.failed");
    assert.match(e.message, /^git rev-parse failed \(exit 128\): fatal: /);
    assert.equal(e.where, dir);
    return true;
  });
});
