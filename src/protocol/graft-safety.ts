/**
 * The safety rules of a graft (docs/grafts.md, "Safety rules"), pure: given what is known about a requested graft
 * (the atoms and versions involved, the dependent's requirements, the old and new store paths, whether the old ones
 * are runtime references, the atoms of the new closure, and, after the rewrite pass, the residue reports), every
 * rule that does not hold is reported, all at once, before anything is stored.
 *
 * Each violation names the flag that may override it, if any:
 * - `allow-incompatible`: the version rules (same atom, newer, within the dependent's requirement, one version per
 *   atom in the new closure). Only an explicit `--replace` may use it; `--graft` (automatic) never does.
 * - `alias`: unequal name lengths, bridged with an alias path (docs/grafts.md, "Aliases").
 * - `force`: residue (an old hash part left, a member that could not be scanned, a damaged zip member), downgraded to
 *   warnings.
 * - none: the old path is not a runtime reference of the closure (a static link or a build-time-only dependency):
 *   nothing can be rewritten, the dependent must be rebuilt.
 */
import { CprError, type ErrorCode } from "./errors.js";
import { parseStorePath } from "./narinfo.js";
import { parseAtomManifest } from "./atom-manifest.js";
import { matches, type Requirement } from "./requirement.js";
import { compareVersions, tryParseVersion } from "./version.js";

export type Override = "allow-incompatible" | "alias" | "force";

/** One rule that does not hold. */
export interface Violation {
  readonly code: ErrorCode;
  readonly message: string;
  readonly hint: string;
  /** The flag that lets the graft go ahead anyway, or null when nothing does. */
  readonly override: Override | null;
}

export interface GraftFlags {
  /** Go beyond the version rules (explicit replacements only). */
  readonly allowIncompatible?: boolean;
  /** Bridge a name-length change with an alias path. */
  readonly alias?: boolean;
  /** Residue becomes warnings. */
  readonly force?: boolean;
  /** The request is automatic (`cpr get --graft`, config graft.auto): no override applies to the version rules. */
  readonly automatic?: boolean;
}

/** A requirement on the replaced atom, and who states it. */
export interface StatedRequirement {
  /** `x 1.0` */
  readonly by: string;
  readonly requirement: Requirement;
}

/** One requested replacement of a dependency, as far as the rules need it. */
export interface ReplacementFacts {
  /** The label shown (`y`). */
  readonly label: string;
  /** AtomId of the atom in the closure and of the one asked for (equal unless a different atom replaces it). */
  readonly oldId: string;
  readonly newId: string;
  /** The version in the closure (null when no recorded build of the atom is in the closure). */
  readonly oldVersion: string | null;
  readonly newVersion: string;
  /** The requirements of the dependent (and, for an indirect dependency, of its direct dependents) on the atom. */
  readonly requirements: readonly StatedRequirement[];
  /** Old → new output paths (full store paths). Empty when the old version's outputs are not in the closure. */
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  /** False when the atom's recorded outputs are not runtime references of the closure. */
  readonly runtime: boolean;
  /** Why, when not runtime: what is known (e.g. "y 3.2 is recorded but not in x's closure"). */
  readonly notRuntimeReason?: string;
}

export interface GraftFacts {
  /** `x 1.0` */
  readonly dependent: string;
  readonly replacements: readonly ReplacementFacts[];
  /** Atom → versions present in the closure after the graft (AtomId → label and versions). */
  readonly newClosureAtoms?: ReadonlyMap<string, { readonly label: string; readonly versions: readonly string[] }>;
}

/** The result of checking: what refuses the graft, and what is only said. */
export interface SafetyReport {
  /** Violations not overridden by a flag: any one refuses the graft. */
  readonly refusals: readonly Violation[];
  /** Violations a flag overrode, as warnings. */
  readonly warnings: readonly Violation[];
}

function v(code: ErrorCode, message: string, hint: string, override: Override | null): Violation {
  return { code, message, hint, override };
}

/** Sorts violations into refusals and warnings according to the flags. */
export function judge(violations: readonly Violation[], flags: GraftFlags): SafetyReport {
  const refusals: Violation[] = [];
  const warnings: Violation[] = [];
  for (const x of violations) {
    const overridden =
      (x.override === "allow-incompatible" && flags.allowIncompatible === true && flags.automatic !== true) ||
      (x.override === "alias" && flags.alias === true && flags.automatic !== true) ||
      (x.override === "force" && flags.force === true);
    (overridden ? warnings : refusals).push(x);
  }
  return { refusals, warnings };
}

/** The rules that need no bytes: atoms, versions, requirements, name lengths, runtime references, one version per atom. */
export function checkGraft(facts: GraftFacts): Violation[] {
  const out: Violation[] = [];
  for (const r of facts.replacements) {
    const what = `${r.label} ${r.oldVersion ?? "?"} → ${r.newVersion}`;
    if (r.oldId !== r.newId) {
      out.push(
        v(
          "graft.other-atom",
          `${what}: the replacement is a different atom (${r.newId}) than the one in ${facts.dependent}'s closure (${r.oldId})`,
          "a graft moves a closure onto another version of the same atom; pass --allow-incompatible to replace it by another atom anyway",
          "allow-incompatible",
        ),
      );
    }
    if (!r.runtime || r.paths.length === 0) {
      out.push(
        v(
          "graft.not-runtime",
          `${r.label}: ${r.notRuntimeReason ?? `no output of ${r.label} is a runtime reference of ${facts.dependent}'s closure`}`,
          `a static link or a build-time-only dependency leaves no path to rewrite: rebuild ${facts.dependent} against ${r.label} ${r.newVersion} instead (cpr get --build, cpr build)`,
          null,
        ),
      );
    }
    if (r.oldVersion !== null) {
      const o = tryParseVersion(r.oldVersion);
      const n = tryParseVersion(r.newVersion);
      if (o && n && compareVersions(n, o) <= 0) {
        out.push(
          v(
            "graft.not-newer",
            `${what}: ${r.newVersion} is not newer than ${r.oldVersion}`,
            "a graft moves onto a newer version; pass --allow-incompatible to go back or sideways anyway",
            "allow-incompatible",
          ),
        );
      }
    }
    const nv = tryParseVersion(r.newVersion);
    for (const s of r.requirements) {
      if (!nv || !matches(s.requirement, nv)) {
        out.push(
          v(
            "graft.incompatible",
            `${what}: ${s.by} requires ${r.label} ${s.requirement.text}, which ${r.newVersion} does not satisfy`,
            `${r.newVersion} is not a compatible upgrade for ${s.by}; rebuild against it, or pass --allow-incompatible to graft anyway (at your own risk)`,
            "allow-incompatible",
          ),
        );
      }
    }
    for (const p of r.paths) {
      const o = parseStorePath(p.old);
      const n = parseStorePath(p.new);
      if (o.name.length !== n.name.length) {
        out.push(
          v(
            "graft.length",
            `${r.label}: cannot rewrite ${o.basename} to ${n.basename} in place: the names are ${o.name.length} and ${n.name.length} characters long`,
            "pass --alias to refer to it through a path with a name of the old length that links to the new one, or rebuild",
            "alias",
          ),
        );
      }
    }
  }
  if (facts.newClosureAtoms) {
    for (const [id, a] of facts.newClosureAtoms) {
      if (a.versions.length > 1) {
        out.push(
          v(
            "graft.two-versions",
            `after the graft, ${facts.dependent}'s closure would hold ${a.label} in ${a.versions.length} versions (${a.versions.join(", ")}; ${id})`,
            `replace every version of ${a.label} in the closure, or pass --allow-incompatible to keep both`,
            "allow-incompatible",
          ),
        );
      }
    }
  }
  return out;
}

/** What the residue scan found in one grafted member (src/graft/residue.ts's report, reduced to what the rule needs). */
export interface MemberResidue {
  readonly path: string;
  readonly hits: readonly { readonly path: string; readonly member: readonly string[]; readonly hash: string }[];
  readonly unscanned: readonly { readonly path: string; readonly member: readonly string[]; readonly reason: string }[];
  readonly damaged: readonly { readonly path: string; readonly member: readonly string[]; readonly reason: string }[];
}

function inside(file: string, member: readonly string[]): string {
  return `${file === "" ? "/" : file}${member.length ? ` (${member.join(" › ")})` : ""}`;
}

/** The residue rule: an old hash part left, a member not scanned, a damaged zip member; each overridable by --force. */
export function checkResidue(reports: readonly MemberResidue[]): Violation[] {
  const out: Violation[] = [];
  for (const r of reports) {
    for (const h of r.hits) {
      out.push(
        v(
          "graft.residue",
          `${r.path}: ${inside(h.path, h.member)} still names ${h.hash} after the rewrite`,
          h.member.some((m) => m !== "name" && m !== "target")
            ? "the old path is inside compressed data, which a byte rewrite cannot reach: rebuild, or pass --force to graft anyway (the program may still load the old dependency)"
            : "pass --force to graft anyway, or rebuild",
          "force",
        ),
      );
    }
    for (const u of r.unscanned) {
      out.push(
        v(
          "graft.unscanned",
          `${r.path}: ${inside(u.path, u.member)} could not be scanned: ${u.reason}`,
          "it may name the old path; rebuild, or pass --force to graft anyway",
          "force",
        ),
      );
    }
    for (const d of r.damaged) {
      out.push(
        v(
          "graft.damaged",
          `${r.path}: ${inside(d.path, d.member)} is damaged by the rewrite: ${d.reason}`,
          "a stored zip member changed in place no longer matches its CRC-32; rebuild, or pass --force to graft anyway",
          "force",
        ),
      );
    }
  }
  return out;
}

/** The error that refuses a graft, listing every refusal (its `reasons` carry them for --json and the API). */
export class GraftRefused extends CprError {
  readonly reasons: readonly Violation[];
  /** What else --json shows with the error (the plan as far as it was made: replacements, paths…). */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(dependent: string, reasons: readonly Violation[], details: Readonly<Record<string, unknown>> = {}) {
    const lines = reasons.map((r) => `  - ${r.message}${r.override ? ` [--${r.override}]` : ""}`);
    super("graft.refused", `the graft of ${dependent} is refused:\n${lines.join("\n")}`, {
      where: dependent,
      hint: reasons.length === 1 ? reasons[0]!.hint : "each reason says what would allow it (the flag in brackets), or rebuild instead",
    });
    this.name = "GraftRefused";
    this.reasons = reasons;
    this.details = details;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), reasons: this.reasons, ...this.details };
  }
}

const normUrl = (u: string): string => u.replace(/\/+$/, "").replace(/\.git$/, "");

/**
 * The requirement a dependent's manifest (atom.toml text) states on the atom `label` of the set `depRoot`, or null:
 * `[deps.from.<tag>]`, where the tag's set (`[package.sets]`) is `::` (the dependent's own set, `ownRoot`) or a URL
 * among `depMirrors` (the mirrors of the dependency's set, compared without trailing slashes and `.git`).
 */
export function requirementOn(
  manifestText: string,
  ownRoot: string,
  label: string,
  depRoot: string,
  depMirrors: readonly string[],
): Requirement | null {
  let m;
  try {
    m = parseAtomManifest(manifestText, "atom.toml", "evaluate");
  } catch {
    return null;
  }
  const mirrors = new Set(depMirrors.map(normUrl));
  for (const [tag, deps] of Object.entries(m.depsFrom)) {
    const req = deps[label];
    if (!req) continue;
    const urls = m.package.sets[tag] ?? [];
    if (urls.some((u) => (u === "::" ? ownRoot === depRoot : mirrors.has(normUrl(u))))) return req;
  }
  return null;
}
