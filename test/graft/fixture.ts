/**
 * Graft fixtures in a throwaway store (test/nix/throwaway-store.ts): input-addressed paths that refer to each other
 * and to themselves, made with real Nix by `nix-store --import` of an export we write (src/nix/nar-export.ts), so
 * that no build (and no sandbox) is needed. Their NARs are what `nix-store --dump` gives.
 *
 *   y-3.2, y-3.3   a library: lib/message (text), lib/liby.so (binary); no references
 *   libz-1.0       refers to y-3.2 (a config file naming it); no self-reference
 *   x-1.0          refers to y-3.2, libz-1.0 and itself: bin/x (a script), share/data.bin (binary, both paths and its
 *                  own bare hash part), share/y (a symlink into y-3.2)
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeStorePath, parseStorePath } from "../../src/protocol/store-path.js";
import { narBytes } from "../../src/nix/nar.js";
import { exportPaths } from "../../src/nix/nar-export.js";
import type { ThrowawayStore } from "../nix/throwaway-store.js";

/** An input-addressed-looking path for `name` (any fixed 32-character hash would do; this one is reproducible). */
export function fakeOutputPath(name: string, seed = "cpr-graft-test"): string {
  return makeStorePath("output:out", createHash("sha256").update(`${seed}:${name}`).digest("hex"), name);
}

export interface FixturePath {
  readonly path: string;
  readonly references: readonly string[];
}

/** Collects an async stream into one buffer. */
export async function collect(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/**
 * Imports `path` with `references` into the store, its contents made by `make(dir)` in a scratch directory; returns
 * the path. References must be valid (imported) first.
 */
export async function importPath(
  s: ThrowawayStore,
  path: string,
  references: readonly string[],
  make: (dir: string) => void,
): Promise<string> {
  const scratch = join(s.dir, "make", parseStorePath(path).basename);
  mkdirSync(join(s.dir, "make"), { recursive: true });
  make(scratch);
  const nar = await narBytes(scratch);
  const exported = await collect(exportPaths([{ path, references, nar: nar.bytes }]));
  const got = s.run("nix-store", ["--import"], exported);
  if (got !== path) throw new Error(`nix-store --import printed ${JSON.stringify(got)}, expected ${path}`);
  return path;
}

export interface GraftFixture {
  readonly y32: string;
  readonly y33: string;
  readonly libz: string;
  readonly x: string;
  readonly closure: readonly FixturePath[];
}

function library(version: string): (dir: string) => void {
  return (dir) => {
    mkdirSync(join(dir, "lib"), { recursive: true });
    writeFileSync(join(dir, "lib", "message"), `hello from y ${version}\n`);
    writeFileSync(
      join(dir, "lib", "liby.so"),
      Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.from(`y ${version}`), Buffer.alloc(37, 0xaa)]),
    );
  };
}

export async function graftFixture(s: ThrowawayStore, seed = "cpr-graft-test"): Promise<GraftFixture> {
  const y32 = await importPath(s, fakeOutputPath("y-3.2", seed), [], library("3.2"));
  const y33 = await importPath(s, fakeOutputPath("y-3.3", seed), [], library("3.3"));
  const libz = await importPath(s, fakeOutputPath("libz-1.0", seed), [y32], (dir) => {
    mkdirSync(join(dir, "etc"), { recursive: true });
    writeFileSync(join(dir, "etc", "libz.conf"), `y=${y32}/lib/liby.so\n`);
  });
  const x = fakeOutputPath("x-1.0", seed);
  const xHash = parseStorePath(x).hash;
  await importPath(s, x, [y32, libz, x], (dir) => {
    mkdirSync(join(dir, "bin"), { recursive: true });
    mkdirSync(join(dir, "share"), { recursive: true });
    writeFileSync(join(dir, "bin", "x"), `#!/bin/sh\n# ${x}\ncat ${y32}/lib/message\n. ${libz}/etc/libz.conf\n`);
    chmodSync(join(dir, "bin", "x"), 0o755);
    writeFileSync(
      join(dir, "share", "data.bin"),
      Buffer.concat([
        Buffer.from([0, 1, 2, 3]),
        Buffer.from(`${y32}/lib/liby.so`),
        Buffer.from([0, 0xff]),
        Buffer.from(x),
        Buffer.from([0]),
        Buffer.from(xHash),
        Buffer.alloc(5),
      ]),
    );
    symlinkSync(`${y32}/lib`, join(dir, "share", "y"));
  });
  return {
    y32,
    y33,
    libz,
    x,
    closure: [
      { path: y32, references: [] },
      { path: y33, references: [] },
      { path: libz, references: [y32] },
      { path: x, references: [x, y32, libz] },
    ],
  };
}
