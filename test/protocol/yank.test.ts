import { test } from "node:test";
import assert from "node:assert/strict";
import { CprError } from "../../src/protocol/errors.js";
import { checkReason, parseYankRecord, reasonLine, yankPayload, yankRef } from "../../src/protocol/yank.js";

const C = "c".repeat(40);
const fields = {
  label: "hello",
  version: "1.2.3",
  commit: C,
  yanker: "Alice <a@example.org> 1700000000 +0000",
  reason: "  data loss\r\nuse 1.2.4 \n",
};

test("yank records: the exact bytes, read back, with and without a signature", () => {
  assert.equal(yankRef("hello", "1.2.3"), "refs/eka/yank/hello/1.2.3");
  const payload = yankPayload(fields);
  assert.equal(payload, `yank hello 1.2.3\nobject ${C}\nyanker Alice <a@example.org> 1700000000 +0000\n\ndata loss\nuse 1.2.4\n`);
  const r = parseYankRecord(payload, "here");
  assert.deepEqual(
    [r.label, r.version, r.commit, r.yanker, r.reason, r.signature],
    ["hello", "1.2.3", C, fields.yanker, "data loss\nuse 1.2.4", null],
  );
  const sig = "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n";
  const signed = parseYankRecord(payload + sig, "here");
  assert.equal(signed.payload, payload);
  assert.equal(signed.signature, sig);
  assert.equal(signed.reason, "data loss\nuse 1.2.4");
  assert.equal(reasonLine(r.reason), "data loss …");
  assert.equal(reasonLine("one line"), "one line");
});

test("yank records: bad reasons and malformed records are refused, naming what is wrong", () => {
  const is = (code: string, re: RegExp) => (e: unknown) => e instanceof CprError && e.code === code && re.test(e.message);
  assert.throws(() => checkReason(" \n "), is("yank.reason", /empty/));
  assert.throws(() => checkReason("a\0b"), is("yank.reason", /NUL/));
  assert.throws(() => checkReason("x".repeat(4097)), is("yank.reason", /longer than 4096 bytes/));
  assert.throws(() => parseYankRecord("yank a 1.0.0\n", "r"), is("yank.invalid", /no blank line/));
  assert.throws(() => parseYankRecord(`yank a\nobject ${C}\nyanker x\n\nwhy\n`, "r"), is("yank.invalid", /first line/));
  assert.throws(() => parseYankRecord(`yank a 1.0.0\nobject xyz\nyanker x\n\nwhy\n`, "r"), is("yank.invalid", /second line/));
  assert.throws(() => parseYankRecord(`yank a 1.0.0\nobject ${C}\nyanker x\nextra\n\nwhy\n`, "r"), is("yank.invalid", /third and last/));
  assert.throws(() => parseYankRecord(`yank a 1.0.0\nobject ${C}\nyanker x\n\n\n`, "r"), is("yank.invalid", /reason is empty/));
});
