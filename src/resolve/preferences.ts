/**
 * Preferences from an existing lock: the solver tries the locked version of every atom first, so a resolution
 * changes only what must change (`cpr resolve`), or what is being updated (`cpr update [LABEL...]`).
 */
import type { Lockfile } from "../protocol/lock.js";
import { unlocal } from "../protocol/lock-check.js";
import type { Version } from "../protocol/version.js";

/** The locked versions to prefer: every atom entry still in the lock, unless it is being updated. */
export function preferredFromLock(lock: Lockfile | null, update: readonly string[] | true | undefined): Map<string, Version> {
  const out = new Map<string, Version>();
  if (!lock || update === true) return out;
  const skip = new Set(update ?? []);
  for (const d of lock.deps) {
    if (d.type !== "atom" || skip.has(d.label)) continue;
    out.set(d.id, unlocal(d.version).version);
  }
  if (lock.compose.use === "atom" && !skip.has(lock.compose.label) && !out.has(lock.compose.id))
    out.set(lock.compose.id, unlocal(lock.compose.version).version);
  return out;
}
