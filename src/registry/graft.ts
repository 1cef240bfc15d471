/**
 * The client side of grafts (docs/grafts.md, "Commands"): `cpr graft` and `cpr get --with/--graft`.
 *
 * - Registry mode: the registry computes the graft (POST /api/v1/grafts) from the NARs it stores and signs the
 *   result; the client realises the grafted outputs from it as `cpr get` does (the registry the only substituter,
 *   its key the only trusted one).
 * - Local mode (`--local`): this machine grafts from its own store: the closure is realised from the registry first,
 *   the rules are checked with what the registry records (atoms, versions, manifests, build outputs), each member is
 *   rewritten from `nix-store --dump`, and the result added to the store: `nix-store --import` (root or trusted
 *   users), or, for a user the daemon does not trust, content-addressed paths copied from a local binary cache
 *   directory (`nix copy --no-recursive --from file://DIR`), which need no signature.
 *
 * What was installed is recorded under the cache (`grafts/<hash part>.json`, src/config/paths.ts), so that
 * `cpr tree --installed` and `cpr why --installed` can say "y 3.3.0 (graft; built against 3.2.0)".
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { CprError, UsageError } from "../protocol/errors.js";
import { GraftRefused, type Violation } from "../protocol/graft-safety.js";
import type { Reporter } from "../protocol/report.js";
import { parseStorePath } from "../protocol/store-path.js";
import { tryParseVersion } from "../protocol/version.js";
import { cacheLayout } from "../config/paths.js";
import type { NixOptions } from "../nix/store.js";
import type { GraftAnswer, GraftReason, RegistryClient, ResolvedBuild } from "./client.js";
import { findByName, install, type Located } from "./get.js";

/** `DEP@VERSION` of `--replace` and `--with`. */
export interface ReplaceArg {
  readonly label: string;
  readonly version: string;
}

export function parseReplaceArg(text: string, option: string): ReplaceArg {
  const m = /^([^@\s]+)@=?(.+)$/.exec(text.trim());
  const v = m ? tryParseVersion(m[2]!) : null;
  if (!m || !v)
    throw new UsageError(`${option} takes DEP@VERSION with an exact version, got ${JSON.stringify(text)}`, {
      hint: `e.g. ${option} y@3.3.0`,
    });
  return { label: m[1]!, version: v.text };
}

/** The AtomId of a dependency named by label: the one in X's set when several sets have the label. */
export async function dependencyId(registry: RegistryClient, x: Located, label: string): Promise<string> {
  const found = (await findByName([registry], label)).filter((c) => c.registries.includes(registry));
  const same = found.filter((c) => c.set === x.set);
  const pick = same.length === 1 ? same[0] : found.length === 1 ? found[0] : undefined;
  if (!pick) {
    throw new CprError(
      found.length === 0 ? "graft.unknown" : "get.ambiguous",
      found.length === 0
        ? `no atom labelled '${label}' in the registry ${registry.url}`
        : `'${label}' names atoms of ${found.length} sets in ${registry.url}, none of them ${x.label}'s`,
      { where: registry.url, hint: "the dependency must be in the registry's catalogue" },
    );
  }
  return pick.id;
}

export interface GraftFlagsArg {
  readonly allowIncompatible?: boolean;
  readonly alias?: boolean;
  readonly force?: boolean;
}

/** Asks the registry for a graft (or, dryRun, for its plan and report). A refusal is returned, not thrown. */
export async function requestGraft(
  registry: RegistryClient,
  x: Located,
  xBuild: ResolvedBuild,
  replaces: readonly ReplaceArg[],
  flags: GraftFlagsArg & { readonly dryRun?: boolean },
): Promise<GraftAnswer> {
  const replace = [];
  for (const r of replaces) replace.push({ id: await dependencyId(registry, x, r.label), version: r.version });
  return registry.graft({
    id: x.id,
    version: xBuild.version,
    system: xBuild.system,
    replace,
    allowIncompatible: flags.allowIncompatible === true,
    alias: flags.alias === true,
    force: flags.force === true,
    dryRun: flags.dryRun === true,
  });
}

/** What the messages about a graft need (a registry answer, a record, or a local graft). */
export interface GraftSummary {
  readonly atom: { readonly label: string; readonly version: string; readonly system: string };
  readonly replacements: readonly { readonly label: string; readonly from: string; readonly to: string }[];
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  readonly aliases?: readonly { readonly path: string; readonly target: string; readonly replaces: string }[];
  readonly warnings: readonly { readonly message: string }[];
  readonly refusals?: readonly GraftReason[];
}

/** The error for a refused graft, every reason listed (its --json form carries them, and `details`). */
export function refusedError(
  answer: Pick<GraftSummary, "atom"> & { readonly refusals: readonly GraftReason[] },
  details: Readonly<Record<string, unknown>> = {},
): GraftRefused {
  return new GraftRefused(`${answer.atom.label} ${answer.atom.version}`, answer.refusals as readonly Violation[], details);
}

/** What is recorded locally about an installed graft (cache `grafts/<hash part>.json`). */
export interface InstalledGraft {
  readonly atom: { readonly id: string; readonly label: string; readonly version: string; readonly system: string };
  readonly replacements: readonly { readonly id: string; readonly label: string; readonly from: string; readonly to: string }[];
  readonly outputs: Readonly<Record<string, string>>;
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  readonly registry: string | null;
  readonly graftId: number | null;
  readonly local: boolean;
}

/** Records an installed graft under the cache, one file per output (temp + rename). */
export async function recordInstalled(cacheRoot: string, g: InstalledGraft): Promise<void> {
  const layout = cacheLayout(cacheRoot);
  for (const p of Object.values(g.outputs)) {
    const file = layout.graft(parseStorePath(p).hash);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(g, null, 2) + "\n");
    await rename(tmp, file);
  }
}

/** The local record of the graft a store path (an output) is, or null. */
export async function installedGraft(cacheRoot: string, storePath: string): Promise<InstalledGraft | null> {
  let text: string;
  try {
    text = await readFile(cacheLayout(cacheRoot).graft(parseStorePath(storePath).hash), "utf8");
  } catch {
    return null;
  }
  try {
    return JSON.parse(text) as InstalledGraft;
  } catch {
    return null;
  }
}

/** Realises a registry graft's outputs as `cpr get` installs a build. */
export async function installGraft(
  answer: Pick<GraftAnswer, "atom" | "outputs">,
  build: ResolvedBuild,
  registry: RegistryClient,
  opts: { keys: readonly string[]; outLink: string | null; nix?: NixOptions; reporter?: Reporter },
): Promise<string[]> {
  return install({ ...build, outputs: answer.outputs }, registry, opts);
}

/** Human lines for what a graft did (shared by cpr graft and cpr get --with). */
export function describeGraft(a: GraftSummary): string[] {
  const lines: string[] = [];
  const onto = a.replacements.map((r) => `${r.label} ${r.to} (built against ${r.from})`).join(", ");
  lines.push(`grafted ${a.atom.label} ${a.atom.version} (${a.atom.system}) onto ${onto}`);
  for (const p of a.paths) lines.push(`  ${p.old} → ${p.new}`);
  for (const al of a.aliases ?? []) lines.push(`  alias ${al.path} → ${al.target} (stands for ${al.replaces})`);
  for (const w of a.warnings) lines.push(`warning: ${w.message}`);
  return lines;
}
