import { flag, type Command } from "../command.js";
import { lockProject } from "../../resolve/lock-project.js";
import { reportOutcome } from "../shared.js";

/** `cpr resolve`: bring atom.lock in line with atom.toml, changing as little as possible. */
export const command: Command = {
  name: "resolve",
  usage: "cpr resolve [--locked] [--offline] [--json]",
  summary: "Resolve the whole dependency graph and bring atom.lock in line with atom.toml",
  help: `Resolves the atom's dependencies ([deps.from.<set>] in atom.toml, and theirs, transitively) with PubGrub and
writes atom.lock and atom.toml as a pair (lock first). Locked versions that still satisfy their requirement are
kept; only what must change changes. When the lock already satisfies the manifest nothing is read from the network.

Versions are listed with git ls-refs from every mirror of each set at once; a dead mirror is a warning, mirrors
that disagree (different roots, or one version with two revs) are refused. Dependencies are read from each
candidate's manifest blob (refs/eka/meta/<label>/<version>/manifest), fetched alone into the cache
($XDG_CACHE_HOME/cpr). Listings are cached for the configured TTL, manifests forever. When resolution fails and a
listing came from the cache, those sets are listed again and resolution retried, so a version published within the
TTL is seen at once (never with --offline, whose error then says the cached listing may be stale).

A new lock names the configured locker ([locker] in the config, see \`cpr config --help\`), by default nix-lock
0.1.6 at its published rev, with no network; an existing lock's [locker] is kept.

Prints what changed as \`cpr diff\` does (atoms added (+), removed (-), upgraded or downgraded (~) with the size of
the move and their range of origin commits, direct Nix dependencies), and the composer ([compose]) when it was added,
removed or changed version or entry; the summary counts them all ("1 change: the composer").

Options:
  --locked    Fail (exit 1), writing nothing, if atom.lock would change
  --offline   Resolve from the cache alone; fail naming what is missing
  --json      Print {"status","changes","atoms","diff","network"} on stdout (diff: as \`cpr diff --json\`); each change is
              {"kind":"atom"|"compose"|"locker","label","id","from","to"}

Exit codes: 0 resolved, 1 failed (conflict, unreachable set, --locked and the lock would change), 2 usage error.
`,
  options: { locked: { type: "boolean" }, offline: { type: "boolean" } },
  maxPositionals: 0,
  async run(ctx, args) {
    const outcome = await lockProject({
      cwd: ctx.cwd,
      env: ctx.env,
      reporter: ctx.term,
      locked: flag(args, "locked"),
      offline: flag(args, "offline"),
    });
    await reportOutcome(ctx, flag(args, "json"), outcome);
    return 0;
  },
};
