import { execFileSync } from "node:child_process";
import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cache } from "../../src/git/cache.js";
import { atomToml, commitAll, gitIn, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { env, initTo, publishByHand, publishTo, resolveAtom } from "../publish/fixture.js";

export { env };

/** A published set: a history of a few commits, atoms a (0.1.0, then 0.2.0) and b (2.0.0), on a bare remote. */
export interface PublishedSet {
  readonly work: string;
  readonly remote: string;
  readonly root: string;
  readonly revs: Record<string, string>;
}

export async function publishedSet(opts: { remote?: string; extraEnv?: NodeJS.ProcessEnv; sign?: string } = {}): Promise<PublishedSet> {
  const work = makeRepo({ README: "history\n" });
  for (let i = 0; i < 3; i++) {
    writeFiles(work, { "other/big.txt": `revision ${i}\n`.repeat(200) });
    commitAll(work, `history ${i}`);
  }
  writeFiles(work, {
    "a/atom.toml": atomToml("a", "0.1.0"),
    "a/default.nix": "{ a = 1; }\n",
    "a/sub/x.nix": "x\n",
    "b/atom.toml": atomToml("b", "2.0.0"),
    "b/y.nix": "{ }\n",
  });
  chmodSync(join(work, "a/sub/x.nix"), 0o755);
  symlinkSync("default.nix", join(work, "a/link.nix"));
  commitAll(work, "atoms");
  const remote = opts.remote ?? makeBare();
  const signOpt = opts.sign ? { sign: await signHook(work, opts.sign, opts.extraEnv) } : {};
  const init = await initTo(work, remote, opts.extraEnv);
  const first = await publishTo(work, remote, { env: opts.extraEnv, ...signOpt });
  writeFiles(work, { "a/atom.toml": atomToml("a", "0.2.0"), "a/default.nix": "{ a = 2; }\n" });
  commitAll(work, "a 0.2.0");
  const second = await publishTo(work, remote, { env: opts.extraEnv, ...signOpt });
  const revs: Record<string, string> = {};
  for (const p of [...first.published, ...second.published]) revs[`${p.label}@${p.version}`] = p.rev;
  if (Object.keys(revs).length !== 3) throw new Error(`publish failed: ${JSON.stringify([first.failed, second.failed])}`);
  return { work, remote, root: init.root, revs };
}

async function signHook(work: string, key: string, extraEnv?: NodeJS.ProcessEnv) {
  const { signAtoms } = await import("../../src/publish/sign.js");
  const { Repo } = await import("../../src/git/repo.js");
  return async (atoms: readonly { label: string; version: string; commit: string }[]) => {
    const repo = await Repo.open(work, { env, repo: "user" });
    try {
      return await signAtoms(repo, atoms, { key, env: { ...env, ...extraEnv } });
    } finally {
      repo.close();
    }
  };
}

export async function newCache(): Promise<Cache> {
  return Cache.open({ dir: tempDir("cpr-cache-"), env });
}

/** An ssh key pair and an allowed-signers file trusting it. */
export function sshKey(principal: string): { key: string; pub: string; allowed: string } {
  const dir = tempDir("cpr-key-");
  const key = join(dir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", key]);
  const pub = execFileSync("cat", [`${key}.pub`], { encoding: "utf8" }).trim();
  const allowed = join(dir, "allowed_signers");
  writeFileSync(allowed, `${principal} ${pub}\n`);
  return { key, pub, allowed };
}

/** A copy of a bare repository (to tamper with). */
export function copyBare(src: string): string {
  const dir = tempDir("cpr-copy-");
  execFileSync("cp", ["-a", `${src}/.`, dir]);
  return dir;
}

export function setRef(repo: string, ref: string, oid: string): void {
  gitIn(repo, "update-ref", ref, oid);
}

/** Write a raw object into a repository. */
export function writeObject(repo: string, type: string, body: string): string {
  return execFileSync("git", ["hash-object", "-t", type, "-w", "--stdin", "--literally"], {
    cwd: repo,
    input: body,
    encoding: "utf8",
  }).trim();
}

/** Every object of a repository, as `oid type` lines. */
export function allObjects(repo: string): string[] {
  return gitIn(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)").split("\n").filter(Boolean);
}

/**
 * A set whose published atoms are all faithful, but some cannot be evaluated (docs/formats.md §12), published by hand as an
 * older cpr did: `nolock` (composed, no atom.lock), `badlock` (an atom.lock that does not parse), `stale` (a lock
 * that misses a dependency of atom.toml). `locked` (resolved) and `plain` (no [compose]) are fine.
 */
export async function unevaluableSet(): Promise<{ work: string; remote: string }> {
  const nix = '\n[compose.as]\nnix = "default.nix"\n';
  const work = makeRepo({
    "locked/atom.toml": atomToml("locked", "1.0.0", nix),
    "locked/default.nix": "{ }\n",
    "plain/atom.toml": atomToml("plain", "1.0.0"),
    "nolock/atom.toml": atomToml("nolock", "0.1.0", nix),
    "nolock/default.nix": "{ }\n",
    "badlock/atom.toml": atomToml("badlock", "0.1.0", nix),
    "badlock/atom.lock": "version = 2\n",
    "stale/atom.toml": atomToml("stale", "0.1.0", nix),
  });
  await resolveAtom(join(work, "locked"));
  await resolveAtom(join(work, "stale"));
  writeFiles(work, {
    "stale/atom.toml": atomToml("stale", "0.1.0", `${nix}\n[deps.direct.nix]\npatch.url = "https://example.org/fix.patch"\n`),
  });
  commitAll(work, "atoms");
  const remote = makeBare();
  await initTo(work, remote);
  for (const label of ["nolock", "badlock", "stale"]) publishByHand(work, remote, label, label, "0.1.0");
  const r = await publishTo(work, remote, { all: false, targets: ["locked", "plain"] });
  if (r.published.length !== 2) throw new Error(`publish failed: ${JSON.stringify(r.failed)}`);
  return { work, remote };
}
