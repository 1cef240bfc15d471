import { test } from "node:test";
import assert from "node:assert/strict";
import { CprError } from "../../src/protocol/errors.js";
import {
  FARM_PROTOCOL,
  parseClaimRequest,
  parseClaimResponse,
  parseCompleteRequest,
  parseCompleteResponse,
  parseLogRequest,
  parseJobView,
} from "../../src/protocol/farm.js";

const DRV = `/nix/store/${"a".repeat(32)}-x.drv`;
const OUT = `/nix/store/${"b".repeat(32)}-x`;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CprError, String(e));
    return `${e.code}: ${e.message}`;
  }
  return "no error";
}

test("every message carries the protocol version; another version is refused with farm.protocol", () => {
  assert.equal(FARM_PROTOCOL, 1);
  assert.deepEqual(parseClaimRequest({ protocol: 1, worker: "w1", systems: ["x86_64-linux"] }), {
    protocol: 1,
    worker: "w1",
    systems: ["x86_64-linux"],
  });
  assert.match(
    code(() => parseClaimRequest({ protocol: 2, worker: "w1", systems: ["x86_64-linux"] })),
    /^farm\.protocol: claim request: the other side speaks protocol 2, this cpr speaks worker protocol 1$/,
  );
  assert.match(
    code(() => parseClaimRequest({ worker: "w1", systems: ["x86_64-linux"] })),
    /^farm\.protocol: .*no protocol version/,
  );
  assert.match(
    code(() => parseClaimResponse({ protocol: "1", job: null, leaseSeconds: 60 })),
    /^farm\.protocol: .*protocol "1"/,
  );
});

test("malformed messages are farm.invalid, naming the field", () => {
  assert.match(
    code(() => parseClaimRequest({ protocol: 1, worker: "", systems: ["x86_64-linux"] })),
    /^farm\.invalid: claim request: worker/,
  );
  assert.match(
    code(() => parseClaimRequest({ protocol: 1, worker: "w", systems: ["linux"] })),
    /^farm\.invalid: .*systems holds "linux"/,
  );
  assert.match(
    code(() => parseClaimRequest([1])),
    /^farm\.invalid: .*must be a JSON object/,
  );
  assert.match(
    code(() => parseCompleteRequest({ protocol: 1, lease: "l", drv: OUT, outputs: { out: OUT } })),
    /drv must be a store path of a \.drv/,
  );
  assert.match(
    code(() => parseCompleteRequest({ protocol: 1, lease: "l", drv: DRV, outputs: {} })),
    /outputs must be an object/,
  );
  assert.match(
    code(() => parseCompleteRequest({ protocol: 1, lease: "l", drv: DRV, outputs: { out: "/tmp/x" } })),
    /outputs\.out must be a store path/,
  );
  assert.match(
    code(() => parseLogRequest({ protocol: 1, lease: "l", text: 5 })),
    /text must be a string/,
  );
  assert.deepEqual(parseCompleteRequest({ protocol: 1, lease: "l", drv: DRV, outputs: { out: OUT } }), {
    protocol: 1,
    lease: "l",
    drv: DRV,
    outputs: { out: OUT },
    mainProgram: null,
  });
  // meta.mainProgram is optional (a worker of the same protocol may not send it), and a file name in bin/ when sent.
  assert.equal(
    parseCompleteRequest({ protocol: 1, lease: "l", drv: DRV, outputs: { out: OUT }, mainProgram: "hello" }).mainProgram,
    "hello",
  );
  for (const bad of ["../sh", "bin/x", "", ".", 5])
    assert.match(
      code(() => parseCompleteRequest({ protocol: 1, lease: "l", drv: DRV, outputs: { out: OUT }, mainProgram: bad })),
      /^farm\.invalid: complete request: mainProgram must be a file name/,
      JSON.stringify(bad),
    );
});

test("claim and complete responses are checked on the worker's side too", () => {
  const job = {
    id: 7,
    kind: "build",
    lease: "secret",
    leaseExpiresAt: 1000,
    attempt: 1,
    atom: { id: "x".repeat(52), label: "hello", set: "a".repeat(40) },
    version: "1.0.0",
    rev: "1".repeat(40),
    system: "x86_64-linux",
    mirrors: ["https://example.org/set.git"],
    drv: DRV,
    outputs: { out: OUT },
  };
  assert.deepEqual(parseClaimResponse({ protocol: 1, leaseSeconds: 60, job }).job, job);
  assert.equal(parseClaimResponse({ protocol: 1, leaseSeconds: 60, job: null }).job, null);
  assert.match(
    code(() => parseClaimResponse({ protocol: 1, leaseSeconds: 60, job: { ...job, drv: null } })),
    /required for a build job/,
  );
  assert.match(
    code(() => parseClaimResponse({ protocol: 1, leaseSeconds: 60, job: { ...job, kind: "test" } })),
    /kind must be "eval" or "build"/,
  );
  assert.deepEqual(parseCompleteResponse({ protocol: 1, buildId: 3, buildJob: null }), { protocol: 1, buildId: 3, buildJob: null });
  assert.match(
    code(() => parseJobView({ ...job, state: "paused" })),
    /state is not a job state/,
  );
});
