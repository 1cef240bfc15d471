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
