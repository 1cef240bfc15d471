import { flag, str, type Command } from "../command.js";
import { loadConfig } from "../../config/config.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { JOB_KINDS, JOB_STATES, type JobView } from "../../protocol/farm.js";
import { isAtomId } from "../../protocol/id.js";
import { describeJob } from "../../registry/queue.js";
import { registryClients, registrySettings } from "../shared.js";

const ACTIONS = ["list", "show", "log", "retry", "cancel"] as const;

function jobNumber(text: string | undefined): number {
  if (text === undefined) throw new UsageError("missing job ID", { hint: "`cpr jobs list` shows the ids" });
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`a job ID is a number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function line(j: JobView): string {
  return `${String(j.id).padStart(6)}  ${j.state.padEnd(9)} ${j.kind.padEnd(5)} ${j.atom.label} ${j.version} ${j.system}${j.worker && j.state === "running" ? `  on ${j.worker}` : ""}${j.position !== null ? `  #${j.position + 1} in queue` : ""}`;
}

/** `cpr jobs`: the registry's build farm queue. */
export const command: Command = {
  name: "jobs",
  usage: "cpr jobs [list|show ID|log ID|retry ID|cancel ID] [--registry URL] [--state S] [--atom ID] [--system S] [--follow] [--json]",
  summary: "Show and manage a registry's build jobs (the build farm's queue)",
  help: `cpr jobs list [--state S] [--atom ID] [--system S] [--kind eval|build] [--limit N]
  Lists jobs, newest first: id, state (queued, running, succeeded, failed, cancelled), kind (eval: evaluate to a
  derivation; build: build it, upload and record), atom, version, system, and for a queued job its place in the
  queue, for a running one its worker.

cpr jobs show ID
  One job in full: derivation, outputs, attempts (worker, outcome), error, the build record it made.

cpr jobs log ID [--follow] [--attempt N]
  The job's log (Nix's output, as the worker sent it; the latest attempt unless --attempt). --follow keeps
  printing while the job runs.

cpr jobs retry ID / cpr jobs cancel ID --token T
  Queues a failed or cancelled job again / cancels a queued or running one. Needs a write token of the job's
  set (not a worker token).

Options:
  --registry URL   The registry (default: the first of config registry.urls, CPR_REGISTRY)
  --token T        Write token for retry and cancel (default config registry.token, CPR_REGISTRY_TOKEN)
  --state S        list: only jobs in this state
  --atom ID        list: only jobs of this AtomId
  --system S       list: only jobs for this system
  --kind K         list: only eval or build jobs
  --limit N        list: at most N jobs (default 50)
  --follow         log: follow a running job's log
  --attempt N      log: this attempt's log
  --json           list: {"jobs":[…]}; show, retry, cancel: the job; log: {"id","log"}

Exit codes: 0 ok, 1 failed (unknown job, refused), 2 usage error.
`,
  options: {
    registry: { type: "string" },
    token: { type: "string" },
    state: { type: "string" },
    atom: { type: "string" },
    system: { type: "string" },
    kind: { type: "string" },
    limit: { type: "string" },
    follow: { type: "boolean" },
    attempt: { type: "string" },
  },
  maxPositionals: 2,
  async run(ctx, args) {
    const [actionText, idText] = args.positionals;
    const action = (actionText ?? "list") as (typeof ACTIONS)[number];
    if (!ACTIONS.includes(action)) throw new UsageError(`unknown action '${actionText}'`, { hint: `one of ${ACTIONS.join(", ")}` });
    if (action === "list" && idText !== undefined)
      throw new UsageError("cpr jobs list takes no ID (filter with --state, --atom, --system)");
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const settings = registrySettings(config);
    const url = str(args, "registry") ?? settings.urls[0];
    if (url === undefined)
      throw new UsageError("no registry is configured", { hint: "pass --registry URL, or set config registry.urls or CPR_REGISTRY" });
    const token = str(args, "token") ?? settings.token;
    const client = registryClients([url], token, "--registry")[0]!;
    const json = flag(args, "json");

    if (action === "list") {
      const state = str(args, "state");
      if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
        throw new UsageError(`--state must be one of ${JOB_STATES.join(", ")}, got ${JSON.stringify(state)}`);
      const kind = str(args, "kind");
      if (kind !== undefined && !(JOB_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--kind must be eval or build`);
      const atom = str(args, "atom");
      if (atom !== undefined && !isAtomId(atom))
        throw new UsageError(`--atom wants an AtomId (\`cpr id\` prints it), got ${JSON.stringify(atom)}`);
      const limitText = str(args, "limit");
      if (limitText !== undefined && (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1))
        throw new UsageError("--limit wants a positive number");
      const jobs = await client.jobs({
        state,
        atom,
        system: str(args, "system"),
        kind,
        limit: limitText === undefined ? 50 : Number(limitText),
      });
      if (json) ctx.term.json({ jobs });
      else if (jobs.length === 0) ctx.term.info("no jobs");
      else for (const j of jobs) ctx.term.out(line(j));
      return 0;
    }

    const id = jobNumber(idText);
    if (action === "show") {
      const job = await client.job(id);
      if (!job) throw new CprError("registry.http-404", `registry ${client.url} has no job ${id}`, { where: client.url });
      if (json) ctx.term.json(job);
      else {
        ctx.term.out(line(job));
        ctx.term.out(`  ${describeJob(job, Date.now())}`);
        if (job.drv) ctx.term.out(`  drv     ${job.drv}`);
        for (const [name, p] of Object.entries(job.outputs ?? {})) ctx.term.out(`  ${name.padEnd(7)} ${p}`);
        if (job.buildId !== null) ctx.term.out(`  build   ${job.buildId}`);
        for (const a of job.attemptList as { attempt: number; worker: string; outcome: string | null }[])
          ctx.term.out(`  attempt ${a.attempt} on ${a.worker}: ${a.outcome ?? "running"}`);
        if (job.error) ctx.term.out(`  error   ${job.error.split("\n")[0]}`);
      }
      return 0;
    }
    if (action === "log") {
      const attemptText = str(args, "attempt");
      if (attemptText !== undefined && !/^\d{1,6}$/.test(attemptText)) throw new UsageError("--attempt wants a number");
      const follow = flag(args, "follow") && !json;
      const text = await client.jobLog(id, {
        follow,
        ...(attemptText !== undefined ? { attempt: Number(attemptText) } : {}),
        ...(json ? {} : { onText: (t: string) => void process.stdout.write(t) }),
      });
      if (json) ctx.term.json({ id, log: text });
      return 0;
    }
    if (!token)
      throw new UsageError(`cpr jobs ${action} needs a write token of the job's set`, {
        hint: "pass --token T, or set config registry.token or CPR_REGISTRY_TOKEN",
      });
    const job = await client.manageJob(id, action);
    if (json) ctx.term.json(job);
    else ctx.term.info(`job ${job.id} (${job.kind} ${job.atom.label} ${job.version} ${job.system}) is ${job.state}`);
    return 0;
  },
};
