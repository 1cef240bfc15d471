/**
 * `cpr build`: fetch an atom and, recursively, the atoms its `atom.lock` pins (at their locked revs, from their sets'
 * mirrors), then evaluate and build it with Nix (docs/registry.md, "Building"), and optionally push the output
 * closure and the build record to a registry.
 *
 * One Nix expression is generated per build. Every atom of the graph becomes one attribute: its `[compose.as] nix`
 * file (or, for `[compose.with.<label>]`, the composer's) is imported, and when it is a function it is called with
 * the attributes it names among { src, deps, nix, system }:
 *
 * - `src`: the atom's tree (at `entry` for a composed atom), copied into the store with `builtins.path`
 *   (name `source`), so the derivation depends on the tree's content only, never on where the cache is;
 * - `deps.<label>`: each `[deps.from.*]` atom's own value, built the same way;
 * - `nix.<name>`: each locked direct Nix dependency: `builtins.fetchurl` (`nix`), `builtins.fetchTarball`
 *   (`nix+tar`), `<nix/fetchurl.nix>` at build time (`nix+src`), `builtins.fetchGit` at the locked rev (`nix+git`);
 * - `system`: the target system.
 *
 * A dependency's version is the one the top atom's lock pins for (set, label) (the lock holds the unified graph);
 * an atom the top lock does not pin falls back to the version its dependent's own lock pins.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CprError } from "../protocol/errors.js";
import { parseAtomManifest, type AtomManifest } from "../protocol/manifest.js";
import { parseLock, type LockAtom, type LockDirectDep, type Lockfile } from "../protocol/lock.js";
import { silentReporter } from "../protocol/report.js";
import type { AtomUri } from "../protocol/uri.js";
import { currentSystem, derivationOutputs, dumpNar, instantiate, pathInfo, realise, referencesFirst, type NixOptions } from "../nix/store.js";
import { fetchAtom, fetchLock, type FetchContext } from "../store/fetch.js";
import type { RegistryClient } from "./client.js";

export interface BuildContext extends FetchContext {
  /** Target system; default `builtins.currentSystem`. */
  readonly system?: string;
  /** Options for the nix processes (environment, `--store`, where Nix's stderr goes). */
  readonly nix?: NixOptions;
}

/** What `cpr build --json` prints, plus where it came from. */
export interface BuildResult {
  readonly label: string;
  readonly version: string;
  readonly id: string;
  /** Set root hex. */
  readonly set: string;
  /** Atom commit. */
  readonly rev: string;
  readonly system: string;
  readonly drv: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** The generated expression file. */
  readonly expression: string;
}

/** One atom of the graph, fetched and read. */
export interface GraphAtom {
  /** Attribute name in the generated expression. */
  readonly key: string;
  readonly label: string;
  readonly version: string;
  readonly set: string;
  readonly rev: string;
  readonly id: string;
  /** Where its tree is (read-only, in the cache). */
  readonly path: string;
  readonly manifest: AtomManifest;
  readonly lock: Lockfile | null;
  /** How its value is made. */
  readonly value:
    | { readonly kind: "nix"; readonly file: string; readonly src: string; readonly deps: Readonly<Record<string, string>>; readonly nix: readonly LockDirectDep[] }
    | { readonly kind: "static"; readonly src: string };
}

interface Pinned {
  readonly atom: LockAtom;
  /** Mirrors to fetch it from, in order. */
  readonly mirrors: readonly string[];
}

const keyOf = (a: { id: string; version: string; rev: string }) => `${a.id}-${a.version}-${a.rev.slice(0, 12)}`;

/** Fetches the atom named by `uri` and its locked graph, evaluates and builds it. */
export async function buildAtom(ctx: BuildContext, uri: AtomUri): Promise<BuildResult> {
  const reporter = ctx.reporter ?? silentReporter;
  const top = await fetchAtom(ctx, uri);
  reporter.info(`building ${top.label} ${top.version} (${top.rev.slice(0, 12)}) from ${top.url}`);
  const nixOpts = { ...ctx.nix, env: ctx.nix?.env ?? ctx.env };
  const system = ctx.system ?? (await currentSystem(nixOpts));
  const { atoms, topKey } = await loadGraph(ctx, { label: top.label, version: top.version, set: top.root, rev: top.rev, id: top.id, path: top.path, url: top.url });
  const text = nixExpression(atoms, topKey, system);
  const expression = await writeExpression(ctx.cache.dir, text);
  const drvs = await instantiate(expression, nixOpts);
  const drv = drvs[0]!;
  const { outputs } = await derivationOutputs(drv, nixOpts);
  await realise([drv], nixOpts);
  return { label: top.label, version: top.version, id: top.id, set: top.root, rev: top.rev, system, drv, outputs, expression };
}

/** Reads the top atom and everything it needs, fetching pinned atoms level by level (one fetchLock per level). */
export async function loadGraph(
  ctx: FetchContext,
  top: { label: string; version: string; set: string; rev: string; id: string; path: string; url: string },
): Promise<{ atoms: Map<string, GraphAtom>; topKey: string }> {
  type Read = { manifest: AtomManifest; lock: Lockfile | null };
  type Pin = LockAtom & { rev: string };
  const atoms = new Map<string, GraphAtom>();
  const setUrls = new Map<string, string[]>([[top.set, [top.url]]]);
  const topKey = keyOf(top);
  const topRead = await readAtom(top.path, `${top.label} ${top.version}`);
  const unified = new Map<string, LockAtom>();
  for (const a of topRead.lock ? lockAtomsOf(topRead.lock) : []) unified.set(`${a.set}\0${a.label}`, a);
  const paths = new Map<string, string>([[topKey, top.path]]);
  const reads = new Map<string, Read>([[topKey, topRead]]);
  const queued = new Set<string>([topKey]);
  const readOf = async (a: Pin): Promise<Read> => {
    const key = keyOf(a);
    let r = reads.get(key);
    if (!r) {
      r = await readAtom(paths.get(key)!, `${a.label} ${a.version}`);
      reads.set(key, r);
    }
    return r;
  };

  let level: Pin[] = [{ ...top, mirror: top.url }];
  while (level.length) {
    // What each atom of this level needs, and which of those are not fetched yet.
    const wanted = new Map<string, Pinned>();
    const plans = level.map((atom) => {
      const { manifest, lock } = reads.get(keyOf(atom))!;
      const where = `${atom.label} ${atom.version}`;
      const deps: Record<string, Pin> = {};
      for (const [tag, labels] of Object.entries(manifest.depsFrom)) {
        for (const label of Object.keys(labels)) deps[label] = pinOf(atom.set, manifest, lock, unified, tag, label, where);
      }
      let composer: (Pin & { entry: string }) | null = null;
      if (manifest.compose?.kind === "with") {
        const c = lock?.compose;
        if (!c || c.use !== "atom" || c.rev === null) {
          throw new CprError("build.no-composer-lock", `${where} is composed with ${manifest.compose.label}, but its atom.lock does not pin the composer at a rev`, {
            where: `${atom.label} ${atom.version} atom.lock`,
            hint: "run `cpr resolve` in the atom and publish a new version with its atom.lock",
          });
        }
        composer = { ...c, rev: c.rev };
      }
      for (const a of [...Object.values(deps), ...(composer ? [composer] : [])]) {
        const key = keyOf(a);
        if (!paths.has(key) && !wanted.has(key)) wanted.set(key, pinned(a, lock, setUrls));
      }
      return { atom, deps, composer, where, manifest, lock };
    });
    for (const [key, f] of await fetchPinned(ctx, [...wanted.values()])) {
      paths.set(key, f.path);
      const urls = setUrls.get(f.set) ?? [];
      if (f.url && !urls.includes(f.url)) setUrls.set(f.set, [...urls, f.url]);
    }
    const next: Pin[] = [];
    for (const { atom, deps, composer, where, manifest, lock } of plans) {
      for (const a of Object.values(deps)) {
        const key = keyOf(a);
        if (queued.has(key)) continue;
        queued.add(key);
        await readOf(a);
        next.push(a);
      }
      const key = keyOf(atom);
      const path = paths.get(key)!;
      const direct = directDeps(manifest, lock, where);
      const depKeys = Object.fromEntries(Object.entries(deps).map(([label, a]) => [label, keyOf(a)]));
      let value: GraphAtom["value"];
      if (manifest.compose?.kind === "nix") {
        value = { kind: "nix", file: inTree(path, manifest.compose.path, where), src: path, deps: depKeys, nix: direct };
      } else if (composer) {
        const cwhere = `${composer.label} ${composer.version}`;
        const cread = await readOf(composer);
        const cpath = paths.get(keyOf(composer))!;
        if (cread.manifest.compose?.kind !== "nix") {
          throw new CprError("build.composer", `${where} is composed with ${cwhere}, which has no [compose.as] nix file to import`, { where: join(cpath, "atom.toml") });
        }
        value = { kind: "nix", file: inTree(cpath, cread.manifest.compose.path, cwhere), src: inTree(path, composer.entry, where), deps: depKeys, nix: direct };
      } else {
        value = { kind: "static", src: path };
      }
      atoms.set(key, { key, label: atom.label, version: atom.version, set: atom.set, rev: atom.rev, id: atom.id, path, manifest, lock, value });
    }
    level = next;
  }
  const t = atoms.get(topKey)!;
  if (t.value.kind === "static") {
    throw new CprError("build.static", `${top.label} ${top.version} is a static atom ([compose.as] static): there is nothing to build`, { where: join(top.path, "atom.toml") });
  }
  return { atoms, topKey };
}

async function readAtom(path: string, what: string): Promise<{ manifest: AtomManifest; lock: Lockfile | null }> {
  const mfile = join(path, "atom.toml");
  let mtext: string;
  try {
    mtext = await readFile(mfile, "utf8");
  } catch (e) {
    throw new CprError("build.no-manifest", `${what}: cannot read ${mfile}: ${(e as Error).message}`, { where: mfile, cause: e });
  }
  const manifest = parseAtomManifest(mtext, mfile, "full");
  const lfile = join(path, "atom.lock");
  const lock = existsSync(lfile) ? parseLock(await readFile(lfile, "utf8"), lfile) : null;
  return { manifest, lock };
}

function lockAtomsOf(lock: Lockfile): LockAtom[] {
  const out: LockAtom[] = lock.deps.filter((d): d is Extract<typeof d, { type: "atom" }> => d.type === "atom");
  if (lock.compose.use === "atom") out.push(lock.compose);
  return out;
}

/** The locked atom for `[deps.from.<tag>] <label>` of an atom of set `self`. */
function pinOf(self: string, manifest: AtomManifest, lock: Lockfile | null, unified: ReadonlyMap<string, LockAtom>, tag: string, label: string, where: string): LockAtom & { rev: string } {
  const roots = lock ? Object.entries(lock.sets).filter(([, s]) => s.tag === tag).map(([r]) => r) : [];
  if (roots.length === 0 && (manifest.package.sets[tag] ?? []).includes("::")) roots.push(self);
  for (const root of roots) {
    const a = unified.get(`${root}\0${label}`) ?? (lock ? lockAtomsOf(lock).find((x) => x.set === root && x.label === label) : undefined);
    if (!a) continue;
    if (a.rev === null) {
      throw new CprError("build.local-dep", `${where}: ${label} ${a.version} is locked as a local-only dependency (no rev), which cannot be fetched`, {
        hint: "publish the dependency, then `cpr resolve` and publish a new version of this atom",
      });
    }
    return { ...a, rev: a.rev };
  }
  throw new CprError("build.unlocked", `${where} depends on ${label} (from set '${tag}'), but ${lock ? "its atom.lock pins no version of it" : "it has no atom.lock"}`, {
    hint: "run `cpr resolve` in the atom and publish a new version with its atom.lock",
  });
}

/** A pinned atom with the mirrors to fetch it from: its lock's mirror, its set's mirrors ("::" = the URLs it is known by). */
function pinned(a: LockAtom, lock: Lockfile | null, setUrls: ReadonlyMap<string, readonly string[]>): Pinned {
  const known = setUrls.get(a.set) ?? [];
  const listed = lock?.sets[a.set]?.mirrors ?? [];
  const mirrors = [...new Set([...(a.mirror && a.mirror !== "::" ? [a.mirror] : []), ...listed.flatMap((m) => (m === "::" ? known : [m])), ...known])];
  return { atom: a, mirrors };
}

/** Fetches pinned atoms with fetchLock (mirrors in order, revs checked); returns key → fetched atom. */
async function fetchPinned(ctx: FetchContext, pins: readonly Pinned[]): Promise<Map<string, { set: string; url: string; path: string }>> {
  const out = new Map<string, { set: string; url: string; path: string }>();
  if (pins.length === 0) return out;
  // fetchLock takes mirrors per set; atoms of one set may come from different dependents' locks, so one call per
  // distinct mirror list.
  const groups = new Map<string, Pinned[]>();
  for (const p of pins) {
    const k = `${p.atom.set}\0${p.mirrors.join("\0")}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const set = group[0]!.atom.set;
      const lock: Lockfile = {
        version: 1,
        sets: { [set]: { tag: "build", mirrors: group[0]!.mirrors } },
        locker: null,
        compose: { use: "static" },
        deps: group.map((p) => ({ type: "atom" as const, ...p.atom, mirror: null })),
      };
      const r = await fetchLock(ctx, lock);
      if (r.failed.length) {
        const f = r.failed.map((x) => `${x.label} ${x.version}: ${x.error}`).join("; ");
        throw new CprError("build.fetch", `could not fetch the locked atoms ${f}`, { hint: `mirrors tried: ${group[0]!.mirrors.join(", ") || "(none)"}` });
      }
      for (const a of r.fetched) out.set(keyOf({ id: a.id, version: a.version, rev: a.rev }), { set: a.root, url: a.url, path: a.path });
    }),
  );
  return out;
}

/** The atom's locked direct Nix dependencies named in its manifest. */
function directDeps(manifest: AtomManifest, lock: Lockfile | null, where: string): LockDirectDep[] {
  const out: LockDirectDep[] = [];
  for (const d of manifest.directNix) {
    const e = lock?.deps.find((x): x is LockDirectDep => x.type !== "atom" && x.name === d.name);
    if (!e) {
      throw new CprError("build.unlocked", `${where}: the direct Nix dependency '${d.name}' is not locked`, { hint: "run `cpr resolve` in the atom and publish a new version with its atom.lock" });
    }
    out.push(e);
  }
  return out;
}

/** A relative path inside an atom's tree, refused when it escapes it. */
function inTree(root: string, rel: string, where: string): string {
  const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..") || rel.startsWith("/")) throw new CprError("build.path", `${where}: ${JSON.stringify(rel)} leaves the atom's tree`);
  return parts.length ? join(root, ...parts) : root;
}

// ---------------------------------------------------------------------------------------------------------------
// The expression

/** A Nix string literal. */
export function nixString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$\{/g, "\\${").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
}

/** A Nix path value for an absolute filesystem path (any characters). */
function nixPath(abs: string): string {
  return `(/. + ${nixString(abs)})`;
}

function directExpr(d: LockDirectDep): string {
  switch (d.type) {
    case "nix":
      return `builtins.fetchurl { url = ${nixString(d.url)}; sha256 = ${nixString(d.hash)}; }`;
    case "nix+tar":
      return `builtins.fetchTarball { url = ${nixString(d.url)}; sha256 = ${nixString(d.hash)}; }`;
    case "nix+src":
      return `import <nix/fetchurl.nix> { url = ${nixString(d.url)}; hash = ${nixString(d.hash)};${d.unpack ? " unpack = true;" : ""} }`;
    case "nix+git":
      return `builtins.fetchGit { url = ${nixString(d.url)}; rev = ${nixString(d.rev)}; allRefs = true; }`;
  }
}

/** The generated expression: every atom of the graph as an attribute, the top atom's value as the result. */
export function nixExpression(atoms: ReadonlyMap<string, GraphAtom>, topKey: string, system: string): string {
  const top = atoms.get(topKey)!;
  const lines: string[] = [
    `# Generated by cpr build: ${top.label} ${top.version} (${top.id}) at ${top.rev}, for ${system}.`,
    "let",
    `  system = ${nixString(system)};`,
    "  call = f: args: if builtins.isFunction f then f (builtins.intersectAttrs (builtins.functionArgs f) args) else f;",
    '  source = path: builtins.path { inherit path; name = "source"; };',
    "  atoms = {",
  ];
  for (const a of [...atoms.values()].sort((x, y) => (x.key < y.key ? -1 : 1))) {
    lines.push(`    # ${a.label} ${a.version}`);
    if (a.value.kind === "static") {
      lines.push(`    ${nixString(a.key)} = source ${nixPath(a.value.src)};`);
      continue;
    }
    lines.push(`    ${nixString(a.key)} = call (import ${nixPath(a.value.file)}) {`);
    lines.push(`      src = source ${nixPath(a.value.src)};`);
    lines.push(`      deps = { ${Object.entries(a.value.deps).map(([label, key]) => `${nixString(label)} = atoms.${nixString(key)};`).join(" ")} };`);
    lines.push(`      nix = { ${a.value.nix.map((d) => `${nixString(d.name)} = ${directExpr(d)};`).join(" ")} };`);
    lines.push("      inherit system;");
    lines.push("    };");
  }
  const what = `${top.label} ${top.version}`;
  lines.push(
    "  };",
    `  value = atoms.${nixString(topKey)};`,
    "in",
    '  if builtins.isAttrs value && (value.type or null) == "derivation" then value',
    '  else if builtins.isAttrs value && value ? default && builtins.isAttrs value.default && (value.default.type or null) == "derivation" then value.default',
    `  else throw ${nixString(`cpr build: the value of ${what} is not a derivation, nor an attribute set with a \`default\` derivation`)}`,
    "",
  );
  return lines.join("\n");
}

/** Writes the expression under <cache>/build/, named by its content, atomically. */
async function writeExpression(cacheDir: string, text: string): Promise<string> {
  const dir = join(cacheDir, "build");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${createHash("sha256").update(text).digest("hex").slice(0, 32)}.nix`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
  }
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
// Pushing

export interface PushResult {
  /** Store paths uploaded, in upload order. */
  readonly uploaded: readonly string[];
  /** Closure paths the registry already had. */
  readonly present: number;
  readonly buildId: unknown;
}

/**
 * Uploads the paths of the outputs' closure that the registry lacks, references first, each NAR streamed from
 * Nix, then records the build with config {"system": S}.
 */
export async function pushBuild(client: RegistryClient, built: Omit<BuildResult, "expression">, opts: { nix?: NixOptions; reporter?: FetchContext["reporter"] } = {}): Promise<PushResult> {
  const reporter = opts.reporter ?? silentReporter;
  const infos = await pathInfo(Object.values(built.outputs), { ...opts.nix, recursive: true });
  const hashPart = (p: string) => p.slice(p.lastIndexOf("/") + 1, p.lastIndexOf("/") + 33);
  const missing = new Set((await client.missing(infos.map((i) => i.path))).map(hashPart));
  const todo = referencesFirst(infos).filter((i) => missing.has(hashPart(i.path)));
  reporter.info(`pushing ${todo.length} of ${infos.length} path(s) to ${client.url}`);
  const progress = reporter.progress("uploading", todo.length);
  const uploaded: string[] = [];
  for (const info of todo) {
    await client.upload(info, dumpNar(info.path, opts.nix));
    uploaded.push(info.path);
    progress.tick();
  }
  progress.done();
  const { buildId } = await client.recordBuild({
    set: built.set,
    label: built.label,
    id: built.id,
    version: built.version,
    rev: built.rev,
    system: built.system,
    config: { system: built.system },
    drv: built.drv,
    outputs: built.outputs,
  });
  return { uploaded, present: infos.length - todo.length, buildId };
}
