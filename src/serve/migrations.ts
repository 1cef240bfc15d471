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
    version: 2,
    name: "grafts (issue 11): graft records, and which build each output path belongs to",
    sqlite: [
      `CREATE TABLE build_outputs (
        path TEXT NOT NULL,              -- full store path of one output
        build_id INTEGER NOT NULL REFERENCES builds(build_id),
        PRIMARY KEY (path, build_id)
      )`,
      `INSERT OR IGNORE INTO build_outputs (path, build_id) SELECT j.value, b.build_id FROM builds b, json_each(b.outputs) j`,
      `CREATE TABLE grafts (
        graft_id INTEGER PRIMARY KEY AUTOINCREMENT,
        graft_key TEXT NOT NULL UNIQUE,  -- hex sha256 of the canonical request (grafts.ts graftKey)
        build_id INTEGER NOT NULL REFERENCES builds(build_id),
        atom_id TEXT NOT NULL,
        version TEXT NOT NULL,
        system TEXT NOT NULL,
        with_key TEXT NOT NULL,          -- "<depId>@<version>" sorted, comma-separated (resolve ?with=)
        replacements TEXT NOT NULL,      -- JSON array
        algorithm TEXT NOT NULL,
        outputs TEXT NOT NULL,           -- JSON object
        paths TEXT NOT NULL,             -- JSON array of {old, new}
        warnings TEXT NOT NULL,          -- JSON array
        created_at INTEGER NOT NULL
      )`,
      `CREATE INDEX grafts_build ON grafts(build_id, with_key)`,
      `CREATE INDEX grafts_atom ON grafts(atom_id, graft_id)`,
    ],
    postgres: [
      `CREATE TABLE build_outputs (
        path TEXT NOT NULL,
        build_id BIGINT NOT NULL REFERENCES builds(build_id),
        PRIMARY KEY (path, build_id)
      )`,
      `INSERT INTO build_outputs (path, build_id) SELECT e.value, b.build_id FROM builds b, jsonb_each_text(b.outputs) e ON CONFLICT DO NOTHING`,
      `CREATE TABLE grafts (
        graft_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        graft_key TEXT NOT NULL UNIQUE,
        build_id BIGINT NOT NULL REFERENCES builds(build_id),
        atom_id TEXT NOT NULL,
        version TEXT NOT NULL,
        system TEXT NOT NULL,
        with_key TEXT NOT NULL,
        replacements JSONB NOT NULL,
        algorithm TEXT NOT NULL,
        outputs JSONB NOT NULL,
        paths JSONB NOT NULL,
        warnings JSONB NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE INDEX grafts_build ON grafts(build_id, with_key)`,
      `CREATE INDEX grafts_atom ON grafts(atom_id, graft_id)`,
    ],
  },
  {
    version: 3,
    name: "build farm: jobs, attempts, logs, workers; worker tokens",
    sqlite: [
      `CREATE TABLE jobs (
        job_id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,              -- eval | build
        state TEXT NOT NULL,             -- queued | running | succeeded | failed | cancelled
        atom_id TEXT NOT NULL,
        root TEXT NOT NULL,
        label TEXT NOT NULL,
        version TEXT NOT NULL,
        rev TEXT NOT NULL,
        system TEXT NOT NULL,
        priority INTEGER NOT NULL,
        drv TEXT,
        outputs TEXT,                    -- JSON object
        parent INTEGER,
        attempts INTEGER NOT NULL,
        worker TEXT,
        lease_id TEXT,
        lease_expires INTEGER,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        error TEXT,
        build_id INTEGER
      )`,
      `CREATE UNIQUE INDEX jobs_key ON jobs(kind, atom_id, version, system)`,
      `CREATE INDEX jobs_queue ON jobs(priority DESC, job_id) WHERE state = 'queued'`,
      `CREATE INDEX jobs_running ON jobs(lease_expires) WHERE state = 'running'`,
      `CREATE INDEX jobs_atom ON jobs(atom_id, system)`,
      `CREATE INDEX jobs_state ON jobs(state, job_id)`,
      `CREATE TABLE job_attempts (
        job_id INTEGER NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        worker TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT,                    -- succeeded | failed | expired | released | cancelled; NULL while running
        error TEXT,
        PRIMARY KEY (job_id, attempt)
      )`,
      `CREATE TABLE job_logs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        chunk BLOB NOT NULL,             -- one gzip member
        created_at INTEGER NOT NULL
      )`,
      `CREATE INDEX job_logs_job ON job_logs(job_id, attempt, seq)`,
      `CREATE TABLE workers (
        name TEXT PRIMARY KEY,
        last_seen INTEGER NOT NULL
      )`,
      `ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'`,
    ],
    postgres: [
      `CREATE TABLE jobs (
        job_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        atom_id TEXT NOT NULL,
        root TEXT NOT NULL,
        label TEXT NOT NULL,
        version TEXT NOT NULL,
        rev TEXT NOT NULL,
        system TEXT NOT NULL,
        priority INTEGER NOT NULL,
        drv TEXT,
        outputs JSONB,
        parent BIGINT,
        attempts INTEGER NOT NULL,
        worker TEXT,
        lease_id TEXT,
        lease_expires BIGINT,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        error TEXT,
        build_id BIGINT
      )`,
      `CREATE UNIQUE INDEX jobs_key ON jobs(kind, atom_id, version, system)`,
      `CREATE INDEX jobs_queue ON jobs(priority DESC, job_id) WHERE state = 'queued'`,
      `CREATE INDEX jobs_running ON jobs(lease_expires) WHERE state = 'running'`,
      `CREATE INDEX jobs_atom ON jobs(atom_id, system)`,
      `CREATE INDEX jobs_state ON jobs(state, job_id)`,
      `CREATE TABLE job_attempts (
        job_id BIGINT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        worker TEXT NOT NULL,
        claimed_at BIGINT NOT NULL,
        finished_at BIGINT,
        outcome TEXT,
        error TEXT,
        PRIMARY KEY (job_id, attempt)
      )`,
      `CREATE TABLE job_logs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id BIGINT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        chunk BYTEA NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      `CREATE INDEX job_logs_job ON job_logs(job_id, attempt, seq)`,
      `CREATE TABLE workers (
        name TEXT PRIMARY KEY,
        last_seen BIGINT NOT NULL
      )`,
      `ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'`,
    ],
  },
  {
    version: 4,
    name: "yanked versions; builds.main_program",
    // The yank records the catalogue last saw on a set (docs/formats.md §15.5), replaced at each index pass; and the
    // meta.mainProgram a build record may carry (cpr run).
    sqlite: [
      `CREATE TABLE yanks (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        root TEXT NOT NULL REFERENCES sets(root) ON DELETE CASCADE,
        record TEXT NOT NULL,            -- blob id of refs/eka/yank/<label>/<version>
        reason TEXT,                     -- null when the record could not be read
        PRIMARY KEY (id, version)
      )`,
      `CREATE INDEX yanks_root ON yanks(root)`,
      `ALTER TABLE builds ADD COLUMN main_program TEXT`,
    ],
    postgres: [
      `CREATE TABLE yanks (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        root TEXT NOT NULL REFERENCES sets(root) ON DELETE CASCADE,
        record TEXT NOT NULL,
        reason TEXT,
        PRIMARY KEY (id, version)
      )`,
      `CREATE INDEX yanks_root ON yanks(root)`,
      `ALTER TABLE builds ADD COLUMN main_program TEXT`,
    ],
  },
  {
    version: 5,
    // The web pages (src/serve/pages/): reverse dependencies and a version's builds without scanning.
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
  {
    version: 6,
    // Pages without work proportional to the registry: a page of dependents is an index walk that stops at the
    // page's end (the depending atom's label and root, which its AtomId fixes, kept beside each row); a path's
    // closure size is summed once, when it is stored (a stored path's closure never changes); and (SQLite) a search
    // reads its tiers only as far as the page needs.
    name: "bounded pages",
    sqlite: [
      `ALTER TABLE version_deps ADD COLUMN dependent_label TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE version_deps ADD COLUMN dependent_root TEXT NOT NULL DEFAULT ''`,
      `UPDATE version_deps SET
         dependent_label = COALESCE((SELECT a.label FROM atoms a WHERE a.id = version_deps.id), ''),
         dependent_root = COALESCE((SELECT a.root FROM atoms a WHERE a.id = version_deps.id), '')`,
      `DROP INDEX version_deps_target`,
      `CREATE INDEX version_deps_dependents ON version_deps(dep_label, dep_set, dependent_label, dependent_root, id, version)`,
      `ALTER TABLE paths ADD COLUMN closure_paths INTEGER`,
      `ALTER TABLE paths ADD COLUMN closure_nar_size INTEGER`,
      // Search (db-sqlite.ts searchPage): when a text is common, its tiers are read in label order only as far as
      // the page needs: atoms in label order with their lower-cased labels (a walk), exact labels, and a trigram
      // index of labels alone.
      // A trigram index of labels alone, kept in step with atoms by triggers of its own.
      `CREATE VIRTUAL TABLE atoms_fts_label USING fts5(id UNINDEXED, text, tokenize = 'trigram')`,
      `INSERT INTO atoms_fts_label (id, text) SELECT id, substr(search_text, 1, instr(search_text, char(10)) - 1) FROM atoms`,
      `CREATE TRIGGER atoms_fts_label_insert AFTER INSERT ON atoms BEGIN
        INSERT INTO atoms_fts_label (id, text) VALUES (new.id, substr(new.search_text, 1, instr(new.search_text, char(10)) - 1));
      END`,
      `CREATE TRIGGER atoms_fts_label_update AFTER UPDATE OF search_text ON atoms WHEN old.search_text IS NOT new.search_text BEGIN
        DELETE FROM atoms_fts_label WHERE id = old.id;
        INSERT INTO atoms_fts_label (id, text) VALUES (new.id, substr(new.search_text, 1, instr(new.search_text, char(10)) - 1));
      END`,
      `CREATE TRIGGER atoms_fts_label_delete AFTER DELETE ON atoms BEGIN
        DELETE FROM atoms_fts_label WHERE id = old.id;
      END`,
      // The lower-cased label is the search text's first line; these indexes keep it (db-sqlite.ts SEARCH_LABEL).
      `CREATE INDEX atoms_label_order ON atoms(label, root, id, substr(search_text, 1, instr(search_text, char(10)) - 1))`,
      `CREATE INDEX atoms_search_label ON atoms(substr(search_text, 1, instr(search_text, char(10)) - 1))`,
    ],
    postgres: [
      `ALTER TABLE version_deps ADD COLUMN dependent_label TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE version_deps ADD COLUMN dependent_root TEXT NOT NULL DEFAULT ''`,
      `UPDATE version_deps d SET dependent_label = a.label, dependent_root = a.root FROM atoms a WHERE a.id = d.id`,
      `DROP INDEX version_deps_target`,
      `CREATE INDEX version_deps_dependents ON version_deps(dep_label, dep_set, dependent_label COLLATE "C",
         dependent_root COLLATE "C", id COLLATE "C", version COLLATE "C")`,
      `ALTER TABLE paths ADD COLUMN closure_paths BIGINT`,
      `ALTER TABLE paths ADD COLUMN closure_nar_size BIGINT`,
      // Search in tiers (db-postgres.ts searchPage): atoms in label order with their search text, exact (lower-cased)
      // labels, and pg_trgm indexes of the label and of the rest of the search text when the extension can be created (without
      // them a rare text walks every atom, still in one index).
      `DO $$ BEGIN
         CREATE EXTENSION IF NOT EXISTS pg_trgm;
       EXCEPTION WHEN OTHERS THEN
         RAISE NOTICE 'pg_trgm is not available (%): searches for rare texts walk every atom', SQLERRM;
       END $$`,
      `CREATE INDEX atoms_label_order ON atoms (label COLLATE "C", root COLLATE "C", id COLLATE "C") INCLUDE (search_text)`,
      `CREATE INDEX atoms_search_label ON atoms (split_part(search_text, E'\\n', 1))`,
      `DO $$ BEGIN
         IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
           CREATE INDEX atoms_search_label_trgm ON atoms USING gin (split_part(search_text, E'\\n', 1) gin_trgm_ops);
           CREATE INDEX atoms_search_rest_trgm ON atoms USING gin (substr(search_text, strpos(search_text, E'\\n') + 1) gin_trgm_ops);
         END IF;
       END $$`,
    ],
  },
  {
    version: 7,
    // The build farm carries meta.mainProgram (docs/farm.md): an evaluation says it, the build job that follows
    // keeps it, and the build record gets it (cpr run).
    name: "jobs.main_program",
    sqlite: [`ALTER TABLE jobs ADD COLUMN main_program TEXT`],
    postgres: [`ALTER TABLE jobs ADD COLUMN main_program TEXT`],
  },
  {
    version: 8,
    // The home page's counts without counting: each table's rows are counted once here, then kept by triggers in
    // the same transaction as every insert and delete (an upsert that updates, or an insert that is ignored, adds
    // nothing).
    name: "row counts",
    sqlite: [
      `CREATE TABLE row_counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)`,
      `INSERT INTO row_counts (name, n) VALUES ('sets', (SELECT COUNT(*) FROM sets)), ('atoms', (SELECT COUNT(*) FROM atoms)), ('versions', (SELECT COUNT(*) FROM versions)), ('builds', (SELECT COUNT(*) FROM builds))`,
      `CREATE TRIGGER sets_count_insert AFTER INSERT ON sets BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'sets'; END`,
      `CREATE TRIGGER sets_count_delete AFTER DELETE ON sets BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'sets'; END`,
      `CREATE TRIGGER atoms_count_insert AFTER INSERT ON atoms BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'atoms'; END`,
      `CREATE TRIGGER atoms_count_delete AFTER DELETE ON atoms BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'atoms'; END`,
      `CREATE TRIGGER versions_count_insert AFTER INSERT ON versions BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'versions'; END`,
      `CREATE TRIGGER versions_count_delete AFTER DELETE ON versions BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'versions'; END`,
      `CREATE TRIGGER builds_count_insert AFTER INSERT ON builds BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'builds'; END`,
      `CREATE TRIGGER builds_count_delete AFTER DELETE ON builds BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'builds'; END`,
    ],
    postgres: [
      `CREATE TABLE row_counts (name TEXT PRIMARY KEY, n BIGINT NOT NULL)`,
      `INSERT INTO row_counts (name, n) VALUES ('sets', (SELECT COUNT(*) FROM sets)), ('atoms', (SELECT COUNT(*) FROM atoms)), ('versions', (SELECT COUNT(*) FROM versions)), ('builds', (SELECT COUNT(*) FROM builds))`,
      // Per statement, from its transition table; a statement that changed nothing (ON CONFLICT DO NOTHING) does
      // not touch, and so does not lock, the count.
      `CREATE FUNCTION cpr_row_count() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE d BIGINT;
       BEGIN
         SELECT count(*) INTO d FROM changed;
         IF d > 0 THEN
           UPDATE row_counts SET n = n + (CASE TG_OP WHEN 'INSERT' THEN d ELSE -d END) WHERE name = TG_TABLE_NAME;
         END IF;
         RETURN NULL;
       END $$`,
      `CREATE TRIGGER sets_count_insert AFTER INSERT ON sets REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER sets_count_delete AFTER DELETE ON sets REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER atoms_count_insert AFTER INSERT ON atoms REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER atoms_count_delete AFTER DELETE ON atoms REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER versions_count_insert AFTER INSERT ON versions REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER versions_count_delete AFTER DELETE ON versions REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER builds_count_insert AFTER INSERT ON builds REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
      `CREATE TRIGGER builds_count_delete AFTER DELETE ON builds REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cpr_row_count()`,
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
