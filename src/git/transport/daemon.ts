import { connect, type Socket } from "node:net";
import { encodePkt } from "../pktline.js";
import { networkErrorMessage, remoteError, transportError } from "./errors.js";
import { StreamSession, StreamSource } from "./stream.js";
import type { Session, TransportContext } from "./types.js";

/** git daemon's registered port. */
export const DEFAULT_GIT_PORT = 9418;

/** `host` as git writes it in URLs: IPv6 literals in brackets. */
export function bracketHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** `host` without IPv6 brackets, for connecting. */
export function bareHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * The git:// request packet: `git-upload-pack <path>\0host=<host>[:<port>]\0\0version=2\0`. The port is included
 * only when the URL names one, as git does; the extra parameter after the second NUL asks for protocol v2.
 */
export function daemonRequest(path: string, host: string, port: number | null): Buffer {
  const target = port === null ? bracketHost(host) : `${bracketHost(host)}:${port}`;
  return encodePkt(`git-upload-pack ${path}\0host=${target}\0\0version=2\0`);
}

/**
 * At most this many connections per server still waiting for their first byte (not yet accepted and answered).
 * git daemon listens with a backlog of 5 (Linux queues 6): more simultaneous connection attempts can overflow it,
 * and the kernel drops the extra ones, which are retried only after a 1 s SYN timeout.
 */
export const MAX_OPENING_PER_SERVER = 5;

const opening = new Map<string, { active: number; queue: (() => void)[] }>();

/** Wait for a free opening slot for `key`; resolves to the function that frees it (idempotent). */
async function openingSlot(key: string): Promise<() => void> {
  let s = opening.get(key);
  if (!s) opening.set(key, (s = { active: 0, queue: [] }));
  const state = s;
  if (state.active >= MAX_OPENING_PER_SERVER) await new Promise<void>((resolve) => state.queue.push(resolve));
  else state.active++;
  let freed = false;
  return () => {
    if (freed) return;
    freed = true;
    const next = state.queue.shift();
    if (next)
      next(); // the slot passes on
    else if (--state.active === 0) opening.delete(key);
  };
}

/** Connect to a git daemon over TCP and ask for upload-pack. */
export async function openDaemon(ctx: TransportContext): Promise<Session> {
  const { host, port, path } = ctx.url;
  if (!host) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: a git:// URL needs a host`);
  const target = { host: bareHost(host), port: port ?? DEFAULT_GIT_PORT };
  const free = await openingSlot(`${target.host}:${target.port}`);
  const socket: Socket = connect(target);
  socket.once("data", free);
  socket.once("close", free);
  socket.setNoDelay(true);
  const timeout = (): Error =>
    remoteError(
      "remote.unreachable",
      ctx.display,
      `${ctx.display}: no reply within ${ctx.timeoutMs / 1000}s`,
      "check the connection and that git daemon is running",
    );
  const source = new StreamSource(socket, ctx.timeoutMs, timeout, (e: NodeJS.ErrnoException) =>
    remoteError(
      "remote.unreachable",
      ctx.display,
      `${ctx.display}: cannot connect: ${networkErrorMessage(e)}`,
      "check the host and port, and that git daemon is running",
      e,
    ),
  );
  socket.write(daemonRequest(path || "/", host, port));
  return new StreamSession({
    source,
    writable: socket,
    explain: (what) =>
      Promise.resolve(
        source.bytes === 0
          ? remoteError(
              "remote.not-found",
              ctx.display,
              `${ctx.display}: git daemon closed the connection without answering: the repository does not exist or is not exported`,
              "check the path; git daemon serves only repositories under its base path that are exported",
            )
          : transportError(ctx.display, `git daemon ${what}`),
      ),
    dispose: (force) => closeSocket(socket, force),
    tcp: true,
  });
}

/** End the socket, waiting briefly for the server to close its side unless `force`. */
function closeSocket(socket: Socket, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => socket.destroy(), force ? 0 : 2000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}
