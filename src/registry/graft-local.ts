/**
 * A graft made on this machine (`cpr graft --local`, `cpr get --with … --local`; docs/grafts.md, "Local grafts"):
 * the closure and the new dependency are realised from the registry, the rules are checked with what the registry
 * records (build outputs per version, X's manifest), each member is rewritten from `nix-store --dump` into a
 * temporary directory (with the residue scan), and only when nothing refuses is the result added to the store:
 *
 * - `import` (root, or any user of a store opened directly): `nix-store --import` of the export format, the graft
 *   paths exactly as the registry would address them (cpr-graft-v1);
 * - `signed` (`--sign-key FILE`, a key the Nix daemon trusts): the graft paths as the registry would address them,
 *   their narinfos signed with that key, in a local binary cache directory added with `nix copy --no-recursive
 *   --from file://DIR`;
 * - `ca` (a user the Nix daemon does not trust): content-addressed paths, as `nix store make-content-addressed`
 *   gives them, written to a local binary cache directory and added with `nix copy --no-recursive --from
 *   file://DIR`, which needs no signature. Their paths differ from the registry's graft paths.
 *
 * Indirect requirements and the one-version-per-atom rule are checked by the registry only: locally, X's own
 * requirement on each replaced atom is checked.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { CprError } from "../protocol/errors.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import { aliasPath, GRAFT_TYPE, planGraft, symlinkNar, type GraftPlan } from "../protocol/graft.js";
import { checkGraft, checkResidue, judge, requirementOn, type ReplacementFacts, type Violation } from "../protocol/graft-safety.js";
import { formatNarInfo, narInfoFingerprint } from "../protocol/narinfo.js";
import { signDetached, type SecretKey } from "../protocol/nix-key.js";
import { toNix32Hash } from "../protocol/nix-hash.js";
import { parseStorePath } from "../protocol/store-path.js";
import { copyFromCacheDir, dumpNar, importPaths, pathInfo, type NixOptions, type PathInfo } from "../nix/store.js";
import { exportPaths } from "../nix/nar-export.js";
import { contentAddress } from "../graft/content-addressed.js";
import { residueOf, writeGraft } from "../graft/engine.js";
import { createHash } from "node:crypto";
import type { RegistryClient, ResolvedBuild } from "./client.js";
import { dependencyId, type ReplaceArg } from "./graft.js";
import { install, setMirrors, type Located } from "./get.js";

export type ImportMode = "import" | "signed" | "ca";

export interface LocalGraftOptions {
  readonly allowIncompatible?: boolean;
  readonly alias?: boolean;
  readonly force?: boolean;
  readonly dryRun?: boolean;
  /**
   * How to add the result (default: `signed` with a signing key, else `import` for root or a store opened directly,
   * else `ca`).
   */
  readonly mode?: ImportMode;
  /** A secret key (Nix's `name:base64`) to sign the graft paths with, for a daemon that trusts its public key. */
  readonly signingKey?: SecretKey;
  readonly keys: readonly string[];
  readonly outLink: string | null;
  readonly nix: NixOptions;
  readonly reporter?: Reporter;
}

export interface LocalGraftAnswer {
  readonly atom: { readonly id: string; readonly label: string; readonly version: string; readonly system: string };
  readonly replacements: readonly { readonly id: string; readonly label: string; readonly from: string; readonly to: string }[];
  readonly algorithm: string;
  readonly graftId: null;
  readonly dryRun: boolean;
  readonly outputs: Readonly<Record<string, string>>;
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  readonly aliases: readonly { readonly path: string; readonly target: string; readonly replaces: string }[];
  readonly members: readonly {
    original: string;
    graft: string;
    narHash: string | null;
    narSize: number | null;
    references: readonly string[];
  }[];
  readonly warnings: readonly Violation[];
  readonly refusals: readonly Violation[];
  /** How the paths were added (null for a dry run or a refusal). */
  readonly importedWith: ImportMode | null;
}

function defaultMode(nix: NixOptions, signing: boolean): ImportMode {
  if (signing) return "signed";
  const direct = nix.store !== undefined && (nix.store.startsWith("/") || nix.store.startsWith("local"));
  return direct || process.getuid?.() === 0 ? "import" : "ca";
}

export async function graftLocally(
  registry: RegistryClient,
  x: Located,
  xBuild: ResolvedBuild,
  replaces: readonly ReplaceArg[],
  opts: LocalGraftOptions,
): Promise<LocalGraftAnswer> {
  const reporter = opts.reporter ?? silentReporter;
  const nix = opts.nix;
  const system = xBuild.system;
  // The closure: realised from the registry (a no-op when present).
  await install(xBuild, registry, { keys: opts.keys, outLink: null, nix, reporter });
  const infos = await pathInfo(Object.values(xBuild.outputs), { ...nix, recursive: true });
  const closure = new Map(infos.map((i) => [i.path, i]));
  const xAtom = await registry.atom(x.id);
  const manifest = xAtom?.versions.find((v) => v.version === xBuild.version)?.manifest ?? "";
  const dependent = `${xBuild.label} ${xBuild.version}`;

  const facts: ReplacementFacts[] = [];
  const violations: Violation[] = [];
  const pathReps: { old: string; new: string }[] = [];
  const aliases: { path: string; target: string; replaces: string }[] = [];
  const recordReps: LocalGraftAnswer["replacements"][number][] = [];
  for (const r of replaces) {
    const depId = await dependencyId(registry, x, r.label);
    const dep = await registry.atom(depId);
    if (!dep) throw new CprError("graft.unknown", `the registry ${registry.url} does not know ${r.label}`, { where: registry.url });
    const newBuild = await registry.resolve(depId, `=${r.version}`, system);
    if (!newBuild) {
      violations.push({
        code: "graft.no-build",
        message: `no build of ${r.label} ${r.version} for ${system} is recorded in ${registry.url}`,
        hint: `build and push it first (cpr build ${r.label}@=${r.version} --push)`,
        override: null,
      });
    }
    const paths: { old: string; new: string }[] = [];
    const oldVersions: string[] = [];
    for (const v of dep.versions) {
      if (v.version === r.version) continue;
      const b = await registry.resolve(depId, `=${v.version}`, system);
      if (!b || !Object.values(b.outputs).some((p) => closure.has(p))) continue;
      oldVersions.push(v.version);
      for (const [out, p] of Object.entries(b.outputs)) {
        if (!closure.has(p)) continue;
        const np = newBuild?.outputs[out];
        if (np) paths.push({ old: p, new: np });
      }
    }
    const mirrors = await setMirrors([registry], dep.set);
    const req = requirementOn(manifest, x.set, r.label, dep.set, mirrors);
    const already = newBuild && Object.values(newBuild.outputs).some((p) => closure.has(p));
    facts.push(
      ...(oldVersions.length ? oldVersions : [null]).map((ov) => ({
        label: r.label,
        oldId: depId,
        newId: depId,
        oldVersion: ov,
        newVersion: r.version,
        requirements: req ? [{ by: dependent, requirement: req }] : [],
        paths: paths,
        runtime: oldVersions.length > 0 && paths.length > 0,
        notRuntimeReason: already
          ? `${dependent} already uses ${r.label} ${r.version}`
          : `no recorded build of ${r.label} is in ${dependent}'s runtime closure: it is a build-time-only dependency or linked statically`,
      })),
    );
    for (const p of paths) {
      if (parseStorePath(p.old).name.length !== parseStorePath(p.new).name.length && opts.alias) {
        const a = aliasPath(p.old, p.new);
        aliases.push({ path: a, target: p.new, replaces: p.old });
        pathReps.push({ old: p.old, new: a });
      } else pathReps.push(p);
    }
    recordReps.push({ id: depId, label: r.label, from: oldVersions.join(", "), to: r.version });
  }
  violations.push(...checkGraft({ dependent, replacements: facts }));
  const flags = { allowIncompatible: opts.allowIncompatible, alias: opts.alias, force: opts.force };
  const verdict = judge(violations, flags);
  const base = {
    atom: { id: x.id, label: xBuild.label, version: xBuild.version, system },
    replacements: recordReps,
    algorithm: GRAFT_TYPE,
    graftId: null,
    dryRun: opts.dryRun === true,
    aliases,
  };
  if (verdict.refusals.length || pathReps.length === 0) {
    return {
      ...base,
      outputs: {},
      paths: pathReps,
      members: [],
      warnings: verdict.warnings,
      refusals: verdict.refusals,
      importedWith: null,
    };
  }
  const plan = planGraft(infos, pathReps);
  const allPaths = [...plan.remap].map(([o, n]) => ({ old: o, new: n }));
  for (const a of aliases) allPaths.push({ old: a.replaces, new: a.path });
  allPaths.sort((a, b) => (a.old < b.old ? -1 : a.old > b.old ? 1 : 0));
  const planned = plan.members.map((m) => ({
    original: m.original,
    graft: m.graft,
    narHash: null,
    narSize: null,
    references: m.references,
  }));
  const outputs = Object.fromEntries(Object.entries(xBuild.outputs).map(([k, p]) => [k, plan.remap.get(p) ?? p]));
  if (opts.dryRun)
    return { ...base, outputs, paths: allPaths, members: planned, warnings: verdict.warnings, refusals: [], importedWith: null };

  // The new dependency, realised from the registry (its paths must be valid before the graft is added).
  for (const r of replaces) {
    const depId = await dependencyId(registry, x, r.label);
    const b = await registry.resolve(depId, `=${r.version}`, system);
    if (b) await install(b, registry, { keys: opts.keys, outLink: null, nix, reporter });
  }

  const mode = opts.mode ?? defaultMode(nix, opts.signingKey !== undefined);
  if (mode === "signed" && !opts.signingKey)
    throw new CprError("graft.request", "a signed local graft needs a signing key", { hint: "pass --sign-key FILE" });
  const dir = await mkdtemp(join(tmpdir(), "cpr-graft-"));
  try {
    const results = await writeGraft(plan, {
      source: { open: (p) => dumpNar(p, nix), narHash: (p) => closure.get(p)?.narHash ?? null },
      sink: {
        open: async (m) => {
          const file = join(dir, `${parseStorePath(m.graft).hash}.nar`);
          return { output: createWriteStream(file), staged: file };
        },
      },
    });
    const residue = judge(checkResidue(residueOf(results)), flags);
    const warnings = [...verdict.warnings, ...residue.warnings];
    if (residue.refusals.length) {
      return { ...base, outputs, paths: allPaths, members: planned, warnings, refusals: residue.refusals, importedWith: null };
    }
    const members = results.map((r) => ({
      original: r.original,
      graft: r.graft,
      narHash: r.narHash,
      narSize: r.narSize,
      references: r.references,
    }));
    if (mode === "import") {
      const items = [
        ...aliases.map((a) => ({ path: a.path, references: [a.target], nar: symlinkNar(a.target) })),
        ...results.map((r) => ({ path: r.graft, references: r.references, nar: createReadStream(r.staged) as AsyncIterable<Uint8Array> })),
      ];
      reporter.info(`importing ${items.length} grafted path(s) (nix-store --import)`);
      await importPaths(Readable.from(exportPaths(items)), nix);
      return { ...base, outputs, paths: allPaths, members, warnings, refusals: [], importedWith: "import" };
    }
    if (mode === "signed") {
      const served = new ServedDir(join(dir, "served"));
      await served.init();
      for (const a of aliases) {
        const nar = Buffer.from(symlinkNar(a.target));
        const file = join(dir, `alias-${parseStorePath(a.path).hash}.nar`);
        await writeFile(file, nar);
        const narHash = toNix32Hash("sha256", createHash("sha256").update(nar).digest());
        await served.add(a.path, file, { narHash, narSize: nar.length }, [a.target], null, opts.signingKey!);
      }
      for (const r of results) await served.add(r.graft, r.staged, r, r.references, null, opts.signingKey!);
      reporter.info(`adding ${served.added.length} signed grafted path(s) (nix copy --no-recursive --from file://…)`);
      await copyFromCacheDir(served.dir, served.added, nix);
      return { ...base, outputs, paths: allPaths, members, warnings, refusals: [], importedWith: "signed" };
    }
    const ca = await addContentAddressed(plan, infos, aliases, dir, nix, reporter);
    const caOutputs = Object.fromEntries(Object.entries(xBuild.outputs).map(([k, p]) => [k, ca.get(p) ?? p]));
    const caPaths = [...ca].map(([o, n]) => ({ old: o, new: n })).sort((a, b) => (a.old < b.old ? -1 : a.old > b.old ? 1 : 0));
    return { ...base, outputs: caOutputs, paths: caPaths, members, warnings, refusals: [], importedWith: "ca" };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The content-addressed fallback: each member (dependencies first) made content-addressed over the requested
 * replacements (and aliases, themselves content-addressed), written as a local binary cache, and copied in.
 * Returns old → new path for every path that changed.
 */
async function addContentAddressed(
  plan: GraftPlan,
  infos: readonly PathInfo[],
  aliases: readonly { path: string; target: string; replaces: string }[],
  dir: string,
  nix: NixOptions,
  reporter: Reporter,
): Promise<Map<string, string>> {
  const served = new ServedDir(join(dir, "served"));
  await served.init();
  const remap = new Map<string, string>();
  const byPath = new Map(infos.map((i) => [i.path, i]));
  const writeNarinfo = (path: string, narFile: string, r: { narHash: string; narSize: number }, refs: readonly string[], ca: string) =>
    served.add(path, narFile, r, refs, ca, null);
  for (const r of plan.replacements) remap.set(r.old, r.new);
  // Aliases: content-addressed symlinks (a source path referring to their target).
  for (const a of aliases) {
    const nar = Buffer.from(symlinkNar(a.target));
    const file = join(dir, `alias-${parseStorePath(a.path).hash}.nar`);
    await writeFile(file, nar);
    const res = await contentAddress(
      { original: a.path, self: false, references: [a.target], rewrites: [], nar: () => Readable.from([nar]) },
      { output: createWriteStream(join(dir, "alias.out")) },
    );
    const out = join(dir, `${parseStorePath(res.path).hash}.nar`);
    await writeFile(out, await readAll(join(dir, "alias.out")));
    await writeNarinfo(res.path, out, res, [a.target], res.ca);
    remap.set(a.replaces, res.path);
  }
  for (const m of plan.members) {
    const info = byPath.get(m.original)!;
    const self = info.references.includes(m.original);
    const rewrites: { from: string; to: string }[] = [];
    const refs: string[] = [];
    for (const ref of info.references) {
      if (ref === m.original) continue;
      const to = remap.get(ref);
      if (to) rewrites.push({ from: parseStorePath(ref).basename, to: parseStorePath(to).basename });
      refs.push(to ?? ref);
    }
    const file = join(dir, `ca-${parseStorePath(m.original).hash}.nar`);
    const res = await contentAddress(
      { original: m.original, self, references: refs, rewrites, nar: () => dumpNar(m.original, nix) },
      { output: createWriteStream(file) },
    );
    remap.set(m.original, res.path);
    await writeNarinfo(res.path, file, res, self ? [...refs, res.path] : refs, res.ca);
  }
  reporter.info(`adding ${served.added.length} content-addressed path(s) (nix copy --no-recursive --from file://…)`);
  await copyFromCacheDir(served.dir, served.added, nix);
  return remap;
}

async function readAll(file: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const s = createReadStream(file);
  for await (const c of s) chunks.push(c as Buffer);
  await finished(s);
  return Buffer.concat(chunks);
}

/** The file a binary cache directory describes itself in (Nix's `nix-cache-info`). */
const SERVED_INFO = "nix-cache-info";

/** A local binary cache directory (narinfos and uncompressed NARs) that `nix copy --from file://DIR` reads. */
class ServedDir {
  readonly added: string[] = [];
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, "nar"), { recursive: true });
    await writeFile(join(this.dir, SERVED_INFO), "StoreDir: /nix/store\n");
  }

  /** Adds one path: its NAR (copied from `narFile`), and a narinfo with `ca` and/or a signature by `key`. */
  async add(
    path: string,
    narFile: string,
    r: { narHash: string; narSize: number },
    refs: readonly string[],
    ca: string | null,
    key: SecretKey | null,
  ): Promise<void> {
    // Streamed: hashed while copied under a temporary name, then renamed to its hash.
    const tmp = join(this.dir, "nar", `.${this.added.length}.tmp`);
    const h = createHash("sha256");
    await pipeline(
      createReadStream(narFile),
      async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          h.update(c);
          yield c;
        }
      },
      createWriteStream(tmp),
    );
    const fileHash = toNix32Hash("sha256", h.digest());
    const url = `nar/${fileHash.slice(7)}.nar`;
    await rename(tmp, join(this.dir, url));
    const info = {
      storePath: path,
      url,
      compression: "none",
      fileHash,
      fileSize: r.narSize,
      narHash: r.narHash,
      narSize: r.narSize,
      references: refs.map((p) => parseStorePath(p).basename).sort(),
      deriver: null,
      system: null,
      ca,
    };
    const sigs = key ? [signDetached(key, narInfoFingerprint(info))] : [];
    await writeFile(join(this.dir, `${parseStorePath(path).hash}.narinfo`), formatNarInfo({ ...info, sigs }));
    this.added.push(path);
  }
}
