import { flag, type Command, type Context } from "../command.js";
import type { LockCompose, LockDep, Lockfile } from "../../protocol/lock.js";
import { lockProject, type LockOutcome } from "../../resolve/lock-project.js";

/**
 * One line of what changed between two locks, for humans and --json. `kind` "atom": a [[deps]] atom (label, id,
 * versions); "compose": the composer ([compose]; label "composer", id the composer atom's or null, from/to
 * describe it, null for the default static one); "locker": [locker] added to a lock that had none.
 */
export interface LockChange {
  kind: "atom" | "compose" | "locker";
  label: string;
  id: string | null;
  from: string | null;
  to: string | null;
}

type AtomDep = LockDep & { type: "atom" };

function atomsOf(lock: Lockfile | null): Map<string, AtomDep> {
  return new Map((lock?.deps ?? []).filter((d): d is AtomDep => d.type === "atom").map((d) => [d.id, d]));
}

/** The composer as a change names it: `<label> <version>, entry "<entry>"`, `nix, entry "<path>"`; null when static. */
function composerText(c: LockCompose): string | null {
  if (c.use === "static") return null;
  return c.use === "nix" ? `nix, entry ${JSON.stringify(c.entry)}` : `${c.label} ${c.version}, entry ${JSON.stringify(c.entry)}`;
}

function sameComposer(a: LockCompose, b: LockCompose): boolean {
  if (a.use === "static" || b.use === "static") return a.use === b.use;
  if (a.use === "nix" || b.use === "nix") return a.use === b.use && a.entry === b.entry;
  return a.entry === b.entry && a.id === b.id && a.version === b.version && a.rev === b.rev && a.mirror === b.mirror;
}

const STATIC: LockCompose = { use: "static" };

/**
 * Atoms added, removed or moved between two locks, sorted by label; then the composer when it was added, removed or
 * changed (another atom, version, rev or entry); then [locker] when it was added.
 */
export function lockChanges(before: Lockfile | null, after: Lockfile | null): LockChange[] {
  const a = atomsOf(before);
  const b = atomsOf(after);
  const out: LockChange[] = [];
  for (const [id, d] of b) {
    const old = a.get(id);
    if (!old || old.version !== d.version || old.rev !== d.rev) out.push({ kind: "atom", label: d.label, id, from: old?.version ?? null, to: d.version });
  }
  for (const [id, d] of a) if (!b.has(id)) out.push({ kind: "atom", label: d.label, id, from: d.version, to: null });
  out.sort((x, y) => (x.label < y.label ? -1 : x.label > y.label ? 1 : 0));
  const oc = before?.compose ?? STATIC;
  const nc = after?.compose ?? STATIC;
  if (!sameComposer(oc, nc)) {
    // A composer atom is "the composer"; a trivial or static atom's [compose] is named as such.
    const label = nc.use === "atom" || oc.use === "atom" ? "composer" : "[compose]";
    out.push({ kind: "compose", label, id: nc.use === "atom" ? nc.id : oc.use === "atom" ? oc.id : null, from: composerText(oc), to: composerText(nc) });
  }
  if (before && !before.locker && after?.locker) out.push({ kind: "locker", label: "locker", id: after.locker.id, from: null, to: `${after.locker.label} ${after.locker.version}` });
  return out;
}

/** "2 changes"; naming the composer and locker: "1 change: the composer", "3 changes: 2 atoms and the composer". */
function changesText(changes: readonly LockChange[]): string {
  const n = `${changes.length} change${changes.length === 1 ? "" : "s"}`;
  const others = changes.filter((c) => c.kind !== "atom").map((c) => (c.label.startsWith("[") ? c.label : `the ${c.label}`));
  if (others.length === 0) return n;
  const atoms = changes.length - others.length;
  const parts = [...(atoms > 0 ? [`${atoms} atom${atoms === 1 ? "" : "s"}`] : []), ...others];
  return `${n}: ${parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]!}`}`;
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
      ctx.term.info(`wrote atom.lock (${n} atom${n === 1 ? "" : "s"}, ${changesText(changes)})`);
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
($XDG_CACHE_HOME/cpr). Listings are cached for the configured TTL, manifests forever. When resolution fails and a
listing came from the cache, those sets are listed again and resolution retried, so a version published within the
TTL is seen at once (never with --offline, whose error then says the cached listing may be stale).

A new lock names the configured locker ([locker] in the config, see \`cpr config --help\`), by default nix-lock
0.1.6 at its published rev, with no network; an existing lock's [locker] is kept.

Prints what changed: atoms added (+), removed (-) or moved (~), and the composer ([compose]) when it was added,
removed or changed version or entry; the summary counts them all ("1 change: the composer").

Options:
  --locked    Fail (exit 1), writing nothing, if atom.lock would change
  --offline   Resolve from the cache alone; fail naming what is missing
  --json      Print {"status","changes","atoms","network"} on stdout; each change is
              {"kind":"atom"|"compose"|"locker","label","id","from","to"}

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
