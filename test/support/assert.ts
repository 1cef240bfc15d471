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

/** Run `fn`, which must throw a CprError with `code`, a message matching `message` and a hint; return it. */
export function cprFailureWith(fn: () => unknown, code: string, message?: RegExp): CprError {
  const caught = cprFailure(fn, `expected a CprError ${code}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  assert.ok(caught.hint && caught.hint.length > 0, `error ${code} has a hint`);
  return caught;
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
