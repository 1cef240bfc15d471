import { flag, str, type Command } from "../command.js";
import { graftedDepText, installedOf } from "../grafting.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { normalizeLabel } from "../../protocol/label.js";
import { lockedGraph, ROOT_PKG, whyChains } from "../../resolve/graph.js";
import { resolverConfig } from "../../resolve/lock-project.js";
import { loadProject } from "../../resolve/project.js";

/** `cpr why LABEL`: the chain of requirements that pulled an atom in. */
export const command: Command = {
  name: "why",
  usage: "cpr why LABEL [--installed PATH] [--json]",
  summary: "Show the chain of requirements that pulled an atom into the lock",
  help: `Prints, for each locked atom with this label, the shortest chain of requirements from this atom to it,
e.g. "app 0.1.0 requires foo ^1 -> foo 1.2.0 requires baz ^1 -> baz 1.4.0". No network.

With --installed PATH (an out-link or a store path that is a graft installed by cpr), it says instead why LABEL is
in that graft, e.g. "x 1.0.0 (graft) -> y 3.3.0 (graft; built against 3.2.0)".

Options:
  --installed PATH   Look at the graft installed at PATH (docs/grafts.md)
  --json   Print {"label","chains":[{"id","version","chain":[{"from","requires","req"}]}]} on stdout
           (--installed: {"label","path","graft","replacement"})

Exit codes: 0 printed, 1 failed (not in the lock), 2 usage error.
`,
  options: { installed: { type: "string" } },
  maxPositionals: 1,
  async run(ctx, args) {
    const arg = args.positionals[0];
    if (arg === undefined) throw new UsageError("missing LABEL");
    const label = normalizeLabel(arg, "label", "LABEL");
    const installed = str(args, "installed");
    if (installed !== undefined) {
      const { path, graft } = await installedOf(ctx, installed);
      const r = graft?.replacements.find((x) => x.label === label) ?? null;
      if (!graft || !r)
        throw new CprError("why.not-locked", `${label} is not a grafted dependency of ${path}`, {
          hint: graft
            ? `its grafted dependencies: ${graft.replacements.map((x) => x.label).join(", ")}`
            : "it is not a graft installed by cpr",
        });
      if (flag(args, "json")) ctx.term.json({ label, path, graft, replacement: r });
      else ctx.term.out(`${graft.atom.label} ${graft.atom.version} (graft) -> ${graftedDepText(r)}`);
      return 0;
    }
    const project = loadProject(ctx.cwd);
    if (!project.lock) throw new CprError("why.no-lock", `no atom.lock in ${project.dir}`, { hint: "run `cpr resolve` first" });
    const graph = await lockedGraph(project, (await resolverConfig(ctx.cwd, ctx.env)).cacheDir, ctx.env);
    const chains = whyChains(graph, label);
    if (chains.length === 0) throw new CprError("why.not-locked", `${label} is not in atom.lock`, { hint: "see `cpr tree`" });
    const me = project.manifest.package;
    const nameOf = (id: string) =>
      id === ROOT_PKG
        ? `${me.label} ${me.version.text}`
        : `${graph.atoms.get(id)?.label ?? id} ${graph.atoms.get(id)?.version ?? ""}`.trim();
    if (flag(args, "json")) {
      ctx.term.json({
        label,
        chains: chains.map((c) => ({
          id: c.target.id,
          version: c.target.version,
          chain: c.chain.map((s) => ({
            from: nameOf(s.from),
            requires: graph.atoms.get(s.edge.dep)?.label ?? s.edge.dep,
            req: s.edge.req,
          })),
        })),
      });
      return 0;
    }
    for (const c of chains) {
      if (c.chain.length === 0) {
        ctx.term.out(
          `${label} ${c.target.version}: no known chain (the manifests of this lock's atoms are not in the cache; \`cpr fetch --lock\` or \`cpr resolve\` brings them)`,
        );
        continue;
      }
      const parts = c.chain.map((s) => `${nameOf(s.from)} requires ${graph.atoms.get(s.edge.dep)?.label ?? s.edge.dep} ${s.edge.req}`);
      ctx.term.out(`${parts.join(" -> ")} -> ${label} ${c.target.version}`);
    }
    return 0;
  },
};
