/**
 * What `cpr graft` and `cpr get --with/--graft` share (commands never import each other): reading the options,
 * asking the registry (or grafting locally), installing the grafted outputs, and telling the user what was grafted
 * onto what, every rewritten path and every warning (docs/grafts.md, "Commands").
 */
import { lstat, readFile, readlink } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { flag, str, strs, type Context, type ParsedArgs } from "./command.js";
import { loadConfig } from "../config/config.js";
import { CprError, UsageError } from "../protocol/errors.js";
import { parsePublicKey, parseSecretKey, type SecretKey } from "../protocol/nix-key.js";
import { parseRequirement } from "../protocol/requirement.js";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import { judge, type Violation } from "../protocol/graft-safety.js";
import { hostSystem, type NixOptions } from "../nix/store.js";
import type { GraftAnswer, RegistryClient, ResolvedBuild } from "../registry/client.js";
import { explainNoBuild, locate, parseGetTarget, resolveBuild, type Located } from "../registry/get.js";
import {
  dependencyId,
  describeGraft,
  installedGraft,
  installGraft,
  parseReplaceArg,
  recordInstalled,
  refusedError,
  requestGraft,
  type InstalledGraft,
  type ReplaceArg,
} from "../registry/graft.js";
import { graftLocally } from "../registry/graft-local.js";
import { nixStderr, registryClients, registrySettings } from "./shared.js";

/** Options both verbs take for grafting. */
export const graftOptions = {
  registry: { type: "string", multiple: true },
  key: { type: "string", multiple: true },
  system: { type: "string" },
  "out-link": { type: "string" },
  "no-out-link": { type: "boolean" },
  store: { type: "string" },
  token: { type: "string" },
  local: { type: "boolean" },
  "sign-key": { type: "string" },
  alias: { type: "boolean" },
  force: { type: "boolean" },
  "allow-incompatible": { type: "boolean" },
  "dry-run": { type: "boolean" },
} as const;

export interface GraftSetup {
  readonly clients: RegistryClient[];
  readonly keys: readonly string[];
  readonly token: string | null;
  readonly system: string;
  readonly outLink: string | null;
  readonly nix: NixOptions;
  readonly cacheDir: string;
  readonly located: Located;
  readonly build: ResolvedBuild;
  readonly registry: RegistryClient;
}

/** Reads the common options, locates the atom and its newest build for the system. */
export async function setUp(ctx: Context, args: ParsedArgs, text: string): Promise<GraftSetup> {
  if (str(args, "out-link") !== undefined && flag(args, "no-out-link"))
    throw new UsageError("--out-link and --no-out-link exclude each other");
  const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
  const settings = registrySettings(config);
  const urls = strs(args, "registry").length ? strs(args, "registry") : settings.urls;
  const keys = strs(args, "key").length ? strs(args, "key") : settings.keys;
  const token = str(args, "token") ?? settings.token;
  if (urls.length === 0)
    throw new UsageError("no registry is configured", { hint: "pass --registry URL, or set config registry.urls or CPR_REGISTRY" });
  for (const k of keys) {
    try {
      parsePublicKey(k);
    } catch (e) {
      if (e instanceof CprError) throw new UsageError(`--key (or config registry.keys, CPR_REGISTRY_KEYS): ${e.message}`, { hint: e.hint });
      throw e;
    }
  }
  const outLink = flag(args, "no-out-link") || flag(args, "dry-run") ? null : resolve(ctx.cwd, str(args, "out-link") ?? "result");
  const existing = outLink === null ? null : await lstat(outLink).catch(() => null);
  if (existing && !existing.isSymbolicLink()) {
    throw new CprError("get.out-link", `${outLink} exists and is not an out-link (a symlink): cpr will not replace it`, {
      where: outLink ?? undefined,
      hint: "remove it, or pass --out-link PATH or --no-out-link",
    });
  }
  const system = str(args, "system") ?? hostSystem();
  const store = str(args, "store");
  const nix: NixOptions = {
    env: ctx.env,
    store: store === undefined ? undefined : /^[a-z+]+:\/\//.test(store) || !store.includes("/") ? store : resolve(ctx.cwd, store),
    onStderr: nixStderr(args),
  };
  const clients = registryClients(urls, token, "--registry (or config registry.urls, CPR_REGISTRY)");
  const target = parseGetTarget(text, config.aliases);
  if (target.kind === "name") parseRequirement(target.requirement);
  const located = await locate({ cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, aliases: config.aliases }, clients, target);
  const found = await resolveBuild(located, system);
  if (!found) throw await explainNoBuild(located, system);
  return {
    clients,
    keys,
    token,
    system,
    outLink,
    nix,
    cacheDir: config.cacheDir,
    located,
    build: found.build,
    registry: found.registry,
  };
}

export function replaceArgs(args: ParsedArgs, option: "replace" | "with"): ReplaceArg[] {
  const out = strs(args, option).map((t) => parseReplaceArg(t, `--${option}`));
  const labels = out.map((r) => r.label);
  if (new Set(labels).size !== labels.length) throw new UsageError(`--${option} names one dependency twice`);
  return out;
}

function flagsOf(args: ParsedArgs) {
  return { allowIncompatible: flag(args, "allow-incompatible"), alias: flag(args, "alias"), force: flag(args, "force") };
}

/** The --json document of a graft (the registry's answer, plus what was installed). */
function graftJson(a: GraftAnswer | LocalAnswer, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    atom: a.atom,
    replacements: a.replacements,
    algorithm: a.algorithm,
    graftId: a.graftId,
    dryRun: a.dryRun,
    outputs: a.outputs,
    paths: a.paths,
    aliases: a.aliases,
    members: a.members,
    refusals: a.refusals,
    warnings: a.warnings.map((w) => ({ code: w.code, message: w.message, override: w.override })),
    ...extra,
  };
}

type LocalAnswer = Awaited<ReturnType<typeof graftLocally>>;

/**
 * Grafts (registry or --local) and installs: the common end of `cpr graft` and `cpr get --with`. `cpr graft
 * --local` grafts on this machine at once (`localFirst`); otherwise a recorded graft is used when there is one (its
 * overridden rules need the same flags); else the registry is asked (with a token); else, with --local, this
 * machine grafts.
 */
export async function graftAndInstall(
  ctx: Context,
  args: ParsedArgs,
  s: GraftSetup,
  replaces: readonly ReplaceArg[],
  opts: { readonly localFirst: boolean },
): Promise<number> {
  const json = flag(args, "json");
  const dryRun = flag(args, "dry-run");
  const flags = flagsOf(args);
  const tell = (a: GraftAnswer | LocalAnswer) => {
    if (json) return;
    for (const line of describeGraft(a)) ctx.term.info(line);
  };

  const signKeyFile = str(args, "sign-key");
  if (signKeyFile !== undefined && !flag(args, "local")) throw new UsageError("--sign-key is used with --local");
  const local = async (): Promise<number> => {
    let signingKey: SecretKey | undefined;
    if (signKeyFile !== undefined) {
      const file = resolve(ctx.cwd, signKeyFile);
      const text = await readFile(file, "utf8").catch((e: Error) => {
        throw new UsageError(`--sign-key: cannot read ${file}: ${e.message}`);
      });
      signingKey = parseSecretKey(text.trim(), file);
    }
    const a = await graftLocally(s.registry, s.located, s.build, replaces, {
      signingKey,
      ...flags,
      dryRun,
      nix: s.nix,
      reporter: ctx.term,
      outLink: s.outLink,
      keys: s.keys,
    });
    if (a.refusals.length) throw refusedError(a, graftJson(a, { local: true }));
    tell(a);
    for (const w of a.warnings) ctx.term.warn("graft.overridden", w.message);
    if (!dryRun) {
      await recordInstalled(s.cacheDir, { ...a, registry: s.registry.url, graftId: null, local: true });
      if (!json) for (const p of Object.values(a.outputs)) ctx.term.out(p);
    } else if (!json) ctx.term.info("dry run: nothing was written");
    if (json) ctx.term.json(graftJson(a, { local: true, registry: s.registry.url, outLink: s.outLink, import: a.importedWith }));
    return 0;
  };
  if (flag(args, "local") && (opts.localFirst || dryRun)) return local();

  // A recorded graft needs no token.
  const withs = [];
  for (const r of replaces) withs.push({ id: await dependencyId(s.registry, s.located, r.label), version: r.version });
  if (!dryRun) {
    const recorded = await s.registry.resolveGraft(s.located.id, `=${s.build.version}`, s.system, withs);
    if (recorded) {
      const g = recorded.graft;
      const a = {
        atom: g.atom,
        replacements: g.replacements,
        paths: g.paths,
        aliases: [],
        warnings: g.warnings.map((w) => ({ code: w.code, message: w.message, hint: "", override: w.override ?? null })),
      };
      // A rule the record was made with overridden needs the same flag now, as the registry would answer.
      const verdict = judge(a.warnings as Violation[], flags);
      if (verdict.refusals.length)
        throw refusedError(
          { atom: g.atom, refusals: verdict.refusals.map((v) => ({ ...v, hint: `the recorded graft was made with --${v.override}` })) },
          { recorded: true, graftId: g.graftId, paths: g.paths },
        );
      if (!json) for (const line of describeGraft(a)) ctx.term.info(line);
      const paths = await installGraft({ atom: g.atom, outputs: g.outputs }, recorded, s.registry, {
        keys: s.keys,
        outLink: s.outLink,
        nix: s.nix,
        reporter: ctx.term,
      });
      await recordInstalled(s.cacheDir, { ...g, registry: s.registry.url, local: false });
      if (json) {
        ctx.term.json({
          atom: g.atom,
          replacements: g.replacements,
          algorithm: g.algorithm,
          graftId: g.graftId,
          dryRun: false,
          outputs: g.outputs,
          paths: g.paths,
          warnings: g.warnings,
          recorded: true,
          registry: s.registry.url,
          outLink: s.outLink,
        });
      } else for (const p of paths) ctx.term.out(p);
      return 0;
    }
    if (!s.token) {
      if (flag(args, "local")) return local();
      throw new CprError(
        "graft.not-found",
        `${s.registry.url} has no recorded graft of ${s.build.label} ${s.build.version} onto ${replaces.map((r) => `${r.label} ${r.version}`).join(", ")}`,
        {
          where: s.registry.url,
          hint: "pass --token T (a write token for the atom's set) to have the registry make it, or --local to graft on this machine",
        },
      );
    }
  }
  const a = await requestGraft(s.registry, s.located, s.build, replaces, { ...flags, dryRun });
  if (a.status === 422) throw refusedError(a, graftJson(a, { registry: s.registry.url }));
  tell(a);
  for (const w of a.warnings) ctx.term.warn("graft.overridden", w.message);
  if (dryRun) {
    if (json) ctx.term.json(graftJson(a, { registry: s.registry.url }));
    else ctx.term.info("dry run: nothing was written");
    return 0;
  }
  const paths = await installGraft(a, s.build, s.registry, { keys: s.keys, outLink: s.outLink, nix: s.nix, reporter: ctx.term });
  await recordInstalled(s.cacheDir, { ...a, registry: s.registry.url, local: false });
  if (json) ctx.term.json(graftJson(a, { registry: s.registry.url, outLink: s.outLink, created: a.status === 201 }));
  else {
    for (const p of paths) ctx.term.out(p);
    if (s.outLink) ctx.term.info(`out-link ${s.outLink}`);
  }
  return 0;
}

/**
 * `cpr get --graft` (or config graft.auto): for each dependency the atom's manifest names, the newest version with a
 * build that the automatic rules allow (asked as dry runs of the registry, newest first); then one graft onto all of
 * them. Returns the replacements chosen (empty: nothing newer is allowed, the build is installed as it is).
 */
export async function automaticReplacements(ctx: Context, s: GraftSetup): Promise<ReplaceArg[]> {
  const atom = await s.registry.atom(s.located.id);
  const manifestText = atom?.versions.find((v) => v.version === s.build.version)?.manifest;
  if (!manifestText) return [];
  let labels: string[];
  try {
    const m = parseAtomManifest(manifestText, "atom.toml", "evaluate");
    labels = [...new Set(Object.values(m.depsFrom).flatMap((deps) => Object.keys(deps)))].sort();
  } catch {
    return [];
  }
  const chosen: ReplaceArg[] = [];
  for (const label of labels) {
    let depId: string;
    try {
      depId = await dependencyId(s.registry, s.located, label);
    } catch {
      continue;
    }
    const dep = await s.registry.atom(depId);
    for (const v of dep?.versions ?? []) {
      const a = await requestGraft(s.registry, s.located, s.build, [{ label, version: v.version }], { dryRun: true });
      if (a.status === 200 && a.refusals.length === 0) {
        chosen.push({ label, version: v.version });
        ctx.term.info(`${label}: grafting onto ${v.version}, the newest built version the rules allow`);
        break;
      }
      // Already on this version (the newest allowed): nothing to do for this dependency.
      if (a.refusals.some((r) => r.code === "graft.not-runtime" && /already uses/.test(r.message))) {
        ctx.term.info(`${label}: ${v.version} already, the newest built version the rules allow`);
        break;
      }
    }
  }
  return chosen;
}

/** The store path an out-link (or a store path) names, and the local record of the graft it is, for tree and why. */
export async function installedOf(ctx: Context, text: string): Promise<{ path: string; graft: InstalledGraft | null }> {
  const file = resolve(ctx.cwd, text);
  let path = text.startsWith("/nix/store/") ? text : file;
  try {
    const target = await readlink(file);
    path = resolve(dirname(file), target);
  } catch {
    /* not a symlink: a store path given as is */
  }
  path = path.replace(/\/+$/, "");
  if (!path.startsWith("/nix/store/"))
    throw new UsageError(`--installed takes an out-link or a store path, got ${JSON.stringify(text)}`, {
      hint: "e.g. --installed ./result",
    });
  const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
  return { path, graft: await installedGraft(config.cacheDir, path.split("/").slice(0, 4).join("/")) };
}

/** "y 3.3.0 (graft; built against 3.2.0)" */
export function graftedDepText(r: InstalledGraft["replacements"][number]): string {
  return `${r.label} ${r.to} (graft; built against ${r.from})`;
}
