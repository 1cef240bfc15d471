import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { CprError } from "../protocol/errors.js";

/** File names of an atom's manifest and lock. */
export const MANIFEST_NAME = "atom.toml";
export const LOCK_NAME = "atom.lock";

/** Writes `text` to a new temporary file in `dir` (same filesystem as the target), fsynced; returns its path. */
export async function writeTemp(dir: string, name: string, text: string): Promise<string> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", 0o644);
  try {
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

export async function syncDir(dir: string): Promise<void> {
  // Makes the renames durable; not every platform lets a directory be fsynced.
  try {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Writes `atom.lock` and `atom.toml` in `dir` as a pair (docs/formats.md §11.10): both go to fsynced temporary files in the same
 * directory first, then are renamed, lock first, manifest second. No file is ever half-written: a failure before
 * the renames leaves both untouched; a crash between them leaves a new lock beside the old manifest, which the next
 * `cpr resolve` brings back in line. `manifestText` null writes the lock alone.
 */
export async function writeManifestAndLock(dir: string, manifestText: string | null, lockText: string): Promise<void> {
  const temps: string[] = [];
  try {
    const lockTmp = await writeTemp(dir, LOCK_NAME, lockText);
    temps.push(lockTmp);
    const manifestTmp = manifestText === null ? null : await writeTemp(dir, MANIFEST_NAME, manifestText);
    if (manifestTmp !== null) temps.push(manifestTmp);
    await rename(lockTmp, join(dir, LOCK_NAME));
    temps.shift();
    if (manifestTmp !== null) {
      await rename(manifestTmp, join(dir, MANIFEST_NAME));
      temps.shift();
    }
    await syncDir(dir);
  } catch (e) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    if (e instanceof CprError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new CprError("store.write", `could not write ${LOCK_NAME} and ${MANIFEST_NAME} in ${dir}: ${err.message}`, {
      where: dir,
      hint: "check that the directory exists and is writable",
      cause: e,
    });
  }
}
