/**
 * Nix signing keys (`name:base64`) and detached ed25519 signatures, as `nix-store --generate-binary-cache-key`,
 * `nix store sign` and narinfo `Sig:` lines use them.
 *
 * A secret key is `name:base64(seed ‖ public key)` (64 bytes, libsodium's layout), a public key `name:base64(key)`
 * (32 bytes), a signature `name:base64(signature)` (64 bytes). ed25519 is deterministic, so signing the same
 * message with the same key gives the same text Nix gives. Keys are made with node:crypto from their raw bytes via
 * JWK; no I/O.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { CprError } from "./errors.js";

export interface SecretKey {
  readonly name: string;
  /** 32-byte ed25519 seed. */
  readonly seed: Uint8Array;
  /** 32-byte public key. */
  readonly publicKey: Uint8Array;
}

export interface PublicKey {
  readonly name: string;
  readonly key: Uint8Array;
}

const SEED_BYTES = 32;
const PUBLIC_BYTES = 32;
const SIGNATURE_BYTES = 64;

const KEY_NAME_HINT = "a key name is non-empty, without ':' or whitespace, e.g. cache.example.org-1";

/** Throws CprError `key.name` unless `name` can name a Nix key: non-empty, no ':', no whitespace or control characters. */
export function checkKeyName(name: string, where?: string): void {
  const bad = (why: string) => new CprError("key.name", `invalid key name ${JSON.stringify(name)}: ${why}`, { where, hint: KEY_NAME_HINT });
  if (typeof name !== "string" || name === "") throw bad("it is empty");
  if (name.includes(":")) throw bad("it contains ':'");
  if (/[\s\p{Cc}]/u.test(name)) throw bad("it contains whitespace or a control character");
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Strict base64 (padded, canonical) → bytes, or null. */
function decodeBase64(text: string): Uint8Array | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) return null;
  return new Uint8Array(bytes);
}

/** Splits `name:base64` at the first ':' and checks the name and the byte length. */
function parseNamed(
  text: string,
  what: string,
  bytes: number,
  where: string | undefined,
  hint: string,
): { name: string; data: Uint8Array } {
  const shown = what === "secret key" ? "(secret key text not shown)" : JSON.stringify(text);
  const bad = (why: string) => new CprError("key.invalid", `invalid ${what} ${shown}: ${why}`, { where, hint });
  if (typeof text !== "string") throw bad("not a string");
  const trimmed = text.trim();
  const colon = trimmed.indexOf(":");
  if (colon < 0) throw bad("expected name:base64");
  const name = trimmed.slice(0, colon);
  try {
    checkKeyName(name, where);
  } catch (e) {
    if (e instanceof CprError) throw bad(e.message);
    throw e;
  }
  const data = decodeBase64(trimmed.slice(colon + 1));
  if (data === null) throw bad("the part after ':' is not valid base64");
  if (data.length !== bytes) throw bad(`the key is ${data.length} bytes long; a ${what} has ${bytes}`);
  return { name, data };
}

function privateKeyObject(key: SecretKey): KeyObject {
  if (key.seed.length !== SEED_BYTES || key.publicKey.length !== PUBLIC_BYTES)
    throw new CprError(
      "key.invalid",
      `secret key ${JSON.stringify(key.name)} must have a ${SEED_BYTES}-byte seed and a ${PUBLIC_BYTES}-byte public key`,
      {
        hint: "load it with parseSecretKey or make it with generateSecretKey",
      },
    );
  return createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: b64url(key.seed), x: b64url(key.publicKey) }, format: "jwk" });
}

function publicKeyObject(key: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(key) }, format: "jwk" });
}

/** The public key the seed determines (node:crypto ignores the `x` a private JWK carries). */
function derivePublic(seed: Uint8Array): Uint8Array {
  const priv = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: b64url(seed), x: b64url(new Uint8Array(PUBLIC_BYTES)) },
    format: "jwk",
  });
  const x = createPublicKey(priv).export({ format: "jwk" }).x;
  if (typeof x !== "string") throw new CprError("key.invalid", "node:crypto did not export the ed25519 public key");
  return new Uint8Array(Buffer.from(x, "base64url"));
}

export function generateSecretKey(name: string): SecretKey {
  checkKeyName(name);
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  if (typeof jwk.d !== "string" || typeof jwk.x !== "string")
    throw new CprError("key.invalid", "node:crypto did not export the ed25519 key");
  return { name, seed: new Uint8Array(Buffer.from(jwk.d, "base64url")), publicKey: new Uint8Array(Buffer.from(jwk.x, "base64url")) };
}

/** `name:base64(seed ‖ public key)`, 64 bytes, as Nix writes secret keys. */
export function formatSecretKey(key: SecretKey): string {
  checkKeyName(key.name);
  const both = new Uint8Array(SEED_BYTES + PUBLIC_BYTES);
  both.set(key.seed, 0);
  both.set(key.publicKey, SEED_BYTES);
  return `${key.name}:${b64(both)}`;
}

/**
 * Parses `name:base64(64 bytes)`; surrounding whitespace (a trailing newline in a key file) is ignored. The public
 * half must be the one the seed determines. Error messages never show the key text.
 */
export function parseSecretKey(text: string, where?: string): SecretKey {
  const hint = "a Nix secret key is name:base64 of 64 bytes, as `nix-store --generate-binary-cache-key NAME SECRET PUBLIC` writes";
  const { name, data } = parseNamed(text, "secret key", SEED_BYTES + PUBLIC_BYTES, where, hint);
  const seed = data.slice(0, SEED_BYTES);
  const publicKey = data.slice(SEED_BYTES);
  if (!Buffer.from(derivePublic(seed)).equals(publicKey))
    throw new CprError("key.invalid", `invalid secret key ${JSON.stringify(name)}: its public half does not match its seed`, {
      where,
      hint,
    });
  return { name, seed, publicKey };
}

export function publicKeyOf(key: SecretKey): PublicKey {
  return { name: key.name, key: key.publicKey.slice() };
}

/** `name:base64(32-byte key)` */
export function formatPublicKey(key: PublicKey): string {
  checkKeyName(key.name);
  if (key.key.length !== PUBLIC_BYTES)
    throw new CprError(
      "key.invalid",
      `public key ${JSON.stringify(key.name)} has ${key.key.length} bytes; an ed25519 public key has ${PUBLIC_BYTES}`,
    );
  return `${key.name}:${b64(key.key)}`;
}

/** Parses `name:base64(32 bytes)`; surrounding whitespace is ignored. */
export function parsePublicKey(text: string, where?: string): PublicKey {
  const hint = "a Nix public key is name:base64 of 32 bytes, e.g. the output of `cpr registry key` or a trusted-public-keys entry";
  const { name, data } = parseNamed(text, "public key", PUBLIC_BYTES, where, hint);
  try {
    publicKeyObject(data);
  } catch (e) {
    throw new CprError("key.invalid", `invalid public key ${JSON.stringify(text.trim())}: not an ed25519 point`, { where, hint, cause: e });
  }
  return { name, key: data };
}

/** `name:base64(signature)` over the UTF-8 message. */
export function signDetached(key: SecretKey, message: string): string {
  checkKeyName(key.name);
  const sig = sign(null, Buffer.from(message, "utf8"), privateKeyObject(key));
  return `${key.name}:${sig.toString("base64")}`;
}

/**
 * True when `sig` (`name:base64`) is a valid signature of `message` by the key of that name among `keys`. A
 * malformed signature, or one by a key not among `keys`, is false, not an error.
 */
export function verifyDetached(keys: readonly PublicKey[], message: string, sig: string): boolean {
  const colon = sig.indexOf(":");
  if (colon <= 0) return false;
  const name = sig.slice(0, colon);
  const bytes = decodeBase64(sig.slice(colon + 1));
  if (bytes === null || bytes.length !== SIGNATURE_BYTES) return false;
  const data = Buffer.from(message, "utf8");
  for (const k of keys) {
    if (k.name !== name || k.key.length !== PUBLIC_BYTES) continue;
    try {
      if (verify(null, data, publicKeyObject(k.key), bytes)) return true;
    } catch {
      /* not a valid point: try the next key of that name */
    }
  }
  return false;
}
