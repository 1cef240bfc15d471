/**
 * AtomId (docs/formats.md §5): BLAKE3 derive_key("AtomId", raw root bytes) → key; keyed BLAKE3 of the NFKC label's UTF-8;
 * base32hex lowercase, unpadded (52 chars). Roots are 20 bytes (SHA-1) or 32 bytes (SHA-256).
 */
import { blake3 } from "@noble/hashes/blake3.js";
import { CprError } from "./errors.js";

/** The KDF context string of docs/formats.md §5.1. */
const ATOM_ID_CONTEXT = new TextEncoder().encode("AtomId");
/** RFC 4648 §7 "base32hex" alphabet, lowercase. */
const BASE32HEX = "0123456789abcdefghijklmnopqrstuv";
/** Digest length in bytes, and the length of its base32hex text. */
const DIGEST_BYTES = 32;
const ATOM_ID_CHARS = 52;

/** The null root used by non-git local storage: 20 zero bytes. */
export const NULL_ROOT: string = "0".repeat(40);

/** Hex root (40 or 64 hex digits) → raw bytes; throws CprError `root.invalid` otherwise. */
export function rootBytes(rootHex: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/.test(rootHex)) {
    throw new CprError("root.invalid", `a set root must be 40 (SHA-1) or 64 (SHA-256) hex digits, got ${JSON.stringify(rootHex)}`, {
      hint: "pass the full id of the root commit, e.g. from `git rev-list --max-parents=0 HEAD`",
    });
  }
  return Uint8Array.from(Buffer.from(rootHex, "hex"));
}

function rootInput(root: Uint8Array | string): Uint8Array {
  if (typeof root === "string") return rootBytes(root);
  if (root.length !== 20 && root.length !== 32) {
    throw new CprError("root.invalid", `a set root must be 20 (SHA-1) or 32 (SHA-256) bytes, got ${root.length}`, {
      hint: "pass the raw bytes of the root commit id, not its hex text",
    });
  }
  return root;
}

/** The 32-byte derived key for a root. */
export function atomIdKey(root: Uint8Array | string): Uint8Array {
  return blake3(rootInput(root), { context: ATOM_ID_CONTEXT });
}

/** The 32-byte AtomId digest: keyed BLAKE3 of the label's UTF-8 bytes. */
export function atomIdDigest(root: Uint8Array | string, label: string): Uint8Array {
  checkIdLabel(label);
  return blake3(new TextEncoder().encode(label), { key: atomIdKey(root) });
}

function checkIdLabel(label: string): void {
  if (label === "" || label.normalize("NFKC") !== label) {
    throw new CprError("label.not-normalized", `an AtomId needs a non-empty NFKC label, got ${JSON.stringify(label)}`, {
      hint: "validate the label with normalizeLabel first",
    });
  }
}

/** The 52-char AtomId. `label` must already be normalised (callers use normalizeLabel). */
export function atomId(root: Uint8Array | string, label: string): string {
  return base32hexEncode(atomIdDigest(root, label));
}

/**
 * atomId for many labels of one set: the keyed hasher is set up once and cloned per label, which is markedly
 * cheaper than a fresh keyed BLAKE3 per label over thousands of labels.
 */
export function atomIdsOf(root: Uint8Array | string): (label: string) => string {
  const keyed = blake3.create({ key: atomIdKey(root) });
  const encoder = new TextEncoder();
  return (label) => {
    checkIdLabel(label);
    return base32hexEncode(keyed.clone().update(encoder.encode(label)).digest());
  };
}

/** RFC 4648 base32hex, lowercase, without padding. */
export function base32hexEncode(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32HEX[(buffer >>> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32HEX[(buffer << (5 - bits)) & 31];
  return out;
}

function badBase32(text: string, why: string): CprError {
  return new CprError("id.invalid", `${JSON.stringify(text)} is not canonical base32hex: ${why}`, {
    hint: "base32hex here is lowercase 0-9a-v without padding, as cpr and eka write it",
  });
}

/**
 * Decode canonical lowercase unpadded base32hex. Rejects other characters (uppercase and `=` included), lengths
 * no byte count encodes to, and non-zero trailing bits, so every byte string has exactly one accepted text.
 */
export function base32hexDecode(text: string): Uint8Array {
  const tail = text.length % 8;
  if (tail === 1 || tail === 3 || tail === 6) throw badBase32(text, `no byte string encodes to ${text.length} characters`);
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const ch of text) {
    const value = BASE32HEX.indexOf(ch);
    if (value < 0 || ch.length !== 1) throw badBase32(text, `invalid character ${JSON.stringify(ch)}`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >>> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) throw badBase32(text, "the unused trailing bits are not zero");
  return out;
}

/** Validate a 52-char AtomId text: canonical lowercase base32hex of exactly 32 bytes; returns the bytes. */
export function parseAtomId(text: string): Uint8Array {
  if (text.length !== ATOM_ID_CHARS) {
    throw new CprError("id.invalid", `an AtomId is ${ATOM_ID_CHARS} characters long, got ${text.length}: ${JSON.stringify(text)}`, {
      hint: "copy the whole id, e.g. from `cpr id`",
    });
  }
  const bytes = base32hexDecode(text);
  if (bytes.length !== DIGEST_BYTES) throw badBase32(text, `it holds ${bytes.length} bytes, not ${DIGEST_BYTES}`);
  return bytes;
}

/** True when `text` is a canonical AtomId text (see parseAtomId). */
export function isAtomId(text: string): boolean {
  try {
    parseAtomId(text);
    return true;
  } catch {
    return false;
  }
}
