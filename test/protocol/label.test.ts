import { test } from "node:test";
import assert from "node:assert/strict";
import { CprError } from "../../src/protocol/errors.js";
import {
  describeChar,
  inRanges,
  isValidLabel,
  isXidContinue,
  isXidStart,
  MAX_LABEL_BYTES,
  normalizeLabel,
  type LabelKind,
} from "../../src/protocol/label.js";
import { UNICODE_VERSION } from "../../src/protocol/unicode-version.js";
import { XID_CONTINUE, XID_START, XID_UNICODE_VERSION } from "../../src/protocol/unicode-xid.js";
import { cprFailure } from "../support/assert.js";

/** The CprError thrown by normalizeLabel; fails the test when nothing is thrown. */
function labelError(input: string, kind: LabelKind = "label", what?: string): CprError {
  return cprFailure(() => normalizeLabel(input, kind, what), `expected ${JSON.stringify(input)} to be rejected as a ${kind}`);
}

test("docs/formats.md §2: valid labels are accepted unchanged", () => {
  for (const label of ["α", "αβγ", "кириллица", "ひらがな", "Ññ", "Ææ", "ئ", "ก", "ᚠ", "あア", "Café_au_lait-123"]) {
    assert.equal(normalizeLabel(label), label, label);
    assert.equal(isValidLabel(label), true, label);
  }
});

test("docs/formats.md §2: invalid starts: 'atom, -atom and a lone U+200B", () => {
  const quote = labelError("'atom");
  assert.equal(quote.code, "label.invalid-start");
  assert.match(quote.message, /cannot start with "'"/);

  const dash = labelError("-atom");
  assert.equal(dash.code, "label.invalid-start");
  assert.match(dash.message, /cannot start with '-'/);

  const zwsp = labelError("\u200b");
  assert.equal(zwsp.code, "label.invalid-start");
  assert.match(zwsp.message, /U\+200B ZERO WIDTH SPACE/);
});

test("docs/formats.md §2: digits, '_', '%' and format characters cannot start a label", () => {
  for (const input of ["1abc", "_abc", "%abc", "\u2060abc", "·a"]) {
    assert.equal(labelError(input).code, "label.invalid-start", input);
  }
});

test("docs/formats.md §2: a-!@#$%^&*()_-asdf names every invalid character in input order", () => {
  const err = labelError("a-!@#$%^&*()_-asdf");
  assert.equal(err.code, "label.invalid-chars");
  assert.ok(err.message.includes("'!', '@', '#', '$', '%', '^', '&', '*', '(', ')'"), err.message);
  assert.ok(!err.message.includes("'_'") && !err.message.includes("'-'"), "'_' and '-' are allowed");
  assert.ok(err.hint && err.hint.includes("'-'"), "the hint says what is allowed");
});

test("docs/formats.md §2: 한글 漢字: the space is the invalid character", () => {
  const err = labelError("한글 漢字");
  assert.equal(err.code, "label.invalid-chars");
  assert.match(err.message, /an invalid character: U\+0020 SPACE$/);
});

test("docs/formats.md §2: α followed by U+200B: invalid character U+200B", () => {
  const err = labelError("α\u200b");
  assert.equal(err.code, "label.invalid-chars");
  assert.match(err.message, /U\+200B ZERO WIDTH SPACE/);
  assert.ok(!err.message.includes("\u200b"), "the invisible character is never printed raw");
});

test("docs/formats.md §2: rejected: ひらがな。, א״, Ա։, ♥, and strings with TAB or CR", () => {
  const rejected = ["ひらがな。", "א״", "Ա։", "♥", "a\tb", "\tab", "ab\t", "a\rb", "\rab", "ab\r"];
  for (const input of rejected) {
    assert.equal(isValidLabel(input), false, JSON.stringify(input));
    assert.ok(labelError(input).code.startsWith("label."), JSON.stringify(input));
  }
  assert.match(labelError("a\tb").message, /U\+0009 CHARACTER TABULATION/);
  assert.match(labelError("a\rb").message, /U\+000D CARRIAGE RETURN/);
});

test("invalid characters are all listed, with repeats", () => {
  const err = labelError("a!b!c d\u200be");
  assert.ok(err.message.endsWith("'!', '!', U+0020 SPACE, U+200B ZERO WIDTH SPACE"), err.message);
});

test("an invalid start also mentions the later invalid characters", () => {
  const err = labelError("-a!");
  assert.equal(err.code, "label.invalid-start");
  assert.match(err.message, /also has invalid characters: '!'/);
});

test("NFKC is applied first and the normalized form is returned and checked", () => {
  assert.equal(normalizeLabel("ｆｏｏ"), "foo");
  assert.equal(normalizeLabel("ﬁle"), "file");
  assert.equal(normalizeLabel("Cafe\u0301"), "Café");
  // U+2460 CIRCLED DIGIT ONE normalizes to "1", which cannot start a label.
  assert.equal(labelError("①abc").code, "label.invalid-start");
  // U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP normalizes to U+3002, still invalid.
  assert.equal(labelError("ひらがな\uff61").code, "label.invalid-chars");
});

test("empty and too-long labels; the length is counted in UTF-8 bytes after NFKC", () => {
  assert.equal(labelError("").code, "label.empty");
  assert.equal(normalizeLabel("a".repeat(MAX_LABEL_BYTES)).length, 128);
  assert.equal(labelError("a".repeat(MAX_LABEL_BYTES + 1)).code, "label.too-long");
  assert.equal(normalizeLabel("あ".repeat(42)), "あ".repeat(42)); // 126 bytes
  assert.match(labelError("あ".repeat(43)).message, /129 UTF-8 bytes/);
  // 34 bytes as written; U+337F SQUARE CORPORATION expands to 株式会社 (12 bytes) under NFKC: 133 bytes.
  const expanding = "a" + "\u337f".repeat(11);
  assert.equal(Buffer.byteLength(expanding), 34);
  assert.equal(labelError(expanding).code, "label.too-long");
});

test("tags allow '.' and ':' but never '..'", () => {
  for (const tag of ["lang:nix", "a.b", "a:b:c", "x-y_z", "ns::name", "v1.2"]) {
    assert.equal(normalizeLabel(tag, "tag"), tag, tag);
  }
  assert.equal(labelError("lang:nix", "label").code, "label.invalid-chars");
  assert.equal(labelError("a.b", "label").code, "label.invalid-chars");
  assert.equal(labelError("a..b", "tag").code, "tag.double-dot");
  assert.equal(labelError(".a", "tag").code, "label.invalid-start");
  assert.equal(labelError(":a", "tag").code, "label.invalid-start");
  assert.equal(labelError("a/b", "tag").code, "label.invalid-chars");
  assert.match(labelError("a b", "tag").hint ?? "", /'\.' or ':'/);
});

test("`what` names the thing in messages", () => {
  assert.match(labelError("-x", "label", "[package].label").message, /^\[package\]\.label "-x"/);
  assert.match(labelError("", "tag").message, /^tag is empty/);
});

test("describeChar shows visible characters quoted and invisible ones by code point", () => {
  assert.equal(describeChar("!"), "'!'");
  assert.equal(describeChar("\u200b"), "U+200B ZERO WIDTH SPACE");
  assert.equal(describeChar("\u0007"), "U+0007 (control character)");
  assert.equal(describeChar("\u2003"), "U+2003 EM SPACE");
  assert.equal(describeChar("\u0301"), "U+0301 (combining mark)");
});

test("the pinned XID tables are sorted, disjoint inclusive ranges", () => {
  for (const [name, table] of [
    ["XID_START", XID_START],
    ["XID_CONTINUE", XID_CONTINUE],
  ] as const) {
    assert.equal(table.length % 2, 0, name);
    for (let i = 0; i < table.length; i += 2) {
      assert.ok(table[i]! <= table[i + 1]!, `${name} range ${i / 2} is inverted`);
      if (i > 0) assert.ok(table[i]! > table[i - 1]! + 1, `${name} ranges ${i / 2 - 1} and ${i / 2} touch or overlap`);
    }
  }
  assert.equal(XID_UNICODE_VERSION, UNICODE_VERSION);
  assert.match(UNICODE_VERSION, /^\d+\.\d+$/);
});

test("XID membership from the pinned tables", () => {
  assert.ok(isXidStart(0x61) && isXidStart(0x3b1) && isXidStart(0x3072));
  assert.ok(!isXidStart(0x5f) && !isXidStart(0x31) && !isXidStart(0x2d) && !isXidStart(0x200b));
  assert.ok(isXidContinue(0x5f) && isXidContinue(0x31) && isXidContinue(0x301));
  assert.ok(!isXidContinue(0x2d) && !isXidContinue(0x20) && !isXidContinue(0x200b) && !isXidContinue(0x10ffff));
  assert.ok(inRanges([1, 3, 10, 10], 10) && inRanges([1, 3, 10, 10], 1) && !inRanges([1, 3, 10, 10], 4) && !inRanges([], 0));
});

test("the committed tables match this Node's \\p{XID_*} when its Unicode version is the pinned one", (t) => {
  if (process.versions.unicode !== UNICODE_VERSION) {
    t.skip(`this Node has Unicode ${process.versions.unicode}, the tables are pinned to ${UNICODE_VERSION}`);
    return;
  }
  const start = /^\p{XID_Start}$/u;
  const cont = /^\p{XID_Continue}$/u;
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    const ch = String.fromCodePoint(cp);
    if (isXidStart(cp) !== start.test(ch)) assert.fail(`XID_Start differs at U+${cp.toString(16)}`);
    if (isXidContinue(cp) !== cont.test(ch)) assert.fail(`XID_Continue differs at U+${cp.toString(16)}`);
  }
});
