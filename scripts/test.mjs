#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner.
// Usage: node scripts/test.mjs [filter-substring ...]
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk("dist/test")
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error("no test files found under dist/test (did the build run?)");
  process.exit(1);
}
// A hung test fails after 4 minutes instead of stalling the run, and a handle some test forgot to close cannot
// keep the runner alive once every test has finished.
const flags = ["--test", "--test-reporter=spec", "--enable-source-maps", "--test-timeout=240000", "--test-force-exit"];
const r = spawnSync(process.execPath, [...flags, ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
