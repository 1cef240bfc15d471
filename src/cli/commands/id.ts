import { flag, str, type Command } from "../command.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { atomId, rootBytes } from "../../protocol/id.js";
import { Repo } from "../../git/repo.js";
import { labelArg } from "../shared.js";

/** `cpr id`: AtomIds of local atoms, or of labels under a given root. */
export const command: Command = {
  name: "id",
  usage: "cpr id [PATH ...] [--all] [--json]  |  cpr id --root HEX LABEL ... [--json]",
  summary: "Print the AtomId of local atoms, or of labels under a given root",
  help: `Without --root: for the atom containing each PATH (default: the current directory), or every atom of the
work tree with --all, prints "<id>  <label>  <path>". The label is read from the work tree's atom.toml; the root
is that of HEAD's history (docs/formats.md §4), so a shallow clone cannot compute it.

With --root HEX: prints the id of each LABEL under that root (40 or 64 hex digits), one per line. No repository
is needed.

Options:
  --all        Every atom of the work tree (atom.toml files git does not ignore)
  --root HEX   Compute ids for LABEL arguments under this root
  --json       Print {"root","atoms":[{"id","label"[,"path"]}]} on stdout
`,
  options: { all: { type: "boolean" }, root: { type: "string" } },
  async run(ctx, args) {
    const json = args.values.json === true;
    const root = str(args, "root");
    if (root !== undefined) {
      if (flag(args, "all")) throw new UsageError("--all cannot be combined with --root");
      if (args.positionals.length === 0) throw new UsageError("--root needs at least one LABEL");
      const hex = rootArg(root);
      const atoms = args.positionals.map(labelArg).map((label) => ({ id: atomId(hex, label), label }));
      if (json) ctx.term.json({ root: hex, atoms });
      else for (const a of atoms) ctx.term.out(a.id);
      return 0;
    }
    if (flag(args, "all") && args.positionals.length) throw new UsageError("pass PATH arguments or --all, not both");
    const repo = await Repo.open(ctx.cwd, { env: ctx.env, repo: "user" });
    try {
      const paths = args.positionals.length ? args.positionals : ["."];
      // Loaded here: it reads manifests (smol-toml), which `cpr id --root` never needs.
      const { localAtomIds } = await import("../../publish/local.js");
      const result = await localAtomIds(repo, paths, flag(args, "all"), ctx.cwd, ctx.term);
      if (json) ctx.term.json(result);
      else for (const a of result.atoms) ctx.term.out(`${a.id}  ${a.label}  ${a.path}`);
      return 0;
    } finally {
      repo.close();
    }
  },
};

function rootArg(text: string): string {
  const hex = text.toLowerCase();
  try {
    rootBytes(hex);
  } catch (err) {
    if (err instanceof CprError) throw new UsageError(`--root must be 40 or 64 hex digits, not '${text}'`);
    throw err;
  }
  return hex;
}
