import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DELIM_PKT,
  FLUSH_PKT,
  MAX_PKT_PAYLOAD,
  PktLineError,
  PktReader,
  RESPONSE_END_PKT,
  bufferSource,
  decodeAll,
  decodePkt,
  encodeLine,
  encodePkt,
  pktText,
  type ByteSource,
  type Pkt,
} from "../../src/git/pktline.js";

/** A source that hands out the buffer in pieces of `size` bytes, to exercise packets split across chunks. */
function chunked(buf: Buffer, size: number): ByteSource {
  let offset = 0;
  return {
    next: () => {
      if (offset >= buf.length) return Promise.resolve(null);
      const c = buf.subarray(offset, offset + size);
      offset += size;
      return Promise.resolve(c);
    },
  };
}

async function readAll(r: PktReader): Promise<Pkt[]> {
  const out: Pkt[] = [];
  for (let p = await r.read(); p !== null; p = await r.read()) out.push(p);
  return out;
}

test("encodes data packets with a 4-hex-digit length that includes the header", () => {
  assert.equal(encodePkt("a\n").toString(), "0006a\n");
  assert.equal(encodeLine("command=ls-refs").toString(), "0014command=ls-refs\n");
  assert.equal(encodePkt("").toString(), "0004");
  // UTF-8 bytes, not UTF-16 units, are counted.
  assert.equal(encodeLine("ref-prefix refs/eka/atoms/ひらがな/").length, 4 + Buffer.byteLength("ref-prefix refs/eka/atoms/ひらがな/\n"));
  assert.equal(encodeLine("ref-prefix refs/eka/atoms/ひらがな/").subarray(0, 4).toString(), "002c");
});

test("special packets are flush 0000, delim 0001 and response-end 0002", () => {
  assert.equal(FLUSH_PKT.toString(), "0000");
  assert.equal(DELIM_PKT.toString(), "0001");
  assert.equal(RESPONSE_END_PKT.toString(), "0002");
  assert.deepEqual(decodeAll(Buffer.from("000000010002")), [{ kind: "flush" }, { kind: "delim" }, { kind: "response-end" }]);
});

test("payloads up to 65516 bytes encode, longer ones are refused", () => {
  const max = encodePkt(Buffer.alloc(MAX_PKT_PAYLOAD, 0x61));
  assert.equal(max.subarray(0, 4).toString(), "fff0");
  assert.throws(() => encodePkt(Buffer.alloc(MAX_PKT_PAYLOAD + 1)), PktLineError);
  const back = decodePkt(max);
  assert.ok(back && back.pkt.kind === "data" && back.pkt.data.length === MAX_PKT_PAYLOAD);
});

test("decodePkt waits for whole packets and rejects bad headers", () => {
  assert.equal(decodePkt(Buffer.from("00")), null);
  assert.equal(decodePkt(Buffer.from("0009abc")), null);
  assert.throws(() => decodePkt(Buffer.from("zz00")), PktLineError);
  assert.throws(() => decodePkt(Buffer.from("0003")), PktLineError);
  assert.throws(() => decodePkt(Buffer.from("fff1")), PktLineError);
  assert.throws(() => decodeAll(Buffer.from("0008ab")), /truncated/);
  // Uppercase hex is tolerated on input (git's own parser accepts it).
  const r = decodePkt(Buffer.from("000Axyzabc"));
  assert.ok(r && r.pkt.kind === "data" && r.pkt.data.toString() === "xyzabc");
});

test("pktText drops exactly one trailing LF and decodes UTF-8", () => {
  assert.equal(pktText(Buffer.from("version 2\n")), "version 2");
  assert.equal(pktText(Buffer.from("a\n\n")), "a\n");
  assert.equal(pktText(Buffer.from("no-lf")), "no-lf");
  assert.equal(pktText(Buffer.from("refs/eka/atoms/ひらがな/0.1.0\n")), "refs/eka/atoms/ひらがな/0.1.0");
});

test("PktReader reassembles packets split at every byte boundary", async () => {
  const stream = Buffer.concat([
    encodeLine("version 2"),
    encodeLine("agent=git/2.39.5"),
    FLUSH_PKT,
    encodeLine("ひらがな"),
    DELIM_PKT,
    FLUSH_PKT,
  ]);
  const expected = await readAll(new PktReader(bufferSource(stream)));
  assert.equal(expected.length, 6);
  for (const size of [1, 2, 3, 5, 7, 64]) {
    const got = await readAll(new PktReader(chunked(stream, size)));
    assert.deepEqual(
      got.map((p) => (p.kind === "data" ? pktText(p.data) : p.kind)),
      ["version 2", "agent=git/2.39.5", "flush", "ひらがな", "delim", "flush"],
      `chunk size ${size}`,
    );
  }
});

test("PktReader.peek does not consume, and a stream ending inside a packet is an error", async () => {
  const r = new PktReader(bufferSource(Buffer.concat([encodeLine("a"), FLUSH_PKT])));
  const p1 = await r.peek();
  const p2 = await r.peek();
  assert.deepEqual(p1, p2);
  assert.deepEqual(await r.read(), p1);
  assert.deepEqual(await r.read(), { kind: "flush" });
  assert.equal(await r.read(), null);
  assert.equal(await r.read(), null);

  const bad = new PktReader(bufferSource(Buffer.from("0010short")));
  await assert.rejects(bad.read(), /ended inside a pkt-line/);
});
