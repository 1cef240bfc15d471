/**
 * The terminal records every warning with its code, prints only the message for humans (stderr), and adds the
 * warnings to the JSON documents it prints (stdout).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { createTerminal, type Terminal } from "../../src/cli/terminal.js";

function terminal(): { term: Terminal; stdout: () => string; stderr: () => string } {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = (s: PassThrough) => () => String(s.read() ?? "");
  return { term: createTerminal({ stdout: out, stderr: err, env: {} }), stdout: text(out), stderr: text(err) };
}

test("a warning shows its message on stderr, as before, and is recorded with its code", () => {
  const { term, stdout, stderr } = terminal();
  term.warn("ls.skipped-refs", "skipped 2 ref(s)");
  assert.equal(stderr(), "warning: skipped 2 ref(s)\n");
  assert.equal(stdout(), "");
  assert.deepEqual(term.warnings, [{ code: "ls.skipped-refs", message: "skipped 2 ref(s)" }]);
});

test("json(): an object gains the warnings emitted so far; without warnings it prints exactly as given", () => {
  const { term, stdout } = terminal();
  term.json({ root: "r", atoms: [] });
  assert.equal(stdout(), JSON.stringify({ root: "r", atoms: [] }, null, 2) + "\n", "no warnings: no warnings key");

  term.warn("root.multiple", "two roots");
  term.warn("remote.redirect", "redirecting to x");
  term.json({ root: "r", atoms: [] });
  const doc = JSON.parse(stdout()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc), ["root", "atoms", "warnings"]);
  assert.deepEqual(doc.warnings, [
    { code: "root.multiple", message: "two roots" },
    { code: "remote.redirect", message: "redirecting to x" },
  ]);
});

test("json(): a document with its own warnings key keeps it; arrays and scalars are left alone; line mode", () => {
  const { term, stdout } = terminal();
  term.warn("config.unknown-key", "f:1:1: unknown key");
  term.json({ entries: [], warnings: "mine" });
  assert.deepEqual(JSON.parse(stdout()), { entries: [], warnings: "mine" });
  term.json([1, 2]);
  assert.deepEqual(JSON.parse(stdout()), [1, 2]);
  term.json({ listening: "http://h:1" }, { line: true });
  assert.equal(stdout(), `{"listening":"http://h:1","warnings":[{"code":"config.unknown-key","message":"f:1:1: unknown key"}]}\n`);
});
