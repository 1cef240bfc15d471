/**
 * The resolver's caches, under the configured cache directory (named by CacheLayout, src/config/paths.ts):
 *
 * - **listings** (`<cacheDir>/refs/<hash of mirror URL>.json`): per mirror, its `refs/ekala/init` and, per listed
 *   `refs/eka/atoms/<label>/<prefix>` (listingKey), the versions with their atom commit and manifest blob, each
 *   stamped with the time it was listed; a listing of a shorter prefix answers for a longer one. Fresh for
 *   `listingTtl` seconds, but a resolution that fails with fresh cached listings lists their sets again
 *   (resolve.ts); `--offline` uses them whatever their age.
 * - **manifests**: blobs fetched by their `refs/eka/meta/<label>/<version>/manifest` ref into the shared bare cache
 *   repository `<cacheDir>/git`, kept reachable under `refs/cpr/keep/objects/<blob id>`. Over protocol v2 our own
 *   fetch reads the pack in process (every object's id checked against its content, anything but a blob refused)
 *   and stores it as it came, with an index (src/git/cache.ts's `storePack`); the keep refs go through one `git
 *   update-ref --stdin` for the whole run. Against a v0-only server, `git fetch` (`fetchRefsInto`). Blobs are
 *   immutable, so they are cached forever. Only the blob is fetched: never the atom's tree or any history.
 * - an index `<cacheDir>/resolve/revs.json`: atom commit → manifest blob. Listings ask only for
 *   `refs/eka/atoms/<label>/<prefix>` (not the meta refs, three times as many bytes); a manifest is fetched by its
 *   ref name and its blob id remembered here, so warm and offline runs find it by the atom's rev.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheLayout, openCacheRoot, type CacheLayout } from "../config/paths.js";
import { runGit } from "../git/exec.js";
import { fetchRefsInto, KeepRefWriter, negotiationTipsFor, objectFormatOf, storePack } from "../git/cache.js";
import { Repo } from "../git/repo.js";
import { CprError } from "../protocol/errors.js";
import type { GitUrl } from "../protocol/uri.js";
import type { Connections, NetStats } from "./connections.js";
import type { UploadPackConnection } from "../git/lsrefs.js";

/** One version of a label as a mirror listed it. */
export interface CachedAtom {
  readonly version: string;
  readonly rev: string;
  readonly manifest: string | null;
  /** The yank record's blob id when the version is yanked (docs/formats.md §15.5); absent when it is not. */
  readonly yank?: string;
}

interface MirrorFile {
  url: string;
  root: string | null;
  rootTime: number;
  labels: Record<string, { time: number; atoms: CachedAtom[] }>;
}

/** A manifest fetch failure as the resolver reports it: a CprError naming the mirror. */
export function manifestFetchError(e: unknown, display: string, count: number): CprError {
  if (e instanceof CprError && e.code === "resolve.fetch") return e;
  return new CprError(
    "resolve.fetch",
    `${display}: could not fetch ${count} manifest blob(s): ${e instanceof Error ? e.message : String(e)}`,
    { where: display },
  );
}

function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * The cache key of a listing of `refs/eka/atoms/<label>/<prefix>`: the label alone for a whole label (as older
 * caches have it), else `<label> <prefix>` (a label has no spaces).
 */
export function listingKey(label: string, prefix: string): string {
  return prefix === "" ? label : `${label} ${prefix}`;
}

/** Listing cache: one JSON file per mirror URL. */
export class ListingCache {
  private readonly layout: CacheLayout;
  private readonly files = new Map<string, MirrorFile>();
  private readonly dirty = new Set<string>();

  constructor(
    cacheDir: string,
    readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    this.layout = cacheLayout(cacheDir);
  }

  private path(url: string): string {
    return this.layout.listing(createHash("sha256").update(url).digest("hex").slice(0, 40));
  }

  private file(url: string): MirrorFile {
    let f = this.files.get(url);
    if (f) return f;
    f = { url, root: null, rootTime: 0, labels: {} };
    try {
      const parsed = JSON.parse(readFileSync(this.path(url), "utf8")) as MirrorFile;
      if (parsed.url === url && typeof parsed.labels === "object") f = parsed;
    } catch {
      // absent or unreadable: start empty
    }
    this.files.set(url, f);
    return f;
  }

  /**
   * The cached listing of the versions of `label` starting with `prefix` on `url` (from a listing of that prefix
   * or of a shorter one, which covers it; the freshest), with whether it is still fresh; null when never listed.
   */
  get(url: string, label: string, prefix = ""): { root: string | null; atoms: readonly CachedAtom[]; fresh: boolean } | null {
    const f = this.file(url);
    let best: { time: number; atoms: CachedAtom[] } | null = null;
    for (let n = 0; n <= prefix.length; n++) {
      const entry = f.labels[listingKey(label, prefix.slice(0, n))];
      if (entry && (best === null || entry.time > best.time)) best = entry;
    }
    if (!best) return null;
    const atoms = prefix === "" ? best.atoms : best.atoms.filter((a) => a.version.startsWith(prefix));
    return { root: f.root, atoms, fresh: this.now() - best.time < this.ttlSeconds };
  }

  /** The cached root of a mirror (whatever its age), or null. */
  root(url: string): string | null {
    return this.file(url).root;
  }

  /** `labels`: listingKey(label, prefix) → the versions listed under that prefix. */
  put(url: string, root: string | null, labels: ReadonlyMap<string, readonly CachedAtom[]>): void {
    const f = this.file(url);
    const t = this.now();
    f.root = root;
    f.rootTime = t;
    for (const [label, atoms] of labels) f.labels[label] = { time: t, atoms: [...atoms] };
    this.dirty.add(url);
  }

  /** Write the changed mirror files (atomically, one rename each). */
  flush(): void {
    if (this.dirty.size === 0) return;
    mkdirSync(this.layout.listings, { recursive: true });
    for (const url of this.dirty) atomicWrite(this.path(url), JSON.stringify(this.file(url)));
    this.dirty.clear();
  }
}

interface PendingRead {
  readonly oid: string;
  resolve(text: string | null): void;
  reject(e: unknown): void;
}

/** The shared bare cache repository, for manifest blobs. */
export class ManifestStore {
  readonly gitDir: string;
  private repo: Repo | null = null;
  private readonly layout: CacheLayout;
  private readonly revIndexFile: string;
  private revIndex: Record<string, string> | null = null;
  private revDirty = false;
  /** Blobs fetched in this run, by id (their text is at hand: no need to read them back through git). */
  private readonly fetched = new Map<string, string>();
  /** Keeps the blobs stored (refs written as they come, finished by close()); the first failure to store a pack. */
  private readonly keeper: KeepRefWriter;
  private storeError: unknown = null;

  constructor(
    readonly cacheDir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly stats: NetStats,
    private readonly connections: Connections | null = null,
  ) {
    this.layout = cacheLayout(cacheDir);
    this.gitDir = this.layout.git;
    this.keeper = new KeepRefWriter(this.gitDir, env);
    this.revIndexFile = this.layout.revIndex;
  }

  private opening: Promise<Repo> | null = null;
  private initing: Promise<void> | null = null;

  /** The cache repository's object format, once read. */
  private format: string | null = null;

  /** Make sure the cache repository exists (created on first use; may be started early). */
  prepare(): Promise<void> {
    this.initing ??= (async () => {
      await openCacheRoot(this.layout.root);
      if (!existsSync(join(this.gitDir, "HEAD"))) {
        mkdirSync(this.gitDir, { recursive: true });
        await runGit(["init", "-q", "--bare", this.gitDir], { env: this.env, repo: "cpr" });
      }
    })();
    return this.initing;
  }

  /** The cache repository, created on first use (one Repo, however many callers race). */
  private open(): Promise<Repo> {
    this.opening ??= (async () => {
      await this.prepare();
      this.repo = await Repo.open(this.gitDir, { env: this.env, repo: "cpr" });
      return this.repo;
    })();
    return this.opening;
  }

  /**
   * About to wait for the network: start what storing fetched blobs will need (the cache repository, the git
   * process writing keep refs), so that spawning it costs no time later.
   */
  warmUp(): void {
    if (this.warmed) return;
    this.warmed = true;
    this.prepare().then(
      () => this.keeper.start(),
      () => {},
    );
  }

  private warmed = false;

  /** The blobs' texts (null for those not in the cache). */
  async read(oids: readonly string[]): Promise<(string | null)[]> {
    if (oids.length === 0) return [];
    if (oids.every((o) => this.fetched.has(o))) return oids.map((o) => this.fetched.get(o)!);
    if (!existsSync(join(this.gitDir, "HEAD"))) return oids.map(() => null);
    const objs = await Promise.all(oids.map((o) => this.fetched.get(o) ?? this.readBatched(o)));
    return objs;
  }

  /** Reads asked for within one turn of the event loop, sent to `git cat-file` together (one write, one reply). */
  private batch: PendingRead[] | null = null;

  private readBatched(oid: string): Promise<string | null> {
    if (this.batch === null) {
      const batch: PendingRead[] = [];
      this.batch = batch;
      setImmediate(() => {
        this.batch = null;
        this.open()
          .then((repo) => repo.readObjects(batch.map((b) => b.oid)))
          .then(
            (objs) => objs.forEach((o, i) => batch[i]!.resolve(o && o.type === "blob" ? Buffer.from(o.data).toString("utf8") : null)),
            (e) => batch.forEach((b) => b.reject(e)),
          );
      });
    }
    const batch = this.batch;
    return new Promise((resolve, reject) => batch.push({ oid, resolve, reject }));
  }

  /**
   * Fetch blobs by their manifest refs from one mirror; returns ref → blob id for the refs the mirror has. Over
   * protocol v2 this is two exchanges on the mirror's open connection (fetchOn); otherwise one `git fetch` (no
   * tags, no FETCH_HEAD). Never more than the blobs: no tree, no commit, no history. Throws a CprError naming the
   * mirror on failure.
   */
  async fetch(mirror: string, url: GitUrl, display: string, wanted: readonly { ref: string }[]): Promise<ReadonlyMap<string, string>> {
    if (wanted.length === 0) return new Map();
    const refs = [...new Set(wanted.map((w) => w.ref))];
    let oids: ReadonlyMap<string, string> | null = null;
    try {
      if (this.connections) oids = await this.connections.use(mirror, url, (c) => this.fetchOn(c, display, refs));
      if (oids === null) {
        // No protocol v2 fetch on this mirror: git fetch, on a connection of its own.
        await this.prepare();
        this.stats.connections += 1;
        this.stats.roundTrips += 2;
        // The fetch/verify engineer's cache primitive: one fetch, refs kept at refs/cpr/keep/objects/<oid>.
        ({ oids } = await fetchRefsInto(this.gitDir, url.url, refs, {
          env: this.env,
          keep: true,
          negotiationTips: negotiationTipsFor(refs),
        }));
        this.stats.manifestsFetched += oids.size;
      }
    } catch (e) {
      throw manifestFetchError(e, display, refs.length);
    }
    return oids;
  }

  /**
   * Fetch manifest blobs on an open connection: ls-refs of exactly those refs, then one fetch of their blobs,
   * whose pack is checked (every object's id computed from its content; anything but a blob refused) and stored as
   * it is in the cache repository (no git process). Returns ref → blob id for the refs the mirror has, or null
   * when this connection cannot fetch that way (protocol v0, or another object format than the cache's).
   */
  async fetchOn(c: UploadPackConnection, display: string, refs: readonly string[]): Promise<ReadonlyMap<string, string> | null> {
    await this.prepare();
    if (!c.canFetch || c.objectFormat !== (this.format ??= objectFormatOf(this.gitDir))) return null;
    const refSet = new Set(refs);
    const byRef = new Map<string, string>();
    for (const r of await c.lsRefs(refs)) if (refSet.has(r.name)) byRef.set(r.name, r.oid);
    const { objects, pack } = await c.fetchObjects([...new Set(byRef.values())]);
    for (const o of objects.values()) {
      if (o.type !== "blob")
        throw new CprError(
          "resolve.fetch",
          `${display} sent a ${o.type} for a manifest (${[...byRef].find(([, v]) => v === o.oid)?.[0] ?? o.oid}); manifests are blobs`,
        );
    }
    for (const o of objects.values()) this.fetched.set(o.oid, o.data.toString("utf8"));
    // The texts are at hand; failing to cache them must not fail this resolve, only be reported at the end.
    try {
      if (pack) storePack(this.gitDir, pack, [...objects.values()], c.objectFormat === "sha256" ? "sha256" : "sha1");
      this.keeper.add([...objects.keys()]);
    } catch (e) {
      this.storeError ??= e;
    }
    this.stats.manifestsFetched += byRef.size;
    return byRef;
  }

  private loadRevIndex(): Record<string, string> {
    if (this.revIndex) return this.revIndex;
    try {
      this.revIndex = JSON.parse(readFileSync(this.revIndexFile, "utf8")) as Record<string, string>;
    } catch {
      this.revIndex = {};
    }
    return this.revIndex;
  }

  /** Remember which manifest blob an atom commit was published with. */
  noteRev(rev: string, manifest: string): void {
    const idx = this.loadRevIndex();
    if (idx[rev] !== manifest) {
      idx[rev] = manifest;
      this.revDirty = true;
    }
  }

  manifestOfRev(rev: string): string | null {
    return this.loadRevIndex()[rev] ?? null;
  }

  /** Finish storing what was fetched (objects written, kept by refs), write the rev index, end git children. */
  async close(): Promise<void> {
    try {
      await this.keeper.close();
      if (this.storeError) {
        const e = this.storeError;
        throw new CprError(
          "cache.write",
          `could not store fetched manifests in ${this.gitDir}: ${e instanceof Error ? e.message : String(e)}`,
          { where: this.gitDir },
        );
      }
    } finally {
      this.storeError = null;
      this.closeSync();
    }
  }

  private closeSync(): void {
    if (this.revDirty && this.revIndex) {
      mkdirSync(this.layout.resolve, { recursive: true });
      atomicWrite(this.revIndexFile, JSON.stringify(this.revIndex));
      this.revDirty = false;
    }
    this.repo?.close();
    this.repo = null;
    this.opening = null;
  }
}
