import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { createGunzip, createInflate } from "node:zlib";
import { CprError } from "../../protocol/errors.js";
import { credentialApprove, credentialFill, credentialReject, type Credential } from "../credential.js";
import { FLUSH_PKT, PktReader, bufferSource, encodePkt, pktText } from "../pktline.js";
import { networkErrorMessage, remoteError, transportError } from "./errors.js";
import { StreamSource } from "./stream.js";
import { chooseProxy, gitHttpConfig, proxyAuthorization, proxyDisplay, TunnelAgent, type Proxy } from "./proxy.js";
import type { Session, TransportContext } from "./types.js";

/**
 * Smart HTTP (gitprotocol-http): `GET <base>/info/refs?service=git-upload-pack` returns the advertisement, and
 * each v2 command is one `POST <base>/git-upload-pack`. Both carry `Git-Protocol: version=2`. A 401 asks the
 * user's git credential helpers (`git credential fill`), retries once with Basic auth, then approves or rejects.
 * Redirects are followed for the GET only, and the base URL moves with them (git's `http.followRedirects=initial`).
 * Proxies are chosen as git chooses them (`http.proxy`, `https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`; see
 * proxy.ts). git's `http.sslVerify`, `http.sslCAInfo` and `http.extraHeader` for the URL apply too, with
 * `GIT_SSL_NO_VERIFY` and `GIT_SSL_CAINFO` overriding the first two, as in git.
 */

const SERVICE_SUFFIX = "/info/refs?service=git-upload-pack";
const ADVERTISEMENT_TYPE = "application/x-git-upload-pack-advertisement";
const REQUEST_TYPE = "application/x-git-upload-pack-request";
const RESULT_TYPE = "application/x-git-upload-pack-result";
const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** The URL each response answered, for redirects and credential prompts. */
const RESPONSE_URLS = new WeakMap<IncomingMessage, URL>();

/** Username and password in use, where they came from, and the origin they may be sent to. */
interface AuthState {
  readonly username: string;
  readonly password: string;
  readonly origin: string;
  /** Set when a credential helper supplied them (approve/reject go back to it). */
  readonly credential: Credential | null;
  approved: boolean;
}

/** One HTTP request to make. */
interface HttpRequest {
  readonly method: "GET" | "POST";
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

/** The base URL without userinfo, fragment or trailing slashes. Throws remote.protocol for an unparsable URL. */
export function httpBase(ctx: TransportContext): URL {
  let u: URL;
  try {
    u = new URL(ctx.url.url);
  } catch (e) {
    throw remoteError("remote.protocol", ctx.display, `${ctx.display}: not a valid URL`, undefined, e);
  }
  u.username = "";
  u.password = "";
  u.hash = "";
  u.pathname = u.pathname.replace(/\/+$/, "");
  return u;
}

/** `base` + suffix, keeping git's string concatenation semantics. */
function join(base: URL, suffix: string): URL {
  return new URL(`${base.origin}${base.pathname}${suffix}`);
}

/** Decode a percent-encoded userinfo part; the raw text if it is not valid percent-encoding. */
function decodeUserinfo(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The stateless HTTP session. */
class HttpSession implements Session {
  advertisement: PktReader = new PktReader(bufferSource(Buffer.alloc(0)));
  /** Set when the server spoke dumb HTTP: the advertisement is then synthesised from info/refs. */
  fallbackNote: string | undefined;
  private base: URL;
  private auth: AuthState | null = null;
  /** Keep-alive agents per protocol (a redirect may switch), all destroyed on close. */
  private readonly agents = new Map<string, http.Agent>();
  private readonly responses: IncomingMessage[] = [];
  private tls: https.RequestOptions;
  private bytes = 0;
  private trips = 0;
  /**
   * `git/` first, because some hosts (GitHub among them) only speak protocol v2 to user agents that start with it;
   * the same convention as gitoxide's `git/oxide-…`.
   */
  private readonly userAgent: string;
  /** The username the URL names, offered to the credential helpers. */
  private readonly urlUser: string | null;
  /** git config `http.proxy` (or `http.<url>.proxy`) for the remote, read once at open. */
  private gitProxy: string | null = null;
  /** git config `http.extraHeader` values for the remote, sent only to the origin the remote URL names. */
  private extraHeaders: Record<string, string> = {};
  private readonly configOrigin: string;
  /** The proxy of the request in flight, for error messages. */
  private lastProxy: Proxy | null = null;

  constructor(private readonly ctx: TransportContext) {
    this.base = httpBase(ctx);
    this.tls = tlsOptions(ctx.env, null);
    this.configOrigin = this.base.origin;
    this.userAgent = `git/cpr-${ctx.version}`;
    // Userinfo is read from the URL text and percent-decoded, as git does (`p%40ss` is the password `p@ss`); the
    // GitUrl fields are only a fallback, so it does not matter whether the parser decoded them.
    const parsed = new URL(ctx.url.url);
    const user = parsed.username ? decodeUserinfo(parsed.username) : ctx.url.user;
    const pass = parsed.password ? decodeUserinfo(parsed.password) : ctx.url.password;
    if (user !== null && pass !== null)
      this.auth = { username: user, password: pass, origin: this.base.origin, credential: null, approved: true };
    this.urlUser = user;
  }

  /** GET info/refs, follow redirects, check the content type and position the advertisement reader. */
  async open(): Promise<void> {
    const cfg = await gitHttpConfig(this.base.href, this.ctx.env, this.ctx.cwd);
    this.gitProxy = cfg.proxy;
    this.tls = tlsOptions(this.ctx.env, cfg);
    for (const h of cfg.extraHeaders) {
      const colon = h.indexOf(":");
      if (colon > 0) this.extraHeaders[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
    const res = await this.exchange({
      method: "GET",
      url: join(this.base, SERVICE_SUFFIX),
      headers: { "git-protocol": "version=2", accept: "*/*", pragma: "no-cache" },
    });
    const type = contentType(res);
    if (type !== ADVERTISEMENT_TYPE) {
      this.advertisement = await this.dumbAdvertisement(res, type);
      return;
    }
    const reader = new PktReader(this.bodySource(res));
    const first = await reader.peek();
    if (first?.kind === "data" && pktText(first.data).startsWith("# service=")) {
      for (let p = await reader.read(); p && p.kind !== "flush"; p = await reader.read());
    }
    this.advertisement = reader;
  }

  async request(body: Buffer): Promise<PktReader> {
    const res = await this.exchange({
      method: "POST",
      url: join(this.base, "/git-upload-pack"),
      headers: { "git-protocol": "version=2", "content-type": REQUEST_TYPE, accept: RESULT_TYPE, "content-length": String(body.length) },
      body,
    });
    const type = contentType(res);
    if (type !== RESULT_TYPE) {
      res.resume();
      throw remoteError(
        "remote.protocol",
        this.ctx.display,
        `${this.ctx.display}: unexpected content type ${JSON.stringify(type)} from git-upload-pack`,
        "the URL may point at something that is not a smart git server",
      );
    }
    return new PktReader(this.bodySource(res));
  }

  explain(what: string): Promise<Error> {
    return Promise.resolve(transportError(this.ctx.display, `the server ${what}`));
  }

  bytesReceived(): number {
    return this.bytes;
  }

  roundTrips(): number {
    return this.trips;
  }

  close(): Promise<void> {
    for (const r of this.responses) r.destroy();
    for (const a of this.agents.values()) a.destroy();
    return Promise.resolve();
  }

  /** One request with the auth dance (401 → credential fill → one retry) and, for GET, redirects. */
  private async exchange(req: HttpRequest): Promise<IncomingMessage> {
    let url = req.url;
    for (let attempt = 0; ; attempt++) {
      const res = req.method === "GET" ? await this.followRedirects({ ...req, url }) : await this.send({ ...req, url });
      if (res.statusCode !== 401) {
        this.checkStatus(res, req.method);
        await this.approve();
        if (req.method === "GET") this.rebase(res);
        return res;
      }
      const resUrl = responseUrl(res);
      res.resume();
      const tried = this.auth !== null && this.auth.origin === resUrl.origin;
      if (tried) await this.refuse();
      if (attempt > 0 || tried) {
        const fromUrl = tried && this.auth?.credential === null;
        const hint = fromUrl
          ? "check the username and password in the URL"
          : "check the username and password or token your git credential helper supplies";
        throw remoteError("remote.auth", this.ctx.display, `${this.ctx.display}: authentication failed (HTTP 401)`, hint);
      }
      await this.fill(resUrl, res);
      if (req.method === "GET") url = new URL(resUrl.href);
    }
  }

  /** Ask the credential helpers for the origin that answered 401. */
  private async fill(url: URL, res: IncomingMessage): Promise<void> {
    const base = url.href.endsWith(SERVICE_SUFFIX) ? url.href.slice(0, -SERVICE_SUFFIX.length) : this.base.href;
    const b = new URL(base);
    const r = await credentialFill(
      {
        protocol: b.protocol.replace(/:$/, ""),
        host: b.host,
        path: decodeUserinfo(b.pathname.replace(/^\//, "")),
        username: b.origin === this.base.origin ? this.urlUser : null,
        wwwauth: res.headersDistinct["www-authenticate"] ?? [],
      },
      { env: this.ctx.env, cwd: this.ctx.cwd },
    );
    if (!r.ok) {
      throw remoteError(
        "remote.auth",
        this.ctx.display,
        `${this.ctx.display}: authentication required (HTTP 401), and no credentials are available: ${r.reason}`,
        "configure a git credential helper (git config credential.helper …), or set GIT_TERMINAL_PROMPT=1 to be asked",
      );
    }
    const c = r.credential;
    this.auth = { username: c.username, password: c.password, origin: b.origin, credential: c, approved: false };
  }

  private async approve(): Promise<void> {
    const a = this.auth;
    if (!a || a.approved || !a.credential) return;
    a.approved = true;
    await credentialApprove(a.credential, { env: this.ctx.env, cwd: this.ctx.cwd });
  }

  private async refuse(): Promise<void> {
    const c = this.auth?.credential;
    if (c) await credentialReject(c, { env: this.ctx.env, cwd: this.ctx.cwd });
  }

  /** After a redirected GET, move the base URL to where info/refs was finally served, as git does. */
  private rebase(res: IncomingMessage): void {
    const final = responseUrl(res);
    if (!final.href.endsWith(SERVICE_SUFFIX)) {
      res.resume();
      throw remoteError(
        "remote.protocol",
        this.ctx.display,
        `${this.ctx.display}: unable to update the URL base from redirection to ${final.href}`,
        "use the repository's final URL directly",
      );
    }
    const next = new URL(final.href.slice(0, -SERVICE_SUFFIX.length));
    if (next.href !== this.base.href) {
      this.ctx.reporter.warn("remote.redirect", `redirecting to ${next.href}`);
      this.base = next;
    }
  }

  private async followRedirects(req: HttpRequest): Promise<IncomingMessage> {
    let url = req.url;
    for (let hops = 0; ; hops++) {
      const res = await this.send({ ...req, url });
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(res.statusCode ?? 0) || location === undefined) return res;
      res.resume();
      if (hops >= MAX_REDIRECTS) throw remoteError("remote.protocol", this.ctx.display, `${this.ctx.display}: too many redirects`);
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw remoteError("remote.protocol", this.ctx.display, `${this.ctx.display}: refusing redirect to ${next.protocol} URL`);
      }
      url = next;
    }
  }

  /** Map a final non-2xx status to an error (the body is discarded). */
  private checkStatus(res: IncomingMessage, method: string): void {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return;
    res.resume();
    const d = this.ctx.display;
    const what = `${method} ${responseUrl(res).pathname.split("/").pop() ?? ""}`;
    if (status === 404 || status === 410)
      throw remoteError(
        "remote.not-found",
        d,
        `${d}: repository not found (HTTP ${status})`,
        "check the URL; private repositories may also answer 404 without credentials",
      );
    if (status === 407) {
      const p = this.lastProxy;
      const where = p ? `the proxy ${proxyDisplay(p.url)} (${p.source})` : "a proxy";
      throw remoteError(
        "remote.auth",
        d,
        `${d}: ${where} wants credentials (HTTP 407)`,
        `put the proxy's user and password in its URL (${p?.source ?? "http_proxy"}=http://user:password@host:port)`,
      );
    }
    if (status === 403)
      throw remoteError("remote.auth", d, `${d}: access denied (HTTP 403)`, "check that your credentials allow reading this repository");
    if (status >= 300 && status < 400)
      throw remoteError(
        "remote.protocol",
        d,
        `${d}: unexpected redirect (HTTP ${status}) for ${what}`,
        "use the repository's final URL directly",
      );
    if (status >= 500) throw remoteError("remote.unreachable", d, `${d}: server error (HTTP ${status}) for ${what}`, "try again later");
    throw remoteError("remote.protocol", d, `${d}: unexpected HTTP ${status} for ${what}`);
  }

  /** Make one request; network failures and timeouts become remote.unreachable. */
  private send(req: HttpRequest): Promise<IncomingMessage> {
    this.trips += 1;
    const extra = req.url.origin === this.configOrigin ? this.extraHeaders : {};
    const headers: Record<string, string> = { "user-agent": this.userAgent, "accept-encoding": "gzip, deflate", ...extra, ...req.headers };
    const a = this.auth;
    if (a && a.origin === req.url.origin)
      headers.authorization = `Basic ${Buffer.from(`${a.username}:${a.password}`, "utf8").toString("base64")}`;
    const proxy = chooseProxy(req.url, this.gitProxy, this.ctx.env);
    this.lastProxy = proxy;
    const https_ = req.url.protocol === "https:";
    let mod: typeof http | typeof https = https_ ? https : http;
    let target: URL | string = req.url;
    let options: https.RequestOptions = {
      method: req.method,
      headers,
      agent: this.agentFor(req.url.protocol, proxy),
      ...(https_ ? this.tls : {}),
    };
    if (proxy && !https_) {
      // Plain HTTP through the proxy: the absolute URL as the request target, sent to the proxy.
      mod = http;
      target = "";
      const auth = proxyAuthorization(proxy.url);
      options = {
        ...options,
        host: proxy.url.hostname,
        port: Number(proxy.url.port),
        path: req.url.href,
        headers: { ...headers, host: req.url.host, ...(auth ? { "proxy-authorization": auth } : {}) },
      };
    }
    return new Promise((resolve, reject) => {
      const onResponse = (res: IncomingMessage) => {
        this.responses.push(res);
        RESPONSE_URLS.set(res, req.url);
        res.on("error", () => {
          /* reported through the body's StreamSource, or irrelevant for discarded bodies */
        });
        resolve(res);
      };
      const r = target === "" ? mod.request(options, onResponse) : mod.request(target, options, onResponse);
      r.setTimeout(this.ctx.timeoutMs, () => r.destroy(this.timeoutError()));
      r.on("error", (e: NodeJS.ErrnoException) => reject(e instanceof CprError ? e : this.networkError(e)));
      r.end(req.body);
    });
  }

  /** One keep-alive agent per protocol and proxy (a redirect may switch either). */
  private agentFor(protocol: string, proxy: Proxy | null): http.Agent {
    const key = `${protocol} ${proxy ? proxy.url.href : "direct"}`;
    let a = this.agents.get(key);
    if (!a) {
      const opts = { keepAlive: true, maxSockets: 1 };
      // Plain HTTP through a proxy opens a connection per request: proxies such as tinyproxy close the client
      // connection after each answer without saying so, and a reused socket would then be reset mid-request.
      a =
        protocol === "https:"
          ? proxy
            ? new TunnelAgent(proxy.url, opts)
            : new https.Agent(opts)
          : new http.Agent(proxy ? { keepAlive: false } : opts);
      this.agents.set(key, a);
    }
    return a;
  }

  private timeoutError(): Error {
    return remoteError(
      "remote.unreachable",
      this.ctx.display,
      `${this.ctx.display}: no reply within ${this.ctx.timeoutMs / 1000}s`,
      "check the connection and that the server is up",
    );
  }

  private networkError(e: NodeJS.ErrnoException): Error {
    const d = this.ctx.display;
    const p = this.lastProxy;
    if (p && (e.code === "EPROXYAUTH" || e.code === "EPROXYCONNECT")) {
      const hint =
        e.code === "EPROXYAUTH"
          ? `put the proxy's user and password in its URL (${p.source}=http://user:password@host:port)`
          : `check ${p.source}, or add the host to no_proxy`;
      return remoteError("remote.unreachable", d, `${d}: ${e.message}`, hint, e);
    }
    const tls = typeof e.code === "string" && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(e.code);
    const hint = tls
      ? "the server's TLS certificate was not accepted; set GIT_SSL_CAINFO or NODE_EXTRA_CA_CERTS to its CA bundle"
      : p
        ? `check the proxy (${p.source}=${proxyDisplay(p.url)}), or add the host to no_proxy`
        : "check the URL, the network and that the server is up";
    const via = p ? ` through the proxy ${proxyDisplay(p.url)} (${p.source})` : "";
    return remoteError("remote.unreachable", d, `${d}: cannot connect${via}: ${networkErrorMessage(e)}`, hint, e);
  }

  /**
   * The (decompressed) body as a ByteSource with the inactivity timeout; wire bytes are counted here. Bodies stay
   * paused until this is called, so nothing is lost between the response headers and the first read.
   */
  private bodySource(res: IncomingMessage): StreamSource {
    const body = this.decoded(res);
    const d = this.ctx.display;
    const source = new StreamSource(
      body,
      this.ctx.timeoutMs,
      () => this.timeoutError(),
      (e) => (e instanceof CprError ? e : transportError(d, `could not read the response body: ${e.message}`, e)),
    );
    res.on("data", (chunk: Buffer) => {
      this.bytes += chunk.length;
    });
    if (body !== res) res.on("error", (e: NodeJS.ErrnoException) => source.fail(this.networkError(e)));
    return source;
  }

  private decoded(res: IncomingMessage): Readable {
    const enc = (res.headers["content-encoding"] ?? "identity").toLowerCase().trim();
    if (enc === "gzip" || enc === "x-gzip") return res.pipe(createGunzip());
    if (enc === "deflate") return res.pipe(createInflate());
    if (enc === "identity" || enc === "") return res;
    res.resume();
    throw remoteError("remote.protocol", this.ctx.display, `${this.ctx.display}: unsupported content encoding ${JSON.stringify(enc)}`);
  }

  /**
   * A server without smart HTTP serves the static `info/refs` file (`<oid>TAB<ref>` lines, peeled tags as
   * `<ref>^{}`). Turn it into an equivalent v0 advertisement so the usual parser and local filtering apply.
   */
  private async dumbAdvertisement(res: IncomingMessage, type: string): Promise<PktReader> {
    const text = await readAll(this.bodySource(res));
    const lines = text
      .toString("utf8")
      .split("\n")
      .filter((l) => l !== "");
    const pkts: Buffer[] = [];
    for (const line of lines) {
      const m = /^([0-9a-f]{40}|[0-9a-f]{64})\t(\S+)$/.exec(line);
      if (!m) {
        throw remoteError(
          "remote.protocol",
          this.ctx.display,
          `${this.ctx.display}: not a git repository: info/refs answered with ${JSON.stringify(type || "no content type")} and no ref list`,
          "check the URL",
        );
      }
      pkts.push(encodePkt(`${m[1]} ${m[2]}\n`));
    }
    this.fallbackNote = "the server only offers dumb HTTP (static info/refs)";
    return new PktReader(bufferSource(Buffer.concat([...pkts, FLUSH_PKT])));
  }
}

/** Read a ByteSource to the end. */
async function readAll(src: StreamSource): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let c = await src.next(); c !== null; c = await src.next()) parts.push(c);
  return Buffer.concat(parts);
}

/** The media type of a response, lower case, without parameters. */
function contentType(res: IncomingMessage): string {
  return (res.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/** The URL a response answered (recorded by `send`). */
function responseUrl(res: IncomingMessage): URL {
  const u = RESPONSE_URLS.get(res);
  if (!u) throw new Error("response without a recorded URL");
  return u;
}

/** TLS settings from git's environment variables: GIT_SSL_NO_VERIFY and GIT_SSL_CAINFO. */
function tlsOptions(
  env: NodeJS.ProcessEnv,
  cfg: { readonly sslVerify: boolean | null; readonly sslCAInfo: string | null } | null,
): https.RequestOptions {
  const out: https.RequestOptions = {};
  // The environment overrides git config, as in git.
  if (env.GIT_SSL_NO_VERIFY || cfg?.sslVerify === false) out.rejectUnauthorized = false;
  const caFile = env.GIT_SSL_CAINFO || cfg?.sslCAInfo;
  if (caFile) {
    try {
      out.ca = readFileSync(caFile);
    } catch {
      /* unreadable: let TLS verification report the problem */
    }
  }
  return out;
}

/** Start a smart-HTTP session: performs the GET (with auth and redirects) and returns once the advertisement is ready. */
export async function openHttp(ctx: TransportContext): Promise<Session> {
  const s = new HttpSession(ctx);
  try {
    await s.open();
  } catch (e) {
    await s.close();
    throw e;
  }
  return s;
}
