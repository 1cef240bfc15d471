import { lstat } from "node:fs/promises";
import { resolve } from "node:path";
import { flag, str, strs, type Command } from "../command.js";
import { Cache } from "../../git/cache.js";
import { loadConfig } from "../../config/config.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { hostSystem, realise } from "../../nix/store.js";
import { buildAtom } from "../../build/build.js";
import { pushBuild } from "../../registry/push.js";
import { explainNoBuild, install, locate, orderedOutputs, parseGetTarget, resolveBuild } from "../../registry/get.js";
import { awaitQueuedBuild } from "../../registry/queue.js";
import { checkKeys, nixStderr, registryClients, registrySettings } from "../shared.js";
import { automaticReplacements, graftAndInstall, replaceArgs, setUp } from "../grafting.js";

/** `cpr get`: install an atom's build from a registry's binary cache, with no evaluation. */
export const command: Command = {
  name: "get",
  usage:
    "cpr get NAME|URI[@REQ] [--registry URL]... [--key KEY]... [--system S] [--out-link PATH | --no-out-link] [--store STORE] [--build [--push URL --token T]] [--with DEP@VERSION]... [--graft] [--wait] [--json]",
  summary: "Install an atom's built package from a registry, without evaluating",
  help: `Finds the newest version of the atom with a build for this system in a registry, and realises its outputs
from the registry's binary cache with \`nix-store --realise\`: the registry is the only substituter and the
configured public keys are the only trusted keys. No Nix evaluation runs. The store paths are printed on stdout.

A bare NAME[@REQ] is searched in every registry (an ambiguous name is an error listing each candidate with its
set); a URI (gh:owner/repo::hello@^2, ./set.git::hello) names the atom exactly, its set found with ls-refs.

The out-link ./result (or --out-link PATH) is a GC root. Realising into a store other than Nix's default is done
with --store (a directory, e.g. /tmp/store, or a store URL), as nix-store --store does. Nix itself must allow the
substituter: as root, or with the URL in \`trusted-substituters\` when a Nix daemon serves an unprivileged user.

With no build known, cpr get says so and exits 1; --build then builds locally instead (as cpr build does), and with
--push uploads the result too. When the registry's build farm has the version queued or building, cpr get says so
(its place in the queue, or its worker and for how long) and --wait waits for the build instead; a failed build is
reported with the end of its log.

Grafts (docs/grafts.md): --with DEP@VERSION installs the atom's build moved onto that version of its dependency
without rebuilding: a graft the registry has recorded, else one the registry makes (with --token T, a write token
for the atom's set), else one made on this machine (--local); the rules are those of \`cpr graft\` (--alias,
--force, --allow-incompatible as there). --graft grafts onto the newest built version of each dependency that the
automatic rules allow (no override applies) and says which; config graft.auto = true makes it the default.

Options:
  --registry URL    A registry to ask (repeatable; default config registry.urls, CPR_REGISTRY)
  --key KEY         A trusted public key, name:base64 (repeatable; default config registry.keys, CPR_REGISTRY_KEYS)
  --system S        The system to install for (default: this machine's, ${hostSystem()})
  --out-link PATH   Where to make the GC root (default ./result)
  --no-out-link     Make no out-link
  --store STORE     Realise into this Nix store instead of the default one
  --build           Build locally when no build is known
  --push URL        With --build: push the build to this registry
  --token T         Write token for --push (default config registry.token, CPR_REGISTRY_TOKEN)
  --with DEP@VERSION  Install a graft onto this dependency version (repeatable; see above)
  --graft           Graft onto the newest built dependency versions the rules allow (default: config graft.auto)
  --local           With --with/--graft: graft on this machine if the registry has no record
  --sign-key FILE   With --local: sign the graft paths with this key (see cpr graft --help)
  --alias, --force, --allow-incompatible   With --with: as for cpr graft
  --wait            Wait for a queued or running farm build of the version (docs/farm.md)
  --json            Print {"label","version","id","set","rev","system","drv","outputs","registry","outLink","built"}
                    (a graft: cpr graft's document)
  -q, --quiet       Do not show Nix's output

A key that is not name:base64, a malformed registry URL, or no registry at all is a usage error. When Nix refuses
the paths because no trusted key signed them, cpr get says so: check that --key is the registry's own key.

Exit codes: 0 installed, 1 failed (including: no build known), 2 usage error.
`,
  options: {
    registry: { type: "string", multiple: true },
    key: { type: "string", multiple: true },
    system: { type: "string" },
    "out-link": { type: "string" },
    "no-out-link": { type: "boolean" },
    store: { type: "string" },
    build: { type: "boolean" },
    push: { type: "string" },
    token: { type: "string" },
    with: { type: "string", multiple: true },
    graft: { type: "boolean" },
    local: { type: "boolean" },
    "sign-key": { type: "string" },
    alias: { type: "boolean" },
    force: { type: "boolean" },
    "allow-incompatible": { type: "boolean" },
    wait: { type: "boolean" },
  },
  maxPositionals: 1,
  async run(ctx, args) {
    const text = args.positionals[0];
    if (text === undefined)
      throw new UsageError("missing NAME or URI", { hint: "e.g. `cpr get hello` or `cpr get gh:owner/repo::hello@^2`" });
    // ── grafts (docs/grafts.md): --with, --graft, config graft.auto ──
    const withs = strs(args, "with");
    const graftAuto =
      flag(args, "graft") ||
      (withs.length === 0 && !flag(args, "build") && (await loadConfig({ cwd: ctx.cwd, env: ctx.env })).config.graft.auto);
    if (withs.length > 0 || graftAuto) {
      if (flag(args, "build")) throw new UsageError("--build does not go with --with or --graft");
      if (withs.length > 0 && flag(args, "graft")) throw new UsageError("--with and --graft exclude each other");
      if (graftAuto && (flag(args, "alias") || flag(args, "force") || flag(args, "allow-incompatible")))
        throw new UsageError("--graft applies the automatic rules only: --alias, --force and --allow-incompatible need --with");
      const setup = await setUp(ctx, args, text);
      if (withs.length > 0) return graftAndInstall(ctx, args, setup, replaceArgs(args, "with"), { localFirst: false });
      const chosen = await automaticReplacements(ctx, setup);
      if (chosen.length > 0) {
        try {
          return await graftAndInstall(ctx, args, setup, chosen, { localFirst: false });
        } catch (e) {
          // Not recorded, and neither a token nor --local to make it: the build as it is.
          if (!(e instanceof CprError) || e.code !== "graft.not-found") throw e;
          ctx.term.warn("graft.no-upgrade", `${e.message}; installing the build as it is (pass --token T or --local to graft)`);
        }
      } else
        ctx.term.warn(
          "graft.no-upgrade",
          `no dependency of ${setup.build.label} ${setup.build.version} has a newer built version the rules allow: installing the build as it is`,
        );
    } else if (flag(args, "local") || flag(args, "alias") || flag(args, "force") || flag(args, "allow-incompatible"))
      throw new UsageError("--local, --alias, --force and --allow-incompatible are used with --with");
    if (str(args, "out-link") !== undefined && flag(args, "no-out-link"))
      throw new UsageError("--out-link and --no-out-link exclude each other");
    if (str(args, "push") !== undefined && !flag(args, "build")) throw new UsageError("--push is only used with --build");
    if (str(args, "token") !== undefined && str(args, "push") === undefined && !graftAuto)
      throw new UsageError("--token is only used with --build --push, --with or --graft");
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const settings = registrySettings(config);
    const urls = strs(args, "registry").length ? strs(args, "registry") : settings.urls;
    const keys = strs(args, "key").length ? strs(args, "key") : settings.keys;
    const token = str(args, "token") ?? settings.token;
    if (str(args, "push") !== undefined && !token)
      throw new UsageError("--push needs a write token", { hint: "pass --token T, or set config registry.token or CPR_REGISTRY_TOKEN" });
    if (urls.length === 0)
      throw new UsageError("no registry is configured", { hint: "pass --registry URL, or set config registry.urls or CPR_REGISTRY" });
    checkKeys(keys);
    const outLink = flag(args, "no-out-link") ? null : resolve(ctx.cwd, str(args, "out-link") ?? "result");
    // Nix replaces an existing out-link (a symlink) but refuses anything else, after the download: say so first.
    const existing = outLink === null ? null : await lstat(outLink).catch(() => null);
    if (existing && !existing.isSymbolicLink()) {
      throw new CprError("get.out-link", `${outLink} exists and is not an out-link (a symlink): cpr get will not replace it`, {
        where: outLink ?? undefined,
        hint: "remove it, or pass --out-link PATH or --no-out-link",
      });
    }
    const system = str(args, "system") ?? hostSystem();
    const store = str(args, "store");
    const nix = {
      env: ctx.env,
      store: store === undefined ? undefined : /^[a-z+]+:\/\//.test(store) || !store.includes("/") ? store : resolve(ctx.cwd, store),
      onStderr: nixStderr(args),
    };
    const clients = registryClients(urls, token, "--registry (or config registry.urls, CPR_REGISTRY)");
    const pushClient = str(args, "push") === undefined ? null : registryClients([str(args, "push")!], token, "--push")[0]!;
    const target = parseGetTarget(text, config.aliases);
    const located = await locate({ cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, aliases: config.aliases }, clients, target);
    let found = await resolveBuild(located, system);
    // No build recorded: the registry's build farm may have it queued or running (--wait waits for it).
    if (!found && (flag(args, "wait") || !flag(args, "build")))
      found = await awaitQueuedBuild(located, system, { wait: flag(args, "wait"), reporter: ctx.term });

    let doc: Record<string, unknown>;
    if (found) {
      const { build, registry } = found;
      const paths = await install(build, registry, { keys, outLink, nix, reporter: ctx.term });
      doc = {
        label: build.label,
        version: build.version,
        id: build.id,
        set: build.set,
        rev: build.rev,
        system: build.system,
        drv: build.drv,
        outputs: build.outputs,
        registry: registry.url,
        outLink,
        built: false,
      };
      for (const p of paths) if (!flag(args, "json")) ctx.term.out(p);
    } else {
      if (!flag(args, "build")) throw await explainNoBuild(located, system);
      if (!located.uri)
        throw new UsageError(`no build is known and no mirror of ${located.label}'s set is known to build from`, {
          hint: "name the atom with a URI (URL::LABEL)",
        });
      ctx.term.info(`no build of ${located.label} for ${system} is known; building it locally`);
      const cache = await Cache.open({ dir: config.cacheDir, env: ctx.env });
      try {
        // A wrong token or an unreachable registry is reported before the build, not after it.
        if (pushClient) await pushClient.checkWrite();
        const built = await buildAtom({ cache, cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, system, nix }, located.uri);
        if (pushClient) {
          const pushed = await pushBuild(pushClient, built, { nix, reporter: ctx.term });
          ctx.term.info(
            `pushed to ${pushClient.url}: ${pushed.uploaded.length} path(s) uploaded, ${pushed.present} already there; build recorded`,
          );
        }
        const paths = orderedOutputs(built.outputs);
        if (outLink) await realise(paths, { ...nix, outLink });
        doc = {
          label: built.label,
          version: built.version,
          id: built.id,
          set: built.set,
          rev: built.rev,
          system: built.system,
          drv: built.drv,
          outputs: built.outputs,
          registry: null,
          outLink,
          built: true,
        };
        for (const p of paths) if (!flag(args, "json")) ctx.term.out(p);
      } finally {
        cache.close();
      }
    }
    if (flag(args, "json")) ctx.term.json(doc);
    else if (outLink) ctx.term.info(`out-link ${outLink}`);
    return 0;
  },
};
