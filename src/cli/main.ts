import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Command, ParsedArgs } from "./command.js";
import { commonOptions } from "./command.js";

/**
 * Entry point. Kept light: `cpr --version` and `cpr --help` load nothing but this file, so start-up stays close
 * to bare Node. Each verb's module is imported only when that verb runs.
 */

interface VerbEntry {
  summary: string;
  load: () => Promise<{ command: Command }>;
}

const VERBS: Record<string, VerbEntry> = {
  new: { summary: "Create a new atom: PATH/atom.toml, listed in ekala.toml", load: () => import("./commands/new.js") },
  init: { summary: "Mark a remote as an atom set by pushing refs/ekala/init", load: () => import("./commands/init.js") },
  publish: {
    summary: "Publish atoms as reproducible orphan commits and push them atomically",
    load: () => import("./commands/publish.js"),
  },
  yank: {
    summary: "Withdraw a published version (with a reason) without deleting it, or undo that",
    load: () => import("./commands/yank.js"),
  },
  ls: { summary: "List a set's atoms and versions over git ls-refs, without cloning", load: () => import("./commands/ls.js") },
  id: { summary: "Print the AtomId of local atoms, or of labels under a given root", load: () => import("./commands/id.js") },
  uri: { summary: "Explain how an atom URI expands", load: () => import("./commands/uri.js") },
  config: { summary: "Show the effective configuration and where each value comes from", load: () => import("./commands/config.js") },
  add: { summary: "Add an atom or direct Nix dependency to atom.toml and lock it", load: () => import("./commands/add.js") },
  remove: { summary: "Remove a dependency from atom.toml and the lock", load: () => import("./commands/remove.js") },
  resolve: {
    summary: "Resolve the whole dependency graph and bring atom.lock in line with atom.toml",
    load: () => import("./commands/resolve.js"),
  },
  update: { summary: "Move locked atoms to the newest versions their requirements allow", load: () => import("./commands/update.js") },
  outdated: {
    summary: "Show locked atoms with newer versions: the newest their requirements allow and the newest published",
    load: () => import("./commands/outdated.js"),
  },
  diff: {
    summary: "Show what changed between two locks: atoms added, removed, upgraded, downgraded, with origin ranges",
    load: () => import("./commands/diff.js"),
  },
  tree: { summary: "Print the locked dependency graph (no network)", load: () => import("./commands/tree.js") },
  why: { summary: "Show the chain of requirements that pulled an atom into the lock", load: () => import("./commands/why.js") },
  fetch: {
    summary: "Fetch exactly an atom commit (no history, no other atoms) and materialise it read-only",
    load: () => import("./commands/fetch.js"),
  },
  verify: { summary: "Check that published atoms are exactly their source, with signatures", load: () => import("./commands/verify.js") },
  serve: { summary: "Run the registry: catalogue, build records and a Nix binary cache", load: () => import("./commands/serve.js") },
  registry: { summary: "Manage a registry's signing key and write tokens", load: () => import("./commands/registry.js") },
  build: { summary: "Build an atom with Nix and optionally push it to a registry", load: () => import("./commands/build.js") },
  get: { summary: "Install an atom's built package from a registry, without evaluating", load: () => import("./commands/get.js") },
  graft: {
    summary: "Move a built atom onto newer compatible dependencies, without rebuilding",
    load: () => import("./commands/graft.js"),
  },
  run: {
    summary: "Install an atom's build from a registry (no evaluation) and run its program",
    load: () => import("./commands/run.js"),
  },
  shell: {
    summary: "Install several atoms' builds from a registry (no evaluation) and open a shell with them on PATH",
    load: () => import("./commands/shell.js"),
  },
  search: { summary: "Search registries and configured sets for atoms", load: () => import("./commands/search.js") },
  worker: {
    summary: "Take build jobs from registries: evaluate, build, upload and record (the build farm)",
    load: () => import("./commands/worker.js"),
  },
  jobs: { summary: "Show and manage a registry's build jobs (the build farm's queue)", load: () => import("./commands/jobs.js") },
};

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    return pkg.version;
  } catch {
    return "unknown";
  }
}

function globalHelp(): string {
  const width = Math.max(...Object.keys(VERBS).map((v) => v.length));
  const verbs = Object.entries(VERBS)
    .map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}`)
    .join("\n");
  return `cpr: versioned atoms for Nix, with git as the only infrastructure

Usage: cpr <command> [options]

Commands:
${verbs}

Options:
  -h, --help     Show help (also: cpr <command> --help)
  -V, --version  Show the version, the atom format and the pinned Unicode version

Environment:
  NO_COLOR       Disable colour on stderr
  GIT_SSH_COMMAND, GIT_SSH
                 Used for ssh:// and scp-style remotes, as git does

Exit codes: 0 success, 1 failure, 2 usage error.
`;
}

export function commandHelp(cmd: Command): string {
  return `Usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help.trimEnd()}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === "--version" || first === "-V") {
    const { UNICODE_VERSION } = await import("../protocol/unicode-version.js");
    process.stdout.write(`cpr ${packageVersion()} (atom format pre1, Unicode ${UNICODE_VERSION})\n`);
    return 0;
  }
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    const topic = first === "help" ? argv[1] : undefined;
    if (topic === undefined) {
      (first === undefined ? process.stderr : process.stdout).write(globalHelp());
      return first === undefined ? 2 : 0;
    }
    argv = [topic, "--help"];
  }
  const verb = argv[0]!;
  const entry = Object.hasOwn(VERBS, verb) ? VERBS[verb] : undefined;
  const { createTerminal } = await import("./terminal.js");
  if (!entry) {
    const term = createTerminal();
    const close = Object.keys(VERBS).filter((v) => v.startsWith(verb.slice(0, 2)));
    term.error(`unknown command '${verb}'${close.length ? ` (did you mean ${close.join(", ")}?)` : ""}`);
    process.stderr.write("Run 'cpr --help' for the list of commands.\n");
    return 2;
  }
  const { command } = await entry.load();
  const { describeError, CprError, UsageError } = await import("../protocol/errors.js");
  let args: ParsedArgs;
  try {
    const parsed = parseArgs({
      args: argv.slice(1),
      options: { ...commonOptions, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    args = { values: parsed.values as ParsedArgs["values"], positionals: parsed.positionals };
    if (args.values.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    const max = command.maxPositionals ?? Infinity;
    if (args.positionals.length > max) {
      throw new UsageError(`too many arguments: ${args.positionals.slice(max).join(" ")}`);
    }
  } catch (err) {
    const term = createTerminal();
    term.error(err instanceof Error ? err.message.replace(/\. To specify a positional.*$/s, "") : String(err));
    process.stderr.write(`Usage: ${command.usage}\nRun 'cpr ${verb} --help' for more.\n`);
    return 2;
  }
  const term = createTerminal({ quiet: args.values.quiet === true });
  try {
    return await command.run({ term, cwd: process.cwd(), env: process.env }, args);
  } catch (err) {
    if (err instanceof UsageError) {
      term.error(describeError(err));
      process.stderr.write(`Usage: ${command.usage}\n`);
      return 2;
    }
    if (args.values.json === true && err instanceof CprError) {
      term.json({ error: err.toJSON() });
    }
    term.error(describeError(err));
    return 1;
  }
}
