/**
 * The registry's narinfo signing key: `<data>/signing-key.sec` (Nix's `name:base64(seed ‖ public key)`, mode 0600)
 * and `<data>/signing-key.pub` (`name:base64(public key)`), created at first start.
 *
 * Several servers may share a data directory and start at the same moment: each writes its candidate key to a
 * private temporary file and hard-links it to the final name, which fails when the name exists, so exactly one
 * candidate wins and every server then reads the winner. A reader never sees a partial file (link is atomic). On a
 * filesystem without hard links, an exclusive create is the fallback, and readers retry a key that does not parse yet.
 */
import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CprError } from "../protocol/errors.js";
import {
  checkKeyName,
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  parseSecretKey,
  publicKeyOf,
  type SecretKey,
} from "../protocol/nix-key.js";

export const SECRET_KEY_FILE = "signing-key.sec";
export const PUBLIC_KEY_FILE = "signing-key.pub";
/** Key name used when none is given: what narinfo `Sig:` lines and `trusted-public-keys` entries start with. */
export const DEFAULT_KEY_NAME = "cpr-registry-1";

export interface SigningKey {
  readonly secret: SecretKey;
  /** `name:base64` */
  readonly publicKey: string;
  readonly secretFile: string;
  readonly publicFile: string;
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

async function readKey(file: string): Promise<SecretKey | null> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if (errCode(e) === "ENOENT") return null;
    throw new CprError("registry.key", `cannot read the signing key ${file}: ${(e as Error).message}`, { where: file });
  }
  return parseSecretKey(text.trim(), file);
}

/** Reads the key, retrying briefly while another process is still writing it (the no-hard-link fallback only). */
async function readKeyPatiently(file: string): Promise<SecretKey | null> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await readKey(file);
    } catch (e) {
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Publishes `text` at `file` unless a file already exists there; true when ours won. */
async function createNoClobber(dir: string, file: string, text: string): Promise<boolean> {
  const tmp = join(dir, `.${SECRET_KEY_FILE}.${process.pid}.${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, text, { mode: 0o600, flag: "wx" });
  try {
    await chmod(tmp, 0o600); // in case of an unusual umask
    await link(tmp, file);
    return true;
  } catch (e) {
    if (errCode(e) === "EEXIST") return false;
    if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"].includes(errCode(e) ?? "")) throw e;
    try {
      await writeFile(file, text, { mode: 0o600, flag: "wx" });
      return true;
    } catch (e2) {
      if (errCode(e2) === "EEXIST") return false;
      throw e2;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * The signing key of the registry whose data directory is `dataDir`, created (with the name `keyName`) when there is
 * none. Safe when several processes call it at once: all of them get the same key.
 */
export async function loadOrCreateSigningKey(dataDir: string, keyName: string = DEFAULT_KEY_NAME): Promise<SigningKey> {
  await mkdir(dataDir, { recursive: true });
  const secretFile = join(dataDir, SECRET_KEY_FILE);
  const publicFile = join(dataDir, PUBLIC_KEY_FILE);
  let secret = await readKeyPatiently(secretFile);
  if (secret === null) {
    checkKeyName(keyName, "the registry signing key name");
    await createNoClobber(dataDir, secretFile, `${formatSecretKey(generateSecretKey(keyName))}\n`);
    secret = await readKeyPatiently(secretFile);
    if (secret === null)
      throw new CprError("registry.key", `the signing key ${secretFile} vanished while it was being created`, { where: secretFile });
  }
  const mode = (await stat(secretFile)).mode & 0o777;
  if ((mode & 0o077) !== 0) await chmod(secretFile, 0o600).catch(() => undefined);
  const publicKey = formatPublicKey(publicKeyOf(secret));
  await writePublicKey(dataDir, publicFile, publicKey);
  return { secret, publicKey, secretFile, publicFile };
}

/** `signing-key.pub`, rewritten (temp file + rename) only when missing or different; derived, so racing writers agree. */
async function writePublicKey(dir: string, file: string, publicKey: string): Promise<void> {
  const text = `${publicKey}\n`;
  try {
    if ((await readFile(file, "utf8")) === text) return;
  } catch (e) {
    if (errCode(e) !== "ENOENT") throw e;
  }
  const tmp = join(dir, `.${PUBLIC_KEY_FILE}.${process.pid}.${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
