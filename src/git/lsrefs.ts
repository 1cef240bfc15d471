/**
 * Our own git protocol v2 client (docs/formats.md §10), over file:// and plain paths (local git-upload-pack), git:// (git
 * daemon), ssh:// and scp-style (ssh … git-upload-pack, honouring GIT_SSH_COMMAND / GIT_SSH), and http(s):// (smart
 * HTTP, with git credential helpers on 401). `ls-refs` sends `peel` and `ref-prefix` lines (at most 65535 per
 * request, splitting larger batches) and filters the reply itself, since prefixes are only a hint. A server that
 * only speaks v0/v1 gets a full advertisement filtered locally, and a warning through `reporter`.
 * UploadPackConnection keeps one conversation open for several commands, and also fetches objects by id (`fetch`
 * with `done`, no haves), reading and checking the pack in process (src/protocol/pack.ts).
 *
 * A listing is an answer only when it is complete (every packet up to its final flush) and answers the request it
 * was read for: replies on a stream are matched to requests in the order they were written, and a reply cut short,
 * malformed or out of step is a `remote.transport` failure, never an empty listing. */
import { readFileSync } from "node:fs";
import { CprError } from "../protocol/errors.js";
import { redactUrl, type GitUrl } from "../protocol/uri.js";
import type { ListedRef } from "../protocol/refs.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import { DELIM_PKT, FLUSH_PKT, MAX_PKT_PAYLOAD, PktLineError, encodeLine, pktText, type Pkt, type PktReader } from "./pktline.js";
import { classifyStderr, isTransportFailure, remoteError, transportError } from "./transport/errors.js";
import { openSession, type Session, type TransportContext } from "./transport/index.js";
import { PackError, parsePack, type PackEntry } from "../protocol/pack.js";

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
 * `remote.unreachable`, `remote.auth`, `remote.not-found`, `remote.protocol` or `remote.transport` (tried once more
 * on a fresh connection first), naming the URL (without password).
 */
export async function lsRefs(url: GitUrl, prefixes: readonly string[], opts: LsRefsOptions = {}): Promise<LsRefsResult> {
  const ctx = makeContext(url, opts);
  const wanted = normalizePrefixes(prefixes, ctx.display);
  try {
    return await listOnce(ctx, wanted);
  } catch (e) {
    if (!isTransportFailure(e)) throw e;
  }
  return listOnce(ctx, wanted);
}

async function listOnce(ctx: TransportContext, wanted: readonly string[]): Promise<LsRefsResult> {
  const conn = await UploadPackConnection.openContext(ctx);
  try {
    const refs = await conn.lsRefs(wanted);
    return { refs, protocol: conn.protocol, bytesReceived: conn.bytesReceived(), roundTrips: conn.roundTrips() };
  } finally {
    await conn.close();
  }
}

/** What fetchObjects received: every object of the pack by id (checked), and the pack itself. */
export interface FetchedObjects {
  readonly objects: ReadonlyMap<string, PackEntry>;
  /** The pack as received (its checksum checked), to store as it is; null when nothing was asked for. */
  readonly pack: Buffer | null;
}

/** Options for UploadPackConnection.fetchObjects. */
export interface FetchObjectsOptions {
  /** Refuse a pack larger than this many bytes (default 64 MiB): what is fetched this way is expected to be small. */
  maxPackBytes?: number;
}

/**
 * One conversation with upload-pack that stays open for several commands (protocol v2 serves commands until the
 * client ends it; over HTTP each command is its own request): `ls-refs`, and `fetch` of objects by id, whose pack
 * is read here (no git process: the objects come back verified, their ids computed from their content). A v0/v1
 * server lists once (its advertisement, filtered locally, with one warning per connection) and cannot fetch this
 * way (`canFetch` is false). After a failed command the connection is `broken` and must be closed.
 */
export class UploadPackConnection {
  private warnedV0 = false;
  private closed = false;
  /**
   * The requests written on this stream whose replies are not read yet, oldest first: the server answers in that
   * order, so the next reply on the stream is always the oldest one's. A command's own entry is read by it; nudges'
   * entries (empty ls-refs, see exchange) are read, and checked empty, before the next command's reply.
   */
  private readonly unread: Unread[] = [];
  /** An exchange is under way: a second one at the same time would read the other's replies. */
  private inUse = false;
  /** Set when a command failed midway: the stream's position is unknown, so it must not be used again. */
  broken = false;

  private constructor(
    private readonly session: Session,
    private readonly ctx: TransportContext,
    private readonly adv: Advertisement,
  ) {}

  static open(url: GitUrl, opts: LsRefsOptions = {}): Promise<UploadPackConnection> {
    return UploadPackConnection.openContext(makeContext(url, opts));
  }

  /** @internal */
  static async openContext(ctx: TransportContext): Promise<UploadPackConnection> {
    const session = await guard(ctx, () => openSession(ctx));
    try {
      const adv = await guard(ctx, () => readAdvertisement(session, ctx));
      if (adv.version === 2 && !adv.caps.has("ls-refs"))
        throw remoteError("remote.protocol", ctx.display, `${ctx.display}: the server speaks protocol v2 but does not offer ls-refs`);
      return new UploadPackConnection(session, ctx, adv);
    } catch (e) {
      await session.close();
      throw e;
    }
  }

  /** 2, or 0 when the server sent a v0/v1 advertisement. */
  get protocol(): 0 | 2 {
    return this.adv.version;
  }

  /** The URL for messages (no password). */
  get display(): string {
    return this.ctx.display;
  }

  /** The repository's object format (`sha1` unless a v2 server says otherwise). */
  get objectFormat(): string {
    return this.adv.version === 2 ? (this.adv.caps.get("object-format") ?? "sha1") : "sha1";
  }

  /**
   * Whether git's own upload-pack answers (`agent=git/<version>`): it sends only refs under the requested prefixes
   * (fewer than 65536, as we always send), so a ref outside them means a reply to another request; and it answers
   * a prefix no ref has with a bare flush, which is what makes nudges safe.
   */
  private get gitServer(): boolean {
    return this.adv.version === 2 && /^git\/\d/.test(this.adv.caps.get("agent") ?? "");
  }

  /** Whether fetchObjects works here: protocol v2 with the `fetch` command. */
  get canFetch(): boolean {
    return this.adv.version === 2 && this.adv.caps.has("fetch") && (this.objectFormat === "sha1" || this.objectFormat === "sha256");
  }

  bytesReceived(): number {
    return this.session.bytesReceived();
  }

  roundTrips(): number {
    return this.session.roundTrips();
  }

  /** Refs under any of `prefixes` (as lsRefs takes them; empty for all), one exchange per batch of prefixes. */
  async lsRefs(prefixes: readonly string[]): Promise<ListedRef[]> {
    const wanted = normalizePrefixes(prefixes, this.ctx.display);
    const adv = this.adv;
    if (adv.version !== 2) {
      if (!this.warnedV0) warnV0(this.ctx, this.session, adv.refs.length);
      this.warnedV0 = true;
      return filterRefs(adv.refs, wanted);
    }
    return this.guarded(async () => {
      let refs: ListedRef[] = [];
      for (const batch of prefixBatches(wanted)) {
        const strict = this.gitServer ? batch : null;
        refs.push(
          ...(await this.exchange(lsRefsRequest(batch, adv.caps, this.ctx.version), (reader) =>
            readRefList(reader, this.session, this.ctx, strict),
          )),
        );
      }
      refs = uniqueByName(refs);
      return filterRefs(refs, wanted);
    });
  }

  /**
   * Fetch exactly these objects (by id, e.g. blobs that refs point at) in one `fetch` command: no `have`s, no thin
   * pack, no progress. Returns every object of the pack by id; throws remote.protocol when one asked for is missing.
   */
  async fetchObjects(oids: readonly string[], opts: FetchObjectsOptions = {}): Promise<FetchedObjects> {
    const adv = this.adv;
    if (adv.version !== 2 || !this.canFetch)
      throw remoteError("remote.protocol", this.ctx.display, `${this.ctx.display}: the server cannot fetch objects by id over protocol v2`);
    const unique = [...new Set(oids)];
    if (unique.length === 0) return { objects: new Map(), pack: null };
    return this.guarded(async () => {
      const pack = await this.exchange(fetchRequest(unique, adv.caps, this.ctx.version), (reader) =>
        readPackResponse(reader, this.session, this.ctx, opts.maxPackBytes ?? 64 * 1024 * 1024),
      );
      let objects: PackEntry[];
      try {
        objects = parsePack(pack, this.objectFormat === "sha256" ? "sha256" : "sha1");
      } catch (e) {
        if (e instanceof PackError)
          throw remoteError(
            "remote.protocol",
            this.ctx.display,
            `${this.ctx.display}: bad pack from the server: ${e.message}`,
            undefined,
            e,
          );
        throw e;
      }
      const out = new Map(objects.map((o) => [o.oid, o]));
      const missing = unique.filter((o) => !out.has(o));
      if (missing.length)
        throw remoteError(
          "remote.protocol",
          this.ctx.display,
          `${this.ctx.display}: the pack lacks ${missing.length} object(s) asked for, e.g. ${missing[0]}`,
        );
      return { objects: out, pack };
    });
  }

  /**
   * Send one command and read its reply with `read`, after the replies of the nudges written before it.
   * upload-pack writes a reply in several writes (ls-refs in stdio-buffer-sized pieces, then a flush; fetch:
   * `packfile`, the pack, a flush). On a TCP connection the server's kernel holds a small write back until the
   * previous one is acknowledged (Nagle), and ours delays that acknowledgement by up to 40 ms while we have nothing
   * to send: on loopback, where a whole piece fits in one segment, every reply of more than one piece would stall.
   * So, with git's own upload-pack over TCP, while a reply is incomplete each chunk that arrives is followed by a
   * nudge (an ls-refs of a prefix no ref has), which carries the acknowledgement at once. Every request written is
   * queued in `unread`: a nudge written during this exchange follows this command on the wire, so its reply is read
   * (and must be a bare flush) before the next command's reply, never in place of this one's.
   */
  private async exchange<T>(body: Buffer, read: (reader: PktReader) => Promise<T>): Promise<T> {
    const session = this.session;
    const mine: Unread = { nudge: false };
    this.unread.push(mine);
    const reader = await session.request(body);
    const onChunk = session.nudgeable && this.gitServer ? session.onChunk?.bind(session) : undefined;
    const send = session.nudge?.bind(session);
    let done = false;
    const adv = this.adv;
    if (onChunk && send && adv.version === 2) {
      const nudge = lsRefsRequest([NUDGE_PREFIX], adv.caps, this.ctx.version);
      let nudges = 0;
      let pending = false;
      onChunk(() => {
        if (pending || nudges >= MAX_NUDGES) return;
        pending = true;
        // Decide once the chunk has been read (microtasks run first): no nudge when it completed the reply.
        setImmediate(() => {
          pending = false;
          if (done || nudges >= MAX_NUDGES) return;
          nudges++;
          this.unread.push({ nudge: true });
          send(nudge);
        });
      });
    }
    try {
      await this.readNudgeReplies(reader, mine);
      const out = await read(reader);
      this.unread.shift(); // this command's entry, the oldest one now
      return out;
    } finally {
      done = true;
      onChunk?.(null);
    }
  }

  /**
   * Read the replies of the nudges written before `mine` (on a stream they come first). git answers a prefix no ref
   * has with a bare flush; anything else means the replies are out of step with the requests.
   */
  private async readNudgeReplies(reader: PktReader, mine: Unread): Promise<void> {
    for (let head = this.unread[0]; head !== mine; head = this.unread[0]) {
      if (!head?.nudge) throw new Error("internal: an earlier command's reply is still unread");
      const p = await readPkt(reader, this.session, "ended inside the reply to an empty ls-refs (a nudge)");
      if (p.kind === "data") checkErr(pktText(p.data), this.ctx);
      if (p.kind !== "flush") {
        const got = p.kind === "data" ? JSON.stringify(pktText(p.data).slice(0, 120)) : `a ${p.kind} packet`;
        throw transportError(
          this.ctx.display,
          `replies out of step with requests: the reply to an ls-refs of ${NUDGE_PREFIX} (a bare flush) was due, but the server sent ${got}`,
        );
      }
      this.unread.shift();
    }
  }

  private async guarded<T>(f: () => Promise<T>): Promise<T> {
    if (this.closed || this.broken) throw new Error("internal: upload-pack connection used after close or failure");
    if (this.inUse) throw new Error("internal: two exchanges at once on one upload-pack connection");
    this.inUse = true;
    try {
      return await guard(this.ctx, f);
    } catch (e) {
      this.broken = true;
      throw e;
    } finally {
      this.inUse = false;
    }
  }

  /** End the conversation (never throws). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.close();
  }
}

/** A request written on a stream whose reply is not read yet: a command's, or a nudge's. */
interface Unread {
  readonly nudge: boolean;
}

/** A ref prefix no ref has (refs/cpr/ is never published), for the nudges of exchange. */
const NUDGE_PREFIX = "refs/cpr/nudge/none/";
const MAX_NUDGES = 16;

/** The v2 fetch command for `oids`: everything at once (`done`), no haves, no progress, OFS deltas allowed. */
export function fetchRequest(oids: readonly string[], caps: ReadonlyMap<string, string | null>, version: string): Buffer {
  const parts: Buffer[] = [encodeLine("command=fetch")];
  if (caps.has("agent")) parts.push(encodeLine(`agent=cpr/${version}`));
  const format = caps.get("object-format");
  if (format) parts.push(encodeLine(`object-format=${format}`));
  parts.push(DELIM_PKT, encodeLine("no-progress"), encodeLine("ofs-delta"));
  for (const o of oids) parts.push(encodeLine(`want ${o}`));
  parts.push(encodeLine("done"), FLUSH_PKT);
  return Buffer.concat(parts);
}

/**
 * A fetch response after `done`: sections (`shallow-info`, `wanted-refs`, `packfile-uris`, each ended by a
 * delimiter) are skipped up to `packfile`, whose side-band data (band 1) is the pack; band 2 is progress, band 3 a
 * fatal error from the server. Ends with a flush (then possibly a response-end over stateless transports).
 */
async function readPackResponse(reader: PktReader, session: Session, ctx: TransportContext, maxBytes: number): Promise<Buffer> {
  for (;;) {
    const p = await readPkt(reader, session, "ended before the packfile");
    if (p.kind !== "data") throw transportError(ctx.display, `unexpected ${p.kind} packet before the packfile`);
    const line = pktText(p.data);
    checkErr(line, ctx);
    if (line === "packfile") break;
    // Another section: skip to its end.
    for (;;) {
      const q = await readPkt(reader, session, `ended inside the ${line} section`);
      if (q.kind === "delim") break;
      if (q.kind !== "data") throw transportError(ctx.display, `unexpected ${q.kind} packet in the ${line} section`);
    }
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const p = await readPkt(reader, session, "ended inside the packfile");
    if (p.kind === "flush") break;
    if (p.kind !== "data" || p.data.length === 0) throw transportError(ctx.display, `unexpected ${p.kind} packet in the packfile`);
    const band = p.data[0];
    if (band === 1) {
      size += p.data.length - 1;
      if (size > maxBytes)
        throw remoteError("remote.protocol", ctx.display, `${ctx.display}: the pack is larger than ${maxBytes} bytes; refusing it`);
      chunks.push(p.data.subarray(1));
    } else if (band === 3) {
      throw remoteError("remote.protocol", ctx.display, `${ctx.display}: the server said: ${pktText(p.data.subarray(1)).trim()}`);
    } else if (band !== 2) throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unknown side-band ${band} in the packfile`);
  }
  // Over HTTP a response-end may follow, in this request's own body; on a stream the next answer follows.
  return Buffer.concat(chunks);
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

/** Run `f`, turning framing errors into remote.transport CprErrors naming the URL. */
async function guard<T>(ctx: TransportContext, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PktLineError) throw transportError(ctx.display, `malformed reply from the server: ${e.message}`, e);
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
      throw new CprError(
        "remote.protocol",
        `invalid ref prefix ${JSON.stringify(p.slice(0, 80))}: contains a newline or NUL, or is too long`,
        { where: display },
      );
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
  return refs.filter((r) => underPrefixes(r.name, prefixes));
}

/** Whether `name` starts with one of `prefixes` (sorted and prefix-free, non-empty). */
function underPrefixes(name: string, prefixes: readonly string[]): boolean {
  // The only candidate is the greatest prefix <= the name: any prefix between it and the name would extend it.
  let lo = 0;
  let hi = prefixes.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((prefixes[mid] ?? "") <= name) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best >= 0 && name.startsWith(prefixes[best] ?? "\0");
}

/** The server's capabilities (v2) or its whole ref list (v0/v1). */
type Advertisement =
  | { readonly version: 2; readonly caps: ReadonlyMap<string, string | null> }
  | { readonly version: 0; readonly refs: ListedRef[] };

function warnV0(ctx: TransportContext, session: Session, count: number): void {
  const why = session.fallbackNote ?? "the server does not speak git protocol v2";
  const sshHint = ctx.url.scheme === "ssh" ? " (an OpenSSH server needs `AcceptEnv GIT_PROTOCOL` for v2)" : "";
  ctx.reporter.warn(
    "remote.v0-listing",
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
  if (first.kind !== "data")
    throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${first.kind} packet at the start of the reply`);
  const text = pktText(first.data);
  checkErr(text, ctx);
  if (text === "version 2") return { version: 2, caps: await readCapabilities(reader, session, ctx) };
  if (text === "version 1")
    return { version: 0, refs: await readV0(await readPkt(reader, session, "ended after `version 1`"), reader, session, ctx) };
  return { version: 0, refs: await readV0(first, reader, session, ctx) };
}

async function readCapabilities(reader: PktReader, session: Session, ctx: TransportContext): Promise<Map<string, string | null>> {
  const caps = new Map<string, string | null>();
  for (;;) {
    const p = await readPkt(reader, session, "ended inside the capability advertisement");
    if (p.kind === "flush") return caps;
    if (p.kind !== "data")
      throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${p.kind} packet in the capability advertisement`);
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
    if (p.kind !== "data")
      throw remoteError("remote.protocol", ctx.display, `${ctx.display}: unexpected ${p.kind} packet in the ref advertisement`);
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

/**
 * Parse an ls-refs reply: `<oid> <name>[ symref-target:<t>][ peeled:<oid>]` lines, then the flush that completes
 * it; a reply that ends before its flush, or holds another special packet, is a transport failure. With `strict`
 * (the request's prefixes, from a server known to honour them), a ref outside them means the reply answers
 * another request: a transport failure too.
 */
async function readRefList(
  reader: PktReader,
  session: Session,
  ctx: TransportContext,
  strict: readonly string[] | null,
): Promise<ListedRef[]> {
  const refs: ListedRef[] = [];
  for (;;) {
    const p = await readPkt(reader, session, `ended inside the ls-refs reply (after ${refs.length} ref(s), before its final flush)`);
    if (p.kind === "flush") return refs;
    if (p.kind !== "data")
      throw transportError(
        ctx.display,
        `unexpected ${p.kind} packet in the ls-refs reply (after ${refs.length} ref(s), before its final flush)`,
      );
    const line = pktText(p.data);
    checkErr(line, ctx);
    const ref = parseRefLine(line);
    if (ref === "bad") throw badLine(ctx, line);
    if (!ref) continue;
    if (strict && strict.length > 0 && !underPrefixes(ref.name, strict)) {
      const asked = strict.length > 3 ? `${strict.slice(0, 3).join(", ")} and ${strict.length - 3} more` : strict.join(", ");
      throw transportError(
        ctx.display,
        `replies out of step with requests: the ls-refs reply holds ${ref.name}, which is under none of the prefixes asked for (${asked})`,
      );
    }
    refs.push(ref);
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
