/**
 * The resolved graph: the edges a resolution found, recorded in the cache beside the lock it wrote (keyed by the
 * lock's bytes: saveGraph, loadGraph), and the locked graph, for `cpr tree` and `cpr why`, with no network: atoms
 * from atom.lock; edges as recorded for this lock. For a lock resolved elsewhere, the edges are rebuilt
 * from the locked atoms' manifests where the local cache has them (manifest blobs from an earlier resolve, or the
 * atom commits `cpr fetch --lock` stored); what is still missing leaves the graph incomplete.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheLayout } from "../config/paths.js";
import { Repo } from "../git/repo.js";
import { atomId } from "../protocol/id.js";
import type { LockAtom, LockDep } from "../protocol/lock.js";
import { parseAtomManifest, type AtomManifest } from "../protocol/atom-manifest.js";
import type { Project } from "./project.js";

/** The project itself, as a package of the solver and a node of the graph. */
export const ROOT_PKG = "<root>";

/** An edge of the resolved graph: `from` requires `dep` with `req`. */
export interface GraphEdge {
  readonly dep: string;
  readonly req: string;
}

function graphFile(cacheDir: string, lockText: string): string {
  return cacheLayout(cacheDir).graph(createHash("sha256").update(lockText).digest("hex").slice(0, 40));
}

/** Records the graph resolved with `lockText` (read back by loadGraph, for tree/why and the no-op check). */
export function saveGraph(cacheDir: string, lockText: string, edges: Readonly<Record<string, readonly GraphEdge[]>>): void {
  const f = graphFile(cacheDir, lockText);
  mkdirSync(cacheLayout(cacheDir).graphs, { recursive: true });
  writeFileSync(f, JSON.stringify(edges));
}

/** The graph recorded for `lockText`, or null when none was (a lock resolved elsewhere, or a cleared cache). */
export function loadGraph(cacheDir: string, lockText: string): Record<string, GraphEdge[]> | null {
  try {
    return JSON.parse(readFileSync(graphFile(cacheDir, lockText), "utf8")) as Record<string, GraphEdge[]>;
  } catch {
    return null;
  }
}

export interface LockedGraph {
  readonly atoms: ReadonlyMap<string, LockAtom>;
  /** id (or ROOT_PKG) → requirements. */
  readonly edges: Readonly<Record<string, readonly GraphEdge[]>>;
  /** False when some edges are unknown (no graph recorded for this lock, and manifests missing from the cache). */
  readonly complete: boolean;
  /** Locked atoms whose dependencies are unknown (their manifests are not in the cache). */
  readonly unknown: readonly LockAtom[];
}

export async function lockedGraph(project: Project, cacheDir: string, env: NodeJS.ProcessEnv = process.env): Promise<LockedGraph> {
  const atoms = new Map<string, LockAtom>();
  for (const d of project.lock?.deps ?? []) if (d.type === "atom") atoms.set(d.id, stripType(d));
  const c = project.lock?.compose;
  if (c?.use === "atom" && !atoms.has(c.id))
    atoms.set(c.id, { label: c.label, version: c.version, set: c.set, rev: c.rev, mirror: c.mirror, id: c.id });
  const recorded = project.lockText === null ? null : loadGraph(cacheDir, project.lockText);
  if (recorded) return { atoms, edges: recorded, complete: true, unknown: [] };
  const direct: GraphEdge[] = [];
  for (const [tag, reqs] of Object.entries(project.manifest.depsFrom)) {
    const roots = Object.entries(project.lock?.sets ?? {})
      .filter(([, s]) => s.tag === tag)
      .map(([r]) => r);
    for (const [label, req] of Object.entries(reqs)) {
      for (const root of roots) {
        const id = atomId(root, label);
        if (atoms.has(id)) direct.push({ dep: id, req: req.text });
      }
    }
  }
  const mc = project.manifest.compose;
  if (c?.use === "atom" && mc?.kind === "with" && !direct.some((e) => e.dep === c.id)) direct.push({ dep: c.id, req: mc.requirement.text });
  const rebuilt = await edgesFromCache(atoms, project.lock?.sets ?? {}, cacheDir, env);
  return { atoms, edges: { ...rebuilt.edges, [ROOT_PKG]: direct }, complete: rebuilt.unknown.length === 0, unknown: rebuilt.unknown };
}

/**
 * Each locked atom's requirements, from its manifest in the cache: the blob an earlier resolve fetched
 * (`resolve/revs.json`), else `atom.toml` at the root of the atom commit. A `[deps.from.<tag>]` label maps to the
 * locked atom of the same set (`"::"` is the atom's own set; otherwise a lock set sharing a mirror with the tag),
 * or else to the only locked atom with that label.
 */
async function edgesFromCache(
  atoms: ReadonlyMap<string, LockAtom>,
  sets: Readonly<Record<string, { readonly mirrors: readonly string[] }>>,
  cacheDir: string,
  env: NodeJS.ProcessEnv,
): Promise<{ edges: Record<string, GraphEdge[]>; unknown: LockAtom[] }> {
  const all = [...atoms.values()];
  const layout = cacheLayout(cacheDir);
  const gitDir = layout.git;
  if (all.length === 0) return { edges: {}, unknown: [] };
  if (!existsSync(join(gitDir, "HEAD"))) return { edges: {}, unknown: all };
  let index: Record<string, string> = {};
  try {
    index = JSON.parse(readFileSync(layout.revIndex, "utf8")) as Record<string, string>;
  } catch {
    /* no resolve on this machine yet */
  }
  const repo = await Repo.open(gitDir, { env, repo: "cpr" });
  try {
    const withRev = all.filter((a) => a.rev);
    const objects = await repo.readObjects(withRev.map((a) => index[a.rev!] ?? `${a.rev}:atom.toml`));
    const manifests = new Map<string, AtomManifest>();
    withRev.forEach((a, i) => {
      const o = objects[i];
      if (o?.type !== "blob") return;
      try {
        manifests.set(a.id, parseAtomManifest(Buffer.from(o.data).toString("utf8"), `${a.label} ${a.version} atom.toml`));
      } catch {
        /* an unreadable manifest leaves this atom's edges unknown */
      }
    });
    const byLabel = new Map<string, LockAtom[]>();
    for (const a of all) byLabel.set(a.label, [...(byLabel.get(a.label) ?? []), a]);
    const edges: Record<string, GraphEdge[]> = {};
    const unknown: LockAtom[] = [];
    for (const a of all) {
      const m = manifests.get(a.id);
      if (!m) {
        unknown.push(a);
        continue;
      }
      const out: GraphEdge[] = [];
      let resolved = true;
      for (const [tag, reqs] of Object.entries(m.depsFrom)) {
        const mirrors = m.package.sets[tag] ?? [];
        const roots = mirrors.includes("::")
          ? [a.set]
          : Object.entries(sets)
              .filter(([, s]) => s.mirrors.some((u) => mirrors.includes(u)))
              .map(([r]) => r);
        for (const [label, req] of Object.entries(reqs)) {
          const viaRoot = roots.map((r) => atomId(r, label)).find((id) => atoms.has(id));
          const only = byLabel.get(label);
          const dep = viaRoot ?? (only?.length === 1 ? only[0]!.id : undefined);
          if (dep) out.push({ dep, req: req.text });
          else resolved = false;
        }
      }
      edges[a.id] = out;
      if (!resolved) unknown.push(a);
    }
    return { edges, unknown };
  } finally {
    repo.close();
  }
}

function stripType(d: LockDep & { type: "atom" }): LockAtom {
  return { label: d.label, version: d.version, set: d.set, rev: d.rev, mirror: d.mirror, id: d.id };
}

/** Shortest chains of requirements from the project to each atom with `label` (breadth first). */
export function whyChains(graph: LockedGraph, label: string): { target: LockAtom; chain: { from: string; edge: GraphEdge }[] }[] {
  const targets = [...graph.atoms.values()].filter((a) => a.label === label);
  const prev = new Map<string, { from: string; edge: GraphEdge }>();
  const seen = new Set<string>([ROOT_PKG]);
  const queue = [ROOT_PKG];
  while (queue.length) {
    const cur = queue.shift()!;
    for (const e of graph.edges[cur] ?? []) {
      if (seen.has(e.dep)) continue;
      seen.add(e.dep);
      prev.set(e.dep, { from: cur, edge: e });
      queue.push(e.dep);
    }
  }
  return targets.map((t) => {
    const chain: { from: string; edge: GraphEdge }[] = [];
    for (let id = t.id; prev.has(id); id = prev.get(id)!.from) chain.unshift(prev.get(id)!);
    return { target: t, chain };
  });
}
