import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { CprError } from "../../protocol/errors.js";
import { runGit } from "../exec.js";

/**
 * HTTP proxies for the smart-HTTP transport, chosen as git (through libcurl) chooses them:
 *
 * - git config `http.proxy`, or `http.<url>.proxy` for the remote's URL (`git config --get-urlmatch`), wins;
 * - else the environment: `https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy` for http URLs (libcurl ignores
 *   the upper-case `HTTP_PROXY`, which a web server's CGI environment can set from a request header), then
 *   `all_proxy`/`ALL_PROXY`;
 * - `no_proxy`/`NO_PROXY` (comma- or space-separated host names, domain suffixes, IP addresses, or `*`) bypasses it.
 *
 * An http URL goes through the proxy as an absolute-form request; an https URL through a `CONNECT` tunnel, with TLS
 * to the server inside it (the proxy never sees the traffic). Credentials in the proxy URL
 * (`http://user:pass@proxy:3128`) are sent as `Proxy-Authorization: Basic`. Only `http://` proxies are supported.
 */

/** The proxy chosen for a URL, or null to connect directly. */
export interface Proxy {
  readonly url: URL;
  /** Where it was configured: `http.proxy`, `https_proxy`, … (for messages). */
  readonly source: string;
}

/** The `http.*` git configuration that applies to a URL (`git config --get-urlmatch http <url>`). */
export interface GitHttpConfig {
  /** `http.proxy` (or `http.<url>.proxy`). */
  readonly proxy: string | null;
  /** `http.sslVerify`, when set. */
  readonly sslVerify: boolean | null;
  /** `http.sslCAInfo`, when set. */
  readonly sslCAInfo: string | null;
  /** `http.extraHeader` (`Name: value`), as git reports it for the URL. */
  readonly extraHeaders: readonly string[];
}

/** Parses `git config --get-urlmatch http <url>` output (`key value` lines; keys lower-cased by git). */
export function parseGitHttpConfig(out: string): GitHttpConfig {
  let proxy: string | null = null;
  let sslVerify: boolean | null = null;
  let sslCAInfo: string | null = null;
  const extraHeaders: string[] = [];
  for (const line of out.split("\n")) {
    const sp = line.indexOf(" ");
    const key = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
    const value = sp < 0 ? "" : line.slice(sp + 1);
    if (key === "http.proxy") proxy = value.trim() || null;
    else if (key === "http.sslverify") sslVerify = !/^(false|no|off|0)$/i.test(value.trim());
    else if (key === "http.sslcainfo") sslCAInfo = value.trim() || null;
    else if (key === "http.extraheader") {
      // An empty value resets the list, as in git.
      if (value.trim() === "") extraHeaders.length = 0;
      else extraHeaders.push(value);
    }
  }
  return { proxy, sslVerify, sslCAInfo, extraHeaders };
}

/** The `http.*` git configuration for `url` (empty when git is missing or nothing is set). */
export async function gitHttpConfig(url: string, env: NodeJS.ProcessEnv, cwd: string): Promise<GitHttpConfig> {
  const r = await runGit(["config", "--get-urlmatch", "http", url], { env, cwd, repo: "user", okCodes: [0, 1] }).catch(() => null);
  return parseGitHttpConfig(r && r.code === 0 ? r.stdout.toString("utf8") : "");
}

/** Whether `host` is excluded by a no_proxy list. */
export function bypassesProxy(host: string, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    entry = entry.replace(/^\[|\]$/g, "");
    // An entry may carry a port (host:port); the port is not compared, as libcurl before 7.86 did not either.
    const colon = entry.lastIndexOf(":");
    if (colon > 0 && !entry.includes("::") && /^\d+$/.test(entry.slice(colon + 1))) entry = entry.slice(0, colon);
    entry = entry.replace(/^\*?\./, "");
    if (h === entry || h.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** Parses a proxy setting (`host:port`, `http://[user:pass@]host[:port]`); throws a CprError naming its source. */
export function parseProxy(text: string, source: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch (e) {
    throw new CprError("remote.proxy", `${source} is not a valid proxy URL: ${JSON.stringify(text)}`, {
      where: source,
      hint: "write it as http://host:port",
      cause: e,
    });
  }
  if (u.protocol !== "http:") {
    throw new CprError("remote.proxy", `${source} names a ${u.protocol.slice(0, -1)} proxy, which cpr does not support`, {
      where: source,
      hint: "use an http:// proxy (https URLs still go through it encrypted, in a CONNECT tunnel)",
    });
  }
  if (!u.port) u.port = "1080";
  return u;
}

/** The proxy for `target` given the git config value (if any) and the environment; null for a direct connection. */
export function chooseProxy(target: URL, gitConfig: string | null, env: NodeJS.ProcessEnv): Proxy | null {
  if (bypassesProxy(target.hostname, env.no_proxy ?? env.NO_PROXY)) return null;
  const candidates: [string, string | undefined][] = [["http.proxy", gitConfig ?? undefined]];
  if (target.protocol === "https:") candidates.push(["https_proxy", env.https_proxy], ["HTTPS_PROXY", env.HTTPS_PROXY]);
  else candidates.push(["http_proxy", env.http_proxy]);
  candidates.push(["all_proxy", env.all_proxy], ["ALL_PROXY", env.ALL_PROXY]);
  for (const [source, value] of candidates) {
    if (value !== undefined && value.trim() !== "") return { url: parseProxy(value.trim(), source), source };
  }
  return null;
}

/** `Proxy-Authorization` for a proxy URL with userinfo, else undefined. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username) return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`, "utf8").toString("base64")}`;
}

/** The proxy's address without credentials, for messages. */
export function proxyDisplay(proxy: URL): string {
  return `http://${proxy.host}`;
}

/**
 * An https agent whose connections are CONNECT tunnels through `proxy`, with TLS to the target inside. Keep-alive
 * works as with a direct agent: a pooled socket is the TLS socket inside its tunnel.
 */
export class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    args: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const options = args as http.ClientRequestArgs & tls.ConnectionOptions;
    const fail = (e: Error) => callback?.(e, undefined as unknown as Duplex);
    const host = options.host ?? options.hostname ?? "localhost";
    const port = Number(options.port ?? 443);
    const authority = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { host: authority };
    const auth = proxyAuthorization(this.proxy);
    if (auth) headers["proxy-authorization"] = auth;
    const req = http.request({
      host: this.proxy.hostname,
      port: Number(this.proxy.port),
      method: "CONNECT",
      path: authority,
      headers,
      agent: false,
    });
    req.once("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        const err = new Error(
          `proxy ${proxyDisplay(this.proxy)} refused CONNECT ${authority}: HTTP ${res.statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ""}`,
        );
        (err as NodeJS.ErrnoException).code = res.statusCode === 407 ? "EPROXYAUTH" : "EPROXYCONNECT";
        fail(err);
        return;
      }
      const secure = tls.connect({ ...options, socket, servername: options.servername ?? (host.match(/^[\d.]+$|:/) ? undefined : host) });
      callback?.(null, secure);
    });
    req.once("error", fail);
    req.end();
    return undefined;
  }
}
