import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { writeManifestAndLock } from "../../src/resolve/lockfile.js";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "cpr-lockfile-"));
}

test("writes lock and manifest, replacing old ones, leaving no temporary files", async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, "atom.toml"), "old manifest\n");
    writeFileSync(join(dir, "atom.lock"), "old lock\n");
    await writeManifestAndLock(dir, "new manifest\n", "new lock\n");
    assert.equal(readFileSync(join(dir, "atom.toml"), "utf8"), "new manifest\n");
    assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), "new lock\n");
    assert.deepEqual(readdirSync(dir).sort(), ["atom.lock", "atom.toml"]);
    await writeManifestAndLock(dir, null, "lock only\n");
    assert.equal(readFileSync(join(dir, "atom.toml"), "utf8"), "new manifest\n");
    assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), "lock only\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Try writeManifestAndLock in `dir` and return the error code. Root ignores directory permissions, so as root the
 * attempt runs in a child process with the uid and gid of `nobody`.
 */
async function writeCode(dir: string): Promise<string | null> {
  const moduleUrl = new URL("../../src/resolve/lockfile.js", import.meta.url).href;
  if (process.getuid?.() !== 0) {
    const { writeManifestAndLock: write } = await import(moduleUrl);
    return (write as typeof writeManifestAndLock)(dir, "m", "l").then(
      () => null,
      (e: unknown) => (e instanceof CprError ? e.code : String(e)),
    );
  }
  const script = `import(${JSON.stringify(moduleUrl)}).then((m) => m.writeManifestAndLock(${JSON.stringify(dir)}, "m", "l"))
    .then(() => console.log("null"), (e) => console.log(e.code ?? String(e)));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { uid: 65534, gid: 65534, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const code = r.stdout.trim();
  return code === "null" ? null : code;
}

test("a directory that cannot be written leaves the old files untouched", async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, "atom.toml"), "old manifest\n");
    writeFileSync(join(dir, "atom.lock"), "old lock\n");
    chmodSync(dir, 0o555);
    assert.equal(await writeCode(dir), "store.write");
    chmodSync(dir, 0o755);
    assert.equal(readFileSync(join(dir, "atom.toml"), "utf8"), "old manifest\n");
    assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), "old lock\n");
    assert.deepEqual(readdirSync(dir).sort(), ["atom.lock", "atom.toml"]);
  } finally {
    chmodSync(dir, 0o755);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a missing directory is a CprError", async () => {
  const dir = join(tempDir(), "missing");
  await assert.rejects(writeManifestAndLock(dir, "m", "l"), (e: unknown) => e instanceof CprError && e.code === "store.write");
});

test("the lock is renamed before the manifest", async () => {
  // A manifest path that is a directory makes the second rename fail: the lock must already be in place.
  const dir = tempDir();
  try {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "atom.toml"));
    writeFileSync(join(dir, "atom.toml", "x"), "");
    await assert.rejects(writeManifestAndLock(dir, "m", "new lock\n"), CprError);
    assert.equal(readFileSync(join(dir, "atom.lock"), "utf8"), "new lock\n");
    assert.deepEqual(readdirSync(dir).sort(), ["atom.lock", "atom.toml"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
