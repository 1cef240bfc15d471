import assert from "node:assert/strict";
import { CprError } from "../../src/protocol/errors.js";

/** Run `fn`, which must throw a CprError; return it so the test can check its code, message, where and hint. */
export function cprFailure(fn: () => unknown, expectation = "expected an error"): CprError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CprError, `expected a CprError, got ${String(err)}`);
    return err;
  }
  assert.fail(expectation);
}

/** Await `p`, which must reject with a CprError of `code` (and a message matching `message`); return the error. */
export async function cprRejection(p: Promise<unknown>, code: string, message?: RegExp): Promise<CprError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CprError, `expected a CprError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}`);
}
