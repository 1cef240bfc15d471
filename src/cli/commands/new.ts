import { relative } from "node:path";
import { flag, str, type Command } from "../command.js";
import { loadConfig } from "../../config/config.js";
import { parseGitUrl } from "../../protocol/uri.js";
import { newAtom } from "../../resolve/new-atom.js";
import { UsageError } from "../../protocol/errors.js";

/** `cpr new PATH`: a new atom. */
export const command: Command = {
  name: "new",
  usage: "cpr new PATH [--label L] [--nix] [--json]",
  summary: "Create a new atom: PATH/atom.toml, listed in ekala.toml",
  help: `Creates PATH (when missing) and PATH/atom.toml with [package] label (the directory's name, or --label) and
version 0.1.0, and a composer: by default [compose.with.atom-nix] from the set tagged atom in [package.sets]
(https://github.com/ekala-project/atom); the config's [new] composer, composer-tag and composer-url change it
(cpr config list shows them). With --nix, a trivial atom instead: [compose.as] nix = "default.nix", and a
default.nix (kept if PATH has one) evaluated as docs/formats.md §12 says: imported with scopedImport, with \`atoms\` (its
dependencies) and \`cfg\` (cfg.package, cfg.system) in scope.

When the repository's top has an ekala.toml, PATH is added to its [set] packages, keeping the file's comments
and layout. Refused, writing nothing: an existing PATH/atom.toml, an invalid label (docs/formats.md §2), a label another
atom of the set already has (the atoms of ekala.toml, else every atom.toml of the work tree), PATH being the
repository's root. Files go to temporary files first and are moved into place, ekala.toml last; if any step fails,
nothing stays (not even the directories made).

Next: \`cpr resolve\` in the atom writes its atom.lock (publishing a composed atom needs one, docs/formats.md §12).

Options:
  --label L   The atom's label (default: the directory's name)
  --nix       A trivial atom: [compose.as] nix = "default.nix", plus a default.nix
  --json      Print {"label","version","dir","created":[…],"kept":[…],"set":{"file","entry"}|null,"compose"}

Exit codes: 0 created, 1 refused or failed, 2 usage error.
`,
  options: { label: { type: "string" }, nix: { type: "boolean" } },
  maxPositionals: 1,
  async run(ctx, args) {
    const path = args.positionals[0];
    if (path === undefined) throw new UsageError("missing PATH", { hint: "e.g. `cpr new pkgs/hello`, or `cpr new pkgs/hello --nix`" });
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const nix = flag(args, "nix");
    const label = str(args, "label");
    const c = config.new;
    const result = await newAtom({
      cwd: ctx.cwd,
      path,
      ...(label !== undefined ? { label } : {}),
      nix,
      composer: { label: c.composer, tag: c.composerTag, url: nix ? c.composerUrl : parseGitUrl(c.composerUrl, config.aliases).url },
      env: ctx.env,
    });
    if (args.values.json === true) {
      ctx.term.json(result);
      return 0;
    }
    const rel = (p: string) => relative(ctx.cwd, p) || ".";
    for (const f of result.created) ctx.term.out(`created  ${rel(f)}`);
    for (const f of result.kept) ctx.term.out(`kept     ${rel(f)}`);
    if (result.set) ctx.term.out(`listed   "${result.set.entry}" in ${rel(result.set.file)} [set] packages`);
    ctx.term.info(
      `new atom ${result.label} ${result.version} (${result.compose}); next: \`cpr resolve\` in ${rel(result.dir)} writes its atom.lock`,
    );
    return 0;
  },
};
