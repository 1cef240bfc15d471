import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  checkStorePathName,
  foldHash,
  makeFixedOutputPath,
  makeSourcePath,
  makeStorePath,
  makeTextPath,
  makeType,
  parseStorePath,
  storePathFingerprint,
} from "../../src/protocol/store-path.js";
import { fromNix32, toNix32 } from "../../src/protocol/nix-hash.js";
import { narBytes } from "../../src/nix/nar.js";
import { cprFailure } from "../support/assert.js";
import { needTools } from "../support/tools.js";
import { cornerTree } from "../nix/support.js";
import { throwawayStore } from "../nix/throwaway-store.js";

const sha256 = (b: string | Uint8Array): Buffer => createHash("sha256").update(b).digest();

test("foldHash XORs the 32 digest bytes into 20 (byte i goes to i mod 20)", () => {
  const digest = new Uint8Array(32).map((_, i) => i * 7 + 1);
  const folded = foldHash(digest);
  assert.equal(folded.length, 20);
  for (let i = 0; i < 20; i++) {
    const expected = i + 20 < 32 ? digest[i]! ^ digest[i + 20]! : digest[i]!;
    assert.equal(folded[i], expected, `byte ${i}`);
  }
});

test("makeStorePath hashes <type>:sha256:<hex>:<storeDir>:<name>, and the result parses with the same name", () => {
  const inner = sha256("x").toString("hex");
  assert.equal(storePathFingerprint("source", inner, "n"), `source:sha256:${inner}:/nix/store:n`);
  const p = makeStorePath("source", inner, "n");
  const parsed = parseStorePath(p);
  assert.equal(parsed.name, "n");
  assert.deepEqual(fromNix32(parsed.hash), foldHash(sha256(`source:sha256:${inner}:/nix/store:n`)));
  // Every input is in the hash: the store directory, the type, the name.
  const other = makeStorePath("source", inner, "n", "/gnu/store");
  assert.ok(other.startsWith("/gnu/store/"));
  assert.notEqual(other.slice("/gnu/store/".length), p.slice("/nix/store/".length));
  assert.notEqual(parseStorePath(makeStorePath("text", inner, "n")).hash, parsed.hash);
  assert.notEqual(parseStorePath(makeStorePath("source", inner, "m")).hash, parsed.hash);
});

test("bad names, inner hashes and store directories are refused with a reason", () => {
  const inner = sha256("x").toString("hex");
  assert.match(cprFailure(() => checkStorePathName("")).message, /empty/);
  assert.match(cprFailure(() => checkStorePathName(".hidden")).message, /starts with '\.'/);
  assert.match(cprFailure(() => checkStorePathName("a b")).message, /character other than/);
  assert.match(cprFailure(() => checkStorePathName("a".repeat(212))).message, /212 characters long; Nix allows 211/);
  assert.equal(checkStorePathName("a".repeat(211)), "a".repeat(211));
  assert.equal(checkStorePathName("A-z_0.9+?="), "A-z_0.9+?=");
  assert.equal(cprFailure(() => makeStorePath("source", inner.toUpperCase(), "n")).code, "store-path.inner-hash");
  assert.equal(cprFailure(() => makeStorePath("source", inner, "n", "/nix/store/")).code, "store-path.store-dir");
  assert.equal(cprFailure(() => makeStorePath("source", inner, "n", "relative")).code, "store-path.store-dir");
});

test("makeType lists references as sorted full paths, once, then :self; a text path cannot refer to itself", () => {
  const a = "/nix/store/00000000000000000000000000000000-zzz";
  const b = "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-aaa";
  assert.equal(makeType("source", [b, a, b], true), `source:${a}:${b}:self`);
  // References are full paths in the store directory, not basenames.
  assert.equal(cprFailure(() => makeType("text", ["00000000000000000000000000000000-zzz"])).code, "narinfo.store-path");
  assert.equal(cprFailure(() => makeType("text", [a], true)).code, "store-path.text-self");
  assert.equal(
    cprFailure(() => makeFixedOutputPath("f", { method: "flat", algo: "sha256", digest: sha256("") }, [a])).code,
    "store-path.fixed-refs",
  );
  assert.equal(cprFailure(() => makeFixedOutputPath("f", { method: "flat", algo: "sha1", digest: sha256("") })).code, "store-path.digest");
});

test("real Nix: nix-store --add and --add-fixed give the paths we compute (source and output:out types)", async (t) => {
  if (!needTools(t, "nix-store")) return;
  const s = throwawayStore();
  try {
    const f = join(s.dir, "hello.txt");
    writeFileSync(f, "hello\n");
    const exe = join(s.dir, "run.sh");
    writeFileSync(exe, "#!/bin/sh\necho hi\n");
    chmodSync(exe, 0o755);
    const tree = cornerTree(join(s.dir, "t"));
    for (const p of [f, exe, tree]) {
      const nar = await narBytes(p);
      const name = p.slice(p.lastIndexOf("/") + 1);
      assert.equal(s.run("nix-store", ["--add", p]), makeSourcePath(name, nar.sha256), `nix-store --add ${name}`);
      assert.equal(
        s.run("nix-store", ["--add-fixed", "--recursive", "sha256", p]),
        makeFixedOutputPath(name, { method: "recursive", algo: "sha256", digest: nar.sha256 }),
      );
      for (const algo of ["sha1", "md5", "sha512"] as const) {
        assert.equal(
          s.run("nix-store", ["--add-fixed", "--recursive", algo, p]),
          makeFixedOutputPath(name, { method: "recursive", algo, digest: createHash(algo).update(nar.bytes).digest() }),
          `--add-fixed --recursive ${algo} ${name}`,
        );
      }
    }
    for (const p of [f, exe]) {
      const name = p.slice(p.lastIndexOf("/") + 1);
      for (const algo of ["sha256", "sha1", "sha512"] as const) {
        assert.equal(
          s.run("nix-store", ["--add-fixed", algo, p]),
          makeFixedOutputPath(name, { method: "flat", algo, digest: createHash(algo).update(readFileSync(p)).digest() }),
          `--add-fixed ${algo} ${name} (flat)`,
        );
      }
    }
  } finally {
    s.done();
  }
});

test("real Nix: builtins.toFile gives the text paths we compute, with their references", (t) => {
  if (!needTools(t, "nix-store", "nix-instantiate")) return;
  const s = throwawayStore();
  try {
    mkdirSync(join(s.dir, "src"));
    writeFileSync(join(s.dir, "src", "f"), "source file\n");
    const src = s.run("nix-store", ["--add", join(s.dir, "src", "f")]);
    const evalPath = (expr: string): string =>
      JSON.parse(s.run("nix-instantiate", ["--read-write-mode", "--eval", "--json", "-E", expr])) as string;
    const a = evalPath(`builtins.toFile "a" "plain"`);
    assert.equal(a, makeTextPath("a", sha256("plain")));
    const b = evalPath(`builtins.toFile "b.sh" "run \${builtins.toFile "a" "plain"}\\n"`);
    assert.equal(b, makeTextPath("b.sh", sha256(`run ${a}\n`), [a]));
    const contents = `${b} ${a} ${src} again ${a}`;
    const c = evalPath(
      `let a = builtins.toFile "a" "plain"; b = builtins.toFile "b.sh" "run \${a}\\n"; in builtins.toFile "c" "\${b} \${a} \${builtins.storePath ${src}} again \${a}"`,
    );
    assert.equal(c, makeTextPath("c", sha256(contents), [src, b, a]));
    assert.deepEqual(s.run("nix-store", ["--query", "--references", c]).split("\n").sort(), [a, b, src].sort());
    // The name is checked as Nix checks it; the path's hash part decodes to 20 bytes.
    assert.equal(fromNix32(parseStorePath(c).hash).length, 20);
    assert.equal(toNix32(fromNix32(parseStorePath(c).hash)), parseStorePath(c).hash);
  } finally {
    s.done();
  }
});
