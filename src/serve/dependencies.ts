/**
 * The dependency index behind the pages' "dependencies" and "dependents" sections: each indexed version's
 * `[deps.from.<tag>]` entries, once per mirror of the tag (docs/registry.md, "Pages"). A `"::"` mirror is recorded as
 * the depending atom's own set root; a URL as the text the manifest writes, which matches a set whose configured
 * mirrors include that text. Filled after each index pass (new versions, and versions indexed before the index
 * existed), in batches of one transaction each.
 */
import { parseAtomManifest, type AtomManifest } from "../protocol/atom-manifest.js";
import type { DependencyRow, RegistryDb } from "./db.js";

/** Versions whose dependencies one transaction records. */
const BATCH = 200;

/** The parsed manifest, or null when it does not parse (such a version has no dependencies in the index). */
export function parsePublishedManifest(text: string): AtomManifest | null {
  if (!text) return null;
  try {
    return parseAtomManifest(text, "atom.toml", "evaluate");
  } catch {
    try {
      return parseAtomManifest(text, "atom.toml", "publish");
    } catch {
      return null;
    }
  }
}

/** The atom dependencies of a manifest, once per mirror of each tag (`"::"` as `root`), in file order. */
export function dependencyRows(manifest: AtomManifest | null, root: string): DependencyRow[] {
  if (!manifest) return [];
  const out: DependencyRow[] = [];
  for (const [tag, labels] of Object.entries(manifest.depsFrom)) {
    const mirrors = manifest.package.sets[tag] ?? [];
    for (const [label, requirement] of Object.entries(labels)) {
      for (const m of mirrors) out.push({ tag, label, requirement: requirement.text, set: m === "::" ? root : m });
    }
  }
  return out;
}

/** Indexes the dependencies of every version of the set not indexed yet. Returns how many versions it read. */
export async function indexDependencies(db: RegistryDb, root: string): Promise<number> {
  let total = 0;
  for (;;) {
    const pending = await db.versionsWithoutDependencies(root, BATCH);
    if (pending.length === 0) return total;
    const entries = pending.map((v) => ({ id: v.id, version: v.version, deps: dependencyRows(parsePublishedManifest(v.manifest), root) }));
    await db.recordDependencies(entries);
    total += pending.length;
    if (pending.length < BATCH) return total;
  }
}
