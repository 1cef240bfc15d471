/**
 * `cpr tree` / `cpr why` for a lock resolved on another machine: after `cpr fetch --lock` has stored the locked
 * atom commits, their atom.toml gives the edges below the direct dependencies, with no resolve and no network.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomId } from "../../src/protocol/id.js";
import { defaultLocker, formatLock } from "../../src/protocol/lock.js";
import { buildableSet, env } from "../registry/atoms-fixture.js";
import { runCpr } from "../support/cli.js";
import { tempDir } from "../support/repo.js";

test("tree and why rebuild the graph from atom commits that cpr fetch --lock stored", async () => {
  const set = await buildableSet({ tag: "graph" });
  const project = tempDir("cpr-graph-project-");
  writeFileSync(
    join(project, "atom.toml"),
    `[package]\nlabel = "app"\nversion = "0.1.0"\n\n[package.sets]\nt = "${set.remote}"\n\n[compose.as]\nnix = "default.nix"\n\n[deps.from.t]\nhello = "^0.1"\n`,
  );
  const atom = (label: string, version: string) => ({
    type: "atom" as const,
    label,
    version,
    set: set.root,
    rev: set.revs[`${label}@${version}`]!,
    mirror: set.remote,
    id: atomId(set.root, label),
  });
  const lock = {
    version: 1 as const,
    sets: { [set.root]: { tag: "t", mirrors: [set.remote] } },
    locker: defaultLocker("1".repeat(40)),
    compose: { use: "nix" as const, entry: "default.nix" },
    deps: [atom("dep", "0.1.0"), atom("hello", "0.1.0")],
  };
  writeFileSync(join(project, "atom.lock"), formatLock(lock));
  const cache = tempDir("cpr-graph-cache-");
  const cpr = (...args: string[]) => runCpr(args, { cwd: project, env: { ...env, CPR_CACHE_DIR: cache } });

  const before = cpr("tree");
  assert.equal(before.code, 0, before.stderr);
  assert.match(before.stderr, /unknown here/);
  assert.equal(before.stdout, "app 0.1.0\n└── hello 0.1.0 (^0.1) " + set.root.slice(0, 12) + "\n");

  const fetched = cpr("fetch", "--lock");
  assert.equal(fetched.code, 0, fetched.stderr);
  const after = cpr("tree");
  assert.equal(after.code, 0, after.stderr);
  assert.doesNotMatch(after.stderr, /unknown here/);
  assert.equal(
    after.stdout,
    `app 0.1.0\n└── hello 0.1.0 (^0.1) ${set.root.slice(0, 12)}\n    └── dep 0.1.0 (^0.1) ${set.root.slice(0, 12)}\n`,
  );
  assert.equal(cpr("why", "dep").stdout.trim(), "app 0.1.0 requires hello ^0.1 -> hello 0.1.0 requires dep ^0.1 -> dep 0.1.0");
});
