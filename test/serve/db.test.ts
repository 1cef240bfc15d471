/**
 * The registry database, one suite run against both drivers: SQLite in a temporary directory, and a real throwaway
 * PostgreSQL server (one per file, one database per test).
 */
import assert from "node:assert/strict";
import { after, describe, test, type TestContext } from "node:test";
import { CprError } from "../../src/protocol/errors.js";
import type { AtomRow, PathRow, RegistryDb, VersionRow } from "../../src/serve/db.js";
import { openDb, sqlitePath } from "../../src/serve/db-open.js";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/serve/migrations.js";
import { sharedPostgres } from "../support/postgres.js";
import { freshDbUrl, openTestDb, rawSql, type DbKind } from "../support/registry-db.js";

const postgres = sharedPostgres();
after(() => postgres.stop());

type Kind = DbKind;
const freshUrl = (t: TestContext, kind: Kind) => freshDbUrl(t, kind, postgres);
const open = openTestDb;

/** A migrated database for one test, or null when skipped. */
async function fresh(t: TestContext, kind: Kind): Promise<{ db: RegistryDb; url: string } | null> {
  const url = await freshUrl(t, kind);
  if (!url) return null;
  const db = await open(t, url);
  await db.migrate();
  return { db, url };
}

const ROOT_A = "a".repeat(40);
const ROOT_B = "b".repeat(64);
const idOf = (c: string): string => c.repeat(52);

function atom(id: string, root: string, label: string, description: string | null, tags: string[] = []): AtomRow {
  return { id, root, label, description, tags };
}
function version(id: string, v: string, rev = `${v}`.padEnd(40, "0").replace(/[^0-9a-f]/g, "0")): VersionRow {
  return { id, version: v, rev, origin: null, manifest: `[atom]\nversion = "${v}"\n` };
}
function pathRow(hashPart: string, over: Partial<PathRow> = {}): PathRow {
  const storePath = `/nix/store/${hashPart}-thing`;
  return {
    hashPart,
    storePath,
    narHash: `sha256:${"1".repeat(52)}`,
    narSize: 5_000_000_000,
    fileHash: `sha256:${"2".repeat(52)}`,
    fileSize: 1234,
    compression: "xz",
    url: `nar/${"2".repeat(52)}.nar.xz`,
    references: [`${"z".repeat(32)}-b`, `${"0".repeat(32)}-a`],
    deriver: `${"d".repeat(32)}-thing.drv`,
    sigs: ["cache-1:c2ln"],
    narinfo: `StorePath: ${storePath}\n`,
    createdAt: 1_700_000_000_123,
    ...over,
  };
}
const hash = (c: string): string => c.repeat(32);

function isCprError(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof CprError, `expected CprError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.ok(err.hint, "the error says how to fix it");
    return true;
  };
}

test("openDb refuses a URL scheme it does not know", async () => {
  await assert.rejects(openDb("mysql://u@h/db"), isCprError("registry.db-url"));
  await assert.rejects(openDb("sqlite:"), isCprError("registry.db-url"));
  assert.equal(sqlitePath("sqlite:///var/x.sqlite"), "/var/x.sqlite");
  assert.equal(sqlitePath("sqlite:rel/x.sqlite"), "rel/x.sqlite");
  assert.equal(sqlitePath("/abs/x.sqlite"), "/abs/x.sqlite");
});

test("openDb fails early, without the password, when PostgreSQL is unreachable", async (t) => {
  const server = await postgres.get(t);
  if (!server) return;
  // The shared server's port with a database that does not exist: a real refusal from a real server.
  const url = `postgres://postgres:secret@127.0.0.1:${server.port}/no_such_database`;
  await assert.rejects(openDb(url), (err: unknown) => {
    assert.ok(isCprError("registry.db-connect")(err));
    assert.ok(!(err as CprError).where?.includes("secret"), "the password is redacted");
    return true;
  });
});

for (const kind of ["sqlite", "postgres"] as const) {
  describe(kind, () => {
    test("migrations are idempotent and recorded once", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      assert.equal(f.db.kind, kind);
      await f.db.upsertSet(ROOT_A, ["https://example.org/a.git"]);
      await f.db.migrate();
      const again = await open(t, f.url);
      await again.migrate();
      const rows = await rawSql(f.url, "SELECT version FROM schema_version ORDER BY version");
      assert.deepEqual(
        rows.map((r) => Number(r.version)),
        MIGRATIONS.map((m) => m.version),
      );
      assert.deepEqual(await again.listSets(), [{ root: ROOT_A, mirrors: ["https://example.org/a.git"], indexedAt: null }]);
      await again.ping();
    });

    test("concurrent migrations from several servers apply each migration once", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const dbs = await Promise.all([1, 2, 3, 4].map(() => open(t, url)));
      await Promise.all(dbs.map((db) => db.migrate()));
      const rows = await rawSql(url, "SELECT version FROM schema_version ORDER BY version");
      assert.deepEqual(
        rows.map((r) => Number(r.version)),
        MIGRATIONS.map((m) => m.version),
      );
      for (const db of dbs) assert.equal(await db.countPaths(), 0);
    });

    test("a schema newer than this code is refused", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      await rawSql(f.url, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)", [
        SCHEMA_VERSION + 1,
        "from the future",
        0,
      ]);
      await assert.rejects(f.db.migrate(), isCprError("registry.schema-too-new"));
    });

    test("sets: upsert replaces mirrors, list is ordered, recordIndex stamps indexedAt", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      assert.equal(await db.getSet(ROOT_A), null);
      await db.upsertSet(ROOT_B, ["https://b.example/x.git"]);
      await db.upsertSet(ROOT_A, ["https://one.example/a.git", "git://two.example/a.git"]);
      await db.recordIndex(ROOT_A, [], [], 1_700_000_000_000);
      await db.upsertSet(ROOT_A, ["ssh://three.example/a.git"]);
      assert.deepEqual(await db.listSets(), [
        { root: ROOT_A, mirrors: ["ssh://three.example/a.git"], indexedAt: 1_700_000_000_000 },
        { root: ROOT_B, mirrors: ["https://b.example/x.git"], indexedAt: null },
      ]);
      assert.deepEqual(await db.getSet(ROOT_B), { root: ROOT_B, mirrors: ["https://b.example/x.git"], indexedAt: null });
    });

    test("recordIndex upserts atoms, keeps existing versions, and atom() lists versions newest first", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      const hello = idOf("h");
      await db.upsertSet(ROOT_A, ["https://a.example/a.git"]);
      await db.recordIndex(
        ROOT_A,
        [atom(hello, ROOT_A, "hello", "Prints a greeting", ["gnu", "demo"])],
        ["1.2.0", "1.10.0", "1.9.0", "1.2.0-rc.1", "0.1.0"].map((v) => version(hello, v)),
        1,
      );
      // Second pass: description and tags replaced; 1.2.0 re-sent with another rev keeps its row; 2.0.0 added.
      await db.recordIndex(
        ROOT_A,
        [atom(hello, ROOT_A, "hello", "Greets", ["c"])],
        [
          { ...version(hello, "1.2.0"), rev: "f".repeat(40) },
          { ...version(hello, "2.0.0"), origin: "e".repeat(40) },
        ],
        2,
      );
      const got = await db.atom(hello);
      assert.ok(got);
      assert.deepEqual(got.atom, atom(hello, ROOT_A, "hello", "Greets", ["c"]));
      assert.deepEqual(
        got.versions.map((v) => v.version),
        ["2.0.0", "1.10.0", "1.9.0", "1.2.0", "1.2.0-rc.1", "0.1.0"],
      );
      assert.equal(got.versions.find((v) => v.version === "1.2.0")!.rev, version(hello, "1.2.0").rev);
      assert.equal(got.versions[0]!.origin, "e".repeat(40));
      assert.equal(got.versions[0]!.manifest, '[atom]\nversion = "2.0.0"\n');
      assert.equal(await db.atom(idOf("x")), null);
      const indexed = await db.indexedVersions(ROOT_A);
      assert.equal(indexed.length, 6);
      assert.ok(indexed.every((v) => v.id === hello));
      assert.deepEqual(await db.indexedVersions(ROOT_B), []);
      assert.equal((await db.getSet(ROOT_A))!.indexedAt, 2);
    });

    test("recordYanks replaces a set's yanked versions in one go; yanks() lists an atom's", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      const hello = idOf("h");
      const other = idOf("o");
      await db.upsertSet(ROOT_A, ["https://a.example/a.git"]);
      await db.upsertSet(ROOT_B, ["https://b.example/b.git"]);
      await db.recordIndex(ROOT_A, [atom(hello, ROOT_A, "hello", null)], [version(hello, "1.0.0"), version(hello, "1.1.0")], 1);
      await db.recordIndex(ROOT_B, [atom(other, ROOT_B, "other", null)], [version(other, "2.0.0")], 1);
      assert.deepEqual(await db.yanks(hello), []);
      await db.recordYanks(ROOT_A, [
        { id: hello, version: "1.1.0", record: "a".repeat(40), reason: "broken" },
        { id: hello, version: "1.0.0", record: "b".repeat(40), reason: null },
      ]);
      await db.recordYanks(ROOT_B, [{ id: other, version: "2.0.0", record: "c".repeat(40), reason: "old" }]);
      assert.deepEqual(await db.yanks(hello), [
        { id: hello, version: "1.0.0", record: "b".repeat(40), reason: null },
        { id: hello, version: "1.1.0", record: "a".repeat(40), reason: "broken" },
      ]);
      // The next pass saw only one (the other was undone); the other set is untouched.
      await db.recordYanks(ROOT_A, [{ id: hello, version: "1.1.0", record: "a".repeat(40), reason: "broken" }]);
      assert.deepEqual(
        (await db.yanks(hello)).map((y) => y.version),
        ["1.1.0"],
      );
      assert.deepEqual(
        (await db.yanks(other)).map((y) => y.reason),
        ["old"],
      );
      await db.recordYanks(ROOT_A, []);
      assert.deepEqual(await db.yanks(hello), []);
    });

    test("recordIndex refuses an unknown set, and a dangling version without recording anything", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      await assert.rejects(db.recordIndex(ROOT_B, [], [], 5), isCprError("registry.unknown-set"));
      await db.upsertSet(ROOT_A, []);
      await assert.rejects(
        db.recordIndex(ROOT_A, [atom(idOf("h"), ROOT_A, "hello", null)], [version(idOf("h"), "1.0.0"), version(idOf("q"), "1.0.0")], 7),
        isCprError("registry.index-reference"),
      );
      assert.equal(await db.atom(idOf("h")), null, "the failed pass recorded nothing");
      assert.equal((await db.getSet(ROOT_A))!.indexedAt, null);
    });

    test("search matches label, description and tags case-insensitively, exact label first", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      await db.upsertSet(ROOT_A, []);
      await db.upsertSet(ROOT_B, []);
      const atoms = [
        atom(idOf("1"), ROOT_A, "hello-extra", "More greetings", []),
        atom(idOf("2"), ROOT_A, "hello", "Prints a greeting", ["gnu"]),
        atom(idOf("3"), ROOT_A, "cowsay", "A talking cow that says HELLO", []),
        atom(idOf("4"), ROOT_A, "figlet", null, ["Banner", "Hello-World"]),
        atom(idOf("5"), ROOT_A, "ripgrep", "Searches fast", ["rust"]),
      ];
      await db.recordIndex(
        ROOT_A,
        atoms,
        [version(idOf("2"), "2.9.0"), version(idOf("2"), "2.12.1"), version(idOf("2"), "2.10.0"), version(idOf("1"), "0.1.0")],
        1,
      );
      await db.recordIndex(ROOT_B, [atom(idOf("6"), ROOT_B, "Hello", "Another set's hello", [])], [version(idOf("6"), "1.0.0")], 1);

      const hits = await db.search("HeLLo", 50);
      const labels = hits.map((h) => `${h.label}@${h.root === ROOT_A ? "a" : "b"}`);
      assert.deepEqual(labels.slice(0, 2).sort(), ["Hello@b", "hello@a"], "exact label matches (any case) come first");
      assert.deepEqual(labels.slice(2), ["hello-extra@a", "cowsay@a", "figlet@a"], "then label matches, then description/tags");
      const hello = hits.find((h) => h.id === idOf("2"))!;
      assert.deepEqual(hello.versions, ["2.12.1", "2.10.0", "2.9.0"]);
      assert.deepEqual(hello.tags, ["gnu"]);
      assert.equal(hello.description, "Prints a greeting");
      assert.deepEqual(hits.find((h) => h.id === idOf("3"))!.versions, []);

      assert.deepEqual(
        (await db.search("RUST", 10)).map((h) => h.label),
        ["ripgrep"],
      );
      assert.deepEqual(
        (await db.search("banner", 10)).map((h) => h.label),
        ["figlet"],
      );
      assert.deepEqual(await db.search("nothing-like-this", 10), []);
      assert.equal((await db.search("hello", 2)).length, 2);
      // LIKE wildcards are plain characters here.
      assert.deepEqual(await db.search("%", 10), []);
      assert.deepEqual(await db.search("_", 10), []);
    });

    test("paths: insert, get, narinfo, and first row wins", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      const row = pathRow(hash("a"));
      assert.equal(await db.getPath(row.hashPart), null);
      assert.equal(await db.getNarinfo(row.hashPart), null);
      assert.equal(await db.insertPath(row), true);
      assert.equal(await db.insertPath({ ...row, narinfo: "StorePath: other\n" }), false);
      const got = await db.getPath(row.hashPart);
      assert.deepEqual(got, { ...row, references: [...row.references].sort() });
      assert.equal(await db.getNarinfo(row.hashPart), row.narinfo);
      const bare = pathRow(hash("b"), { deriver: null, references: [], sigs: [], compression: "none" });
      assert.equal(await db.insertPath(bare), true);
      assert.deepEqual(await db.getPath(bare.hashPart), bare);
      assert.equal(await db.countPaths(), 2);
      assert.equal(await db.hasNarUrl(row.url), true, "a file a narinfo names");
      assert.equal(await db.hasNarUrl(`nar/${"0".repeat(52)}.nar.xz`), false);
    });

    test("concurrent inserts of one path from several servers: exactly one wins", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const second = await open(t, f.url);
      const h = hash("c");
      const attempts = Array.from({ length: 12 }, (_, i) => pathRow(h, { narinfo: `StorePath: /nix/store/${h}-thing\nAttempt: ${i}\n` }));
      const results = await Promise.all(attempts.map((row, i) => (i % 2 === 0 ? f.db : second).insertPath(row)));
      assert.equal(results.filter((r) => r).length, 1);
      const winner = attempts[results.indexOf(true)]!;
      assert.equal(await second.getNarinfo(h), winner.narinfo);
      assert.equal(await f.db.countPaths(), 1);
    });

    test("missingPaths returns the absent hash parts, once each, in request order", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      await db.insertPath(pathRow(hash("a")));
      await db.insertPath(pathRow(hash("c")));
      assert.deepEqual(await db.missingPaths([]), []);
      assert.deepEqual(await db.missingPaths([hash("d"), hash("a"), hash("b"), hash("d"), hash("c")]), [hash("d"), hash("b")]);
      assert.deepEqual(await db.missingPaths([hash("a"), hash("c")]), []);
      const many = Array.from({ length: 5000 }, (_, i) => i.toString(16).padStart(32, "0"));
      assert.equal((await db.missingPaths(many)).length, 5000);
    });

    test("builds: newest record first per (atom, system), outputs round-trip", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      const id = idOf("h");
      await db.upsertSet(ROOT_A, []);
      await db.recordIndex(ROOT_A, [atom(id, ROOT_A, "hello", null)], [version(id, "1.0.0"), version(id, "1.1.0")], 1);
      const base = {
        id,
        version: "1.0.0",
        rev: version(id, "1.0.0").rev,
        system: "x86_64-linux",
        configHash: "c".repeat(64),
        config: '{"system":"x86_64-linux"}',
        drv: "/nix/store/" + hash("d") + "-hello.drv",
        outputs: { out: "/nix/store/" + hash("o") + "-hello", man: "/nix/store/" + hash("m") + "-hello-man" },
        createdAt: 10,
      };
      const first = await db.insertBuild(base);
      const other = await db.insertBuild({ ...base, system: "aarch64-darwin" });
      const second = await db.insertBuild({ ...base, version: "1.1.0", rev: version(id, "1.1.0").rev, createdAt: 5 });
      assert.ok(first < other && other < second);
      const list = await db.builds(id, "x86_64-linux");
      assert.deepEqual(
        list.map((b) => [b.buildId, b.version]),
        [
          [second, "1.1.0"],
          [first, "1.0.0"],
        ],
      );
      assert.deepEqual(list[1], { ...base, buildId: first });
      assert.deepEqual(
        (await db.builds(id, "aarch64-darwin")).map((b) => b.buildId),
        [other],
      );
      assert.deepEqual(await db.builds(id, "riscv64-linux"), []);
      assert.equal(await db.countBuilds(), 3);
      await assert.rejects(db.insertBuild({ ...base, version: "9.9.9" }), isCprError("registry.build-unknown-version"));
      assert.equal(await db.countBuilds(), 3);
    });

    test("tokens: stored by hash, looked up, never duplicated", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      const row = { hash: "9".repeat(64), sets: [ROOT_A, ROOT_B], note: "ci", createdAt: 42, scope: "write" as const };
      assert.equal(await db.tokenByHash(row.hash), null);
      await db.insertToken(row);
      await db.insertToken({ hash: "8".repeat(64), sets: [], note: null, createdAt: 43 });
      assert.deepEqual(await db.tokenByHash(row.hash), row);
      assert.deepEqual(await db.tokenByHash("8".repeat(64)), { hash: "8".repeat(64), sets: [], note: null, createdAt: 43, scope: "write" });
      await db.insertToken({ hash: "7".repeat(64), sets: [ROOT_A], note: null, createdAt: 44, scope: "worker" });
      assert.equal((await db.tokenByHash("7".repeat(64)))?.scope, "worker");
      await assert.rejects(db.insertToken(row), isCprError("registry.token-exists"));
    });
  });
}
