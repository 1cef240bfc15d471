import type { Command, Context } from "../command.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { atomId } from "../../protocol/id.js";
import { Repo } from "../../git/repo.js";
import { resolveRemote } from "../../git/remote.js";
import { listRemoteSet, readYanks, type YankInfo } from "../../git/remote-set.js";
import { reasonLine } from "../../protocol/yank.js";
import { labelArg } from "../shared.js";

/** One listed atom, as printed by `cpr ls --json`. */
interface LsAtom {
  label: string;
  version: string;
  id: string;
  rev: string;
  manifest: string | null;
  origin: string | null;
  format: string;
  /** The yank record when the version is yanked (refs/eka/yank/<label>/<version>), else null. */
  yanked: { record: string; reason: string | null; yanker: string | null; signed: boolean; error: string | null } | null;
}

/** `cpr ls`: list a remote set's atoms over ls-refs, without cloning. */
export const command: Command = {
  name: "ls",
  usage: "cpr ls REMOTE [LABEL ...] [--long] [--json]",
  summary: "List a set's atoms and versions over git ls-refs, without cloning",
  help: `Asks the remote for refs/ekala/init and the atom refs of the given labels (all atoms when none are given)
with one git protocol v2 ls-refs request, and prints the set's root and one line per atom version:
label, version, AtomId, rev (atom commit), manifest blob, origin commit and ref layout (pre1 or legacy). A yanked
version (cpr yank) is marked "yanked: <reason>", its yank record read from the remote.

REMOTE is a remote name of the current repository, a URL, a path, or an alias such as gh:owner/repo.

Object ids are abbreviated to 12 hex digits in the table, as git does; --long prints them in full.

Options:
  --long   Print full object ids in the table
  --json   Print {"root","atoms":[{"label","version","id","rev","manifest","origin","format","yanked"}]} on
           stdout, sorted by label, then version; yanked is null or {"record","reason","yanker","signed","error"}

Exit codes: 0 listed, 1 failed (e.g. the remote is not an initialized set), 2 usage error.
`,
  options: { long: { type: "boolean" } },
  async run(ctx, args) {
    const [target, ...labelArgs] = args.positionals;
    if (target === undefined) throw new UsageError("missing REMOTE", { hint: "e.g. `cpr ls origin` or `cpr ls gh:owner/repo`" });
    const labels = labelArgs.map(labelArg);
    const repo = await Repo.open(ctx.cwd, { env: ctx.env, repo: "user" }).catch(() => null);
    try {
      const remote = await resolveRemote(target, repo, ctx.cwd);
      const { listing } = await listRemoteSet(remote.url, labels.length ? labels : undefined, {
        legacy: true,
        env: ctx.env,
        reporter: ctx.term,
        cwd: ctx.cwd,
      });
      if (listing.skipped > 0)
        ctx.term.warn("ls.skipped-refs", `skipped ${listing.skipped} ref(s) under the atom namespaces that are not <label>/<version>`);
      if (listing.root === null) {
        throw new CprError("ls.not-initialized", `${remote.display} is not an initialized atom set (it has no refs/ekala/init)`, {
          where: remote.display,
          hint: "initialize it with `cpr init --remote REMOTE` from a clone of the set's history",
        });
      }
      if (listing.rootIsTag)
        ctx.term.warn("ls.root-tag", `refs/ekala/init on ${remote.display} is an annotated tag, which is not a valid set marker`);
      const root = listing.root;
      const yanks = await readYanks(remote.url, listing.atoms, { env: ctx.env, reporter: ctx.term, cwd: ctx.cwd });
      const atoms: LsAtom[] = listing.atoms.map((a) => ({
        label: a.label,
        version: a.version,
        id: atomId(root, a.label),
        rev: a.rev,
        manifest: a.manifest,
        origin: a.origin,
        format: a.format,
        yanked: yankedOf(a.yank, yanks.get(`${a.label}@${a.version}`)),
      }));
      const yanked = atoms.filter((a) => a.yanked !== null);
      if (yanked.length > 0)
        ctx.term.warn(
          "ls.yanked",
          `${yanked.length} version(s) are yanked: ${yanked.map((a) => `${a.label} ${a.version}`).join(", ")}; new locks skip them`,
        );
      if (args.values.json === true) ctx.term.json({ root, atoms });
      else printTable(ctx, root, atoms, args.values.long === true);
      return 0;
    } finally {
      repo?.close();
    }
  },
};

function yankedOf(record: string | null, info: YankInfo | undefined): LsAtom["yanked"] {
  if (record === null) return null;
  if (!info || info.record === null) return { record, reason: null, yanker: null, signed: false, error: info?.error ?? "not read" };
  return { record, reason: info.record.reason, yanker: info.record.yanker, signed: info.record.signature !== null, error: null };
}

function printTable(ctx: Context, root: string, atoms: readonly LsAtom[], long: boolean): void {
  const abbrev = (oid: string | null) => (oid === null ? "-" : long ? oid : oid.slice(0, 12));
  ctx.term.out(`root ${root}`);
  if (atoms.length === 0) {
    ctx.term.info("no atoms");
    return;
  }
  const rows = [
    ["LABEL", "VERSION", "ID", "REV", "MANIFEST", "ORIGIN", "FORMAT"],
    ...atoms.map((a) => [a.label, a.version, a.id, abbrev(a.rev), abbrev(a.manifest), abbrev(a.origin), a.format]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => [...r[c]!].length)));
  rows.forEach((r, i) => {
    const line = r.map((cell, c) => (c === r.length - 1 ? cell : cell + " ".repeat(widths[c]! - [...cell].length))).join("  ");
    const y = i === 0 ? null : atoms[i - 1]!.yanked;
    ctx.term.out(y === null ? line : `${line}  ${ctx.term.yellow("yanked")}: ${y.reason === null ? `(${y.error})` : reasonLine(y.reason)}`);
  });
}
