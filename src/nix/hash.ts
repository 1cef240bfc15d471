/**
 * Nix hash encodings: nix32, SRI, hex. The code is pure and lives in src/protocol/nix-hash.ts so that the protocol
 * layer (narinfo, build records) can use it; this module re-exports it for the adapters and existing imports.
 */
export * from "../protocol/nix-hash.js";
