import { existsSync, realpathSync } from "node:fs";
import { relative, resolve, sep } from "node:path";
import { flag, type Command } from "../command.js";
import { Repo } from "../../git/repo.js";
import { CprError } from "../../protocol/errors.js";
import { parseLock, type Lockfile } from "../../protocol/lock.js";
import { diffCounts, diffJson, diffLocks, formatDiff, type OriginRange } from "../../protocol/lock-diff.js";
import { originRanges } from "../../resolve/origins.js";
import { readText } from "../shared.js";

/** `cpr diff`: what changed between two locks, by versions. */
export const command: Command = {
  name: "diff",
  usage: "cpr diff [OLD_LOCK] [NEW_LOCK] [--offline] [--json]",
  summary: "Show what changed between two locks: atoms added, removed, upgraded, downgraded, with origin ranges",
  help: `Compares two atom.lock files by versions, not hashes: atoms added (+), removed (-), upgraded or downgraded
(~, with the size of the move: major, minor, patch or pre-release) or republished under the same version (another
rev), and direct Nix dependencies ([[deps]] of type nix, nix+tar, nix+src, nix+git) added, removed or changed.
For each atom that moved, the range of origin commits between its two versions is printed (origin OLD..NEW, what
\`git log OLD..NEW\` in a clone of the set shows), read from refs/eka/meta/<label>/<version>/origin with one
ls-refs per set. \`cpr update\` and \`cpr resolve\` print the same summary.

A lock is a path, or REV:PATH for a committed one (HEAD:atom.lock). The defaults compare the lock committed at
HEAD (HEAD:./atom.lock, or no lock when it is not committed) with the working one (./atom.lock): with one
argument, it is OLD_LOCK against ./atom.lock.

Options:
  --offline   Do not list origin commits (no network)
  --json      Print {"old","new","atoms":[{"change","label","id","from","to","fromRev","toRev","size","origins"}],
              "direct":[{"change","name","from","to"}]} on stdout; change is added, removed, upgraded,
              downgraded or rev (republished), origins {"from","to"} or null

Exit codes: 0 compared (whether or not they differ), 1 failed (a lock unreadable or invalid), 2 usage error.
`,
  options: { offline: { type: "boolean" } },
  maxPositionals: 2,
  async run(ctx, args) {
    const [oldArg, newArg] = args.positionals;
    const oldSpec = oldArg ?? "HEAD:./atom.lock";
    const newSpec = newArg ?? "atom.lock";
    const before = await readLockSpec(ctx.cwd, ctx.env, oldSpec, oldArg === undefined);
    const after = await readLockSpec(ctx.cwd, ctx.env, newSpec, false);
    const diff = diffLocks(before, after);
    const origins =
      flag(args, "offline") || !diff.atoms.some((c) => c.from !== null && c.to !== null)
        ? new Map<string, OriginRange>()
        : await originRanges(diff.atoms, { cwd: ctx.cwd, env: ctx.env, reporter: ctx.term });
    if (flag(args, "json")) {
      ctx.term.json({ old: oldSpec, new: newSpec, ...diffJson(diff, origins) });
      return 0;
    }
    for (const line of formatDiff(diff, origins)) ctx.term.out(line);
    ctx.term.info(`${oldSpec} -> ${newSpec}: ${diffCounts(diff)}`);
    return 0;
  },
};

/**
 * A lock named by a path, or by REV:PATH (read with `git show`). `optional`: the default committed lock, which is
 * "no lock" when the repository has no commit or the file is not committed.
 */
async function readLockSpec(cwd: string, env: NodeJS.ProcessEnv, spec: string, optional: boolean): Promise<Lockfile | null> {
  const colon = spec.indexOf(":");
  const file = resolve(cwd, spec);
  if (colon <= 0 || existsSync(file)) return parseLock(await readText(file), file);
  const rev = spec.slice(0, colon);
  let path = spec.slice(colon + 1);
  const repo = await Repo.open(cwd, { env, repo: "user" }).catch((e: unknown) => {
    if (optional) return null;
    throw e;
  });
  if (repo === null) return null;
  try {
    // REV:./PATH is from the working directory (as git show reads it there), a bare REV:PATH from the top.
    if (path.startsWith("./") || path.startsWith("../"))
      path = relative(realpathSync(repo.cwd), resolve(realpathSync(cwd), path))
        .split(sep)
        .join("/");
    const r = await repo.run(["show", `${rev}:${path}`], { okCodes: [0, 128] });
    if (r.code !== 0) {
      if (optional) return null;
      throw new CprError("diff.no-lock", `cannot read ${spec}: ${r.stderr.trim()}`, {
        where: spec,
        hint: "name a committed lock as REV:PATH (e.g. HEAD~1:./atom.lock) or a file",
      });
    }
    return parseLock(r.stdout.toString("utf8"), spec);
  } finally {
    repo.close();
  }
}
