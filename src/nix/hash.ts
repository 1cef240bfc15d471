/** Nix hash encodings: nix32 (Nix's base32 alphabet), SRI (`sha256-<base64>`), hex. */
export declare function toNix32(bytes: Uint8Array): string;
export declare function fromNix32(text: string): Uint8Array;
export declare function toSri(algo: "sha256", bytes: Uint8Array): string;
/** Accepts `sha256-<base64>`, `sha256:<nix32>`, `sha256:<hex>`; returns raw bytes. Throws CprError otherwise. */
export declare function parseNixHash(text: string): { algo: "sha256"; bytes: Uint8Array };
