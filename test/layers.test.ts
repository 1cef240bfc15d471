/**
 * The layout is the architecture (README "Layout"): dependencies point down only. This test reads every source
 * file's imports and fails on one that points up or sideways, and on I/O modules in the pure core.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const src = join(root, "src");

/** Which top-level directories of src/ each one may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  git: ["protocol"],
  config: ["protocol"],
  nix: ["protocol", "git"],
  publish: ["protocol", "git", "nix", "config"],
  resolve: ["protocol", "git", "nix", "config"],
  store: ["protocol", "git", "nix", "config"],
  build: ["protocol", "git", "nix", "config", "store"],
  registry: ["protocol", "git", "nix", "config", "store", "build"],
  graft: ["protocol", "nix"],
  cli: ["protocol", "git", "nix", "config", "publish", "resolve", "store", "build", "registry"],
};

/** Node modules that do I/O, which the pure core must not touch. */
const IO_MODULES = ["fs", "fs/promises", "child_process", "net", "http", "https", "http2", "dgram", "dns", "tls", "worker_threads", "process"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/g)) {
    out.push((m[1] ?? m[2])!);
  }
  return out;
}

test("every import in src/ points down the layers", () => {
  const violations: string[] = [];
  const files = sources(src);
  assert.ok(files.length > 50, "found the sources");
  for (const file of files) {
    const layer = relative(src, file).split("/")[0]!;
    const allowed = ALLOWED[layer];
    assert.ok(allowed, `src/${layer} is a directory the layering rules do not know: add it to ALLOWED and README's Layout`);
    for (const spec of importsOf(file)) {
      if (spec.startsWith(".")) {
        const target = relative(src, resolve(dirname(file), spec)).split("/")[0]!;
        if (target !== layer && !allowed.includes(target)) violations.push(`${relative(root, file)} imports ${spec} (src/${layer} may not import src/${target})`);
      } else if (layer === "protocol") {
        const name = spec.replace(/^node:/, "");
        if (IO_MODULES.includes(name)) violations.push(`${relative(root, file)} imports ${spec}: src/protocol is pure, no I/O`);
      }
    }
  }
  assert.deepEqual(violations, []);
});
