/**
 * Starting a registry server (used by `cpr serve`, the tests, the bench and the demo).
 * (STUB: signatures fixed; bodies are being written.)
 */
export interface ServeOptions {
  /** `sqlite:PATH`, a path, or `postgres://…`; default `<dataDir>/registry.sqlite`. */
  readonly db?: string;
  readonly dataDir: string;
  /** `HOST:PORT`; port 0 picks a free one. Default 127.0.0.1:8080. */
  readonly listen?: string;
  /** Set mirror URLs to index. */
  readonly sets?: readonly string[];
  /** Seconds between scheduled re-indexing passes; 0 disables the schedule. */
  readonly refreshSeconds?: number;
  /** Name of the signing key created at first start. */
  readonly keyName?: string;
  /** false silences the JSON request log (stderr by default). */
  readonly log?: boolean | NodeJS.WritableStream;
  /** Environment for git (cache dir, credentials). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunningRegistry {
  /** Base URL, `http://HOST:PORT`. */
  readonly url: string;
  /** `name:base64` */
  readonly publicKey: string;
  close(): Promise<void>;
}

export declare function startRegistry(opts: ServeOptions): Promise<RunningRegistry>;
