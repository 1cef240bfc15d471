import type { Requirement } from "./version.js";

/** Alias name → value, e.g. `gh` → `github.com`, `pkgs` → `nxs:nixpkgs`. */
export type Aliases = Readonly<Record<string, string>>;

/** Spec §12 default aliases. */
export declare const DEFAULT_ALIASES: Aliases;

/** A git location, as inferred per spec §12. For a plain path, scheme is `file` and host/user/port are null. */
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

/** Parse `[url-part "::"] label ["@" req]`. Unknown aliases, bad URLs and alias cycles are CprErrors. */
export declare function parseAtomUri(input: string, aliases?: Aliases): AtomUri;
/** Parse a URL-only form (no label), e.g. `gh:foo/bar`, `./repo`, `/abs/path`, `https://…`. */
export declare function parseGitUrl(input: string, aliases?: Aliases): GitUrl;
/** `<url without trailing />::<label>[@<req>]` */
export declare function formatAtomUri(uri: AtomUri): string;
