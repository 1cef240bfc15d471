import { CprError } from "../protocol/errors.js";
import { runGit } from "./exec.js";

/**
 * The user's git credential helpers, through `git credential fill|approve|reject` (gitcredentials(7)), so that
 * cpr uses exactly what `git fetch` would: credential.helper, credential.<url>.*, useHttpPath, GIT_ASKPASS and,
 * when GIT_TERMINAL_PROMPT allows it, a terminal prompt.
 */

/** A credential description: ordered `key=value` attributes (protocol, host, path, username, password, …). */
export type CredentialAttrs = ReadonlyArray<readonly [string, string]>;

/** What a 401 asks for: where, and what the URL already says. */
export interface CredentialQuery {
  readonly protocol: string;
  /** Host with `:port` when the URL has one. */
  readonly host: string;
  /** Repository path without the leading `/` (helpers use it only with credential.useHttpPath). */
  readonly path: string;
  readonly username?: string | null;
  /** WWW-Authenticate header values, passed as `wwwauth[]` (helpers that do not know it ignore it). */
  readonly wwwauth?: readonly string[];
}

/** A filled credential: username and password, plus every attribute the helper returned (sent back on approve/reject). */
export interface Credential {
  readonly username: string;
  readonly password: string;
  readonly attrs: CredentialAttrs;
}

/** Options for running git: the environment (credential config may come from GIT_CONFIG_*), and where. */
export interface CredentialOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Encode attributes for git credential's stdin; values with a newline or NUL are refused, as git does. */
export function encodeCredential(attrs: CredentialAttrs): string {
  let out = "";
  for (const [k, v] of attrs) {
    if (/[\n\0]/.test(k) || /[\n\0]/.test(v)) throw new CprError("remote.auth", `credential ${k} contains a newline or NUL byte`);
    out += `${k}=${v}\n`;
  }
  return `${out}\n`;
}

/** Parse `key=value` lines from git credential's stdout. */
export function parseCredential(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

/** The attributes of a query, in the order git writes them. */
export function queryAttrs(q: CredentialQuery): Array<[string, string]> {
  const attrs: Array<[string, string]> = [
    ["protocol", q.protocol],
    ["host", q.host],
  ];
  if (q.path !== "") attrs.push(["path", q.path]);
  if (q.username) attrs.push(["username", q.username]);
  for (const w of q.wwwauth ?? []) attrs.push(["wwwauth[]", w]);
  return attrs;
}

/** The outcome of `fill`: a credential, or why there is none (helper gave nothing, prompting disabled, …). */
export type FillResult = { readonly ok: true; readonly credential: Credential } | { readonly ok: false; readonly reason: string };

/** Ask the configured helpers (and maybe the terminal) for a username and password. */
export async function credentialFill(q: CredentialQuery, opts: CredentialOptions = {}): Promise<FillResult> {
  const r = await runGit(["credential", "fill"], {
    input: encodeCredential(queryAttrs(q)),
    env: opts.env,
    cwd: opts.cwd,
    repo: "user",
    okCodes: [0, 1, 128],
  });
  if (r.code !== 0) return { ok: false, reason: r.stderr.trim().split("\n").pop() ?? `git credential fill exited ${r.code}` };
  const attrs = parseCredential(r.stdout.toString("utf8")).filter(([k]) => k !== "wwwauth[]");
  const username = attrs.find(([k]) => k === "username")?.[1];
  const password = attrs.find(([k]) => k === "password")?.[1];
  if (username === undefined || password === undefined)
    return { ok: false, reason: "the credential helpers returned no username and password" };
  return { ok: true, credential: { username, password, attrs } };
}

/** Tell the helpers the credential worked (they may store it). Failures are ignored, as git does. */
export async function credentialApprove(c: Credential, opts: CredentialOptions = {}): Promise<void> {
  await report("approve", c, opts);
}

/** Tell the helpers the credential was refused (they may erase it). Failures are ignored. */
export async function credentialReject(c: Credential, opts: CredentialOptions = {}): Promise<void> {
  await report("reject", c, opts);
}

async function report(action: "approve" | "reject", c: Credential, opts: CredentialOptions): Promise<void> {
  try {
    await runGit(["credential", action], {
      input: encodeCredential(c.attrs),
      env: opts.env,
      cwd: opts.cwd,
      repo: "user",
      okCodes: [0, 1, 128],
    });
  } catch {
    /* git missing or helper failure: nothing to undo */
  }
}
