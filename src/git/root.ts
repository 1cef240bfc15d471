import { CprError } from "../protocol/errors.js";
import type { Reporter } from "../protocol/report.js";
import type { Repo } from "./repo.js";

/**
 * The set root (docs/formats.md §4.1): the parentless commit reachable from a commit. Several → the oldest committer time (UTC
 * offset ignored), ties → the lowest id in hex, with a warning. In a shallow repository the boundary commits only
 * look parentless, so no root is computed there. (No cache: one `git rev-list` walk per run.)
 */
export async function setRoot(repo: Repo, commit: string, reporter: Reporter): Promise<string> {
  if (repo.shallow) {
    throw new CprError("root.shallow", "cannot compute the set root in a shallow repository: full history is needed", {
      where: repo.gitDir,
      hint: "run `git fetch --unshallow` first",
    });
  }
  const out = await repo.git(["--no-replace-objects", "rev-list", "--max-parents=0", "--timestamp", commit]);
  const roots = out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [time, oid] = line.split(" ") as [string, string];
      return { oid, time: Number(time) };
    });
  const chosen = pickRoot(roots);
  if (!chosen) throw new CprError("root.none", `no parentless commit is reachable from ${commit}`, { where: repo.gitDir });
  if (roots.length > 1) {
    reporter.warn(
      "root.multiple",
      `the history of ${commit.slice(0, 12)} has ${roots.length} root commits; using the oldest, ${chosen} (the set root is the first commit of the history)`,
    );
  }
  return chosen;
}

/** Oldest committer time first, then lowest hex id. */
export function pickRoot(roots: readonly { oid: string; time: number }[]): string | null {
  let best: { oid: string; time: number } | null = null;
  for (const r of roots) {
    if (!best || r.time < best.time || (r.time === best.time && r.oid < best.oid)) best = r;
  }
  return best?.oid ?? null;
}
