/**
 * An adapter over the Nix command line: instantiate an expression file, realise derivations or store paths
 * (optionally from an explicit binary cache), query closures and path metadata, and stream NARs.
 *
 * Nix is configured by its users (nix.conf, NIX_CONFIG): this module never sets the sandbox, the build users or the
 * substituters, except that `realise` with `substituters` passes `--option substituters` and
 * `--option trusted-public-keys` so that exactly the given cache and keys are used. `nix` subcommands run with
 * `--extra-experimental-features nix-command`. Every failure is a CprError carrying the command and Nix's stderr.
 */
import { readlink } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { run as runProcess, start, type ProcessErrors } from "../process/run.js";
import { CprError } from "../protocol/errors.js";

export interface NixOptions {
  /** Environment for the nix processes (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** `--store`: a non-default store (a directory for a chroot store, or a store URL); default Nix's own. */
  readonly store?: string;
  /** Working directory (default process.cwd()). */
  readonly cwd?: string;
  /** Receives Nix's stderr as it arrives (progress, build logs); it is also kept for error messages. */
  readonly onStderr?: (text: string) => void;
  /** Nix's `system` setting while evaluating (`instantiate` passes `--option system S`): `builtins.currentSystem`. */
  readonly system?: string;
  /** Aborting it stops the running Nix process (SIGTERM). */
  readonly signal?: AbortSignal;
}

export interface PathInfo {
  /** Full store path. */
  readonly path: string;
  /** As Nix prints it (SRI `sha256-…` in Nix 2.8). */
  readonly narHash: string;
  readonly narSize: number;
  /** Full store paths, sorted. */
  readonly references: readonly string[];
  /** Full path of the deriver, or null. */
  readonly deriver: string | null;
  readonly signatures: readonly string[];
}

export interface DerivationInfo {
  readonly drv: string;
  /** Output name → store path. */
  readonly outputs: Readonly<Record<string, string>>;
}

const EXPERIMENTAL = ["--extra-experimental-features", "nix-command"];
/** How much of Nix's stderr an error message keeps (the end, where Nix says what failed). */
const STDERR_KEEP = 8000;

interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a Nix program to completion; a non-zero exit or a missing program is a CprError with Nix's stderr. */
async function run(program: string, args: readonly string[], opts: NixOptions, what: string): Promise<RunResult> {
  const r = await runProcess(program, args, {
    cwd: opts.cwd,
    env: opts.env,
    onStderr: opts.onStderr,
    signal: opts.signal,
    stderrLimit: STDERR_KEEP * 2,
    errors: nixErrors(program, args, what, opts.onStderr !== undefined),
  });
  return { stdout: r.stdout.toString("utf8"), stderr: r.stderr };
}

/** Nix's errors: `nix.missing` (not on PATH), `nix.spawn`, `nix.failed` (nixFailure). */
function nixErrors(program: string, args: readonly string[], what: string, shown: boolean): ProcessErrors {
  return {
    spawn: "nix.spawn",
    missing: "nix.missing",
    hint: "install Nix (https://nixos.org/download) and make sure its programs are on PATH",
    failure: (e) => nixFailure(program, args, what, e.code, e.signal, e.stderr, shown),
  };
}

/**
 * The error for a failed Nix command. When Nix's stderr was already passed through to the user (`shown`), only its
 * `warning:` and `error:` lines are repeated, so the message does not print the whole log a second time.
 */
function nixFailure(
  program: string,
  args: readonly string[],
  what: string,
  code: number | null,
  signal: NodeJS.Signals | null,
  stderr: string,
  shown = false,
): CprError {
  const errors = stderr
    .split("\n")
    .filter((l) => /^(error|warning)\b/.test(l.trim()))
    .map((l) => l.trim());
  const tail = shown && errors.length > 0 ? errors.slice(-5).join("\n") : stderr.trim().slice(-STDERR_KEEP);
  const status = signal ? `killed by ${signal}` : `exit ${code}`;
  return new CprError("nix.failed", `${what} failed (${program} ${status})${tail ? `:\n${indent(tail)}` : " with no message"}`, {
    where: `${program} ${args.join(" ")}`,
    ...(shown && errors.length > 0 ? { hint: "Nix's full output is above" } : {}),
  });
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

/**
 * Where a store path's files are on this machine: under the store's root for a chroot store (`--store /tmp/store`,
 * or a `local?root=DIR` URL), else the path itself.
 */
export function physicalPath(storePath: string, store: string | undefined): string {
  if (store === undefined) return storePath;
  let root: string | null = null;
  if (store.startsWith("/")) root = store;
  else {
    const q = store.indexOf("?");
    if (q >= 0 && /^(local|local:\/\/)?$/.test(store.slice(0, q))) root = new URLSearchParams(store.slice(q + 1)).get("root");
  }
  return root ? `${root.replace(/\/+$/, "")}${storePath}` : storePath;
}

function storeArgs(opts: NixOptions): string[] {
  return opts.store ? ["--store", opts.store] : [];
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CprError("nix.output", `${what}: Nix printed something that is not JSON: ${JSON.stringify(text.slice(0, 200))}`, {
      cause: e,
    });
  }
}

/** `builtins.currentSystem` as Nix evaluates it (honours `system` in nix.conf). */
export async function currentSystem(opts: NixOptions = {}): Promise<string> {
  const { stdout } = await run(
    "nix-instantiate",
    ["--eval", "--json", "--expr", "builtins.currentSystem"],
    opts,
    "asking Nix for the current system",
  );
  const value = parseJson(stdout, "builtins.currentSystem");
  if (typeof value !== "string" || value === "")
    throw new CprError("nix.output", `builtins.currentSystem is not a string: ${stdout.trim()}`);
  return value;
}

/**
 * `meta.mainProgram` of the value of an expression file (a derivation): the program `cpr run` runs, or null when it
 * declares none (a derivation's `meta` is not in its .drv, so it is read here, when the build is evaluated anyway).
 */
export async function mainProgramOf(file: string, opts: NixOptions = {}): Promise<string | null> {
  const expr = `let v = import ${JSON.stringify(file)}; m = if builtins.isAttrs v then v.meta.mainProgram or null else null; in if builtins.isString m then m else null`;
  const args = [...storeArgs(opts), ...(opts.system ? ["--option", "system", opts.system] : []), "--eval", "--json", "--expr", expr];
  const { stdout } = await run("nix-instantiate", args, opts, `reading meta.mainProgram of ${file}`);
  const value = parseJson(stdout, "meta.mainProgram");
  return typeof value === "string" && value !== "" ? value : null;
}

/**
 * `nix-instantiate FILE [--argstr NAME VALUE]…`: evaluates the file and returns the derivation paths it instantiates
 * (one per top-level derivation). The .drv files are written to the store, without a GC root.
 */
export async function instantiate(
  file: string,
  opts: NixOptions & { readonly argstr?: Readonly<Record<string, string>> } = {},
): Promise<string[]> {
  const args = [
    ...storeArgs(opts),
    ...(opts.system ? ["--option", "system", opts.system] : []),
    ...Object.entries(opts.argstr ?? {}).flatMap(([k, v]) => ["--argstr", k, v]),
    file,
  ];
  const { stdout } = await run("nix-instantiate", args, opts, `evaluating ${file}`);
  const drvs = lines(stdout).map((l) => l.replace(/!.*$/, ""));
  if (drvs.length === 0)
    throw new CprError("nix.no-derivation", `${file} evaluated to no derivation`, {
      where: file,
      hint: "the value must be a derivation (or an attribute set with a `default` derivation)",
    });
  return drvs;
}

/** The outputs of a derivation (`nix show-derivation`). */
export async function derivationOutputs(drv: string, opts: NixOptions = {}): Promise<DerivationInfo> {
  const { stdout } = await run("nix", [...EXPERIMENTAL, "show-derivation", ...storeArgs(opts), drv], opts, `reading ${drv}`);
  const doc = parseJson(stdout, "nix show-derivation") as Record<string, { outputs?: Record<string, { path?: string }> }>;
  const entry = doc[drv] ?? Object.values(doc)[0];
  const outputs: Record<string, string> = {};
  for (const [name, o] of Object.entries(entry?.outputs ?? {})) {
    if (typeof o.path !== "string")
      throw new CprError("nix.output", `${drv}: output ${name} has no path (a content-addressed derivation is not supported)`, {
        where: drv,
      });
    outputs[name] = o.path;
  }
  if (Object.keys(outputs).length === 0) throw new CprError("nix.output", `${drv} has no outputs`, { where: drv });
  return { drv, outputs };
}

export interface RealiseOptions extends NixOptions {
  /**
   * Substitute from exactly these binary caches (`--option substituters`); with this set, `trustedKeys` are the
   * only trusted public keys (`--option trusted-public-keys`) and must not be empty.
   */
  readonly substituters?: readonly string[];
  readonly trustedKeys?: readonly string[];
  /**
   * Make an indirect GC root (`--add-root PATH`): a symlink at PATH to the (first) result. With several outputs,
   * Nix names the others PATH-<n>.
   */
  readonly outLink?: string;
}

/**
 * `nix-store --realise PATHS`: builds derivations, or substitutes output paths, and returns the resulting store
 * paths (in the order Nix prints them).
 */
export async function realise(paths: readonly string[], opts: RealiseOptions = {}): Promise<string[]> {
  if (paths.length === 0) return [];
  const args = ["--realise", ...storeArgs(opts)];
  if (opts.substituters) {
    if (!opts.trustedKeys?.length) {
      throw new CprError("nix.no-keys", "substituting from a binary cache needs at least one trusted public key", {
        hint: "pass the cache's public key (name:base64)",
      });
    }
    args.push("--option", "substituters", opts.substituters.join(" "), "--option", "trusted-public-keys", opts.trustedKeys.join(" "));
  }
  if (opts.outLink) args.push("--add-root", opts.outLink);
  args.push(...paths);
  const from = opts.substituters ? ` from ${opts.substituters.join(", ")}` : "";
  const { stdout } = await run("nix-store", args, opts, `realising ${paths.join(" ")}${from}`);
  // With --add-root, nix-store prints the roots (symlinks to the store paths) instead of the store paths.
  const printed = lines(stdout);
  return opts.outLink ? Promise.all(printed.map(async (root) => (await readlink(root)).replace(/\/+$/, ""))) : printed;
}

/** `nix-store --query --requisites PATHS`: every path of the closure (the paths themselves included). */
export async function queryClosure(paths: readonly string[], opts: NixOptions = {}): Promise<string[]> {
  if (paths.length === 0) return [];
  const { stdout } = await run(
    "nix-store",
    ["--query", "--requisites", ...storeArgs(opts), ...paths],
    opts,
    `querying the closure of ${paths.join(" ")}`,
  );
  return lines(stdout);
}

/** `nix path-info --json PATHS`: NAR hash and size, references and deriver of each path (valid paths only). */
export async function pathInfo(paths: readonly string[], opts: NixOptions & { readonly recursive?: boolean } = {}): Promise<PathInfo[]> {
  if (paths.length === 0) return [];
  const args = [...EXPERIMENTAL, "path-info", "--json", ...(opts.recursive ? ["--recursive"] : []), ...storeArgs(opts), ...paths];
  const { stdout } = await run("nix", args, opts, `reading the path info of ${paths.join(" ")}`);
  const doc = parseJson(stdout, "nix path-info --json");
  if (!Array.isArray(doc)) throw new CprError("nix.output", "nix path-info --json did not print an array");
  return doc.map((raw: Record<string, unknown>) => {
    if (raw.valid === false || typeof raw.narHash !== "string") {
      throw new CprError("nix.invalid-path", `${String(raw.path)} is not a valid path of the store${opts.store ? ` ${opts.store}` : ""}`, {
        where: String(raw.path),
      });
    }
    return {
      path: String(raw.path),
      narHash: raw.narHash,
      narSize: Number(raw.narSize),
      references: Array.isArray(raw.references) ? raw.references.map(String).sort() : [],
      deriver: typeof raw.deriver === "string" ? raw.deriver : null,
      signatures: Array.isArray(raw.signatures) ? raw.signatures.map(String) : [],
    };
  });
}

/**
 * Orders path infos so that every path comes after the paths it references (references first), as a binary cache
 * wants uploads. Self-references are ignored; references outside `infos` are assumed present already.
 */
export function referencesFirst<T extends Pick<PathInfo, "path" | "references">>(infos: readonly T[]): T[] {
  const byPath = new Map(infos.map((i) => [i.path, i]));
  const sorted = [...infos].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const out: T[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (i: T): void => {
    const s = state.get(i.path);
    if (s === "done") return;
    if (s === "visiting") throw new CprError("nix.cycle", `store paths reference each other in a cycle through ${i.path}`);
    state.set(i.path, "visiting");
    for (const r of i.references) {
      const dep = r !== i.path ? byPath.get(r) : undefined;
      if (dep) visit(dep);
    }
    state.set(i.path, "done");
    out.push(i);
  };
  for (const i of sorted) visit(i);
  return out;
}

/**
 * Streams the NAR serialisation of a store path (`nix-store --dump`, or `nix store dump-path --store` for a
 * non-default store). The stream errors with a CprError carrying Nix's stderr when Nix fails.
 */
export function dumpNar(path: string, opts: NixOptions = {}): Readable {
  const [program, args] = opts.store
    ? (["nix", [...EXPERIMENTAL, "store", "dump-path", "--store", opts.store, path]] as const)
    : (["nix-store", ["--dump", path]] as const);
  const out = new PassThrough();
  const child = start(program, args, {
    cwd: opts.cwd,
    env: opts.env,
    onStderr: opts.onStderr,
    stderrLimit: STDERR_KEEP * 2,
    errors: nixErrors(program, args, `dumping ${path}`, false),
  });
  child.stdout.pipe(out, { end: false });
  child.exit.then(
    () => out.end(),
    (e: Error) => out.destroy(e),
  );
  out.on("close", () => child.kill());
  return out;
}

/**
 * The Nix system name of this machine (`x86_64-linux`, `aarch64-darwin`, …), from Node's platform and architecture,
 * for commands that must not evaluate (Nix's `system` setting, when changed in nix.conf, is not seen).
 */
export function hostSystem(arch: string = process.arch, platform: string = process.platform): string {
  const cpu: Record<string, string> = {
    x64: "x86_64",
    arm64: "aarch64",
    ia32: "i686",
    arm: "armv7l",
    riscv64: "riscv64",
    ppc64: "powerpc64le",
    s390x: "s390x",
    loong64: "loongarch64",
  };
  return `${cpu[arch] ?? arch}-${platform}`;
}

// ── adding paths computed outside Nix (grafts, docs/grafts.md) ──

/**
 * `nix-store --import`: adds the paths of an export stream (src/nix/nar-export.ts), references first. Nix accepts it
 * from root and trusted users only, and holds each NAR in memory. Returns the paths imported.
 */
export async function importPaths(exported: Readable, opts: NixOptions = {}): Promise<string[]> {
  const args = ["--import", ...storeArgs(opts)];
  const r = await runProcess("nix-store", args, {
    cwd: opts.cwd,
    env: opts.env,
    input: exported,
    onStderr: opts.onStderr,
    stderrLimit: STDERR_KEEP * 2,
    errors: nixErrors("nix-store", args, "importing paths", opts.onStderr !== undefined),
  });
  return lines(r.stdout.toString("utf8"));
}

/**
 * `nix copy --no-recursive --from file://DIR PATHS`: adds paths from a local binary cache directory (narinfos and
 * NARs). Nix accepts a path from an untrusted user when it is content-addressed, or signed by a trusted key.
 */
export async function copyFromCacheDir(dir: string, paths: readonly string[], opts: NixOptions = {}): Promise<void> {
  if (paths.length === 0) return;
  const args = [
    ...EXPERIMENTAL,
    "copy",
    "--no-recursive",
    "--from",
    `file://${dir}`,
    ...(opts.store ? ["--to", opts.store] : []),
    ...paths,
  ];
  await run("nix", args, opts, `copying ${paths.join(" ")} from file://${dir}`);
}
