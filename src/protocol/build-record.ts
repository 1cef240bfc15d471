/**
 * Build records as the registry API carries them (`POST /api/v1/builds`, docs/registry.md), pure: validation,
 * canonical JSON and the config hash.
 */
import { createHash } from "node:crypto";
import { CprError } from "./errors.js";
import { atomId } from "./id.js";
import { normalizeLabel } from "./label.js";
import { parseStorePath } from "./narinfo.js";
import { parseVersion } from "./version.js";

export interface BuildRecord {
  /** Set root, 40 or 64 lowercase hex. */
  readonly set: string;
  readonly label: string;
  /** AtomId; must equal the digest of (set, label). */
  readonly id: string;
  readonly version: string;
  /** Atom commit id. */
  readonly rev: string;
  readonly system: string;
  /** Evaluation inputs, e.g. {"system":"x86_64-linux"}. */
  readonly config: Readonly<Record<string, unknown>>;
  /** /nix/store/…drv */
  readonly drv: string;
  /** Output name → store path. */
  readonly outputs: Readonly<Record<string, string>>;
  /** `meta.mainProgram` of the derivation (a file name in `bin/`), when it declares one; optional. */
  readonly mainProgram?: string | null;
}

/** Whether `value` can be a `meta.mainProgram`: a file name in `bin/` (no "/", not "." or ".."). */
export function isProgramName(value: unknown): value is string {
  return typeof value === "string" && /^[^/\0]+$/.test(value) && value !== "." && value !== "..";
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * JSON with object keys sorted by UTF-16 code units, no whitespace; rejects non-finite numbers and undefined (and
 * anything else JSON cannot carry: functions, symbols, bigints, class instances), naming where in the value.
 */
export function canonicalJson(value: unknown): string {
  const walk = (v: unknown, path: string): string => {
    const bad = (why: string) =>
      new CprError("build.canonical-json", `cannot write ${path} as canonical JSON: ${why}`, {
        where: path,
        hint: "use only JSON values: objects, arrays, strings, finite numbers, booleans and null",
      });
    if (v === null) return "null";
    switch (typeof v) {
      case "string":
        return JSON.stringify(v);
      case "boolean":
        return v ? "true" : "false";
      case "number":
        if (!Number.isFinite(v)) throw bad(`${v} is not a finite number`);
        return JSON.stringify(v);
      case "object":
        if (Array.isArray(v)) return `[${v.map((item, i) => walk(item, `${path}[${i}]`)).join(",")}]`;
        if (!isPlainObject(v)) throw bad("it is not a plain object");
        return `{${Object.keys(v)
          .sort(byCodeUnits)
          .map((k) => `${JSON.stringify(k)}:${walk(v[k], `${path}.${k}`)}`)
          .join(",")}}`;
      default:
        throw bad(`it is ${v === undefined ? "undefined" : `a ${typeof v}`}`);
    }
  };
  return walk(value, "value");
}

/** Hex SHA-256 of canonicalJson(config). */
export function configHash(config: unknown): string {
  return createHash("sha256").update(canonicalJson(config), "utf8").digest("hex");
}

const HEX_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** A Nix system double such as x86_64-linux or aarch64-darwin (cpu-os, optionally with a vendor/abi part). */
const SYSTEM = /^[a-z0-9_]+(?:-[a-z0-9_]+){1,2}$/;
/** Nix output names: the characters a store path name allows, not starting with '.'. */
const OUTPUT_NAME = /^[A-Za-z0-9+\-_?=][A-Za-z0-9+\-._?=]*$/;

const EXAMPLE =
  '{"set":"<root hex>","label":"hello","id":"<AtomId>","version":"2.12.2","rev":"<atom commit>","system":"x86_64-linux",' +
  '"config":{"system":"x86_64-linux"},"drv":"/nix/store/…-hello-2.12.2.drv","outputs":{"out":"/nix/store/…-hello-2.12.2"}}';

/**
 * Validates a decoded JSON body; throws CprError (code `build.invalid`) naming the bad field. Unknown fields are
 * ignored (and not returned), so that a newer client can talk to an older server.
 */
export function parseBuildRecord(json: unknown): BuildRecord {
  const fail = (field: string, message: string, hint: string): never => {
    throw new CprError("build.invalid", `build record field "${field}" ${message}`, { where: field, hint });
  };
  if (!isPlainObject(json))
    throw new CprError(
      "build.invalid",
      `a build record must be a JSON object, got ${json === null ? "null" : Array.isArray(json) ? "an array" : typeof json}`,
      {
        where: "body",
        hint: `send ${EXAMPLE}`,
      },
    );
  const str = (field: string, hint: string): string => {
    const v = json[field];
    if (v === undefined) return fail(field, "is missing", hint);
    if (typeof v !== "string") return fail(field, `must be a string, got ${JSON.stringify(v)}`, hint);
    return v;
  };

  /** A field holding a 40- or 64-hex object id. */
  const hexId = (field: string, what: string, hint: string): string => {
    const v = str(field, `${what}, 40 or 64 lowercase hex digits`);
    if (!HEX_ID.test(v)) fail(field, `must be 40 or 64 lowercase hex digits (${what}), got ${JSON.stringify(v)}`, hint);
    return v;
  };
  const set = hexId("set", "the set root", "the set's root commit id, e.g. from `git rev-list --max-parents=0 HEAD`");

  const label = str("label", "the atom's label, e.g. hello");
  try {
    if (normalizeLabel(label, "label", "label") !== label)
      fail("label", `must be NFKC-normalised, got ${JSON.stringify(label)}`, `send ${JSON.stringify(label.normalize("NFKC"))}`);
  } catch (e) {
    if (e instanceof CprError && e.code !== "build.invalid")
      fail("label", `is not a valid label: ${e.message}`, e.hint ?? "labels start with a letter or '_'");
    throw e;
  }

  const id = str("id", "the AtomId of (set, label)");
  const expected = atomId(set, label);
  if (id !== expected)
    fail(
      "id",
      `${JSON.stringify(id)} is not the AtomId of set ${set} and label ${JSON.stringify(label)} (that is ${expected})`,
      "send the AtomId of the set and label, as `cpr` computes it",
    );

  const version = str("version", "a semantic version, e.g. 2.12.2");
  try {
    parseVersion(version);
  } catch (e) {
    if (e instanceof CprError) fail("version", `is not a valid version: ${e.message}`, e.hint ?? "a semantic version, e.g. 2.12.2");
    throw e;
  }

  const rev = hexId("rev", "the atom commit", "send the full commit id of the published atom version");

  const system = str("system", "a Nix system such as x86_64-linux");
  if (!SYSTEM.test(system) || system.length > 64)
    fail("system", `must be a Nix system such as x86_64-linux, got ${JSON.stringify(system)}`, "e.g. x86_64-linux or aarch64-darwin");

  const config = json.config;
  if (config === undefined) fail("config", "is missing", 'the evaluation inputs as a JSON object, e.g. {"system":"x86_64-linux"}');
  if (!isPlainObject(config)) fail("config", `must be a JSON object, got ${JSON.stringify(config)}`, 'e.g. {"system":"x86_64-linux"}');
  try {
    canonicalJson(config);
  } catch (e) {
    if (e instanceof CprError) fail("config", e.message, e.hint ?? "use only JSON values");
    throw e;
  }

  const drv = str("drv", "the derivation's store path, /nix/store/…-NAME.drv");
  try {
    const p = parseStorePath(drv);
    if (!p.name.endsWith(".drv"))
      fail(
        "drv",
        `must be a derivation (a store path ending in .drv), got ${JSON.stringify(drv)}`,
        "send the .drv path `nix-instantiate` printed",
      );
  } catch (e) {
    if (e instanceof CprError && e.code !== "build.invalid")
      fail("drv", `is not a store path: ${e.message}`, e.hint ?? "send a /nix/store/…drv path");
    throw e;
  }

  const outputsValue = json.outputs;
  const outputsHint = 'an object of output name → store path, e.g. {"out":"/nix/store/…-hello-2.12.2"}';
  if (outputsValue === undefined) fail("outputs", "is missing", outputsHint);
  if (!isPlainObject(outputsValue)) fail("outputs", `must be a JSON object, got ${JSON.stringify(outputsValue)}`, outputsHint);
  const outputEntries = Object.entries(outputsValue as Record<string, unknown>);
  if (outputEntries.length === 0) fail("outputs", "is empty", outputsHint);
  const outputList: [string, string][] = [];
  for (const [name, path] of outputEntries) {
    const field = `outputs.${name}`;
    if (!OUTPUT_NAME.test(name)) fail(field, `has an invalid output name ${JSON.stringify(name)}`, "output names are like out, dev, lib");
    if (typeof path !== "string") fail(field, `must be a store path string, got ${JSON.stringify(path)}`, outputsHint);
    try {
      outputList.push([name, parseStorePath(path as string).path]);
    } catch (e) {
      if (e instanceof CprError) fail(field, `is not a store path: ${e.message}`, e.hint ?? outputsHint);
      throw e;
    }
  }

  // fromEntries defines own properties, so even an output named __proto__ is kept as data.
  const outputs: Record<string, string> = Object.fromEntries(outputList);
  const mainProgram = json.mainProgram ?? null;
  if (mainProgram !== null && !isProgramName(mainProgram))
    fail(
      "mainProgram",
      `must be a file name (no "/") or null, got ${JSON.stringify(mainProgram)}`,
      'the name of a program in bin/, e.g. "hello"',
    );
  return {
    set,
    label,
    id,
    version,
    rev,
    system,
    config: config as Record<string, unknown>,
    drv,
    outputs,
    ...(mainProgram !== null ? { mainProgram: mainProgram as string } : {}),
  };
}
