/**
 * Graft addresses and plans, pure (docs/grafts.md).
 *
 * A graft moves a built closure from old dependency paths onto new ones (y-3.2 → y-3.3) by rewriting, in the NAR of
 * every closure member that reaches an old path, each old basename to its new one (and each old hash part to the new
 * one, see GraftedMember.rewrites). Every grafted member gets a new
 * store path, known before a byte is read, independent of the Nix version and of the NAR's bytes:
 *
 *   graft path = makeStorePath("cpr-graft-v1", sha256hex(descriptor), <the original's name>)
 *
 * The descriptor is UTF-8 text (store paths are ASCII), each line ending in "\n", nothing else:
 *
 *   cpr-graft-v1
 *   original <original full store path>
 *   replace <old full store path> <new full store path>     one line per replacement, sorted by old path (bytes)
 *
 * The replacements are the graft's requested ones (old dependency → new dependency), restricted to the old paths in
 * the original's closure (planGraft does this), so a member is addressed the same whatever else a graft replaces.
 * The rewrites of other grafted members (l → l′) are not listed: they follow from the same replacements.
 */
import { createHash } from "node:crypto";
import { CprError } from "./errors.js";
import { STORE_DIR, makeStorePath, parseStorePath } from "./store-path.js";

export const GRAFT_TYPE = "cpr-graft-v1";

/** An old → new pair of full store paths. */
export interface Replacement {
  readonly old: string;
  readonly new: string;
}

function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Validates and sorts replacements: store paths in `storeDir`, old ≠ new, equal basename lengths, each old path once,
 * and no path both replaced and a replacement (no chains or swaps). Accepts a Map or a list of pairs.
 */
export function canonicalReplacements(
  replacements: ReadonlyMap<string, string> | Iterable<Replacement>,
  storeDir: string = STORE_DIR,
): Replacement[] {
  const pairs: Replacement[] =
    replacements instanceof Map ? [...replacements].map(([o, n]) => ({ old: o, new: n })) : [...(replacements as Iterable<Replacement>)];
  const out = new Map<string, string>();
  for (const r of pairs) {
    const o = parseStorePath(r.old, { storeDir });
    const n = parseStorePath(r.new, { storeDir });
    if (o.path === n.path)
      throw new CprError("graft.same", `${o.path} is replaced by itself`, {
        where: o.path,
        hint: "give a different new path, or leave the dependency out",
      });
    if (o.basename.length !== n.basename.length) {
      throw new CprError(
        "graft.length",
        `cannot graft ${o.basename} onto ${n.basename}: the basenames are ${o.basename.length} and ${n.basename.length} characters long`,
        {
          where: o.path,
          hint: `a graft rewrites store paths in place, so the names must be equally long ("${o.name}" has ${o.name.length} characters, "${n.name}" has ${n.name.length}); rebuild instead, or bridge the length with an alias path`,
        },
      );
    }
    const prev = out.get(o.path);
    if (prev !== undefined && prev !== n.path) {
      throw new CprError("graft.conflict", `${o.path} is replaced twice: by ${prev} and by ${n.path}`, {
        where: o.path,
        hint: "give one replacement per old path",
      });
    }
    out.set(o.path, n.path);
  }
  if (out.size === 0)
    throw new CprError("graft.empty", "a graft needs at least one replacement", { hint: "give an old → new store path pair" });
  for (const n of out.values()) {
    if (out.has(n)) {
      throw new CprError("graft.chain", `${n} is both replaced and a replacement`, {
        where: n,
        hint: "replace each old path directly by its final new path; chains and swaps are not grafts",
      });
    }
  }
  return [...out].map(([o, n]) => ({ old: o, new: n })).sort((a, b) => byBytes(a.old, b.old));
}

/** The canonical descriptor text of a graft of `original` (see the module comment). */
export function graftDescriptor(
  original: string,
  replacements: ReadonlyMap<string, string> | Iterable<Replacement>,
  storeDir: string = STORE_DIR,
): string {
  const orig = parseStorePath(original, { storeDir }).path;
  const reps = canonicalReplacements(replacements, storeDir);
  if (reps.some((r) => r.old === orig)) {
    throw new CprError("graft.self", `${orig} is itself one of the paths replaced`, {
      where: orig,
      hint: "graft the paths that depend on it, not the path itself",
    });
  }
  let s = `${GRAFT_TYPE}\noriginal ${orig}\n`;
  for (const r of reps) s += `replace ${r.old} ${r.new}\n`;
  return s;
}

/** The store path of `original` grafted with `replacements`: the original's name, a hash of the descriptor. */
export function graftPath(
  original: string,
  replacements: ReadonlyMap<string, string> | Iterable<Replacement>,
  storeDir: string = STORE_DIR,
): string {
  const descriptor = graftDescriptor(original, replacements, storeDir);
  const inner = createHash("sha256").update(descriptor, "utf8").digest("hex");
  return makeStorePath(GRAFT_TYPE, inner, parseStorePath(original, { storeDir }).name, storeDir);
}

/** One closure member: its full store path and references (full paths or basenames; itself when self-referencing). */
export interface ClosureMember {
  readonly path: string;
  readonly references: readonly string[];
}

/** What happens to one member that reaches an old path. */
export interface GraftedMember {
  readonly original: string;
  readonly graft: string;
  /** The replacements its descriptor lists (the requested ones in its closure), sorted. */
  readonly replacements: readonly Replacement[];
  /**
   * What to rewrite in its NAR, for itself and each direct reference that changes: the hash part (32 characters)
   * old → new, so that bare hash parts follow too; and when the name changes (y-3.2 → y-3.3), also the basename,
   * which wins where it matches (the longest match). Sorted by `from`.
   */
  readonly rewrites: readonly { readonly from: string; readonly to: string }[];
  /** Its references after the graft (full paths, sorted; the graft itself when the original referred to itself). */
  readonly references: readonly string[];
}

export interface GraftPlan {
  /** The requested replacements, canonical. */
  readonly replacements: readonly Replacement[];
  /** Every member that reaches an old path, dependencies first (a member after every grafted member it refers to). */
  readonly members: readonly GraftedMember[];
  /** Old → new full path, for every path that changes (requested replacements and grafted members). */
  readonly remap: ReadonlyMap<string, string>;
  /** Requested old paths that are not in the closure (nothing refers to them): the caller should say so. */
  readonly unused: readonly string[];
}

/** Adds the rewrites that move `oldPath` to `newPath`: hash part, and basename when the names differ. */
function addRewrites(into: Map<string, string>, oldPath: string, newPath: string, storeDir: string): void {
  const o = parseStorePath(oldPath, { storeDir });
  const n = parseStorePath(newPath, { storeDir });
  into.set(o.hash, n.hash);
  if (o.name !== n.name) into.set(o.basename, n.basename);
}

/**
 * Plans a graft of a closure: which members change, their new paths, what to rewrite in each. `closure` must hold
 * every member reachable from the roots, except the old paths' own dependencies (they are not looked into). Refuses
 * a reference to a path missing from `closure` and a reference cycle (other than a path referring to itself).
 */
export function planGraft(
  closure: Iterable<ClosureMember>,
  replacements: ReadonlyMap<string, string> | Iterable<Replacement>,
  storeDir: string = STORE_DIR,
): GraftPlan {
  const reps = canonicalReplacements(replacements, storeDir);
  const replaced = new Map(reps.map((r) => [r.old, r.new]));
  const refs = new Map<string, string[]>();
  for (const m of closure) {
    const p = parseStorePath(m.path, { storeDir }).path;
    const rs = m.references.map((r) => parseStorePath(r, { storeDir, basename: !r.includes("/") }).path);
    refs.set(p, [...new Set(rs)].sort(byBytes));
  }

  // Which old paths each member reaches (through members that are not themselves old paths).
  const reaches = new Map<string, ReadonlySet<string>>();
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (p: string, from: string | null): ReadonlySet<string> => {
    const known = reaches.get(p);
    if (known) return known;
    if (replaced.has(p)) return new Set([p]);
    if (visiting.has(p)) {
      throw new CprError("graft.cycle", `the closure has a reference cycle through ${p}`, {
        where: p,
        hint: "store paths refer to each other only along a DAG; check the closure given",
      });
    }
    const rs = refs.get(p);
    if (!rs) {
      throw new CprError("graft.closure", `${from ?? "the closure"} refers to ${p}, which is not in the closure given`, {
        where: p,
        hint: "give every member of the closure with its references (nix path-info --recursive --json)",
      });
    }
    visiting.add(p);
    const acc = new Set<string>();
    for (const r of rs) {
      if (r === p) continue;
      for (const o of visit(r, p)) acc.add(o);
    }
    visiting.delete(p);
    reaches.set(p, acc);
    order.push(p);
    return acc;
  };
  for (const p of [...refs.keys()].sort(byBytes)) visit(p, null);

  const remap = new Map(replaced);
  const members: GraftedMember[] = [];
  for (const p of order) {
    const olds = reaches.get(p)!;
    if (olds.size === 0) continue;
    const own = reps.filter((r) => olds.has(r.old));
    const graft = graftPath(p, own, storeDir);
    remap.set(p, graft);
    members.push({ original: p, graft, replacements: own, rewrites: [], references: [] });
  }
  // Dependencies come first in `order`, so every grafted reference is already in `remap`.
  const planned = members.map((m): GraftedMember => {
    const rewrites = new Map<string, string>();
    const newRefs = new Set<string>();
    for (const r of refs.get(m.original)!) {
      const to = remap.get(r);
      if (to !== undefined) addRewrites(rewrites, r, to, storeDir);
      newRefs.add(to ?? r);
    }
    addRewrites(rewrites, m.original, m.graft, storeDir);
    return {
      ...m,
      rewrites: [...rewrites].map(([from, to]) => ({ from, to })).sort((a, b) => byBytes(a.from, b.from)),
      references: [...newRefs].sort(byBytes),
    };
  });
  const unused = reps.filter((r) => ![...reaches.values()].some((s) => s.has(r.old))).map((r) => r.old);
  return { replacements: reps, members: planned, remap, unused };
}

// ── aliases (docs/grafts.md, "Aliases") ──

export const ALIAS_TYPE = "cpr-graft-alias-v1";

/**
 * The alias of `target` standing in for `old` (`--alias`): a path whose name is the old path's name (so its
 * basename has the old one's length and can be written over it in place) and whose contents are one symlink to
 * `target`. Its hash is the descriptor's, `cpr-graft-alias-v1\nold <old>\nnew <target>\n`, so it never equals the old
 * path and is known before a byte is written.
 */
export function aliasPath(old: string, target: string, storeDir: string = STORE_DIR): string {
  const o = parseStorePath(old, { storeDir });
  const n = parseStorePath(target, { storeDir });
  const descriptor = `${ALIAS_TYPE}\nold ${o.path}\nnew ${n.path}\n`;
  const inner = createHash("sha256").update(descriptor, "utf8").digest("hex");
  return makeStorePath(ALIAS_TYPE, inner, o.name, storeDir);
}

function narString(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
}

/** The NAR of a store path that is one symlink to `target` (an alias's contents). */
export function symlinkNar(target: string): Uint8Array {
  return Buffer.concat(["nix-archive-1", "(", "type", "symlink", "target", target, ")"].map(narString));
}
