import type { GitUrl } from "../protocol/uri.js";
import type { ListedRef } from "../protocol/refs.js";
import type { Reporter } from "../protocol/report.js";

/**
 * Our own git protocol v2 `ls-refs` client (spec §9), over file:// and plain paths (local git-upload-pack),
 * git:// (git daemon), ssh:// and scp-style (ssh … git-upload-pack, honouring GIT_SSH_COMMAND / GIT_SSH), and
 * http(s):// (smart HTTP, with git credential helpers on 401). Sends `peel` and `ref-prefix` lines (at most 65535
 * per request, splitting larger batches) and filters the reply itself, since prefixes are only a hint. A server
 * that only speaks v0/v1 gets a full advertisement filtered locally, and a warning through `reporter`.
 */
export interface LsRefsOptions {
  env?: NodeJS.ProcessEnv;
  reporter?: Reporter;
  /** Abort after this many milliseconds without progress (default 60000). */
  timeoutMs?: number;
  /** Working directory for relative file paths (default process.cwd()). */
  cwd?: string;
}

export interface LsRefsResult {
  readonly refs: readonly ListedRef[];
  /** 2, or 0 when the server fell back to the v0/v1 advertisement. */
  readonly protocol: 0 | 2;
  /** Bytes read from the transport, for benchmarks. */
  readonly bytesReceived: number;
  /** Network round trips made (one per request/response exchange), for benchmarks. */
  readonly roundTrips: number;
}

/**
 * List refs matching any of `prefixes` (an empty list lists everything). Errors are CprErrors with code
 * `remote.unreachable`, `remote.auth`, `remote.not-found` or `remote.protocol`, naming the URL (without password).
 */
export declare function lsRefs(url: GitUrl, prefixes: readonly string[], opts?: LsRefsOptions): Promise<LsRefsResult>;
