/**
 * Atom URIs and git URLs (docs/formats.md §13): `[url-part "::"] label ["@" requirement]`, aliases, and the host, port and
 * scheme inference that turns short forms such as `gh:owner/repo` into URLs git accepts.
 *
 * Where this differs from the eka reference implementation (docs/formats.md §13.5): unknown aliases, alias cycles
 * and URLs that cannot be built are errors (never a silent fallback to a local path), and ssh ports are kept.
 *
 * Extensions (beyond the inference rules of docs/formats.md §13.3, and listed in §13.5):
 * - With an explicit `scheme://` (other than `file://`), the host part is taken as a host when it is any valid
 *   host name or IPv4 address (`http://127.0.0.1:8080/repo`, `https://localhost/repo`), not only when it ends in a
 *   public suffix; otherwise such URLs could not be built at all. `scheme://name:digits` without a path is a port.
 * - Text before an `@` that contains `/` is not read as credentials, so `/srv/a@b/repo` stays a path.
 * - A path written with a leading `/` after the host (`host:/srv/repo`) is not given a second `/` (as eka does).
 * - IPv6 literals are not supported (`::` separates the label).
 *
 * Public suffixes come from the `tldts` package (the full Public Suffix List, ICANN and private sections).
 */
import { createRequire } from "node:module";
import { CprError, type ErrorCode } from "./errors.js";
import { normalizeLabel } from "./label.js";
import { parseRequirement, type Requirement } from "./requirement.js";

/** Alias name → value, e.g. `gh` → `github.com`, `pkgs` → `nxs:nixpkgs`. */
export type Aliases = Readonly<Record<string, string>>;

/** The default aliases (docs/formats.md §13.2). */
export const DEFAULT_ALIASES: Aliases = Object.freeze({
  gh: "github.com",
  gl: "gitlab.com",
  bb: "bitbucket.org",
  cb: "codeberg.org",
  sh: "sr.ht",
  ekl: "gh:ekala-project",
  atom: "ekl:atom",
  cogs: "ekl:corepkgs",
  eka: "ekl:eka",
  nxs: "gh:nixos",
  pkgs: "nxs:nixpkgs",
});

/** A git location, as inferred per docs/formats.md §13.3. For a plain path, scheme is `file` and host/user/port are null. */
export interface GitUrl {
  /** The URL as git would be given it: `https://github.com/o/r`, `ssh://git@host:22/o/r`, `file:///abs`, or a bare path for relative/absolute paths. */
  readonly url: string;
  readonly scheme: "https" | "http" | "ssh" | "git" | "file";
  readonly user: string | null;
  readonly password: string | null;
  readonly host: string | null;
  readonly port: number | null;
  /** `/owner/repo`, or the file path. */
  readonly path: string;
  /** scp-like `user@host:path` form as written (ssh only), else false. */
  readonly scpLike: boolean;
}

export interface AtomUri {
  /** null for a local atom (`::foo` or plain `foo`). */
  readonly url: GitUrl | null;
  readonly label: string;
  readonly requirement: Requirement | null;
}

type Scheme = GitUrl["scheme"];
const SCHEMES: readonly Scheme[] = ["https", "http", "ssh", "git", "file"];
/** What `add direct nix` writes in place of `{<set>.<label>}` (docs/formats.md §6.1). */
export const VERSION_PLACEHOLDER = "__VERSION__";

const URI_HINT = "an atom URI is [URL::]LABEL[@REQUIREMENT], e.g. gh:owner/repo::foo@^1, ./repo::foo or foo";

function uriError(code: ErrorCode, message: string, hint: string): CprError {
  return new CprError(code, message, { hint });
}

// ---------------------------------------------------------------------------------------------------------------
// The URL part: scheme, credentials, fragment
// ---------------------------------------------------------------------------------------------------------------

interface UrlPart {
  readonly scheme: Scheme | null;
  readonly user: string | null;
  readonly password: string | null;
  readonly fragment: string;
}

function splitScheme(text: string): [Scheme | null, string] {
  const sep = text.indexOf("://");
  if (sep < 0) return [null, text];
  const written = text.slice(0, sep);
  const scheme = written.toLowerCase() as Scheme;
  if (!SCHEMES.includes(scheme)) {
    const supported = SCHEMES.map((s) => `${s}://`).join(", ");
    throw uriError(
      "uri.bad-scheme",
      `unsupported URL scheme ${JSON.stringify(written)} in ${JSON.stringify(text)}`,
      `use one of ${supported}, or a short form such as gh:owner/repo`,
    );
  }
  return [scheme, text.slice(sep + 3)];
}

function splitCredentials(text: string): [string | null, string | null, string] {
  const at = text.indexOf("@");
  if (at < 0 || text.slice(0, at).includes("/")) return [null, null, text];
  const credentials = text.slice(0, at);
  const colon = credentials.indexOf(":");
  const user = colon < 0 ? credentials : credentials.slice(0, colon);
  const password = colon < 0 ? null : credentials.slice(colon + 1);
  if (user === "") {
    throw uriError("uri.bad-url", `empty user name before '@' in ${JSON.stringify(text)}`, "write user@host:path, or leave out the '@'");
  }
  return [user, password, text.slice(at + 1)];
}

function splitUrlPart(text: string): UrlPart {
  const bad = /[\u0000-\u001f\u007f]/.exec(text);
  if (bad) {
    const cp = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    throw uriError(
      "uri.bad-url",
      `URL ${JSON.stringify(text)} contains the control character U+${cp}`,
      "remove it; URLs and paths cannot hold control characters",
    );
  }
  const [scheme, afterScheme] = splitScheme(text);
  const [user, password, fragment] = splitCredentials(afterScheme);
  if (fragment === "") {
    throw uriError(
      "uri.bad-url",
      `URL ${JSON.stringify(text)} names no host or path`,
      "write a host and path such as github.com/owner/repo, an alias such as gh:owner/repo, or a path such as ./repo",
    );
  }
  return { scheme, user, password, fragment };
}

// ---------------------------------------------------------------------------------------------------------------
// Aliases
// ---------------------------------------------------------------------------------------------------------------

interface AliasCandidate {
  readonly name: string;
  /** Text after the `:`, or "" when there is none. */
  readonly rest: string;
}

/** Alias detection (docs/formats.md §13.2): the text before the first `:` (unless a port follows), or the whole fragment. */
export function aliasCandidate(fragment: string): AliasCandidate | null {
  const colon = fragment.indexOf(":");
  let name = fragment;
  let rest = "";
  if (colon >= 0) {
    if (/^[0-9]/.test(fragment.slice(colon + 1))) return null;
    name = fragment.slice(0, colon);
    rest = fragment.slice(colon + 1);
  }
  return name === "" || /[:/.]/.test(name) ? null : { name, rest };
}

function hasAlias(aliases: Aliases, name: string): boolean {
  return Object.hasOwn(aliases, name);
}

function aliasValue(aliases: Aliases, name: string): string {
  const value = aliases[name]!;
  if (value === "") throw uriError("uri.bad-alias", `alias '${name}' is empty`, "give the alias a value such as github.com or gh:owner");
  return value;
}

/**
 * Expand an alias per docs/formats.md §13.2: while the value holds `:` and the text before it is an alias, replace it with
 * `<that alias's value>/<rest>`. Returns every intermediate value, the alias's own value first. An alias that
 * recurs within one expansion is an error showing the chain.
 */
export function expandAlias(name: string, aliases: Aliases = DEFAULT_ALIASES): string[] {
  const chain = [name];
  const values = [aliasValue(aliases, name)];
  for (;;) {
    const value = values[values.length - 1]!;
    const colon = value.indexOf(":");
    if (colon < 0) return values;
    const next = value.slice(0, colon);
    if (!hasAlias(aliases, next)) return values;
    if (chain.includes(next)) {
      throw uriError(
        "uri.alias-cycle",
        `alias '${name}' expands in a cycle: ${[...chain, next].join(" → ")}`,
        "change the alias definitions so that no alias refers back to one already being expanded",
      );
    }
    chain.push(next);
    values.push(`${aliasValue(aliases, next)}/${value.slice(colon + 1)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Host, port and scheme inference
// ---------------------------------------------------------------------------------------------------------------

interface HostSplit {
  readonly head: string;
  readonly path: string;
  readonly delimiter: "/" | ":" | "";
}

const NAME_AND_PORT = /^[^:]*:[0-9]+$/;

/** The host split (docs/formats.md §13.3 rule 1): `H/P`, then scp-like `H:P` / `H:digits:P`, else the whole text is `H`. */
function splitHost(text: string, explicitScheme: boolean): HostSplit {
  const slash = text.indexOf("/");
  if (slash >= 0) {
    const head = text.slice(0, slash);
    if (!head.includes(":") || NAME_AND_PORT.test(head)) return { head, path: text.slice(slash + 1), delimiter: "/" };
  } else if (explicitScheme && NAME_AND_PORT.test(text)) {
    return { head: text, path: "", delimiter: "" };
  }
  const colon = text.indexOf(":");
  if (colon < 0) return { head: text, path: "", delimiter: "" };
  const after = text.slice(colon + 1);
  const port = /^([0-9]+):/.exec(after);
  if (port) return { head: text.slice(0, colon + 1 + port[1]!.length), path: after.slice(port[0].length), delimiter: ":" };
  return { head: text.slice(0, colon), path: after, delimiter: ":" };
}

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A syntactically valid DNS name (letters, digits, `-`, `_`; labels of 1–63; at most 253 characters). */
export function isDnsName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split(".").every((label) => DNS_LABEL.test(label));
}

let tldts: typeof import("tldts") | null = null;

/** The `tldts` package, loaded on first use: its list is large, and most commands never look up a host name. */
function publicSuffixes(): typeof import("tldts") {
  tldts ??= createRequire(import.meta.url)("tldts") as typeof import("tldts");
  return tldts;
}

/** Whether `name` contains a `.` and ends in a suffix of the Public Suffix List (ICANN or private section). */
export function hasKnownPublicSuffix(name: string): boolean {
  if (!name.includes(".")) return false;
  const info = publicSuffixes().parse(name, { allowPrivateDomains: true });
  return info.isIp !== true && (info.isIcann === true || info.isPrivate === true);
}

function splitPort(head: string): [string, string | null] {
  const m = /^(.*):([0-9]+)$/.exec(head);
  return m ? [m[1]!, m[2]!] : [head, null];
}

function portNumber(digits: string, text: string): number {
  const port = Number(digits);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw uriError("uri.bad-url", `port ${digits} in ${JSON.stringify(text)} is out of range`, "a port is a number from 1 to 65535");
  }
  return port;
}

/** docs/formats.md §13.3 rule 3 for a URL with a host (without one, the scheme is `file`). */
function inferScheme(part: UrlPart, delimiter: HostSplit["delimiter"]): Scheme {
  if (part.scheme !== null) return part.scheme;
  if (delimiter === ":" || (part.user !== null && part.password === null)) return "ssh";
  return "https";
}

function userInfo(part: UrlPart): string {
  if (part.user === null) return "";
  return part.password === null ? `${part.user}@` : `${part.user}:${part.password}@`;
}

function fileUrl(part: UrlPart, text: string, input: string): GitUrl {
  if (part.user !== null || !text.startsWith("/")) {
    throw uriError(
      "uri.bad-url",
      `${JSON.stringify(input)} is not a valid file URL`,
      "write file:///absolute/path, or just the path (./repo, /srv/repo)",
    );
  }
  return { url: `file://${text}`, scheme: "file", user: null, password: null, host: null, port: null, path: text, scpLike: false };
}

/** The GitUrl for the expanded URL text (docs/formats.md §13.3 rules 1–4). */
function buildUrl(part: UrlPart, text: string, input: string): GitUrl {
  if (part.scheme === "file") return fileUrl(part, text, input);
  const split = splitHost(text, part.scheme !== null);
  const [name, portDigits] = splitPort(split.head);
  const credentials = part.user !== null || part.password !== null;
  const byRule = isDnsName(name) && (hasKnownPublicSuffix(name) || credentials);
  const host = byRule || (part.scheme !== null && isDnsName(name)) ? name : null;
  if (host === null) {
    if (part.scheme !== null || credentials) {
      throw uriError(
        "uri.bad-url",
        `cannot build a URL from ${JSON.stringify(input)}: ${JSON.stringify(name)} is not a valid host name`,
        "write a host such as example.com (or an alias such as gh:), e.g. https://example.com/owner/repo",
      );
    }
    return { url: text, scheme: "file", user: null, password: null, host: null, port: null, path: text, scpLike: false };
  }
  const scheme = inferScheme(part, split.delimiter);
  const port = portDigits === null ? null : portNumber(portDigits, input);
  const path = split.path.startsWith("/") ? split.path : `/${split.path}`;
  const scpLike = split.delimiter === ":" && scheme === "ssh";
  // An scp-like location keeps its own form for git: `host:repo` is relative to the login directory and
  // `host:/srv/repo` is absolute, a difference the ssh:// form cannot express. `path` is still the `/`+P of docs/formats.md §13.3.
  const url =
    scpLike && port === null
      ? `${userInfo(part)}${host}:${split.path}`
      : `${scheme}://${userInfo(part)}${host}${port === null ? "" : `:${port}`}${path}`;
  return { url, scheme, user: part.user, password: part.password, host, port, path, scpLike };
}

// ---------------------------------------------------------------------------------------------------------------
// Public parsing
// ---------------------------------------------------------------------------------------------------------------

/** A parsed URL part and how its alias (if any) expanded. */
export interface ExplainedUrl {
  readonly url: GitUrl;
  /** The fragment's rewrites, the written fragment first and the final URL text last; empty without an alias. */
  readonly aliasSteps: readonly string[];
}

function unknownAlias(name: string): CprError {
  return uriError(
    "uri.unknown-alias",
    `unknown alias '${name}'`,
    `write ./${name} for a relative directory, ssh://${name}/… for an ssh host, or configure the alias`,
  );
}

/** Parse and explain the URL part of an atom URI (the text before `::`). */
function explainUrlPart(input: string, aliases: Aliases): ExplainedUrl {
  const part = splitUrlPart(input);
  const candidate = aliasCandidate(part.fragment);
  if (candidate === null || !hasAlias(aliases, candidate.name)) {
    if (candidate !== null && part.scheme === null && part.user === null) throw unknownAlias(candidate.name);
    return { url: buildUrl(part, part.fragment, input), aliasSteps: [] };
  }
  const suffix = candidate.rest === "" ? "" : `/${candidate.rest}`;
  const steps = [part.fragment, ...expandAlias(candidate.name, aliases).map((value) => value + suffix)];
  return { url: buildUrl(part, steps[steps.length - 1]!, input), aliasSteps: steps };
}

/** `{<set>.<label>}` in a direct-dependency URL (docs/formats.md §6.1), replaced by `__VERSION__`. */
export interface VersionPlaceholder {
  /** The input with its first `{<set>.<label>}` replaced by `__VERSION__`. */
  readonly text: string;
  /** `[set tag, label]` from the placeholder, or null when there is none. */
  readonly fromVersion: readonly [string, string] | null;
}

/** Replace the first `{<set>.<label>}` with `__VERSION__`, validating the tag and label. */
export function replaceVersionPlaceholder(input: string): VersionPlaceholder {
  const m = /\{([^.}]+)\.([^.}]+)\}/.exec(input);
  if (!m) return { text: input, fromVersion: null };
  const set = normalizeLabel(m[1]!, "tag", "set tag in {<set>.<label>}");
  const label = normalizeLabel(m[2]!, "label", "label in {<set>.<label>}");
  return { text: input.slice(0, m.index) + VERSION_PLACEHOLDER + input.slice(m.index + m[0].length), fromVersion: [set, label] };
}

/**
 * A `from_version` URL with `__VERSION__` replaced by `version` in its path only (docs/formats.md §6.1): the scheme and
 * authority (`scheme://user@host:port`, or `user@host:` of an scp-like URL), the query and the fragment are left
 * as written.
 */
export function substituteVersion(url: string, version: string): string {
  let start = 0;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url);
  if (scheme) {
    const slash = url.indexOf("/", scheme[0].length);
    start = slash < 0 ? url.length : slash;
  } else {
    const scp = /^[^/:]+:/.exec(url);
    if (scp) start = scp[0].length;
  }
  let end = url.length;
  for (const c of ["?", "#"]) {
    const i = url.indexOf(c, start);
    if (i >= 0 && i < end) end = i;
  }
  return url.slice(0, start) + url.slice(start, end).split(VERSION_PLACEHOLDER).join(version) + url.slice(end);
}

/** parseGitUrl, also returning the alias expansion steps (for `cpr uri --url`). */
export function explainGitUrl(input: string, aliases: Aliases = DEFAULT_ALIASES): ExplainedUrl {
  const { text } = replaceVersionPlaceholder(input);
  if (text.includes("::")) {
    throw uriError(
      "uri.bad-url",
      `${JSON.stringify(input)} is an atom URI, not a URL (it contains '::')`,
      "give only the part before '::', e.g. gh:owner/repo",
    );
  }
  return explainUrlPart(text, aliases);
}

/**
 * Parse a URL-only form (no label), e.g. `gh:foo/bar`, `./repo`, `/abs/path`, `https://…`. The first
 * `{<set>.<label>}` is replaced by `__VERSION__` first (use replaceVersionPlaceholder to get the pair).
 */
export function parseGitUrl(input: string, aliases: Aliases = DEFAULT_ALIASES): GitUrl {
  return explainGitUrl(input, aliases).url;
}

/** A parsed atom URI and how its URL's alias (if any) expanded. */
export interface ExplainedAtomUri {
  readonly uri: AtomUri;
  readonly aliasSteps: readonly string[];
}

function parseUriLabel(text: string, hasUrl: boolean): string {
  if (text === "") throw uriError("uri.no-label", "the atom URI names no atom label", URI_HINT);
  try {
    return normalizeLabel(text, "label", "atom label");
  } catch (err) {
    if (err instanceof CprError && !hasUrl && /[:/]/.test(text)) {
      throw new CprError(err.code, err.message, {
        hint: "to name an atom in a repository write URL::LABEL, e.g. gh:owner/repo::foo",
        cause: err,
      });
    }
    throw err;
  }
}

/** parseAtomUri, also returning the alias expansion steps (for `cpr uri`). */
export function explainAtomUri(input: string, aliases: Aliases = DEFAULT_ALIASES): ExplainedAtomUri {
  const sep = input.indexOf("::");
  const urlText = sep < 0 ? "" : input.slice(0, sep);
  const atomText = sep < 0 ? input : input.slice(sep + 2);
  const explained = urlText === "" ? null : explainUrlPart(urlText, aliases);
  const at = atomText.indexOf("@");
  const label = parseUriLabel(at < 0 ? atomText : atomText.slice(0, at), explained !== null);
  const reqText = at < 0 ? "" : atomText.slice(at + 1);
  const requirement = reqText === "" ? null : parseRequirement(reqText);
  return { uri: { url: explained?.url ?? null, label, requirement }, aliasSteps: explained?.aliasSteps ?? [] };
}

/** Parse `[url-part "::"] label ["@" req]`. Unknown aliases, bad URLs and alias cycles are CprErrors. */
export function parseAtomUri(input: string, aliases: Aliases = DEFAULT_ALIASES): AtomUri {
  return explainAtomUri(input, aliases).uri;
}

/** The URL with trailing `/` removed, keeping at least `/` and never cutting into `scheme://`. */
function trimTrailingSlash(url: string): string {
  let end = url.length;
  while (end > 1 && url[end - 1] === "/" && !url.slice(0, end).endsWith("://")) end--;
  return url.slice(0, end);
}

/** `<url without trailing />::<label>[@<req>]` */
export function formatAtomUri(uri: AtomUri): string {
  const url = uri.url === null ? "" : trimTrailingSlash(uri.url.url);
  return `${url}::${uri.label}${uri.requirement === null ? "" : `@${uri.requirement.text}`}`;
}

/**
 * `url` with the password of its userinfo removed (`https://u:secret@h/p` → `https://u@h/p`), for messages and
 * listings: every place cpr shows a URL that may carry credentials (remotes, mirrors, database URLs) goes through
 * here. The authority ends at the first `/`, `?` or `#`; the userinfo at its last `@` (so a password holding `@`
 * is removed whole). Strings without `scheme://` (paths, scp-like `user@host:path`, which cannot carry a password)
 * come back unchanged.
 */
export function redactUrl(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (!m) return url;
  const [, scheme = "", authority = "", rest = ""] = m;
  const at = authority.lastIndexOf("@");
  if (at < 0) return url;
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return url;
  return `${scheme}${userinfo.slice(0, colon)}${authority.slice(at)}${rest}`;
}
