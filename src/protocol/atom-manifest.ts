import { CprError } from "./errors.js";
import {
  describeTomlValue as describe,
  dottedKey as dotted,
  keyPathText as keyText,
  parseTomlFile,
  quotedList as list,
  TomlReader,
  type TomlTable,
} from "./toml.js";
import { VERSION_PLACEHOLDER } from "./uri.js";
import { parseRequirement, type Requirement } from "./requirement.js";
import { tryParseVersion, type Version } from "./version.js";

/**
 * `atom.toml` (docs/formats.md §6.1); `ekala.toml` (§6.2) is read in set-manifest.ts with the same reader. Parse errors
 * are CprErrors whose `where` is `<file>:<line>:<col>` when the position is known, and whose message says what was
 * expected.
 */

export interface PackageSection {
  /** NFKC-normalised. */
  readonly label: string;
  readonly version: Version;
  readonly description: string | null;
  readonly tags: readonly string[];
  /** tag → mirrors (`"::"` or git URL text), in file order, exact duplicates dropped. */
  readonly sets: Readonly<Record<string, readonly string[]>>;
}

export type Compose =
  | {
      readonly kind: "with";
      readonly label: string;
      readonly from: string;
      readonly requirement: Requirement;
      readonly entry: string;
    }
  | { readonly kind: "nix"; readonly path: string }
  | { readonly kind: "static" };

export type DirectNixDep =
  | {
      readonly kind: "url";
      readonly name: string;
      readonly url: string;
      readonly fromVersion: readonly [string, string] | null;
    }
  | {
      readonly kind: "tar";
      readonly name: string;
      readonly url: string;
      readonly fromVersion: readonly [string, string] | null;
    }
  | {
      readonly kind: "build";
      readonly name: string;
      readonly url: string;
      readonly unpack: boolean;
      readonly fromVersion: readonly [string, string] | null;
    }
  | {
      readonly kind: "git";
      readonly name: string;
      readonly url: string;
      readonly ref: string | null;
      readonly requirement: Requirement | null;
      readonly fromVersion: readonly [string, string] | null;
    };

export interface AtomManifest {
  readonly package: PackageSection;
  /** The composer; always null in "publish" mode, which reads only `[package]` (and in "evaluate" mode without one). */
  readonly compose: Compose | null;
  /** set tag → label → requirement (empty in "publish" mode) */
  readonly depsFrom: Readonly<Record<string, Readonly<Record<string, Requirement>>>>;
  /** In file order (empty in "publish" mode). */
  readonly directNix: readonly DirectNixDep[];
}

export type ManifestMode =
  /** Publishing: only `[package]` is read and validated; other tables (even unknown ones) are ignored. */
  | "publish"
  /** Resolving/locking: the whole file is validated, `[compose]` required, unknown top-level keys rejected. */
  | "full"
  /**
   * Evaluating a published atom (docs/formats.md §12: publish's lock check, verify): a manifest with `[compose]` is read as in
   * "full" mode, except that unknown top-level tables (e.g. `[locker.*]`) are ignored, as publishing ignores them
   * (§5.1), and a static atom's `[deps]` are not read; one without `[compose]` (a locker such as nix-lock) as in
   * "publish" mode, with `compose` null.
   */
  | "evaluate";

/** Manifests have no arrays of tables: their paths are keys only. */
type Path = readonly string[];
type Table = TomlTable;

/** How manifests (atom.toml, ekala.toml) name their TOML errors. */
const MANIFEST_CODES = { type: "manifest.type", missing: "manifest.missing", unknownKey: "manifest.unknown-key" } as const;
export const MANIFEST_SYNTAX = { code: "manifest.syntax", hint: "fix the TOML syntax at the position shown" } as const;

/** A reader over a manifest's text (atom.toml, ekala.toml). */
export function manifestReader(text: string, file: string): TomlReader {
  return new TomlReader(file, text, { codes: MANIFEST_CODES });
}

/** parseRequirement with the file's position attached to its error. */
function requirementAt(ctx: TomlReader, text: string, path: Path): Requirement {
  try {
    return parseRequirement(text);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError(
      "manifest.invalid-requirement",
      `${keyText(path)} must be a version requirement like "^1.2", got ${JSON.stringify(text)}: ${e.message}`,
      {
        where: ctx.where(path),
        hint: e.hint ?? 'use Cargo syntax: "^1.2", "~1.2.3", ">=1.2, <1.5" or "*"',
        cause: e,
      },
    );
  }
}

/**
 * Normalise a relative path: strip `./`, duplicate and trailing `/`, resolve `..` lexically. Returns "" for the
 * root itself, or an error word for an absolute path or one that leaves the root.
 */
export function normalizeRelativePath(path: string): { ok: true; path: string } | { ok: false; reason: "absolute" | "escapes" } {
  if (path.startsWith("/")) return { ok: false, reason: "absolute" };
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return { ok: false, reason: "escapes" };
      out.pop();
    } else out.push(part);
  }
  return { ok: true, path: out.join("/") };
}

/** A relative path inside the atom (`entry`, `[compose.as] nix`); "." for the atom directory itself. */
function atomPath(ctx: TomlReader, v: unknown, path: Path): string {
  const text = ctx.string(v, path, '"src"');
  const n = normalizeRelativePath(text);
  if (!n.ok) {
    ctx.fail(
      "manifest.bad-path",
      path,
      `${keyText(path)} must be a relative path inside the atom, got ${JSON.stringify(text)}`,
      'write a path relative to the atom directory, e.g. "src" or "."',
    );
  }
  return n.path === "" ? "." : n.path;
}

// ---------------------------------------------------------------------------------------------------------------
// atom.toml

const PACKAGE_KEYS = ["label", "version", "meta", "sets"] as const;
const TOP_KEYS = ["package", "compose", "deps"] as const;
const SOURCE_KEYS = ["url", "tar", "build", "git"] as const;
type SourceKey = (typeof SOURCE_KEYS)[number];
const EXTRA_KEYS: Record<SourceKey, readonly string[]> = {
  url: [],
  tar: [],
  build: ["unpack"],
  git: ["ref", "version"],
};

function readPackage(ctx: TomlReader, v: unknown): PackageSection {
  if (v === undefined) {
    ctx.fail("manifest.missing", [], `${ctx.file} has no [package] table`, 'add [package] with label = "<name>" and version = "0.1.0"');
  }
  const pkg = ctx.table(v, ["package"]);
  if ("description" in pkg) {
    ctx.fail(
      "manifest.misplaced-key",
      ["package", "description"],
      "[package].description is not allowed here: the description belongs in [package.meta]",
      'move it under a [package.meta] table: [package.meta]\ndescription = "…"',
    );
  }
  ctx.onlyKeys(pkg, ["package"], PACKAGE_KEYS);

  if (pkg.label === undefined) ctx.fail("manifest.missing", ["package"], "[package].label is missing", 'add label = "<name>" to [package]');
  const label = ctx.label(ctx.string(pkg.label, ["package", "label"], '"foo"'), "label", ["package", "label"], "[package].label");

  if (pkg.version === undefined)
    ctx.fail("manifest.missing", ["package"], "[package].version is missing", 'add version = "0.1.0" to [package]');
  const versionText = ctx.string(pkg.version, ["package", "version"], '"0.1.0"');
  const version = tryParseVersion(versionText);
  if (version === null || version.text !== versionText) {
    ctx.fail(
      "manifest.invalid-version",
      ["package", "version"],
      `[package].version must be a SemVer version like 1.2.3, got ${JSON.stringify(versionText)}`,
      'write three numeric parts, no "v" prefix and no leading zeros, e.g. version = "0.1.0" or "1.0.0-rc.1"',
    );
  }

  let description: string | null = null;
  let tags: string[] = [];
  if (pkg.meta !== undefined) {
    const meta = ctx.table(pkg.meta, ["package", "meta"]);
    if (meta.description !== undefined)
      description = ctx.string(meta.description, ["package", "meta", "description"], '"What this atom is."');
    if (meta.tags !== undefined) {
      const path = ["package", "meta", "tags"];
      tags = ctx.strings(meta.tags, path, '["example", "lang:nix"]').map((t) => ctx.label(t, "tag", path, "[package.meta].tags entry", t));
    }
  }

  const sets: Record<string, string[]> = {};
  if (pkg.sets !== undefined) {
    const table = ctx.table(pkg.sets, ["package", "sets"]);
    for (const [rawTag, value] of Object.entries(table)) {
      const path = ["package", "sets", rawTag];
      const tag = ctx.label(rawTag, "tag", path, "[package.sets] key");
      if (tag in sets)
        ctx.fail(
          "manifest.duplicate",
          path,
          `[package.sets] names the set "${tag}" twice (after NFKC normalisation)`,
          "keep one entry per set tag",
        );
      const mirrors = typeof value === "string" ? [value] : ctx.strings(value, path, '"::" or ["::", "https://example.org/repo.git"]');
      if (mirrors.length === 0)
        ctx.fail("manifest.type", path, `${keyText(path)} must name at least one mirror`, 'give "::" (this repository) or a git URL');
      for (const m of mirrors) {
        if (m === "" || /[\s\x00-\x1f\x7f]/.test(m)) {
          ctx.fail(
            "manifest.bad-mirror",
            path,
            `${keyText(path)} must be "::" or a git URL, got ${JSON.stringify(m)}`,
            'a mirror is "::" (this repository) or a git URL without spaces',
            m,
          );
        }
      }
      sets[tag] = [...new Set(mirrors)];
    }
  }
  return { label, version, description, tags, sets };
}

function unknownSet(ctx: TomlReader, pkg: PackageSection, path: Path, what: string, tag: string): never {
  const known = Object.keys(pkg.sets);
  ctx.fail(
    "manifest.unknown-set",
    path,
    `${what} names the set "${tag}", which is not a key of [package.sets]`,
    known.length === 0
      ? `declare it under [package.sets], e.g. ${dotted([tag])} = "<git url>"`
      : `declare it under [package.sets] or use one of ${list(known)}`,
  );
}

function readCompose(ctx: TomlReader, v: unknown, pkg: PackageSection): Compose {
  const hint = 'add [compose.with.atom-nix] with from = "<set tag>", or [compose.as] with nix = "<path>" or static = "config"';
  if (v === undefined) ctx.fail("manifest.missing", [], `${ctx.file} has no [compose] table; resolving and locking need one`, hint);
  const compose = ctx.table(v, ["compose"]);
  ctx.onlyKeys(compose, ["compose"], ["with", "as"]);
  const kinds = Object.keys(compose);
  if (kinds.length !== 1)
    ctx.fail(
      "manifest.compose",
      ["compose"],
      `[compose] must hold exactly one of [compose.with.<label>] or [compose.as], found ${kinds.length}`,
      hint,
    );

  if (compose.with !== undefined) {
    const withT = ctx.table(compose.with, ["compose", "with"]);
    const names = Object.keys(withT);
    if (names.length !== 1) {
      ctx.fail(
        "manifest.compose",
        ["compose", "with"],
        `[compose.with] must name exactly one composer, found ${names.length}${names.length ? ` (${list(names)})` : ""}`,
        "keep a single [compose.with.<label>] table",
      );
    }
    const rawLabel = names[0]!;
    const path = ["compose", "with", rawLabel];
    const label = ctx.label(rawLabel, "label", path, "composer label");
    const t = ctx.table(withT[rawLabel], path);
    ctx.onlyKeys(t, path, ["from", "version", "entry"]);
    if (t.from === undefined)
      ctx.fail(
        "manifest.missing",
        path,
        `${keyText([...path, "from"])} is missing`,
        'add from = "<set tag>" naming a key of [package.sets]',
      );
    const from = ctx.label(ctx.string(t.from, [...path, "from"], '"atom"'), "tag", [...path, "from"], `[${dotted(path)}].from`);
    if (!(from in pkg.sets)) unknownSet(ctx, pkg, [...path, "from"], `[${dotted(path)}].from`, from);
    const requirement = requirementAt(ctx, t.version === undefined ? "*" : ctx.string(t.version, [...path, "version"], '"^0.4"'), [
      ...path,
      "version",
    ]);
    const entry = t.entry === undefined ? "." : atomPath(ctx, t.entry, [...path, "entry"]);
    return { kind: "with", label, from, requirement, entry };
  }

  const as = ctx.table(compose.as, ["compose", "as"]);
  ctx.onlyKeys(as, ["compose", "as"], ["nix", "static"]);
  const keys = Object.keys(as);
  if (keys.length !== 1)
    ctx.fail(
      "manifest.compose",
      ["compose", "as"],
      `[compose.as] must hold exactly one of nix or static, found ${keys.length}`,
      'write nix = "<path>" or static = "config"',
    );
  if (as.nix !== undefined) return { kind: "nix", path: atomPath(ctx, as.nix, ["compose", "as", "nix"]) };
  if (as.static !== "config") {
    ctx.fail(
      "manifest.compose",
      ["compose", "as", "static"],
      `[compose.as].static must be "config", got ${describe(as.static)}`,
      'write static = "config"',
    );
  }
  return { kind: "static" };
}

function readDeps(ctx: TomlReader, v: unknown, pkg: PackageSection): Pick<AtomManifest, "depsFrom" | "directNix"> {
  const depsFrom: Record<string, Record<string, Requirement>> = {};
  const directNix: DirectNixDep[] = [];
  if (v === undefined) return { depsFrom, directNix };
  const deps = ctx.table(v, ["deps"]);
  ctx.onlyKeys(deps, ["deps"], ["from", "direct"]);

  if (deps.from !== undefined) {
    const from = ctx.table(deps.from, ["deps", "from"]);
    for (const [rawTag, labels] of Object.entries(from)) {
      const path = ["deps", "from", rawTag];
      const tag = ctx.label(rawTag, "tag", path, "[deps.from] set tag");
      if (!(tag in pkg.sets)) unknownSet(ctx, pkg, path, `[${dotted(path)}]`, tag);
      if (tag in depsFrom)
        ctx.fail("manifest.duplicate", path, `[deps.from] names the set "${tag}" twice (after NFKC normalisation)`, "merge the two tables");
      const reqs: Record<string, Requirement> = {};
      for (const [rawLabel, req] of Object.entries(ctx.table(labels, path))) {
        const p = [...path, rawLabel];
        const label = ctx.label(rawLabel, "label", p, "dependency label");
        if (label in reqs)
          ctx.fail(
            "manifest.duplicate",
            p,
            `[${dotted(path)}] names "${label}" twice (after NFKC normalisation)`,
            "keep one entry per atom",
          );
        reqs[label] = requirementAt(ctx, ctx.string(req, p, '"^0.1.0"'), p);
      }
      depsFrom[tag] = reqs;
    }
  }

  if (deps.direct !== undefined) {
    const direct = ctx.table(deps.direct, ["deps", "direct"]);
    ctx.onlyKeys(direct, ["deps", "direct"], ["nix"], "only [deps.direct.nix] is supported");
    if (direct.nix !== undefined) {
      const seen = new Set<string>();
      for (const [rawName, entry] of Object.entries(ctx.table(direct.nix, ["deps", "direct", "nix"]))) {
        const path = ["deps", "direct", "nix", rawName];
        const name = ctx.label(rawName, "label", path, "direct dependency name");
        if (seen.has(name))
          ctx.fail(
            "manifest.duplicate",
            path,
            `[deps.direct.nix] names "${name}" twice (after NFKC normalisation)`,
            "keep one entry per name",
          );
        seen.add(name);
        directNix.push(readDirect(ctx, name, ctx.table(entry, path), path, pkg, depsFrom));
      }
    }
  }
  return { depsFrom, directNix };
}

function readDirect(
  ctx: TomlReader,
  name: string,
  t: Table,
  path: Path,
  pkg: PackageSection,
  depsFrom: Record<string, Record<string, Requirement>>,
): DirectNixDep {
  const sources = SOURCE_KEYS.filter((k) => k in t);
  if (sources.length !== 1) {
    ctx.fail(
      "manifest.direct-dep",
      path,
      `${keyText(path)} must have exactly one of url, tar, build or git, found ${sources.length === 0 ? "none" : list(sources)}`,
      `write e.g. ${dotted(path.slice(-1))}.url = "https://…" or ${dotted(path.slice(-1))} = { git = "https://…", ref = "main" }`,
    );
  }
  const kind = sources[0]!;
  ctx.onlyKeys(
    t,
    path,
    [kind, ...EXTRA_KEYS[kind], "from_version"],
    `a ${kind} entry takes only ${list([kind, ...EXTRA_KEYS[kind], "from_version"])}`,
  );
  const url = ctx.string(t[kind], [...path, kind], '"https://example.org/file"');
  if (url === "")
    ctx.fail("manifest.direct-dep", [...path, kind], `${keyText([...path, kind])} must not be empty`, "give the URL to fetch");

  let fromVersion: readonly [string, string] | null = null;
  if (t.from_version !== undefined) {
    const p = [...path, "from_version"];
    const pair = ctx.strings(t.from_version, p, '["<set-tag>", "<label>"]');
    if (pair.length !== 2)
      ctx.fail(
        "manifest.direct-dep",
        p,
        `${keyText(p)} must be a pair ["<set-tag>", "<label>"], got ${pair.length} elements`,
        "name the set tag and the atom label whose locked version goes into the URL",
      );
    const tag = ctx.label(pair[0]!, "tag", p, "from_version set tag");
    const label = ctx.label(pair[1]!, "label", p, "from_version label");
    if (!(tag in pkg.sets)) unknownSet(ctx, pkg, p, keyText(p), tag);
    if (!depsFrom[tag] || !(label in depsFrom[tag]!)) {
      ctx.fail(
        "manifest.direct-dep",
        p,
        `${keyText(p)} names ${tag}.${label}, which is not a dependency in [deps.from.${dotted([tag])}]`,
        `add ${dotted([label])} = "<requirement>" under [deps.from.${dotted([tag])}]`,
      );
    }
    if (!url.includes(VERSION_PLACEHOLDER)) {
      ctx.fail(
        "manifest.direct-dep",
        [...path, kind],
        `${keyText([...path, kind])} must contain ${VERSION_PLACEHOLDER} because the entry has from_version`,
        `put ${VERSION_PLACEHOLDER} where the version goes in the URL, or drop from_version`,
      );
    }
    fromVersion = [tag, label];
  }

  switch (kind) {
    case "url":
    case "tar":
      return { kind, name, url, fromVersion };
    case "build": {
      if (t.unpack !== undefined && typeof t.unpack !== "boolean") {
        ctx.fail(
          "manifest.type",
          [...path, "unpack"],
          `${keyText([...path, "unpack"])} must be true or false, got ${describe(t.unpack)}`,
          "write unpack = true, or leave it out",
        );
      }
      return { kind, name, url, unpack: t.unpack === true, fromVersion };
    }
    case "git": {
      if (t.ref !== undefined && t.version !== undefined) {
        ctx.fail(
          "manifest.direct-dep",
          path,
          `${keyText(path)} may have ref or version, not both`,
          "pin a branch or tag with ref, or a SemVer tag range with version",
        );
      }
      let ref: string | null = null;
      if (t.ref !== undefined) {
        ref = ctx.string(t.ref, [...path, "ref"], '"main"');
        if (ref === "")
          ctx.fail(
            "manifest.direct-dep",
            [...path, "ref"],
            `${keyText([...path, "ref"])} must not be empty`,
            "name a branch or tag, or leave ref out",
          );
        if (ref === "HEAD") ref = null;
      }
      const requirement =
        t.version === undefined ? null : requirementAt(ctx, ctx.string(t.version, [...path, "version"], '"^2"'), [...path, "version"]);
      return { kind, name, url, ref, requirement, fromVersion };
    }
  }
}

/** `file` is used only for messages (`where`). Mode defaults to "full". */
export function parseAtomManifest(text: string, file: string, mode: ManifestMode = "full"): AtomManifest {
  const doc = parseTomlFile(text, file, MANIFEST_SYNTAX);
  const ctx: TomlReader = manifestReader(text, file);
  if (mode === "evaluate" && doc.compose === undefined) mode = "publish";
  if (mode === "full") {
    ctx.onlyKeys(doc, [], TOP_KEYS, "atom.toml has only [package], [compose] and [deps]; remove or rename this table");
  }
  const pkg = readPackage(ctx, doc.package);
  if (mode === "publish") return { package: pkg, compose: null, depsFrom: {}, directNix: [] };
  const compose = readCompose(ctx, doc.compose, pkg);
  // A static atom evaluates to its manifest (§14): for evaluation its [deps] do not matter.
  if (mode === "evaluate" && compose.kind === "static") return { package: pkg, compose, depsFrom: {}, directNix: [] };
  const { depsFrom, directNix } = readDeps(ctx, doc.deps, pkg);
  if (compose.kind === "static" && (Object.keys(depsFrom).length > 0 || directNix.length > 0)) {
    ctx.fail(
      "manifest.static-deps",
      ["deps"],
      "a static atom ([compose.as] static) must not declare dependencies",
      "remove the [deps] tables, or compose the atom with nix or an atom composer",
    );
  }
  return { package: pkg, compose, depsFrom, directNix };
}
