import type { Session, TransportContext } from "./types.js";

export type { Session, TransportContext } from "./types.js";

/**
 * Open an upload-pack conversation over the transport the URL's scheme names. Each transport is loaded when first
 * used: a listing needs one, and HTTP alone pulls in node:http, node:https and node:zlib.
 */
export async function openSession(ctx: TransportContext): Promise<Session> {
  switch (ctx.url.scheme) {
    case "file":
      return (await import("./local.js")).openLocal(ctx);
    case "git":
      return (await import("./daemon.js")).openDaemon(ctx);
    case "ssh":
      return (await import("./ssh.js")).openSsh(ctx);
    case "http":
    case "https":
      return (await import("./http.js")).openHttp(ctx);
  }
}
