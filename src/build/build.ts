/**
 * `cpr build`: fetch an atom and, recursively, the atoms its `atom.lock` pins (at their locked revs, from their sets'
 * mirrors), write the one Nix expression that evaluates it as its locker would (graph.ts, expression.ts), then
 * instantiate and realise it with Nix. The target system reaches the atom as `cfg.system` and as Nix's own `system`
 * setting.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { silentReporter } from "../protocol/report.js";
import type { AtomUri } from "../protocol/uri.js";
import { currentSystem, derivationOutputs, instantiate, mainProgramOf, realise, type NixOptions } from "../nix/store.js";
import { fetchAtom, type FetchContext, type FetchedAtom } from "../store/fetch.js";
import { nixExpression, type ExpressionResult } from "./expression.js";
import { loadGraph } from "./graph.js";

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
  /** `meta.mainProgram` of the derivation, or null when it declares none. */
  readonly mainProgram: string | null;
  /** The generated expression file. */
  readonly expression: string;
}

/** The expression written for an atom: where it is, and what it evaluates. */
export interface AtomExpression {
  readonly top: FetchedAtom;
  readonly system: string;
  /** The generated file, under <cache>/build/. */
  readonly file: string;
}

/**
 * Fetches the atom named by `uri` and its locked graph, and writes the expression that evaluates it for `system`
 * (default `builtins.currentSystem`): its derivation (`result: "derivation"`, the default), or its value as is.
 */
export async function atomExpression(ctx: BuildContext, uri: AtomUri, opts: { result?: ExpressionResult } = {}): Promise<AtomExpression> {
  const top = await fetchAtom(ctx, uri);
  const nixOpts = { ...ctx.nix, env: ctx.nix?.env ?? ctx.env };
  const system = ctx.system ?? (await currentSystem(nixOpts));
  const result = opts.result ?? "derivation";
  const graph = await loadGraph(
    ctx,
    { label: top.label, version: top.version, set: top.root, rev: top.rev, id: top.id, path: top.path, url: top.url },
    { staticTop: result === "value" },
  );
  const file = await writeExpression(ctx.cache.layout.build, nixExpression(graph, system, { result }));
  return { top, system, file };
}

/** Fetches the atom named by `uri` and its locked graph and evaluates it to its derivation, without building it. */
export async function evaluateAtom(ctx: BuildContext, uri: AtomUri): Promise<BuildResult> {
  return evaluated(ctx, await atomExpression(ctx, uri));
}

/** Instantiates a written expression: its derivation and outputs. */
async function evaluated(ctx: BuildContext, { top, system, file }: AtomExpression): Promise<BuildResult> {
  const nixOpts = { ...ctx.nix, env: ctx.nix?.env ?? ctx.env, system };
  const drv = (await instantiate(file, nixOpts))[0]!;
  const { outputs } = await derivationOutputs(drv, nixOpts);
  const mainProgram = await mainProgramOf(file, nixOpts);
  return {
    label: top.label,
    version: top.version,
    id: top.id,
    set: top.root,
    rev: top.rev,
    system,
    drv,
    outputs,
    mainProgram,
    expression: file,
  };
}

/** Fetches the atom named by `uri` and its locked graph, evaluates and builds it. */
export async function buildAtom(ctx: BuildContext, uri: AtomUri): Promise<BuildResult> {
  const reporter = ctx.reporter ?? silentReporter;
  const expr = await atomExpression(ctx, uri);
  const { top, system } = expr;
  reporter.info(`building ${top.label} ${top.version} (${top.rev.slice(0, 12)}) from ${top.url}`);
  const result = await evaluated(ctx, expr);
  await realise([result.drv], { ...ctx.nix, env: ctx.nix?.env ?? ctx.env, system });
  return result;
}

/** Writes the expression under `dir` (<cache>/build/), named by its content, atomically. */
async function writeExpression(dir: string, text: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${createHash("sha256").update(text).digest("hex").slice(0, 32)}.nix`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
  }
  return file;
}
