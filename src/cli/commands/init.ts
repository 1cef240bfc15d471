import { str, type Command } from "../command.js";
import { Repo } from "../../git/repo.js";
import { resolveRemote } from "../../git/remote.js";
import { initRemote } from "../../publish/init.js";

/** `cpr init`: push refs/ekala/init (the root of HEAD's history) to a remote. */
export const command: Command = {
  name: "init",
  usage: "cpr init [--remote NAME_OR_URL] [--json]",
  summary: "Mark a remote as an atom set by pushing refs/ekala/init",
  help: `Computes the set root (the first commit of HEAD's history), sets the local refs/ekala/init to it and pushes
it to the remote. A remote that already has the same root is left as it is; one with another root is an error.
Nothing else is written: no commit and no ekala.toml.

Options:
  --remote NAME_OR_URL  Remote name, URL, path or alias such as gh:owner/repo
                        (default: the current branch's upstream remote, else origin)
  --json                Print {"root","remote","status"} on stdout (status: initialized | already)
  -q, --quiet           Print nothing but errors
`,
  options: { remote: { type: "string" } },
  maxPositionals: 0,
  async run(ctx, args) {
    const repo = await Repo.open(ctx.cwd, { env: ctx.env, repo: "user" });
    try {
      const remote = await resolveRemote(str(args, "remote"), repo, ctx.cwd);
      const result = await initRemote({ repo, remote, reporter: ctx.term, env: ctx.env, cwd: ctx.cwd });
      if (args.values.json === true) ctx.term.json(result);
      else if (result.status === "already") ctx.term.info(`${result.remote} is already initialized with root ${result.root}`);
      else ctx.term.info(`initialized ${result.remote}: refs/ekala/init = ${result.root}`);
      return 0;
    } finally {
      repo.close();
    }
  },
};
