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
