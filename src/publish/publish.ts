import { atomCommitBody, atomCommitId, parseAtomCommit } from "../protocol/commit.js";
import { CprError } from "../protocol/errors.js";
import { atomId } from "../protocol/id.js";
import { atomRef, isValidRefName, manifestRef, originRef, type ListedAtom } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import type { GitObject, PushOutcome, RefUpdate, Repo } from "../git/repo.js";
import { refConflictError } from "../git/repo.js";
import type { ResolvedRemote } from "../git/remote.js";
import { readSourceAtoms, type SourceAtom } from "./atoms.js";
import { listRemoteSet, type RemoteSet } from "./list.js";
import { setRoot } from "./root.js";
import { selectAtoms } from "./select.js";

/**
 * `publish` (spec §8, §13): every check runs before anything is written; then the atom commits are written in one
 * `hash-object`, the local refs in one `update-ref` transaction, and all refs of all atoms go to each remote in one
 * atomic push. A run is all-or-nothing: if any requested atom is refused, nothing is written for any of them.
 */

export interface PublishOptions {
  readonly repo: Repo;
  /** Directory that relative PATH arguments (and the default "atom containing cwd") are taken from. */
  readonly cwd: string;
  /** PATH or LABEL arguments. */
  readonly targets: readonly string[];
  readonly all: boolean;
  /** At least one remote. */
  readonly remotes: readonly ResolvedRemote[];
  /** Revision to publish (default `HEAD`). */
  readonly rev?: string;
  readonly dryRun?: boolean;
  readonly reporter: Reporter;
  readonly env?: NodeJS.ProcessEnv;
}

/** A published or skipped atom. `rev` is the atom commit (for a skipped one: the commit already on the remote). */
export interface AtomOutcome {
  readonly label: string;
  readonly version: string;
  readonly id: string;
  readonly rev: string;
}

export interface FailedAtom {
  readonly label: string;
  readonly version: string;
  readonly error: string;
}

export interface PublishResult {
  readonly root: string;
  /** The source commit. */
  readonly commit: string;
  readonly dryRun: boolean;
  /**
   * With several remotes, an atom is `failed` if it failed on any of them, else `published` if it was pushed to at
   * least one, else `skipped`. Each list is sorted by label (UTF-8 byte order).
   */
  readonly published: readonly AtomOutcome[];
  readonly skipped: readonly AtomOutcome[];
  readonly failed: readonly FailedAtom[];
}

/** One selected atom with its computed commit and refs. */
interface Planned {
  readonly atom: SourceAtom;
  readonly version: string;
  readonly id: string;
  readonly commit: string;
  readonly body: Buffer;
  /** atom ref → commit, manifest ref → atom.toml blob, origin ref → source commit. */
  readonly refs: readonly RefUpdate[];
}

type Decision = { readonly kind: "publish" } | { readonly kind: "skip"; readonly rev: string } | { readonly kind: "refuse"; readonly error: string };

/** Publish atoms. Run-level problems (root, remotes, manifests, selection) throw CprErrors; per-atom ones are `failed`. */
export async function publish(opts: PublishOptions): Promise<PublishResult> {
  const { repo, reporter } = opts;
  const commit = await repo.resolveCommit(opts.rev ?? "HEAD");
  const root = await setRoot(repo, commit, reporter);
  const source = await readSourceAtoms(repo, commit, reporter);
  const selected = selectAtoms(source, { targets: opts.targets, all: opts.all, cwd: opts.cwd, repo, rev: opts.rev ?? "HEAD" }, reporter);
  const planned = selected.map((atom) => planAtom(atom, commit, root)).sort((a, b) => byteOrder(a.atom.label, b.atom.label));

  const sets = await Promise.all(opts.remotes.map((r) => listInitialized(r, root, planned, opts)));
  const decisions = await Promise.all(opts.remotes.map((r, i) => decideRemote(repo, r, sets[i]!, planned, opts)));
  await refuseLocalConflicts(repo, planned, decisions);

  const refused = planned.some((p) => decisions.some((d) => d.get(p)!.kind === "refuse"));
  const toPublish = planned.filter((p) => decisions.some((d) => d.get(p)!.kind === "publish"));
  const base = { root, commit, dryRun: opts.dryRun ?? false };
  if (refused) return { ...base, ...refusedRun(planned, decisions, opts.remotes) };
  if (opts.dryRun || toPublish.length === 0) return { ...base, ...summarize(planned, decisions, new Map(), opts.remotes) };

  await repo.writeObjects("commit", toPublish.map((p) => p.body), toPublish.map((p) => p.commit));
  await repo.updateRefs(toPublish.flatMap((p) => p.refs));
  const pushes = new Map<number, PushOutcome>();
  await Promise.all(
    opts.remotes.map(async (remote, i) => {
      const refs = refsToPush(planned, decisions[i]!, sets[i]!);
      reporter.info(`pushing ${refs.length} refs to ${remote.display}`);
      pushes.set(i, await repo.push(remote.pushUrl, refs));
    }),
  );
  return { ...base, ...summarize(planned, decisions, pushes, opts.remotes) };
}

function planAtom(atom: SourceAtom, commit: string, root: string): Planned {
  const version = atom.version.text;
  const input = { tree: atom.tree, origin: commit, label: atom.label, version };
  const id = atomCommitId(input);
  return {
    atom,
    version,
    id: atomId(root, atom.label),
    commit: id,
    body: atomCommitBody(input),
    refs: [
      { ref: atomRef(atom.label, version), oid: id },
      { ref: manifestRef(atom.label, version), oid: atom.manifest },
      { ref: originRef(atom.label, version), oid: commit },
    ],
  };
}

/** List a remote and check it is an initialized set with our root (§8.2). */
async function listInitialized(remote: ResolvedRemote, root: string, planned: readonly Planned[], opts: PublishOptions): Promise<RemoteSet> {
  const labels = planned.map((p) => p.atom.label);
  const set = await listRemoteSet(remote.url, labels, { env: opts.env, reporter: opts.reporter, cwd: opts.cwd });
  const remoteRoot = set.listing.root;
  if (remoteRoot === null) {
    throw new CprError("publish.not-initialized", `remote ${remote.display} is not an initialized atom set (it has no refs/ekala/init)`, {
      where: remote.display,
      hint: `run \`cpr init${remote.name === "origin" ? "" : ` --remote ${remote.display}`}\` first`,
    });
  }
  if (set.listing.rootIsTag) {
    throw new CprError("publish.root-tag", `refs/ekala/init on ${remote.display} is an annotated tag, which is not a valid set marker`, {
      where: remote.display,
      hint: "the marker must point directly at the root commit; fix it on the remote",
    });
  }
  if (remoteRoot !== root) {
    throw new CprError("publish.root-mismatch", `remote ${remote.display} belongs to another set: its root is ${remoteRoot}, but this history's root is ${root}`, {
      where: remote.display,
      hint: "publish to the remote of this history's set, or to a new remote initialized with `cpr init`",
    });
  }
  return set;
}

/** The immutability check (§8.5) for every planned atom on one remote. */
async function decideRemote(
  repo: Repo,
  remote: ResolvedRemote,
  set: RemoteSet,
  planned: readonly Planned[],
  opts: PublishOptions,
): Promise<Map<Planned, Decision>> {
  const listed = new Map(set.listing.atoms.filter((a) => a.format === "pre1").map((a) => [`${a.label}\0${a.version}`, a]));
  const decisions = new Map<Planned, Decision>();
  const present: { p: Planned; remote: ListedAtom }[] = [];
  for (const p of planned) {
    const invalid = p.refs.find((r) => !isValidRefName(r.ref));
    const onRemote = listed.get(`${p.atom.label}\0${p.version}`);
    if (invalid) decisions.set(p, { kind: "refuse", error: invalidRefError(p, invalid.ref) });
    else if (!onRemote) decisions.set(p, staleMetaDecision(p, set, remote) ?? { kind: "publish" });
    else if (onRemote.rev === p.commit) decisions.set(p, { kind: "skip", rev: p.commit });
    else present.push({ p, remote: onRemote });
  }
  const trees = await publishedTrees(repo, remote, present, opts.reporter);
  for (const { p, remote: r } of present) {
    const published = trees.get(r.rev);
    if (published === undefined) {
      decisions.set(p, { kind: "refuse", error: `cannot read ${r.rev}, the published commit of ${p.atom.label} ${p.version} on ${remote.display}, to compare its tree` });
    } else if (published.tree === p.atom.tree) {
      decisions.set(p, { kind: "skip", rev: r.rev });
    } else {
      const origin = r.origin ?? published.origin ?? "unknown";
      decisions.set(p, {
        kind: "refuse",
        error:
          `${p.atom.label} ${p.version} is already published on ${remote.display} with different content (rev ${r.rev}, origin ${origin}); ` +
          `a published version is never replaced: bump [package].version in ${p.atom.path}/atom.toml`,
      });
    }
  }
  return decisions;
}

function invalidRefError(p: Planned, ref: string): string {
  return `version '${p.version}' of ${p.atom.label} gives an invalid ref name '${ref}' (e.g. a component ending in '.lock'); choose another version in ${p.atom.path}/atom.toml`;
}

/** A remote meta ref of an unpublished version that holds another value would make the atomic push fail: refuse. */
function staleMetaDecision(p: Planned, set: RemoteSet, remote: ResolvedRemote): Decision | null {
  const stale = p.refs.find((r) => set.refs.has(r.ref) && set.refs.get(r.ref) !== r.oid);
  if (!stale) return null;
  return {
    kind: "refuse",
    error: `${remote.display} already has ${stale.ref} = ${set.refs.get(stale.ref)} (expected ${stale.oid}) without its atom ref; remove the stale ref on the remote or bump the version`,
  };
}

/**
 * Trees of published atom commits, keyed by rev: from the local object store; else rebuilt from the remote's origin
 * ref when that origin is local (the commit id proves the tree); else fetched into a quarantine (one fetch for all,
 * nothing kept, so a dry run may do it too). Absent when unreadable.
 */
async function publishedTrees(
  repo: Repo,
  remote: ResolvedRemote,
  items: readonly { p: Planned; remote: ListedAtom }[],
  reporter: Reporter,
): Promise<Map<string, { tree: string; origin: string | null }>> {
  const found = new Map<string, { tree: string; origin: string | null }>();
  const record = (o: GitObject | null) => {
    if (o?.type !== "commit") return;
    const parsed = parseAtomCommit(o.data);
    found.set(o.oid, { tree: parsed.tree, origin: parsed.origin });
  };
  (await repo.readObjects(items.map((i) => i.remote.rev))).forEach(record);
  let missing = items.filter((i) => !found.has(i.remote.rev));
  await Promise.all(missing.map((i) => rebuildFromOrigin(repo, i.p, i.remote).then((t) => t && found.set(i.remote.rev, t))));
  missing = missing.filter((i) => !found.has(i.remote.rev));
  if (missing.length === 0) return found;
  reporter.info(`fetching ${missing.length} published atom commit(s) from ${remote.display} to compare trees`);
  const fetched = await repo.fetchObjects(remote.url.url, missing.map((i) => atomRef(i.p.atom.label, i.p.version)), missing.map((i) => i.remote.rev));
  fetched.forEach(record);
  return found;
}

/** The published commit's tree, if it is the pre1 commit of (origin:path, origin, label, version). */
async function rebuildFromOrigin(repo: Repo, p: Planned, listed: ListedAtom): Promise<{ tree: string; origin: string } | null> {
  if (!listed.origin) return null;
  const tree = await repo.readObject(`${listed.origin}:${p.atom.path}`);
  if (tree?.type !== "tree") return null;
  const rebuilt = atomCommitId({ tree: tree.oid, origin: listed.origin, label: p.atom.label, version: p.version });
  return rebuilt === listed.rev ? { tree: tree.oid, origin: listed.origin } : null;
}

/** §8.6: a local ref holding another value refuses the atom, before anything is written. */
async function refuseLocalConflicts(repo: Repo, planned: readonly Planned[], decisions: Map<Planned, Decision>[]): Promise<void> {
  const toPublish = planned.filter((p) => decisions.some((d) => d.get(p)!.kind === "publish"));
  const { conflicts } = await repo.planRefUpdates(toPublish.flatMap((p) => p.refs));
  const byRef = new Map(conflicts.map((c) => [c.ref, c]));
  for (const p of toPublish) {
    const conflict = p.refs.map((r) => byRef.get(r.ref)).find((c) => c !== undefined);
    if (!conflict) continue;
    const error = refConflictError(conflict);
    for (const d of decisions) if (d.get(p)!.kind === "publish") d.set(p, { kind: "refuse", error: `${error.message}; ${error.hint}` });
  }
}

/** Refs of one remote's publishes that the remote does not already hold. */
function refsToPush(planned: readonly Planned[], decisions: Map<Planned, Decision>, set: RemoteSet): RefUpdate[] {
  return planned.filter((p) => decisions.get(p)!.kind === "publish").flatMap((p) => p.refs.filter((r) => set.refs.get(r.ref) !== r.oid));
}

function refusedRun(planned: readonly Planned[], decisions: Map<Planned, Decision>[], remotes: readonly ResolvedRemote[]): Pick<PublishResult, "published" | "skipped" | "failed"> {
  const failed: FailedAtom[] = planned.map((p) => {
    const errors = refusals(p, decisions, remotes);
    return {
      label: p.atom.label,
      version: p.version,
      error: errors.length ? errors.join("; ") : "not published: other atoms of this run were refused, and a run is all-or-nothing",
    };
  });
  return { published: [], skipped: [], failed };
}

function refusals(p: Planned, decisions: Map<Planned, Decision>[], remotes: readonly ResolvedRemote[]): string[] {
  const errors = new Set<string>();
  decisions.forEach((d, i) => {
    const decision = d.get(p)!;
    if (decision.kind === "refuse") errors.add(remotes.length > 1 && !decision.error.includes(remotes[i]!.display) ? `${remotes[i]!.display}: ${decision.error}` : decision.error);
  });
  return [...errors];
}

function summarize(
  planned: readonly Planned[],
  decisions: Map<Planned, Decision>[],
  pushes: ReadonlyMap<number, PushOutcome>,
  remotes: readonly ResolvedRemote[],
): Pick<PublishResult, "published" | "skipped" | "failed"> {
  const published: AtomOutcome[] = [];
  const skipped: AtomOutcome[] = [];
  const failed: FailedAtom[] = [];
  for (const p of planned) {
    const errors: string[] = [];
    let pushed = false;
    let skippedRev: string | null = null;
    decisions.forEach((d, i) => {
      const decision = d.get(p)!;
      if (decision.kind === "skip") skippedRev ??= decision.rev;
      if (decision.kind !== "publish") return;
      const outcome = pushes.get(i);
      const error = outcome ? pushError(outcome, p, remotes[i]!) : null;
      if (error) errors.push(error);
      else pushed = true;
    });
    const base = { label: p.atom.label, version: p.version, id: p.id };
    if (errors.length) failed.push({ label: p.atom.label, version: p.version, error: errors.join("; ") });
    else if (pushed) published.push({ ...base, rev: p.commit });
    else skipped.push({ ...base, rev: skippedRev ?? p.commit });
  }
  return { published, skipped, failed };
}

/** Why an atom's refs did not land, or null when they did. */
function pushError(outcome: PushOutcome, p: Planned, remote: ResolvedRemote): string | null {
  if (outcome.ok) return null;
  const own = new Set(p.refs.map((r) => r.ref));
  const bad = outcome.refs.filter((r) => r.status !== "new" && r.status !== "updated" && r.status !== "up-to-date");
  const cause = bad.find((r) => own.has(r.ref) && r.reason !== "atomic push failed") ?? bad.find((r) => r.reason !== "atomic push failed");
  const detail = cause ? `${cause.ref} ${cause.summary}` : (outcome.error ?? "git push failed");
  return `push to ${remote.display} failed (atomic: nothing was pushed): ${detail}`;
}

/** Compare strings by their UTF-8 bytes. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
