/**
 * Write tokens: `cpr_<base64url>` strings; only their SHA-256 is stored, with the set roots they may write.
 * (STUB: signatures fixed; bodies are being written.)
 */
import type { RegistryDb, TokenRow } from "./db.js";

/** Creates a token scoped to `sets` (roots, 40/64 hex), stores its hash, and returns the token text. */
export declare function createToken(db: RegistryDb, sets: readonly string[], note?: string | null): Promise<string>;

/** The token row for a bearer token, or null when unknown. */
export declare function checkToken(db: RegistryDb, token: string): Promise<TokenRow | null>;
