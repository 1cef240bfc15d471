/**
 * Loopback ports for the programs the tests, the benchmarks and the demo start (git daemon, lighttpd, sshd,
 * PostgreSQL…). It sits here, importing nothing of the repository's own, so that the demo (scripts/demo.ts) need not
 * depend on the test suite, while test/support/servers.ts, which the benchmarks use too, builds on it.
 */
import { connect, createServer } from "node:net";

/** A port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close): another process may take it first. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:`port` accepts a TCP connection now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
