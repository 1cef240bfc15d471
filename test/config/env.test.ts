import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ENV_VARIABLES, envValue } from "../../src/config/env.js";
import { tempDir } from "../support/repo.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const src = join(root, "src");
const bin = join(root, "bin", "cpr");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

test("no CPR_* variable is read outside src/config", () => {
  const reads: string[] = [];
  for (const file of sources(src)) {
    if (relative(src, file).startsWith(`config${"/"}`)) continue;
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (/\benv\??\.\s*CPR_|\benv\??\.?\[\s*["'`]CPR_/.test(line)) reads.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(reads, []);
});

test("every CPR_* variable src/ names is declared once, in ENV_VARIABLES", () => {
  const declared = ENV_VARIABLES.map((v) => v.name);
  assert.equal(new Set(declared).size, declared.length, "no variable twice");
  assert.equal(new Set(ENV_VARIABLES.map((v) => v.key)).size, declared.length, "one variable per key");
  const named = new Set<string>();
  for (const file of sources(src)) {
    // CPR_LOCKER_* and CPR_* name families, not variables.
    for (const m of readFileSync(file, "utf8").matchAll(/\bCPR_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)/g)) named.add(m[0]);
  }
  assert.deepEqual([...named].filter((n) => !declared.includes(n as never)).sort(), []);
  assert.ok(named.size >= declared.length - 2, "the scan finds the variables config reads");
});

test("envValue: a blank variable counts as unset; a set one comes back as written", () => {
  assert.equal(envValue({}, "CPR_CACHE_DIR"), undefined);
  assert.equal(envValue({ CPR_CACHE_DIR: "" }, "CPR_CACHE_DIR"), undefined);
  assert.equal(envValue({ CPR_CACHE_DIR: " \t" }, "CPR_CACHE_DIR"), undefined);
  assert.equal(envValue({ CPR_CACHE_DIR: " x " }, "CPR_CACHE_DIR"), " x ");
});

test("cpr config list lists every CPR_* variable, the key it sets and whether it is set, never its value", () => {
  const home = tempDir("cpr-env-home-");
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    NO_COLOR: "1",
    CPR_REGISTRY_TOKEN: "cpr_topsecret",
    CPR_LISTING_TTL: "7",
    CPR_ALIASES: " ",
  };
  const human = spawnSync(process.execPath, [bin, "config", "list"], { cwd: home, env, encoding: "utf8" });
  assert.equal(human.status, 0, human.stderr);
  assert.ok(!human.stdout.includes("topsecret"));
  const section = human.stdout.slice(human.stdout.indexOf("\nenvironment:\n"));
  for (const v of ENV_VARIABLES) {
    const set = v.name === "CPR_REGISTRY_TOKEN" || v.name === "CPR_LISTING_TTL";
    assert.match(section, new RegExp(`^  ${v.name} +${v.key.replace(/\./g, "\\.")} +\\(${set ? "set" : "unset"}\\)$`, "m"), v.name);
  }
  const json = spawnSync(process.execPath, [bin, "config", "list", "--json"], { cwd: home, env, encoding: "utf8" });
  assert.equal(json.status, 0, json.stderr);
  assert.ok(!json.stdout.includes("topsecret"));
  const doc = JSON.parse(json.stdout) as { variables: { name: string; key: string; value: string; meaning: string; set: boolean }[] };
  assert.deepEqual(
    doc.variables.map((v) => v.name),
    ENV_VARIABLES.map((v) => v.name),
  );
  assert.deepEqual(
    doc.variables
      .filter((v) => v.set)
      .map((v) => v.name)
      .sort(),
    ["CPR_LISTING_TTL", "CPR_REGISTRY_TOKEN"],
  );
  for (const v of doc.variables) assert.ok(v.meaning.length > 0 && v.value.length > 0 && v.key.length > 0, v.name);
  // --help lists them from the same table.
  const help = spawnSync(process.execPath, [bin, "config", "--help"], { cwd: home, env, encoding: "utf8" });
  for (const v of ENV_VARIABLES) assert.ok(help.stdout.includes(`${v.name}=${v.value}`), v.name);
});
