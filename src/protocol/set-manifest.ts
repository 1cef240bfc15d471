import { manifestReader, MANIFEST_SYNTAX, normalizeRelativePath } from "./atom-manifest.js";
import { parseTomlFile, tomlBasicString, type TomlReader } from "./toml.js";

/**
 * `ekala.toml` (docs/formats.md §6.2): the set's list of atom directories and its tags. Read with the manifest reader
 * of atom-manifest.ts, so errors are `manifest.*` CprErrors at `<file>:<line>:<col>`.
 */

export interface SetManifest {
  /** Relative atom directories, normalised (no `./`, no trailing `/`), unique, never escaping or the root. */
  readonly packages: readonly string[];
  readonly tags: readonly string[];
}

/** Parse `ekala.toml`. Label uniqueness across the listed atoms needs their files and is checked by the caller. */
export function parseSetManifest(text: string, file: string): SetManifest {
  const doc = parseTomlFile(text, file, MANIFEST_SYNTAX);
  const ctx: TomlReader = manifestReader(text, file);
  ctx.onlyKeys(doc, [], ["set", "metadata"], "ekala.toml has only [set] and [metadata]; remove or rename this table");
  if (doc.set === undefined)
    ctx.fail("manifest.missing", [], `${file} has no [set] table`, "add [set] with packages = [ ... ] listing the atom directories");
  const set = ctx.table(doc.set, ["set"]);
  ctx.onlyKeys(set, ["set"], ["packages"]);
  if (set.packages === undefined)
    ctx.fail("manifest.missing", ["set"], "[set].packages is missing", 'add packages = ["path/to/atom"] to [set]');

  const path = ["set", "packages"];
  const packages: string[] = [];
  const seen = new Map<string, string>();
  for (const raw of ctx.strings(set.packages, path, '["foo", "tools/lint"]')) {
    const n = normalizeRelativePath(raw);
    if (!n.ok) {
      const why = n.reason === "absolute" ? "must be relative to the repository root" : "escapes the repository";
      ctx.fail(
        "manifest.bad-path",
        path,
        `[set].packages entry ${JSON.stringify(raw)} ${why}`,
        'list atom directories relative to the repository root, e.g. "tools/lint"',
        raw,
      );
    }
    if (n.path === "") {
      ctx.fail(
        "manifest.bad-path",
        path,
        `[set].packages entry ${JSON.stringify(raw)} is the repository root, which cannot be an atom`,
        "move the atom into a subdirectory and list that",
        raw,
      );
    }
    const first = seen.get(n.path);
    if (first !== undefined) {
      ctx.fail(
        "manifest.duplicate",
        path,
        `[set].packages lists ${JSON.stringify(n.path)} twice (${JSON.stringify(first)} and ${JSON.stringify(raw)})`,
        "list each atom directory once",
        raw,
      );
    }
    seen.set(n.path, raw);
    packages.push(n.path);
  }

  let tags: string[] = [];
  if (doc.metadata !== undefined) {
    const meta = ctx.table(doc.metadata, ["metadata"]);
    if (meta.tags !== undefined) {
      const p = ["metadata", "tags"];
      tags = ctx.strings(meta.tags, p, '["example"]').map((t) => ctx.label(t, "tag", p, "[metadata].tags entry", t));
    }
  }
  return { packages, tags };
}

/**
 * Writes ekala.toml (docs/formats.md §6.2): packages one per line, indented two spaces, each with a trailing comma; an empty list
 * is `[]`. Tags stay on one line when there are at most one, else they are written like packages.
 * A new set gives exactly `[set]\npackages = []\n\n[metadata]\ntags = []\n`.
 */
export function formatSetManifest(m: SetManifest): string {
  const multiline = (items: readonly string[]) => `[\n${items.map((s) => `  ${tomlBasicString(s)},\n`).join("")}]`;
  const packages = m.packages.length === 0 ? "[]" : multiline(m.packages);
  const tags = m.tags.length <= 1 ? `[${m.tags.map(tomlBasicString).join("")}]` : multiline(m.tags);
  return `[set]\npackages = ${packages}\n\n[metadata]\ntags = ${tags}\n`;
}
