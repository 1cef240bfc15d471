import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { CprError } from "../../src/protocol/errors.js";
import { run, runSync, start, STDERR_TAIL } from "../../src/process/run.js";

const MISSING = "cpr-test-no-such-program";

function isCprError(code: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CprError, `expected a CprError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  };
}

test("a program not on PATH: '<program> was not found on PATH', with a hint, under the caller's code", async () => {
  await assert.rejects(run(MISSING, []), (e: unknown) => {
    isCprError("process.spawn", new RegExp(`^${MISSING} was not found on PATH$`))(e);
    assert.match((e as CprError).hint ?? "", new RegExp(`install ${MISSING}`));
    return true;
  });
  await assert.rejects(
    run(MISSING, [], { errors: { spawn: "nix.spawn", missing: "nix.missing", hint: "install the x tools", where: "here" } }),
    (e: unknown) => {
      isCprError("nix.missing", /was not found on PATH/)(e);
      assert.equal((e as CprError).hint, "install the x tools");
      assert.equal((e as CprError).where, "here");
      return true;
    },
  );
  // A PATH without the program is the same case (this is how nix and git report a missing install).
  await assert.rejects(
    run("sh", ["-c", "true"], { env: { PATH: "/nonexistent" } }),
    isCprError("process.spawn", /^sh was not found on PATH$/),
  );
  // start() reports it through its exit, after an empty stdout.
  const child = start(MISSING, []);
  const chunks: Buffer[] = [];
  for await (const c of child.stdout) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).length, 0);
  await assert.rejects(child.exit, isCprError("process.spawn", /was not found on PATH/));
});

test("a non-zero exit is a CprError naming the command and its status, with the end of stderr", async () => {
  // 20000 'a's, then the line that says what failed: the message keeps the end.
  const script = "head -c 20000 /dev/zero | tr '\\0' a >&2; echo >&2; echo 'fatal: the real reason' >&2; exit 3";
  await assert.rejects(run("sh", ["-c", script], { cwd: "/", errors: { name: "sh script", failed: "nix.failed" } }), (e: unknown) => {
    isCprError("nix.failed", /^sh script failed \(exit 3\): …a+\nfatal: the real reason$/)(e);
    assert.ok((e as CprError).message.length < STDERR_TAIL + 100, "only the tail of stderr");
    assert.equal((e as CprError).where, "/");
    return true;
  });
  await assert.rejects(run("sh", ["-c", "exit 4"]), isCprError("process.failed", /^sh failed \(exit 4\): \(no output\)$/));
  await assert.rejects(run("sh", ["-c", "kill -9 $$"]), isCprError("process.failed", /killed by SIGKILL/));
  // okCodes: the caller reads the status; "any" accepts every exit.
  const r = await run("sh", ["-c", "echo out; echo err >&2; exit 3"], { okCodes: [0, 3] });
  assert.deepEqual([r.code, r.stdout.toString(), r.stderr], [3, "out\n", "err\n"]);
  assert.equal((await run("sh", ["-c", "exit 9"], { okCodes: "any" })).code, 9);
  // A caller's own failure error replaces the default one, and sees the exit.
  await assert.rejects(
    run("sh", ["-c", "echo nope >&2; exit 2"], {
      errors: { failure: (x) => new CprError("internal", `code ${x.code}, said ${x.stderr.trim()}`) },
    }),
    isCprError("internal", /^code 2, said nope$/),
  );
});

test("stdin: bytes or a stream; none is /dev/null", async () => {
  const bytes = randomBytes(1000);
  assert.ok((await run("cat", [], { input: bytes })).stdout.equals(bytes));
  assert.equal((await run("cat", [], { input: "text\n" })).stdout.toString(), "text\n");
  const stream = Readable.from([Buffer.from("one "), Buffer.from("two "), Buffer.from("three")]);
  assert.equal((await run("cat", [], { input: stream })).stdout.toString(), "one two three");
  assert.equal((await run("cat", [])).stdout.length, 0);
  // A child that does not read its input still exits with its own status.
  assert.equal((await run("sh", ["-c", "exit 0"], { input: randomBytes(1 << 20) })).code, 0);
});

test("large output is collected whole; beyond maxStdout the child is stopped and it is an error", async () => {
  const big = randomBytes(8 << 20);
  const r = await run("cat", [], { input: big });
  assert.equal(r.stdout.length, big.length);
  assert.ok(r.stdout.equals(big));
  await assert.rejects(
    run("sh", ["-c", "exec cat /dev/zero"], { maxStdout: 100_000, errors: { name: "zeros", failed: "nix.failed" } }),
    isCprError("nix.failed", /^zeros printed more than 100000 bytes on stdout; it was stopped$/),
  );
  // stdout "ignore": not read at all.
  assert.equal((await run("sh", ["-c", "head -c 100000 /dev/zero"], { stdout: "ignore", maxStdout: 10 })).stdout.length, 0);
});

test("stderr: passed on as it arrives, and its end kept up to stderrLimit", async () => {
  const seen: string[] = [];
  const r = await run("sh", ["-c", "echo first >&2; head -c 5000 /dev/zero | tr '\\0' b >&2; echo last >&2"], {
    onStderr: (s) => seen.push(s),
    stderrLimit: 100,
  });
  const all = seen.join("");
  assert.ok(all === `first\n${"b".repeat(5000)}last\n`, "every byte of stderr is passed on, in order");
  assert.equal(r.stderr.length, 100);
  assert.ok(all.endsWith(r.stderr));
});

test("start: stdout as a stream, the exit as a promise; kill stops it", async () => {
  const child = start("sh", ["-c", "printf 'a\\nb\\n'; exit 0"]);
  const chunks: Buffer[] = [];
  for await (const c of child.stdout) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), "a\nb\n");
  assert.deepEqual(await child.exit, { code: 0, signal: null, stderr: "" });
  const endless = start("sh", ["-c", "exec cat /dev/zero"], { okCodes: "any" });
  endless.stdout.resume();
  endless.kill("SIGKILL");
  assert.equal((await endless.exit).signal, "SIGKILL");
});

test("runSync: stdout, or null when the program is missing or fails", () => {
  assert.equal(runSync("sh", ["-c", "echo hi"]), "hi\n");
  assert.equal(runSync("sh", ["-c", "exit 1"]), null);
  assert.equal(runSync(MISSING, []), null);
});
