/**
 * `cpr outdated` (as `cargo outdated`): for each locked atom, its locked version, the newest version its
 * requirements allow, and the newest published, read with ls-refs alone: ONE connection per set (its lock mirrors
 * tried in order), which lists the atom and yank refs of the locked labels and, on the same connection, fetches the
 * yank records of yanked versions that matter (the locked one, to give its reason). Nothing is written.
 */
import { parseRemoteUrl } from "../git/remote.js";
import { UploadPackConnection } from "../git/lsrefs.js";
import type { LockAtom } from "../protocol/lock.js";
import { unlocal } from "../protocol/lock-check.js";
import { ATOMS_PREFIX, groupListing, INIT_REF, YANK_REFS_PREFIX, type ListedAtom } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import { parseRequirement } from "../protocol/requirement.js";
import { VersionSet } from "../protocol/version-set.js";
import { compareVersions, parseVersion, type Version } from "../protocol/version.js";
import { parseYankRecord, yankRef } from "../protocol/yank.js";
import { lockedGraph, ROOT_PKG } from "./graph.js";
import type { Project } from "./project.js";

export interface OutdatedRow {
  readonly label: string;
  readonly id: string;
  readonly set: string;
  /** A dependency of the project itself (else: of another atom). */
  readonly direct: boolean;
  /** The requirements on it (from the project and from other locked atoms), or [] when unknown. */
  readonly requirements: readonly string[];
  readonly locked: string;
  /** The newest version every requirement allows (not yanked), or null when unknown or none. */
  readonly compatible: string | null;
  /** The newest published version (not yanked; pre-releases only when the locked one is one), or null. */
  readonly latest: string | null;
  /** The locked version is yanked: the reason (null when the record could not be read). */
  readonly yanked: { readonly reason: string | null } | null;
  /** Why the set could not be listed, when it could not. */
  readonly error: string | null;
}

export interface OutdatedOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly reporter: Reporter;
  readonly cacheDir: string;
}

/** One row per locked atom (the composer included), sorted by label. */
export async function outdated(project: Project, opts: OutdatedOptions): Promise<OutdatedRow[]> {
  const graph = await lockedGraph(project, opts.cacheDir, opts.env);
  const reqs = new Map<string, string[]>();
  for (const edges of Object.values(graph.edges)) for (const e of edges) reqs.set(e.dep, [...(reqs.get(e.dep) ?? []), e.req]);
  const direct = new Set((graph.edges[ROOT_PKG] ?? []).map((e) => e.dep));
  const bySet = new Map<string, LockAtom[]>();
  for (const a of graph.atoms.values()) bySet.set(a.set, [...(bySet.get(a.set) ?? []), a]);
  const rows: OutdatedRow[] = [];
  await Promise.all(
    [...bySet].map(async ([root, atoms]) => {
      const mirrors = [
        ...new Set([...(project.lock?.sets[root]?.mirrors ?? []), ...atoms.map((a) => a.mirror ?? "")].filter((m) => m && m !== "::")),
      ];
      const listed = await listSet(root, mirrors, atoms, opts);
      for (const a of atoms) {
        const requirements = [...new Set(reqs.get(a.id) ?? [])];
        const base = { label: a.label, id: a.id, set: root, direct: direct.has(a.id), requirements, locked: a.version };
        if ("error" in listed) {
          rows.push({ ...base, compatible: null, latest: null, yanked: null, error: listed.error });
          continue;
        }
        const versions = listed.atoms.filter((x) => x.label === a.label);
        const lockedVersion = unlocal(a.version).version;
        const usable = versions
          .filter((x) => x.yank === null)
          .map((x) => parseVersion(x.version))
          .filter((v) => lockedVersion.prerelease.length > 0 || v.prerelease.length === 0);
        let allowed: VersionSet | null = requirements.length ? VersionSet.full : null;
        for (const r of requirements) allowed = allowed!.intersect(VersionSet.fromRequirement(parseRequirement(r)));
        const newest = (vs: readonly Version[]) =>
          vs.reduce<Version | null>((x, v) => (x === null || compareVersions(v, x) > 0 ? v : x), null);
        const mine = versions.find((x) => x.version === a.version);
        rows.push({
          ...base,
          compatible: allowed === null ? null : (newest(usable.filter((v) => allowed.contains(v)))?.text ?? null),
          latest: newest(usable)?.text ?? null,
          yanked: mine?.yank ? { reason: listed.reasons.get(mine.version) ?? null } : null,
          error: null,
        });
      }
    }),
  );
  return rows.sort((x, y) => (x.label < y.label ? -1 : x.label > y.label ? 1 : x.set < y.set ? -1 : 1));
}

/** The set's versions of these labels, and the reasons of the locked versions that are yanked, from one mirror. */
async function listSet(
  root: string,
  mirrors: readonly string[],
  atoms: readonly LockAtom[],
  opts: OutdatedOptions,
): Promise<{ atoms: readonly ListedAtom[]; reasons: Map<string, string> } | { error: string }> {
  const labels = [...new Set(atoms.map((a) => a.label))];
  const prefixes = [...labels.flatMap((l) => [`${ATOMS_PREFIX}${l}/`, `${YANK_REFS_PREFIX}${l}/`]), INIT_REF];
  const problems: string[] = [];
  for (const m of mirrors) {
    let conn: UploadPackConnection | null = null;
    try {
      conn = await UploadPackConnection.open(parseRemoteUrl(m, opts.cwd, "mirror"), {
        env: opts.env,
        reporter: opts.reporter,
        cwd: opts.cwd,
      });
      const listing = groupListing(await conn.lsRefs(prefixes), labels);
      if (listing.root !== root) {
        problems.push(`${m} has root ${listing.root ?? "(none)"}, not ${root}`);
        continue;
      }
      const reasons = new Map<string, string>();
      const lockedYanked = listing.atoms.filter(
        (x) => x.yank !== null && atoms.some((a) => a.label === x.label && a.version === x.version),
      );
      if (lockedYanked.length > 0 && conn.canFetch) {
        try {
          const { objects } = await conn.fetchObjects([...new Set(lockedYanked.map((x) => x.yank!))], { maxPackBytes: 16 << 20 });
          for (const x of lockedYanked) {
            const o = objects.get(x.yank!);
            if (o) reasons.set(x.version, parseYankRecord(o.data.toString("utf8"), yankRef(x.label, x.version)).reason);
          }
        } catch {
          /* the reasons stay unknown; the yank itself is known from the listing */
        }
      }
      return { atoms: listing.atoms, reasons };
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    } finally {
      await conn?.close().catch(() => undefined);
    }
  }
  return { error: mirrors.length ? problems.join("; ") : "the lock names no URL mirror for this set" };
}
