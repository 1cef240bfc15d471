/**
 * The PostgreSQL driver (pg Pool), for several stateless servers sharing one database. Arrays are native text[]
 * (pg returns them as JS arrays), build outputs jsonb; BIGINT columns come back as strings and are converted (every
 * value stored — sizes, unix ms, build ids — is below 2^53). The hot statements are named, so each pooled
 * connection prepares them once.
 */
import pg from "pg";
import { CprError } from "../protocol/errors.js";
import { redactUrl } from "../protocol/uri.js";
import {
  buildVersionError,
  newestFirst,
  versionsNewestFirst,
  countsOf,
  likeEscape,
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
import { migratePostgres } from "./migrations.js";
import { PostgresJobs } from "./jobs-postgres.js";

type Big = string | number;

interface SetRec {
  root: string;
  mirrors: string[];
  indexed_at: Big | null;
}
interface AtomRec {
  id: string;
  root: string;
  label: string;
  description: string | null;
  tags: string[];
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
  nar_size: Big;
  file_hash: string;
  file_size: Big;
  compression: PathRow["compression"];
  url: string;
  refs: string[];
  deriver: string | null;
  sigs: string[];
  narinfo: string;
  created_at: Big;
}
interface BuildRec {
  build_id: Big;
  atom_id: string;
  version: string;
  rev: string;
  system: string;
  config_hash: string;
  config: string;
  drv: string;
  outputs: Record<string, string>;
  created_at: Big;
  main_program: string | null;
}
interface TokenRec {
  hash: string;
  sets: string[];
  note: string | null;
  created_at: Big;
  scope: TokenRow["scope"];
}

const setRow = (r: SetRec): SetRow => ({
  root: r.root,
  mirrors: r.mirrors,
  indexedAt: r.indexed_at === null ? null : Number(r.indexed_at),
});
const atomRow = (r: AtomRec): AtomRow => ({ id: r.id, root: r.root, label: r.label, description: r.description, tags: r.tags });
const versionRow = (r: VersionRec): VersionRow => ({ id: r.id, version: r.version, rev: r.rev, origin: r.origin, manifest: r.manifest });
const pathRow = (r: PathRec): PathRow => ({
  hashPart: r.hash_part,
  storePath: r.store_path,
  narHash: r.nar_hash,
  narSize: Number(r.nar_size),
  fileHash: r.file_hash,
  fileSize: Number(r.file_size),
  compression: r.compression,
  url: r.url,
  references: r.refs,
  deriver: r.deriver,
  sigs: r.sigs,
  narinfo: r.narinfo,
  createdAt: Number(r.created_at),
});
const buildRow = (r: BuildRec): BuildRow => ({
  buildId: Number(r.build_id),
  id: r.atom_id,
  version: r.version,
  rev: r.rev,
  system: r.system,
  configHash: r.config_hash,
  config: r.config,
  drv: r.drv,
  outputs: r.outputs,
  ...(r.main_program ? { mainProgram: r.main_program } : {}),
  createdAt: Number(r.created_at),
});
const tokenRow = (r: TokenRec): TokenRow => ({
  hash: r.hash,
  sets: r.sets,
  note: r.note,
  createdAt: Number(r.created_at),
  scope: r.scope ?? "write",
});

interface GraftRec {
  graft_id: Big;
  graft_key: string;
  build_id: Big;
  atom_id: string;
  version: string;
  system: string;
  with_key: string;
  replacements: GraftRow["replacements"];
  algorithm: string;
  outputs: Record<string, string>;
  paths: GraftRow["paths"];
  warnings: GraftRow["warnings"];
  created_at: Big;
}
const graftRow = (r: GraftRec): GraftRow => ({
  graftId: Number(r.graft_id),
  key: r.graft_key,
  buildId: Number(r.build_id),
  id: r.atom_id,
  version: r.version,
  system: r.system,
  withKey: r.with_key,
  replacements: r.replacements,
  algorithm: r.algorithm,
  outputs: r.outputs,
  paths: r.paths,
  warnings: r.warnings,
  createdAt: Number(r.created_at),
});

function pgCode(err: unknown): string | undefined {
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/** Opens a pool and checks that the server answers. */
export async function openPostgres(url: string): Promise<RegistryDb> {
  const where = redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client losing its connection must not crash the server; the next query reports it.
  pool.on("error", () => undefined);
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new CprError("registry.db-connect", `cannot connect to PostgreSQL: ${err instanceof Error ? err.message : String(err)}`, {
      where,
      hint: "check that the server is running and that the URL's user, host, port and database are right",
      cause: err,
    });
  }
  return new PostgresDb(pool, where);
}

class PostgresDb implements RegistryDb {
  readonly kind = "postgres" as const;

  readonly jobs: PostgresJobs;

  constructor(
    private readonly pool: pg.Pool,
    private readonly where: string,
  ) {
    this.jobs = new PostgresJobs(pool, (fn) => this.tx(fn));
  }

  private async q<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(name ? { name, text, values } : { text, values });
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      try {
        const out = await fn(c);
        await c.query("COMMIT");
        return out;
      } catch (err) {
        await c.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
    } finally {
      c.release();
    }
  }

  async migrate(): Promise<void> {
    await migratePostgres(this.pool, this.where);
  }

  async ping(): Promise<void> {
    await this.q("SELECT 1");
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  // ── catalogue ──

  async upsertSet(root: string, mirrors: readonly string[]): Promise<void> {
    await this.q(
      "INSERT INTO sets (root, mirrors, indexed_at) VALUES ($1, $2, NULL) ON CONFLICT (root) DO UPDATE SET mirrors = excluded.mirrors",
      [root, [...mirrors]],
    );
  }

  async listSets(): Promise<SetRow[]> {
    return (await this.q<SetRec>("SELECT root, mirrors, indexed_at FROM sets ORDER BY root")).rows.map(setRow);
  }

  async getSet(root: string): Promise<SetRow | null> {
    const r = (await this.q<SetRec>("SELECT root, mirrors, indexed_at FROM sets WHERE root = $1", [root])).rows[0];
    return r ? setRow(r) : null;
  }

  async recordIndex(root: string, atoms: readonly AtomRow[], versions: readonly VersionRow[], at: number): Promise<void> {
    try {
      await this.tx(async (c) => {
        const touched = await c.query("UPDATE sets SET indexed_at = $1 WHERE root = $2", [at, root]);
        if (touched.rowCount === 0) throw unknownSetError(root);
        if (atoms.length > 0) {
          await c.query(
            `INSERT INTO atoms (id, root, label, description, tags, search_text)
             SELECT a.id, a.root, a.label, a.description, ARRAY(SELECT jsonb_array_elements_text(a.tags)), a.search_text
             FROM jsonb_to_recordset($1::jsonb) AS a(id text, root text, label text, description text, tags jsonb, search_text text)
             ON CONFLICT (id) DO UPDATE SET root = excluded.root, label = excluded.label, description = excluded.description,
               tags = excluded.tags, search_text = excluded.search_text`,
            [
              JSON.stringify(
                atoms.map((a) => ({
                  id: a.id,
                  root: a.root,
                  label: a.label,
                  description: a.description,
                  tags: a.tags,
                  search_text: searchText(a),
                })),
              ),
            ],
          );
        }
        if (versions.length > 0) {
          await c.query(
            `INSERT INTO versions (id, version, rev, origin, manifest)
             SELECT v.id, v.version, v.rev, v.origin, v.manifest
             FROM jsonb_to_recordset($1::jsonb) AS v(id text, version text, rev text, origin text, manifest text)
             ON CONFLICT (id, version) DO NOTHING`,
            [JSON.stringify(versions.map((v) => ({ id: v.id, version: v.version, rev: v.rev, origin: v.origin, manifest: v.manifest })))],
          );
        }
      });
    } catch (err) {
      if (pgCode(err) === "23503") throw indexReferenceError(root, err);
      throw err;
    }
  }

  async indexedVersions(root: string): Promise<{ id: string; version: string; rev: string }[]> {
    return (
      await this.q<{ id: string; version: string; rev: string }>(
        "SELECT v.id, v.version, v.rev FROM versions v JOIN atoms a ON a.id = v.id WHERE a.root = $1 ORDER BY v.id, v.version",
        [root],
      )
    ).rows;
  }

  async search(q: string, limit: number): Promise<SearchHit[]> {
    return this.searchPage(q, limit, 0);
  }

  async atom(id: string): Promise<{ atom: AtomRow; versions: VersionRow[] } | null> {
    const a = (await this.q<AtomRec>("SELECT id, root, label, description, tags FROM atoms WHERE id = $1", [id], "cpr_atom")).rows[0];
    if (!a) return null;
    const versions = (
      await this.q<VersionRec>("SELECT id, version, rev, origin, manifest FROM versions WHERE id = $1", [id], "cpr_atom_versions")
    ).rows.map(versionRow);
    return { atom: atomRow(a), versions: newestFirst(versions) };
  }

  async recordYanks(root: string, yanks: readonly YankRow[]): Promise<void> {
    await this.tx(async (c) => {
      await c.query("DELETE FROM yanks WHERE root = $1", [root]);
      for (const y of yanks)
        await c.query("INSERT INTO yanks (id, version, root, record, reason) VALUES ($1, $2, $3, $4, $5)", [
          y.id,
          y.version,
          root,
          y.record,
          y.reason,
        ]);
    });
  }

  async yanks(id: string): Promise<YankRow[]> {
    return (await this.q<YankRow>("SELECT id, version, record, reason FROM yanks WHERE id = $1 ORDER BY version", [id])).rows;
  }

  // ── binary cache ──

  async getPath(hashPart: string): Promise<PathRow | null> {
    const r = (await this.q<PathRec>("SELECT * FROM paths WHERE hash_part = $1", [hashPart], "cpr_get_path")).rows[0];
    return r ? pathRow(r) : null;
  }

  async getNarinfo(hashPart: string): Promise<string | null> {
    const r = (await this.q<{ narinfo: string }>("SELECT narinfo FROM paths WHERE hash_part = $1", [hashPart], "cpr_get_narinfo")).rows[0];
    return r ? r.narinfo : null;
  }

  async hasNarUrl(url: string): Promise<boolean> {
    return (await this.q("SELECT 1 FROM paths WHERE url = $1 LIMIT 1", [url], "cpr_has_nar_url")).rows.length > 0;
  }

  async insertPath(row: PathRow): Promise<boolean> {
    const res = await this.q(
      `INSERT INTO paths (hash_part, store_path, nar_hash, nar_size, file_hash, file_size, compression, url, refs, deriver, sigs, narinfo, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (hash_part) DO NOTHING`,
      [
        row.hashPart,
        row.storePath,
        row.narHash,
        row.narSize,
        row.fileHash,
        row.fileSize,
        row.compression,
        row.url,
        [...row.references].sort(),
        row.deriver,
        [...row.sigs],
        row.narinfo,
        row.createdAt,
      ],
      "cpr_insert_path",
    );
    if (res.rowCount !== 1) return false;
    await this.storeClosure(row.hashPart);
    return true;
  }

  async missingPaths(hashParts: readonly string[]): Promise<string[]> {
    const wanted = unique(hashParts);
    if (wanted.length === 0) return [];
    const res = await this.q<{ hash_part: string }>(
      "SELECT hash_part FROM paths WHERE hash_part = ANY($1::text[])",
      [wanted],
      "cpr_missing_paths",
    );
    const present = new Set(res.rows.map((r) => r.hash_part));
    return wanted.filter((h) => !present.has(h));
  }

  async countPaths(): Promise<number> {
    return Number((await this.q<{ n: Big }>("SELECT COUNT(*) AS n FROM paths")).rows[0]!.n);
  }

  // ── builds ──

  async insertBuild(row: Omit<BuildRow, "buildId">): Promise<number> {
    try {
      return await this.tx(async (c) => {
        const res = await c.query<{ build_id: Big }>(
          `INSERT INTO builds (atom_id, version, rev, system, config_hash, config, drv, outputs, created_at, main_program)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) RETURNING build_id`,
          [
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
          ],
        );
        const buildId = Number(res.rows[0]!.build_id);
        // The reverse index of build outputs (path → build), kept with every build record (grafts).
        await c.query("INSERT INTO build_outputs (path, build_id) SELECT DISTINCT unnest($1::text[]), $2::bigint ON CONFLICT DO NOTHING", [
          Object.values(row.outputs),
          buildId,
        ]);
        return buildId;
      });
    } catch (err) {
      if (pgCode(err) === "23503") throw buildVersionError(row.id, row.version, err);
      throw err;
    }
  }

  async builds(id: string, system: string): Promise<BuildRow[]> {
    return (
      await this.q<BuildRec>("SELECT * FROM builds WHERE atom_id = $1 AND system = $2 ORDER BY build_id DESC", [id, system], "cpr_builds")
    ).rows.map(buildRow);
  }

  async countBuilds(): Promise<number> {
    return Number((await this.q<{ n: Big }>("SELECT COUNT(*) AS n FROM builds")).rows[0]!.n);
  }

  // ── grafts ──

  async buildsByOutputs(paths: readonly string[]): Promise<{ path: string; build: BuildRow }[]> {
    const wanted = unique(paths);
    if (wanted.length === 0) return [];
    const res = await this.q<BuildRec & { out_path: string }>(
      `SELECT o.path AS out_path, b.* FROM build_outputs o JOIN builds b ON b.build_id = o.build_id
       WHERE o.path = ANY($1::text[]) ORDER BY b.build_id DESC`,
      [wanted],
      "cpr_builds_by_outputs",
    );
    return res.rows.map((r) => ({ path: r.out_path, build: buildRow(r) }));
  }

  async insertGraft(row: Omit<GraftRow, "graftId">, paths: readonly PathRow[]): Promise<{ graft: GraftRow; created: boolean }> {
    return this.tx(async (c) => {
      // Serialise inserts of one key: a concurrent identical request waits, then finds the record.
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [row.key]);
      const had = (await c.query<GraftRec>("SELECT * FROM grafts WHERE graft_key = $1", [row.key])).rows[0];
      if (had) return { graft: graftRow(had), created: false };
      if (paths.length > 0) {
        await c.query(
          `INSERT INTO paths (hash_part, store_path, nar_hash, nar_size, file_hash, file_size, compression, url, refs, deriver, sigs, narinfo, created_at)
           SELECT p.hash_part, p.store_path, p.nar_hash, p.nar_size, p.file_hash, p.file_size, p.compression, p.url,
             ARRAY(SELECT jsonb_array_elements_text(p.refs)), p.deriver, ARRAY(SELECT jsonb_array_elements_text(p.sigs)), p.narinfo, p.created_at
           FROM jsonb_to_recordset($1::jsonb) AS p(hash_part text, store_path text, nar_hash text, nar_size bigint, file_hash text,
             file_size bigint, compression text, url text, refs jsonb, deriver text, sigs jsonb, narinfo text, created_at bigint)
           ON CONFLICT (hash_part) DO NOTHING`,
          [
            JSON.stringify(
              paths.map((p) => ({
                hash_part: p.hashPart,
                store_path: p.storePath,
                nar_hash: p.narHash,
                nar_size: p.narSize,
                file_hash: p.fileHash,
                file_size: p.fileSize,
                compression: p.compression,
                url: p.url,
                refs: [...p.references].sort(),
                deriver: p.deriver,
                sigs: p.sigs,
                narinfo: p.narinfo,
                created_at: p.createdAt,
              })),
            ),
          ],
        );
      }
      const res = await c.query<{ graft_id: Big }>(
        `INSERT INTO grafts (graft_key, build_id, atom_id, version, system, with_key, replacements, algorithm, outputs, paths, warnings, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10::jsonb, $11::jsonb, $12) RETURNING graft_id`,
        [
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
        ],
      );
      return { graft: { ...row, graftId: Number(res.rows[0]!.graft_id) }, created: true };
    });
  }

  async graftByKey(key: string): Promise<GraftRow | null> {
    const r = (await this.q<GraftRec>("SELECT * FROM grafts WHERE graft_key = $1", [key], "cpr_graft_by_key")).rows[0];
    return r ? graftRow(r) : null;
  }

  async graft(graftId: number): Promise<GraftRow | null> {
    const r = (await this.q<GraftRec>("SELECT * FROM grafts WHERE graft_id = $1", [graftId], "cpr_graft")).rows[0];
    return r ? graftRow(r) : null;
  }

  async graftsOfAtom(id: string): Promise<GraftRow[]> {
    return (await this.q<GraftRec>("SELECT * FROM grafts WHERE atom_id = $1 ORDER BY graft_id DESC", [id], "cpr_grafts_of_atom")).rows.map(
      graftRow,
    );
  }

  async graftsOfBuild(buildId: number): Promise<GraftRow[]> {
    return (
      await this.q<GraftRec>("SELECT * FROM grafts WHERE build_id = $1 ORDER BY graft_id DESC", [buildId], "cpr_grafts_of_build")
    ).rows.map(graftRow);
  }

  // ── tokens ──

  async insertToken(row: TokenRow): Promise<void> {
    try {
      await this.q("INSERT INTO tokens (hash, sets, note, created_at, scope) VALUES ($1, $2, $3, $4, $5)", [
        row.hash,
        [...row.sets],
        row.note,
        row.createdAt,
        row.scope ?? "write",
      ]);
    } catch (err) {
      if (pgCode(err) === "23505") throw tokenExistsError(row.hash);
      throw err;
    }
  }

  async tokenByHash(hash: string): Promise<TokenRow | null> {
    const r = (await this.q<TokenRec>("SELECT hash, sets, note, created_at, scope FROM tokens WHERE hash = $1", [hash], "cpr_token"))
      .rows[0];
    return r ? tokenRow(r) : null;
  }

  // ── pages ──

  async counts(): Promise<RegistryCounts> {
    // Kept by triggers (migration 8): one read, however large the registry.
    const rows = (await this.q<{ name: string; n: Big }>("SELECT name, n FROM row_counts", [], "cpr_pages_counts")).rows;
    return countsOf(rows.map((r) => ({ name: r.name, n: Number(r.n) })));
  }

  async searchPage(q: string, limit: number, offset: number): Promise<SearchHit[]> {
    const needle = q.toLowerCase();
    const order = `ORDER BY label COLLATE "C", root COLLATE "C", id COLLATE "C"`;
    // The label and the rest of the search text, written as the pg_trgm indexes (migration 6) are.
    const label = `split_part(search_text, E'\\n', 1)`;
    const rest = `substr(search_text, strpos(search_text, E'\\n') + 1)`;
    const where: Record<SearchTier, string> = {
      label: `${label} LIKE $1 AND ${label} <> $2`,
      rest: `${rest} LIKE $1 AND strpos(${label}, $2) = 0`,
    };
    const rows = await searchInTiers(
      bound(limit),
      bound(offset),
      async () =>
        (await this.q<HitRec>(`SELECT ${HIT_COLS} FROM atoms WHERE ${label} = $1 ${order}`, [needle], "cpr_pages_search_exact")).rows,
      // The planner walks atoms_label_order until the page is full when matches are common, and reads the few
      // candidates of the trigram index when they are rare.
      async (tier, n) =>
        (
          await this.q<HitRec>(
            `SELECT ${HIT_COLS} FROM atoms WHERE ${where[tier]} ${order} LIMIT $3`,
            [`%${likeEscape(needle)}%`, needle, n],
            `cpr_pages_search_${tier}`,
          )
        ).rows,
    );
    return rows.map(hitRow);
  }

  async setAtoms(root: string, limit: number, offset: number): Promise<SearchHit[]> {
    return (
      await this.q<HitRec>(
        `SELECT ${HIT_COLS} FROM atoms WHERE root = $1 ORDER BY label COLLATE "C", id COLLATE "C" LIMIT $2 OFFSET $3`,
        [root, bound(limit), bound(offset)],
        "cpr_pages_set_atoms",
      )
    ).rows.map(hitRow);
  }

  async atomVersions(id: string): Promise<{ atom: AtomRow; versions: VersionSummary[] } | null> {
    const a = (await this.q<AtomRec>("SELECT id, root, label, description, tags FROM atoms WHERE id = $1", [id], "cpr_atom")).rows[0];
    if (!a) return null;
    const versions = (
      await this.q<VersionSummary>("SELECT version, rev, origin FROM versions WHERE id = $1", [id], "cpr_pages_atom_versions")
    ).rows.map((v) => ({ version: v.version, rev: v.rev, origin: v.origin }));
    return { atom: atomRow(a), versions: newestFirst(versions) };
  }

  async versionManifest(id: string, version: string): Promise<string | null> {
    const r = (
      await this.q<{ manifest: string }>(
        "SELECT manifest FROM versions WHERE id = $1 AND version = $2",
        [id, version],
        "cpr_pages_manifest",
      )
    ).rows[0];
    return r ? r.manifest : null;
  }

  async builtVersions(id: string): Promise<string[]> {
    return (await this.q<{ version: string }>("SELECT DISTINCT version FROM builds WHERE atom_id = $1", [id], "cpr_pages_built")).rows.map(
      (r) => r.version,
    );
  }

  async versionBuilds(id: string, version: string, limit: number): Promise<BuildRow[]> {
    return (
      await this.q<BuildRec>(
        "SELECT * FROM builds WHERE atom_id = $1 AND version = $2 ORDER BY build_id DESC LIMIT $3",
        [id, version, bound(limit)],
        "cpr_pages_version_builds",
      )
    ).rows.map(buildRow);
  }

  async closureSize(hashParts: readonly string[]): Promise<ClosureSize> {
    const wanted = unique(hashParts);
    if (wanted.length === 0) return { paths: 0, narSize: 0, missing: 0 };
    if (wanted.length === 1) {
      const r = (
        await this.q<{ closure_paths: Big | null; closure_nar_size: Big | null }>(
          "SELECT closure_paths, closure_nar_size FROM paths WHERE hash_part = $1",
          [wanted[0]],
          "cpr_pages_stored_closure",
        )
      ).rows[0];
      if (r && r.closure_paths !== null && r.closure_nar_size !== null)
        return { paths: Number(r.closure_paths), narSize: Number(r.closure_nar_size), missing: 0 };
      // Stored before migration 6 (or while a reference was missing): sum it now, and keep it once complete.
      if (r) return this.storeClosure(wanted[0]!);
    }
    return this.sumClosure(wanted);
  }

  /** The closure of `hashParts` summed by walking references. */
  private async sumClosure(hashParts: readonly string[]): Promise<ClosureSize> {
    const r = (
      await this.q<{ paths: Big; nar_size: Big; missing: Big }>(
        `WITH RECURSIVE c(h) AS (
           SELECT unnest($1::text[])
           UNION SELECT substr(r, 1, 32) FROM c JOIN paths p ON p.hash_part = c.h CROSS JOIN LATERAL unnest(p.refs) AS r
         )
         SELECT COUNT(p.hash_part) AS paths, COALESCE(SUM(p.nar_size), 0) AS nar_size, COUNT(*) - COUNT(p.hash_part) AS missing
         FROM c LEFT JOIN paths p ON p.hash_part = c.h`,
        [hashParts],
        "cpr_pages_closure",
      )
    ).rows[0]!;
    return { paths: Number(r.paths), narSize: Number(r.nar_size), missing: Number(r.missing) };
  }

  /** Sums a stored path's closure and keeps it on the path when complete (it can never change after that). */
  private async storeClosure(hashPart: string): Promise<ClosureSize> {
    const size = await this.sumClosure([hashPart]);
    if (size.missing === 0)
      await this.q(
        "UPDATE paths SET closure_paths = $1, closure_nar_size = $2 WHERE hash_part = $3",
        [size.paths, size.narSize, hashPart],
        "cpr_store_closure",
      );
    return size;
  }

  async setsByMirror(mirrors: readonly string[]): Promise<SetRow[]> {
    if (mirrors.length === 0) return [];
    return (
      await this.q<SetRec>("SELECT root, mirrors, indexed_at FROM sets WHERE mirrors && $1::text[] ORDER BY root", [unique(mirrors)])
    ).rows.map(setRow);
  }

  async versionsWithoutDependencies(root: string, limit: number): Promise<VersionRow[]> {
    return (
      await this.q<VersionRec>(
        `SELECT v.id, v.version, v.rev, v.origin, v.manifest FROM versions v JOIN atoms a ON a.id = v.id
         WHERE NOT v.deps_indexed AND a.root = $1 ORDER BY v.id, v.version LIMIT $2`,
        [root, bound(limit)],
      )
    ).rows.map(versionRow);
  }

  async recordDependencies(entries: readonly { id: string; version: string; deps: readonly DependencyRow[] }[]): Promise<void> {
    if (entries.length === 0) return;
    const keys = JSON.stringify(entries.map((e) => ({ id: e.id, version: e.version })));
    const rows = JSON.stringify(
      entries.flatMap((e) =>
        e.deps.map((d) => ({ id: e.id, version: e.version, tag: d.tag, dep_label: d.label, dep_set: d.set, requirement: d.requirement })),
      ),
    );
    await this.tx(async (c) => {
      await c.query(
        `DELETE FROM version_deps d USING jsonb_to_recordset($1::jsonb) AS k(id text, version text)
         WHERE d.id = k.id AND d.version = k.version`,
        [keys],
      );
      await c.query(
        `INSERT INTO version_deps (id, version, tag, dep_label, dep_set, requirement, dependent_label, dependent_root)
         SELECT r.id, r.version, r.tag, r.dep_label, r.dep_set, r.requirement, a.label, a.root
         FROM jsonb_to_recordset($1::jsonb) AS r(id text, version text, tag text, dep_label text, dep_set text, requirement text)
         JOIN atoms a ON a.id = r.id
         ON CONFLICT DO NOTHING`,
        [rows],
      );
      await c.query(
        `UPDATE versions v SET deps_indexed = true FROM jsonb_to_recordset($1::jsonb) AS k(id text, version text)
         WHERE v.id = k.id AND v.version = k.version`,
        [keys],
      );
    });
  }

  async dependents(label: string, sets: readonly string[], limit: number, offset: number): Promise<DependentRow[]> {
    // One index walk per set (version_deps_dependents), each stopping after offset + limit rows; merged by dependentsPage.
    const lists = await Promise.all(
      unique(sets).map(async (set) =>
        (
          await this.q<DependentRow>(
            `SELECT id, dependent_root AS root, dependent_label AS label, version, MIN(requirement) AS requirement
               FROM version_deps WHERE dep_label = $1 AND dep_set = $2
               GROUP BY dependent_label, dependent_root, id, version
               ORDER BY dependent_label COLLATE "C", dependent_root COLLATE "C", id COLLATE "C", version COLLATE "C" LIMIT $3`,
            [label, set, bound(offset) + bound(limit)],
            "cpr_pages_dependents",
          )
        ).rows.map((r) => ({ id: r.id, root: r.root, label: r.label, version: r.version, requirement: r.requirement })),
      ),
    );
    return dependentsPage(lists, bound(limit), bound(offset));
  }
}

/** The columns of a search hit: the atom's, and its versions (one row per version costs more). */
const HIT_COLS = "id, root, label, description, tags, ARRAY(SELECT v.version FROM versions v WHERE v.id = atoms.id) AS versions";
type HitRec = AtomRec & { versions: string[] };
const hitRow = (r: HitRec): SearchHit => ({ ...atomRow(r), versions: versionsNewestFirst(r.versions) });

/** A LIMIT or OFFSET: a non-negative integer. */
function bound(n: number): number {
  return Math.max(0, Math.floor(n));
}
