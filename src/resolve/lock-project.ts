/**
 * Bringing a project's lock in line with its manifest, as `cpr resolve`, `add`, `remove` and `update` do: a lock
 * that already satisfies the manifest is left alone with no connection at all; otherwise the graph is resolved,
 * locked versions that still satisfy are kept, and the lock and manifest are written as a pair (lock first).
 */
import { loadConfig } from "../config/config.js";
import { CprError } from "../protocol/errors.js";
import type { Aliases } from "../protocol/uri.js";
import type { LockerSpec } from "../protocol/lock.js";
import type { Reporter } from "../protocol/report.js";
import { writeManifestAndLock } from "./lockfile.js";
import { ResolutionError } from "./pubgrub.js";
import { newStats, type NetStats } from "./connections.js";
import { loadProject, type Project } from "./project.js";
import { lockSatisfies } from "../protocol/lock-check.js";
import { loadGraph, saveGraph } from "./graph.js";
import { resolveProject, type Resolution } from "./resolve.js";

export interface ResolverConfig {
  readonly aliases: Aliases;
  readonly listingTtl: number;
  readonly cacheDir: string;
  /** The locker a new lock names ([locker], CPR_LOCKER_*). */
  readonly locker: LockerSpec;
}

/** What resolution needs of the effective configuration (src/config: files, then CPR_* variables). */
export async function resolverConfig(cwd: string, env: NodeJS.ProcessEnv): Promise<ResolverConfig> {
  const { config } = await loadConfig({ cwd, env });
  return { aliases: config.aliases, listingTtl: config.listingTtl, cacheDir: config.cacheDir, locker: config.locker };
}

export interface LockOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly reporter: Reporter;
  /** A new manifest text to validate, resolve and write with the lock (add/remove); default: the file's. */
  readonly manifestText?: string;
  readonly offline?: boolean;
  /** Fail without writing if the lock would change. */
  readonly locked?: boolean;
  readonly update?: readonly string[] | true;
  readonly stats?: NetStats;
  readonly config?: ResolverConfig;
  /** Resolve and report, but write nothing. */
  readonly dryRun?: boolean;
}

export interface LockOutcome {
  readonly project: Project;
  /** "unchanged": the lock already satisfied the manifest (no network); "same": resolved to identical bytes. */
  readonly status: "unchanged" | "same" | "written" | "would-change";
  readonly resolution: Resolution | null;
  readonly stats: NetStats;
  /** The run was --offline (nothing more may be read from the network). */
  readonly offline: boolean;
}

export async function lockProject(opts: LockOptions): Promise<LockOutcome> {
  const config = opts.config ?? (await resolverConfig(opts.cwd, opts.env));
  const project = loadProject(opts.cwd, opts.manifestText);
  const stats = opts.stats ?? newStats();
  const manifestChanged = opts.manifestText !== undefined;
  if (opts.update === undefined && !manifestChanged && satisfied(project, config.cacheDir)) {
    return { project, status: "unchanged", resolution: null, stats, offline: opts.offline === true };
  }
  let resolution: Resolution;
  try {
    resolution = await resolveProject(project, {
      cacheDir: config.cacheDir,
      listingTtl: config.listingTtl,
      locker: config.locker,
      env: opts.env,
      reporter: opts.reporter,
      stats,
      ...(opts.offline ? { offline: true } : {}),
      ...(opts.update !== undefined ? { update: opts.update } : {}),
    });
  } catch (e) {
    if (e instanceof ResolutionError) {
      throw new CprError("resolve.conflict", `no set of versions satisfies every requirement:\n${indent(e.explanation)}`, {
        hint: e.hint ? e.hint.trim() : "change a requirement named above in atom.toml, then run `cpr resolve`",
        cause: e,
      });
    }
    throw e;
  }
  const same = resolution.lockText === project.lockText;
  if (same && !manifestChanged) {
    saveGraph(config.cacheDir, resolution.lockText, resolution.edges);
    return { project, status: "same", resolution, stats, offline: opts.offline === true };
  }
  if (opts.locked) {
    throw new CprError(
      "resolve.locked",
      `the lock would change (${project.lockText === null ? "there is no atom.lock" : "atom.lock is out of date"}), and --locked forbids writing it`,
      {
        where: project.lockFile,
        hint: "run `cpr resolve` without --locked and commit the new atom.lock",
      },
    );
  }
  if (opts.dryRun) return { project, status: "would-change", resolution, stats, offline: opts.offline === true };
  await writeManifestAndLock(project.dir, manifestChanged ? project.manifestText : null, resolution.lockText);
  saveGraph(config.cacheDir, resolution.lockText, resolution.edges);
  return { project, status: "written", resolution, stats, offline: opts.offline === true };
}

/** Does the lock already satisfy the manifest (no network, no git)? With the graph recorded beside it, when known. */
function satisfied(project: Project, cacheDir: string): boolean {
  const { manifest, lock, lockText } = project;
  if (!lock || lockText === null) return false;
  return lockSatisfies(manifest, lock, loadGraph(cacheDir, lockText));
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
