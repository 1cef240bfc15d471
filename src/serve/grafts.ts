/**
 * Grafts computed by the registry (docs/grafts.md, "The registry"): `POST /api/v1/grafts` asks to move a recorded
 * build of an atom X onto other recorded versions of its dependencies. Everything comes from what the registry
 * already holds:
 *
 * - X's build: the newest build record of X (the version asked, or the newest version with a build) for the system;
 * - X's closure: the path rows reachable from the build's outputs through their references;
 * - each replaced dependency Y: its old paths are the outputs of Y's build records (build_outputs, any version but the
 *   new one) found in X's closure; its new paths are the outputs of the newest build of Y at the new version, output
 *   name by output name;
 * - the requirement: X's indexed manifest (`[deps.from.<tag>]`, the tag's set matched against Y's set: `::` for X's
 *   own set, else a URL among the registry's mirrors of Y's set); for a Y reached only indirectly, the requirements
 *   of the atoms in X's closure that refer to Y's old paths directly (found through build_outputs).
 *
 * The rules (src/protocol/graft-safety.ts) are checked before a byte is read; then every member is rewritten from
 * the stored NAR (decompressed as it streams) into a staged file, with the residue scan; then the residue rule; then,
 * only when nothing refuses, every staged NAR is compressed and published, and the path rows (narinfos signed with
 * the registry key, exactly as for uploads) and the graft record are inserted in one transaction. A refused graft
 * stores nothing.
 */
import { createHash } from "node:crypto";
import { CprError } from "../protocol/errors.js";
import { isAtomId } from "../protocol/id.js";
import { canonicalJson } from "../protocol/build-record.js";
import { aliasPath, GRAFT_TYPE, planGraft, symlinkNar, type GraftPlan } from "../protocol/graft.js";
import {
  checkGraft,
  checkResidue,
  judge,
  requirementOn,
  type GraftFlags,
  type ReplacementFacts,
  type StatedRequirement,
  type Violation,
} from "../protocol/graft-safety.js";
import { formatNarInfo, narInfoFingerprint, parseStorePath } from "../protocol/narinfo.js";
import { signDetached } from "../protocol/nix-key.js";
import { parseNixHash, toNix32Hash } from "../protocol/nix-hash.js";
import { tryParseVersion } from "../protocol/version.js";
import { decompress } from "../nix/compression.js";
import { residueOf, writeGraft } from "../graft/engine.js";
import type { BuildRow, GraftReplacementRow, GraftRow, PathRow, VersionRow } from "./db.js";
import type { RegistryContext } from "./context.js";

const SYSTEM = /^[A-Za-z0-9_.+-]+-[A-Za-z0-9_.+-]+$/;

/** What `POST /api/v1/grafts` carries. */
export interface GraftRequest {
  /** AtomId of X. */
  readonly id: string;
  /** X's exact version, or null for the newest version with a build. */
  readonly version: string | null;
  readonly system: string;
  /** Dependencies by AtomId and the version to graft onto; `replaces` names another atom to replace (rare). */
  readonly replace: readonly { readonly id: string; readonly version: string; readonly replaces: string | null }[];
  readonly allowIncompatible: boolean;
  readonly alias: boolean;
  readonly force: boolean;
  /** Plan and check only: nothing is read or written (the residue scan does not run). */
  readonly dryRun: boolean;
}

function bad(message: string): CprError {
  return new CprError("graft.request", message, {
    hint: 'send {"id": ATOMID, "version": "1.0.0"?, "system": "x86_64-linux", "replace": [{"id": DEPID, "version": "3.3.0"}], "allowIncompatible"?, "alias"?, "force"?, "dryRun"?}',
  });
}

export function parseGraftRequest(body: unknown): GraftRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("the body must be a JSON object");
  const b = body as Record<string, unknown>;
  const known = new Set(["id", "version", "system", "replace", "allowIncompatible", "alias", "force", "dryRun"]);
  for (const k of Object.keys(b)) if (!known.has(k)) throw bad(`unknown field ${JSON.stringify(k)}`);
  if (typeof b.id !== "string" || !isAtomId(b.id)) throw bad(`id must be an AtomId, got ${JSON.stringify(b.id ?? null)}`);
  if (b.version !== undefined && b.version !== null && (typeof b.version !== "string" || !tryParseVersion(b.version)))
    throw bad(`version must be a version, got ${JSON.stringify(b.version)}`);
  if (typeof b.system !== "string" || !SYSTEM.test(b.system))
    throw bad(`system must be a Nix system, got ${JSON.stringify(b.system ?? null)}`);
  if (!Array.isArray(b.replace) || b.replace.length === 0) throw bad("replace must be a non-empty list");
  const replace = b.replace.map((r: unknown) => {
    const o = (typeof r === "object" && r !== null ? r : {}) as Record<string, unknown>;
    if (typeof o.id !== "string" || !isAtomId(o.id)) throw bad(`replace[].id must be an AtomId, got ${JSON.stringify(o.id ?? null)}`);
    if (typeof o.version !== "string" || !tryParseVersion(o.version))
      throw bad(`replace[].version must be a version, got ${JSON.stringify(o.version ?? null)}`);
    if (o.replaces !== undefined && o.replaces !== null && (typeof o.replaces !== "string" || !isAtomId(o.replaces)))
      throw bad(`replace[].replaces must be an AtomId, got ${JSON.stringify(o.replaces)}`);
    return { id: o.id, version: tryParseVersion(o.version)!.text, replaces: (o.replaces as string | undefined) ?? null };
  });
  const ids = replace.map((r) => r.replaces ?? r.id);
  if (new Set(ids).size !== ids.length) throw bad("each dependency may be replaced once");
  const bool = (k: string): boolean => {
    if (b[k] === undefined) return false;
    if (typeof b[k] !== "boolean") throw bad(`${k} must be true or false`);
    return b[k] as boolean;
  };
  return {
    id: b.id,
    version: typeof b.version === "string" ? tryParseVersion(b.version)!.text : null,
    system: b.system,
    replace,
    allowIncompatible: bool("allowIncompatible"),
    alias: bool("alias"),
    force: bool("force"),
    dryRun: bool("dryRun"),
  };
}

/** One grafted member, as answered. */
export interface GraftedPathDoc {
  readonly original: string;
  readonly graft: string;
  readonly narHash: string | null;
  readonly narSize: number | null;
  readonly references: readonly string[];
}

/** The answer: the record (or the plan, for a dry run or a refusal) and what the rules said. */
export interface GraftDoc {
  readonly graftId: number | null;
  readonly created: boolean;
  readonly dryRun: boolean;
  readonly atom: {
    readonly id: string;
    readonly label: string;
    readonly version: string;
    readonly system: string;
    readonly buildId: number;
  };
  readonly replacements: readonly GraftReplacementRow[];
  readonly algorithm: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** Every path that changes, old → new. */
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  /** The grafted members (dependencies first), with their NarHash and NarSize once written. */
  readonly members: readonly GraftedPathDoc[];
  readonly aliases: readonly { readonly path: string; readonly target: string; readonly replaces: string }[];
  readonly warnings: readonly Violation[];
  readonly refusals: readonly Violation[];
}

/** The outcome of a request: the HTTP status and the document. */
export interface GraftOutcome {
  readonly status: 200 | 201 | 422;
  readonly doc: GraftDoc;
}

/** An HTTP-mapped failure of a request (unknown atom, no build). */
export class GraftRequestError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
  }
}

/** The path rows reachable from `roots` (full store paths), by their references. */
async function closureRows(ctx: RegistryContext, roots: readonly string[]): Promise<Map<string, PathRow>> {
  const rows = new Map<string, PathRow>();
  let todo = [...new Set(roots)];
  while (todo.length) {
    const next: string[] = [];
    for (const p of todo) {
      if (rows.has(p)) continue;
      const row = await ctx.db.getPath(parseStorePath(p).hash);
      if (!row) throw new GraftRequestError(404, `${p} is recorded as built but is not in this registry's cache`);
      rows.set(p, row);
      for (const r of row.references) {
        const full = `/nix/store/${r}`;
        if (!rows.has(full)) next.push(full);
      }
    }
    todo = next;
  }
  return rows;
}

/** The canonical key of a request: the build, the algorithm and the path replacements. */
export function graftKey(buildId: number, replacements: readonly { old: string; new: string }[]): string {
  const reps = [...replacements].sort((a, b) => (a.old < b.old ? -1 : a.old > b.old ? 1 : 0));
  return createHash("sha256")
    .update(canonicalJson({ algorithm: GRAFT_TYPE, buildId, replacements: reps.map((r) => [r.old, r.new]) }))
    .digest("hex");
}

export function withKeyOf(replacements: readonly { id: string; version: string }[]): string {
  return replacements
    .map((r) => `${r.id}@${r.version}`)
    .sort()
    .join(",");
}

async function versionRow(ctx: RegistryContext, id: string, version: string): Promise<VersionRow | null> {
  const a = await ctx.db.atom(id);
  return a?.versions.find((v) => v.version === version) ?? null;
}

/** The newest build of (id, version) for system whose rev is the published one. */
async function buildOf(ctx: RegistryContext, id: string, version: string, system: string): Promise<BuildRow | null> {
  const v = await versionRow(ctx, id, version);
  if (!v) return null;
  return (await ctx.db.builds(id, system)).find((b) => b.version === version && b.rev === v.rev) ?? null;
}

/** Handles one request (the route maps the outcome to HTTP). */
export async function requestGraft(ctx: RegistryContext, req: GraftRequest): Promise<GraftOutcome> {
  const found = await ctx.db.atom(req.id);
  if (!found) throw new GraftRequestError(404, `unknown atom ${req.id}`);
  const label = found.atom.label;
  const xBuilds = await ctx.db.builds(req.id, req.system);
  let build: BuildRow | undefined;
  let xVersion: VersionRow | undefined;
  for (const v of found.versions) {
    if (req.version !== null && v.version !== req.version) continue;
    build = xBuilds.find((b) => b.version === v.version && b.rev === v.rev);
    if (build) {
      xVersion = v;
      break;
    }
  }
  if (!build || !xVersion) {
    if (req.version !== null && !found.versions.some((v) => v.version === req.version))
      throw new GraftRequestError(404, `${label} ${req.version} is not published`);
    throw new GraftRequestError(
      404,
      `no build of ${label}${req.version ? ` ${req.version}` : ""} for ${req.system} is recorded: build and push it first (cpr build ${label} --push)`,
    );
  }
  const dependent = `${label} ${build.version}`;
  const closure = await closureRows(ctx, Object.values(build.outputs));
  const owners = new Map<string, BuildRow[]>();
  for (const { path, build: b } of await ctx.db.buildsByOutputs([...closure.keys()])) {
    const list = owners.get(path);
    if (list) list.push(b);
    else owners.set(path, [b]);
  }

  const facts: ReplacementFacts[] = [];
  const violations: Violation[] = [];
  const pathReps: { old: string; new: string }[] = [];
  const aliases: { path: string; target: string; replaces: string }[] = [];
  const recordReps: GraftReplacementRow[] = [];
  const newRoots: string[] = [];
  for (const r of req.replace) {
    const dep = await ctx.db.atom(r.id);
    if (!dep) throw new GraftRequestError(404, `unknown atom ${r.id} (in replace)`);
    const oldId = r.replaces ?? r.id;
    const oldAtom = oldId === r.id ? dep : await ctx.db.atom(oldId);
    if (!oldAtom) throw new GraftRequestError(404, `unknown atom ${oldId} (in replace[].replaces)`);
    const depLabel = dep.atom.label;
    if (!dep.versions.some((v) => v.version === r.version)) throw new GraftRequestError(404, `${depLabel} ${r.version} is not published`);
    const newBuild = await buildOf(ctx, r.id, r.version, req.system);
    // Old builds of the atom whose outputs are in X's closure.
    const oldBuilds = new Map<number, BuildRow>();
    for (const [, bs] of owners)
      for (const b of bs) if (b.id === oldId && b.system === req.system && b.version !== r.version) oldBuilds.set(b.buildId, b);
    const oldVersions = [...new Set([...oldBuilds.values()].map((b) => b.version))];
    const paths: { old: string; new: string }[] = [];
    let notRuntimeReason: string | undefined;
    if (oldBuilds.size === 0) {
      const recorded = (await ctx.db.builds(oldId, req.system)).filter((b) => b.version !== r.version);
      const sameInClosure = newBuild && Object.values(newBuild.outputs).some((p) => closure.has(p));
      notRuntimeReason = sameInClosure
        ? `${dependent} already uses ${depLabel} ${r.version}`
        : recorded.length
          ? `no recorded build of ${oldAtom.atom.label} (${[...new Set(recorded.map((b) => b.version))].join(", ")}) is in ${dependent}'s runtime closure: it is a build-time-only dependency or linked statically`
          : `no build of ${oldAtom.atom.label} for ${req.system} is recorded in this registry, so none can be found in ${dependent}'s closure: build and push the version ${dependent} was built against first (cpr build ${oldAtom.atom.label}@VERSION --push), or ${oldAtom.atom.label} is not in ${dependent}'s closure`;
    }
    if (!newBuild) {
      violations.push({
        code: "graft.no-build",
        message: `no build of ${depLabel} ${r.version} for ${req.system} is recorded`,
        hint: `build and push it first (cpr build ${depLabel}@=${r.version} --push)`,
        override: null,
      });
    }
    for (const ob of oldBuilds.values()) {
      for (const [out, p] of Object.entries(ob.outputs)) {
        if (!closure.has(p)) continue;
        const np = newBuild?.outputs[out];
        if (newBuild && !np) {
          violations.push({
            code: "graft.no-build",
            message: `${depLabel} ${r.version}'s build has no output "${out}" (${depLabel} ${ob.version}'s ${p} is in ${dependent}'s closure)`,
            hint: "graft onto a version with the same outputs, or rebuild",
            override: null,
          });
        }
        if (np) paths.push({ old: p, new: np });
      }
    }
    // Requirements: X's own, else those of the closure members that refer to an old path directly.
    const depSet = await ctx.db.getSet(dep.atom.root);
    const requirements: StatedRequirement[] = [];
    const own = requirementOn(xVersion.manifest, found.atom.root, depLabel, dep.atom.root, depSet?.mirrors ?? []);
    if (own) requirements.push({ by: dependent, requirement: own });
    else {
      const olds = new Set(paths.map((p) => p.old));
      const seen = new Set<string>();
      for (const [p, row] of closure) {
        if (!row.references.some((ref) => olds.has(`/nix/store/${ref}`)) || olds.has(p)) continue;
        for (const b of owners.get(p) ?? []) {
          const key = `${b.id}@${b.version}`;
          if (seen.has(key) || b.id === oldId) continue;
          seen.add(key);
          const a = await ctx.db.atom(b.id);
          const vr = a?.versions.find((v) => v.version === b.version);
          if (!a || !vr) continue;
          const req2 = requirementOn(vr.manifest, a.atom.root, depLabel, dep.atom.root, depSet?.mirrors ?? []);
          if (req2) requirements.push({ by: `${a.atom.label} ${b.version}`, requirement: req2 });
        }
      }
    }
    facts.push({
      label: depLabel,
      oldId,
      newId: r.id,
      oldVersion: oldVersions.length ? oldVersions.join(", ") : null,
      newVersion: r.version,
      requirements,
      paths,
      runtime: oldBuilds.size > 0 && paths.length > 0,
      notRuntimeReason,
    });
    for (const p of paths) {
      const o = parseStorePath(p.old);
      const n = parseStorePath(p.new);
      if (o.name.length !== n.name.length && req.alias) {
        const a = aliasPath(p.old, p.new);
        aliases.push({ path: a, target: p.new, replaces: p.old });
        pathReps.push({ old: p.old, new: a });
      } else pathReps.push(p);
    }
    if (newBuild) newRoots.push(...Object.values(newBuild.outputs));
    recordReps.push({ id: r.id, label: depLabel, from: oldVersions.join(", "), to: r.version });
  }
  recordReps.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // checkGraft compares one old version per fact: split facts with several old versions.
  const split = facts.flatMap((f) =>
    f.oldVersion?.includes(", ") ? f.oldVersion.split(", ").map((ov) => ({ ...f, oldVersion: ov })) : [f],
  );

  // One version per atom in the new closure: walk X's closure stopping at the replaced paths, plus the new paths' closures.
  const replacedOld = new Set(pathReps.map((p) => p.old));
  const kept = new Set<string>();
  const walk = (p: string): void => {
    if (kept.has(p) || replacedOld.has(p)) return;
    kept.add(p);
    for (const ref of closure.get(p)?.references ?? []) walk(`/nix/store/${ref}`);
  };
  for (const p of Object.values(build.outputs)) walk(p);
  const newClosure = newRoots.length ? await closureRows(ctx, newRoots) : new Map<string, PathRow>();
  const atomsAfter = new Map<string, { label: string; versions: Set<string> }>();
  const allAfter = [...kept, ...newClosure.keys()];
  for (const { build: b } of await ctx.db.buildsByOutputs(allAfter)) {
    if (b.system !== req.system) continue;
    const e = atomsAfter.get(b.id) ?? { label: b.id === req.id ? label : "", versions: new Set<string>() };
    e.versions.add(b.version);
    atomsAfter.set(b.id, e);
  }
  for (const [id, e] of atomsAfter) if (!e.label) e.label = (await ctx.db.atom(id))?.atom.label ?? id;

  violations.push(
    ...checkGraft({
      dependent,
      replacements: split,
      newClosureAtoms: new Map([...atomsAfter].map(([id, e]) => [id, { label: e.label, versions: [...e.versions].sort() }])),
    }),
  );
  const flags: GraftFlags = { allowIncompatible: req.allowIncompatible, alias: req.alias, force: req.force };
  const verdict = judge(violations, flags);
  const atomDoc = { id: req.id, label, version: build.version, system: req.system, buildId: build.buildId };
  const base = {
    graftId: null,
    created: false,
    dryRun: req.dryRun,
    atom: atomDoc,
    replacements: recordReps,
    algorithm: GRAFT_TYPE,
    aliases,
  };
  if (verdict.refusals.length > 0 || pathReps.length === 0) {
    return {
      status: 422,
      doc: { ...base, outputs: {}, paths: pathReps, members: [], warnings: verdict.warnings, refusals: verdict.refusals },
    };
  }

  const members = [...closure.values()].map((row) => ({ path: row.storePath, references: row.references.map((r) => `/nix/store/${r}`) }));
  const plan: GraftPlan = planGraft(members, pathReps);
  const outputs = Object.fromEntries(Object.entries(build.outputs).map(([k, p]) => [k, plan.remap.get(p) ?? p]));
  const allPaths = [...[...plan.remap].map(([o, n]) => ({ old: o, new: n }))].sort((a, b) => (a.old < b.old ? -1 : 1));
  for (const a of aliases) allPaths.push({ old: a.replaces, new: a.path });
  const planned = plan.members.map((m) => ({
    original: m.original,
    graft: m.graft,
    narHash: null,
    narSize: null,
    references: m.references,
  }));
  const key = graftKey(build.buildId, pathReps);

  const existing = await ctx.db.graftByKey(key);
  if (existing) return answerExisting(existing, base, planned, flags);
  if (req.dryRun) {
    return {
      status: 200,
      doc: { ...base, outputs, paths: dedupe(allPaths), members: planned, warnings: verdict.warnings, refusals: [] },
    };
  }

  // Phase 1: write every member (and alias) into staged files, with the residue scan.
  const present = new Set(plan.members.map((m) => m.graft));
  for (const h of await ctx.db.missingPaths(plan.members.map((m) => parseStorePath(m.graft).hash))) {
    for (const m of plan.members) if (parseStorePath(m.graft).hash === h) present.delete(m.graft);
  }
  const staged: string[] = [];
  const discard = async (): Promise<void> => {
    await Promise.all(staged.map((f) => ctx.artifacts.discardStaged(f)));
  };
  let results;
  const aliasStaged: { path: string; target: string; file: string; sha256: Uint8Array; size: number }[] = [];
  try {
    results = await writeGraft(plan, {
      skip: (m) => present.has(m.graft),
      source: {
        open: (p) => {
          const row = closure.get(p)!;
          const file = ctx.artifacts.openStored(row.url);
          return row.compression === "none" ? file : decompress(row.compression, file, { maxOutput: row.narSize, what: row.url });
        },
        narHash: (p) => closure.get(p)!.narHash,
      },
      sink: {
        open: async () => {
          const s = await ctx.artifacts.stage();
          staged.push(s.file);
          return { output: s.output, staged: s.file };
        },
      },
    });
    for (const a of aliases) {
      if ((await ctx.db.missingPaths([parseStorePath(a.path).hash])).length === 0) continue;
      const nar = Buffer.from(symlinkNar(a.target));
      const s = await ctx.artifacts.stage();
      staged.push(s.file);
      await new Promise<void>((resolve, reject) => {
        s.output.once("error", reject);
        s.output.end(nar, () => resolve());
      });
      aliasStaged.push({ ...a, file: s.file, sha256: createHash("sha256").update(nar).digest(), size: nar.length });
    }
  } catch (e) {
    await discard();
    throw e;
  }

  // Phase 2: the residue rule.
  const residue = judge(checkResidue(residueOf(results)), flags);
  const warnings = [...verdict.warnings, ...residue.warnings];
  if (residue.refusals.length > 0) {
    await discard();
    return {
      status: 422,
      doc: { ...base, outputs, paths: dedupe(allPaths), members: planned, warnings, refusals: residue.refusals },
    };
  }

  // Phase 3: publish every staged NAR, then one transaction for the rows and the record.
  const rows: PathRow[] = [];
  const byGraft = new Map(results.map((r) => [r.graft, r]));
  try {
    for (const r of results) {
      const nar = await ctx.artifacts.commitStaged(r.staged, parseNixHash(r.narHash).bytes, r.narSize);
      rows.push(pathRow(ctx, r.graft, r.narHash, r.narSize, r.references, nar));
    }
    for (const a of aliasStaged) {
      const nar = await ctx.artifacts.commitStaged(a.file, a.sha256, a.size);
      rows.push(pathRow(ctx, a.path, toNix32Hash("sha256", a.sha256), a.size, [a.target], nar));
    }
  } catch (e) {
    await discard();
    throw e;
  }
  const record: Omit<GraftRow, "graftId"> = {
    key,
    buildId: build.buildId,
    id: req.id,
    version: build.version,
    system: req.system,
    withKey: withKeyOf(req.replace),
    replacements: recordReps,
    algorithm: GRAFT_TYPE,
    outputs,
    paths: dedupe(allPaths),
    warnings: warnings.map((w) => ({ code: w.code, message: w.message, override: w.override })),
    createdAt: Date.now(),
  };
  const { graft, created } = await ctx.db.insertGraft(record, rows);
  const membersDoc = plan.members.map((m) => {
    const r = byGraft.get(m.graft);
    return { original: m.original, graft: m.graft, narHash: r?.narHash ?? null, narSize: r?.narSize ?? null, references: m.references };
  });
  if (!created) return answerExisting(graft, base, membersDoc, flags);
  return {
    status: 201,
    doc: { ...base, graftId: graft.graftId, created: true, outputs, paths: graft.paths, members: membersDoc, warnings, refusals: [] },
  };
}

function dedupe(paths: readonly { old: string; new: string }[]): { old: string; new: string }[] {
  const seen = new Map<string, string>();
  for (const p of paths) if (!seen.has(p.old)) seen.set(p.old, p.new);
  return [...seen].map(([o, n]) => ({ old: o, new: n })).sort((a, b) => (a.old < b.old ? -1 : a.old > b.old ? 1 : 0));
}

/** An existing record answers a repeated request, unless a warning it was made with would refuse this request. */
function answerExisting(
  g: GraftRow,
  base: Omit<GraftDoc, "outputs" | "paths" | "members" | "warnings" | "refusals">,
  members: readonly GraftedPathDoc[],
  flags: GraftFlags,
): GraftOutcome {
  const stored: Violation[] = g.warnings.map((w) => ({
    code: w.code as Violation["code"],
    message: w.message,
    hint: "the recorded graft was made with this rule overridden",
    override: (w.override ?? null) as Violation["override"],
  }));
  const verdict = judge(stored, flags);
  return {
    status: verdict.refusals.length ? 422 : 200,
    doc: {
      ...base,
      graftId: verdict.refusals.length ? null : g.graftId,
      created: false,
      outputs: g.outputs,
      paths: g.paths,
      members,
      warnings: verdict.warnings,
      refusals: verdict.refusals,
    },
  };
}

function pathRow(
  ctx: RegistryContext,
  storePath: string,
  narHash: string,
  narSize: number,
  references: readonly string[],
  nar: { fileHash: string; fileSize: number; compression: PathRow["compression"]; url: string },
): PathRow {
  const refBasenames = [...new Set(references.map((r) => parseStorePath(r).basename))].sort();
  const base = {
    storePath,
    url: nar.url,
    compression: nar.compression,
    fileHash: nar.fileHash,
    fileSize: nar.fileSize,
    narHash,
    narSize,
    references: refBasenames,
    deriver: null,
    system: null,
    ca: null,
  };
  const sig = signDetached(ctx.key.secret, narInfoFingerprint(base));
  return {
    hashPart: parseStorePath(storePath).hash,
    storePath,
    narHash,
    narSize,
    fileHash: nar.fileHash,
    fileSize: nar.fileSize,
    compression: nar.compression,
    url: nar.url,
    references: refBasenames,
    deriver: null,
    sigs: [sig],
    narinfo: formatNarInfo({ ...base, sigs: [sig] }),
    createdAt: Date.now(),
  };
}

/** The public form of a record. */
export function graftRecordDoc(g: GraftRow, label: string): Record<string, unknown> {
  return {
    graftId: g.graftId,
    atom: { id: g.id, label, version: g.version, system: g.system, buildId: g.buildId },
    replacements: g.replacements,
    algorithm: g.algorithm,
    outputs: g.outputs,
    paths: g.paths,
    warnings: g.warnings,
    createdAt: new Date(g.createdAt).toISOString(),
  };
}
