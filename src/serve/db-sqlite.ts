/**
 * The SQLite driver (better-sqlite3): the embedded default. WAL journal (readers never wait for the writer),
 * busy_timeout (several processes may share the file), foreign keys on. better-sqlite3 is synchronous; each method
 * runs its statement and returns a settled promise. Statements are prepared once, at open.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { CprError } from "../protocol/errors.js";
import {
  buildVersionError,
  newestFirst,
  countsOf,
  versionsNewestFirst,
  searchInTiers,
  type SearchTier,
  dependentsPage,
  indexReferenceError,
  searchText,
  tokenExistsError,
  unique,
  unknownSetError,
  type AtomRow,
  type BuildRow,
  type GraftRow,
  type ClosureSize,
  type DependencyRow,
  type DependentRow,
  type PathRow,
  type RegistryCounts,
  type RegistryDb,
  type SearchHit,
  type SetRow,
  type TokenRow,
  type VersionRow,
  type YankRow,
  type VersionSummary,
} from "./db.js";
import { migrateSqlite } from "./migrations.js";
import { SqliteJobs } from "./jobs-sqlite.js";

/** How long a statement waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

interface SetRec {
  root: string;
  mirrors: string;
  indexed_at: number | null;
}
interface AtomRec {
  id: string;
  root: string;
  label: string;
  description: string | null;
  tags: string;
}
interface VersionRec {
  id: string;
  version: string;
  rev: string;
  origin: string | null;
  manifest: string;
}
interface PathRec {
  hash_part: string;
  store_path: string;
  nar_hash: string;
  nar_size: number;
  file_hash: string;
  file_size: number;
  compression: PathRow["compression"];
  url: string;
  refs: string;
  deriver: string | null;
  sigs: string;
  narinfo: string;
  created_at: number;
}
interface BuildRec {
  build_id: number;
  atom_id: string;
  version: string;
  rev: string;
  system: string;
  config_hash: string;
  config: string;
  drv: string;
  outputs: string;
  created_at: number;
  main_program: string | null;
}
interface TokenRec {
  hash: string;
  sets: string;
  note: string | null;
  created_at: number;
  scope: TokenRow["scope"];
}

const setRow = (r: SetRec): SetRow => ({ root: r.root, mirrors: JSON.parse(r.mirrors) as string[], indexedAt: r.indexed_at });
const atomRow = (r: AtomRec): AtomRow => ({
  id: r.id,
  root: r.root,
  label: r.label,
  description: r.description,
  tags: JSON.parse(r.tags) as string[],
});
const versionRow = (r: VersionRec): VersionRow => ({ id: r.id, version: r.version, rev: r.rev, origin: r.origin, manifest: r.manifest });
const pathRow = (r: PathRec): PathRow => ({
  hashPart: r.hash_part,
  storePath: r.store_path,
  narHash: r.nar_hash,
  narSize: r.nar_size,
  fileHash: r.file_hash,
  fileSize: r.file_size,
  compression: r.compression,
  url: r.url,
  references: JSON.parse(r.refs) as string[],
  deriver: r.deriver,
  sigs: JSON.parse(r.sigs) as string[],
  narinfo: r.narinfo,
  createdAt: r.created_at,
});
const buildRow = (r: BuildRec): BuildRow => ({
  buildId: r.build_id,
  id: r.atom_id,
  version: r.version,
  rev: r.rev,
  system: r.system,
  configHash: r.config_hash,
  config: r.config,
  drv: r.drv,
  outputs: JSON.parse(r.outputs) as Record<string, string>,
  ...(r.main_program ? { mainProgram: r.main_program } : {}),
  createdAt: r.created_at,
});
const tokenRow = (r: TokenRec): TokenRow => ({
  hash: r.hash,
  sets: JSON.parse(r.sets) as string[],
  note: r.note,
  createdAt: r.created_at,
  scope: r.scope ?? "write",
});

interface GraftRec {
  graft_id: number;
  graft_key: string;
  build_id: number;
  atom_id: string;
  version: string;
  system: string;
  with_key: string;
  replacements: string;
  algorithm: string;
  outputs: string;
  paths: string;
  warnings: string;
  created_at: number;
}
const graftRow = (r: GraftRec): GraftRow => ({
  graftId: r.graft_id,
  key: r.graft_key,
  buildId: r.build_id,
  id: r.atom_id,
  version: r.version,
  system: r.system,
  withKey: r.with_key,
  replacements: JSON.parse(r.replacements) as GraftRow["replacements"],
  algorithm: r.algorithm,
  outputs: JSON.parse(r.outputs) as Record<string, string>,
  paths: JSON.parse(r.paths) as GraftRow["paths"],
  warnings: JSON.parse(r.warnings) as GraftRow["warnings"],
  createdAt: r.created_at,
});

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof (err as { code: unknown }).code === "string"
    ? (err as { code: string }).code
    : undefined;
}

export function openSqlite(path: string): RegistryDb {
  if (path !== ":memory:") {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch {
      /* better-sqlite3 reports the real problem below */
    }
  }
  let db: Database.Database;
  try {
    db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("foreign_keys = ON");
    db.pragma("synchronous = NORMAL");
    // A registry reads far more than it writes: 64 MiB of page cache, and reads through a memory map (no read call
    // per page) for the first 256 MiB of the file.
    db.pragma("cache_size = -65536");
    db.pragma("mmap_size = 268435456");
  } catch (err) {
    throw new CprError("registry.db-open", `cannot open the SQLite database: ${err instanceof Error ? err.message : String(err)}`, {
      where: path,
      hint: "check that the directory exists and is writable, and that the file is a SQLite database",
      cause: err,
    });
  }
  return new SqliteDb(db, path);
}

class SqliteDb implements RegistryDb {
  readonly kind = "sqlite" as const;
  /**
   * Statements are prepared lazily (the tables exist only after migrate) and kept, keyed by their SQL: the keys are
   * string literals, whose hashes V8 caches, so a lookup costs no more than a property access.
   */
  private readonly cache = new Map<string, Database.Statement>();
  private readonly plucked = new Map<string, Database.Statement>();

  readonly jobs: SqliteJobs;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
  ) {
    this.jobs = new SqliteJobs(db);
  }

  /** The prepared statement for `sql`; `pluck` ones return the first column's value instead of a row object. */
  private st(sql: string, pluck = false): Database.Statement {
    const cache = pluck ? this.plucked : this.cache;
    let s = cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      if (pluck) s.pluck();
      cache.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE: takes the write lock up front, so no upgrade deadlock). */
  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.db, this.path);
    this.cache.clear();
    this.plucked.clear();
    this.jobs.reset();
  }

  async ping(): Promise<void> {
    this.st("SELECT 1").get();
  }

  async close(): Promise<void> {
    this.cache.clear();
    this.plucked.clear();
    if (this.db.open) this.db.close();
  }

  // ── catalogue ──

  async upsertSet(root: string, mirrors: readonly string[]): Promise<void> {
    this.st(
      "INSERT INTO sets (root, mirrors, indexed_at) VALUES (?, ?, NULL) ON CONFLICT (root) DO UPDATE SET mirrors = excluded.mirrors",
    ).run(root, JSON.stringify(mirrors));
  }

  async listSets(): Promise<SetRow[]> {
    return (this.st("SELECT root, mirrors, indexed_at FROM sets ORDER BY root").all() as SetRec[]).map(setRow);
  }

  async getSet(root: string): Promise<SetRow | null> {
    const r = this.st("SELECT root, mirrors, indexed_at FROM sets WHERE root = ?").get(root) as SetRec | undefined;
    return r ? setRow(r) : null;
  }

  async recordIndex(root: string, atoms: readonly AtomRow[], versions: readonly VersionRow[], at: number): Promise<void> {
    const upsertAtom = this.st(
      `INSERT INTO atoms (id, root, label, description, tags, search_text) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET root = excluded.root, label = excluded.label, description = excluded.description,
         tags = excluded.tags, search_text = excluded.search_text`,
    );
    const insertVersion = this.st(
      "INSERT INTO versions (id, version, rev, origin, manifest) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id, version) DO NOTHING",
    );
    const touch = this.st("UPDATE sets SET indexed_at = ? WHERE root = ?");
    try {
      this.tx(() => {
        if (touch.run(at, root).changes === 0) throw unknownSetError(root);
        for (const a of atoms) upsertAtom.run(a.id, a.root, a.label, a.description, JSON.stringify(a.tags), searchText(a));
        for (const v of versions) insertVersion.run(v.id, v.version, v.rev, v.origin, v.manifest);
      });
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_FOREIGNKEY") throw indexReferenceError(root, err);
      throw err;
    }
  }

  async indexedVersions(root: string): Promise<{ id: string; version: string; rev: string }[]> {
    return this.st(
      "SELECT v.id AS id, v.version AS version, v.rev AS rev FROM versions v JOIN atoms a ON a.id = v.id WHERE a.root = ? ORDER BY v.id, v.version",
    ).all(root) as { id: string; version: string; rev: string }[];
  }

  async search(q: string, limit: number): Promise<SearchHit[]> {
    return this.searchPage(q, limit, 0);
  }

  async atom(id: string): Promise<{ atom: AtomRow; versions: VersionRow[] } | null> {
    const a = this.st("SELECT id, root, label, description, tags FROM atoms WHERE id = ?").get(id) as AtomRec | undefined;
    if (!a) return null;
    const versions = (this.st("SELECT id, version, rev, origin, manifest FROM versions WHERE id = ?").all(id) as VersionRec[]).map(
      versionRow,
    );
    return { atom: atomRow(a), versions: newestFirst(versions) };
  }

  async recordYanks(root: string, yanks: readonly YankRow[]): Promise<void> {
    const clear = this.st("DELETE FROM yanks WHERE root = ?");
    const insert = this.st("INSERT INTO yanks (id, version, root, record, reason) VALUES (?, ?, ?, ?, ?)");
    this.tx(() => {
      clear.run(root);
      for (const y of yanks) insert.run(y.id, y.version, root, y.record, y.reason);
    });
  }

  async yanks(id: string): Promise<YankRow[]> {
    return this.st("SELECT id, version, record, reason FROM yanks WHERE id = ? ORDER BY version").all(id) as YankRow[];
  }

  // ── binary cache ──

  async getPath(hashPart: string): Promise<PathRow | null> {
    const r = this.st("SELECT * FROM paths WHERE hash_part = ?").get(hashPart) as PathRec | undefined;
    return r ? pathRow(r) : null;
  }

  async getNarinfo(hashPart: string): Promise<string | null> {
    return (this.st("SELECT narinfo FROM paths WHERE hash_part = ?", true).get(hashPart) as string | undefined) ?? null;
  }

  async hasNarUrl(url: string): Promise<boolean> {
    return this.st("SELECT 1 FROM paths WHERE url = ? LIMIT 1", true).get(url) !== undefined;
  }

  async insertPath(row: PathRow): Promise<boolean> {
    const info = this.st(
      `INSERT INTO paths (hash_part, store_path, nar_hash, nar_size, file_hash, file_size, compression, url, refs, deriver, sigs, narinfo, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash_part) DO NOTHING`,
    ).run(
      row.hashPart,
      row.storePath,
      row.narHash,
      row.narSize,
      row.fileHash,
      row.fileSize,
      row.compression,
      row.url,
      JSON.stringify([...row.references].sort()),
      row.deriver,
      JSON.stringify(row.sigs),
      row.narinfo,
      row.createdAt,
    );
    if (info.changes !== 1) return false;
    this.storeClosure(row.hashPart);
    return true;
  }

  async missingPaths(hashParts: readonly string[]): Promise<string[]> {
    const wanted = unique(hashParts);
    if (wanted.length === 0) return [];
    const present = new Set(
      this.st("SELECT hash_part FROM paths WHERE hash_part IN (SELECT value FROM json_each(?))", true).all(
        JSON.stringify(wanted),
      ) as string[],
    );
    return wanted.filter((h) => !present.has(h));
  }

  async countPaths(): Promise<number> {
    return this.st("SELECT COUNT(*) FROM paths", true).get() as number;
  }

  // ── builds ──

  async insertBuild(row: Omit<BuildRow, "buildId">): Promise<number> {
    try {
      return this.tx(() => {
        const info = this.st(
          `INSERT INTO builds (atom_id, version, rev, system, config_hash, config, drv, outputs, created_at, main_program)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          row.id,
          row.version,
          row.rev,
          row.system,
          row.configHash,
          row.config,
          row.drv,
          JSON.stringify(row.outputs),
          row.createdAt,
          row.mainProgram ?? null,
        );
        const buildId = Number(info.lastInsertRowid);
        this.recordBuildOutputs(buildId, row.outputs);
        return buildId;
      });
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_FOREIGNKEY") throw buildVersionError(row.id, row.version, err);
      throw err;
    }
  }

  async builds(id: string, system: string): Promise<BuildRow[]> {
    return (this.st("SELECT * FROM builds WHERE atom_id = ? AND system = ? ORDER BY build_id DESC").all(id, system) as BuildRec[]).map(
      buildRow,
    );
  }

  async countBuilds(): Promise<number> {
    return this.st("SELECT COUNT(*) FROM builds", true).get() as number;
  }

  // ── grafts ──

  /** The reverse index of build outputs (path → build), kept with every build record. */
  private recordBuildOutputs(buildId: number, outputs: Readonly<Record<string, string>>): void {
    const ins = this.st("INSERT OR IGNORE INTO build_outputs (path, build_id) VALUES (?, ?)");
    for (const p of new Set(Object.values(outputs))) ins.run(p, buildId);
  }

  async buildsByOutputs(paths: readonly string[]): Promise<{ path: string; build: BuildRow }[]> {
    const wanted = unique(paths);
    if (wanted.length === 0) return [];
    const rows = this.st(
      `SELECT o.path AS out_path, b.* FROM build_outputs o JOIN builds b ON b.build_id = o.build_id
       WHERE o.path IN (SELECT value FROM json_each(?)) ORDER BY b.build_id DESC`,
    ).all(JSON.stringify(wanted)) as (BuildRec & { out_path: string })[];
    return rows.map((r) => ({ path: r.out_path, build: buildRow(r) }));
  }

  async insertGraft(row: Omit<GraftRow, "graftId">, paths: readonly PathRow[]): Promise<{ graft: GraftRow; created: boolean }> {
    return this.tx(() => {
      const had = this.st("SELECT * FROM grafts WHERE graft_key = ?").get(row.key) as GraftRec | undefined;
      if (had) return { graft: graftRow(had), created: false };
      const insPath = this.st(
        `INSERT INTO paths (hash_part, store_path, nar_hash, nar_size, file_hash, file_size, compression, url, refs, deriver, sigs, narinfo, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash_part) DO NOTHING`,
      );
      for (const p of paths) {
        insPath.run(
          p.hashPart,
          p.storePath,
          p.narHash,
          p.narSize,
          p.fileHash,
          p.fileSize,
          p.compression,
          p.url,
          JSON.stringify([...p.references].sort()),
          p.deriver,
          JSON.stringify(p.sigs),
          p.narinfo,
          p.createdAt,
        );
      }
      const info = this.st(
        `INSERT INTO grafts (graft_key, build_id, atom_id, version, system, with_key, replacements, algorithm, outputs, paths, warnings, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        row.key,
        row.buildId,
        row.id,
        row.version,
        row.system,
        row.withKey,
        JSON.stringify(row.replacements),
        row.algorithm,
        JSON.stringify(row.outputs),
        JSON.stringify(row.paths),
        JSON.stringify(row.warnings),
        row.createdAt,
      );
      return { graft: { ...row, graftId: Number(info.lastInsertRowid) }, created: true };
    });
  }

  async graftByKey(key: string): Promise<GraftRow | null> {
    const r = this.st("SELECT * FROM grafts WHERE graft_key = ?").get(key) as GraftRec | undefined;
    return r ? graftRow(r) : null;
  }

  async graft(graftId: number): Promise<GraftRow | null> {
    const r = this.st("SELECT * FROM grafts WHERE graft_id = ?").get(graftId) as GraftRec | undefined;
    return r ? graftRow(r) : null;
  }

  async graftsOfAtom(id: string): Promise<GraftRow[]> {
    return (this.st("SELECT * FROM grafts WHERE atom_id = ? ORDER BY graft_id DESC").all(id) as GraftRec[]).map(graftRow);
  }

  async graftsOfBuild(buildId: number): Promise<GraftRow[]> {
    return (this.st("SELECT * FROM grafts WHERE build_id = ? ORDER BY graft_id DESC").all(buildId) as GraftRec[]).map(graftRow);
  }

  // ── tokens ──

  async insertToken(row: TokenRow): Promise<void> {
    try {
      this.st("INSERT INTO tokens (hash, sets, note, created_at, scope) VALUES (?, ?, ?, ?, ?)").run(
        row.hash,
        JSON.stringify(row.sets),
        row.note,
        row.createdAt,
        row.scope ?? "write",
      );
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_PRIMARYKEY") throw tokenExistsError(row.hash);
      throw err;
    }
  }

  async tokenByHash(hash: string): Promise<TokenRow | null> {
    const r = this.st("SELECT hash, sets, note, created_at, scope FROM tokens WHERE hash = ?").get(hash) as TokenRec | undefined;
    return r ? tokenRow(r) : null;
  }

  // ── pages ──

  async counts(): Promise<RegistryCounts> {
    // Kept by triggers (migration 8): one read, however large the registry.
    const rows = this.st("SELECT name, n FROM row_counts").all() as { name: string; n: number }[];
    return countsOf(rows);
  }

  async searchPage(q: string, limit: number, offset: number): Promise<SearchHit[]> {
    const needle = q.toLowerCase();
    if (bound(limit) === 0) return [];
    let labelIds: string[] | null = null;
    if ([...needle].length >= 3) {
      // A text of three characters or more asks the trigram index how many atoms may contain it (up to
      // SEARCH_RANK_ALL): few are all read and ranked at once. Many: how many labels do, for the label tier.
      const ids = this.ftsCandidates("atoms_fts", needle);
      if (ids === null) labelIds = this.ftsCandidates("atoms_fts_label", needle);
      else {
        if (ids.length === 0) return [];
        const rank = `CASE WHEN ${SEARCH_LABEL} = @q THEN 0 WHEN instr(${SEARCH_LABEL}, @q) > 0 THEN 1 ELSE 2 END`;
        return (
          this.st(
            `SELECT ${HIT_COLS} FROM ${BY_IDS} WHERE instr(search_text, @q) > 0 ORDER BY ${rank}, label, root, id LIMIT @limit OFFSET @offset`,
          ).all({ ids: JSON.stringify(ids), q: needle, limit: bound(limit), offset: bound(offset) }) as HitRec[]
        ).map(hitRow);
      }
    }
    // A common (or short) text: its tiers in label order, each read only as far as the page needs.
    const rows = await searchInTiers(
      bound(limit),
      bound(offset),
      () => this.st(`SELECT ${HIT_COLS} FROM atoms WHERE ${SEARCH_LABEL} = ? ORDER BY label, root, id`).all(needle) as HitRec[],
      (tier, n) => this.searchTier(needle, tier, n, labelIds),
    );
    return rows.map(hitRow);
  }

  /**
   * The ids of the atoms whose text in the trigram index `fts` contains `needle` (three characters or more), or null
   * when there are SEARCH_RANK_ALL or more. Rowids first (reading the id column costs a lookup per row).
   */
  private ftsCandidates(fts: "atoms_fts" | "atoms_fts_label", needle: string): string[] | null {
    const rowids = this.st(`SELECT rowid FROM ${fts} WHERE ${fts} MATCH ? LIMIT ${SEARCH_RANK_ALL}`, true).all(
      `"${needle.replace(/"/g, '""')}"`,
    ) as number[];
    if (rowids.length >= SEARCH_RANK_ALL) return null;
    if (rowids.length === 0) return [];
    return this.st(`SELECT id FROM ${fts} WHERE rowid IN (SELECT value FROM json_each(?))`, true).all(JSON.stringify(rowids)) as string[];
  }

  /**
   * The first `n` atoms of one search tier, in label order: `label`, labels containing `needle` (not equal to it);
   * `rest`, atoms whose description or tags contain it but whose label does not. The label tier is read from
   * `labelIds` when the trigram index found few; otherwise, and for the rest, atoms are walked in label order
   * (atoms_label_order, which holds each lower-cased label), filling the page after about n × atoms ÷ matches rows.
   */
  private searchTier(needle: string, tier: SearchTier, n: number, labelIds: string[] | null): HitRec[] {
    if (tier === "label") {
      const where = `instr(${SEARCH_LABEL}, @q) > 0 AND ${SEARCH_LABEL} != @q`;
      if (labelIds !== null) {
        if (labelIds.length === 0) return [];
        return this.st(`SELECT ${HIT_COLS} FROM ${BY_IDS} WHERE ${where} ORDER BY label, root, id LIMIT @n`).all({
          q: needle,
          ids: JSON.stringify(labelIds),
          n,
        }) as HitRec[];
      }
      return this.st(`SELECT ${HIT_COLS} FROM atoms INDEXED BY atoms_label_order WHERE ${where} ORDER BY label, root, id LIMIT @n`).all({
        q: needle,
        n,
      }) as HitRec[];
    }
    return this.st(
      `SELECT ${HIT_COLS} FROM atoms INDEXED BY atoms_label_order WHERE instr(${SEARCH_LABEL}, @q) = 0 AND instr(search_text, @q) > 0
       ORDER BY label, root, id LIMIT @n`,
    ).all({ q: needle, n }) as HitRec[];
  }

  async setAtoms(root: string, limit: number, offset: number): Promise<SearchHit[]> {
    return (
      this.st(`SELECT ${HIT_COLS} FROM atoms WHERE root = ? ORDER BY label, id LIMIT ? OFFSET ?`).all(
        root,
        bound(limit),
        bound(offset),
      ) as HitRec[]
    ).map(hitRow);
  }

  async atomVersions(id: string): Promise<{ atom: AtomRow; versions: VersionSummary[] } | null> {
    const a = this.st("SELECT id, root, label, description, tags FROM atoms WHERE id = ?").get(id) as AtomRec | undefined;
    if (!a) return null;
    const versions = this.st("SELECT version, rev, origin FROM versions WHERE id = ?").all(id) as VersionSummary[];
    return { atom: atomRow(a), versions: newestFirst(versions) };
  }

  async versionManifest(id: string, version: string): Promise<string | null> {
    return (this.st("SELECT manifest FROM versions WHERE id = ? AND version = ?", true).get(id, version) as string | undefined) ?? null;
  }

  async builtVersions(id: string): Promise<string[]> {
    return this.st("SELECT DISTINCT version FROM builds WHERE atom_id = ?", true).all(id) as string[];
  }

  async versionBuilds(id: string, version: string, limit: number): Promise<BuildRow[]> {
    return (
      this.st("SELECT * FROM builds WHERE atom_id = ? AND version = ? ORDER BY build_id DESC LIMIT ?").all(
        id,
        version,
        bound(limit),
      ) as BuildRec[]
    ).map(buildRow);
  }

  async closureSize(hashParts: readonly string[]): Promise<ClosureSize> {
    const wanted = unique(hashParts);
    if (wanted.length === 0) return { paths: 0, narSize: 0, missing: 0 };
    if (wanted.length === 1) {
      const r = this.st("SELECT closure_paths, closure_nar_size FROM paths WHERE hash_part = ?").get(wanted[0]) as
        | { closure_paths: number | null; closure_nar_size: number | null }
        | undefined;
      if (r && r.closure_paths !== null && r.closure_nar_size !== null)
        return { paths: r.closure_paths, narSize: r.closure_nar_size, missing: 0 };
      // Stored before migration 6 (or while a reference was missing): sum it now, and keep it once complete.
      if (r) return this.storeClosure(wanted[0]!);
    }
    return this.sumClosure(wanted);
  }

  /** The closure of `hashParts` summed by walking references. */
  private sumClosure(hashParts: readonly string[]): ClosureSize {
    const r = this.st(
      `WITH RECURSIVE c(h) AS (
         SELECT value FROM json_each(?)
         UNION SELECT substr(j.value, 1, 32) FROM c JOIN paths p ON p.hash_part = c.h, json_each(p.refs) j
       )
       SELECT COUNT(p.hash_part) AS paths, COALESCE(SUM(p.nar_size), 0) AS nar_size, COUNT(*) - COUNT(p.hash_part) AS missing
       FROM c LEFT JOIN paths p ON p.hash_part = c.h`,
    ).get(JSON.stringify(hashParts)) as { paths: number; nar_size: number; missing: number };
    return { paths: r.paths, narSize: r.nar_size, missing: r.missing };
  }

  /** Sums a stored path's closure and keeps it on the path when complete (it can never change after that). */
  private storeClosure(hashPart: string): ClosureSize {
    const size = this.sumClosure([hashPart]);
    if (size.missing === 0)
      this.st("UPDATE paths SET closure_paths = ?, closure_nar_size = ? WHERE hash_part = ?").run(size.paths, size.narSize, hashPart);
    return size;
  }

  async setsByMirror(mirrors: readonly string[]): Promise<SetRow[]> {
    if (mirrors.length === 0) return [];
    return (
      this.st(
        `SELECT root, mirrors, indexed_at FROM sets s
         WHERE EXISTS (SELECT 1 FROM json_each(s.mirrors) m WHERE m.value IN (SELECT value FROM json_each(?))) ORDER BY root`,
      ).all(JSON.stringify(unique(mirrors))) as SetRec[]
    ).map(setRow);
  }

  async versionsWithoutDependencies(root: string, limit: number): Promise<VersionRow[]> {
    return (
      this.st(
        `SELECT v.id AS id, v.version AS version, v.rev AS rev, v.origin AS origin, v.manifest AS manifest
         FROM versions v JOIN atoms a ON a.id = v.id WHERE v.deps_indexed = 0 AND a.root = ? ORDER BY v.id, v.version LIMIT ?`,
      ).all(root, bound(limit)) as VersionRec[]
    ).map(versionRow);
  }

  async recordDependencies(entries: readonly { id: string; version: string; deps: readonly DependencyRow[] }[]): Promise<void> {
    const clear = this.st("DELETE FROM version_deps WHERE id = ? AND version = ?");
    const insert = this.st(
      `INSERT INTO version_deps (id, version, tag, dep_label, dep_set, requirement, dependent_label, dependent_root)
       SELECT ?, ?, ?, ?, ?, ?, a.label, a.root FROM atoms a WHERE a.id = ? ON CONFLICT DO NOTHING`,
    );
    const mark = this.st("UPDATE versions SET deps_indexed = 1 WHERE id = ? AND version = ?");
    this.tx(() => {
      for (const e of entries) {
        clear.run(e.id, e.version);
        for (const d of e.deps) insert.run(e.id, e.version, d.tag, d.label, d.set, d.requirement, e.id);
        mark.run(e.id, e.version);
      }
    });
  }

  async dependents(label: string, sets: readonly string[], limit: number, offset: number): Promise<DependentRow[]> {
    // One index walk per set (version_deps_dependents), each stopping after offset + limit rows; merged by dependentsPage.
    const walk = this.st(
      `SELECT id, dependent_root AS root, dependent_label AS label, version, MIN(requirement) AS requirement
       FROM version_deps WHERE dep_label = ? AND dep_set = ?
       GROUP BY dependent_label, dependent_root, id, version
       ORDER BY dependent_label, dependent_root, id, version LIMIT ?`,
    );
    const lists = unique(sets).map((set) => walk.all(label, set, bound(offset) + bound(limit)) as DependentRow[]);
    return dependentsPage(lists, bound(limit), bound(offset));
  }
}

/** The lower-cased label: the first line of an atom's search text (searchText), as migration 6 indexes it. */
const SEARCH_LABEL = "substr(search_text, 1, instr(search_text, char(10)) - 1)";
/** The columns of a search hit: the atom's, and its versions as a JSON array (one row per version costs more). */
const HIT_COLS =
  "id, root, label, description, tags, (SELECT json_group_array(v.version) FROM versions v WHERE v.id = atoms.id) AS versions";
type HitRec = AtomRec & { versions: string };
const hitRow = (r: HitRec): SearchHit => ({ ...atomRow(r), versions: versionsNewestFirst(JSON.parse(r.versions) as string[]) });
/**
 * The atoms whose ids are the JSON array `@ids`, looked up by id: CROSS JOIN keeps that order of the loops (with an
 * ORDER BY label, SQLite would otherwise walk every atom in label order and test each id against the list).
 */
const BY_IDS = "(SELECT value AS wanted FROM json_each(@ids)) CROSS JOIN atoms ON atoms.id = wanted";
/** Search candidates from the trigram index ranked all at once; more walk the atoms in label order (searchTier). */
const SEARCH_RANK_ALL = 100;

/** A LIMIT or OFFSET: a non-negative integer. */
function bound(n: number): number {
  return Math.max(0, Math.floor(n));
}
