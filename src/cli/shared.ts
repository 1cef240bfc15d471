/**
 * What several commands share (src/cli/commands/*.ts import this module, never one another): reading arguments
 * that name labels and files, registry settings, and reporting a lock run.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Config } from "../config/config.js";
import { CprError, UsageError } from "../protocol/errors.js";
import { normalizeLabel } from "../protocol/label.js";
import type { LockCompose, LockDep, Lockfile } from "../protocol/lock.js";
import { RegistryClient } from "../registry/client.js";
import { installTargets, parseGetTarget, type InstalledAtom } from "../registry/get.js";
import { loadConfig } from "../config/config.js";
import { hostSystem } from "../nix/store.js";
import type { LockOutcome } from "../resolve/lock-project.js";
import { originRanges } from "../resolve/origins.js";
import { diffJson, diffLocks, formatDiff, type OriginRange } from "../protocol/lock-diff.js";
import { flag, str, strs, type Context, type ParsedArgs } from "./command.js";
import { parsePublicKey } from "../protocol/nix-key.js";

// ── arguments ──

/** A LABEL argument, NFKC-normalised; an invalid one is a usage error. */
export function labelArg(text: string): string {
  try {
    return normalizeLabel(text, "label", "LABEL");
  } catch (err) {
    if (err instanceof CprError) throw new UsageError(err.message, { where: text, hint: err.hint });
    throw err;
  }
}

/** The text of a lock file; an unreadable one is a `lock.read` error naming it. */
export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new CprError("lock.read", `cannot read ${file}: ${(e as Error).message}`, {
      where: file,
      hint: "run in the directory of atom.lock, or pass its path",
    });
  }
}

/** Read and parse a lock (src/protocol/lock.ts). */
export async function loadLock(file: string): Promise<Lockfile> {
  const text = await readText(file);
  const mod = (await import("../protocol/lock.js")) as { parseLock?: (text: string, file: string) => Lockfile };
  if (typeof mod.parseLock !== "function")
    throw new CprError("lock.unavailable", "this build of cpr cannot read atom.lock yet (src/protocol/lock.ts)");
  return mod.parseLock(text, file);
}

/** Where Nix's stderr goes: to ours (logs, never stdout), unless --quiet; it is always kept for error messages. */
export function nixStderr(args: ParsedArgs): ((s: string) => void) | undefined {
  if (flag(args, "quiet")) return undefined;
  // cpr makes its own out-links (get) or deliberately none (build's intermediate .drv and outputs): Nix's advice
  // about --add-root is noise here.
  return (s: string) => {
    const kept = s.replace(/^warning: you did not specify '--add-root'.*\n?/gm, "");
    if (kept) process.stderr.write(kept);
  };
}

// ── registries ──

/** The registry settings of the effective configuration (config `registry.*`, env CPR_REGISTRY*). */
export interface RegistrySettings {
  readonly urls: readonly string[];
  readonly keys: readonly string[];
  readonly token: string | null;
  readonly sets: readonly string[];
}

/** The client side of config `[registry]` (CPR_REGISTRY, CPR_REGISTRY_KEYS, CPR_REGISTRY_TOKEN included). */
export function registrySettings(config: Config): RegistrySettings {
  const r = config.registry;
  return { urls: r.urls, keys: r.keys, token: r.token, sets: r.sets };
}

/** Registry clients for the URLs given; a malformed URL is a usage error naming where it came from. */
export function registryClients(urls: readonly string[], token: string | null, from: string): RegistryClient[] {
  return urls.map((u) => {
    try {
      return new RegistryClient(u, { token });
    } catch (e) {
      if (e instanceof CprError)
        throw new UsageError(`${from}: ${e.message}`, {
          hint: e.hint ?? "a registry URL looks like https://registry.example.org or http://127.0.0.1:8080",
        });
      throw e;
    }
  });
}

/** Checks trusted public keys before Nix sees them (Nix would only say "secret key is corrupt"). */
export function checkKeys(keys: readonly string[]): void {
  for (const k of keys) {
    try {
      parsePublicKey(k);
    } catch (e) {
      if (e instanceof CprError) throw new UsageError(`--key (or config registry.keys, CPR_REGISTRY_KEYS): ${e.message}`, { hint: e.hint });
      throw e;
    }
  }
}

/** What installing from registries needs (cpr run, cpr shell): from --registry, --key, --system and --store. */
export interface InstallSettings {
  readonly config: Config;
  readonly clients: RegistryClient[];
  readonly keys: readonly string[];
  readonly system: string;
  readonly store: string | undefined;
}

/** --registry/--key (else config registry.urls/keys), --system (else this machine's), --store (made absolute). */
export function installSettings(ctx: Context, args: ParsedArgs, config: Config, hostSystem: string): InstallSettings {
  const settings = registrySettings(config);
  const urls = strs(args, "registry").length ? strs(args, "registry") : settings.urls;
  const keys = strs(args, "key").length ? strs(args, "key") : settings.keys;
  if (urls.length === 0)
    throw new UsageError("no registry is configured", { hint: "pass --registry URL, or set config registry.urls or CPR_REGISTRY" });
  checkKeys(keys);
  const store = str(args, "store");
  return {
    config,
    clients: registryClients(urls, settings.token, "--registry (or config registry.urls, CPR_REGISTRY)"),
    keys,
    system: str(args, "system") ?? hostSystem,
    store: store === undefined ? undefined : /^[a-z+]+:\/\//.test(store) || !store.includes("/") ? store : resolve(ctx.cwd, store),
  };
}

/**
 * `cpr run` and `cpr shell`: installs the atoms `targets` name as `cpr get` does (installSettings, --build,
 * --quiet), held by GC roots in a temporary directory instead of out-links, then runs `foreground` with them and
 * the settings used. Returns its exit code; when a signal ended the program, cpr ends with the same signal (the
 * roots removed first). The roots are removed however it ends.
 */
export async function runInstalled(
  ctx: Context,
  args: ParsedArgs,
  targets: readonly string[],
  foreground: (atoms: InstalledAtom[], settings: InstallSettings) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
): Promise<number> {
  const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
  const s = installSettings(ctx, args, config, hostSystem());
  const roots = await mkdtemp(join(tmpdir(), "cpr-roots-"));
  try {
    const atoms = await installTargets(
      {
        cwd: ctx.cwd,
        env: ctx.env,
        reporter: ctx.term,
        aliases: config.aliases,
        clients: s.clients,
        keys: s.keys,
        system: s.system,
        nix: { env: ctx.env, store: s.store, onStderr: nixStderr(args) },
        outLink: join(roots, "root"),
        build: flag(args, "build"),
        cacheDir: config.cacheDir,
      },
      targets.map((t) => parseGetTarget(t, config.aliases)),
    );
    const exit = await foreground(atoms, s);
    if (exit.signal !== null) {
      // End as the program ended: by the same signal (the GC roots go first).
      await rm(roots, { recursive: true, force: true });
      process.kill(process.pid, exit.signal);
      return 128 + (constants.signals[exit.signal] ?? 1);
    }
    return exit.code ?? 1;
  } finally {
    await rm(roots, { recursive: true, force: true });
  }
}

/** --data, else config registry.data, else the default. */
export function dataDirOf(ctx: Context, arg: string | undefined, config: Config): string {
  return arg !== undefined ? resolve(ctx.cwd, arg) : config.registry.data;
}

/** --db, else config registry.db; a relative SQLite path is relative to the working directory. */
export function dbOf(ctx: Context, arg: string | undefined, config: Config): string | undefined {
  const v = arg ?? config.registry.db ?? undefined;
  if (v === undefined || v === "") return undefined;
  if (/^postgres(?:ql)?:\/\//.test(v)) return v;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    throw new UsageError(`--db (or config registry.db): unknown database URL ${JSON.stringify(v.replace(/\/\/[^@/]*@/, "//…@"))}`, {
      hint: "use sqlite:PATH, a path, or postgres://user@host:port/db",
    });
  }
  if (v.startsWith("sqlite:")) return `sqlite:${resolve(ctx.cwd, v.slice("sqlite:".length))}`;
  return resolve(ctx.cwd, v);
}

// ── lock runs (resolve, add, remove, update) ──

/**
 * One line of what changed between two locks, for humans and --json. `kind` "atom": a [[deps]] atom (label, id,
 * versions); "compose": the composer ([compose]; label "composer", id the composer atom's or null, from/to
 * describe it, null for the default static one); "locker": [locker] added to a lock that had none.
 */
export interface LockChange {
  kind: "atom" | "compose" | "locker";
  label: string;
  id: string | null;
  from: string | null;
  to: string | null;
}

type AtomDep = LockDep & { type: "atom" };

function atomsOf(lock: Lockfile | null): Map<string, AtomDep> {
  return new Map((lock?.deps ?? []).filter((d): d is AtomDep => d.type === "atom").map((d) => [d.id, d]));
}

/** The composer as a change names it: `<label> <version>, entry "<entry>"`, `nix, entry "<path>"`; null when static. */
function composerText(c: LockCompose): string | null {
  if (c.use === "static") return null;
  return c.use === "nix" ? `nix, entry ${JSON.stringify(c.entry)}` : `${c.label} ${c.version}, entry ${JSON.stringify(c.entry)}`;
}

function sameComposer(a: LockCompose, b: LockCompose): boolean {
  if (a.use === "static" || b.use === "static") return a.use === b.use;
  if (a.use === "nix" || b.use === "nix") return a.use === b.use && a.entry === b.entry;
  return a.entry === b.entry && a.id === b.id && a.version === b.version && a.rev === b.rev && a.mirror === b.mirror;
}

const STATIC: LockCompose = { use: "static" };

/**
 * Atoms added, removed or moved between two locks, sorted by label; then the composer when it was added, removed or
 * changed (another atom, version, rev or entry); then [locker] when it was added.
 */
export function lockChanges(before: Lockfile | null, after: Lockfile | null): LockChange[] {
  const a = atomsOf(before);
  const b = atomsOf(after);
  const out: LockChange[] = [];
  for (const [id, d] of b) {
    const old = a.get(id);
    if (!old || old.version !== d.version || old.rev !== d.rev)
      out.push({ kind: "atom", label: d.label, id, from: old?.version ?? null, to: d.version });
  }
  for (const [id, d] of a) if (!b.has(id)) out.push({ kind: "atom", label: d.label, id, from: d.version, to: null });
  out.sort((x, y) => (x.label < y.label ? -1 : x.label > y.label ? 1 : 0));
  const oc = before?.compose ?? STATIC;
  const nc = after?.compose ?? STATIC;
  if (!sameComposer(oc, nc)) {
    // A composer atom is "the composer"; a trivial or static atom's [compose] is named as such.
    const label = nc.use === "atom" || oc.use === "atom" ? "composer" : "[compose]";
    out.push({
      kind: "compose",
      label,
      id: nc.use === "atom" ? nc.id : oc.use === "atom" ? oc.id : null,
      from: composerText(oc),
      to: composerText(nc),
    });
  }
  if (before && !before.locker && after?.locker)
    out.push({ kind: "locker", label: "locker", id: after.locker.id, from: null, to: `${after.locker.label} ${after.locker.version}` });
  return out;
}

/** "2 changes"; naming the composer and locker: "1 change: the composer", "3 changes: 2 atoms and the composer". */
function changesText(changes: readonly LockChange[]): string {
  const n = `${changes.length} change${changes.length === 1 ? "" : "s"}`;
  const others = changes.filter((c) => c.kind !== "atom").map((c) => (c.label.startsWith("[") ? c.label : `the ${c.label}`));
  if (others.length === 0) return n;
  const atoms = changes.length - others.length;
  const parts = [...(atoms > 0 ? [`${atoms} atom${atoms === 1 ? "" : "s"}`] : []), ...others];
  return `${n}: ${parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]!}`}`;
}

/** Print the outcome of a lock run: the diff summary (docs/formats.md §15.4), the summary line, and --json. */
export async function reportOutcome(ctx: Context, json: boolean, outcome: LockOutcome, extra: Record<string, unknown> = {}): Promise<void> {
  const after = outcome.resolution?.lock ?? outcome.project.lock;
  const changes = outcome.status === "unchanged" ? [] : lockChanges(outcome.project.lock, after);
  const atoms = [...atomsOf(after).values()].map((d) => ({ label: d.label, version: d.version, id: d.id, set: d.set, rev: d.rev }));
  const diff = outcome.status === "unchanged" ? { atoms: [], direct: [] } : diffLocks(outcome.project.lock, after);
  // The origin ranges need one ls-refs per set with a moved atom; never under --offline.
  const origins =
    diff.atoms.some((c) => c.from !== null && c.to !== null) && !outcome.offline
      ? await originRanges(diff.atoms, { cwd: ctx.cwd, env: ctx.env, reporter: ctx.term })
      : new Map<string, OriginRange>();
  if (json) {
    ctx.term.json({ status: outcome.status, changes, atoms, diff: diffJson(diff, origins), network: outcome.stats, ...extra });
    return;
  }
  for (const line of formatDiff(diff, origins)) ctx.term.out(line);
  for (const c of changes) {
    if (c.kind === "atom") continue;
    if (c.from === null) ctx.term.out(`+ ${c.label} ${c.to}`);
    else if (c.to === null) ctx.term.out(`- ${c.label} ${c.from}`);
    else ctx.term.out(`~ ${c.label} ${c.from} -> ${c.to}`);
  }
  const n = atoms.length;
  switch (outcome.status) {
    case "unchanged":
      ctx.term.info(`atom.lock already satisfies atom.toml (${n} atom${n === 1 ? "" : "s"}); nothing to do, no network used`);
      break;
    case "same":
      ctx.term.info(`atom.lock is up to date (${n} atom${n === 1 ? "" : "s"})`);
      break;
    default:
      ctx.term.info(`wrote atom.lock (${n} atom${n === 1 ? "" : "s"}, ${changesText(changes)})`);
  }
}
