import { flag, str, type Command } from "../command.js";
import { UsageError } from "../../protocol/errors.js";
import { hostSystem, physicalPath } from "../../nix/store.js";
import { runForeground } from "../../process/run.js";
import { findProgram } from "../../registry/get.js";
import { runInstalled } from "../shared.js";

/** `cpr run`: install an atom's build (no evaluation) and run its program. */
export const command: Command = {
  name: "run",
  usage: "cpr run NAME|URI[@REQ] [--bin NAME] [--registry URL]... [--key KEY]... [--system S] [--store STORE] [--build] [-- ARGS...]",
  summary: "Install an atom's build from a registry (no evaluation) and run its program",
  help: `Installs the newest version matching REQ that a registry has built for this system, exactly as \`cpr get\` does
(the registry the only substituter, its key the only trusted one, no Nix evaluation; never a yanked version), then
runs its program with ARGS (everything after \`--\`, or after NAME): --bin NAME; else meta.mainProgram when the
atom's derivation declares it (recorded with the build by \`cpr build --push\`); else the only file in the bin/
directory of its first output that has one (\`out\` first). stdin, stdout and stderr are the program's; its exit
code is cpr's, and when a signal killed it, cpr ends with the same signal. SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2
sent to cpr are passed on to the program (SIGINT and SIGQUIT too when stdin is not a terminal: from a terminal they
already reach it).

No out-link is left behind: the outputs are held by a GC root in a temporary directory while the program runs,
removed when it ends. With --build, what no registry has built is built locally first (this evaluates).

Options:
  --bin NAME        The program to run, from the atom's bin/ (default: meta.mainProgram, else the only one)
  --registry URL    A registry to ask (repeatable; default config registry.urls, CPR_REGISTRY)
  --key KEY         A trusted public key, name:base64 (repeatable; default config registry.keys, CPR_REGISTRY_KEYS)
  --system S        The system to install for (default: this machine's, ${hostSystem()})
  --store STORE     Realise into this Nix store (a chroot store directory runs from there)
  --build           Build locally when no build is known
  -q, --quiet       Do not show Nix's output

Exit codes: the program's own; 1 when cpr failed before running it (no build known, no program), 2 usage error.
`,
  options: {
    bin: { type: "string" },
    registry: { type: "string", multiple: true },
    key: { type: "string", multiple: true },
    system: { type: "string" },
    store: { type: "string" },
    build: { type: "boolean" },
  },
  async run(ctx, args) {
    const [text, ...rest] = args.positionals;
    if (text === undefined)
      throw new UsageError("missing NAME or URI", { hint: "e.g. `cpr run hello` or `cpr run gh:owner/repo::hello@^2 -- --version`" });
    if (flag(args, "json")) throw new UsageError("cpr run prints what the program prints: it has no --json");
    return runInstalled(ctx, args, [text], async ([atom], s) => {
      const program = await findProgram(atom!, (p) => physicalPath(p, s.store), str(args, "bin"));
      ctx.term.info(`running ${atom!.label} ${atom!.version}: ${program}`);
      return runForeground(program, rest, { cwd: ctx.cwd, env: ctx.env, errors: { spawn: "run.no-program" } });
    });
  },
};
