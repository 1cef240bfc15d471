import { flag, str, type Command, type Context, type ParsedArgs } from "../command.js";
import { UsageError } from "../../protocol/errors.js";
import { normalizeLabel } from "../../protocol/label.js";
import type { DirectNixSpec } from "../../protocol/manifest-edit.js";
import { parseAtomUri, parseGitUrl, replaceVersionPlaceholder } from "../../protocol/uri.js";
import { tryParseRequirement } from "../../protocol/requirement.js";
import { addAtom, addDirectNix } from "../../resolve/add.js";
import { resolverConfig } from "../../resolve/lock-project.js";
import { reportOutcome } from "../shared.js";

/** `cpr add`: an atom dependency (URI) or a direct Nix dependency (--nix). */
export const command: Command = {
  name: "add",
  usage: "cpr add URI [--set TAG] | cpr add --nix NAME URL [--git [REF|REQ] | --tar | --build [--unpack]]",
  summary: "Add a dependency to atom.toml and lock it",
  help: `cpr add URI [--set TAG]
  URI is [URL::]LABEL[@REQUIREMENT], e.g. gh:owner/repo::hello@^1, ./path/to/repo::hello, or ::hello (an atom
  of this repository). Aliases (gh:, gl:, your own from config) are expanded: atom.toml stores the URL. The set
  and its mirror go into [package.sets] (under an existing tag that already lists this URL, else --set TAG, else a
  tag named after the repository), the requirement into [deps.from.<tag>]. Without a requirement, ^<resolved
  version> is recorded. Then the whole graph is resolved and atom.lock and atom.toml are written as a pair.

cpr add --nix NAME URL [--git [REF|REQ] | --tar | --build [--unpack]]
  A direct Nix dependency in [deps.direct.nix]: a file (default: flat sha256), a tarball or zip archive (--tar:
  NAR sha256 of the unpacked tree), a build-time fetch (--build, --unpack for the NAR hash of the unpacked tree) or a git
  checkout (--git, optionally a branch/tag name or a version requirement over the repository's tags, given as
  the argument after URL). Hashes and revs are computed by cpr itself and locked.

Edits keep the file's comments and layout. Nothing is written when resolution fails.

Options:
  --set TAG   The [package.sets] tag to record the set under
  --nix       Add a direct Nix dependency (NAME URL)
  --git, --tar, --build, --unpack
              The form of a direct Nix dependency (default: a plain file URL)
  --offline   Resolve from the cache only
  --json      Print {"status","changes","atoms","network","added"} on stdout

Exit codes: 0 added, 1 failed (resolution, network, hashing), 2 usage error.
`,
  options: {
    set: { type: "string" },
    nix: { type: "boolean" },
    git: { type: "boolean" },
    tar: { type: "boolean" },
    build: { type: "boolean" },
    unpack: { type: "boolean" },
    offline: { type: "boolean" },
  },
  maxPositionals: 3,
  async run(ctx, args) {
    if (flag(args, "nix")) return addNixCommand(ctx, args);
    for (const f of ["git", "tar", "build", "unpack"]) if (flag(args, f)) throw new UsageError(`--${f} applies only with --nix`);
    if (args.positionals.length !== 1) throw new UsageError("cpr add takes one atom URI", { hint: "e.g. cpr add gh:owner/repo::hello@^1" });
    return addAtomCommand(ctx, args, args.positionals[0]!);
  },
};

async function addAtomCommand(ctx: Context, args: ParsedArgs, uriText: string): Promise<number> {
  const config = await resolverConfig(ctx.cwd, ctx.env);
  const uri = parseAtomUri(uriText, config.aliases);
  const wanted = str(args, "set");
  const tag = wanted !== undefined ? normalizeLabel(wanted, "tag", "--set TAG") : undefined;
  const { outcome, added } = await addAtom(uri, tag, {
    cwd: ctx.cwd,
    env: ctx.env,
    reporter: ctx.term,
    offline: flag(args, "offline"),
    config,
  });
  if (!flag(args, "json"))
    ctx.term.info(`added ${added.label} ${added.requirement} from [package.sets].${added.tag} (locked ${added.version})`);
  await reportOutcome(ctx, flag(args, "json"), outcome, { added });
  return 0;
}

async function addNixCommand(ctx: Context, args: ParsedArgs): Promise<number> {
  const [nameArg, urlArg, extra] = args.positionals;
  if (nameArg === undefined || urlArg === undefined)
    throw new UsageError("cpr add --nix takes NAME and URL", { hint: "e.g. cpr add --nix nixpkgs gh:nixos/nixpkgs --git nixos-unstable" });
  const forms = (["git", "tar", "build"] as const).filter((f) => flag(args, f));
  if (forms.length > 1) throw new UsageError(`choose one of --git, --tar, --build (got ${forms.map((f) => `--${f}`).join(", ")})`);
  const kind = forms[0] ?? "url";
  if (flag(args, "unpack") && kind !== "build") throw new UsageError("--unpack applies only with --build");
  if (extra !== undefined && kind !== "git") throw new UsageError(`unexpected argument ${extra}: only --git takes a REF or REQUIREMENT`);
  const name = normalizeLabel(nameArg, "label", "NAME");
  const config = await resolverConfig(ctx.cwd, ctx.env);
  const { text: urlText, fromVersion } = replaceVersionPlaceholder(urlArg);
  const url =
    kind === "git" || (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(urlText) && /^[a-z]+:/.test(urlText))
      ? parseGitUrl(urlText, config.aliases).url
      : urlText;
  let spec: DirectNixSpec;
  if (kind === "git") {
    const asReq = extra !== undefined && /^[\^~=<>*0-9]/.test(extra) ? tryParseRequirement(extra) : null;
    spec = { kind, name, url, ref: asReq === null ? (extra ?? null) : null, version: asReq?.text ?? null, fromVersion };
  } else if (kind === "build") spec = { kind, name, url, unpack: flag(args, "unpack"), fromVersion };
  else spec = { kind, name, url, fromVersion };
  const { outcome, entry } = await addDirectNix(spec, {
    cwd: ctx.cwd,
    env: ctx.env,
    reporter: ctx.term,
    offline: flag(args, "offline"),
    config,
  });
  if (!flag(args, "json") && entry) ctx.term.info(`added ${name} (${entry.type}) ${"hash" in entry ? entry.hash : entry.rev}`);
  await reportOutcome(ctx, flag(args, "json"), outcome, { added: entry });
  return 0;
}
