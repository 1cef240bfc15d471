/**
 * Connections to mirrors for one resolve, kept open and reused: a listing and the manifest fetches that follow it
 * go over the same upload-pack conversation (one TCP connection, ssh or upload-pack process per mirror while the
 * work on it is sequential; another one only when two exchanges with the same mirror overlap). A reused connection
 * that fails (e.g. the server dropped it while idle), or a fresh one whose conversation broke off or went out of
 * step (remote.transport: a reply cut short, malformed, or not the one asked for), is replaced by a fresh one
 * once; a second failure is reported as it is. Everything is closed at the end of the run.
 *
 * At most maxLive(url) connections per server (host and port; all local repositories count as one) are open at
 * once: an idle one to another repository of the same server is closed to make room, else the new one waits.
 * Servers limit connections per client: git daemon allows 32 at once by default, and past that kills one and stops
 * accepting for a second (so git:// gets half of that); sshd's MaxStartups drops unauthenticated connections
 * beyond 10, and web servers expect a handful per client (so 8 for the others).
 */
import { UploadPackConnection } from "../git/lsrefs.js";
import { isTransportFailure } from "../git/transport/errors.js";
import type { Reporter } from "../protocol/report.js";
import type { GitUrl } from "../protocol/uri.js";

/** Network activity, for tests and benchmarks. */
export interface NetStats {
  /** Connections opened to mirrors (each serving listings and manifest fetches), and git fetches started. */
  connections: number;
  roundTrips: number;
  bytesReceived: number;
  /** Manifest blobs fetched. */
  manifestsFetched: number;
}

export function newStats(): NetStats {
  return { connections: 0, roundTrips: 0, bytesReceived: 0, manifestsFetched: 0 };
}

export interface ConnectionOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly reporter: Reporter;
  readonly stats: NetStats;
}

/** Connections open at once to one server. */
export function maxLive(url: GitUrl): number {
  return url.scheme === "git" ? 16 : 8;
}

interface Server {
  readonly max: number;
  live: number;
  /** Idle connections of this server, oldest first, with the mirror they belong to. */
  idle: { key: string; conn: UploadPackConnection }[];
  waiting: (() => void)[];
}

function serverOf(url: GitUrl): string {
  return url.host === null ? "local" : `${url.scheme}://${url.host}:${url.port ?? ""}`;
}

export class Connections {
  private readonly servers = new Map<string, Server>();
  private readonly busy = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly opts: ConnectionOptions) {}

  /**
   * Run `f` on a connection to `url` (`key` names the mirror), counting what it cost in `stats`. The connection
   * goes back to the pool when `f` succeeds, and is closed when it fails.
   */
  use<T>(key: string, url: GitUrl, f: (c: UploadPackConnection) => Promise<T>): Promise<T> {
    const p = this.run(key, url, f);
    this.busy.add(p);
    const forget = () => this.busy.delete(p);
    p.then(forget, forget);
    return p;
  }

  private server(url: GitUrl): Server {
    const k = serverOf(url);
    let s = this.servers.get(k);
    if (!s) this.servers.set(k, (s = { max: maxLive(url), live: 0, idle: [], waiting: [] }));
    return s;
  }

  private async run<T>(key: string, url: GitUrl, f: (c: UploadPackConnection) => Promise<T>): Promise<T> {
    const server = this.server(url);
    const at = server.idle.findIndex((i) => i.key === key);
    if (at >= 0) {
      const [{ conn }] = server.idle.splice(at, 1) as [{ key: string; conn: UploadPackConnection }];
      try {
        return await this.attempt(server, key, conn, f);
      } catch {
        // Dropped while idle, or a real failure: a fresh connection tells which.
      }
      return this.fresh(server, key, url, f);
    }
    try {
      return await this.fresh(server, key, url, f);
    } catch (e) {
      if (!isTransportFailure(e)) throw e;
    }
    // The conversation broke off or went out of step, which says nothing about the repository: once more.
    return this.fresh(server, key, url, f);
  }

  /** Run `f` on a new connection to `url`. */
  private async fresh<T>(server: Server, key: string, url: GitUrl, f: (c: UploadPackConnection) => Promise<T>): Promise<T> {
    await this.slot(server);
    this.opts.stats.connections += 1;
    let fresh: UploadPackConnection;
    try {
      fresh = await UploadPackConnection.open(url, { env: this.opts.env, cwd: this.opts.cwd, reporter: this.opts.reporter });
    } catch (e) {
      this.free(server);
      throw e;
    }
    // The advertisement of a fresh connection is an exchange of its own.
    this.opts.stats.roundTrips += fresh.roundTrips();
    this.opts.stats.bytesReceived += fresh.bytesReceived();
    return this.attempt(server, key, fresh, f);
  }

  /** Room for one more live connection to `server`: closes its oldest idle one if it must, else waits. */
  private async slot(server: Server): Promise<void> {
    for (;;) {
      if (server.live < server.max) {
        server.live++;
        return;
      }
      const oldest = server.idle.shift();
      if (oldest) {
        await oldest.conn.close(); // its slot passes to us once it is really closed (the server counts it until then)
        return;
      }
      await new Promise<void>((resolve) => server.waiting.push(resolve));
    }
  }

  /** A live connection of `server` was closed. */
  private free(server: Server): void {
    server.live--;
    server.waiting.shift()?.();
  }

  private async attempt<T>(server: Server, key: string, c: UploadPackConnection, f: (c: UploadPackConnection) => Promise<T>): Promise<T> {
    const trips = c.roundTrips();
    const bytes = c.bytesReceived();
    try {
      const r = await f(c);
      this.release(server, key, c);
      return r;
    } catch (e) {
      void c.close();
      this.free(server);
      throw e;
    } finally {
      this.opts.stats.roundTrips += c.roundTrips() - trips;
      this.opts.stats.bytesReceived += c.bytesReceived() - bytes;
    }
  }

  private release(server: Server, key: string, c: UploadPackConnection): void {
    if (this.closed || c.broken) {
      void c.close();
      this.free(server);
      return;
    }
    server.idle.push({ key, conn: c });
    // Someone waits for room on this server: they may take this idle connection's place.
    server.waiting.shift()?.();
  }

  /** Wait until no exchange is under way. */
  async settle(): Promise<void> {
    while (this.busy.size > 0) await Promise.allSettled([...this.busy]);
  }

  /** Wait for the exchanges under way, then close every connection (never throws). */
  async close(): Promise<void> {
    await this.settle();
    this.closed = true;
    const all = [...this.servers.values()].flatMap((s) => s.idle.splice(0).map((i) => i.conn));
    this.servers.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
