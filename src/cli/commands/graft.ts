import { UsageError } from "../../protocol/errors.js";
import { hostSystem } from "../../nix/store.js";
import type { Command } from "../command.js";
import { graftAndInstall, graftOptions, replaceArgs, setUp } from "../grafting.js";

/** `cpr graft`: move a built atom onto newer compatible dependencies without rebuilding (docs/grafts.md). */
export const command: Command = {
  name: "graft",
  usage:
    "cpr graft NAME|URI[@REQ] --replace DEP@VERSION [--replace …] [--system S] [--registry URL] [--token T] [--key KEY] [--local [--sign-key FILE]] [--alias] [--force] [--allow-incompatible] [--dry-run] [--out-link PATH | --no-out-link] [--store STORE] [--json]",
  summary: "Move a built atom onto newer compatible dependencies, without rebuilding",
  help: `Takes the newest build of the atom (matching REQ) for the system that the registry records, and moves it onto
the given versions of its dependencies without rebuilding: in every path of its closure that reaches an old
dependency, each old store path is rewritten, byte for byte, to the new one, and the result gets new store paths
(addressed by cpr-graft-v1, docs/grafts.md). A graft already recorded by the registry is installed as it is; else
the registry computes it from the NARs it stores and signs the result (this needs a write token for the atom's set);
with --local this machine computes it. The grafted outputs are then realised as \`cpr get\` does (the registry the
only substituter, the configured keys the only trusted ones) and printed on stdout.

Before anything is written, every rule is checked and every violation reported: the replacement is the same atom,
newer, and satisfies the atom's requirement on it (^3.2 allows 3.3, not 4.0; ^0.3 refuses 0.4); old and new store
path names are equally long; the old dependency is a runtime reference of the closure (a static link or a
build-time-only dependency cannot be grafted: rebuild); no atom ends up in two versions; and, after the rewrite, no
old hash part is left anywhere, including inside gzip, xz, zstd and zip members. A refused graft stores nothing.

What was grafted onto what, every rewritten path old → new and every warning are printed on stderr (--json: on
stdout, with the same data).

Options:
  --replace DEP@VERSION   A dependency (by label) and the exact version to graft onto (repeatable, at least one)
  --registry URL          The registry (default config registry.urls, CPR_REGISTRY; the first with a build is used)
  --key KEY               A trusted public key, name:base64 (repeatable; default config registry.keys)
  --token T               Write token for the atom's set, to have the registry make the graft (default config
                          registry.token, CPR_REGISTRY_TOKEN)
  --system S              The system (default: this machine's, ${hostSystem()})
  --local                 Graft on this machine from the local store: nix-store --import as root (or into a store
                          opened directly), else content-addressed paths through nix copy --no-recursive --from
                          file://DIR
  --sign-key FILE         With --local: sign the graft paths with this secret key (name:base64, as nix-store
                          --generate-binary-cache-key writes it) and add them with nix copy; the Nix daemon must
                          trust its public key
  --alias                 Bridge a name-length change (y-3.9 → y-3.10) with a small path of the old name's length
                          that links to the new dependency
  --force                 Graft even when the residue scan finds an old path left (or cannot look into a member);
                          each finding becomes a warning
  --allow-incompatible    Go beyond the version rules (older, incompatible or another atom, two versions in the
                          closure), at your own risk
  --dry-run               Show the plan and the safety report; write nothing (the residue scan does not run)
  --out-link PATH         Where to make the GC root (default ./result)
  --no-out-link           Make no out-link
  --store STORE           Realise into this Nix store instead of the default one
  --json                  Print {"atom","replacements","algorithm","graftId","outputs","paths","aliases","members",
                          "refusals","warnings",…} on stdout
  -q, --quiet             Do not show Nix's output

Exit codes: 0 grafted (or planned, --dry-run), 1 failed or refused, 2 usage error.
`,
  options: { ...graftOptions, replace: { type: "string", multiple: true } },
  maxPositionals: 1,
  async run(ctx, args) {
    const text = args.positionals[0];
    if (text === undefined) throw new UsageError("missing NAME or URI", { hint: "e.g. `cpr graft x --replace y@3.3.0`" });
    const replaces = replaceArgs(args, "replace");
    if (replaces.length === 0) throw new UsageError("cpr graft needs at least one --replace DEP@VERSION");
    const setup = await setUp(ctx, args, text);
    return graftAndInstall(ctx, args, setup, replaces, { localFirst: true });
  },
};
