import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLock } from "../../src/protocol/lock.js";
import { CprError } from "../../src/protocol/errors.js";
import { tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet } from "./fixture.js";

/** A project whose composer is atom-nix from `atoms`, with the given extra [deps.from.atoms]. */
function project(atoms: string, composerReq: string, deps: Record<string, string>): string {
  const dir = makeProject({});
  let text = `[package]\nlabel = "app"\nversion = "0.1.0"\n\n[package.sets]\natoms = ${JSON.stringify(atoms)}\n\n[compose.with.atom-nix]\nfrom = "atoms"\nversion = "${composerReq}"\nentry = "nix"\n`;
  if (Object.keys(deps).length)
    text += `\n[deps.from.atoms]\n${Object.entries(deps)
      .map(([l, r]) => `${l} = "${r}"\n`)
      .join("")}`;
  writeFileSync(join(dir, "atom.toml"), text);
  return dir;
}

function composerSet(): string {
  const atoms = join(tempDir("cpr-composer-"), "atoms");
  makeSet(
    atoms,
    {
      "atom-nix": {
        "0.4.0": { sets: { self: "::" }, deps: { self: { lib: "^1" } } },
        "0.4.2": { sets: { self: "::" }, deps: { self: { lib: "^1.2" } } },
        "0.5.0": { sets: { self: "::" }, deps: { self: { lib: "^2" } } },
      },
      lib: { "1.0.0": {}, "1.1.0": {}, "1.3.0": {}, "2.0.0": {} },
    },
    "atoms",
  );
  return atoms;
}

test("the composer is resolved like a dependency: its own dependencies unify with the project's", async () => {
  const atoms = composerSet();
  // The project wants lib ^1 but not past 1.1: atom-nix 0.4.2 (lib ^1.2) is out, 0.4.0 is chosen, lib 1.1.0 shared.
  const dir = project(atoms, "^0.4", { lib: ">=1.0.0, <1.2.0" });
  const run = await lock(dir, isolatedEnv());
  const l = run.resolution!.lock;
  assert.equal(l.compose.use, "atom");
  assert.ok(l.compose.use === "atom");
  assert.equal(l.compose.label, "atom-nix");
  assert.equal(l.compose.version, "0.4.0");
  assert.equal(l.compose.entry, "nix");
  assert.match(l.compose.rev ?? "", /^[0-9a-f]{40}$/);
  const atomsLocked = l.deps.filter((d) => d.type === "atom").map((d) => (d.type === "atom" ? `${d.label}@${d.version}` : ""));
  // One lib for both; the composer is in [compose], not in [[deps]].
  assert.deepEqual(atomsLocked, ["lib@1.1.0"]);

  // Without the project's cap the newest composer and its lib are chosen.
  const free = await lock(project(atoms, "^0.4", {}), isolatedEnv());
  const fl = free.resolution!.lock;
  assert.ok(fl.compose.use === "atom" && fl.compose.version === "0.4.2");
  assert.deepEqual(
    fl.deps.map((d) => (d.type === "atom" ? `${d.label}@${d.version}` : "")),
    ["lib@1.3.0"],
  );

  // Listed in [deps.from.*] too: both requirements hold, and it is in [[deps]] as well.
  const both = await lock(project(atoms, "^0.4", { "atom-nix": "=0.4.0" }), isolatedEnv());
  const bl = both.resolution!.lock;
  assert.ok(bl.compose.use === "atom" && bl.compose.version === "0.4.0");
  assert.deepEqual(bl.deps.map((d) => (d.type === "atom" ? `${d.label}@${d.version}` : "")).sort(), ["atom-nix@0.4.0", "lib@1.3.0"]);
  assert.ok(bl.deps.some((d) => d.type === "atom" && d.id === (bl.compose.use === "atom" ? bl.compose.id : "")));

  // The written lock is a no-op afterwards (its composer's dependencies count as needed).
  assert.equal(run.status, "written");
  assert.equal(parseLock(readFileSync(join(dir, "atom.lock"), "utf8"), "atom.lock").compose.use, "atom");
  const again = await lock(dir, isolatedEnv());
  assert.equal(again.status, "unchanged");
});

test("a composer whose dependency conflicts with the project's fails, naming both", async () => {
  const atoms = composerSet();
  const dir = project(atoms, "^0.4", { lib: "^2" });
  await assert.rejects(lock(dir, isolatedEnv()), (e: unknown) => {
    assert.ok(e instanceof CprError);
    assert.equal(e.code, "resolve.conflict");
    assert.match(e.message, /atom-nix/);
    assert.match(e.message, /lib/);
    return true;
  });
  // With the composer allowed to move to 0.5 (lib ^2), the same project resolves.
  const ok = await lock(project(atoms, ">=0.4, <0.6", { lib: "^2" }), isolatedEnv());
  const l = ok.resolution!.lock;
  assert.ok(l.compose.use === "atom" && l.compose.version === "0.5.0");
  assert.deepEqual(
    l.deps.map((d) => (d.type === "atom" ? `${d.label}@${d.version}` : "")),
    ["lib@2.0.0"],
  );
});
