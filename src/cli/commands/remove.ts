import { flag, type Command } from "../command.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { normalizeLabel } from "../../protocol/label.js";
import { removeDependency, removeDirectNix, removePackageSet } from "../../protocol/manifest-edit.js";
import { parseAtomManifest } from "../../protocol/atom-manifest.js";
import { lockProject } from "../../resolve/lock-project.js";
import { loadProject } from "../../resolve/project.js";
import { reportOutcome } from "../shared.js";

/** `cpr remove LABEL|NAME`. */
export const command: Command = {
  name: "remove",
  usage: "cpr remove LABEL|NAME [--json]",
  summary: "Remove a dependency from atom.toml and the lock",
  help: `Removes an atom dependency (a label in any [deps.from.<tag>]) or a direct Nix dependency (a name in
[deps.direct.nix]) from atom.toml, drops a [package.sets] tag nothing uses any more (unless it is the composer's),
re-resolves, and writes atom.lock and atom.toml as a pair. Comments and layout are kept.

Options:
  --json   Print {"status","changes","atoms","network"} on stdout

Exit codes: 0 removed, 1 failed (not a dependency, resolution failed), 2 usage error.
`,
  options: {},
  maxPositionals: 1,
  async run(ctx, args) {
    const arg = args.positionals[0];
    if (arg === undefined) throw new UsageError("missing LABEL or NAME");
    const name = normalizeLabel(arg, "label", "LABEL");
    const project = loadProject(ctx.cwd);
    let text = project.manifestText;
    const m = project.manifest;
    const tags = Object.entries(m.depsFrom)
      .filter(([, reqs]) => Object.hasOwn(reqs, name))
      .map(([t]) => t);
    const direct = m.directNix.some((d) => d.name === name);
    if (tags.length === 0 && !direct) {
      throw new CprError("remove.unknown", `${name} is not a dependency in ${project.manifestFile}`, { hint: "see `cpr tree`" });
    }
    for (const t of tags) text = removeDependency(text, t, name);
    if (direct) text = removeDirectNix(text, name);
    const after = parseAtomManifest(text, project.manifestFile, "full");
    for (const t of tags) {
      const used = Object.keys(after.depsFrom[t] ?? {}).length > 0 || (after.compose?.kind === "with" && after.compose.from === t);
      if (!used) text = removePackageSet(text, t);
    }
    const outcome = await lockProject({ cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, manifestText: text });
    if (!flag(args, "json")) ctx.term.info(`removed ${name}`);
    await reportOutcome(ctx, flag(args, "json"), outcome);
    return 0;
  },
};
