/**
 * A TCP relay that models a network link between a client and a loopback server, and counts the bytes it carries.
 *
 * Each direction is a link with a bandwidth and a one-way latency, shared by all connections through the relay (as
 * one access link would be). Data is cut into segments of at most SEGMENT bytes; a segment starts serialising when
 * the link is free (or when it arrives, if later), takes bytes*8/bandwidth to serialise, and is delivered `latency`
 * after its last bit left. Deliveries on a link are therefore in order, and a connection's end (FIN) is delivered
 * after its last byte. Byte counts are TCP payload bytes (what git or cpr wrote), not link-layer overhead.
 *
 * Run directly for manual experiments: `node dist/bench/relay.js --target 127.0.0.1:9418 [--port 0]
 * [--mbit 20] [--latency-ms 15]` prints the listening port, and the byte counts on Ctrl-C.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

export interface LinkModel {
  /** Bits per second in each direction; Infinity for no bandwidth limit. */
  bandwidthBps: number;
  /** One-way latency in milliseconds. */
  latencyMs: number;
}

/** 20 Mbit/s, 15 ms one way: the link the discovery benchmark models. */
export const DEFAULT_LINK: LinkModel = { bandwidthBps: 20e6, latencyMs: 15 };

const SEGMENT = 16 * 1024;

type Delivery = { at: number; run: () => void };

/** One direction of the link: a FIFO with serialisation and propagation delay. */
class Link {
  private freeAt = 0;
  private queue: Delivery[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  bytes = 0;

  constructor(private readonly model: LinkModel) {}

  /** Queue `data` for delivery through `deliver`, splitting it into segments. */
  send(data: Buffer, deliver: (b: Buffer) => void): void {
    this.bytes += data.length;
    for (let off = 0; off < data.length; off += SEGMENT) {
      const seg = data.subarray(off, Math.min(off + SEGMENT, data.length));
      const now = performance.now();
      const start = Math.max(now, this.freeAt);
      const end = start + (Number.isFinite(this.model.bandwidthBps) ? (seg.length * 8 * 1000) / this.model.bandwidthBps : 0);
      this.freeAt = end;
      this.push(end + this.model.latencyMs, () => deliver(seg));
    }
  }

  /** Queue an event (e.g. end of stream) behind everything already sent. */
  after(run: () => void): void {
    this.push(Math.max(performance.now(), this.freeAt) + this.model.latencyMs, run);
  }

  private push(at: number, run: () => void): void {
    // `at` is non-decreasing: the link's free time only grows, and the latency is constant.
    this.queue.push({ at, run });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.head >= this.queue.length) return;
    const wait = this.queue[this.head]!.at - performance.now();
    this.timer = setTimeout(() => this.flush(), Math.max(0, wait));
  }

  private flush(): void {
    this.timer = null;
    const now = performance.now();
    while (this.head < this.queue.length && this.queue[this.head]!.at <= now + 0.05) {
      const d = this.queue[this.head++]!;
      d.run();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.schedule();
  }

  reset(): void {
    this.bytes = 0;
  }
}

export interface RelayStats {
  /** Client → server payload bytes. */
  sent: number;
  /** Server → client payload bytes. */
  received: number;
  connections: number;
}

export class Relay {
  private server: Server | null = null;
  private readonly up: Link;
  private readonly down: Link;
  private readonly sockets = new Set<Socket>();
  private connections = 0;
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
    readonly model: LinkModel = DEFAULT_LINK,
  ) {
    this.up = new Link(model);
    this.down = new Link(model);
  }

  /** Listen on 127.0.0.1 (port 0: any free port); resolves to the port. */
  listen(port = 0): Promise<number> {
    return new Promise((resolvePromise, reject) => {
      const server = createServer((client) => this.accept(client));
      server.on("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const addr = server.address();
        this.port = typeof addr === "object" && addr ? addr.port : port;
        this.server = server;
        resolvePromise(this.port);
      });
    });
  }

  private accept(client: Socket): void {
    this.connections++;
    const server = connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(server);
    client.setNoDelay(true);
    server.setNoDelay(true);
    const close = () => {
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    client.on("error", close);
    server.on("error", close);
    // A real connection costs a round trip (SYN, SYN-ACK) before the client's first byte can leave: hold client
    // data until then. (Over loopback the kernel has already completed the handshake.)
    let pending: Buffer[] | null = [];
    const toServer = (b: Buffer) => this.up.send(b, (seg) => server.destroyed || server.write(seg));
    setTimeout(() => {
      const held = pending ?? [];
      pending = null;
      for (const b of held) toServer(b);
      if (clientEnded) this.up.after(() => server.destroyed || server.end());
    }, 2 * this.model.latencyMs);
    let clientEnded = false;
    client.on("data", (b: Buffer) => (pending ? pending.push(b) : toServer(b)));
    server.on("data", (b: Buffer) => this.down.send(b, (seg) => client.destroyed || client.write(seg)));
    client.on("end", () => {
      clientEnded = true;
      if (!pending) this.up.after(() => server.destroyed || server.end());
    });
    server.on("end", () => this.down.after(() => client.destroyed || client.end()));
    client.on("close", () => (pending ? close() : this.up.after(close)));
    server.on("close", () => this.down.after(close));
  }

  stats(): RelayStats {
    return { sent: this.up.bytes, received: this.down.bytes, connections: this.connections };
  }

  reset(): void {
    this.up.reset();
    this.down.reset();
    this.connections = 0;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return new Promise((resolvePromise) => (this.server ? this.server.close(() => resolvePromise()) : resolvePromise()));
  }
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const target = argValue(args, "--target");
  if (!target || !/^[^:]+:\d+$/.test(target)) {
    console.error("usage: relay.js --target HOST:PORT [--port N] [--mbit 20] [--latency-ms 15]");
    process.exit(2);
  }
  const [host, port] = target.split(":") as [string, string];
  const relay = new Relay(
    { host, port: Number(port) },
    { bandwidthBps: Number(argValue(args, "--mbit") ?? 20) * 1e6, latencyMs: Number(argValue(args, "--latency-ms") ?? 15) },
  );
  relay.listen(Number(argValue(args, "--port") ?? 0)).then((p) => console.log(`relay listening on 127.0.0.1:${p} -> ${target}`));
  process.on("SIGINT", () => {
    console.log(JSON.stringify(relay.stats()));
    void relay.close().then(() => process.exit(0));
  });
}
