/**
 * `cpr yank`: publish (or, with `undo`, delete) the yank record of one published version on one remote
 * (docs/formats.md §15.5). The version's own refs (refs/eka/atoms/…, refs/eka/meta/…) are never touched, so every
 * lock that pins it still fetches it, and eka sees nothing; cpr's resolver stops choosing it for new locks. The
 * record is a blob written into the user's repository and pushed alone under refs/eka/yank/<label>/<version>; with
 * a signing key it carries a signature as publish's signature tags do (src/publish/sign.ts).
 */
import { CprError } from "../protocol/errors.js";
import type { Reporter } from "../protocol/report.js";
import { checkReason, parseYankRecord, yankPayload, yankRef } from "../protocol/yank.js";
import { listRemoteSet } from "../git/remote-set.js";
import type { ResolvedRemote } from "../git/remote.js";
import type { Repo } from "../git/repo.js";
import { sign, taggerIdent, type SignOptions } from "./sign.js";

export interface YankOptions {
  readonly repo: Repo;
  readonly remote: ResolvedRemote;
  readonly label: string;
  readonly version: string;
  /** The reason (required to yank; unused with `undo`). */
  readonly reason?: string;
  readonly undo?: boolean;
  readonly sign?: SignOptions;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly reporter?: Reporter;
}

export interface YankResult {
  readonly label: string;
  readonly version: string;
  /** The atom commit (unchanged by a yank). */
  readonly rev: string;
  readonly ref: string;
  /** "yanked": record pushed; "unyanked": record deleted; "not-yanked": undo of a version that was not yanked. */
  readonly status: "yanked" | "unyanked" | "not-yanked";
  /** The record's blob id (the one pushed, or the one deleted), or null. */
  readonly record: string | null;
  readonly signed: boolean;
}

export async function yank(opts: YankOptions): Promise<YankResult> {
  const { repo, remote, label, version } = opts;
  const reason = opts.undo ? "" : checkReason(opts.reason ?? "");
  const { listing } = await listRemoteSet(remote.url, [label], { env: opts.env, reporter: opts.reporter, cwd: opts.cwd });
  if (listing.root === null) {
    throw new CprError("yank.not-initialized", `${remote.display} is not an initialized atom set (it has no refs/ekala/init)`, {
      where: remote.display,
    });
  }
  const atom = listing.atoms.find((a) => a.label === label && a.version === version && a.format === "pre1");
  if (!atom) {
    const versions = listing.atoms.filter((a) => a.label === label).map((a) => a.version);
    throw new CprError("yank.no-version", `${remote.display} has no published ${label} ${version}`, {
      where: remote.display,
      hint: versions.length ? `its versions of ${label}: ${versions.join(", ")}` : `it publishes no atom '${label}' (see \`cpr ls\`)`,
    });
  }
  const ref = yankRef(label, version);
  const base = { label, version, rev: atom.rev, ref };
  if (opts.undo) {
    if (atom.yank === null) return { ...base, status: "not-yanked", record: null, signed: false };
    const out = await repo.deleteRemoteRefs(remote.pushUrl, [ref]);
    if (!out.ok) throw pushError(remote, ref, out.error ?? out.refs[0]?.summary ?? "refused", "delete");
    return { ...base, status: "unyanked", record: atom.yank, signed: false };
  }
  if (atom.yank !== null) {
    throw new CprError("yank.already", `${label} ${version} is already yanked on ${remote.display}`, {
      where: remote.display,
      hint: `to change the reason, run \`cpr yank ${label}@${version} --undo\` first, then yank it again`,
    });
  }
  const payload = yankPayload({ label, version, commit: atom.rev, yanker: await taggerIdent(repo), reason });
  const body = opts.sign ? payload + (await sign(payload, opts.sign)) : payload;
  parseYankRecord(body, ref); // what is pushed reads back
  const [oid] = await repo.writeObjects("blob", [Buffer.from(body, "utf8")]);
  const out = await repo.push(remote.pushUrl, [{ ref, oid: oid! }]);
  if (!out.ok) throw pushError(remote, ref, out.error ?? out.refs[0]?.summary ?? "refused", "push");
  return { ...base, status: "yanked", record: oid!, signed: opts.sign !== undefined };
}

function pushError(remote: ResolvedRemote, ref: string, why: string, what: "push" | "delete"): CprError {
  return new CprError("yank.push", `${remote.display} refused to ${what} ${ref}: ${why}`, {
    where: remote.display,
    hint: "check that you may push to this remote (the same rights as cpr publish)",
  });
}
