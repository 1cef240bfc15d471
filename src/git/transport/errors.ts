import { CprError } from "../../protocol/errors.js";

/**
 * The error codes a listing can fail with. `remote.transport` is a conversation that broke off or went out of step
 * (a reply cut short before its final flush, bytes that are not pkt-lines, a reply that answers another request):
 * it says nothing about the repository, and is worth one more try on a fresh connection.
 */
export type RemoteErrorCode = "remote.unreachable" | "remote.auth" | "remote.not-found" | "remote.protocol" | "remote.transport";

/** A CprError about the remote `display`, with `where` set to it. */
export function remoteError(code: RemoteErrorCode, display: string, message: string, hint?: string, cause?: unknown): CprError {
  return new CprError(code, message, {
    where: display,
    ...(hint === undefined ? {} : { hint }),
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A remote.transport CprError: `${display}: transport failure: ${what}`. */
export function transportError(display: string, what: string, cause?: unknown): CprError {
  return remoteError("remote.transport", display, `${display}: transport failure: ${what}`, TRANSPORT_HINT, cause);
}

/** The hint of every remote.transport error. */
export const TRANSPORT_HINT =
  "the connection or the server failed midway, which says nothing about the repository; try again, and check the server and the network if it persists";

/** Whether `e` is a remote.transport failure (see RemoteErrorCode). */
export function isTransportFailure(e: unknown): boolean {
  return e instanceof CprError && e.code === "remote.transport";
}

/** Last few non-empty lines of a process's stderr, for error messages. */
export function stderrTail(stderr: string, lines = 4): string {
  return stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .slice(-lines)
    .join("; ");
}

/** Classify the stderr of git / ssh, as git prints it, into an error code; null when nothing is recognised. */
export function classifyStderr(stderr: string): RemoteErrorCode | null {
  if (
    /does not appear to be a git repository|repository .* (does not exist|not found)|repository not found|no such repository|not a git repository|not exported/i.test(
      stderr,
    )
  ) {
    return "remote.not-found";
  }
  if (/permission denied|authentication failed|host key verification failed|too many authentication failures|access denied/i.test(stderr)) {
    return "remote.auth";
  }
  if (
    /connection refused|could not resolve|name or service not known|timed out|no route to host|network is unreachable|connection reset|connection closed/i.test(
      stderr,
    )
  ) {
    return "remote.unreachable";
  }
  return null;
}

/** Error code for a Node socket/network error code such as ECONNREFUSED. */
export function networkErrorMessage(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name could not be resolved";
    case "ETIMEDOUT":
      return "connection timed out";
    case "ECONNRESET":
      return "connection reset by the server";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host is unreachable";
    default:
      return err.message;
  }
}
