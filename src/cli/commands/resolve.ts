import { flag, type Command, type Context } from "../command.js";
import type { LockDep, Lockfile } from "../../protocol/lock.js";
import { lockProject, type LockOutcome } from "../../resolve/lock-project.js";

/** One line of what changed between two locks, for humans and --json. */
export interface LockChange {
  label: string;
  id: string;
  from: string | null;
  to: string | null;
}

type AtomDep = LockDep & { type: "atom" };

function atomsOf(lock: Lockfile | null): Map<string, AtomDep> {
  return new Map((lock?.deps ?? []).filter((d): d is AtomDep => d.type === "atom").map((d) => [d.id, d]));
}

/** Atoms added, removed or moved between two locks, sorted by label. */
export function lockChanges(before: Lockfile | null, after: Lockfile | null): LockChange[] {
  const a = atomsOf(before);
  const b = atomsOf(after);
  const out: LockChange[] = [];
  for (const [id, d] of b) {
    const old = a.get(id);
    if (!old || old.version !== d.version || old.rev !== d.rev) out.push({ label: d.label, id, from: old?.version ?? null, to: d.version });
  }
  for (const [id, d] of a) if (!b.has(id)) out.push({ label: d.label, id, from: d.version, to: null });
  return out.sort((x, y) => (x.label < y.label ? -1 : x.label > y.label ? 1 : 0));
}

/** Print the outcome of a lock run: a summary line, the changes, and --json. */
export function reportOutcome(ctx: Context, json: boolean, outcome: LockOutcome, extra: Record<string, unknown> = {}): void {
  const after = outcome.resolution?.lock ?? outcome.project.lock;
  const changes = outcome.status === "unchanged" ? [] : lockChanges(outcome.project.lock, after);
  const atoms = [...atomsOf(after).values()].map((d) => ({ label: d.label, version: d.version, id: d.id, set: d.set, rev: d.rev }));
  if (json) {
    ctx.term.json({ status: outcome.status, changes, atoms, network: outcome.stats, ...extra });
    return;
  }
  for (const c of changes) {
    if (c.from === null) ctx.term.out(`+ ${c.label} ${c.to}`);
    else if (c.to === null) ctx.term.out(`- ${c.label} ${c.from}`);
    else ctx.term.out(`~ ${c.label} ${c.from} -> ${c.to}`);
  }
  const n = atoms.length;
  switch (outcome.status) {
    case "unchanged":
      ctx.term.info(`atom.lock already satisfies atom.toml (${n} atom${n === 1 ? "" : "s"}); nothing to do, no network used`);
      break;
    case "same":
      ctx.term.info(`atom.lock is up to date (${n} atom${n === 1 ? "" : "s"})`);
      break;
    default:
      ctx.term.info(`wrote atom.lock (${n} atom${n === 1 ? "" : "s"}, ${changes.length} change${changes.length === 1 ? "" : "s"})`);
  }
}

/** `cpr resolve`: bring atom.lock in line with atom.toml, changing as little as possible. */
export const command: Command = {
  name: "resolve",
  usage: "cpr resolve [--locked] [--offline] [--json]",
  summary: "Resolve the whole dependency graph and bring atom.lock in line with atom.toml",
  help: `Resolves the atom's dependencies ([deps.from.<set>] in atom.toml, and theirs, transitively) with PubGrub and
writes atom.lock and atom.toml as a pair (lock first). Locked versions that still satisfy their requirement are
kept; only what must change changes. When the lock already satisfies the manifest nothing is read from the network.

Versions are listed with git ls-refs from every mirror of each set at once; a dead mirror is a warning, mirrors
that disagree (different roots, or one version with two revs) are refused. Dependencies are read from each
candidate's manifest blob (refs/eka/meta/<label>/<version>/manifest), fetched alone into the cache
($XDG_CACHE_HOME/cpr). Listings are cached for the configured TTL, manifests forever.

Options:
  --locked    Fail (exit 1), writing nothing, if atom.lock would change
  --offline   Resolve from the cache alone; fail naming what is missing
  --json      Print {"status","changes","atoms","network"} on stdout

Exit codes: 0 resolved, 1 failed (conflict, unreachable set, --locked and the lock would change), 2 usage error.
`,
  options: { locked: { type: "boolean" }, offline: { type: "boolean" } },
  maxPositionals: 0,
  async run(ctx, args) {
    const outcome = await lockProject({ cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, locked: flag(args, "locked"), offline: flag(args, "offline") });
    reportOutcome(ctx, flag(args, "json"), outcome);
    return 0;
  },
};
