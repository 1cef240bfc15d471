import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseRequirement } from "../../src/protocol/requirement.js";
import { VersionSet } from "../../src/protocol/version-set.js";
import { parseVersion } from "../../src/protocol/version.js";
import { listingPrefix, prefixSet } from "../../src/resolve/mirrors.js";
import { tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet, versionsOf } from "./fixture.js";

const prefixOf = (req: string) => listingPrefix(VersionSet.fromRequirement(parseRequirement(req)));

test("listingPrefix: the narrowest ref prefix, cut at a '.' or a whole version", () => {
  assert.equal(prefixOf("^1.2"), "1.");
  assert.equal(prefixOf("^1"), "1.");
  assert.equal(prefixOf("^0.3.1"), "0.3.");
  assert.equal(prefixOf("~1.2"), "1.2.");
  assert.equal(prefixOf("=1.2.3"), "1.2.3");
  assert.equal(prefixOf("^0.0.3"), "0.0.3");
  assert.equal(prefixOf(">=1.2, <1.5"), "1.");
  assert.equal(prefixOf("*"), "");
  assert.equal(prefixOf(">=1"), "");
  assert.equal(prefixOf("<0.3"), "0.");
  assert.equal(prefixOf("^10.1"), "10.");
  assert.equal(prefixOf(">=1.2.3-rc.1, <1.2.4"), "1.2.3");
  // Every version the requirement allows starts with the prefix (and 10.x is not under "1.").
  for (const v of ["1.0.0", "1.9.9", "1.2.0-beta"]) assert.ok(prefixSet("1.").contains(parseVersion(v)), v);
  for (const v of ["10.0.0", "2.0.0", "0.9.0", "2.0.0-0"]) assert.ok(!prefixSet("1.").contains(parseVersion(v)), v);
});

test("listings follow the requirements: a narrower one lists a prefix, a wider one later lists the rest", async () => {
  const base = tempDir("cpr-narrow-");
  const set = join(base, "s");
  makeSet(
    set,
    {
      // bar 2 needs foo ^2, whose only version needs a missing baz: the solver must go back to bar 1 and foo ^1.
      bar: {
        "1.0.0": { sets: { self: "::" }, deps: { self: { foo: "^1" } } },
        "2.0.0": { sets: { self: "::" }, deps: { self: { foo: "^2" } } },
      },
      foo: { "1.0.0": {}, "1.1.0": {}, "2.0.0": { sets: { self: "::" }, deps: { self: { baz: "^9" } } } },
      baz: { "1.0.0": {} },
    },
    "s",
  );
  const dir = makeProject({ sets: { s: set }, deps: { s: { bar: "*" } } });
  const env = isolatedEnv();
  const run = await lock(dir, env);
  assert.deepEqual(versionsOf(run), { bar: "1.0.0", foo: "1.1.0" });
  // The cache holds the prefixes that were listed: bar whole, foo's 2. and then 1., baz's 9.
  const refsDir = join(env.CPR_CACHE_DIR!, "refs");
  const keys = readdirSync(refsDir).flatMap((f) =>
    Object.keys((JSON.parse(readFileSync(join(refsDir, f), "utf8")) as { labels: Record<string, unknown> }).labels),
  );
  assert.deepEqual(keys.sort(), ["bar", "baz 9.", "foo 1.", "foo 2."]);
  // A warm run finds them again with no connection.
  const warm = await lock(dir, env, { manifestText: readFileSync(join(dir, "atom.toml"), "utf8") + "\n" });
  assert.equal(warm.stats.connections, 0);
  assert.deepEqual(versionsOf(warm), { bar: "1.0.0", foo: "1.1.0" });
});
