import { flag, str, type Command } from "../command.js";
import { graftedDepText, installedOf } from "../grafting.js";
import { CprError } from "../../protocol/errors.js";
import { lockedGraph, ROOT_PKG } from "../../resolve/graph.js";
import { resolverConfig } from "../../resolve/lock-project.js";
import { loadProject } from "../../resolve/project.js";

/** `cpr tree`: the locked graph, no network. */
export const command: Command = {
  name: "tree",
  usage: "cpr tree [--installed PATH] [--json]",
  summary: "Print the locked dependency graph (no network)",
  help: `Prints the atoms of atom.lock as a tree under this atom: label, version, the requirement that pulled it in,
and the set's root. Reads only atom.toml, atom.lock and the local cache; never the network. An atom already shown
higher up is marked (*) and not expanded again.

The edges below the direct dependencies are those recorded in the cache when the lock was resolved on this
machine. For a lock resolved elsewhere they are rebuilt from the locked atoms' manifests in the cache (after
\`cpr fetch --lock\`, or an earlier resolve); an atom whose manifest is not there is shown without its
dependencies, with a warning.

With --installed PATH (an out-link such as ./result, or a store path), it shows instead what \`cpr get\` or
\`cpr graft\` installed there when that is a graft, from the record kept in the cache: the atom, and each grafted
dependency as "y 3.3.0 (graft; built against 3.2.0)".

Options:
  --installed PATH   Show the graft installed at PATH (docs/grafts.md)
  --json   Print {"atoms":[{"label","version","id","set","rev","deps":[<id>…]}]} on stdout
           (--installed: {"path","graft"})

Exit codes: 0 printed, 1 failed (no atom.lock), 2 usage error.
`,
  options: { installed: { type: "string" } },
  maxPositionals: 0,
  async run(ctx, args) {
    const installed = str(args, "installed");
    if (installed !== undefined) {
      const { path, graft } = await installedOf(ctx, installed);
      if (flag(args, "json")) {
        ctx.term.json({ path, graft });
        return 0;
      }
      if (!graft) {
        ctx.term.out(`${path}: not a graft installed by cpr on this machine`);
        return 0;
      }
      ctx.term.out(`${graft.atom.label} ${graft.atom.version} (graft; ${graft.atom.system}${graft.local ? ", made locally" : ""})`);
      graft.replacements.forEach((r, i) => ctx.term.out(`${i === graft.replacements.length - 1 ? "└── " : "├── "}${graftedDepText(r)}`));
      return 0;
    }
    const project = loadProject(ctx.cwd);
    if (!project.lock) throw new CprError("tree.no-lock", `no atom.lock in ${project.dir}`, { hint: "run `cpr resolve` first" });
    const config = await resolverConfig(ctx.cwd, ctx.env);
    const graph = await lockedGraph(project, config.cacheDir, ctx.env);
    if (!graph.complete) {
      const names = graph.unknown.map((a) => `${a.label} ${a.version}`);
      const shown = names.length > 5 ? `${names.slice(0, 5).join(", ")} and ${names.length - 5} more` : names.join(", ");
      ctx.term.warn(
        "tree.unknown-deps",
        `the dependencies of ${shown} are unknown here (their manifests are not in the cache): \`cpr fetch --lock\` or \`cpr resolve\` brings them`,
      );
    }
    if (flag(args, "json")) {
      const atoms = [...graph.atoms.values()].map((a) => ({
        label: a.label,
        version: a.version,
        id: a.id,
        set: a.set,
        rev: a.rev,
        deps: (graph.edges[a.id] ?? []).map((e) => e.dep),
      }));
      ctx.term.json({ atoms });
      return 0;
    }
    const m = project.manifest.package;
    ctx.term.out(`${m.label} ${m.version.text}`);
    const shown = new Set<string>();
    const walk = (id: string, prefix: string) => {
      const edges = graph.edges[id] ?? [];
      edges.forEach((e, i) => {
        const last = i === edges.length - 1;
        const a = graph.atoms.get(e.dep);
        const text = a ? `${a.label} ${a.version} (${e.req}) ${a.set.slice(0, 12)}` : `${e.dep} (${e.req}) not in the lock`;
        const again = shown.has(e.dep);
        ctx.term.out(`${prefix}${last ? "└── " : "├── "}${text}${again && (graph.edges[e.dep]?.length ?? 0) > 0 ? " (*)" : ""}`);
        if (!again) {
          shown.add(e.dep);
          walk(e.dep, prefix + (last ? "    " : "│   "));
        }
      });
    };
    walk(ROOT_PKG, "");
    return 0;
  },
};
