/**
 * What changed between two locks, by versions (not hashes): atoms added, removed, upgraded or downgraded (with the
 * size of the move: major, minor, patch, pre-release), republished under the same version (another rev), and direct
 * Nix dependencies added, removed or changed. Pure: origin commit ranges are filled in by the caller, which lists
 * `refs/eka/meta/<label>/<version>/origin` (src/resolve/origins.ts). Printed by `cpr diff`, `cpr update` and
 * `cpr resolve` (docs/formats.md §15.4).
 */
import type { LockAtom, LockDep, LockDirectDep, Lockfile } from "./lock.js";
import { unlocal } from "./lock-check.js";
import { compareVersions } from "./version.js";

export type AtomChangeKind = "added" | "removed" | "upgraded" | "downgraded" | "rev";

/** One atom that differs between the locks (a [[deps]] atom or the composer atom). */
export interface AtomChange {
  readonly kind: AtomChangeKind;
  readonly label: string;
  readonly id: string;
  /** The old entry (null when added). */
  readonly from: LockAtom | null;
  /** The new entry (null when removed). */
  readonly to: LockAtom | null;
  /** For upgrades and downgrades: the highest version part that changed. */
  readonly size: "major" | "minor" | "patch" | "pre-release" | "build" | null;
}

export interface DirectChange {
  readonly kind: "added" | "removed" | "changed";
  readonly name: string;
  /** `type url [version] hash|rev`, as a line names it. */
  readonly from: string | null;
  readonly to: string | null;
}

export interface LockDiff {
  readonly atoms: readonly AtomChange[];
  readonly direct: readonly DirectChange[];
}

type AtomDep = LockDep & { type: "atom" };

/** The lock's atoms by AtomId: its [[deps]] atoms and a composer atom. */
function atomsOf(lock: Lockfile | null): Map<string, LockAtom> {
  const out = new Map<string, LockAtom>();
  for (const d of lock?.deps ?? []) if (d.type === "atom") out.set(d.id, strip(d));
  const c = lock?.compose;
  if (c?.use === "atom" && !out.has(c.id)) out.set(c.id, strip(c));
  return out;
}

function strip(a: LockAtom | AtomDep): LockAtom {
  return { label: a.label, version: a.version, set: a.set, rev: a.rev, mirror: a.mirror, id: a.id };
}

function sizeOf(a: string, b: string): AtomChange["size"] {
  const x = unlocal(a).version;
  const y = unlocal(b).version;
  if (x.major !== y.major) return "major";
  if (x.minor !== y.minor) return "minor";
  if (x.patch !== y.patch) return "patch";
  if (compareVersions(x, y) !== 0) return "pre-release";
  return "build";
}

function byLabel(x: { label: string }, y: { label: string }): number {
  return x.label < y.label ? -1 : x.label > y.label ? 1 : 0;
}

/** A direct dependency as one line of text. */
export function directText(d: LockDirectDep): string {
  switch (d.type) {
    case "nix+git":
      return `nix+git ${d.url}${d.version ? ` ${d.version}` : ""} ${d.rev}`;
    case "nix+src":
      return `nix+src ${d.url} ${d.hash}${d.unpack ? " unpack" : ""}`;
    default:
      return `${d.type} ${d.url} ${d.hash}`;
  }
}

/** Atoms sorted by label (added, removed, moved together), then direct dependencies sorted by name. */
export function diffLocks(before: Lockfile | null, after: Lockfile | null): LockDiff {
  const a = atomsOf(before);
  const b = atomsOf(after);
  const atoms: AtomChange[] = [];
  for (const [id, to] of b) {
    const from = a.get(id) ?? null;
    if (from === null) atoms.push({ kind: "added", label: to.label, id, from, to, size: null });
    else if (from.version !== to.version) {
      const up = compareVersions(unlocal(to.version).version, unlocal(from.version).version) > 0;
      atoms.push({ kind: up ? "upgraded" : "downgraded", label: to.label, id, from, to, size: sizeOf(from.version, to.version) });
    } else if (from.rev !== to.rev) atoms.push({ kind: "rev", label: to.label, id, from, to, size: null });
  }
  for (const [id, from] of a) if (!b.has(id)) atoms.push({ kind: "removed", label: from.label, id, from, to: null, size: null });
  atoms.sort(byLabel);

  const directOf = (lock: Lockfile | null) =>
    new Map((lock?.deps ?? []).filter((d): d is LockDirectDep => d.type !== "atom").map((d) => [d.name, directText(d)]));
  const da = directOf(before);
  const db = directOf(after);
  const direct: DirectChange[] = [];
  for (const [name, to] of db) {
    const from = da.get(name) ?? null;
    if (from === null) direct.push({ kind: "added", name, from, to });
    else if (from !== to) direct.push({ kind: "changed", name, from, to });
  }
  for (const [name, from] of da) if (!db.has(name)) direct.push({ kind: "removed", name, from, to: null });
  direct.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return { atoms, direct };
}

/** Origin commits of a changed atom's two versions (from the meta refs), when known. */
export interface OriginRange {
  readonly from: string | null;
  readonly to: string | null;
}

const short = (oid: string | null) => (oid === null ? "?" : oid.slice(0, 12));

/**
 * The summary lines: `+ label version`, `- label version`, `~ label old -> new  upgraded (minor)`,
 * `~ label version  republished: rev old -> new`, then `+ nix name …`, `- nix name …`, `~ nix name old -> new`.
 * With origins, a changed atom gets the range of origin commits between its versions (`origin A..B`).
 */
export function formatDiff(diff: LockDiff, origins: ReadonlyMap<string, OriginRange> = new Map()): string[] {
  const out: string[] = [];
  for (const c of diff.atoms) {
    let line: string;
    switch (c.kind) {
      case "added":
        line = `+ ${c.label} ${c.to!.version}`;
        break;
      case "removed":
        line = `- ${c.label} ${c.from!.version}`;
        break;
      case "rev":
        line = `~ ${c.label} ${c.to!.version}  republished: rev ${short(c.from!.rev)} -> ${short(c.to!.rev)}`;
        break;
      default:
        line = `~ ${c.label} ${c.from!.version} -> ${c.to!.version}  ${c.kind} (${c.size})`;
    }
    const o = origins.get(c.id);
    if (o && (o.from !== null || o.to !== null)) line += `  origin ${short(o.from)}..${short(o.to)}`;
    out.push(line);
  }
  for (const d of diff.direct) {
    if (d.kind === "added") out.push(`+ nix ${d.name}: ${d.to}`);
    else if (d.kind === "removed") out.push(`- nix ${d.name}: ${d.from}`);
    else out.push(`~ nix ${d.name}: ${d.from} -> ${d.to}`);
  }
  return out;
}

/** `2 upgraded, 1 added`; "no changes" when empty. */
export function diffCounts(diff: LockDiff): string {
  const n = (k: string, count: number) => (count ? [`${count} ${k}`] : []);
  const of = (k: AtomChangeKind) => diff.atoms.filter((c) => c.kind === k).length;
  const parts = [
    ...n("added", of("added")),
    ...n("removed", of("removed")),
    ...n("upgraded", of("upgraded")),
    ...n("downgraded", of("downgraded")),
    ...n("republished", of("rev")),
    ...n(`direct dependenc${diff.direct.length === 1 ? "y" : "ies"} changed`, diff.direct.length),
  ];
  return parts.length ? parts.join(", ") : "no changes";
}

/** The diff as JSON: atoms with versions, revs, size and origins; direct dependencies. */
export function diffJson(diff: LockDiff, origins: ReadonlyMap<string, OriginRange> = new Map()): Record<string, unknown> {
  return {
    atoms: diff.atoms.map((c) => ({
      change: c.kind,
      label: c.label,
      id: c.id,
      from: c.from?.version ?? null,
      to: c.to?.version ?? null,
      fromRev: c.from?.rev ?? null,
      toRev: c.to?.rev ?? null,
      size: c.size,
      origins: origins.get(c.id) ?? null,
    })),
    direct: diff.direct.map((d) => ({ change: d.kind, name: d.name, from: d.from, to: d.to })),
  };
}
