import { CprError } from "../protocol/errors.js";
import { INIT_REF } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import { lsRefs } from "../git/lsrefs.js";
import type { ResolvedRemote } from "../git/remote.js";
import type { Repo } from "../git/repo.js";
import { setRoot } from "../git/root.js";

/**
 * `init` (docs/formats.md §4.3): mark a remote as a set by pushing `refs/ekala/init` = the root commit of HEAD's history. The
 * local ref is set first (directly, never a tag). Nothing else is written: no commit, no ekala.toml.
 */

export interface InitResult {
  readonly root: string;
  readonly remote: string;
  /** `initialized`: pushed now; `already`: the remote already had this root. */
  readonly status: "initialized" | "already";
}

export interface InitOptions {
  readonly repo: Repo;
  readonly remote: ResolvedRemote;
  readonly reporter: Reporter;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Initialize `remote` as the set of the repository's history. A remote with another root is an error naming both. */
export async function initRemote(opts: InitOptions): Promise<InitResult> {
  const { repo, remote, reporter } = opts;
  const root = await setRoot(repo, await repo.resolveCommit("HEAD"), reporter);
  const { refs } = await lsRefs(remote.url, [INIT_REF], { env: opts.env, reporter, cwd: opts.cwd });
  const marker = refs.find((r) => r.name === INIT_REF);
  if (marker && marker.peeled !== undefined) {
    throw new CprError("init.root-tag", `refs/ekala/init on ${remote.display} is an annotated tag, which is not a valid set marker`, {
      where: remote.display,
      hint: "the marker must point directly at the root commit; delete it on the remote and run `cpr init` again",
    });
  }
  if (marker && marker.oid !== root) {
    throw new CprError(
      "init.root-mismatch",
      `remote ${remote.display} is already the set of another history: its root is ${marker.oid}, but this history's root is ${root}`,
      {
        where: remote.display,
        hint: "use another remote for this history's set",
      },
    );
  }
  const wanted = { ref: INIT_REF, oid: root };
  const { conflicts } = await repo.planRefUpdates([wanted]);
  if (conflicts.length > 0) {
    throw new CprError(
      "init.local-conflict",
      `the local refs/ekala/init points at ${conflicts[0]!.current}, but this history's root is ${root}`,
      {
        where: INIT_REF,
        hint: "if the history was rewritten, delete the stale marker with `git update-ref -d refs/ekala/init`",
      },
    );
  }
  await repo.updateRefs([wanted]);
  if (marker) return { root, remote: remote.display, status: "already" };
  const outcome = await repo.push(remote.pushUrl, [wanted]);
  if (!outcome.ok) {
    const ref = outcome.refs[0];
    throw new CprError(
      "init.push",
      `could not push refs/ekala/init to ${remote.display}: ${ref && ref.status !== "error" ? ref.summary : (outcome.error ?? "git push failed")}`,
      {
        where: remote.display,
        hint: "check that you may push to this remote",
      },
    );
  }
  return { root, remote: remote.display, status: "initialized" };
}
