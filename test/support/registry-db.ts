/** Throwaway registry databases for the database tests, on SQLite and on the file's shared PostgreSQL server. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import type { RegistryDb } from "../../src/serve/db.js";
import { openDb, sqlitePath } from "../../src/serve/db-open.js";
import type { sharedPostgres } from "./postgres.js";

export type DbKind = "sqlite" | "postgres";

/** A fresh, empty database URL for one test, or null when the test was skipped (no PostgreSQL outside CI). */
export async function freshDbUrl(t: TestContext, kind: DbKind, postgres: ReturnType<typeof sharedPostgres>): Promise<string | null> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "cpr-db-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    return `sqlite:${join(dir, "registry.sqlite")}`;
  }
  const server = await postgres.get(t);
  return server ? server.createDatabase() : null;
}

/** Opens `url`, closed when the test ends. */
export async function openTestDb(t: TestContext, url: string): Promise<RegistryDb> {
  const db = await openDb(url);
  t.after(() => db.close());
  return db;
}

/**
 * Runs one statement on the database at `url` outside the driver (what an older server, or an operator, would do)
 * and returns its rows. Placeholders are `?`, numbered for PostgreSQL.
 */
export async function rawSql(url: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (url.startsWith("postgres")) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      let n = 0;
      return (
        await c.query(
          sql.replace(/\?/g, () => `$${++n}`),
          params,
        )
      ).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  }
  const db = new Database(sqlitePath(url));
  try {
    const st = db.prepare(sql);
    return st.reader ? (st.all(...params) as Record<string, unknown>[]) : (st.run(...params), []);
  } finally {
    db.close();
  }
}
