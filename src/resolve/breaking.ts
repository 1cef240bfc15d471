/**
 * `cpr update --breaking`: move the project's own requirements across majors. For each `[deps.from.<tag>]`
 * requirement asked for, the newest published version of the atom (not yanked; not a pre-release unless the
 * requirement already allows pre-releases) is listed with ls-refs on the tag's mirrors (one request per tag); when
 * the requirement does not allow it, it becomes `^<newest>` in atom.toml, edited in place (comments and layout kept,
 * docs/formats.md §6.3). The caller then resolves the whole graph with the new manifest, and writes nothing when the
 * graph cannot follow.
 */
import { lsRefs } from "../git/lsrefs.js";
import { parseRemoteUrl } from "../git/remote.js";
import { setDependency } from "../protocol/manifest-edit.js";
import { ATOMS_PREFIX, groupListing, INIT_REF, YANK_REFS_PREFIX } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import { caretOf, matches } from "../protocol/requirement.js";
import { compareVersions, parseVersion, type Version } from "../protocol/version.js";
import type { Project } from "./project.js";

/** One requirement moved: `[deps.from.<tag>] <label>` from `from` to `to`, for the newest version `newest`. */
export interface RequirementMove {
  readonly tag: string;
  readonly label: string;
  readonly from: string;
  readonly to: string;
  readonly newest: string;
}

export interface BreakingOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly reporter: Reporter;
}

/**
 * The manifest text with the requirements of `labels` (every `[deps.from.*]` one when empty) moved to the newest
 * published versions they do not allow yet, and what moved.
 */
export async function breakingRequirements(
  project: Project,
  labels: readonly string[],
  opts: BreakingOptions,
): Promise<{ text: string; moves: RequirementMove[] }> {
  const { manifest } = project;
  let text = project.manifestText;
  const moves: RequirementMove[] = [];
  for (const [tag, reqs] of Object.entries(manifest.depsFrom)) {
    const wanted = Object.keys(reqs).filter((l) => labels.length === 0 || labels.includes(l));
    const mirrors = (manifest.package.sets[tag] ?? []).filter((m) => m !== "::");
    if (wanted.length === 0 || mirrors.length === 0) continue;
    const newest = await newestPublished(mirrors, wanted, project.dir, opts);
    for (const label of wanted) {
      const req = reqs[label]!;
      const pre = req.comparators.some((c) => c.prerelease.length > 0);
      const best = (newest.get(label) ?? []).filter((v) => pre || v.prerelease.length === 0)[0];
      if (!best || matches(req, best)) continue;
      const to = caretOf(best).text;
      text = setDependency(text, tag, label, to);
      moves.push({ tag, label, from: req.text, to, newest: best.text });
    }
  }
  return { text, moves };
}

/** label → its published versions that are not yanked, newest first, from the first mirror that answers. */
async function newestPublished(
  mirrors: readonly string[],
  labels: readonly string[],
  dir: string,
  opts: BreakingOptions,
): Promise<Map<string, Version[]>> {
  const prefixes = [...labels.flatMap((l) => [`${ATOMS_PREFIX}${l}/`, `${YANK_REFS_PREFIX}${l}/`]), INIT_REF];
  let lastError: unknown = null;
  for (const m of mirrors) {
    try {
      const { refs } = await lsRefs(parseRemoteUrl(m, dir, "mirror"), prefixes, { env: opts.env, reporter: opts.reporter, cwd: dir });
      const out = new Map<string, Version[]>();
      for (const a of groupListing(refs, labels).atoms) {
        if (a.format !== "pre1" || a.yank !== null) continue;
        out.set(a.label, [...(out.get(a.label) ?? []), parseVersion(a.version)]);
      }
      for (const vs of out.values()) vs.sort((x, y) => compareVersions(y, x));
      return out;
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}
