import { atomCommitBody, atomCommitId, parseAtomCommit } from "../protocol/commit.js";
import { gitObjectId, objectFormatOf } from "../protocol/git-object.js";
import { CprError } from "../protocol/errors.js";
import { atomIdsOf } from "../protocol/id.js";
import { unevaluable } from "../protocol/lock-check.js";
import { atomRef, compareUtf8, isValidRefName, manifestRef, originRef, type ListedAtom } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";
import type { GitObject, PushOutcome, RefUpdate, Repo } from "../git/repo.js";
import { refConflictError } from "../git/repo.js";
import type { ResolvedRemote } from "../git/remote.js";
import { readSourceAtoms, type SourceAtom } from "./atoms.js";
import { listRemoteSet, type RemoteSet } from "../git/remote-set.js";
import { setRoot } from "../git/root.js";
import { selectAtoms } from "./select.js";

/**
 * `publish` (docs/formats.md §9, §14): every check runs before anything is written; then the atom commits are written in one
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
  /** Extra refs (signature tags, see sign.ts) for the versions being published, written and pushed with theirs. */
  readonly sign?: (atoms: readonly { label: string; version: string; commit: string }[]) => Promise<readonly RefUpdate[]>;
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

/** One selected atom with the commit and refs it will be published as. */
interface Planned {
  readonly atom: SourceAtom;
  readonly version: string;
  readonly id: string;
  /** The atom commit: computed from this run's origin, or an existing commit of the same tree (adopted). */
  readonly commit: string;
  /** Bytes of the computed commit; null for an adopted one, which already exists. */
  readonly body: Buffer | null;
  /** atom ref → commit, manifest ref → atom.toml blob, origin ref → the commit's origin. */
  readonly refs: readonly RefUpdate[];
  /** The remote to fetch an adopted commit (and its origin) from, when they are not local. */
  readonly fetchFrom: ResolvedRemote | null;
}

/** What to do with one atom on one remote. A skip carries the published commit and its origin. */
type Decision =
  | { readonly kind: "publish" }
  | { readonly kind: "skip"; readonly rev: string; readonly origin: string | null }
  | { readonly kind: "refuse"; readonly error: string; /** The same on every remote (about the atom itself). */ readonly local?: true };

/** decisions[remote][atom], atoms in `planned` order. */
type Decisions = Decision[][];

/** Publish atoms. Run-level problems (root, remotes, manifests, selection) throw CprErrors; per-atom ones are `failed`. */
export async function publish(opts: PublishOptions): Promise<PublishResult> {
  const { repo, reporter, remotes } = opts;
  const commit = await repo.resolveCommit(opts.rev ?? "HEAD");
  // The steps below mostly wait on git, so independent ones overlap: the root walk with the manifest reads and,
  // under --all, the remote listings too (they then list the whole atom namespace, which needs no label). Each is
  // awaited in the original order, so the first error reported is still the same one.
  const early = opts.all ? remotes.map((r) => started(listRemoteSet(r.url, undefined, listOptions(opts)))) : null;
  const [root, source] = await both(setRoot(repo, commit, reporter), readSourceAtoms(repo, commit, reporter));
  const selected = selectAtoms(source, { targets: opts.targets, all: opts.all, cwd: opts.cwd, repo, rev: opts.rev ?? "HEAD" }, reporter);
  const idOf = atomIdsOf(root);
  const computed = selected.map((atom) => planAtom(atom, commit, idOf)).sort((a, b) => byteOrder(a.atom.label, b.atom.label));

  const labels = computed.map((p) => p.atom.label);
  const listings = remotes.map((r, i) => early?.[i] ?? listRemoteSet(r.url, labels, listOptions(opts)));
  const sets = await Promise.all(remotes.map((r, i) => listInitialized(r, root, listings[i]!)));
  const decisions = await Promise.all(remotes.map((r, i) => decideRemote(repo, r, sets[i]!, computed, reporter)));
  const planned = await adoptExisting(repo, computed, decisions, remotes);
  await refuseUnevaluable(repo, planned, decisions);
  await refuseLocalConflicts(repo, planned, decisions);

  const base = { root, commit, dryRun: opts.dryRun ?? false };
  const publishing = (i: number) => decisions.some((d) => d[i]!.kind === "publish");
  const toPublish = planned.filter((_, i) => publishing(i));
  if (decisions.some((d) => d.some((x) => x.kind === "refuse"))) return { ...base, ...refusedRun(planned, decisions, remotes) };
  if (opts.dryRun || toPublish.length === 0) return { ...base, ...summarize(planned, decisions, [], remotes) };

  await fetchAdopted(repo, toPublish);
  const written = toPublish.filter((p) => p.body !== null);
  await repo.writeObjects(
    "commit",
    written.map((p) => p.body!),
    written.map((p) => p.commit),
  );
  const signed = opts.sign ? await opts.sign(toPublish.map((p) => ({ label: p.atom.label, version: p.version, commit: p.commit }))) : [];
  const extra = (p: Planned) => signed.filter((u) => u.ref.startsWith(`${p.refs[1]!.ref.slice(0, -"manifest".length)}`));
  await repo.updateRefs([...toPublish.flatMap((p) => p.refs), ...signed]);
  const pushes = await Promise.all(
    remotes.map((remote, r) => {
      const refs = planned
        .filter((_, i) => decisions[r]![i]!.kind === "publish")
        .flatMap((p) => [...p.refs, ...extra(p)].filter((u) => sets[r]!.refs.get(u.ref) !== u.oid));
      reporter.info(`pushing ${refs.length} refs to ${remote.display}`);
      return repo.push(remote.pushUrl, refs);
    }),
  );
  return { ...base, ...summarize(planned, decisions, pushes, remotes) };
}

/**
 * Both values once both promises have settled (nothing is left running on the repository), or the error of the
 * first one that failed, in argument order rather than in time order.
 */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  await Promise.allSettled([a, b]);
  return [await a, await b];
}

/** Mark a promise that is awaited later as handled, so that a rejection meanwhile is not an unhandled one. */
function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

function listOptions(opts: PublishOptions) {
  return { env: opts.env, reporter: opts.reporter, cwd: opts.cwd };
}

/**
 * `idOf` gives AtomIds under this run's root. The commit, its bytes and its refs are computed on first use: in a
 * run after the first, most atoms are skipped (proven by the listed origin) without ever needing them.
 */
function planAtom(atom: SourceAtom, origin: string, idOf: (label: string) => string): Planned {
  const version = atom.version.text;
  let made: { commit: string; body: Buffer; refs: RefUpdate[] } | undefined;
  const make = () => {
    if (made) return made;
    const body = atomCommitBody({ tree: atom.tree, origin, label: atom.label, version });
    const commit = gitObjectId("commit", body, objectFormatOf(atom.tree));
    return (made = { commit, body, refs: atomRefs(atom, version, commit, origin) });
  };
  return {
    atom,
    version,
    id: idOf(atom.label),
    get commit() {
      return make().commit;
    },
    get body() {
      return make().body;
    },
    get refs() {
      return make().refs;
    },
    fetchFrom: null,
  };
}

function atomRefs(atom: SourceAtom, version: string, commit: string, origin: string): RefUpdate[] {
  return [
    { ref: atomRef(atom.label, version), oid: commit },
    { ref: manifestRef(atom.label, version), oid: atom.manifest },
    { ref: originRef(atom.label, version), oid: origin },
  ];
}

/** List a remote and check it is an initialized set with our root (docs/formats.md §9.2). */
async function listInitialized(remote: ResolvedRemote, root: string, listing: Promise<RemoteSet>): Promise<RemoteSet> {
  const set = await listing;
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
    throw new CprError(
      "publish.root-mismatch",
      `remote ${remote.display} belongs to another set: its root is ${remoteRoot}, but this history's root is ${root}`,
      {
        where: remote.display,
        hint: "publish to the remote of this history's set, or to a new remote initialized with `cpr init`",
      },
    );
  }
  return set;
}

/** The immutability check (docs/formats.md §9.5) for every planned atom on one remote. */
async function decideRemote(
  repo: Repo,
  remote: ResolvedRemote,
  set: RemoteSet,
  planned: readonly Planned[],
  reporter: Reporter,
): Promise<Decision[]> {
  const listed = new Map(set.listing.atoms.filter((a) => a.format === "pre1").map((a) => [`${a.label}\0${a.version}`, a]));
  const onRemote = planned.map((p) => listed.get(`${p.atom.label}\0${p.version}`));
  // Published as exactly this commit, or with this tree from the listed origin: a skip either way, with that origin.
  const same = planned.map((p, i) => {
    const r = onRemote[i];
    return r !== undefined && (sameTreeFromListedOrigin(p, r) || r.rev === p.commit);
  });
  const present = planned.flatMap((p, i) => (onRemote[i] && !same[i] ? [{ p, remote: onRemote[i] }] : []));
  const trees = await publishedTrees(repo, remote, present, reporter);
  return planned.map((p, i): Decision => {
    // The manifest and origin refs only add valid components to the atom ref: it is the one that can be invalid.
    const atomRefName = atomRef(p.atom.label, p.version);
    const r = onRemote[i];
    if (!isValidRefName(atomRefName)) return { kind: "refuse", error: invalidRefError(p, atomRefName) };
    if (!r) return staleMetaDecision(p, set, remote) ?? { kind: "publish" };
    if (same[i]) return { kind: "skip", rev: r.rev, origin: r.origin };
    const published = trees.get(r.rev);
    if (published === undefined) {
      return {
        kind: "refuse",
        error: `cannot read ${r.rev}, the published commit of ${p.atom.label} ${p.version} on ${remote.display}, to compare its tree`,
      };
    }
    if (published.tree === p.atom.tree) return { kind: "skip", rev: r.rev, origin: r.origin ?? published.origin };
    return {
      kind: "refuse",
      error:
        `${p.atom.label} ${p.version} is already published on ${remote.display} with different content (rev ${r.rev}, origin ${r.origin ?? published.origin ?? "unknown"}); ` +
        `a published version is never replaced: bump [package].version in ${p.atom.path}/atom.toml`,
    };
  });
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
  const fetched = await repo.fetchObjects(
    remote.url.url,
    missing.map((i) => atomRef(i.p.atom.label, i.p.version)),
    missing.map((i) => i.remote.rev),
  );
  fetched.forEach(record);
  return found;
}

/**
 * True when the listed rev is the pre1 commit of this atom's tree published from the listed origin: the usual skip
 * (the same tree, published from an earlier commit) needs no object, since the commit id proves the tree.
 */
function sameTreeFromListedOrigin(p: Planned, listed: ListedAtom): boolean {
  if (!listed.origin || listed.origin.length !== p.atom.tree.length) return false;
  return atomCommitId({ tree: p.atom.tree, origin: listed.origin, label: p.atom.label, version: p.version }) === listed.rev;
}

/** The published commit's tree, if it is the pre1 commit of (origin:path, origin, label, version). */
async function rebuildFromOrigin(repo: Repo, p: Planned, listed: ListedAtom): Promise<{ tree: string; origin: string } | null> {
  if (!listed.origin) return null;
  const tree = await repo.readObject(`${listed.origin}:${p.atom.path}`);
  if (tree?.type !== "tree") return null;
  const rebuilt = atomCommitId({ tree: tree.oid, origin: listed.origin, label: p.atom.label, version: p.version });
  return rebuilt === listed.rev ? { tree: tree.oid, origin: listed.origin } : null;
}

/**
 * Mirrors must agree on a version's commit (docs/formats.md §10.6). An atom to publish whose version already exists with the same
 * tree, on another remote of this run or as the local atom ref (an earlier publish to another mirror), is published
 * as that existing commit with its origin, not as a new commit from this run's origin.
 */
async function adoptExisting(
  repo: Repo,
  planned: readonly Planned[],
  decisions: Decisions,
  remotes: readonly ResolvedRemote[],
): Promise<Planned[]> {
  const publishing = planned.filter((_, i) => decisions.some((d) => d[i]!.kind === "publish"));
  const local = await repo.refValues(publishing.map((p) => p.refs[0]!.ref));
  const localRevs = [...new Set(publishing.map((p) => local.get(p.refs[0]!.ref)).filter((r): r is string => r !== undefined))];
  const localCommits = new Map(
    (await repo.readObjects(localRevs)).flatMap((o) => (o?.type === "commit" ? [[o.oid, parseAtomCommit(o.data)] as const] : [])),
  );
  return planned.map((p, i) => {
    if (!decisions.some((d) => d[i]!.kind === "publish")) return p;
    const skipOn = decisions.findIndex((d) => d[i]!.kind === "skip");
    const skip = skipOn >= 0 ? decisions[skipOn]![i]! : null;
    if (skip?.kind === "skip" && skip.rev !== p.commit && skip.origin) return adopt(p, skip.rev, skip.origin, remotes[skipOn]!);
    const rev = local.get(p.refs[0]!.ref);
    const existing = rev === undefined ? undefined : localCommits.get(rev);
    if (rev !== p.commit && existing?.tree === p.atom.tree && existing.origin) return adopt(p, rev!, existing.origin, null);
    return p;
  });
}

function adopt(p: Planned, rev: string, origin: string, from: ResolvedRemote | null): Planned {
  return { ...p, commit: rev, body: null, refs: atomRefs(p.atom, p.version, rev, origin), fetchFrom: from };
}

/** Bring adopted commits (and their origins) that exist only on another remote into the repository, to push them. */
async function fetchAdopted(repo: Repo, toPublish: readonly Planned[]): Promise<void> {
  const adopted = toPublish.filter((p) => p.fetchFrom !== null);
  const have = await repo.existing(adopted.flatMap((p) => [p.commit, p.refs[2]!.oid]));
  const byRemote = new Map<ResolvedRemote, Planned[]>();
  for (const p of adopted.filter((p) => !have.has(p.commit) || !have.has(p.refs[2]!.oid))) {
    byRemote.set(p.fetchFrom!, [...(byRemote.get(p.fetchFrom!) ?? []), p]);
  }
  for (const [remote, ps] of byRemote) {
    await repo.fetch(
      remote.url.url,
      ps.flatMap((p) => [atomRef(p.atom.label, p.version), originRef(p.atom.label, p.version)]),
    );
  }
}

/**
 * docs/formats.md §12: a consumer evaluates an atom from its published tree with its own atom.lock, so an atom to publish whose
 * `[compose]` is not static needs, in the commit, an atom.lock that satisfies its manifest with every atom fetchable
 * (src/protocol/lock-check.ts, the check `cpr resolve` uses). Only atoms being published are read: a skipped one
 * writes nothing (`cpr verify` reports published atoms without a lock).
 */
async function refuseUnevaluable(repo: Repo, planned: readonly Planned[], decisions: Decisions): Promise<void> {
  const todo = planned.map((p, i) => ({ p, i })).filter(({ i }) => decisions.some((d) => d[i]!.kind === "publish"));
  const withLock = todo.filter(({ p }) => p.atom.lock !== null && p.atom.lock.mode !== "120000");
  const blobs = await repo.readObjects(withLock.map(({ p }) => p.atom.lock!.oid));
  const lockText = new Map(withLock.map(({ p }, k) => [p, blobs[k]?.type === "blob" ? blobs[k].data.toString("utf8") : null]));
  for (const { p, i } of todo) {
    const file = `${p.atom.path}/atom.toml`;
    const lockFile = `${p.atom.path}/atom.lock`;
    const problem = unevaluable(p.atom.manifestText, lockText.get(p) ?? null, file, lockFile);
    if (!problem) continue;
    const symlink = p.atom.lock?.mode === "120000" ? " (the atom.lock there is a symlink, which a published tree cannot follow)" : "";
    const fix =
      problem.kind === "manifest"
        ? `fix ${file} so that \`cpr resolve\` accepts it, run \`cpr resolve\` in ${p.atom.path}, then commit atom.toml and atom.lock`
        : problem.mismatches.some((m) => m.kind === "local")
          ? `publish the local-only atoms first, add a URL mirror of their set to [package.sets], then run \`cpr resolve\` in ${p.atom.path} and commit atom.lock`
          : `run \`cpr resolve\` in ${p.atom.path}, then commit atom.lock`;
    const error = `cannot publish ${p.atom.label} ${p.version}: ${problem.message}${symlink} (docs/formats.md §12: every atom is evaluated from its own published tree and lock); ${fix}`;
    for (const d of decisions) if (d[i]!.kind === "publish") d[i] = { kind: "refuse", error, local: true };
  }
}

/** docs/formats.md §9.6: a local ref holding another value refuses the atom, before anything is written. */
async function refuseLocalConflicts(repo: Repo, planned: readonly Planned[], decisions: Decisions): Promise<void> {
  const isPublishing = planned.map((_, i) => decisions.some((d) => d[i]!.kind === "publish"));
  const publishing = planned.filter((_, i) => isPublishing[i]);
  const { conflicts } = await repo.planRefUpdates(publishing.flatMap((p) => p.refs));
  const byRef = new Map(conflicts.map((c) => [c.ref, c]));
  planned.forEach((p, i) => {
    if (!isPublishing[i]) return;
    const conflict = p.refs.map((r) => byRef.get(r.ref)).find((c) => c !== undefined);
    if (!conflict) return;
    const error = refConflictError(conflict);
    for (const d of decisions) if (d[i]!.kind === "publish") d[i] = { kind: "refuse", error: `${error.message}; ${error.hint}` };
  });
}

/** A refused run writes nothing: every atom is failed, with its own refusal or as collateral. */
function refusedRun(
  planned: readonly Planned[],
  decisions: Decisions,
  remotes: readonly ResolvedRemote[],
): Pick<PublishResult, "published" | "skipped" | "failed"> {
  const failed = planned.map((p, i): FailedAtom => {
    const errors = new Set<string>();
    decisions.forEach((d, r) => {
      const x = d[i]!;
      if (x.kind !== "refuse") return;
      const display = remotes[r]!.display;
      errors.add(remotes.length > 1 && !x.local && !x.error.includes(display) ? `${display}: ${x.error}` : x.error);
    });
    const error = errors.size ? [...errors].join("; ") : "not published: other atoms of this run were refused, and a run is all-or-nothing";
    return { label: p.atom.label, version: p.version, error };
  });
  return { published: [], skipped: [], failed };
}

/** Outcomes per atom, over all remotes (`pushes[r]` is absent in a dry run). */
function summarize(
  planned: readonly Planned[],
  decisions: Decisions,
  pushes: readonly PushOutcome[],
  remotes: readonly ResolvedRemote[],
): Pick<PublishResult, "published" | "skipped" | "failed"> {
  const published: AtomOutcome[] = [];
  const skipped: AtomOutcome[] = [];
  const failed: FailedAtom[] = [];
  planned.forEach((p, i) => {
    const errors: string[] = [];
    let pushed = false;
    let skippedRev: string | null = null;
    decisions.forEach((d, r) => {
      const x = d[i]!;
      if (x.kind === "skip") skippedRev ??= x.rev;
      if (x.kind !== "publish") return;
      const error = pushes[r] ? pushError(pushes[r], p, remotes[r]!) : null;
      if (error) errors.push(error);
      else pushed = true;
    });
    const base = { label: p.atom.label, version: p.version, id: p.id };
    if (errors.length) failed.push({ label: p.atom.label, version: p.version, error: errors.join("; ") });
    else if (pushed) published.push({ ...base, rev: p.commit });
    else skipped.push({ ...base, rev: skippedRev ?? p.commit });
  });
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
export const byteOrder: (a: string, b: string) => number = compareUtf8;
