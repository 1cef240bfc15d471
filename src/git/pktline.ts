/**
 * git pkt-line framing (gitprotocol-common): each packet starts with four lowercase hex digits giving its total
 * length, header included. `0000` is a flush packet, `0001` a delimiter (protocol v2), `0002` a response-end
 * (protocol v2 over stateless transports); lengths 3 and 4 are never valid. A data packet holds at most
 * 65516 bytes of payload (65520 in all).
 */

/** Largest total packet length git allows (LARGE_PACKET_MAX). */
export const MAX_PKT_LENGTH = 65520;
/** Largest payload of one data packet. */
export const MAX_PKT_PAYLOAD = MAX_PKT_LENGTH - 4;

/** `0000`: end of a message. */
export const FLUSH_PKT: Buffer = Buffer.from("0000", "ascii");
/** `0001`: separates sections of a protocol v2 message (capabilities from arguments). */
export const DELIM_PKT: Buffer = Buffer.from("0001", "ascii");
/** `0002`: end of a response, used by protocol v2 over stateless transports. */
export const RESPONSE_END_PKT: Buffer = Buffer.from("0002", "ascii");

/** One decoded packet. */
export type Pkt =
  | { readonly kind: "data"; readonly data: Buffer }
  | { readonly kind: "flush" }
  | { readonly kind: "delim" }
  | { readonly kind: "response-end" };

/** Thrown for bytes that are not valid pkt-line framing. Callers turn it into a CprError naming the remote. */
export class PktLineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PktLineError";
  }
}

/** Encode one data packet. Strings are UTF-8. Throws PktLineError when the payload is too long. */
export function encodePkt(payload: string | Buffer): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  if (data.length > MAX_PKT_PAYLOAD) {
    throw new PktLineError(`pkt-line payload of ${data.length} bytes exceeds the maximum of ${MAX_PKT_PAYLOAD}`);
  }
  const header = Buffer.from((data.length + 4).toString(16).padStart(4, "0"), "ascii");
  return Buffer.concat([header, data]);
}

/** Encode one text line as a data packet, adding the conventional trailing LF. */
export function encodeLine(line: string): Buffer {
  return encodePkt(`${line}\n`);
}

/** The payload of a data packet as UTF-8 text, without one trailing LF. */
export function pktText(data: Buffer): string {
  const end = data.length > 0 && data[data.length - 1] === 0x0a ? data.length - 1 : data.length;
  return data.toString("utf8", 0, end);
}

const SPECIAL: Readonly<Record<number, Pkt>> = {
  0: { kind: "flush" },
  1: { kind: "delim" },
  2: { kind: "response-end" },
};

/** Parse the 4-byte length header at `offset`; throws on anything but lowercase or uppercase hex. */
function parseHeader(buf: Buffer, offset: number): number {
  const text = buf.toString("latin1", offset, offset + 4);
  if (!/^[0-9a-fA-F]{4}$/.test(text)) throw new PktLineError(`bad pkt-line length header ${JSON.stringify(text)}`);
  const len = parseInt(text, 16);
  if (len === 3 || len > MAX_PKT_LENGTH) throw new PktLineError(`bad pkt-line length ${len}`);
  return len;
}

/**
 * Decode one packet from `buf` at `offset`. Returns the packet and the offset after it, or null when `buf` does not
 * yet hold a whole packet.
 */
export function decodePkt(buf: Buffer, offset = 0): { pkt: Pkt; next: number } | null {
  if (buf.length - offset < 4) return null;
  const len = parseHeader(buf, offset);
  const special = SPECIAL[len];
  if (special) return { pkt: special, next: offset + 4 };
  if (buf.length - offset < len) return null;
  return { pkt: { kind: "data", data: buf.subarray(offset + 4, offset + len) }, next: offset + len };
}

/** Decode a whole buffer of packets. Throws PktLineError on bad framing or a truncated final packet. */
export function decodeAll(buf: Buffer): Pkt[] {
  const out: Pkt[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const r = decodePkt(buf, offset);
    if (!r) throw new PktLineError(`truncated pkt-line at byte ${offset} of ${buf.length}`);
    out.push(r.pkt);
    offset = r.next;
  }
  return out;
}

/** Where a PktReader gets its bytes: `next()` resolves to the next chunk, or null at end of stream. */
export interface ByteSource {
  next(): Promise<Buffer | null>;
}

/** Reads packets one at a time from a ByteSource, buffering partial packets across chunks. */
export class PktReader {
  private buf: Buffer = Buffer.alloc(0);
  private offset = 0;
  private ended = false;
  private peeked: { pkt: Pkt | null } | null = null;

  constructor(private readonly source: ByteSource) {}

  /** The next packet, or null at a clean end of stream. Throws PktLineError if the stream ends inside a packet. */
  async read(): Promise<Pkt | null> {
    const p = this.peeked;
    if (p) {
      this.peeked = null;
      return p.pkt;
    }
    return this.readNext();
  }

  /** The packet `read()` will return next, without consuming it. */
  async peek(): Promise<Pkt | null> {
    if (!this.peeked) this.peeked = { pkt: await this.readNext() };
    return this.peeked.pkt;
  }

  private async readNext(): Promise<Pkt | null> {
    for (;;) {
      const r = decodePkt(this.buf, this.offset);
      if (r) {
        this.offset = r.next;
        return r.pkt;
      }
      if (this.ended) {
        if (this.offset === this.buf.length) return null;
        throw new PktLineError(`stream ended inside a pkt-line (${this.buf.length - this.offset} bytes left over)`);
      }
      await this.fill();
    }
  }

  private async fill(): Promise<void> {
    const chunk = await this.source.next();
    if (chunk === null) {
      this.ended = true;
      return;
    }
    const rest = this.buf.subarray(this.offset);
    this.buf = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    this.offset = 0;
  }
}

/** A ByteSource over an in-memory buffer (one chunk), for tests and fully buffered bodies. */
export function bufferSource(buf: Buffer): ByteSource {
  let done = false;
  return {
    next: () => {
      if (done) return Promise.resolve(null);
      done = true;
      return Promise.resolve(buf);
    },
  };
}
