import { isAbsolute, relative, resolve as resolvePath } from "node:path";
import { flag, str, type Command, type Context, type ParsedArgs } from "../command.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { atomId } from "../../protocol/id.js";
import { normalizeLabel } from "../../protocol/label.js";
import { addPackageSetMirror, readPackageSet, setDependency, setDirectNix, type DirectNixSpec } from "../../protocol/manifest-edit.js";
import { parseAtomUri, parseGitUrl, replaceVersionPlaceholder } from "../../protocol/uri.js";
import { caretOf, parseVersion, tryParseRequirement } from "../../protocol/version.js";
import { writeManifestAndLock } from "../../resolve/lockfile.js";
import { lockProject, resolverConfig } from "../../resolve/lock-project.js";
import { findProjectDir, loadProject } from "../../resolve/project.js";
import { unlocal } from "../../protocol/lock-check.js";
import { ROOT_PKG, saveGraph } from "../../resolve/graph.js";
import { reportOutcome } from "./resolve.js";

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
    if (flag(args, "nix")) return addNix(ctx, args);
    for (const f of ["git", "tar", "build", "unpack"]) if (flag(args, f)) throw new UsageError(`--${f} applies only with --nix`);
    if (args.positionals.length !== 1) throw new UsageError("cpr add takes one atom URI", { hint: "e.g. cpr add gh:owner/repo::hello@^1" });
    return addAtom(ctx, args, args.positionals[0]!);
  },
};

/** A tag from a URL: the last path component without `.git`, made a valid tag. */
function tagFromUrl(url: string): string {
  const last = url.replace(/\/+$/, "").split(/[/:]/).pop() ?? "";
  let t = last.replace(/\.git$/, "").replace(/[^\p{L}\p{N}_.:-]/gu, "-").replace(/\.\.+/g, ".");
  if (!/^\p{L}/u.test(t)) t = `set-${t}`;
  try {
    return normalizeLabel(t, "tag", "tag");
  } catch {
    return "set";
  }
}

async function addAtom(ctx: Context, args: ParsedArgs, uriText: string): Promise<number> {
  const config = await resolverConfig(ctx.cwd, ctx.env);
  const uri = parseAtomUri(uriText, config.aliases);
  const dir = findProjectDir(ctx.cwd);
  const project = loadProject(dir);
  let text = project.manifestText;
  let mirror: string;
  if (uri.url === null) mirror = "::";
  else if (uri.url.scheme === "file" && !uri.url.url.startsWith("file://")) {
    // Paths are stored relative to the atom (or absolute when given so).
    const abs = resolvePath(ctx.cwd, uri.url.url);
    const rel = relative(dir, abs) || ".";
    mirror = isAbsolute(uri.url.url) ? abs : rel.startsWith(".") ? rel : `./${rel}`;
  } else mirror = uri.url.url;
  const sets = project.manifest.package.sets;
  const wanted = str(args, "set");
  let tag = wanted !== undefined ? normalizeLabel(wanted, "tag", "--set TAG") : Object.keys(sets).find((t) => sets[t]!.includes(mirror));
  if (tag === undefined) {
    const base = mirror === "::" ? "local" : tagFromUrl(mirror);
    tag = base;
    for (let i = 2; Object.hasOwn(sets, tag); i++) tag = `${base}-${i}`;
  }
  if (!(readPackageSet(text, tag) ?? []).includes(mirror)) text = addPackageSetMirror(text, tag, mirror);
  text = setDependency(text, tag, uri.label, uri.requirement?.text ?? "*");
  const outcome = await lockProject({ cwd: dir, env: ctx.env, reporter: ctx.term, manifestText: text, offline: flag(args, "offline"), dryRun: true, config });
  const lock = outcome.resolution!.lock;
  // The added atom: the lock entry of (root of the tag, label).
  const root = Object.entries(lock.sets).find(([, s]) => s.tag === tag)?.[0];
  const entry = lock.deps.find((d) => d.type === "atom" && root !== undefined && d.id === atomId(root, uri.label));
  if (!entry || entry.type !== "atom") throw new CprError("add.not-locked", `${uri.label} was not locked`);
  let requirement = uri.requirement?.text;
  if (requirement === undefined) {
    const v = unlocal(entry.version).version;
    requirement = caretOf(parseVersion(v.text)).text;
    text = setDependency(text, tag, uri.label, requirement);
  }
  await writeManifestAndLock(dir, text, outcome.resolution!.lockText);
  // The graph was resolved with a provisional `*`: record the requirement written.
  const edges = { ...outcome.resolution!.edges };
  edges[ROOT_PKG] = (edges[ROOT_PKG] ?? []).map((e) => (e.dep === entry.id ? { dep: e.dep, req: requirement! } : e));
  saveGraph(config.cacheDir, outcome.resolution!.lockText, edges);
  if (!flag(args, "json")) ctx.term.info(`added ${uri.label} ${requirement} from [package.sets].${tag} (locked ${entry.version})`);
  reportOutcome(ctx, flag(args, "json"), { ...outcome, status: "written" }, { added: { label: uri.label, tag, requirement, version: entry.version, id: entry.id } });
  return 0;
}

async function addNix(ctx: Context, args: ParsedArgs): Promise<number> {
  const [nameArg, urlArg, extra] = args.positionals;
  if (nameArg === undefined || urlArg === undefined) throw new UsageError("cpr add --nix takes NAME and URL", { hint: "e.g. cpr add --nix nixpkgs gh:nixos/nixpkgs --git nixos-unstable" });
  const forms = (["git", "tar", "build"] as const).filter((f) => flag(args, f));
  if (forms.length > 1) throw new UsageError(`choose one of --git, --tar, --build (got ${forms.map((f) => `--${f}`).join(", ")})`);
  const kind = forms[0] ?? "url";
  if (flag(args, "unpack") && kind !== "build") throw new UsageError("--unpack applies only with --build");
  if (extra !== undefined && kind !== "git") throw new UsageError(`unexpected argument ${extra}: only --git takes a REF or REQUIREMENT`);
  const name = normalizeLabel(nameArg, "label", "NAME");
  const config = await resolverConfig(ctx.cwd, ctx.env);
  const { text: urlText, fromVersion } = replaceVersionPlaceholder(urlArg);
  const url = kind === "git" || !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(urlText) && /^[a-z]+:/.test(urlText) ? parseGitUrl(urlText, config.aliases).url : urlText;
  let spec: DirectNixSpec;
  if (kind === "git") {
    const asReq = extra !== undefined && /^[\^~=<>*0-9]/.test(extra) ? tryParseRequirement(extra) : null;
    spec = { kind, name, url, ref: asReq === null ? (extra ?? null) : null, version: asReq?.text ?? null, fromVersion };
  } else if (kind === "build") spec = { kind, name, url, unpack: flag(args, "unpack"), fromVersion };
  else spec = { kind, name, url, fromVersion };
  const dir = findProjectDir(ctx.cwd);
  const project = loadProject(dir);
  const text = setDirectNix(project.manifestText, spec);
  const outcome = await lockProject({ cwd: dir, env: ctx.env, reporter: ctx.term, manifestText: text, offline: flag(args, "offline"), config });
  const entry = outcome.resolution?.lock.deps.find((d) => d.type !== "atom" && d.name === name);
  if (!flag(args, "json") && entry && entry.type !== "atom") ctx.term.info(`added ${name} (${entry.type}) ${"hash" in entry ? entry.hash : entry.rev}`);
  reportOutcome(ctx, flag(args, "json"), outcome, { added: entry ?? null });
  return 0;
}
