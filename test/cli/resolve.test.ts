import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCpr } from "../support/cli.js";
import { tempDir } from "../support/repo.js";
import { isolatedEnv, makeProject, makeSet } from "../resolve/fixture.js";

interface Change {
  kind: string;
  label: string;
  id: string | null;
  from: string | null;
  to: string | null;
}

test("cpr resolve/update count a change of the composer and name it", () => {
  const atoms = join(tempDir("cpr-composer-"), "atoms");
  makeSet(atoms, { "atom-nix": { "0.4.0": {}, "0.4.2": {} }, lib: { "1.0.0": {} } }, "atoms");
  const dir = makeProject({});
  const manifest = (compose: string) =>
    `[package]\nlabel = "app"\nversion = "0.1.0"\n\n[package.sets]\natoms = ${JSON.stringify(atoms)}\n${compose}\n[deps.from.atoms]\nlib = "^1"\n`;
  const withComposer = (req: string, entry: string) =>
    `\n[compose.with.atom-nix]\nfrom = "atoms"\nversion = "${req}"\nentry = "${entry}"\n`;
  const env = isolatedEnv();

  writeFileSync(join(dir, "atom.toml"), manifest(withComposer("=0.4.0", "nix")));
  const first = runCpr(["resolve", "--json"], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const created = JSON.parse(first.stdout) as { changes: Change[] };
  assert.deepEqual(
    created.changes.map((c) => [c.kind, c.label, c.from, c.to]),
    [
      ["atom", "lib", null, "1.0.0"],
      ["compose", "composer", null, 'atom-nix 0.4.0, entry "nix"'],
    ],
  );

  // Only the entry changes: one change, the composer.
  writeFileSync(join(dir, "atom.toml"), manifest(withComposer("=0.4.0", "eka")));
  const entry = runCpr(["resolve", "--json"], { cwd: dir, env });
  assert.equal(entry.code, 0, entry.stderr);
  const doc = JSON.parse(entry.stdout) as { status: string; changes: Change[] };
  assert.equal(doc.status, "written");
  assert.equal(doc.changes.length, 1);
  const c = doc.changes[0]!;
  assert.deepEqual([c.kind, c.label, c.from, c.to], ["compose", "composer", 'atom-nix 0.4.0, entry "nix"', 'atom-nix 0.4.0, entry "eka"']);
  assert.match(c.id ?? "", /^[0-9a-v]{52}$/);

  // The composer's version moves (update): one change, named in the summary and listed.
  writeFileSync(join(dir, "atom.toml"), manifest(withComposer("^0.4", "eka")));
  const human = runCpr(["update"], { cwd: dir, env });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^~ composer atom-nix 0\.4\.0, entry "eka" -> atom-nix 0\.4\.2, entry "eka"$/m);
  assert.match(human.stderr, /wrote atom\.lock \(1 atom, 1 change: the composer\)/);

  // Removed (back to the default static composer), together with a dependency change.
  writeFileSync(join(dir, "atom.toml"), `[package]\nlabel = "app"\nversion = "0.1.0"\n\n[compose.as]\nstatic = "config"\n`);
  const removed = runCpr(["resolve"], { cwd: dir, env });
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /^- lib 1\.0\.0$/m);
  assert.match(removed.stdout, /^- composer atom-nix 0\.4\.2, entry "eka"$/m);
  assert.match(removed.stderr, /wrote atom\.lock \(0 atoms, 2 changes: 1 atom and the composer\)/);
});

test("cpr resolve: a locker that cannot be found exits 1 with a hint, writing nothing", () => {
  // The mirror is a set without the locker: its rev cannot be found, and none is made up.
  const other = join(tempDir("cpr-sets-"), "other");
  const root = makeSet(other, { d: { "1.0.0": {} } });
  const dir = makeProject({});
  const r = runCpr(["resolve"], { cwd: dir, env: isolatedEnv({ CPR_LOCKER_MIRROR: other, CPR_LOCKER_SET: root }) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot write a lock: the locker's mirror .* has no refs\/eka\/atoms\/nix-lock\/0\.1\.6/);
  assert.match(r.stderr, /hint: .*locker\.rev/);
  assert.equal(existsSync(join(dir, "atom.lock")), false);
});
