/**
 * The catalogue: which atoms and versions the indexed sets publish, read from ls-refs listings and manifest blobs
 * only (nothing is cloned; a manifest blob is fetched alone, by its `refs/eka/meta/<label>/<version>/manifest` ref,
 * into the shared bare cache repository of src/git/cache.ts, where it stays for the next pass).
 *
 * Indexing is incremental: a version already indexed with the same rev is skipped, so a pass over an unchanged set
 * costs one ls-refs exchange. Passes of one set never overlap: a request arriving while a pass runs waits for the
 * next pass (which starts after the running one), and requests waiting together share it.
 */
import { lsRefs } from "../git/lsrefs.js";
import { Cache } from "../git/cache.js";
import { listRemoteSet, readYanks } from "../git/remote-set.js";
import { displayUrl, parseRemoteUrl } from "../git/remote.js";
import { CprError } from "../protocol/errors.js";
import { atomIdsOf } from "../protocol/id.js";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import { INIT_REF, manifestRef, type ListedAtom } from "../protocol/refs.js";
import { redactUrl, type GitUrl } from "../protocol/uri.js";
import { compareVersions, parseVersion } from "../protocol/version.js";
import { type AtomRow, type RegistryDb, type VersionRow } from "./db.js";
import { indexDependencies } from "./dependencies.js";

/** The part of a pino/fastify logger the catalogue uses. */
export interface CatalogueLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CatalogueOptions {
  readonly db: RegistryDb;
  /** The shared cache directory (manifest blobs go into `<cacheDir>/git`). */
  readonly cacheDir: string;
  /** Environment for git (credentials, ssh command). */
  readonly env?: NodeJS.ProcessEnv;
  /** Base of relative mirror paths. */
  readonly cwd?: string;
  readonly log?: CatalogueLog;
  /** Called after each successful pass (the build farm enqueues what its policy wants); its failure is logged. */
  readonly onIndexed?: (result: IndexResult) => Promise<unknown>;
}

/** What one pass found. */
export interface IndexResult {
  readonly root: string;
  /** Atoms (labels) the set publishes. */
  readonly atoms: number;
  /** Versions the set publishes (and the catalogue now holds). */
  readonly versions: number;
  /** Versions new in this pass. */
  readonly added: number;
}

export interface ConfigureResult {
  /** Root of each URL that answered, in the order given. */
  readonly roots: readonly string[];
  readonly failed: readonly { readonly url: string; readonly error: string }[];
}

const silent: CatalogueLog = { info() {}, warn() {}, error() {} };

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface RootState {
  running: Promise<IndexResult> | null;
  queued: Promise<IndexResult> | null;
}

export class Catalogue {
  private readonly db: RegistryDb;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cwd: string;
  private readonly log: CatalogueLog;
  private readonly cacheDir: string;
  private readonly onIndexed: ((result: IndexResult) => Promise<unknown>) | null;
  private cache: Promise<Cache> | null = null;
  private readonly state = new Map<string, RootState>();
  private closed = false;

  constructor(opts: CatalogueOptions) {
    this.db = opts.db;
    this.env = opts.env ?? process.env;
    this.cwd = opts.cwd ?? process.cwd();
    this.log = opts.log ?? silent;
    this.cacheDir = opts.cacheDir;
    this.onIndexed = opts.onIndexed ?? null;
  }

  private url(text: string): GitUrl {
    return parseRemoteUrl(text, this.cwd, "set mirror");
  }

  /**
   * Asks each mirror URL for its root (one ls-refs of `refs/ekala/init`), groups the URLs by root and records each
   * set with its mirrors (in the order given). A URL that cannot be reached or is not initialised is reported in
   * `failed` and left out.
   */
  async configure(urls: readonly string[]): Promise<ConfigureResult> {
    const answers = await Promise.all(
      urls.map(async (text) => {
        try {
          const url = this.url(text);
          const { refs } = await lsRefs(url, [INIT_REF], { env: this.env, cwd: this.cwd });
          const init = refs.find((r) => r.name === INIT_REF);
          if (!init) {
            throw new CprError("registry.set-uninitialised", `${displayUrl(url)} has no ${INIT_REF}: it is not a set`, {
              hint: "run `cpr init` there",
            });
          }
          if (init.peeled !== undefined)
            throw new CprError("registry.set-root-tag", `${displayUrl(url)}: ${INIT_REF} is a tag object, an invalid root marker`);
          return { text, url, root: init.oid.toLowerCase() };
        } catch (e) {
          return { text, error: message(e) };
        }
      }),
    );
    const byRoot = new Map<string, string[]>();
    const roots: string[] = [];
    const failed: { url: string; error: string }[] = [];
    for (const a of answers) {
      if ("error" in a) {
        failed.push({ url: a.text, error: a.error! });
        this.log.error({ set: redactUrl(a.text), err: a.error }, "set mirror not reachable");
        continue;
      }
      const list = byRoot.get(a.root) ?? [];
      if (!list.includes(a.url.url)) list.push(a.url.url);
      byRoot.set(a.root, list);
      roots.push(a.root);
    }
    for (const [root, mirrors] of byRoot) await this.db.upsertSet(root, mirrors);
    return { roots, failed };
  }

  /** Indexes every set the database knows; a set that fails is logged and left as it was. */
  async indexAll(): Promise<IndexResult[]> {
    const sets = await this.db.listSets();
    const out: IndexResult[] = [];
    for (const s of sets) {
      try {
        out.push(await this.indexSet(s.root));
      } catch (e) {
        this.log.error({ root: s.root, err: message(e) }, "indexing failed");
      }
    }
    return out;
  }

  /** One incremental pass over the set (serialised per root; concurrent callers share the next pass). */
  indexSet(root: string): Promise<IndexResult> {
    let st = this.state.get(root);
    if (!st) {
      st = { running: null, queued: null };
      this.state.set(root, st);
    }
    const s = st;
    if (s.queued) return s.queued;
    const start = (): Promise<IndexResult> => {
      const p = this.pass(root).finally(() => {
        if (s.running === p) s.running = null;
      });
      s.running = p;
      return p;
    };
    if (!s.running) return start();
    const queued = s.running
      .catch(() => undefined)
      .then(() => {
        s.queued = null;
        return start();
      });
    s.queued = queued;
    return queued;
  }

  private openCache(): Promise<Cache> {
    this.cache ??= Cache.open({ dir: this.cacheDir, env: this.env });
    return this.cache;
  }

  private async pass(root: string): Promise<IndexResult> {
    if (this.closed) throw new CprError("registry.closed", "the registry is shutting down");
    const set = await this.db.getSet(root);
    if (!set) throw new CprError("registry.unknown-set", `unknown set ${root}`);
    const started = Date.now();
    // The first mirror (in order) that answers with the set's root.
    let listed: { url: GitUrl; atoms: readonly ListedAtom[] } | null = null;
    const problems: string[] = [];
    for (const m of set.mirrors) {
      try {
        const url = this.url(m);
        const { listing } = await listRemoteSet(url, undefined, { env: this.env, cwd: this.cwd });
        if (listing.root === null)
          throw new CprError("registry.set-uninitialised", `${displayUrl(url)} is no longer initialised (no ${INIT_REF})`);
        if (listing.root.toLowerCase() !== root) {
          throw new CprError(
            "registry.set-root",
            `${displayUrl(url)} now has root ${listing.root}, not ${root}: refusing it as a mirror of this set`,
          );
        }
        listed = { url, atoms: listing.atoms };
        break;
      } catch (e) {
        problems.push(message(e));
        this.log.warn({ root, mirror: redactUrl(m), err: message(e) }, "set mirror failed");
      }
    }
    if (!listed) throw new CprError("registry.set-unreachable", `no mirror of set ${root} answered: ${problems.join("; ")}`);

    const idOf = atomIdsOf(root);
    const known = new Map<string, string>(); // id\0version → rev
    const knownVersions = new Map<string, string[]>(); // id → versions
    for (const v of await this.db.indexedVersions(root)) {
      known.set(`${v.id}\0${v.version}`, v.rev);
      const list = knownVersions.get(v.id) ?? [];
      list.push(v.version);
      knownVersions.set(v.id, list);
    }

    const fresh: (ListedAtom & { id: string })[] = [];
    const labels = new Set<string>();
    let versions = 0;
    let skipped = 0;
    for (const a of listed.atoms) {
      if (a.format !== "pre1" || a.manifest === null) {
        skipped++;
        continue;
      }
      const id = idOf(a.label);
      labels.add(a.label);
      versions++;
      const rev = known.get(`${id}\0${a.version}`);
      if (rev === undefined) fresh.push({ ...a, id });
      else if (rev !== a.rev)
        this.log.warn(
          { root, label: a.label, version: a.version, indexed: rev, listed: a.rev },
          "a published version changed its rev; keeping the indexed one",
        );
    }
    if (skipped) this.log.info({ root, skipped }, "versions without a pre1 manifest ref were not indexed");

    const texts = await this.manifests(listed.url, fresh);
    const versionRows: VersionRow[] = [];
    const meta = new Map<string, { description: string | null; tags: string[] }>();
    for (const a of fresh) {
      const text = texts.get(a.manifest!) ?? "";
      versionRows.push({ id: a.id, version: a.version, rev: a.rev, origin: a.origin, manifest: text });
      meta.set(`${a.id}\0${a.version}`, this.describe(a, text));
    }
    // Atom rows (description, tags) come from each atom's newest version; rewritten only when that one is new.
    const atomRows: AtomRow[] = [];
    const freshBy = new Map<string, (ListedAtom & { id: string })[]>();
    for (const a of fresh) freshBy.set(a.id, [...(freshBy.get(a.id) ?? []), a]);
    for (const [id, list] of freshBy) {
      const all = [...list.map((a) => a.version), ...(knownVersions.get(id) ?? [])];
      const newest = all.reduce((x, y) => (compareVersions(parseVersion(y), parseVersion(x)) > 0 ? y : x));
      const m = meta.get(`${id}\0${newest}`);
      if (m) atomRows.push({ id, root, label: list[0]!.label, description: m.description, tags: m.tags });
    }
    await this.db.recordIndex(root, atomRows, versionRows, Date.now());
    await this.recordYanks(
      root,
      listed.url,
      listed.atoms.filter((a) => a.format === "pre1" && a.manifest !== null),
      idOf,
    );
    // The pages' dependency index (dependencies.ts): the new versions, and any indexed before it existed.
    await indexDependencies(this.db, root);
    const result: IndexResult = { root, atoms: labels.size, versions, added: fresh.length };
    this.log.info({ ...result, ms: Date.now() - started }, "set indexed");
    if (this.onIndexed) {
      try {
        await this.onIndexed(result);
      } catch (e) {
        this.log.error({ root, err: message(e) }, "after indexing: enqueueing builds failed");
      }
    }
    return result;
  }

  /**
   * The set's yanked versions (refs/eka/yank/<label>/<version>, docs/formats.md §15.5), replacing what the last pass
   * saw (a yank may be undone): records already known by blob id keep their reason, others are fetched on one
   * connection. Only versions that are indexed are recorded.
   */
  private async recordYanks(root: string, url: GitUrl, atoms: readonly ListedAtom[], idOf: (label: string) => string): Promise<void> {
    const yanked = atoms.filter((a) => a.yank !== null);
    const known = new Map<string, string | null>();
    for (const id of new Set(yanked.map((a) => idOf(a.label)))) for (const y of await this.db.yanks(id)) known.set(y.record, y.reason);
    const toRead = yanked.filter((a) => !known.has(a.yank!) || known.get(a.yank!) === null);
    const read = await readYanks(url, toRead, { env: this.env, cwd: this.cwd });
    const rows = yanked.map((a) => {
      const info = read.get(`${a.label}@${a.version}`);
      return {
        id: idOf(a.label),
        version: a.version,
        record: a.yank!,
        reason: info ? (info.record?.reason ?? null) : (known.get(a.yank!) ?? null),
      };
    });
    await this.db.recordYanks(root, rows);
  }

  /** Description and tags from a manifest; a manifest that does not parse or names another atom gives none. */
  private describe(a: ListedAtom, text: string): { description: string | null; tags: string[] } {
    if (!text) return { description: null, tags: [] };
    try {
      const m = parseAtomManifest(text, `${manifestRef(a.label, a.version)} (${a.manifest})`, "publish");
      if (m.package.label !== a.label || m.package.version.text !== a.version) {
        this.log.warn({ label: a.label, version: a.version }, `the published manifest says ${m.package.label} ${m.package.version.text}`);
        return { description: null, tags: [] };
      }
      return { description: m.package.description, tags: [...m.package.tags] };
    } catch (e) {
      this.log.warn({ label: a.label, version: a.version, err: message(e) }, "published manifest does not parse");
      return { description: null, tags: [] };
    }
  }

  /** Manifest blob id → text, fetching (in one git fetch) only the blobs the cache does not hold yet. */
  private async manifests(url: GitUrl, atoms: readonly ListedAtom[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (atoms.length === 0) return out;
    const cache = await this.openCache();
    const blobs = [...new Set(atoms.map((a) => a.manifest!))];
    const have = await cache.has(blobs);
    const missing = atoms.filter((a) => !have.has(a.manifest!));
    if (missing.length) {
      await cache.fetchRefs(
        url.url,
        missing.map((a) => manifestRef(a.label, a.version)),
        { env: this.env },
      );
    }
    const objs = await cache.repo.readObjects(blobs);
    blobs.forEach((oid, i) => {
      const o = objs[i];
      if (o && o.type === "blob") out.set(oid, Buffer.from(o.data).toString("utf8"));
    });
    return out;
  }

  /** Waits for running passes, then releases the cache. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.state.values()].flatMap((s) => [s.running, s.queued]).filter((p): p is Promise<IndexResult> => p !== null);
    await Promise.allSettled(pending);
    if (this.cache) {
      const c = await this.cache.catch(() => null);
      c?.close();
      this.cache = null;
    }
  }
}
