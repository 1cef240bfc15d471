/**
 * `cpr build --push`: upload a build's output closure to a registry and record the build there.
 */
import { silentReporter } from "../protocol/report.js";
import { dumpNar, pathInfo, referencesFirst, type NixOptions } from "../nix/store.js";
import type { BuildResult } from "../build/build.js";
import type { FetchContext } from "../store/fetch.js";
import type { RegistryClient } from "./client.js";

export interface PushResult {
  /** Store paths uploaded, in upload order. */
  readonly uploaded: readonly string[];
  /** Closure paths the registry already had. */
  readonly present: number;
  readonly buildId: unknown;
}

/** What pushClosure did. */
export interface ClosurePush {
  /** Store paths uploaded, in upload order. */
  readonly uploaded: readonly string[];
  /** Closure paths the registry already had. */
  readonly present: number;
}

/**
 * Uploads the paths of the outputs' closure that the registry lacks, references first, each NAR streamed from Nix.
 * Idempotent: a path another upload stored meanwhile is accepted as present.
 */
export async function pushClosure(
  client: RegistryClient,
  outputs: Readonly<Record<string, string>>,
  opts: { nix?: NixOptions; reporter?: FetchContext["reporter"] } = {},
): Promise<ClosurePush> {
  const reporter = opts.reporter ?? silentReporter;
  const infos = await pathInfo(Object.values(outputs), { ...opts.nix, recursive: true });
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
  return { uploaded, present: infos.length - todo.length };
}

/** Uploads the outputs' closure (pushClosure), then records the build with config {"system": S}. */
export async function pushBuild(
  client: RegistryClient,
  built: Omit<BuildResult, "expression">,
  opts: { nix?: NixOptions; reporter?: FetchContext["reporter"] } = {},
): Promise<PushResult> {
  const { uploaded, present } = await pushClosure(client, built.outputs, opts);
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
    ...(built.mainProgram ? { mainProgram: built.mainProgram } : {}),
  });
  return { uploaded, present, buildId };
}
