import type { GitUrl } from "../../protocol/uri.js";
import type { Reporter } from "../../protocol/report.js";
import type { PktReader } from "../pktline.js";

/** What every transport needs to know about one listing. */
export interface TransportContext {
  readonly url: GitUrl;
  /** The URL for messages, with any password removed. */
  readonly display: string;
  readonly env: NodeJS.ProcessEnv;
  /** Working directory for relative paths and for reading git config. */
  readonly cwd: string;
  /** Inactivity limit in milliseconds for every wait on the remote. */
  readonly timeoutMs: number;
  readonly reporter: Reporter;
  /** cpr's version, for `agent=` and the HTTP user agent. */
  readonly version: string;
}

/**
 * One conversation with `git-upload-pack`, whatever carries it. Connection-oriented transports (local process, git
 * daemon, ssh) keep one stream open and answer each request on it; HTTP is stateless and makes one POST per request.
 */
export interface Session {
  /** Set when the transport itself had to fall back (e.g. dumb HTTP); lsRefs adds it to the v0 warning. */
  readonly fallbackNote?: string | undefined;
  /** The server's first reply: the v2 capability advertisement, or the v0/v1 ref advertisement. */
  readonly advertisement: PktReader;
  /** Send one protocol v2 command request (already pkt-line encoded) and return a reader for its response. */
  request(body: Buffer): Promise<PktReader>;
  /** Build the best error for an unexpected end of the conversation (uses stderr/exit status where there is one). */
  explain(what: string): Promise<Error>;
  /**
   * True when the server writes to our TCP connection itself (git daemon) and so may hold back a small write
   * (Nagle) until we acknowledge the previous one, which our kernel may delay by up to 40 ms when we have nothing
   * to send. `nudge` writes a request at once (a harmless command the caller answers for itself) so that the
   * acknowledgement goes out with it; `onChunk` tells the caller when data arrives.
   */
  readonly nudgeable?: boolean;
  nudge?(body: Buffer): void;
  onChunk?(listener: ((chunk: Buffer) => void) | null): void;
  /** Bytes received from the remote so far. */
  bytesReceived(): number;
  /** Request/response exchanges so far, counting the one that produced the advertisement. */
  roundTrips(): number;
  /** End politely where possible, then release every process, socket and response. Never throws. */
  close(): Promise<void>;
}
