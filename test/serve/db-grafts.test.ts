/**
 * The graft records of the registry database (docs/grafts.md, "Records"), against both drivers: SQLite in a
 * temporary directory and a real throwaway PostgreSQL server. The reverse index of build outputs (kept by
 * insertBuild, and filled from the existing builds by the migration), one transaction per graft (its paths and its
 * record), one record per key, and the listings.
 */
import assert from "node:assert/strict";
import { after, describe, test, type TestContext } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import type { GraftRow, PathRow, RegistryDb } from "../../src/serve/db.js";
import { sqlitePath } from "../../src/serve/db-open.js";
import { MIGRATIONS } from "../../src/serve/migrations.js";
import { sharedPostgres } from "../support/postgres.js";
import { freshDbUrl, openTestDb, type DbKind } from "../support/registry-db.js";

const postgres = sharedPostgres();
after(() => postgres.stop());

type Kind = DbKind;
const freshUrl = (t: TestContext, kind: Kind) => freshDbUrl(t, kind, postgres);
const open = openTestDb;

async function raw(url: string, statements: readonly string[], sql?: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (url.startsWith("postgres")) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (const s of statements) await c.query(s);
      return sql ? ((await c.query(sql, params)).rows as Record<string, unknown>[]) : [];
    } finally {
      await c.end();
    }
  }
  const db = new Database(sqlitePath(url));
  try {
    for (const s of statements) db.exec(s);
    if (!sql) return [];
    const st = db.prepare(sql);
    return st.reader ? (st.all(...params) as Record<string, unknown>[]) : (st.run(...params), []);
  } finally {
    db.close();
  }
}

const ROOT = "a".repeat(40);
const X = "x".repeat(52);
const Y = "y".repeat(52);
const sp = (c: string, name: string) => `/nix/store/${c.repeat(32)}-${name}`;

function pathRow(storePath: string, references: string[] = []): PathRow {
  const hashPart = storePath.slice(11, 43);
  return {
    hashPart,
    storePath,
    narHash: `sha256:${"1".repeat(52)}`,
    narSize: 100,
    fileHash: `sha256:${"2".repeat(52)}`,
    fileSize: 50,
    compression: "xz",
    url: `nar/${"2".repeat(52)}.nar.xz`,
    references: references.map((r) => r.slice(11)),
    deriver: null,
    sigs: ["cpr-registry-1:c2ln"],
    narinfo: `StorePath: ${storePath}\n`,
    createdAt: 1,
  };
}

async function seed(db: RegistryDb): Promise<{ x: number; y32: number; y33: number }> {
  await db.upsertSet(ROOT, ["https://example.org/set.git"]);
  const v = (id: string, version: string) => ({ id, version, rev: "0".repeat(40), origin: null, manifest: "" });
  await db.recordIndex(
    ROOT,
    [
      { id: X, root: ROOT, label: "x", description: null, tags: [] },
      { id: Y, root: ROOT, label: "y", description: null, tags: [] },
    ],
    [v(X, "1.0.0"), v(Y, "3.2.0"), v(Y, "3.3.0")],
    1,
  );
  const build = (id: string, version: string, outputs: Record<string, string>) =>
    db.insertBuild({
      id,
      version,
      rev: "0".repeat(40),
      system: "x86_64-linux",
      configHash: "c",
      config: "{}",
      drv: "/nix/store/d.drv",
      outputs,
      createdAt: 1,
    });
  return {
    y32: await build(Y, "3.2.0", { out: sp("1", "y-3.2"), lib: sp("2", "y-3.2-lib") }),
    y33: await build(Y, "3.3.0", { out: sp("3", "y-3.3"), lib: sp("4", "y-3.3-lib") }),
    x: await build(X, "1.0.0", { out: sp("5", "x-1.0") }),
  };
}

function record(buildId: number, key: string, over: Partial<GraftRow> = {}): Omit<GraftRow, "graftId"> {
  return {
    key,
    buildId,
    id: X,
    version: "1.0.0",
    system: "x86_64-linux",
    withKey: `${Y}@3.3.0`,
    replacements: [{ id: Y, label: "y", from: "3.2.0", to: "3.3.0" }],
    algorithm: "cpr-graft-v1",
    outputs: { out: sp("6", "x-1.0") },
    paths: [
      { old: sp("1", "y-3.2"), new: sp("3", "y-3.3") },
      { old: sp("5", "x-1.0"), new: sp("6", "x-1.0") },
    ],
    warnings: [{ code: "graft.residue", message: "m", override: "force" }],
    createdAt: 7,
    ...over,
  };
}

for (const kind of ["sqlite", "postgres"] as const) {
  describe(kind, () => {
    test("build outputs are indexed by path, at insert and by the migration for builds recorded before it", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      // A database at schema version 1 with one build, as an older cpr left it.
      const v1 = MIGRATIONS.find((m) => m.version === 1)!;
      const stamp =
        kind === "postgres"
          ? "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
          : "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";
      await raw(url, [
        ...v1[kind],
        stamp,
        "INSERT INTO schema_version (version, name, applied_at) VALUES (1, 'initial schema', 0)",
        `INSERT INTO sets (root, mirrors, indexed_at) VALUES ('${ROOT}', ${kind === "postgres" ? "ARRAY[]::text[]" : "'[]'"}, NULL)`,
        `INSERT INTO atoms (id, root, label, description, tags, search_text) VALUES ('${Y}', '${ROOT}', 'y', NULL, ${kind === "postgres" ? "ARRAY[]::text[]" : "'[]'"}, 'y')`,
        `INSERT INTO versions (id, version, rev, origin, manifest) VALUES ('${Y}', '3.1.0', '${"0".repeat(40)}', NULL, '')`,
        `INSERT INTO builds (atom_id, version, rev, system, config_hash, config, drv, outputs, created_at)
         VALUES ('${Y}', '3.1.0', '${"0".repeat(40)}', 'x86_64-linux', 'c', '{}', '/nix/store/d.drv', '{"out": "${sp("9", "y-3.1")}"}', 1)`,
      ]);
      const db = await open(t, url);
      await db.migrate();
      const old = await db.buildsByOutputs([sp("9", "y-3.1")]);
      assert.deepEqual(
        old.map((o) => [o.path, o.build.version]),
        [[sp("9", "y-3.1"), "3.1.0"]],
      );
      const ids = await seed(db);
      const found = await db.buildsByOutputs([sp("2", "y-3.2-lib"), sp("5", "x-1.0"), sp("7", "nothing"), sp("2", "y-3.2-lib")]);
      assert.deepEqual(
        found.map((f) => [f.path, f.build.buildId]).sort(),
        [
          [sp("2", "y-3.2-lib"), ids.y32],
          [sp("5", "x-1.0"), ids.x],
        ].sort(),
      );
      assert.deepEqual(await db.buildsByOutputs([]), []);
    });

    test("a graft's paths and record go in together; one record per key; listings newest first", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const db = await open(t, url);
      await db.migrate();
      const ids = await seed(db);
      const grafted = pathRow(sp("6", "x-1.0"), [sp("3", "y-3.3"), sp("6", "x-1.0")]);
      const first = await db.insertGraft(record(ids.x, "k1"), [grafted]);
      assert.equal(first.created, true);
      assert.ok(first.graft.graftId > 0);
      assert.deepEqual(await db.getPath(grafted.hashPart), { ...grafted, references: [...grafted.references].sort() });
      assert.deepEqual(await db.graft(first.graft.graftId), first.graft);
      assert.deepEqual(await db.graftByKey("k1"), first.graft);
      assert.equal(await db.graftByKey("nothing"), null);
      assert.equal(await db.graft(999_999), null);

      // The same key again: nothing inserted, the first record answered.
      const paths = await db.countPaths();
      const again = await db.insertGraft(record(ids.x, "k1", { createdAt: 8 }), [pathRow(sp("8", "x-1.0"))]);
      assert.equal(again.created, false);
      assert.deepEqual(again.graft, first.graft);
      assert.equal(await db.countPaths(), paths);

      // A second graft sharing a path already present: the row is kept as it was.
      const second = await db.insertGraft(record(ids.x, "k2", { withKey: `${Y}@3.4.0`, createdAt: 9 }), [{ ...grafted, narinfo: "other" }]);
      assert.equal(second.created, true);
      assert.equal(await db.getNarinfo(grafted.hashPart), grafted.narinfo);
      assert.deepEqual(
        (await db.graftsOfAtom(X)).map((g) => g.key),
        ["k2", "k1"],
      );
      assert.deepEqual(
        (await db.graftsOfBuild(ids.x)).map((g) => g.withKey),
        [`${Y}@3.4.0`, `${Y}@3.3.0`],
      );
      assert.deepEqual(await db.graftsOfBuild(ids.y32), []);

      // A record naming a build that does not exist fails, and its paths are not inserted either.
      const orphan = pathRow(sp("b", "x-1.0"));
      await assert.rejects(db.insertGraft(record(999_999, "k3"), [orphan]));
      assert.equal(await db.getPath(orphan.hashPart), null);
      assert.equal(await db.graftByKey("k3"), null);
    });

    test("concurrent identical requests record one graft", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const dbs = [await open(t, url), await open(t, url), await open(t, url)];
      await dbs[0]!.migrate();
      const ids = await seed(dbs[0]!);
      const results = await Promise.all(dbs.map((db) => db.insertGraft(record(ids.x, "same"), [pathRow(sp("6", "x-1.0"))])));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.graft.graftId)).size, 1);
    });
  });
}
