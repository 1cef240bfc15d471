import { flag, str, strs, type Command, type Context } from "../command.js";
import { Repo } from "../../git/repo.js";
import { resolveRemote } from "../../git/remote.js";
import { publish, type PublishResult } from "../../publish/publish.js";

/** `cpr publish`: publish atoms as orphan commits and push them atomically. */
export const command: Command = {
  name: "publish",
  usage: "cpr publish [PATH|LABEL ...] [--all] [--remote R]... [--rev REV] [--sign KEY] [--dry-run] [--json]",
  summary: "Publish atoms as reproducible orphan commits and push them atomically",
  help: `Publishes atoms of a commit (default HEAD) as refs/eka/atoms/<label>/<version>, with
refs/eka/meta/<label>/<version>/{manifest,origin}. The atoms are the [set].packages of the commit's
ekala.toml, or, without one, every directory of the commit holding an atom.toml. Manifests are read from the
commit, not the work tree. Without PATH, LABEL or --all: the atom containing the current directory.

Every check runs before anything is written: the remote must be initialized (cpr init) with this history's root,
labels must be unique, and a version already published with other content is refused (bump the version). A version
already published with the same content is skipped. The run is all-or-nothing: if any atom is refused, nothing is
written, and all refs of all atoms go to each remote in one atomic push.

An atom is evaluated from its own published tree with its own atom.lock (docs/formats.md §12), so an atom whose [compose] is
present and not [compose.as] static is refused unless the commit's tree holds an atom.lock that satisfies its
atom.toml (every [deps.from.*] and direct Nix dependency locked within its requirement, the composer as declared)
and locks no atom local-only (without a rev). The fix is \`cpr resolve\` in the atom, then a commit. Atoms without
[compose] (a locker such as nix-lock) and static atoms need no lock.

Options:
  --all          Every atom of the commit
  --remote R     Remote name, URL, path or alias; repeat for several (default: the current branch's
                 upstream remote, else origin)
  --rev REV      The commit to publish (default HEAD)
  --dry-run      Say what would be published or skipped; write nothing
  --sign KEY     Also push refs/eka/meta/<label>/<version>/sig: a tag on the atom commit carrying the BLAKE3
                 digest of its tree, signed with KEY: an ssh key file (git's gpg.format=ssh signatures), or,
                 when KEY is not a file, an OpenPGP key id, fingerprint or user id (signed by gpg, as git tag -s
                 does; GNUPGHOME is honoured); in the same atomic push. Checked by git verify-tag and by
                 cpr verify --trust FILE (an allowed-signers file or armored OpenPGP public keys)
  --json         Print {"published":[…],"skipped":[…],"failed":[…]} on stdout
  -q, --quiet    Print nothing but errors and the failed atoms

Exit codes: 0 all published or skipped, 1 something failed, 2 usage error.
`,
  options: {
    all: { type: "boolean" },
    remote: { type: "string", multiple: true },
    rev: { type: "string" },
    "dry-run": { type: "boolean" },
    sign: { type: "string" },
  },
  async run(ctx, args) {
    const repo = await Repo.open(ctx.cwd, { env: ctx.env, repo: "user" });
    try {
      const names = strs(args, "remote");
      const remotes = await Promise.all((names.length ? names : [undefined]).map((r) => resolveRemote(r, repo, ctx.cwd)));
      const result = await publish({
        repo,
        cwd: ctx.cwd,
        targets: args.positionals,
        all: flag(args, "all"),
        remotes,
        rev: str(args, "rev") ?? "HEAD",
        dryRun: flag(args, "dry-run"),
        reporter: ctx.term,
        env: ctx.env,
        sign: await signer(repo, str(args, "sign"), ctx.env),
      });
      if (args.values.json === true) {
        const { published, skipped, failed } = result;
        ctx.term.json({ published, skipped, failed });
      } else printResult(ctx, result);
      return result.failed.length ? 1 : 0;
    } finally {
      repo.close();
    }
  },
};

function printResult(ctx: Context, r: PublishResult): void {
  const t = ctx.term;
  const verb = r.dryRun ? "would publish" : "published";
  if (!t.quiet) {
    for (const a of r.published) t.out(`${t.green(verb)}  ${a.label} ${a.version}  ${a.rev}`);
    for (const a of r.skipped) t.out(`${t.dim("skipped")}  ${a.label} ${a.version}  ${a.rev}  (already published)`);
  }
  for (const a of r.failed) t.out(`${t.red("failed")}  ${a.label} ${a.version}: ${a.error}`);
  const summary = `${r.published.length} ${verb}, ${r.skipped.length} skipped, ${r.failed.length} failed`;
  t.info(r.dryRun ? `${summary} (dry run: nothing written)` : summary);
}

/** The --sign hook (src/publish/sign.ts), loaded only when asked for. */
async function signer(repo: Repo, key: string | undefined, env: NodeJS.ProcessEnv) {
  if (key === undefined) return undefined;
  const { signAtoms } = await import("../../publish/sign.js");
  return (atoms: readonly { label: string; version: string; commit: string }[]) => signAtoms(repo, atoms, { key, env });
}
