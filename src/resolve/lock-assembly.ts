/**
 * Lock assembly: a PubGrub solution turned into the new lock (docs/formats.md §11). Atom entries for every resolved
 * atom, sets, the composer, direct Nix entries (kept when they still match, else prefetched), and the locker (kept,
 * else the configured one: by default docs/formats.md §11.9's nix-lock 0.1.6 at its published rev, with no network;
 * a configured locker without a rev has it listed from its mirror).
 */
import { CprError } from "../protocol/errors.js";
import {
  lockerEntry,
  sortMirrors,
  type LockAtom,
  type LockCompose,
  type LockDep,
  type LockDirectDep,
  type LockerSpec,
  type LockSet,
  type Lockfile,
} from "../protocol/lock.js";
import { directMatches, directUrl, localVersionText, type LockedVersionOf } from "../protocol/lock-check.js";
import type { DirectNixDep } from "../protocol/atom-manifest.js";
import type { Reporter } from "../protocol/report.js";
import type { Version } from "../protocol/version.js";
import { ROOT_PKG } from "./graph.js";
import type { SetListing } from "./mirrors.js";
import { cachedAtomId, type GitProvider, type ResolveOptions } from "./provider.js";
import type { Project } from "./project.js";

/** The lock of a solution of `provider`'s project (nothing is written here). */
export async function assembleLock(
  provider: GitProvider,
  solution: { versions: ReadonlyMap<string, Version> },
  opts: ResolveOptions,
  lockerSpec: LockerSpec,
): Promise<Lockfile> {
  const project = provider.project;
  const deps: LockDep[] = [];
  const usedRoots = new Set<string>();
  // The composer is locked in [compose]; in [[deps]] too only when the project or another atom depends on it.
  const c = project.manifest.compose;
  let composerInDeps = c?.kind === "with" && Object.hasOwn(project.manifest.depsFrom[c.from] ?? {}, c.label);
  for (const [pkg, version] of solution.versions) {
    if (pkg === ROOT_PKG || composerInDeps) continue;
    if ((await provider.depsWithReqs(pkg, version)).has(provider.composerId ?? "")) composerInDeps = true;
  }
  for (const [pkg, version] of solution.versions) {
    if (pkg === ROOT_PKG) continue;
    if (pkg === provider.composerId && !composerInDeps) continue;
    const info = provider.pkgs.get(pkg)!;
    const cand = await provider.candidate(pkg, version);
    usedRoots.add(info.root);
    const atom: LockAtom = cand.local
      ? { label: info.label, version: localVersionText(version), set: info.root, rev: null, mirror: null, id: pkg }
      : {
          label: info.label,
          version: version.text,
          set: info.root,
          rev: cand.atom!.rev,
          mirror: firstUrlMirror(cand.atom!.mirrors),
          id: pkg,
        };
    deps.push({ type: "atom", ...atom });
    if (cand.atom?.manifest) provider.store.noteRev(cand.atom.rev, cand.atom.manifest);
  }
  const compose = await composeEntry(project, provider, solution);
  if (provider.composerId) usedRoots.add(provider.pkgs.get(provider.composerId)!.root);
  const lockedVersion = (tag: string, label: string): string | null => {
    const root = provider.tagRoots.get(tag);
    return root === undefined ? null : (solution.versions.get(cachedAtomId(root, label))?.text ?? null);
  };
  deps.push(...(await directEntries(project, opts, lockedVersion)));
  const sets: Record<string, LockSet> = {};
  for (const root of [...usedRoots].sort()) {
    const e = provider.setEntries.get(root);
    if (e) sets[root] = { tag: e.tag, mirrors: sortMirrors([...e.mirrors]) };
  }
  const locker = project.lock?.locker ?? (await lockerOf(provider, lockerSpec));
  return { version: 1, sets, locker, compose, deps };
}

function firstUrlMirror(mirrors: readonly string[]): string | null {
  return mirrors.find((m) => m !== "::") ?? null;
}

/** The composer's [compose] entry: the version the solver chose for it (docs/formats.md §11.4). */
async function composeEntry(
  project: Project,
  provider: GitProvider,
  solution: { versions: ReadonlyMap<string, Version> },
): Promise<LockCompose> {
  const c = project.manifest.compose;
  if (!c || c.kind === "static") return { use: "static" };
  if (c.kind === "nix") return { use: "nix", entry: c.path };
  const id = provider.composerId!;
  const version = solution.versions.get(id)!;
  const info = provider.pkgs.get(id)!;
  const cand = await provider.candidate(id, version);
  const atom: LockAtom = cand.local
    ? { label: info.label, version: localVersionText(version), set: info.root, rev: null, mirror: null, id }
    : { label: info.label, version: version.text, set: info.root, rev: cand.atom!.rev, mirror: firstUrlMirror(cand.atom!.mirrors), id };
  return { use: "atom", ...atom, entry: c.entry };
}

async function directEntries(project: Project, opts: ResolveOptions, lockedVersion: LockedVersionOf): Promise<LockDirectDep[]> {
  const old = (project.lock?.deps ?? []).filter((d): d is LockDirectDep => d.type !== "atom");
  const out: LockDirectDep[] = [];
  for (const d of project.manifest.directNix) {
    const url = directUrl(d, lockedVersion);
    const kept = old.find((e) => directMatches(d, e, url));
    if (kept && !(opts.update === true || (Array.isArray(opts.update) && opts.update.includes(d.name)))) {
      out.push(kept);
      continue;
    }
    if (opts.offline)
      throw new CprError("resolve.offline", `offline: the direct Nix dependency ${d.name} is not locked yet`, {
        hint: "run without --offline",
      });
    out.push(await prefetchEntry(d, project.dir, opts, url));
  }
  return out;
}

export async function prefetchEntry(
  d: DirectNixDep,
  cwd: string,
  opts: { env: NodeJS.ProcessEnv; reporter: Reporter },
  url: string = d.url,
): Promise<LockDirectDep> {
  const { prefetchDirect } = await import("../nix/prefetch.js");
  const popts = {
    cwd,
    env: opts.env,
    git: { env: opts.env, reporter: opts.reporter },
    ...(d.kind === "build" && d.unpack ? { unpack: true } : {}),
    ...(d.kind === "git" && d.ref !== null ? { ref: d.ref } : {}),
    ...(d.kind === "git" && d.requirement !== null ? { version: d.requirement.text } : {}),
  };
  const r = await prefetchDirect(d.kind, url, popts);
  switch (r.type) {
    case "nix":
      return { type: "nix", name: d.name, url, hash: r.hash! };
    case "nix+tar":
      return { type: "nix+tar", name: d.name, url, hash: r.hash! };
    case "nix+src":
      return { type: "nix+src", name: d.name, url, hash: r.hash!, unpack: r.unpack === true };
    case "nix+git":
      return { type: "nix+git", name: d.name, url, version: r.version ?? null, rev: r.rev! };
  }
}

/**
 * The [locker] of a new lock (docs/formats.md §11.9): the configured locker at its rev; without one (a configured label, version,
 * set or mirror), the rev of refs/eka/atoms/<label>/<version> as its mirror lists it. Never invented.
 */
async function lockerOf(provider: GitProvider, spec: LockerSpec): Promise<LockAtom> {
  if (spec.rev !== null) return lockerEntry({ ...spec, rev: spec.rev });
  const ref = `refs/eka/atoms/${spec.label}/${spec.version}`;
  const set = provider.remoteSet([spec.mirror]);
  const where = set.display(spec.mirror);
  const hint = `set locker.rev (CPR_LOCKER_REV) to the commit id of ${ref}, or locker.mirror (CPR_LOCKER_MIRROR) to a mirror that has it; \`cpr config list\` shows the locker configured`;
  let listing: SetListing;
  try {
    listing = await set.list(spec.label, spec.version);
  } catch (e) {
    throw new CprError(
      "resolve.locker",
      `cannot write a lock: the locker's rev (${ref}) could not be listed from ${where}: ${e instanceof Error ? e.message : String(e)}`,
      { where, hint, cause: e },
    );
  }
  if (listing.root !== spec.set) {
    throw new CprError(
      "resolve.locker",
      `cannot write a lock: the locker's mirror ${where} is the set with root ${listing.root}, not locker.set ${spec.set}`,
      {
        where,
        hint: "set locker.set to the root of the locker's set, or locker.mirror to a mirror of that set",
      },
    );
  }
  const a = listing.atoms.find((x) => x.version === spec.version);
  if (!a) throw new CprError("resolve.locker", `cannot write a lock: the locker's mirror ${where} has no ${ref}`, { where, hint });
  return lockerEntry({ ...spec, rev: a.rev });
}
