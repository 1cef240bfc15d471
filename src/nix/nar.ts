/**
 * Nix Archive (NAR) serialisation of a file system tree, and the hashes Nix prints for it. Used for the NAR sha256
 * of unpacked sources (`cpr add --nix … --tar|--unpack`) and, later, by the binary cache.
 */
export interface NarOptions {
  /** Called with each chunk of the NAR stream, in order. */
  onChunk?: (chunk: Uint8Array) => void;
}

/** Serialise `path` (file, executable, symlink or directory) as a NAR; returns its sha256 digest and size. */
export declare function narHash(path: string, opts?: NarOptions): Promise<{ sha256: Uint8Array; size: number }>;
