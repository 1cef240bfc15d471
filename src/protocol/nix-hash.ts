/**
 * Nix hash encodings, pure: nix32 (Nix's base32 alphabet), SRI (`sha256-<base64>`), hex.
 *
 * nix32 is not RFC 4648 base32: its alphabet omits `e o u t`, and it reads the digest as one little-endian number,
 * printing its 5-bit digits most significant first. So the first character holds the top bits of the last byte,
 * and a 32-byte digest takes 52 characters (260 bits, the top 4 of which are zero).
 */
import { CprError } from "./errors.js";

export const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";
const NIX32_INDEX: ReadonlyMap<string, number> = new Map([...NIX32_ALPHABET].map((c, i) => [c, i]));

/** Length of the nix32 encoding of `bytes` bytes: ceil(bytes·8 / 5). */
export function nix32Length(bytes: number): number {
  return Math.ceil((bytes * 8) / 5);
}

export function toNix32(bytes: Uint8Array): string {
  const len = nix32Length(bytes.length);
  let out = "";
  for (let n = len - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const lo = (bytes[i] ?? 0) >> j;
    const hi = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
    out += NIX32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

/** Decode nix32 text. The digest length is the largest whose encoding has `text.length` characters. */
export function fromNix32(text: string): Uint8Array {
  const size = Math.floor((text.length * 5) / 8);
  if (nix32Length(size) !== text.length) {
    throw new CprError("hash.nix32-length", `invalid nix32 length ${text.length}`, { where: text });
  }
  const out = new Uint8Array(size);
  for (let n = 0; n < text.length; n++) {
    const c = text[text.length - 1 - n]!;
    const digit = NIX32_INDEX.get(c);
    if (digit === undefined) {
      throw new CprError("hash.nix32-char", `invalid character ${JSON.stringify(c)} in nix32 hash`, {
        where: text,
        hint: `nix32 uses only the characters ${NIX32_ALPHABET}`,
      });
    }
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    out[i] = (out[i] ?? 0) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < size) out[i + 1] = (out[i + 1] ?? 0) | carry;
    else if (carry !== 0) {
      throw new CprError("hash.nix32-overflow", "nix32 hash has non-zero excess bits", { where: text });
    }
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function toSri(algo: "sha256", bytes: Uint8Array): string {
  if (bytes.length !== 32) throw new CprError("hash.length", `a sha256 digest has 32 bytes, not ${bytes.length}`);
  return `${algo}-${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}`;
}

/** `sha256:<nix32>`, the form `nix-prefetch-url` and `nix-hash --base32` print (with the prefix). */
export function toNix32Hash(algo: "sha256", bytes: Uint8Array): string {
  return `${algo}:${toNix32(bytes)}`;
}

const HASH_HINT = "write sha256-<base64> (SRI), sha256:<52 nix32 characters> or sha256:<64 hex digits>";

/** Accepts `sha256-<base64>`, `sha256:<nix32>`, `sha256:<hex>`; returns raw bytes. Throws CprError otherwise. */
export function parseNixHash(text: string): { algo: "sha256"; bytes: Uint8Array } {
  const bad = (why: string): CprError =>
    new CprError("hash.invalid", `invalid hash ${JSON.stringify(text)}: ${why}`, { where: text, hint: HASH_HINT });
  const sri = /^([a-z0-9]+)-([A-Za-z0-9+/]*={0,2})$/.exec(text);
  if (sri) {
    if (sri[1] !== "sha256") throw bad(`unsupported algorithm ${sri[1]}`);
    const b64 = sri[2]!;
    if (b64.length !== 44 || !b64.endsWith("=") || b64.endsWith("=="))
      throw bad("a sha256 SRI hash has 44 base64 characters ending in one '='");
    const bytes = new Uint8Array(Buffer.from(b64, "base64"));
    // Reject non-canonical base64 (stray low bits in the last character).
    if (bytes.length !== 32 || Buffer.from(bytes).toString("base64") !== b64) throw bad("non-canonical base64");
    return { algo: "sha256", bytes };
  }
  const colon = /^([a-z0-9]+):(.*)$/.exec(text);
  if (colon) {
    if (colon[1] !== "sha256") throw bad(`unsupported algorithm ${colon[1]}`);
    const body = colon[2]!;
    if (body.length === 64 && /^[0-9a-fA-F]+$/.test(body)) return { algo: "sha256", bytes: new Uint8Array(Buffer.from(body, "hex")) };
    if (body.length === 52) {
      try {
        return { algo: "sha256", bytes: fromNix32(body) };
      } catch (e) {
        throw bad(e instanceof Error ? e.message : String(e));
      }
    }
    throw bad(`expected 52 nix32 characters or 64 hex digits, got ${body.length} characters`);
  }
  throw bad("unrecognised form");
}
