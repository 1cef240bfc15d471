import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
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

/** Make a tree readable (and its directories searchable) by everyone. */
function chmodRecursive(path: string): void {
  const st = statSync(path);
  chmodSync(path, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const name of readdirSync(path)) chmodRecursive(join(path, name));
}

/**
 * Try writeManifestAndLock in `dir` and return the error code. Root ignores directory permissions, so as root the
 * attempt runs in a child process with the uid and gid of `nobody`.
 */
async function writeCode(dir: string): Promise<string | null> {
  if (process.getuid?.() !== 0) {
    return writeManifestAndLock(dir, "m", "l").then(
      () => null,
      (e: unknown) => (e instanceof CprError ? e.code : String(e)),
    );
  }
  // `nobody` may not be able to read this checkout (a clone under a private directory), so it gets its own
  // world-readable copy of the compiled sources.
  const copy = mkdtempSync(join(tmpdir(), "cpr-lockfile-src-"));
  cpSync(fileURLToPath(new URL("../../src", import.meta.url)), join(copy, "src"), { recursive: true });
  writeFileSync(join(copy, "package.json"), '{ "type": "module" }\n');
  chmodRecursive(copy);
  const copied = pathToFileURL(join(copy, "src/resolve/lockfile.js")).href;
  const script = `import(${JSON.stringify(copied)}).then((m) => m.writeManifestAndLock(${JSON.stringify(dir)}, "m", "l"))
    .then(() => console.log("null"), (e) => console.log(e.code ?? String(e)));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { uid: 65534, gid: 65534, encoding: "utf8", cwd: copy });
  rmSync(copy, { recursive: true, force: true });
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
