/**
 * Versioned schema migrations for the registry database, one list for both dialects. `schema_version` holds one
 * row per applied migration. Each migration runs in the transaction that records it, so a crash leaves the schema at
 * the previous version.
 *
 * Concurrency: SQLite takes the write lock first (BEGIN IMMEDIATE, waiting up to busy_timeout); PostgreSQL takes a
 * transaction-scoped advisory lock (pg_advisory_xact_lock) before looking at schema_version, so several servers
 * starting at once apply each migration exactly once.
 *
 * Never edit a released migration: append a new one.
 */
import type BetterSqlite3 from "better-sqlite3";
import type { Pool } from "pg";
import { CprError } from "../protocol/errors.js";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sqlite: readonly string[];
  readonly postgres: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sqlite: [
      `CREATE TABLE sets (
        root TEXT PRIMARY KEY,
        mirrors TEXT NOT NULL,           -- JSON array of URLs
        indexed_at INTEGER               -- unix ms
      )`,
      `CREATE TABLE atoms (
        id TEXT PRIMARY KEY,
        root TEXT NOT NULL REFERENCES sets(root) ON DELETE CASCADE,
        label TEXT NOT NULL,
        description TEXT,
        tags TEXT NOT NULL,              -- JSON array
        search_text TEXT NOT NULL        -- lower-cased label, description, tags (db.ts searchText)
      )`,
      `CREATE INDEX atoms_root_label ON atoms(root, label)`,
      `CREATE TABLE versions (
        id TEXT NOT NULL REFERENCES atoms(id) ON DELETE CASCADE,
        version TEXT NOT NULL,
        rev TEXT NOT NULL,
        origin TEXT,
        manifest TEXT NOT NULL,
        PRIMARY KEY (id, version)
      )`,
      `CREATE TABLE paths (
        hash_part TEXT PRIMARY KEY,
        store_path TEXT NOT NULL,
        nar_hash TEXT NOT NULL,
        nar_size INTEGER NOT NULL,
        file_hash TEXT NOT NULL,
        file_size INTEGER NOT NULL,
        compression TEXT NOT NULL,
        url TEXT NOT NULL,
        refs TEXT NOT NULL,              -- JSON array of basenames
        deriver TEXT,
        sigs TEXT NOT NULL,              -- JSON array
        narinfo TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      `CREATE TABLE builds (
        build_id INTEGER PRIMARY KEY AUTOINCREMENT,
        atom_id TEXT NOT NULL,
        version TEXT NOT NULL,
        rev TEXT NOT NULL,
        system TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        config TEXT NOT NULL,
        drv TEXT NOT NULL,
        outputs TEXT NOT NULL,           -- JSON object
        created_at INTEGER NOT NULL,
        FOREIGN KEY (atom_id, version) REFERENCES versions(id, version)
      )`,
      `CREATE INDEX builds_atom_system ON builds(atom_id, system, build_id)`,
      `CREATE TABLE tokens (
        hash TEXT PRIMARY KEY,
        sets TEXT NOT NULL,              -- JSON array of roots
        note TEXT,
        created_at INTEGER NOT NULL
      )`,
    ],
    postgres: [
      `CREATE TABLE sets (
        root TEXT PRIMARY KEY,
        mirrors TEXT[] NOT NULL,
        indexed_at BIGINT
      )`,
      `CREATE TABLE atoms (
        id TEXT PRIMARY KEY,
        root TEXT NOT NULL REFERENCES sets(root) ON DELETE CASCADE,
        label TEXT NOT NULL,
        description TEXT,
        tags TEXT[] NOT NULL,
        search_text TEXT NOT NULL
      )`,
      `CREATE INDEX atoms_root_label ON atoms(root, label)`,
      `CREATE TABLE versions (
        id TEXT NOT NULL REFERENCES atoms(id) ON DELETE CASCADE,
        version TEXT NOT NULL,
        rev TEXT NOT NULL,
        origin TEXT,
        manifest TEXT NOT NULL,
        PRIMARY KEY (id, version)
      )`,
      `CREATE TABLE paths (
        hash_part TEXT PRIMARY KEY,
        store_path TEXT NOT NULL,
        nar_hash TEXT NOT NULL,
        nar_size BIGINT NOT NULL,
        file_hash TEXT NOT NULL,
        file_size BIGINT NOT NULL,
        compression TEXT NOT NULL,
        url TEXT NOT NULL,
        refs TEXT[] NOT NULL,
        deriver TEXT,
        sigs TEXT[] NOT NULL,
        narinfo TEXT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE TABLE builds (
        build_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        atom_id TEXT NOT NULL,
        version TEXT NOT NULL,
        rev TEXT NOT NULL,
        system TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        config TEXT NOT NULL,
        drv TEXT NOT NULL,
        outputs JSONB NOT NULL,
        created_at BIGINT NOT NULL,
        FOREIGN KEY (atom_id, version) REFERENCES versions(id, version)
      )`,
      `CREATE INDEX builds_atom_system ON builds(atom_id, system, build_id)`,
      `CREATE TABLE tokens (
        hash TEXT PRIMARY KEY,
        sets TEXT[] NOT NULL,
        note TEXT,
        created_at BIGINT NOT NULL
      )`,
    ],
  },
  {
    // The web pages (src/serve/pages/): reverse dependencies and a version's builds without scanning.
    version: 2,
    name: "dependency index for the pages",
    sqlite: [
      `CREATE TABLE version_deps (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        tag TEXT NOT NULL,
        dep_label TEXT NOT NULL,
        dep_set TEXT NOT NULL,           -- the depending atom's root for "::", else the mirror URL text
        requirement TEXT NOT NULL,
        PRIMARY KEY (id, version, tag, dep_label, dep_set),
        FOREIGN KEY (id, version) REFERENCES versions(id, version) ON DELETE CASCADE
      )`,
      `CREATE INDEX version_deps_target ON version_deps(dep_label, dep_set)`,
      `ALTER TABLE versions ADD COLUMN deps_indexed INTEGER NOT NULL DEFAULT 0`,
      `CREATE INDEX versions_deps_pending ON versions(id) WHERE deps_indexed = 0`,
      `CREATE INDEX builds_atom_version ON builds(atom_id, version, build_id)`,
      // Search by substring without scanning every atom: a trigram index of the search text (queries of 3 or more
      // characters; db-sqlite.ts searchPage), kept in step with atoms by triggers.
      `CREATE VIRTUAL TABLE atoms_fts USING fts5(id UNINDEXED, text, tokenize = 'trigram')`,
      `INSERT INTO atoms_fts (id, text) SELECT id, search_text FROM atoms`,
      `CREATE TRIGGER atoms_fts_insert AFTER INSERT ON atoms BEGIN
        INSERT INTO atoms_fts (id, text) VALUES (new.id, new.search_text);
      END`,
      `CREATE TRIGGER atoms_fts_update AFTER UPDATE OF search_text ON atoms WHEN old.search_text IS NOT new.search_text BEGIN
        DELETE FROM atoms_fts WHERE id = old.id;
        INSERT INTO atoms_fts (id, text) VALUES (new.id, new.search_text);
      END`,
      `CREATE TRIGGER atoms_fts_delete AFTER DELETE ON atoms BEGIN
        DELETE FROM atoms_fts WHERE id = old.id;
      END`,
    ],
    postgres: [
      `CREATE TABLE version_deps (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        tag TEXT NOT NULL,
        dep_label TEXT NOT NULL,
        dep_set TEXT NOT NULL,
        requirement TEXT NOT NULL,
        PRIMARY KEY (id, version, tag, dep_label, dep_set),
        FOREIGN KEY (id, version) REFERENCES versions(id, version) ON DELETE CASCADE
      )`,
      `CREATE INDEX version_deps_target ON version_deps(dep_label, dep_set)`,
      `ALTER TABLE versions ADD COLUMN deps_indexed BOOLEAN NOT NULL DEFAULT false`,
      `CREATE INDEX versions_deps_pending ON versions(id) WHERE NOT deps_indexed`,
      `CREATE INDEX builds_atom_version ON builds(atom_id, version, build_id)`,
    ],
  },
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Arbitrary constant key of the advisory lock that serialises migrations ("cpr-reg" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x6370722d726567n;

function tooNew(found: number, where: string): CprError {
  return new CprError(
    "registry.schema-too-new",
    `the registry database has schema version ${found}, newer than this cpr understands (${SCHEMA_VERSION})`,
    { where, hint: "upgrade cpr on this server to the version the other servers sharing the database run" },
  );
}

/** Applies every pending migration to a SQLite database (better-sqlite3 handle). Returns the versions applied. */
export function migrateSqlite(db: BetterSqlite3.Database, where: string): number[] {
  const applied: number[] = [];
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    const current = (db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version").pluck().get() as number) ?? 0;
    if (current > SCHEMA_VERSION) throw tooNew(current, where);
    const record = db.prepare("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)");
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      for (const sql of m.sqlite) db.exec(sql);
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    db.exec("COMMIT");
  } catch (err) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw err;
  }
  return applied;
}

/** Applies every pending migration to a PostgreSQL database, under the advisory lock. Returns the versions applied. */
export async function migratePostgres(pool: Pool, where: string): Promise<number[]> {
  const applied: number[] = [];
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY.toString()]);
      await client.query(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
      );
      const res = await client.query<{ v: number }>("SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_version");
      const current = res.rows[0]?.v ?? 0;
      if (current > SCHEMA_VERSION) throw tooNew(current, where);
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        for (const sql of m.postgres) await client.query(sql);
        await client.query("INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)", [m.version, m.name, Date.now()]);
        applied.push(m.version);
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
  }
  return applied;
}
