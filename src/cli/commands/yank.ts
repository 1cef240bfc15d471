import { flag, str, type Command } from "../command.js";
import { Repo } from "../../git/repo.js";
import { resolveRemote } from "../../git/remote.js";
import { UsageError } from "../../protocol/errors.js";
import { tryParseVersion } from "../../protocol/version.js";
import { labelArg } from "../shared.js";

/** `cpr yank`: withdraw a published version without deleting it. */
export const command: Command = {
  name: "yank",
  usage: "cpr yank LABEL@VERSION --reason TEXT [--remote R] [--sign KEY] [--json] | cpr yank LABEL@VERSION --undo [--remote R]",
  summary: "Withdraw a published version (with a reason) without deleting it, or undo that",
  help: `Pushes a yank record for the version to the remote: a blob under refs/eka/yank/<label>/<version> that names
the atom commit, who yanked it and when, and the reason (docs/formats.md §15.5). Nothing else changes: the
version's atom and meta refs stay as they are, so every lock that pins it still fetches and builds it, and eka
(which lists only refs/eka/atoms/) ignores the record.

What cpr does with a yanked version: the resolver never picks it for a new lock; a lock that already pins it keeps
it, with a warning that gives the reason (\`cpr update LABEL\` moves off it); \`cpr outdated\`, \`cpr ls\`,
\`cpr verify\` and the registry's catalogue show it with the reason.

--undo deletes the record (the version can be chosen again). A version that is already yanked is refused: undo it
first to change the reason.

Options:
  --reason TEXT  Why the version is withdrawn, and what to use instead (required to yank)
  --remote R     The remote to yank on (default: the current branch's upstream remote, else origin)
  --sign KEY     Sign the record as \`cpr publish --sign\` signs (an ssh key file, or an OpenPGP key)
  --undo         Delete the yank record instead
  --json         Print {"label","version","rev","ref","status","record","signed"} on stdout;
                 status is yanked, unyanked or not-yanked

Exit codes: 0 yanked or undone (or nothing to undo), 1 failed (no such version, already yanked, push refused),
2 usage error.
`,
  options: { reason: { type: "string" }, remote: { type: "string" }, sign: { type: "string" }, undo: { type: "boolean" } },
  maxPositionals: 1,
  async run(ctx, args) {
    const target = args.positionals[0];
    if (target === undefined) throw new UsageError("missing LABEL@VERSION", { hint: 'e.g. `cpr yank hello@1.2.3 --reason "…"`' });
    const at = target.lastIndexOf("@");
    const version = at > 0 ? tryParseVersion(target.slice(at + 1)) : null;
    if (at <= 0 || version === null || version.text !== target.slice(at + 1))
      throw new UsageError(`${JSON.stringify(target)} is not LABEL@VERSION with an exact version`, { hint: "e.g. hello@1.2.3" });
    const label = labelArg(target.slice(0, at));
    const undo = flag(args, "undo");
    const reason = str(args, "reason");
    if (undo && reason !== undefined) throw new UsageError("--undo takes no --reason");
    if (undo && str(args, "sign") !== undefined) throw new UsageError("--undo takes no --sign");
    if (!undo && reason === undefined)
      throw new UsageError("missing --reason", { hint: 'say why the version is withdrawn, e.g. --reason "corrupts data; use 1.2.4"' });
    const repo = await Repo.open(ctx.cwd, { env: ctx.env, repo: "user" });
    try {
      const remote = await resolveRemote(str(args, "remote"), repo, ctx.cwd);
      const { yank } = await import("../../publish/yank.js");
      const key = str(args, "sign");
      const r = await yank({
        repo,
        remote,
        label,
        version: version.text,
        undo,
        cwd: ctx.cwd,
        env: ctx.env,
        reporter: ctx.term,
        ...(reason !== undefined ? { reason } : {}),
        ...(key !== undefined ? { sign: { key, env: ctx.env } } : {}),
      });
      if (flag(args, "json")) ctx.term.json(r);
      else if (r.status === "yanked") ctx.term.out(`yanked  ${label} ${r.version}  ${r.rev}${r.signed ? "  (signed)" : ""}`);
      else if (r.status === "unyanked") ctx.term.out(`unyanked  ${label} ${r.version}  ${r.rev}`);
      else ctx.term.info(`${label} ${r.version} is not yanked on ${remote.display}: nothing to undo`);
      return 0;
    } finally {
      repo.close();
    }
  },
};
