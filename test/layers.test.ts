/**
 * The layout is the architecture (README "Layout"): dependencies point down only. This test reads every source
 * file's imports and fails on one that points up or sideways, on I/O modules in the pure core, on a command that
 * imports another command (what several share is src/cli/shared.ts), and on any import cycle within src/.
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
  process: ["protocol"],
  config: ["protocol"],
  git: ["protocol", "process", "config"],
  nix: ["protocol", "process", "config", "git"],
  publish: ["protocol", "process", "git", "nix", "config"],
  resolve: ["protocol", "process", "git", "nix", "config"],
  store: ["protocol", "process", "git", "nix", "config"],
  build: ["protocol", "process", "git", "nix", "config", "store"],
  serve: ["protocol", "process", "git", "nix", "config", "graft"],
  registry: ["protocol", "process", "git", "nix", "config", "store", "build", "graft"],
  graft: ["protocol", "process", "nix"],
  cli: ["protocol", "process", "git", "nix", "config", "publish", "resolve", "store", "build", "serve", "registry", "graft"],
};

/** Node modules only one layer may import: every child process goes through src/process (its runner). */
const OWNED_MODULES: Record<string, string> = { child_process: "process" };

/** Node modules that do I/O, which the pure core must not touch. */
const IO_MODULES = [
  "fs",
  "fs/promises",
  "child_process",
  "net",
  "http",
  "https",
  "http2",
  "dgram",
  "dns",
  "tls",
  "worker_threads",
  "process",
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)|(?:^|\n)\s*import\s+"([^"]+)"/g,
  )) {
    out.push((m[1] ?? m[2] ?? m[3])!);
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
        if (target !== layer && !allowed.includes(target))
          violations.push(`${relative(root, file)} imports ${spec} (src/${layer} may not import src/${target})`);
      } else {
        const name = spec.replace(/^node:/, "");
        if (layer === "protocol" && IO_MODULES.includes(name))
          violations.push(`${relative(root, file)} imports ${spec}: src/protocol is pure, no I/O`);
        const owner = OWNED_MODULES[name];
        if (owner !== undefined && owner !== layer)
          violations.push(`${relative(root, file)} imports ${spec}: only src/${owner} may (use its runner)`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

/** The source files a file imports (relative specifiers, `.js` mapped back to `.ts`), type-only ones included. */
function localImports(file: string): string[] {
  return importsOf(file)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
}

test("no command imports another command", () => {
  const commands = join(src, "cli", "commands");
  const violations: string[] = [];
  for (const file of sources(commands)) {
    for (const target of localImports(file)) {
      if (dirname(target) === commands)
        violations.push(`${relative(root, file)} imports ${relative(root, target)}: move what both need to src/cli/shared.ts`);
    }
  }
  assert.deepEqual(violations, []);
});

test("src/ has no import cycle", () => {
  const files = sources(src);
  const graph = new Map(files.map((f) => [f, localImports(f).filter((t) => t !== f)]));
  // Depth-first search; a file met again while still on the path closes a cycle.
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string): void => {
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      const s = state.get(next);
      if (s === "open") cycles.push([...path.slice(path.indexOf(next)), next].map((f) => relative(src, f)).join(" -> "));
      else if (s === undefined) visit(next);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});
