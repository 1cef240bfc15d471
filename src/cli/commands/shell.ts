import { stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { str, type Command } from "../command.js";
import { UsageError } from "../../protocol/errors.js";
import { hostSystem, physicalPath } from "../../nix/store.js";
import { runForeground } from "../../process/run.js";
import { runInstalled } from "../shared.js";

/** `cpr shell`: several atoms' builds installed (no evaluation), then a shell with their programs on PATH. */
export const command: Command = {
  name: "shell",
  usage: "cpr shell NAME|URI[@REQ]... [--command CMD] [--registry URL]... [--key KEY]... [--system S] [--store STORE] [--build]",
  summary: "Install several atoms' builds from a registry (no evaluation) and open a shell with them on PATH",
  help: `Installs each atom named as \`cpr get\` does (the newest version with a build for this system, never a yanked
one; no Nix evaluation), all found in one pass and realised with one nix-store --realise per registry, then runs
your shell ($SHELL, else /bin/sh), or \`$SHELL -c CMD\` with --command, with the bin/ directories of their outputs
first on PATH, in the order given. The exit code is the shell's (or CMD's); signals are passed on as \`cpr run\`
passes them.

No out-link is left behind: the outputs are held by GC roots in a temporary directory while the shell runs,
removed when it ends. With --build, what no registry has built is built locally first (this evaluates).

Options:
  --command CMD     Run CMD with the shell instead of an interactive shell
  --registry URL    A registry to ask (repeatable; default config registry.urls, CPR_REGISTRY)
  --key KEY         A trusted public key, name:base64 (repeatable; default config registry.keys, CPR_REGISTRY_KEYS)
  --system S        The system to install for (default: this machine's, ${hostSystem()})
  --store STORE     Realise into this Nix store (a chroot store directory is used from there)
  --build           Build locally when no build is known
  -q, --quiet       Do not show Nix's output

Exit codes: the shell's own; 1 when cpr failed before starting it, 2 usage error.
`,
  options: {
    command: { type: "string", short: "c" },
    registry: { type: "string", multiple: true },
    key: { type: "string", multiple: true },
    system: { type: "string" },
    store: { type: "string" },
    build: { type: "boolean" },
  },
  async run(ctx, args) {
    if (args.positionals.length === 0)
      throw new UsageError("missing NAME or URI", { hint: 'e.g. `cpr shell hello jq --command "hello | jq -R ."`' });
    if (args.values.json === true) throw new UsageError("cpr shell runs a shell: it has no --json");
    return runInstalled(ctx, args, args.positionals, async (atoms, s) => {
      const bins: string[] = [];
      for (const a of atoms) {
        for (const p of a.paths) {
          const bin = join(physicalPath(p, s.store), "bin");
          if ((await stat(bin).catch(() => null))?.isDirectory() && !bins.includes(bin)) bins.push(bin);
        }
      }
      ctx.term.info(
        `${atoms.map((a) => `${a.label} ${a.version}`).join(", ")}: ${bins.length} bin/ director${bins.length === 1 ? "y" : "ies"} on PATH`,
      );
      const shell = ctx.env.SHELL || "/bin/sh";
      const command = str(args, "command");
      const env = { ...ctx.env, PATH: [...bins, ...(ctx.env.PATH ? [ctx.env.PATH] : [])].join(delimiter) };
      return runForeground(shell, command === undefined ? [] : ["-c", command], { cwd: ctx.cwd, env });
    });
  },
};
