/**
 * The origin commits of changed atoms (`refs/eka/meta/<label>/<version>/origin`), for the ranges `cpr diff`,
 * `cpr update` and `cpr resolve` print: ONE ls-refs exchange per set (its first URL mirror), asking for exactly the
 * origin refs of the versions involved. A set that cannot be listed is a warning; its ranges are left out.
 */
import { parseRemoteUrl } from "../git/remote.js";
import { lsRefs } from "../git/lsrefs.js";
import type { AtomChange, OriginRange } from "../protocol/lock-diff.js";
import { originRef } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";

export interface OriginOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly reporter: Reporter;
}

/** AtomId → the origins of its old and new versions, for upgraded, downgraded and republished atoms. */
export async function originRanges(changes: readonly AtomChange[], opts: OriginOptions): Promise<Map<string, OriginRange>> {
  const out = new Map<string, OriginRange>();
  const moved = changes.filter((c) => c.from !== null && c.to !== null && c.from.rev !== null && c.to.rev !== null);
  const bySet = new Map<string, { mirror: string; changes: AtomChange[] }>();
  for (const c of moved) {
    const mirror = c.to!.mirror ?? c.from!.mirror;
    if (mirror === null) continue;
    const entry = bySet.get(c.to!.set) ?? { mirror, changes: [] };
    entry.changes.push(c);
    bySet.set(c.to!.set, entry);
  }
  await Promise.all(
    [...bySet.values()].map(async ({ mirror, changes: here }) => {
      const refs = here.flatMap((c) => [originRef(c.label, c.from!.version), originRef(c.label, c.to!.version)]);
      try {
        const url = parseRemoteUrl(mirror, opts.cwd, "mirror");
        const { refs: listed } = await lsRefs(url, refs, { env: opts.env, reporter: opts.reporter, cwd: opts.cwd });
        const byName = new Map(listed.map((r) => [r.name, r.peeled ?? r.oid]));
        for (const c of here) {
          out.set(c.id, {
            from: byName.get(originRef(c.label, c.from!.version)) ?? null,
            to: byName.get(originRef(c.label, c.to!.version)) ?? null,
          });
        }
      } catch (e) {
        opts.reporter.warn("diff.origins", `could not list origin commits from ${mirror}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }),
  );
  return out;
}
