import { flag, type Command } from "../command.js";
import { CprError } from "../../protocol/errors.js";
import { normalizeLabel } from "../../protocol/label.js";
import { lockProject } from "../../resolve/lock-project.js";
import { loadProject } from "../../resolve/project.js";
import { reportOutcome } from "../shared.js";

/** `cpr update`: move to the newest versions allowed. */
export const command: Command = {
  name: "update",
  usage: "cpr update [LABEL ...] [--offline] [--json]",
  summary: "Move locked atoms to the newest versions their requirements allow",
  help: `Re-resolves with fresh listings, ignoring the locked versions of the given labels (of every atom when none
is given, and of direct Nix dependencies named), so they move to the newest versions allowed. Other locked
versions are kept when they still satisfy. Writes atom.lock (and never changes atom.toml). Prints what changed as
\`cpr diff\` does: versions, the size of each move, and each moved atom's range of origin commits.

Options:
  --offline   Use cached listings only
  --json      Print {"status","changes","atoms","diff","network"} on stdout (diff: as \`cpr diff --json\`)

Exit codes: 0 updated or already newest, 1 failed, 2 usage error.
`,
  options: { offline: { type: "boolean" } },
  async run(ctx, args) {
    const labels = args.positionals.map((l) => normalizeLabel(l, "label", "LABEL"));
    if (labels.length > 0) {
      const project = loadProject(ctx.cwd);
      const known = new Set([
        ...(project.lock?.deps ?? []).map((d) => (d.type === "atom" ? d.label : d.name)),
        ...Object.values(project.manifest.depsFrom).flatMap((r) => Object.keys(r)),
        ...project.manifest.directNix.map((d) => d.name),
      ]);
      const unknown = labels.filter((l) => !known.has(l));
      if (unknown.length)
        throw new CprError("update.unknown", `not a dependency of this atom: ${unknown.join(", ")}`, { hint: "see `cpr tree`" });
    }
    const outcome = await lockProject({
      cwd: ctx.cwd,
      env: ctx.env,
      reporter: ctx.term,
      update: labels.length ? labels : true,
      offline: flag(args, "offline"),
    });
    await reportOutcome(ctx, flag(args, "json"), outcome);
    return 0;
  },
};
