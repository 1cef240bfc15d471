/**
 * Which driver a database URL names (db-sqlite.ts, db-postgres.ts), each loaded only when used. The drivers import
 * db.ts (the interface and their shared helpers); opening lives here so that db.ts imports neither of them.
 */
import { CprError } from "../protocol/errors.js";
import { redactUrl } from "../protocol/uri.js";
import type { RegistryDb } from "./db.js";

/**
 * Opens the database named by `url`: `postgres://…` or `postgresql://…` for PostgreSQL; `sqlite:PATH`, or a plain
 * path, for SQLite. Does not migrate. A PostgreSQL server is contacted once, so an unreachable one fails here.
 */
export async function openDb(url: string): Promise<RegistryDb> {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    const { openPostgres } = await import("./db-postgres.js");
    return openPostgres(url);
  }
  const path = sqlitePath(url);
  const { openSqlite } = await import("./db-sqlite.js");
  return openSqlite(path);
}

/** The file path a SQLite URL names: `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///abs`), or a plain path. */
export function sqlitePath(url: string): string {
  let path = url;
  if (/^sqlite:\/\//i.test(url)) path = url.slice("sqlite://".length);
  else if (/^sqlite:/i.test(url)) path = url.slice("sqlite:".length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new CprError("registry.db-url", `unsupported database URL ${JSON.stringify(redactUrl(url))}`, {
      where: redactUrl(url),
      hint: "use sqlite:PATH (or a plain path) for SQLite, or postgres://user@host:port/db for PostgreSQL",
    });
  }
  if (path === "") {
    throw new CprError("registry.db-url", "empty SQLite path in the database URL", {
      where: url,
      hint: "write sqlite:PATH, e.g. sqlite:/var/lib/cpr/registry.sqlite",
    });
  }
  return path;
}
