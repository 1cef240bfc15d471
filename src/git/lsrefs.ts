/**
 * Our own git protocol v2 `ls-refs` client (spec §9), over file:// and plain paths (local git-upload-pack),
 * git:// (git daemon), ssh:// and scp-style (ssh … git-upload-pack, honouring GIT_SSH_COMMAND / GIT_SSH), and
 * http(s):// (smart HTTP, with git credential helpers on 401). Sends `peel` and `ref-prefix` lines (at most 65535
 * per request, splitting larger batches) and filters the reply itself, since prefixes are only a hint. A server
 * that only speaks v0/v1 gets a full advertisement filtered locally, and a warning through `reporter`.
 */
import { readFileSync } from "node:fs";
import { CprError } from "../protocol/errors.js";
import type { GitUrl } from "../protocol/uri.js";
import type { ListedRef } from "../protocol/refs.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import { DELIM_PKT, FLUSH_PKT, MAX_PKT_PAYLOAD, PktLineError, encodeLine, pktText, type Pkt, type PktReader } from "./pktline.js";
import { classifyStderr, redactUrl, remoteError } from "./transport/errors.js";
import { openSession, type Session, type TransportContext } from "./transport/index.js";

/** Options for lsRefs. */
export interface LsRefsOptions {
  env?: NodeJS.ProcessEnv;
  reporter?: Reporter;
  /** Abort after this many milliseconds without progress (default 60000). */
  timeoutMs?: number;
  /** Working directory for relative file paths (default process.cwd()). */
  cwd?: string;
}

/** What lsRefs found, and what it cost. */
export interface LsRefsResult {
  readonly refs: readonly ListedRef[];
  /** 2, or 0 when the server fell back to the v0/v1 advertisement. */
  readonly protocol: 0 | 2;
  /** Bytes read from the transport, for benchmarks. */
  readonly bytesReceived: number;
  /** Network round trips made (one per request/response exchange), for benchmarks. */
  readonly roundTrips: number;
}

/** Git's server ignores all prefixes once a request has this many `ref-prefix` lines (TOO_MANY_PREFIXES). */
export const MAX_PREFIXES_PER_REQUEST = 65535;

const DEFAULT_TIMEOUT_MS = 60_000;
const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * List refs matching any of `prefixes` (an empty list lists everything). Errors are CprErrors with code
 * `remote.unreachable`, `remote.auth`, `remote.not-found` or `remote.protocol`, naming the URL (without password).
 */
export async function lsRefs(url: GitUrl, prefixes: readonly string[], opts: LsRefsOptions = {}): Promise<LsRefsResult> {
  const ctx = makeContext(url, opts);
  const wanted = normalizePrefixes(prefixes, ctx.display);
  const session = await guard(ctx, () => openSession(ctx));
  try {
    return await guard(ctx, () => converse(session, ctx, wanted));
  } finally {
    await session.close();
  }
}

function makeContext(url: GitUrl, opts: LsRefsOptions): TransportContext {
  return {
    url,
    display: redactUrl(url.url),
    env: opts.env ?? process.env,
    cwd: opts.cwd ?? process.cwd(),
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    reporter: opts.reporter ?? silentReporter,
    version: cprVersion(),
  };
}

let cachedVersion: string | null = null;

/** cpr's version from package.json (`0` if unreadable), used in `agent=cpr/<version>`. */
export function cprVersion(): string {
  if (cachedVersion === null) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: unknown };
      cachedVersion = typeof pkg.version === "string" ? pkg.version.replace(/[^\x21-\x7e]/g, "") : "0";
    } catch {
      cachedVersion = "0";
    }
  }
  return cachedVersion;
}

/** Run `f`, turning framing errors into remote.protocol CprErrors naming the URL. */
async function guard<T>(ctx: TransportContext, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PktLineError) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: malformed reply from the server: ${e.message}`, undefined, e);
    throw e;
  }
}

/**
 * Prefixes as sent: validated, duplicates and prefixes covered by a shorter one removed, sorted. An empty result
 * means "everything" (also when `""` was asked for).
 */
export function normalizePrefixes(prefixes: readonly string[], display = "ls-refs"): string[] {
  for (const p of prefixes) {
    if (/[\n\0]/.test(p) || Buffer.byteLength(`ref-prefix ${p}\n`) > MAX_PKT_PAYLOAD) {
      throw new CprError("remote.protocol", `invalid ref prefix ${JSON.stringify(p.slice(0, 80))}: contains a newline or NUL, or is too long`, { where: display });
    }
  }
  if (prefixes.includes("")) return [];
  const sorted = [...new Set(prefixes)].sort();
  const out: string[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last === undefined || !p.startsWith(last)) out.push(p);
  }
  return out;
}

/** Split into requests of at most MAX_PREFIXES_PER_REQUEST; one empty batch when listing everything. */
export function prefixBatches(prefixes: readonly string[], size = MAX_PREFIXES_PER_REQUEST): string[][] {
  if (prefixes.length === 0) return [[]];
  const out: string[][] = [];
  for (let i = 0; i < prefixes.length; i += size) out.push(prefixes.slice(i, i + size));
  return out;
}

/** Keep the refs that start with one of `prefixes` (sorted and prefix-free, as normalizePrefixes returns). */
export function filterRefs(refs: readonly ListedRef[], prefixes: readonly string[]): ListedRef[] {
  if (prefixes.length === 0) return [...refs];
  return refs.filter((r) => {
    // The only candidate is the greatest prefix <= the name: any prefix between it and the name would extend it.
    let lo = 0;
    let hi = prefixes.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((prefixes[mid] ?? "") <= r.name) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best >= 0 && r.name.startsWith(prefixes[best] ?? "\0");
  });
}

/** The server's capabilities (v2) or its whole ref list (v0/v1). */
type Advertisement = { readonly version: 2; readonly caps: ReadonlyMap<string, string | null> } | { readonly version: 0; readonly refs: ListedRef[] };

async function converse(session: Session, ctx: TransportContext, wanted: readonly string[]): Promise<LsRefsResult> {
  const adv = await readAdvertisement(session, ctx);
  let refs: ListedRef[];
  if (adv.version === 2) {
    if (!adv.caps.has("ls-refs")) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: the server speaks protocol v2 but does not offer ls-refs`);
    refs = [];
    for (const batch of prefixBatches(wanted)) {
      const reader = await session.request(lsRefsRequest(batch, adv.caps, ctx.version));
      refs.push(...(await readRefList(reader, session, ctx)));
    }
    refs = uniqueByName(refs);
  } else {
    refs = adv.refs;
    warnV0(ctx, session, refs.length);
  }
  return { refs: filterRefs(refs, wanted), protocol: adv.version, bytesReceived: session.bytesReceived(), roundTrips: session.roundTrips() };
}

function warnV0(ctx: TransportContext, session: Session, count: number): void {
  const why = session.fallbackNote ?? "the server does not speak git protocol v2";
  const sshHint = ctx.url.scheme === "ssh" ? " (an OpenSSH server needs `AcceptEnv GIT_PROTOCOL` for v2)" : "";
  ctx.reporter.warn(
    `${ctx.display}: ${why}${sshHint}, so the whole ref listing was downloaded (${count} refs, ${session.bytesReceived()} bytes) and filtered locally`,
  );
}

/** The ls-refs command: capabilities, delimiter, `peel` and the prefixes, flush. */
export function lsRefsRequest(prefixes: readonly string[], caps: ReadonlyMap<string, string | null>, version: string): Buffer {
  const parts: Buffer[] = [encodeLine("command=ls-refs")];
  if (caps.has("agent")) parts.push(encodeLine(`agent=cpr/${version}`));
  const format = caps.get("object-format");
  if (format) parts.push(encodeLine(`object-format=${format}`));
  parts.push(DELIM_PKT, encodeLine("peel"));
  for (const p of prefixes) parts.push(encodeLine(`ref-prefix ${p}`));
  parts.push(FLUSH_PKT);
  return Buffer.concat(parts);
}

/** Read the next packet; an unexpected end becomes the transport's best explanation. */
async function readPkt(reader: PktReader, session: Session, what: string): Promise<Pkt> {
  const p = await reader.read();
  if (p === null) throw await session.explain(what);
  return p;
}

/** `ERR <message>` packets carry the server's own error message. */
function checkErr(text: string, ctx: TransportContext): void {
  if (!text.startsWith("ERR ")) return;
  const msg = text.slice(4).trim();
  const code = classifyStderr(msg) ?? "remote.protocol";
  const lead = code === "remote.not-found" ? "repository not found; " : code === "remote.auth" ? "access denied; " : "";
  throw remoteError(code, ctx.display, `${ctx.display}: ${lead}the server said: ${msg}`);
}

async function readAdvertisement(session: Session, ctx: TransportContext): Promise<Advertisement> {
  const reader = session.advertisement;
  const first = await readPkt(reader, session, "closed the connection before answering");
  if (first.kind === "flush") return { version: 0, refs: [] };
  if (first.kind !== "data") throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${first.kind} packet at the start of the reply`);
  const text = pktText(first.data);
  checkErr(text, ctx);
  if (text === "version 2") return { version: 2, caps: await readCapabilities(reader, session, ctx) };
  if (text === "version 1") return { version: 0, refs: await readV0(await readPkt(reader, session, "ended after `version 1`"), reader, session, ctx) };
  return { version: 0, refs: await readV0(first, reader, session, ctx) };
}

async function readCapabilities(reader: PktReader, session: Session, ctx: TransportContext): Promise<Map<string, string | null>> {
  const caps = new Map<string, string | null>();
  for (;;) {
    const p = await readPkt(reader, session, "ended inside the capability advertisement");
    if (p.kind === "flush") return caps;
    if (p.kind !== "data") throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${p.kind} packet in the capability advertisement`);
    const line = pktText(p.data);
    checkErr(line, ctx);
    const eq = line.indexOf("=");
    caps.set(eq < 0 ? line : line.slice(0, eq), eq < 0 ? null : line.slice(eq + 1));
  }
}

/** A mutable ref while parsing. */
interface RefEntry {
  name: string;
  oid: string;
  peeled?: string;
}

function badLine(ctx: TransportContext, line: string): CprError {
  return remoteError("remote.protocol", ctx.display, `${ctx.display}: malformed ref line ${JSON.stringify(line.slice(0, 200))}`);
}

/** Parse a v0/v1 advertisement starting at packet `first`: `<oid> <name>[\0caps]`, `<name>^{}` peeled lines, flush. */
async function readV0(first: Pkt, reader: PktReader, session: Session, ctx: TransportContext): Promise<ListedRef[]> {
  const refs: RefEntry[] = [];
  const byName = new Map<string, RefEntry>();
  for (let p = first; p.kind !== "flush"; p = await readPkt(reader, session, "ended inside the ref advertisement")) {
    if (p.kind !== "data") throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${p.kind} packet in the ref advertisement`);
    const raw = pktText(p.data);
    checkErr(raw, ctx);
    const line = raw.split("\0", 1)[0] ?? "";
    if (line.startsWith("shallow ")) continue;
    const sp = line.indexOf(" ");
    const oid = line.slice(0, sp);
    const name = line.slice(sp + 1);
    if (sp < 0 || !OID.test(oid) || name === "") throw badLine(ctx, raw);
    if (name === "capabilities^{}") continue;
    if (name.endsWith("^{}")) {
      const base = byName.get(name.slice(0, -3));
      if (base) base.peeled = oid;
      continue;
    }
    const entry: RefEntry = { name, oid };
    refs.push(entry);
    byName.set(name, entry);
  }
  return refs;
}

/** Parse an ls-refs response: `<oid> <name>[ symref-target:<t>][ peeled:<oid>]` lines, then flush. */
async function readRefList(reader: PktReader, session: Session, ctx: TransportContext): Promise<ListedRef[]> {
  const refs: ListedRef[] = [];
  for (;;) {
    const p = await readPkt(reader, session, "ended inside the ls-refs reply");
    if (p.kind === "flush") return refs;
    if (p.kind !== "data") throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${p.kind} packet in the ls-refs reply`);
    const line = pktText(p.data);
    checkErr(line, ctx);
    const ref = parseRefLine(line);
    if (ref === "bad") throw badLine(ctx, line);
    if (ref) refs.push(ref);
  }
}

/** One v2 ref line; null for `unborn` entries, "bad" for anything malformed. */
export function parseRefLine(line: string): ListedRef | null | "bad" {
  const [oid = "", name = "", ...attrs] = line.split(" ");
  if (oid === "unborn") return null;
  if (!OID.test(oid) || name === "") return "bad";
  let peeled: string | undefined;
  for (const a of attrs) {
    if (a.startsWith("peeled:")) {
      peeled = a.slice(7);
      if (!OID.test(peeled)) return "bad";
    }
  }
  return peeled === undefined ? { name, oid } : { name, oid, peeled };
}

/** First occurrence of each name wins (batches may overlap when a server ignores prefixes). */
function uniqueByName(refs: readonly ListedRef[]): ListedRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => !seen.has(r.name) && (seen.add(r.name), true));
}
