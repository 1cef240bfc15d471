/**
 * `cpr fetch`: bring exactly an atom commit (its tree and blobs; no parent, no origin history, no other atom, no tag)
 * into the shared cache, and materialise it read-only at <cache>/atoms/<AtomId>/<version>-<rev> (or into --out).
 * A version is chosen by requirement with one ls-refs exchange; a pinned atom (exact `@=x.y.z` already fetched, or
 * a lock entry) is served from the cache without touching the network.
 */
import { join } from "node:path";
import { existsSync } from "node:fs";
import { Cache } from "../git/cache.js";
import { parseRemoteUrl } from "../git/remote.js";
import { parseAtomCommit } from "../protocol/commit.js";
import { CprError, UsageError } from "../protocol/errors.js";
import { atomId } from "../protocol/id.js";
import type { LockAtom, Lockfile } from "../protocol/lock.js";
import { atomRef } from "../protocol/refs.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import type { AtomUri, GitUrl } from "../protocol/uri.js";
import { maxSatisfying, type Requirement } from "../protocol/requirement.js";
import { parseVersion, tryParseVersion } from "../protocol/version.js";
import { listRemoteSet } from "../git/remote-set.js";

export interface FetchedAtom {
  readonly label: string;
  readonly version: string;
  readonly id: string;
  readonly root: string;
  readonly rev: string;
  /** Where the atom's files are. */
  readonly path: string;
  /** The URL it came from (or would have), without password. */
  readonly url: string;
  /** True when nothing was asked of the network. */
  readonly cached: boolean;
}

export interface FailedFetch {
  readonly label: string;
  readonly version: string;
  readonly error: string;
}

export interface FetchContext {
  readonly cache: Cache;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly reporter?: Reporter;
}

/** The exact version a requirement pins (`=1.2.3`), or null. */
export function exactVersion(req: Requirement | null): string | null {
  if (!req || req.comparators.length !== 1) return null;
  const c = req.comparators[0]!;
  if (c.op !== "=" || c.minor === null || c.patch === null) return null;
  const pre = c.prerelease.length ? `-${c.prerelease.join(".")}` : "";
  return tryParseVersion(`${c.major}.${c.minor}.${c.patch}${pre}`)?.text ?? null;
}

/** An atom URI's location as a git URL, with relative paths taken from `cwd`. */
export function uriLocation(uri: AtomUri, cwd: string): GitUrl {
  if (!uri.url)
    throw new UsageError(`'${uri.label}' has no location`, {
      hint: "an atom URI is URL::LABEL[@REQ], e.g. gh:owner/repo::hello@^1 or ./set.git::hello",
    });
  return uri.url.scheme === "file" ? parseRemoteUrl(uri.url.url, cwd) : uri.url;
}

/** Fetch one atom named by a URI. */
export async function fetchAtom(ctx: FetchContext, uri: AtomUri, out?: string): Promise<FetchedAtom> {
  const { cache } = ctx;
  if (out) refuseExisting([out]);
  const url = uriLocation(uri, ctx.cwd);
  const exact = exactVersion(uri.requirement);
  if (exact) {
    const pin = await cache.readPin(url.url, uri.label, exact);
    if (pin) {
      const path = out ?? cache.atomDir(pin.id, pin.version, pin.rev);
      if (existsSync(path) && !out) return { ...pin, path, url: url.url, cached: true };
      if ((await cache.has([pin.rev])).has(pin.rev)) {
        await cache.materialise(pin.rev, path, { readOnly: !out });
        return { ...pin, path, url: url.url, cached: true };
      }
    }
  }
  const { listing } = await listRemoteSet(url, [uri.label], { env: ctx.env, reporter: ctx.reporter, cwd: ctx.cwd, legacy: true });
  if (listing.root === null) {
    throw new CprError("fetch.not-initialized", `${url.url} is not an initialized atom set (it has no refs/ekala/init)`, {
      where: url.url,
    });
  }
  if (listing.rootIsTag)
    throw new CprError("fetch.root-tag", `refs/ekala/init on ${url.url} is an annotated tag, not a valid set marker`, { where: url.url });
  const root = listing.root;
  const versions = listing.atoms.filter((a) => a.label === uri.label);
  const pre1 = versions.filter((a) => a.format === "pre1");
  if (pre1.length === 0) {
    const legacy = versions.length ? ` (only legacy-layout versions: ${versions.map((a) => a.version).join(", ")})` : "";
    throw new CprError("fetch.no-atom", `${url.url} has no published atom '${uri.label}'${legacy}`, {
      where: url.url,
      hint: `list the set's atoms with \`cpr ls ${url.url}\``,
    });
  }
  const chosen = maxSatisfying(
    pre1.map((a) => parseVersion(a.version)),
    uri.requirement ?? { comparators: [], text: "*" },
  );
  if (!chosen) {
    throw new CprError(
      "fetch.no-version",
      `no version of '${uri.label}' on ${url.url} satisfies ${uri.requirement!.text} (published: ${pre1.map((a) => a.version).join(", ")})`,
      {
        where: url.url,
      },
    );
  }
  const listed = pre1.find((a) => a.version === chosen.text)!;
  const id = atomId(root, uri.label);
  const want: LockAtom = { label: uri.label, version: listed.version, set: root, rev: listed.rev, mirror: url.url, id };
  await ensureFetched(ctx, url.url, [want]);
  const path = out ?? cache.atomDir(id, listed.version, listed.rev);
  await cache.materialise(listed.rev, path, { readOnly: !out });
  await cache.writePin({ url: url.url, label: uri.label, version: listed.version, root, id, rev: listed.rev });
  return { label: uri.label, version: listed.version, id, root, rev: listed.rev, path, url: url.url, cached: false };
}

/**
 * Fetch the atom commits of `atoms` from `url` into the cache in ONE git fetch, check each fetched rev against the
 * expected one, and check that each commit is the atom commit of that label and version. Throws on the first problem.
 */
async function ensureFetched(ctx: FetchContext, url: string, atoms: readonly LockAtom[]): Promise<void> {
  const have = await ctx.cache.has(atoms.map((a) => a.rev!));
  const todo = atoms.filter((a) => !have.has(a.rev!));
  if (todo.length === 0) return;
  const { oids } = await ctx.cache.fetchRefs(
    url,
    todo.map((a) => atomRef(a.label, a.version)),
    { env: ctx.env },
  );
  const commits = await ctx.cache.repo.readObjects(todo.map((a) => a.rev!));
  todo.forEach((a, i) => {
    const ref = atomRef(a.label, a.version);
    const got = oids.get(ref);
    if (got !== a.rev) {
      throw new CprError(
        "fetch.rev-mismatch",
        `${url} has ${ref} = ${got ?? "(nothing)"}, but ${a.rev} was expected (the ref moved, or the mirror disagrees)`,
        {
          where: url,
          hint: "run `cpr verify` on this atom; a published version must never change",
        },
      );
    }
    const c = commits[i];
    if (c?.type !== "commit") throw new CprError("fetch.missing", `fetched ${ref} but commit ${a.rev} is not in the cache`, { where: url });
    const parsed = parseAtomCommit(c.data);
    if (parsed.label !== a.label || parsed.version !== a.version || parsed.parents.length) {
      throw new CprError("fetch.not-atom", `${ref} on ${url} points at ${a.rev}, which is not the atom commit of ${a.label} ${a.version}`, {
        where: url,
      });
    }
  });
}

/** Options for fetching a lock. */
export interface LockFetchOptions {
  /** Where to materialise: <out>/<label> (default: the cache's content-addressed paths). */
  readonly out?: string;
  /** Most concurrent git fetch connections per host (default 4). */
  readonly perHost?: number;
}

export interface LockFetchResult {
  readonly fetched: readonly FetchedAtom[];
  readonly failed: readonly FailedFetch[];
  /** Mirrors that failed or disagreed, for atoms a later mirror served. */
  readonly warnings: readonly string[];
}

/** The atom entries of a lock: `[[deps]] type = "atom"` and `[compose] use = "atom"`. */
export function lockAtoms(lock: Lockfile): LockAtom[] {
  const out: LockAtom[] = lock.deps.filter((d): d is Extract<typeof d, { type: "atom" }> => d.type === "atom");
  if (lock.compose.use === "atom") out.push(lock.compose);
  return out;
}

/** The URLs to try for a lock atom, in order: its `mirror`, then its set's URL mirrors. */
export function mirrorsOf(lock: Lockfile, a: LockAtom): string[] {
  const urls = [a.mirror, ...(lock.sets[a.set]?.mirrors ?? [])].filter((m): m is string => m !== null && m !== "::");
  return [...new Set(urls)];
}

/**
 * Fetch every atom of a lock: atoms are grouped by mirror, each group split over at most `perHost` concurrent
 * `git fetch` connections per host (one fetch carries many refs); a failed group is retried atom by atom, and an atom
 * that still fails goes to its next mirror. Every fetched rev is checked against the lock.
 */
export async function fetchLock(ctx: FetchContext, lock: Lockfile, opts: LockFetchOptions = {}): Promise<LockFetchResult> {
  const { cache } = ctx;
  const reporter = ctx.reporter ?? silentReporter;
  const perHost = opts.perHost ?? 4;
  const atoms = lockAtoms(lock);
  const fetched: FetchedAtom[] = [];
  const failed: FailedFetch[] = [];
  const warnings: string[] = [];
  const dest = (a: LockAtom) => (opts.out ? join(opts.out, a.label) : cache.atomDir(a.id, a.version, a.rev!));
  const local = atoms.filter((a) => a.rev === null);
  for (const a of local) failed.push({ label: a.label, version: a.version, error: "a local-only dependency (no rev) cannot be fetched" });
  const pinned = atoms.filter((a) => a.rev !== null);
  const dup = findDuplicateLabel(pinned, opts.out);
  if (opts.out) refuseExisting(pinned.map(dest));
  if (dup) throw new CprError("fetch.out-clash", `two atoms of the lock are both labelled '${dup}'; --out DIR puts each at DIR/<label>`);

  // No network for atoms already materialised or already in the cache.
  const have = await cache.has(pinned.map((a) => a.rev!));
  const todo: LockAtom[] = [];
  const done = (a: LockAtom, url: string, cached: boolean) =>
    fetched.push({ label: a.label, version: a.version, id: a.id, root: a.set, rev: a.rev!, path: dest(a), url, cached });
  for (const a of pinned) {
    if (!opts.out && existsSync(dest(a))) done(a, a.mirror ?? "", true);
    else if (have.has(a.rev!)) done(a, a.mirror ?? "", true);
    else todo.push(a);
  }

  const progress = reporter.progress("fetching atoms", todo.length);
  const errors = new Map<LockAtom, string[]>();
  const limiters = new Map<string, Limiter>();
  const limiter = (url: string) => {
    const host = hostOf(url);
    if (!limiters.has(host)) limiters.set(host, new Limiter(perHost));
    return limiters.get(host)!;
  };
  let pending = todo;
  for (let round = 0; pending.length > 0; round++) {
    const byUrl = new Map<string, LockAtom[]>();
    const next: LockAtom[] = [];
    for (const a of pending) {
      const url = mirrorsOf(lock, a)[round];
      if (url === undefined) {
        const errs = errors.get(a) ?? [];
        failed.push({
          label: a.label,
          version: a.version,
          error: errs.length ? errs.join("; ") : "no URL mirror to fetch from (the lock lists only '::')",
        });
        progress.tick();
        continue;
      }
      byUrl.set(url, [...(byUrl.get(url) ?? []), a]);
    }
    const jobs: Promise<void>[] = [];
    for (const [url, group] of byUrl) {
      const lim = limiter(url);
      const size = Math.max(1, Math.ceil(group.length / perHost));
      for (let i = 0; i < group.length; i += size) {
        const chunk = group.slice(i, i + size);
        jobs.push(
          lim
            .run(() => ensureFetched(ctx, url, chunk))
            .then(
              () => chunk.forEach((a) => (done(a, url, false), progress.tick())),
              async (err: unknown) => {
                // One bad ref fails a whole git fetch: retry the chunk's atoms one by one on this mirror.
                const singles =
                  chunk.length === 1
                    ? [[chunk[0]!, err] as const]
                    : await Promise.all(
                        chunk.map((a) =>
                          lim
                            .run(() => ensureFetched(ctx, url, [a]))
                            .then(
                              () => [a, null] as const,
                              (e: unknown) => [a, e] as const,
                            ),
                        ),
                      );
                for (const [a, e] of singles) {
                  if (e === null) {
                    done(a, url, false);
                    progress.tick();
                  } else {
                    const msg = e instanceof Error ? e.message : String(e);
                    errors.set(a, [...(errors.get(a) ?? []), msg]);
                    next.push(a);
                  }
                }
              },
            ),
        );
      }
    }
    await Promise.all(jobs);
    pending = next;
  }
  progress.done();
  for (const f of fetched) {
    const errs = [...errors].find(([a]) => a.label === f.label && a.version === f.version && a.set === f.root)?.[1];
    if (errs?.length) warnings.push(`${f.label} ${f.version}: fetched from ${f.url} after: ${errs.join("; ")}`);
  }
  await mapLimit(fetched, 4, (f) => cache.materialise(f.rev, f.path, { readOnly: !opts.out }));
  const order = (x: { label: string; version: string }, y: { label: string; version: string }) =>
    x.label < y.label ? -1 : x.label > y.label ? 1 : x.version < y.version ? -1 : 1;
  return { fetched: fetched.sort(order), failed: failed.sort(order), warnings };
}

/** --out never overwrites or merges into an existing directory. */
function refuseExisting(paths: readonly string[]): void {
  const taken = paths.find((p) => existsSync(p));
  if (taken)
    throw new CprError("fetch.out-exists", `${taken} already exists; cpr fetch --out does not overwrite`, {
      where: taken,
      hint: "remove it, or choose another --out DIR",
    });
}

function findDuplicateLabel(atoms: readonly LockAtom[], out: string | undefined): string | null {
  if (!out) return null;
  const seen = new Set<string>();
  for (const a of atoms) {
    if (seen.has(a.label)) return a.label;
    seen.add(a.label);
  }
  return null;
}

/** The host a URL connects to (`local` for paths and file://), for the per-host connection bound. */
export function hostOf(url: string): string {
  const m = /^[a-z+]+:\/\/(?:[^@/]*@)?([^/:]+)/i.exec(url) ?? /^(?:[^@/:]*@)?([^/:]+):/.exec(url);
  return m && !url.startsWith("file:") ? m[1]!.toLowerCase() : "local";
}

/** A counting semaphore. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export async function mapLimit<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const lim = new Limiter(n);
  return Promise.all(items.map((t) => lim.run(() => fn(t))));
}
