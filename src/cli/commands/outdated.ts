import { flag, type Command } from "../command.js";
import { CprError } from "../../protocol/errors.js";
import { reasonLine } from "../../protocol/yank.js";
import { outdated, type OutdatedRow } from "../../resolve/outdated.js";
import { loadProject } from "../../resolve/project.js";
import { resolverConfig } from "../../resolve/lock-project.js";

/** `cpr outdated`: what newer versions exist for the locked atoms. */
export const command: Command = {
  name: "outdated",
  usage: "cpr outdated [--json]",
  summary: "Show locked atoms with newer versions: the newest their requirements allow and the newest published",
  help: `For the atom here, lists each locked atom (the project's own dependencies, the atoms they depend on, and the
composer) with its locked version, the newest version its requirements allow (COMPATIBLE: what \`cpr update\`
would move to), and the newest version published (LATEST: beyond a major, \`cpr update --breaking\`), as
cargo outdated does. Versions are read with ls-refs alone, one connection per set; nothing is written. Yanked
versions are never proposed; a locked version that is yanked is marked with the reason (docs/formats.md §15.5).
Pre-releases are proposed only for an atom locked at a pre-release.

The requirements on an atom come from the graph recorded when the lock was resolved (or from the cached manifests);
when they are unknown, COMPATIBLE is "?" (as every column of a set that could not be listed). A "-" means that no
version qualifies (every one is yanked, say).

Columns: LABEL, LOCKED, COMPATIBLE, LATEST, KIND (direct or transitive), then notes. Only atoms with something
newer, or yanked, are listed; the summary line counts the others.

Options:
  --json  Print {"atoms":[{"label","id","set","direct","requirements","locked","compatible","latest","yanked",
          "error"}]} on stdout (every locked atom; yanked is null or {"reason"})

Exit codes: 0 (whether or not anything is outdated), 1 failed (no atom.lock, no set could be listed), 2 usage error.
`,
  options: {},
  maxPositionals: 0,
  async run(ctx, args) {
    const project = loadProject(ctx.cwd);
    if (!project.lock)
      throw new CprError("outdated.no-lock", `${project.dir} has no atom.lock: nothing is locked yet`, {
        where: project.lockFile,
        hint: "run `cpr resolve` first",
      });
    const config = await resolverConfig(ctx.cwd, ctx.env);
    const rows = await outdated(project, { cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, cacheDir: config.cacheDir });
    const failed = rows.filter((r) => r.error !== null);
    for (const [set, why] of new Map(failed.map((r) => [r.set, r.error!])))
      ctx.term.warn("outdated.set-failed", `set ${set} could not be listed: ${why}`);
    if (rows.length > 0 && failed.length === rows.length)
      throw new CprError("outdated.unreachable", "no set of the lock could be listed", {
        hint: "check the network and the mirrors in atom.lock",
      });
    if (flag(args, "json")) {
      ctx.term.json({ atoms: rows });
      return 0;
    }
    const shown = rows.filter((r) => r.yanked !== null || newer(r.compatible, r) || newer(r.latest, r));
    if (shown.length > 0) {
      const table = [
        ["LABEL", "LOCKED", "COMPATIBLE", "LATEST", "KIND"],
        ...shown.map((r) => [
          r.label,
          r.locked,
          r.requirements.length === 0 ? "?" : show(r.compatible, r),
          show(r.latest, r),
          r.direct ? "direct" : "transitive",
        ]),
      ];
      const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => [...row[c]!].length)));
      table.forEach((row, i) => {
        const line = row.map((cell, c) => (c === row.length - 1 ? cell : cell + " ".repeat(widths[c]! - [...cell].length))).join("  ");
        const y = i === 0 ? null : shown[i - 1]!.yanked;
        ctx.term.out(
          y === null ? line : `${line}  ${ctx.term.yellow("yanked")}: ${y.reason === null ? "(reason unknown)" : reasonLine(y.reason)}`,
        );
      });
    }
    const upToDate = rows.length - shown.length - failed.length;
    ctx.term.info(`${shown.length} of ${rows.length} locked atom(s) outdated or yanked; ${upToDate} up to date`);
    return 0;
  },
};

/** Whether `v` is another version than the locked one (a newer one: outdated never proposes an older one). */
function newer(v: string | null, r: OutdatedRow): boolean {
  return v !== null && v !== r.locked;
}

function show(v: string | null, r: OutdatedRow): string {
  if (r.error !== null) return "?";
  return v ?? "-";
}
