/**
 * The database reads behind the web pages and the dependency index (db.ts "pages" section, dependencies.ts), one
 * suite run against both drivers: SQLite in a temporary directory and a real throwaway PostgreSQL server. Includes
 * a schema-1 database upgraded in place, whose versions get their dependencies indexed afterwards.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, describe, test, type TestContext } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { searchText, type AtomRow, type PathRow, type RegistryDb, type VersionRow } from "../../src/serve/db.js";
import { sqlitePath } from "../../src/serve/db-open.js";
import { dependencyRows, indexDependencies, parsePublishedManifest } from "../../src/serve/dependencies.js";
import { MIGRATIONS } from "../../src/serve/migrations.js";
import { sharedPostgres } from "../support/postgres.js";
import { seededRandom } from "../support/random.js";
import { freshDbUrl, openTestDb, rawSql, type DbKind } from "../support/registry-db.js";

const postgres = sharedPostgres();
after(() => postgres.stop());

type Kind = DbKind;
const freshUrl = (t: TestContext, kind: Kind) => freshDbUrl(t, kind, postgres);
const open = openTestDb;

/** Applies only the first `upTo` migrations, outside the driver (an older server's database). */
async function migrateTo(url: string, upTo: number): Promise<void> {
  const ms = MIGRATIONS.filter((m) => m.version <= upTo);
  if (url.startsWith("postgres")) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
      for (const m of ms) {
        for (const sql of m.postgres) await c.query(sql);
        await c.query("INSERT INTO schema_version VALUES ($1, $2, 0)", [m.version, m.name]);
      }
    } finally {
      await c.end();
    }
    return;
  }
  const db = new Database(sqlitePath(url));
  try {
    db.exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const m of ms) {
      for (const sql of m.sqlite) db.exec(sql);
      db.prepare("INSERT INTO schema_version VALUES (?, ?, 0)").run(m.version, m.name);
    }
  } finally {
    db.close();
  }
}

const ROOT_A = "a".repeat(40);
const ROOT_B = "b".repeat(64);
const MIRROR_A = "https://example.org/a.git";
const idOf = (c: string): string => c.repeat(52);
const hash = (c: string): string => c.repeat(32);

function atom(id: string, root: string, label: string, description: string | null, tags: string[] = []): AtomRow {
  return { id, root, label, description, tags };
}

/** A version whose manifest depends on `deps` (tag → [mirror, label, requirement]). */
function version(id: string, label: string, v: string, deps: [string, string, string][] = []): VersionRow {
  const sets = [...new Set(deps.map(([m]) => m))];
  const tag = (m: string): string => `s${sets.indexOf(m)}`;
  let manifest = `[package]\nlabel = "${label}"\nversion = "${v}"\n`;
  if (deps.length) {
    manifest += `\n[package.sets]\n${sets.map((m) => `${tag(m)} = "${m}"`).join("\n")}\n\n[compose.as]\nnix = "default.nix"\n`;
    for (const m of sets) {
      manifest += `\n[deps.from.${tag(m)}]\n${deps
        .filter(([x]) => x === m)
        .map(([, l, r]) => `${l} = "${r}"`)
        .join("\n")}\n`;
    }
  }
  return { id, version: v, rev: v.replace(/\D/g, "").padEnd(40, "0"), origin: null, manifest };
}

function pathRow(h: string, narSize: number, references: string[]): PathRow {
  const storePath = `/nix/store/${h}-p`;
  return {
    hashPart: h,
    storePath,
    narHash: `sha256:${"1".repeat(52)}`,
    narSize,
    fileHash: `sha256:${"2".repeat(52)}`,
    fileSize: 1,
    compression: "xz",
    url: `nar/${"2".repeat(52)}.nar.xz`,
    references: references.map((r) => `${r}-p`),
    deriver: null,
    sigs: [],
    narinfo: `StorePath: ${storePath}\n`,
    createdAt: 1,
  };
}

/** A build record of lib `version` for x86_64-linux, its output `c`'s path. */
function buildOf(version: string) {
  return {
    id: idOf("l"),
    version,
    rev: version.replace(/\D/g, "").padEnd(40, "0"),
    system: "x86_64-linux",
    configHash: "0".repeat(64),
    config: '{"system":"x86_64-linux"}',
    drv: `/nix/store/${hash("d")}-p.drv`,
    outputs: { out: `/nix/store/${hash("c")}-p` },
    createdAt: 5,
  };
}

/** Two sets: in A, `lib` (1.0.0, 2.0.0) and `app` depending on lib by "::" and on B's `util` by URL; in B, `util`. */
async function populate(db: RegistryDb): Promise<void> {
  await db.upsertSet(ROOT_A, [MIRROR_A]);
  await db.upsertSet(ROOT_B, ["/srv/b.git"]);
  await db.recordIndex(
    ROOT_A,
    [atom(idOf("l"), ROOT_A, "lib", "A library", ["core"]), atom(idOf("p"), ROOT_A, "app", "Uses lib and util")],
    [
      version(idOf("l"), "lib", "1.0.0"),
      version(idOf("l"), "lib", "2.0.0"),
      version(idOf("l"), "lib", "10.0.0"),
      version(idOf("p"), "app", "0.1.0", [
        ["::", "lib", "^1"],
        ["/srv/b.git", "util", "^0.3"],
      ]),
      version(idOf("p"), "app", "0.2.0", [["::", "lib", "^2"]]),
    ],
    1000,
  );
  // A version in B depends on A's lib through A's mirror URL.
  await db.recordIndex(
    ROOT_B,
    [atom(idOf("u"), ROOT_B, "util", "Utilities for lib users")],
    [version(idOf("u"), "util", "0.3.0", [[MIRROR_A, "lib", ">=1"]])],
    2000,
  );
}

for (const kind of ["sqlite", "postgres"] as const) {
  describe(kind, () => {
    test("counts, paged search and set listings, an atom's versions without manifests", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const db = await open(t, url);
      await db.migrate();
      assert.deepEqual(await db.counts(), { sets: 0, atoms: 0, versions: 0, builds: 0 });
      await populate(db);
      assert.deepEqual(await db.counts(), { sets: 2, atoms: 3, versions: 6, builds: 0 });
      // Kept by triggers: indexing again (upserts, versions already there) adds nothing; builds and deletes count.
      await populate(db);
      assert.deepEqual(await db.counts(), { sets: 2, atoms: 3, versions: 6, builds: 0 });
      const build = buildOf("1.0.0");
      await db.insertBuild(build);
      await db.insertBuild({ ...build, system: "aarch64-linux" });
      assert.equal((await db.counts()).builds, 2);
      const drop = async (where: string, params: unknown[]) => {
        await rawSql(url, `DELETE FROM build_outputs WHERE build_id IN (SELECT build_id FROM builds WHERE ${where})`, params);
        await rawSql(url, `DELETE FROM builds WHERE ${where}`, params);
      };
      await drop("system = ?", ["aarch64-linux"]);
      assert.equal((await db.counts()).builds, 1);
      await drop("1 = 1", []);
      assert.equal((await db.counts()).builds, 0);

      const all = await db.searchPage("lib", 10, 0);
      assert.deepEqual(
        all.map((h) => h.label),
        ["lib", "app", "util"],
        "exact label, then the others by label",
      );
      assert.deepEqual(
        (await db.searchPage("lib", 1, 1)).map((h) => h.label),
        ["app"],
      );
      assert.deepEqual(await db.searchPage("lib", 5, 3), []);
      assert.deepEqual(all[0]!.versions, ["10.0.0", "2.0.0", "1.0.0"], "SemVer order, newest first");
      assert.deepEqual(
        (await db.searchPage("", 10, 0)).map((h) => h.label),
        ["app", "lib", "util"],
        "an empty text lists every atom",
      );

      assert.deepEqual(
        (await db.setAtoms(ROOT_A, 10, 0)).map((h) => [h.label, h.versions[0]]),
        [
          ["app", "0.2.0"],
          ["lib", "10.0.0"],
        ],
      );
      assert.deepEqual(
        (await db.setAtoms(ROOT_A, 1, 1)).map((h) => h.label),
        ["lib"],
      );
      assert.deepEqual(await db.setAtoms("c".repeat(40), 10, 0), []);

      const lib = await db.atomVersions(idOf("l"));
      assert.equal(lib?.atom.label, "lib");
      assert.deepEqual(lib?.versions, [
        { version: "10.0.0", rev: "10000".padEnd(40, "0"), origin: null },
        { version: "2.0.0", rev: "200".padEnd(40, "0"), origin: null },
        { version: "1.0.0", rev: "100".padEnd(40, "0"), origin: null },
      ]);
      assert.equal(await db.atomVersions(idOf("x")), null);
      assert.match((await db.versionManifest(idOf("l"), "2.0.0"))!, /version = "2\.0\.0"/);
      assert.equal(await db.versionManifest(idOf("l"), "9.9.9"), null);

      assert.deepEqual(
        (await db.setsByMirror(["/srv/b.git", "https://nowhere/x.git"])).map((s) => s.root),
        [ROOT_B],
      );
      assert.deepEqual(await db.setsByMirror([]), []);
    });

    test("search ranks like a full sort on every page, whether it reads every match or walks in label order", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const db = await open(t, url);
      await db.migrate();
      // 1,500 atoms over two sets: common syllables (hundreds of matches: the walk) and rare ones (a few: read all),
      // in labels, descriptions and tags; some labels repeat across the sets and one equals a search text.
      const random = seededRandom(14);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const common = ["lib", "py", "net"];
      const rare = ["zork", "qux"];
      const others = [...common, ...common, ...common, "a", "bo", "cy", "dee", "ex"];
      const syllable = () => (random() < 0.02 ? pick(rare) : pick(others));
      await db.upsertSet(ROOT_A, [MIRROR_A]);
      await db.upsertSet(ROOT_B, []);
      const atoms: AtomRow[] = [];
      for (let i = 0; i < 1500; i++) {
        const root = i % 3 === 0 ? ROOT_B : ROOT_A;
        const label =
          i === 5
            ? "net"
            : i % 300 === 1
              ? `things-${i}`
              : `${syllable()}${pick(["-", ""])}${syllable()}${i % 7 === 0 ? "" : `-${i % 50}`}`;
        if (atoms.some((a) => a.root === root && a.label === label)) continue;
        const id = createHash("sha256").update(`${root}/${label}`).digest("hex").slice(0, 52);
        atoms.push(atom(id, root, label, random() < 0.5 ? `About ${syllable()} things` : null, [syllable()]));
      }
      for (const root of [ROOT_A, ROOT_B])
        await db.recordIndex(
          root,
          atoms.filter((a) => a.root === root),
          [],
          1,
        );
      const bytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
      const expected = (q: string): string[] => {
        const tier = (a: AtomRow) => {
          const text = searchText(a);
          const label = text.slice(0, text.indexOf("\n"));
          return a.label.toLowerCase() === q ? 0 : label.includes(q) ? 1 : text.includes(q) ? 2 : 3;
        };
        return atoms
          .filter((a) => tier(a) < 3)
          .sort((x, y) => tier(x) - tier(y) || bytes(x.label, y.label) || bytes(x.root, y.root) || bytes(x.id, y.id))
          .map((a) => `${a.label}@${a.root.slice(0, 1)}`);
      };
      // Each way through db-sqlite.ts's search (SEARCH_RANK_ALL is 100) is taken: a label text of hundreds of
      // matches (the walk), rare texts (all ranked), one in a few labels and hundreds of descriptions (the label
      // tier from the trigram index, then the walk), one in descriptions only, and short texts.
      const counts = (q: string) => {
        const labels = atoms.filter((a) => a.label.toLowerCase().includes(q)).length;
        return { labels, all: atoms.filter((a) => searchText(a).includes(q)).length };
      };
      assert.ok(counts("lib").labels >= 100, `lib: ${JSON.stringify(counts("lib"))}`);
      assert.ok(counts("zork").all < 100 && counts("zork").all > 0, `zork: ${JSON.stringify(counts("zork"))}`);
      assert.ok(
        counts("thing").labels > 0 && counts("thing").labels < 100 && counts("thing").all >= 100,
        `thing: ${JSON.stringify(counts("thing"))}`,
      );
      assert.ok(counts("about").labels === 0 && counts("about").all >= 100, `about: ${JSON.stringify(counts("about"))}`);
      for (const q of ["lib", "net", "py", "zork", "qux", "thing", "bo", "a", "lib-", "About", "nothing-here"]) {
        const want = expected(q.toLowerCase());
        for (const [limit, offset] of [
          [20, 0],
          [20, 20],
          [7, 300],
          [50, Math.max(0, want.length - 10)],
        ] as const) {
          assert.deepEqual(
            (await db.searchPage(q, limit, offset)).map((h) => `${h.label}@${h.root.slice(0, 1)}`),
            want.slice(offset, offset + limit),
            `search ${JSON.stringify(q)}, ${limit} from ${offset} (${want.length} matches)`,
          );
        }
      }
    });

    test("search by substring: short and long texts, quotes, and a description that changes", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const db = await open(t, url);
      await db.migrate();
      await populate(db);
      const labels = async (q: string) => (await db.searchPage(q, 10, 0)).map((h) => h.label);
      assert.deepEqual(await labels("LI"), ["lib", "app", "util"], "two characters");
      assert.deepEqual(await labels("utilit"), ["util"]);
      assert.deepEqual(await labels("a library"), ["lib"], "across a space");
      assert.deepEqual(await labels('say "hi"'), []);
      assert.deepEqual(await labels("cor"), ["lib"], "a tag");
      await db.recordIndex(ROOT_A, [atom(idOf("l"), ROOT_A, "lib", 'Now says "hi" in ünïcode', ["core"])], [], 3000);
      assert.deepEqual(await labels('says "hi"'), ["lib"], "the new description");
      assert.deepEqual(await labels("a library"), [], "not the old one");
      assert.deepEqual(await labels("ÜNÏ"), ["lib"], "case-insensitive beyond ASCII");
      assert.deepEqual(
        (await db.search("lib", 2)).map((h) => h.label),
        ["lib", "app"],
        "the API's search is the first page",
      );
    });

    test("a version's builds, built versions, and closure sizes following references", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const db = await open(t, url);
      await db.migrate();
      await populate(db);
      // c → b → a (a refers to itself); b also refers to a path not in the cache.
      await db.insertPath(pathRow(hash("a"), 100, [hash("a")]));
      await db.insertPath(pathRow(hash("b"), 20, [hash("a"), hash("x")]));
      await db.insertPath(pathRow(hash("c"), 3, [hash("b")]));
      assert.deepEqual(await db.closureSize([hash("c")]), { paths: 3, narSize: 123, missing: 1 });
      // A complete closure is summed when the path is stored and kept on it; an incomplete one is not kept.
      const kept = async (h: string) =>
        (await rawSql(url, "SELECT closure_paths, closure_nar_size FROM paths WHERE hash_part = ?", [h])).map((r) => [
          r.closure_paths === null ? null : Number(r.closure_paths),
          r.closure_nar_size === null ? null : Number(r.closure_nar_size),
        ]);
      assert.deepEqual(await kept(hash("a")), [[1, 100]]);
      assert.deepEqual(await kept(hash("c")), [[null, null]]);
      await db.insertPath(pathRow(hash("x"), 1000, []));
      assert.deepEqual(await db.closureSize([hash("c")]), { paths: 4, narSize: 1123, missing: 0 }, "complete once x is stored");
      assert.deepEqual(await kept(hash("c")), [[4, 1123]], "and kept from then on");
      await rawSql(url, "UPDATE paths SET closure_nar_size = 7 WHERE hash_part = ?", [hash("c")]);
      assert.equal((await db.closureSize([hash("c")])).narSize, 7, "a kept closure is read, not summed again");
      assert.deepEqual(await db.closureSize([hash("b"), hash("c")]), { paths: 4, narSize: 1123, missing: 0 }, "several paths: summed");
      assert.deepEqual(await db.closureSize([hash("a"), hash("a")]), { paths: 1, narSize: 100, missing: 0 });
      assert.deepEqual(await db.closureSize([hash("y")]), { paths: 0, narSize: 0, missing: 1 });
      assert.deepEqual(await db.closureSize([]), { paths: 0, narSize: 0, missing: 0 });

      const base = buildOf("2.0.0");
      const first = await db.insertBuild(base);
      const second = await db.insertBuild({ ...base, system: "aarch64-linux", createdAt: 6 });
      await db.insertBuild(buildOf("1.0.0"));
      assert.deepEqual(
        (await db.versionBuilds(idOf("l"), "2.0.0", 10)).map((b) => [b.buildId, b.system, b.outputs.out]),
        [
          [second, "aarch64-linux", base.outputs.out],
          [first, "x86_64-linux", base.outputs.out],
        ],
      );
      assert.equal((await db.versionBuilds(idOf("l"), "2.0.0", 1)).length, 1);
      assert.deepEqual((await db.builtVersions(idOf("l"))).sort(), ["1.0.0", "2.0.0"]);
      assert.deepEqual(await db.builtVersions(idOf("p")), []);
    });

    test("the dependency index: dependents across sets by root and by mirror URL, paged; re-indexing is idempotent", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      const db = await open(t, url);
      await db.migrate();
      await populate(db);
      assert.deepEqual(await db.dependents("lib", [ROOT_A, MIRROR_A], 10, 0), [], "nothing indexed yet");
      assert.equal(await indexDependencies(db, ROOT_A), 5);
      assert.equal(await indexDependencies(db, ROOT_B), 1);
      assert.equal(await indexDependencies(db, ROOT_A), 0, "every version is indexed once");
      const libDependents = await db.dependents("lib", [ROOT_A, MIRROR_A], 10, 0);
      assert.deepEqual(
        libDependents.map((d) => [d.label, d.version, d.requirement, d.root]),
        [
          ["app", "0.1.0", "^1", ROOT_A],
          ["app", "0.2.0", "^2", ROOT_A],
          ["util", "0.3.0", ">=1", ROOT_B],
        ],
      );
      assert.deepEqual(
        (await db.dependents("lib", [ROOT_A, MIRROR_A], 1, 2)).map((d) => d.label),
        ["util"],
      );
      assert.deepEqual(
        (await db.dependents("lib", [ROOT_A], 10, 0)).map((d) => d.label),
        ["app", "app"],
        "by root only: the URL dependency is not counted",
      );
      assert.deepEqual(
        (await db.dependents("util", [ROOT_B, "/srv/b.git"], 10, 0)).map((d) => [d.label, d.version]),
        [["app", "0.1.0"]],
      );
      assert.deepEqual(await db.dependents("lib", [], 10, 0), []);
      // Recording again replaces, never duplicates.
      await db.recordDependencies([{ id: idOf("p"), version: "0.1.0", deps: [] }]);
      assert.deepEqual(
        (await db.dependents("lib", [ROOT_A, MIRROR_A], 10, 0)).map((d) => [d.label, d.version]),
        [
          ["app", "0.2.0"],
          ["util", "0.3.0"],
        ],
      );
    });

    test("a schema-1 database is upgraded in place, and its versions get their dependencies indexed", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      await migrateTo(url, 1);
      const db = await open(t, url);
      await populate(db); // written by an older server, before the dependency index existed
      await db.migrate();
      assert.deepEqual(await db.counts(), { sets: 2, atoms: 3, versions: 6, builds: 0 }, "rows written before the counts are counted");
      assert.equal(await indexDependencies(db, ROOT_A), 5);
      assert.equal((await db.dependents("lib", [ROOT_A], 10, 0)).length, 2);
      assert.deepEqual(
        (await db.searchPage("library", 10, 0)).map((h) => h.label),
        ["lib"],
        "atoms stored before the upgrade are found by substring",
      );
    });

    test("a schema-5 database: dependents indexed before keep their labels, older paths get their closures kept", async (t) => {
      const url = await freshUrl(t, kind);
      if (!url) return;
      await migrateTo(url, 5);
      const db = await open(t, url);
      await populate(db);
      // Written by a server of schema 5: a dependency row without the dependent's label, a path without its closure.
      await rawSql(url, "INSERT INTO version_deps (id, version, tag, dep_label, dep_set, requirement) VALUES (?, ?, ?, ?, ?, ?)", [
        idOf("p"),
        "0.1.0",
        "s0",
        "lib",
        ROOT_A,
        "^1",
      ]);
      await rawSql(url, "UPDATE versions SET deps_indexed = ? WHERE id = ? AND version = ?", [
        kind === "postgres" ? true : 1,
        idOf("p"),
        "0.1.0",
      ]);
      await rawSql(
        url,
        `INSERT INTO paths (hash_part, store_path, nar_hash, nar_size, file_hash, file_size, compression, url, refs, deriver, sigs, narinfo, created_at)
         VALUES (?, ?, 'sha256:x', 42, 'sha256:y', 1, 'xz', 'nar/x.nar.xz', ?, NULL, ?, 'StorePath: x', 1)`,
        [hash("o"), `/nix/store/${hash("o")}-p`, kind === "postgres" ? [] : "[]", kind === "postgres" ? [] : "[]"],
      );
      await db.migrate();
      assert.deepEqual(
        (await db.dependents("lib", [ROOT_A], 10, 0)).map((d) => [d.label, d.root, d.version]),
        [["app", ROOT_A, "0.1.0"]],
        "the upgrade fills in the depending atom's label and root",
      );
      assert.deepEqual(await db.closureSize([hash("o")]), { paths: 1, narSize: 42, missing: 0 });
      assert.deepEqual(
        (await rawSql(url, "SELECT closure_paths FROM paths WHERE hash_part = ?", [hash("o")])).map((r) => Number(r.closure_paths)),
        [1],
        "summed on first read and kept",
      );
    });
  });
}

test("dependency rows: once per mirror of the tag, '::' as the atom's own root; unparsable manifests give none", () => {
  const m = parsePublishedManifest(
    `[package]\nlabel = "x"\nversion = "1.0.0"\n\n[package.sets]\nhome = ["::", "https://example.org/x.git"]\n\n[compose.as]\nnix = "default.nix"\n\n[deps.from.home]\ny = "^1.2"\n`,
  );
  assert.deepEqual(dependencyRows(m, ROOT_A), [
    { tag: "home", label: "y", requirement: "^1.2", set: ROOT_A },
    { tag: "home", label: "y", requirement: "^1.2", set: "https://example.org/x.git" },
  ]);
  assert.equal(parsePublishedManifest("not toml ["), null);
  assert.deepEqual(dependencyRows(null, ROOT_A), []);
});
