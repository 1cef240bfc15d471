import { flag, str, type Command } from "../command.js";
import { Cache } from "../../git/cache.js";
import { loadConfig } from "../../config/config.js";
import { UsageError } from "../../protocol/errors.js";
import { parseAtomUri } from "../../protocol/uri.js";
import { buildAtom } from "../../build/build.js";
import { pushBuild } from "../../registry/push.js";
import { nixStderr, registryClients, registrySettings } from "../shared.js";

/** `cpr build`: fetch an atom and its locked graph, evaluate and build it with Nix, optionally push it. */
export const command: Command = {
  name: "build",
  usage: "cpr build URI [--system S] [--push REGISTRY [--token T]] [--json]",
  summary: "Build an atom with Nix and optionally push it to a registry",
  help: `Fetches the atom named by URI (URL::LABEL[@REQUIREMENT], e.g. gh:owner/repo::hello@^2) and, recursively, the
atoms its atom.lock pins (at their locked revs, from their sets' mirrors) into the shared cache, then evaluates and
builds it with Nix (nix-instantiate, nix-store --realise). Nix's own configuration applies: remote builders
(\`builders\` in nix.conf), substituters, sandboxing.

The atom is evaluated exactly as its lock's locker (nix-lock 0.1.6) evaluates it (docs/evaluation.md): a
[compose.as] nix file is evaluated with \`atoms\` (atoms.deps.from.<tag>.<label>, atoms.deps.pins.<name>,
atoms.deps.get.<name>) and \`cfg\` (cfg.package, cfg.system) in scope; a [compose.with.<label>] composer is called
as \`composer (ROOT + "/<entry>") { extern; config; }\`; a static atom is its parsed manifest. Every atom is
evaluated from its own published tree and atom.lock, at the version the top atom's lock pins. The value must be a
derivation, or an attribute set with a \`default\` derivation. --system S is cfg.system and Nix's \`system\`.

The output paths are printed on stdout, one per line.

With --push, the registry and the token are checked before anything is built; after the build, the output
closure's paths the registry lacks are uploaded (references first) and the build is recorded for config
{"system": S}, so that \`cpr get\` can install it without evaluating. Whether the token may write the atom's set is
known only when the build is recorded.

Options:
  --system S        Target system (default: builtins.currentSystem of Nix)
  --push REGISTRY   Upload the closure and record the build in this registry (http(s) URL)
  --token T         Write token for --push (default: config registry.token, CPR_REGISTRY_TOKEN)
  --json            Print {"label","version","id","drv","outputs":{"out":…}} on stdout (with --push, also "pushed")
  -q, --quiet       Do not show Nix's build output

Exit codes: 0 built (and pushed), 1 failed, 2 usage error.
`,
  options: { system: { type: "string" }, push: { type: "string" }, token: { type: "string" } },
  maxPositionals: 1,
  async run(ctx, args) {
    const target = args.positionals[0];
    if (target === undefined) throw new UsageError("missing URI", { hint: "e.g. `cpr build gh:owner/repo::hello@^2`" });
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const settings = registrySettings(config);
    const pushUrl = str(args, "push");
    const token = str(args, "token") ?? settings.token;
    if (str(args, "token") !== undefined && pushUrl === undefined) throw new UsageError("--token is only used with --push");
    if (pushUrl !== undefined && !token) {
      throw new UsageError("--push needs a write token", { hint: "pass --token T, or set config registry.token or CPR_REGISTRY_TOKEN" });
    }
    const client = pushUrl === undefined ? null : registryClients([pushUrl], token, "--push")[0]!;
    const uri = parseAtomUri(target, config.aliases);
    const cache = await Cache.open({ dir: config.cacheDir, env: ctx.env });
    try {
      // A wrong token or an unreachable registry is reported before the build, not after it.
      if (client) await client.checkWrite();
      const nix = { env: ctx.env, onStderr: nixStderr(args) };
      const built = await buildAtom({ cache, cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, system: str(args, "system"), nix }, uri);
      ctx.term.info(`built ${built.label} ${built.version} for ${built.system}: ${built.drv}`);
      const pushed = client ? await pushBuild(client, built, { nix, reporter: ctx.term }) : null;
      if (pushed)
        ctx.term.info(
          `pushed to ${client!.url}: ${pushed.uploaded.length} path(s) uploaded, ${pushed.present} already there; build recorded`,
        );
      if (flag(args, "json")) {
        const doc: Record<string, unknown> = {
          label: built.label,
          version: built.version,
          id: built.id,
          drv: built.drv,
          outputs: built.outputs,
        };
        if (pushed) doc.pushed = { registry: client!.url, uploaded: pushed.uploaded, present: pushed.present, buildId: pushed.buildId };
        ctx.term.json(doc);
      } else {
        for (const p of Object.values(built.outputs)) ctx.term.out(p);
      }
      return 0;
    } finally {
      cache.close();
    }
  },
};
