/**
 * The code tables stay the one true list: docs/errors.md is exactly what scripts/gen-error-docs.ts writes from them,
 * every code listed is raised somewhere in src/, and CprError takes no code outside the table (checked by tsc).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { errorCodesPage } from "../../scripts/gen-error-docs.js";
import { ERROR_CODES, WARNING_CODES } from "../../src/protocol/error-codes.js";
import { CprError } from "../../src/protocol/errors.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const TABLE_FILE = join(root, "src", "protocol", "error-codes.ts");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

test("docs/errors.md is what `npm run docs:errors` generates from the tables now", () => {
  const committed = readFileSync(join(root, "docs", "errors.md"), "utf8");
  assert.ok(committed === errorCodesPage(), "docs/errors.md is stale: run `npm run docs:errors` and commit it");
});

test("every error and warning code in the tables is used somewhere in src/", () => {
  const text = sources(join(root, "src"))
    .filter((f) => f !== TABLE_FILE)
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
  const unused = [...Object.keys(ERROR_CODES), ...Object.keys(WARNING_CODES)].filter((code) => !text.includes(`"${code}"`));
  assert.deepEqual(unused, [], `codes listed in ${relative(root, TABLE_FILE)} but never used in src/: remove them`);
});

test("codes are lowercase prefix.name (or a bare word), each with a one-line meaning, none both error and warning", () => {
  for (const [code, meaning] of [...Object.entries(ERROR_CODES), ...Object.entries(WARNING_CODES)]) {
    assert.match(code, /^[a-z][a-z0-9]*(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)?$/, code);
    assert.match(meaning, /^[^\n]+\.$/, `${code}: one line, ending with a full stop`);
  }
  const both = Object.keys(WARNING_CODES).filter((code) => Object.hasOwn(ERROR_CODES, code));
  assert.deepEqual(both, []);
});

test("CprError carries its code from the table, and the compiler rejects codes outside it", () => {
  const err = new CprError("label.empty", "label is empty");
  assert.equal(err.code, "label.empty");
  assert.ok(Object.hasOwn(ERROR_CODES, err.code));
  // @ts-expect-error: not a code of ERROR_CODES (tsc fails the build if this line compiles without error)
  assert.equal(new CprError("label.no-such-code", "x").code, "label.no-such-code");
});
