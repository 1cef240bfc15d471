import { openDaemon } from "./daemon.js";
import { openHttp } from "./http.js";
import { openLocal } from "./local.js";
import { openSsh } from "./ssh.js";
import type { Session, TransportContext } from "./types.js";

export type { Session, TransportContext } from "./types.js";

/** Open an upload-pack conversation over the transport the URL's scheme names. */
export async function openSession(ctx: TransportContext): Promise<Session> {
  switch (ctx.url.scheme) {
    case "file":
      return openLocal(ctx);
    case "git":
      return openDaemon(ctx);
    case "ssh":
      return openSsh(ctx);
    case "http":
    case "https":
      return openHttp(ctx);
  }
}
