import { flag, type Command } from "../command.js";
import { CprError } from "../../protocol/errors.js";
import { normalizeLabel } from "../../protocol/label.js";
import { lockProject } from "../../resolve/lock-project.js";
import { loadProject } from "../../resolve/project.js";
import { reportOutcome } from "../shared.js";

/** `cpr update`: move to the newest versions allowed (with --breaking, across majors too). */
export const command: Command = {
  name: "update",
  usage: "cpr update [LABEL ...] [--breaking] [--offline] [--json]",
  summary: "Move locked atoms to the newest versions their requirements allow",
  help: `Re-resolves with fresh listings, ignoring the locked versions of the given labels (of every atom when none
is given, and of direct Nix dependencies named), so they move to the newest versions allowed. Other locked
versions are kept when they still satisfy. Writes atom.lock (and never changes atom.toml, unless --breaking).
Yanked versions are never chosen (docs/formats.md §15.5). Prints what changed as \`cpr diff\` does: versions, the
size of each move, and each moved atom's range of origin commits.

With --breaking, the requirements of the given labels (of every [deps.from.*] atom when none is given) also move
across majors: each one that does not allow the newest published version (not yanked, not a pre-release unless
the requirement names one) becomes ^<newest> in atom.toml, edited in place (comments and layout kept). The whole
graph is then resolved with the new requirements; when it cannot follow (another atom requires the old major),
cpr update refuses with the conflict explanation and writes nothing.

Options:
  --breaking  Also move requirements in atom.toml across majors
  --offline   Use cached listings only (not with --breaking, which lists the newest versions)
  --json      Print {"status","changes","atoms","diff","network","requirements"} on stdout (diff: as
              \`cpr diff --json\`; requirements: [{"tag","label","from","to","newest"}], with --breaking)

Exit codes: 0 updated or already newest, 1 failed (with --breaking: the graph cannot follow), 2 usage error.
`,
  options: { offline: { type: "boolean" }, breaking: { type: "boolean" } },
  async run(ctx, args) {
    const labels = args.positionals.map((l) => normalizeLabel(l, "label", "LABEL"));
    const breaking = flag(args, "breaking");
    const project = labels.length > 0 || breaking ? loadProject(ctx.cwd) : null;
    if (project && labels.length > 0) {
      const known = new Set([
        ...(project.lock?.deps ?? []).map((d) => (d.type === "atom" ? d.label : d.name)),
        ...Object.values(project.manifest.depsFrom).flatMap((r) => Object.keys(r)),
        ...project.manifest.directNix.map((d) => d.name),
      ]);
      const unknown = labels.filter((l) => !known.has(l));
      if (unknown.length)
        throw new CprError("update.unknown", `not a dependency of this atom: ${unknown.join(", ")}`, { hint: "see `cpr tree`" });
    }
    if (breaking && flag(args, "offline")) {
      const { UsageError } = await import("../../protocol/errors.js");
      throw new UsageError("--breaking lists the newest published versions: it cannot run --offline");
    }
    let manifestText: string | undefined;
    let moves: readonly { tag: string; label: string; from: string; to: string; newest: string }[] = [];
    if (breaking) {
      const { breakingRequirements } = await import("../../resolve/breaking.js");
      const r = await breakingRequirements(project!, labels, { cwd: ctx.cwd, env: ctx.env, reporter: ctx.term });
      moves = r.moves;
      if (moves.length > 0) manifestText = r.text;
      else ctx.term.info("no requirement needs to move across a major: every one allows the newest published version");
    }
    let outcome;
    try {
      outcome = await lockProject({
        cwd: ctx.cwd,
        env: ctx.env,
        reporter: ctx.term,
        update: labels.length ? labels : true,
        offline: flag(args, "offline"),
        ...(manifestText !== undefined ? { manifestText } : {}),
      });
    } catch (e) {
      if (e instanceof CprError && e.code === "resolve.conflict" && moves.length > 0) {
        const moved = moves.map((m) => `${m.label} ${m.from} -> ${m.to}`).join(", ");
        throw new CprError("resolve.conflict", `the graph cannot follow the new requirements (${moved}): ${e.message}`, {
          hint: `nothing was written. ${e.hint ?? "wait for the atoms named above to support the new major, or update fewer labels"}`,
          cause: e,
        });
      }
      throw e;
    }
    if (!flag(args, "json")) for (const m of moves) ctx.term.out(`atom.toml: ${m.label} ${m.from} -> ${m.to}`);
    await reportOutcome(ctx, flag(args, "json"), outcome, breaking ? { requirements: moves } : {});
    return 0;
  },
};
