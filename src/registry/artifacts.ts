/**
 * The artifact store: compressed NARs under `<data>/nar/`, partial uploads under `<data>/tmp/`.
 * (STUB: signatures fixed; bodies are being written.)
 */
import type { Readable } from "node:stream";

export type Compression = "xz" | "zstd" | "none";

export interface IngestExpect {
  /** Full store path. */
  readonly storePath: string;
  /** `sha256:<nix32>` */
  readonly narHash: string;
  readonly narSize: number;
}

export interface IngestedNar {
  /** `sha256:<nix32>` of the compressed file. */
  readonly fileHash: string;
  readonly fileSize: number;
  readonly compression: Compression;
  /** `nar/<filehash nix32>.nar.xz` (relative URL, also the path under the data dir). */
  readonly url: string;
}

/** Raised for a NAR that does not match what was declared: HTTP status and a message for the client. */
export class IngestError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
    this.name = "IngestError";
  }
}

export interface ArtifactStoreOptions {
  readonly dataDir: string;
  readonly compression?: Compression;
  /** Largest NAR accepted, in bytes. */
  readonly maxNarSize?: number;
}

export declare class ArtifactStore {
  constructor(opts: ArtifactStoreOptions);
  /** Creates the directories and removes leftovers of interrupted uploads in tmp/. */
  init(): Promise<void>;
  /**
   * Streams `body` to a temporary file while hashing and counting it; rejects (IngestError, and removes the temporary
   * file) when it is longer than declared or than maxNarSize (413) or when its size or hash differ (400). Then
   * compresses it and renames the compressed file into place under its own hash. Never leaves a partial file
   * visible.
   */
  ingest(body: Readable, expect: IngestExpect): Promise<IngestedNar>;
  /** Absolute path of a stored file for a relative url (`nar/…`), or null when the name is not one of ours. */
  filePath(url: string): string | null;
}
