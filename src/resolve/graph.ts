/**
 * The locked graph, for `cpr tree` and `cpr why`, with no network: atoms from atom.lock; edges recorded in the
 * cache when the lock was written (keyed by the lock's bytes), else only the project's direct requirements.
 */
import { atomId } from "../protocol/id.js";
import type { LockAtom, LockDep } from "../protocol/lock.js";
import type { Project } from "./project.js";
import { loadGraph, ROOT_PKG, type GraphEdge } from "./resolve.js";

export interface LockedGraph {
  readonly atoms: ReadonlyMap<string, LockAtom>;
  /** id (or ROOT_PKG) → requirements. */
  readonly edges: Readonly<Record<string, readonly GraphEdge[]>>;
  /** False when only the direct requirements are known (no graph recorded for this lock in the cache). */
  readonly complete: boolean;
}

export function lockedGraph(project: Project, cacheDir: string): LockedGraph {
  const atoms = new Map<string, LockAtom>();
  for (const d of project.lock?.deps ?? []) if (d.type === "atom") atoms.set(d.id, stripType(d));
  const c = project.lock?.compose;
  if (c?.use === "atom" && !atoms.has(c.id)) atoms.set(c.id, { label: c.label, version: c.version, set: c.set, rev: c.rev, mirror: c.mirror, id: c.id });
  const recorded = project.lockText === null ? null : loadGraph(cacheDir, project.lockText);
  if (recorded) return { atoms, edges: recorded, complete: true };
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
  return { atoms, edges: { [ROOT_PKG]: direct }, complete: false };
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
