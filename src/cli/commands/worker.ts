import { flag, str, strs, type Command } from "../command.js";
import { Cache } from "../../git/cache.js";
import { loadConfig } from "../../config/config.js";
import { UsageError } from "../../protocol/errors.js";
import { isSystem } from "../../protocol/farm.js";
import { hostSystem } from "../../nix/store.js";
import { Worker } from "../../registry/worker.js";
import { registryClients, registrySettings } from "../shared.js";

function positiveInt(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1)
    throw new UsageError(`${name} wants a positive whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** `cpr worker`: the build farm's worker. */
export const command: Command = {
  name: "worker",
  usage: "cpr worker --registry URL... --token T [--systems S...] [--jobs N] [--builders SPEC] [--name NAME] [--exit-when-idle] [--json]",
  summary: "Take build jobs from registries: evaluate, build, upload and record (the build farm)",
  help: `Runs a build farm worker (docs/farm.md): claims jobs from the registry's queue, evaluates and builds them exactly
as \`cpr build\` does, uploads the output closure the registry lacks (as \`cpr build --push\`) and reports the
outcome; the registry records the build together with the job's success. Evaluation jobs yield the derivation;
when its outputs are already in the registry's cache the build is recorded at once, otherwise a build job follows.

Several --registry URLs name servers sharing one database: the worker uses the first that answers and moves to
the next when one cannot be reached (or answers 5xx), retrying with backoff. While a job runs its lease is
extended by heartbeats and Nix's output is sent as the job's log (\`cpr jobs log ID\`). A failed evaluation or
build is recorded with its log; it is not retried until a new version is published or someone runs \`cpr jobs
retry\`. SIGTERM or SIGINT stops the worker: running jobs are stopped and given back to the queue, and cpr worker
exits 0.

The token must be a worker token (\`cpr registry token create --worker --set ROOT\` on the server): it claims the
jobs of its sets only.

Options:
  --registry URL    A registry server (repeatable; default config registry.urls, CPR_REGISTRY)
  --token T         Worker token (default config registry.token, CPR_REGISTRY_TOKEN)
  --systems S       Systems to build for (repeatable or comma-separated; default ${hostSystem()})
  --jobs N          Jobs run at once (default 1)
  --builders SPEC   Nix remote builders (Nix's \`builders\` setting, e.g. "ssh://host x86_64-linux"), so
                    builds spread over machines with Nix's own distributed builds
  --name NAME       The name shown in job status (default HOST-PID)
  --poll SECONDS    Seconds between claims while the queue is empty (default 2)
  --exit-when-idle  Exit once the queue holds nothing for this worker
  --json            At exit, print {"worker","succeeded","failed","released","lost"}
  -q, --quiet       Do not report each job on stderr

Exit codes: 0 stopped (by a signal, or idle with --exit-when-idle), 1 failed (a registry refused the token), 2
usage error.
`,
  options: {
    registry: { type: "string", multiple: true },
    token: { type: "string" },
    systems: { type: "string", multiple: true },
    jobs: { type: "string" },
    builders: { type: "string" },
    name: { type: "string" },
    poll: { type: "string" },
    "exit-when-idle": { type: "boolean" },
  },
  maxPositionals: 0,
  async run(ctx, args) {
    const { config, warnings } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    for (const w of warnings) ctx.term.warn(w.code, w.message);
    const settings = registrySettings(config);
    const urls = strs(args, "registry").length ? strs(args, "registry") : settings.urls;
    if (urls.length === 0)
      throw new UsageError("no registry is configured", { hint: "pass --registry URL, or set config registry.urls or CPR_REGISTRY" });
    const token = str(args, "token") ?? settings.token;
    if (!token)
      throw new UsageError("cpr worker needs a worker token", {
        hint: "pass --token T (`cpr registry token create --worker --set ROOT` on the server)",
      });
    const systems = strs(args, "systems")
      .flatMap((s) => s.split(","))
      .map((s) => s.trim())
      .filter(Boolean);
    if (systems.length === 0) systems.push(hostSystem());
    for (const s of systems) if (!isSystem(s)) throw new UsageError(`--systems: ${JSON.stringify(s)} is not a system like x86_64-linux`);
    const jobs = positiveInt(str(args, "jobs"), "--jobs", 1);
    const poll = positiveInt(str(args, "poll"), "--poll", 2);
    const name = str(args, "name");
    if (name !== undefined && (name.length === 0 || name.length > 200)) throw new UsageError("--name wants 1 to 200 characters");
    const builders = str(args, "builders");
    const clients = registryClients(urls, token, "--registry (or config registry.urls, CPR_REGISTRY)");
    const cache = await Cache.open({ dir: config.cacheDir, env: ctx.env });
    const quiet = flag(args, "quiet");
    try {
      const worker = new Worker({
        registries: clients,
        systems,
        jobs,
        cache,
        cwd: ctx.cwd,
        env: ctx.env,
        pollSeconds: poll,
        exitWhenIdle: flag(args, "exit-when-idle"),
        reporter: quiet ? undefined : ctx.term,
        ...(name !== undefined ? { name } : {}),
        ...(builders !== undefined ? { builders } : {}),
      });
      const stop = (signal: NodeJS.Signals): void => {
        if (!quiet) ctx.term.info(`${signal}: stopping (running jobs go back to the queue)`);
        worker.stop();
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      try {
        const stats = await worker.run();
        if (flag(args, "json")) ctx.term.json({ worker: worker.name, ...stats });
        else if (!quiet)
          ctx.term.info(
            `worker ${worker.name}: ${stats.succeeded} succeeded, ${stats.failed} failed, ${stats.released} released, ${stats.lost} lost`,
          );
      } finally {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
      }
      return 0;
    } finally {
      cache.close();
    }
  },
};
