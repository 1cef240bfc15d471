import { CprError } from "./errors.js";
import { atomIdsOf } from "./id.js";
import { parseLock, sortMirrors, type LockDep, type LockDirectDep, type Lockfile } from "./lock.js";
import { parseAtomManifest, type AtomManifest, type DirectNixDep } from "./atom-manifest.js";
import { substituteVersion } from "./uri.js";
import { matches } from "./requirement.js";
import { makeVersion, parseVersion, type Version } from "./version.js";

/**
 * Does a lock satisfy its manifest (docs/formats.md §11, §14)? One check, pure, for everything that asks:
 * - `cpr resolve` leaves a satisfying lock alone without a connection (`lockSatisfies` adds the one check that
 *   needs the graph recorded beside the lock, which src/resolve/lock-project.ts reads from the cache: every locked
 *   atom still reachable);
 * - `cpr publish` refuses an atom whose tree would not evaluate: composed (not static) without a satisfying lock,
 *   or with a dependency locked local-only (`unevaluable`);
 * - `cpr verify` reports published atoms that `unevaluable` finds.
 */

/** A local candidate version is written `<v>-local` (or `<v>.local` after an existing pre-release), §10. */
export function localVersionText(v: Version): string {
  return v.prerelease.length === 0 ? `${v.text.split("+")[0]}-local` : `${v.text.split("+")[0]}.local`;
}

/** The plain version of a lock version that may carry the `local` marker. */
export function unlocal(text: string): { version: Version; local: boolean } {
  const v = parseVersion(text);
  const pre = v.prerelease;
  if (pre.length > 0 && pre[pre.length - 1] === "local") {
    return { version: makeVersion(v.major, v.minor, v.patch, pre.slice(0, -1)), local: true };
  }
  return { version: v, local: false };
}

/** The locked version of the atom `[deps.from.<tag>]` `<label>` of the project, or null. */
export type LockedVersionOf = (tag: string, label: string) => string | null;

/**
 * The URL a direct Nix dependency is fetched from and locked with: with `from_version`, its `__VERSION__` replaced
 * (in the path only) by the locked version of the named atom (docs/formats.md §6.1).
 */
export function directUrl(d: DirectNixDep, lockedVersion: LockedVersionOf): string {
  if (!d.fromVersion) return d.url;
  const [tag, label] = d.fromVersion;
  const v = lockedVersion(tag, label);
  if (v === null)
    throw new CprError("resolve.from-version", `${d.name}: from_version names ${tag}.${label}, which was not locked`, {
      hint: `add ${label} under [deps.from.${tag}]`,
    });
  return substituteVersion(d.url, v);
}

/** Does a lock entry still describe a manifest's direct Nix dependency (fetched from `url`)? */
export function directMatches(d: DirectNixDep, e: LockDirectDep, url: string = d.url): boolean {
  if (e.name !== d.name) return false;
  switch (d.kind) {
    case "url":
      return e.type === "nix" && e.url === url;
    case "tar":
      return e.type === "nix+tar" && e.url === url;
    case "build":
      return e.type === "nix+src" && e.url === url && e.unpack === d.unpack;
    case "git":
      if (e.type !== "nix+git" || e.url !== url) return false;
      if (d.requirement) return e.version !== null && matches(d.requirement, parseVersion(e.version.replace(/^v/, "")));
      return e.version === null;
  }
}

/** One way a lock falls short of its manifest. */
export interface LockMismatch {
  /**
   * `dep`: a `[deps.from.*]` atom missing or locked at a version outside its requirement; `direct`: a direct Nix
   * dependency missing or locked for another source; `composer`: `[compose]` and the lock's differ; `stale`: the
   * lock holds entries the manifest no longer asks for; `local`: an atom locked local-only (no rev), which only the
   * work tree it was resolved in can provide.
   */
  readonly kind: "dep" | "direct" | "composer" | "stale" | "local";
  readonly message: string;
}

export interface LockCheck {
  /** Empty when the lock satisfies the manifest. */
  readonly mismatches: readonly LockMismatch[];
  /** AtomIds the manifest asks for directly (its `[deps.from.*]` and its composer), for reachability checks. */
  readonly direct: ReadonlySet<string>;
}

function mirrorsKey(mirrors: readonly string[]): string {
  return JSON.stringify(sortMirrors(mirrors));
}

/**
 * Compare a manifest (read in "full" mode, or "evaluate" mode with a `[compose]`) with its lock. With
 * `published`, atoms locked local-only are mismatches too: a published tree cannot reach the work tree they came
 * from. (Resolving keeps them: they are what a not yet published sibling resolves to.)
 */
export function checkLock(manifest: AtomManifest, lock: Lockfile, opts: { published?: boolean } = {}): LockCheck {
  const out: LockMismatch[] = [];
  const direct = new Set<string>();
  const idMakers = new Map<string, (label: string) => string>();
  const idOf = (root: string, label: string): string => {
    let make = idMakers.get(root);
    if (!make) idMakers.set(root, (make = atomIdsOf(root)));
    return make(label);
  };
  const rootOfTag = (tag: string): string | null => {
    const mirrors = manifest.package.sets[tag];
    if (!mirrors) return null;
    for (const [root, s] of Object.entries(lock.sets)) {
      if (s.tag === tag && mirrorsKey(s.mirrors) === mirrorsKey(mirrors)) return root;
    }
    return null;
  };
  const localOnly = (what: string, e: { version: string; rev: string | null }): void => {
    if (opts.published && e.rev === null) {
      out.push({ kind: "local", message: `${what} is locked local-only (${e.version}, no rev), which no consumer can fetch` });
    }
  };
  const atoms = lock.deps.filter((d): d is LockDep & { type: "atom" } => d.type === "atom");
  for (const [tag, reqs] of Object.entries(manifest.depsFrom)) {
    const labels = Object.entries(reqs);
    if (labels.length === 0) continue;
    const root = rootOfTag(tag);
    if (!root) {
      out.push({
        kind: "dep",
        message: `[package.sets].${tag} is not in the lock's [sets] with the same mirrors, so [deps.from.${tag}] (${labels.map(([l]) => l).join(", ")}) is not locked`,
      });
      continue;
    }
    for (const [label, req] of labels) {
      const id = idOf(root, label);
      direct.add(id);
      const e = atoms.find((a) => a.id === id);
      if (!e) {
        out.push({ kind: "dep", message: `[deps.from.${tag}] ${label} is missing from the lock` });
        continue;
      }
      if (!matches(req, unlocal(e.version).version)) {
        out.push({
          kind: "dep",
          message: `[deps.from.${tag}] ${label} = "${req.text}", but the lock has ${label} ${e.version}, which does not satisfy it`,
        });
      }
      localOnly(`[deps.from.${tag}] ${label}`, e);
    }
  }
  const c = manifest.compose;
  const lc = lock.compose;
  const lockUse =
    lc.use === "atom"
      ? `use = "atom" (${lc.label} ${lc.version}, entry "${lc.entry}")`
      : lc.use === "nix"
        ? `use = "nix" (entry "${lc.entry}")`
        : `use = "static"`;
  if (!c || c.kind === "static") {
    if (lc.use !== "static") out.push({ kind: "composer", message: `[compose.as] static, but the lock's [compose] is ${lockUse}` });
  } else if (c.kind === "nix") {
    if (lc.use !== "nix" || lc.entry !== c.path)
      out.push({ kind: "composer", message: `[compose.as] nix = "${c.path}", but the lock's [compose] is ${lockUse}` });
  } else {
    const root = rootOfTag(c.from);
    const wanted = `[compose.with.${c.label}] (from ${c.from}, version "${c.requirement.text}", entry "${c.entry}")`;
    if (
      lc.use !== "atom" ||
      !root ||
      lc.set !== root ||
      lc.label !== c.label ||
      lc.entry !== c.entry ||
      !matches(c.requirement, unlocal(lc.version).version)
    ) {
      out.push({
        kind: "composer",
        message: `${wanted}, but the lock's [compose] is ${lockUse}${lc.use === "atom" && root !== null && lc.set !== root ? ` from set ${lc.set}` : ""}`,
      });
    } else localOnly(`the composer ${c.label}`, lc);
    if (lc.use === "atom") direct.add(lc.id);
  }
  const directLock = lock.deps.filter((d): d is LockDirectDep => d.type !== "atom");
  const lockedVersion: LockedVersionOf = (tag, label) => {
    const root = rootOfTag(tag);
    const e = root === null ? undefined : atoms.find((a) => a.id === idOf(root, label));
    return e ? unlocal(e.version).version.text : null;
  };
  const used = new Set<LockDirectDep>();
  for (const d of manifest.directNix) {
    let url: string;
    try {
      url = directUrl(d, lockedVersion);
    } catch {
      out.push({ kind: "direct", message: `[deps.direct.nix] ${d.name}: its from_version atom ${d.fromVersion!.join(".")} is not locked` });
      continue;
    }
    const e = directLock.find((x) => directMatches(d, x, url));
    if (e) used.add(e);
    else {
      const other = directLock.find((x) => x.name === d.name);
      out.push({
        kind: "direct",
        message: other
          ? `[deps.direct.nix] ${d.name} is locked for another source (${other.type} ${other.url})`
          : `[deps.direct.nix] ${d.name} is missing from the lock`,
      });
    }
  }
  const declared = new Set(manifest.directNix.map((d) => d.name));
  const extra = directLock.filter((e) => !used.has(e) && !declared.has(e.name));
  if (extra.length)
    out.push({
      kind: "stale",
      message: `the lock still holds direct Nix entries the manifest does not declare: ${extra.map((e) => e.name).join(", ")}`,
    });
  if (atoms.length > 0 && direct.size === 0)
    out.push({ kind: "stale", message: "the lock holds atom entries, but the manifest declares no atom dependency" });
  // Every atom of the graph is fetched from its own tree: none may be local-only in a published lock.
  if (opts.published) {
    for (const a of atoms) if (!direct.has(a.id) && a.rev === null) localOnly(`${a.label} (pulled in by a dependency)`, a);
  }
  return { mismatches: out, direct };
}

/**
 * Does the lock satisfy the manifest, so that `cpr resolve` has nothing to do? checkLock finds no mismatch and, when
 * the graph resolved with this lock is known (`edges`: AtomId or the project → what it requires), every atom entry
 * is still reachable from what the manifest asks for directly.
 */
export function lockSatisfies(
  manifest: AtomManifest,
  lock: Lockfile,
  edges: Readonly<Record<string, readonly { readonly dep: string }[]>> | null,
): boolean {
  const { mismatches, direct } = checkLock(manifest, lock);
  if (mismatches.length > 0) return false;
  if (!edges) return true;
  const seen = new Set<string>();
  const todo = [...direct];
  while (todo.length) {
    const id = todo.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of edges[id] ?? []) todo.push(e.dep);
  }
  return lock.deps.every((d) => d.type !== "atom" || seen.has(d.id));
}

/** Why a published atom tree cannot be evaluated (docs/formats.md §12). */
export interface Unevaluable {
  /**
   * `manifest`: atom.toml has a `[compose]` but does not read as a lockable manifest; `no-lock`: composed, not
   * static, and no `atom.lock`; `bad-lock`: the lock does not parse; `unsatisfied`: the lock does not satisfy the
   * manifest (or locks a dependency local-only).
   */
  readonly kind: "manifest" | "no-lock" | "bad-lock" | "unsatisfied";
  /** One sentence, without the atom's name or the fix. */
  readonly message: string;
  /** The lock's mismatches, for `unsatisfied`. */
  readonly mismatches: readonly LockMismatch[];
}

/**
 * Can an atom tree holding this `atom.toml` (and this `atom.lock`, or null) be evaluated by a consumer (docs/formats.md §12)?
 * Null when it can: no `[compose]` (a locker; publishing reads only `[package]`, §5.1), `[compose.as] static`, or a
 * lock that satisfies the manifest with every atom fetchable (a rev for each). `file` and `lockFile` name the files
 * in messages.
 */
export function unevaluable(manifestText: string, lockText: string | null, file: string, lockFile: string): Unevaluable | null {
  let manifest: AtomManifest;
  try {
    manifest = parseAtomManifest(manifestText, file, "evaluate");
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    return {
      kind: "manifest",
      message: `${file} has a [compose] table but cannot be resolved: ${e.message}${e.where ? ` (at ${e.where})` : ""}`,
      mismatches: [],
    };
  }
  const c = manifest.compose;
  if (c === null || c.kind === "static") return null;
  const what = c.kind === "nix" ? `[compose.as] nix = "${c.path}"` : `[compose.with.${c.label}]`;
  if (lockText === null)
    return { kind: "no-lock", message: `it is composed (${what}) but has no atom.lock, so no consumer can evaluate it`, mismatches: [] };
  let lock: Lockfile;
  try {
    lock = parseLock(lockText, lockFile);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    return { kind: "bad-lock", message: `its atom.lock does not parse: ${e.message}${e.where ? ` (at ${e.where})` : ""}`, mismatches: [] };
  }
  const { mismatches } = checkLock(manifest, lock, { published: true });
  if (mismatches.length === 0) return null;
  return {
    kind: "unsatisfied",
    message: `its atom.lock does not satisfy atom.toml: ${mismatches.map((m) => m.message).join("; ")}`,
    mismatches,
  };
}
