/**
 * `cpr get`: install an atom's built package from a registry's binary cache, without evaluating
 * (docs/registry.md, "Installing"). A bare name is looked up in the registries' catalogues; a URI names the atom
 * exactly (its set root comes from ls-refs on the URI's mirror). The registry's resolve API gives the newest version
 * with a build for the system, and `nix-store --realise` substitutes its outputs with that registry as the only
 * substituter and the configured keys as the only trusted keys. Only nix-store runs: never nix-instantiate,
 * nix-build or nix.
 */
import { CprError } from "../protocol/errors.js";
import { atomId } from "../protocol/id.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import { parseAtomUri, type Aliases, type AtomUri } from "../protocol/uri.js";
import { listRemoteSet } from "../git/remote-set.js";
import { realise, type NixOptions } from "../nix/store.js";
import { uriLocation } from "../store/fetch.js";
import type { RegistryClient, ResolvedBuild, SetInfo } from "./client.js";

/** What `cpr get` was asked for. */
export type GetTarget =
  | { readonly kind: "name"; readonly label: string; readonly requirement: string }
  | { readonly kind: "uri"; readonly uri: AtomUri };

/** `NAME[@REQ]` or a URI (`URL::LABEL[@REQ]`). */
export function parseGetTarget(text: string, aliases?: Aliases): GetTarget {
  const uri = parseAtomUri(text.includes("::") ? text : `::${text}`, aliases);
  if (uri.url === null) return { kind: "name", label: uri.label, requirement: uri.requirement?.text ?? "*" };
  return { kind: "uri", uri };
}

/** An atom found in one or more registries. */
export interface Candidate {
  readonly id: string;
  readonly label: string;
  readonly set: string;
  readonly description: string | null;
  readonly versions: readonly string[];
  /** The registries that know it, in the order they were given. */
  readonly registries: readonly RegistryClient[];
}

/** The atoms labelled exactly `label` in the registries' catalogues, merged by AtomId. */
export async function findByName(clients: readonly RegistryClient[], label: string): Promise<Candidate[]> {
  const byId = new Map<string, Candidate>();
  const answers = await Promise.all(clients.map(async (c) => ({ c, results: await c.search(label) })));
  for (const { c, results } of answers) {
    for (const r of results) {
      if (r.label !== label) continue;
      const had = byId.get(r.id);
      byId.set(
        r.id,
        had
          ? { ...had, registries: [...had.registries, c] }
          : { id: r.id, label: r.label, set: r.set, description: r.description ?? null, versions: r.versions ?? [], registries: [c] },
      );
    }
  }
  return [...byId.values()];
}

/** The set's mirrors as the registries know them (empty when none says). */
export async function setMirrors(clients: readonly RegistryClient[], root: string): Promise<string[]> {
  for (const c of clients) {
    let sets: SetInfo[];
    try {
      sets = await c.sets();
    } catch {
      continue;
    }
    const s = sets.find((x) => x.root === root);
    if (s?.mirrors.length) return [...s.mirrors];
  }
  return [];
}

/** The atom a target names: its AtomId, set root, and the registries to ask. */
export interface Located {
  readonly id: string;
  readonly label: string;
  readonly set: string;
  readonly requirement: string;
  readonly registries: readonly RegistryClient[];
  /** The URI to build it from (the given one, or the set's first mirror). */
  readonly uri: AtomUri | null;
}

export interface LocateContext {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly reporter?: Reporter;
  readonly aliases?: Aliases;
}

export async function locate(ctx: LocateContext, clients: readonly RegistryClient[], target: GetTarget): Promise<Located> {
  if (clients.length === 0) {
    throw new CprError("get.no-registry", "no registry is configured", {
      hint: "pass --registry URL, or set config registry.urls or CPR_REGISTRY",
    });
  }
  if (target.kind === "uri") {
    const { uri } = target;
    const url = uriLocation(uri, ctx.cwd);
    const { listing } = await listRemoteSet(url, [uri.label], { env: ctx.env, reporter: ctx.reporter, cwd: ctx.cwd });
    if (listing.root === null)
      throw new CprError("get.not-initialized", `${url.url} is not an initialized atom set (it has no refs/ekala/init)`, {
        where: url.url,
      });
    if (!listing.atoms.some((a) => a.label === uri.label && a.format === "pre1")) {
      throw new CprError("get.no-atom", `${url.url} has no published atom '${uri.label}'`, {
        where: url.url,
        hint: `list the set's atoms with \`cpr ls ${url.url}\``,
      });
    }
    return {
      id: atomId(listing.root, uri.label),
      label: uri.label,
      set: listing.root,
      requirement: uri.requirement?.text ?? "*",
      registries: clients,
      uri,
    };
  }
  const found = await findByName(clients, target.label);
  const where = clients.map((c) => c.url).join(", ");
  if (found.length === 0) {
    throw new CprError(
      "get.not-found",
      `no atom labelled '${target.label}' in ${clients.length === 1 ? "the registry" : "the registries"} ${where}`,
      {
        hint: `search with \`cpr search ${target.label}\`, or name the atom with a URI (URL::${target.label})`,
      },
    );
  }
  if (found.length > 1) {
    const lines = await Promise.all(
      found.map(async (c) => {
        const mirrors = await setMirrors(c.registries, c.set);
        const m = mirrors[0];
        return `  ${c.label}  set ${c.set}  id ${c.id}${c.versions.length ? `  versions ${c.versions.join(", ")}` : ""}${m ? `  (${m}::${c.label})` : ""}`;
      }),
    );
    throw new CprError("get.ambiguous", `'${target.label}' names atoms of ${found.length} sets:\n${lines.join("\n")}`, {
      hint: `name one with a URI, e.g. \`cpr get URL::${target.label}\` with a mirror of its set`,
    });
  }
  const c = found[0]!;
  const mirrors = await setMirrors(c.registries, c.set);
  const uri = mirrors[0]
    ? parseAtomUri(`${mirrors[0]}::${c.label}${target.requirement === "*" ? "" : `@${target.requirement}`}`, ctx.aliases)
    : null;
  return { id: c.id, label: c.label, set: c.set, requirement: target.requirement, registries: c.registries, uri };
}

/** The newest build matching the requirement for `system`, from the first registry that has one. */
export async function resolveBuild(located: Located, system: string): Promise<{ build: ResolvedBuild; registry: RegistryClient } | null> {
  for (const registry of located.registries) {
    const build = await registry.resolve(located.id, located.requirement, system);
    if (build) return { build, registry };
  }
  return null;
}

/** The error for "no build known", suggesting --build. */
export function noBuildError(located: Located, system: string): CprError {
  const req = located.requirement === "*" ? "" : ` ${located.requirement}`;
  return new CprError(
    "get.no-build",
    `no build of ${located.label}${req} for ${system} is known to ${located.registries.map((r) => r.url).join(", ")}`,
    {
      hint: "build it locally with --build (and share it with --push URL --token T)",
    },
  );
}

/**
 * Why there is no build: the atom is not in any registry's catalogue (the registries do not index its set), or it
 * is, and no version matching the requirement has a build for `system`.
 */
export async function explainNoBuild(located: Located, system: string): Promise<CprError> {
  const known = await Promise.all(located.registries.map((r) => r.atom(located.id).catch(() => undefined)));
  if (known.every((a) => a === null)) {
    const where = located.registries.map((r) => r.url).join(", ");
    return new CprError(
      "get.not-indexed",
      `${located.label} (set ${located.set}) is not in the catalogue of ${where}: no build of it can be known there`,
      {
        where,
        hint: "a registry indexes the sets it was started with (cpr serve --set URL, config registry.sets); or build it locally with --build",
      },
    );
  }
  return noBuildError(located, system);
}

export interface InstallOptions {
  /** Trusted public keys (`name:base64`); the only ones Nix will accept. */
  readonly keys: readonly string[];
  /** Out-link (a GC root), or null for none. */
  readonly outLink: string | null;
  readonly nix?: NixOptions;
  readonly reporter?: Reporter;
}

/** Realises a build's outputs from the registry's binary cache, with no evaluation. Returns the store paths. */
export async function install(build: ResolvedBuild, registry: RegistryClient, opts: InstallOptions): Promise<string[]> {
  if (opts.keys.length === 0) {
    throw new CprError("get.no-keys", `no trusted key for ${registry.url}: Nix would refuse every path it serves`, {
      hint: "pass --key NAME:BASE64 (the server prints it with `cpr registry key`), or set config registry.keys or CPR_REGISTRY_KEYS",
    });
  }
  const outputs = orderedOutputs(build.outputs);
  (opts.reporter ?? silentReporter).info(`installing ${build.label} ${build.version} (${build.system}) from ${registry.url}`);
  try {
    await realise(outputs, { ...opts.nix, substituters: [registry.url], trustedKeys: opts.keys, outLink: opts.outLink ?? undefined });
  } catch (e) {
    // Nix 2.8 says this as a warning, then fails the "build" of the path: say what it means.
    if (e instanceof CprError && /is not signed by any of the keys/.test(e.message)) {
      throw new CprError(
        "get.untrusted",
        `Nix refused ${outputs.join(" ")} from ${registry.url}: it is not signed by any trusted key (${opts.keys.join(", ")})`,
        {
          where: registry.url,
          hint: "trust the registry's own key (`cpr registry key` on the server prints it): --key, config registry.keys or CPR_REGISTRY_KEYS",
          cause: e,
        },
      );
    }
    throw e;
  }
  return outputs;
}

/** Output paths, `out` first, then by name. */
export function orderedOutputs(outputs: Readonly<Record<string, string>>): string[] {
  return Object.keys(outputs)
    .sort((a, b) => (a === "out" ? -1 : b === "out" ? 1 : a < b ? -1 : a > b ? 1 : 0))
    .map((k) => outputs[k]!);
}

// ── installing several targets (cpr run, cpr shell) ──

export interface InstallTargetsOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly reporter?: Reporter;
  readonly aliases?: Aliases;
  /** The registries to ask, in order. */
  readonly clients: readonly RegistryClient[];
  /** Trusted public keys (`name:base64`). */
  readonly keys: readonly string[];
  readonly system: string;
  readonly nix?: NixOptions;
  /** A GC root for every output: `outLink`, `outLink-2`, … as nix-store --add-root names them; null: none. */
  readonly outLink: string | null;
  /** Build locally what no registry has built (as `cpr get --build`); this evaluates. */
  readonly build?: boolean;
  /** The cache directory, for local builds. */
  readonly cacheDir?: string;
}

/** One installed atom: its build and its output paths (`out` first). */
export interface InstalledAtom {
  readonly label: string;
  readonly version: string;
  readonly id: string;
  readonly set: string;
  readonly rev: string;
  readonly system: string;
  readonly drv: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** The registry it was substituted from, or null when built here. */
  readonly registry: string | null;
  readonly built: boolean;
  readonly paths: readonly string[];
  /** `meta.mainProgram` of its derivation, when its build record says (the program `cpr run` runs). */
  readonly mainProgram: string | null;
}

/**
 * Install several targets together, as `cpr get` installs one: each is located and its newest build found, then
 * the outputs of every build are realised with ONE nix-store --realise per registry (the registry the only
 * substituter, the keys the only trusted ones: no evaluation). What no registry has built is an error naming them
 * all, unless `build` allows building it here.
 */
export async function installTargets(opts: InstallTargetsOptions, targets: readonly GetTarget[]): Promise<InstalledAtom[]> {
  const ctx = { cwd: opts.cwd, env: opts.env, reporter: opts.reporter, aliases: opts.aliases };
  const located = await Promise.all(targets.map((t) => locate(ctx, opts.clients, t)));
  const found = await Promise.all(located.map((l) => resolveBuild(l, opts.system)));
  const missing = located.filter((_, i) => found[i] === null);
  if (missing.length > 0 && !opts.build) {
    const errors = await Promise.all(missing.map((l) => explainNoBuild(l, opts.system)));
    if (errors.length === 1) throw errors[0]!;
    throw new CprError(
      "get.no-build",
      `no build is known for ${missing.length} of the atoms:\n${errors.map((e) => `  ${e.message}`).join("\n")}`,
      {
        hint: "build them locally with --build",
      },
    );
  }
  // One realisation per registry, every output of its builds at once.
  const byRegistry = new Map<RegistryClient, ResolvedBuild[]>();
  for (const f of found) if (f) byRegistry.set(f.registry, [...(byRegistry.get(f.registry) ?? []), f.build]);
  let n = 0;
  const link = (): string | null => (opts.outLink === null ? null : n++ === 0 ? opts.outLink : `${opts.outLink}-${n}`);
  for (const [registry, builds] of byRegistry) {
    const merged: Record<string, string> = {};
    builds.forEach((b, i) => Object.entries(b.outputs).forEach(([k, p]) => (merged[`${i}:${k}`] = p)));
    const first = builds[0]!;
    await install({ ...first, label: builds.map((b) => b.label).join(", "), outputs: merged }, registry, {
      keys: opts.keys,
      outLink: link(),
      ...(opts.nix ? { nix: opts.nix } : {}),
      ...(opts.reporter ? { reporter: opts.reporter } : {}),
    });
  }
  const out: InstalledAtom[] = [];
  for (let i = 0; i < located.length; i++) {
    const f = found[i];
    if (f) {
      const b = f.build;
      out.push({
        ...pick(b),
        registry: f.registry.url,
        built: false,
        paths: orderedOutputs(b.outputs),
        mainProgram: b.mainProgram ?? null,
      });
      continue;
    }
    const l = located[i]!;
    if (!l.uri)
      throw new CprError("get.no-build", `no build of ${l.label} is known and no mirror of its set is known to build from`, {
        hint: "name the atom with a URI (URL::LABEL)",
      });
    (opts.reporter ?? silentReporter).info(`no build of ${l.label} for ${opts.system} is known; building it locally`);
    const { Cache } = await import("../git/cache.js");
    const { buildAtom } = await import("../build/build.js");
    const cache = await Cache.open({ dir: opts.cacheDir!, env: opts.env });
    try {
      const built = await buildAtom(
        { cache, cwd: opts.cwd, env: opts.env ?? process.env, reporter: opts.reporter, system: opts.system, nix: opts.nix },
        l.uri,
      );
      const paths = orderedOutputs(built.outputs);
      const root = link();
      if (root) await realise(paths, { ...opts.nix, outLink: root });
      out.push({ ...pick(built), registry: null, built: true, paths, mainProgram: built.mainProgram });
    } finally {
      cache.close();
    }
  }
  return out;
}

type Picked = Omit<InstalledAtom, "registry" | "built" | "paths" | "mainProgram">;

function pick(b: Picked): Picked {
  return { label: b.label, version: b.version, id: b.id, set: b.set, rev: b.rev, system: b.system, drv: b.drv, outputs: b.outputs };
}

/**
 * The program `cpr run` executes in an installed atom: `name` when given (`--bin`), else `meta.mainProgram` when its
 * build record carries one, else the only entry of the first output that has a `bin/` directory (`out` first). `root` maps a store path to where its files are (a chroot
 * store). No `bin/`, or several programs, is an error listing what there is.
 */
export async function findProgram(atom: InstalledAtom, root: (storePath: string) => string, name?: string): Promise<string> {
  const { readdir } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const listings: { path: string; entries: string[] }[] = [];
  for (const p of atom.paths) {
    const entries = await readdir(join(root(p), "bin")).catch(() => null);
    if (entries !== null) listings.push({ path: p, entries: entries.sort() });
  }
  const what = `${atom.label} ${atom.version}`;
  name ??= atom.mainProgram ?? undefined;
  if (name !== undefined) {
    const hit = listings.find((l) => l.entries.includes(name));
    if (hit) return join(root(hit.path), "bin", name);
    throw new CprError("run.no-program", `${what} has no program '${name}' in bin/`, {
      where: atom.paths.join(" "),
      hint: listings.length ? `its programs: ${listings.flatMap((l) => l.entries).join(", ")}` : "it has no bin/ directory at all",
    });
  }
  const first = listings[0];
  if (!first || first.entries.length === 0) {
    throw new CprError("run.no-program", `${what} has no program to run: no output has a non-empty bin/ directory`, {
      where: atom.paths.join(" "),
      hint: "it may be a library or data; `cpr get` installs it, `cpr shell` puts what it has on PATH",
    });
  }
  if (first.entries.length > 1) {
    throw new CprError("run.ambiguous", `${what} has several programs in ${first.path}/bin: ${first.entries.join(", ")}`, {
      where: `${first.path}/bin`,
      hint: `choose one with --bin NAME, e.g. --bin ${first.entries[0]!}`,
    });
  }
  return join(root(first.path), "bin", first.entries[0]!);
}
