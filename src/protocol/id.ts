/**
 * AtomId (spec §3): BLAKE3 derive_key("AtomId", raw root bytes) → key; keyed BLAKE3 of the NFKC label's UTF-8;
 * base32hex lowercase, unpadded (52 chars). Roots are 20 bytes (SHA-1) or 32 bytes (SHA-256).
 */

/** Hex root (40 or 64 hex digits) → raw bytes; throws CprError `root.invalid` otherwise. */
export declare function rootBytes(rootHex: string): Uint8Array;
/** The 32-byte derived key for a root. */
export declare function atomIdKey(root: Uint8Array | string): Uint8Array;
/** The 52-char AtomId. `label` must already be normalised (callers use normalizeLabel). */
export declare function atomId(root: Uint8Array | string, label: string): string;
/** Validate a 52-char AtomId text: canonical lowercase base32hex of exactly 32 bytes; returns the bytes. */
export declare function parseAtomId(text: string): Uint8Array;
export declare function isAtomId(text: string): boolean;
/** The null root used by non-git local storage: 20 zero bytes. */
export declare const NULL_ROOT: string;
