/**
 * HTTP(S) proxies for discovery over smart HTTP, chosen as git chooses them, against a real forward proxy
 * (tinyproxy) in front of lighttpd running git http-backend, over http and over https (a CONNECT tunnel with TLS to
 * the server inside, certificate checked against GIT_SSL_CAINFO); and git's other http.* settings for the URL
 * (http.sslCAInfo, http.sslVerify, http.extraHeader).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseGitUrl } from "../../src/protocol/uri.js";
import { CprError } from "../../src/protocol/errors.js";
import { lsRefs } from "../../src/git/lsrefs.js";
import { bypassesProxy, chooseProxy, parseGitHttpConfig, parseProxy } from "../../src/git/transport/proxy.js";
import { GIT_TEST_ENV, atomToml, gitIn, makeRepo, tempDir } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { freePort, startHttpBackend, startTinyproxy, type HttpTestServer, type TinyproxyServer } from "../support/servers.js";

const PREFIXES = ["refs/eka/atoms/", "refs/ekala/init"];

/** An environment with no proxy settings inherited from the machine running the tests. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...GIT_TEST_ENV };
  for (const k of [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "GIT_SSL_CAINFO",
    "GIT_SSL_NO_VERIFY",
  ])
    delete env[k];
  return { ...env, ...extra };
}

describe("proxy selection (as git and libcurl choose)", () => {
  const http = new URL("http://example.org/repo.git");
  const https = new URL("https://example.org/repo.git");

  test("git config http.proxy wins over the environment; scheme-specific variables before all_proxy", () => {
    assert.equal(chooseProxy(https, "proxy.corp:3128", { https_proxy: "http://other:1" })?.url.href, "http://proxy.corp:3128/");
    assert.equal(chooseProxy(https, null, { https_proxy: "http://a:1", all_proxy: "http://b:2" })?.source, "https_proxy");
    assert.equal(chooseProxy(https, null, { HTTPS_PROXY: "http://a:1" })?.source, "HTTPS_PROXY");
    assert.equal(chooseProxy(http, null, { http_proxy: "http://a:1", https_proxy: "http://b:2" })?.url.host, "a:1");
    assert.equal(chooseProxy(http, null, { ALL_PROXY: "b:2" })?.url.href, "http://b:2/");
    assert.equal(chooseProxy(https, null, {}), null);
  });

  test("upper-case HTTP_PROXY is ignored for http URLs, as libcurl ignores it", () => {
    assert.equal(chooseProxy(http, null, { HTTP_PROXY: "http://evil:1" }), null);
  });

  test("no_proxy: hosts, domain suffixes, IPs, ports and *", () => {
    assert.equal(bypassesProxy("example.org", "localhost, example.org"), true);
    assert.equal(bypassesProxy("git.example.org", ".example.org"), true);
    assert.equal(bypassesProxy("git.example.org", "example.org"), true);
    assert.equal(bypassesProxy("notexample.org", "example.org"), false);
    assert.equal(bypassesProxy("127.0.0.1", "127.0.0.1:8080"), true);
    assert.equal(bypassesProxy("anything", "*"), true);
    assert.equal(bypassesProxy("example.org", ""), false);
    assert.equal(chooseProxy(https, null, { https_proxy: "http://a:1", NO_PROXY: "example.org" }), null);
  });

  test("git config http.* for a URL: proxy, sslVerify, sslCAInfo and extraHeader (an empty one resets)", () => {
    const cfg = parseGitHttpConfig(
      "http.proxy http://p:3128\nhttp.sslverify false\nhttp.sslcainfo /etc/ca.pem\nhttp.extraheader X-A: 1\nhttp.extraheader \nhttp.extraheader Authorization: Bearer t\n",
    );
    assert.deepEqual(cfg, {
      proxy: "http://p:3128",
      sslVerify: false,
      sslCAInfo: "/etc/ca.pem",
      extraHeaders: ["Authorization: Bearer t"],
    });
    assert.deepEqual(parseGitHttpConfig(""), { proxy: null, sslVerify: null, sslCAInfo: null, extraHeaders: [] });
    assert.equal(parseGitHttpConfig("http.sslverify true").sslVerify, true);
  });

  test("proxy URLs: default scheme and port; unsupported schemes and garbage are clear errors", () => {
    assert.equal(parseProxy("proxy", "http_proxy").href, "http://proxy:1080/");
    assert.throws(
      () => parseProxy("socks5://proxy:1080", "all_proxy"),
      (e: unknown) => e instanceof CprError && /socks5 proxy/.test(e.message) && e.where === "all_proxy",
    );
    assert.throws(
      () => parseProxy("http://[bad", "https_proxy"),
      (e: unknown) => e instanceof CprError && e.code === "remote.proxy",
    );
  });
});

describe("discovery through a real proxy (tinyproxy)", () => {
  let plain: HttpTestServer | null = null;
  let secure: HttpTestServer | null = null;
  let proxy: TinyproxyServer | null = null;
  let authProxy: TinyproxyServer | null = null;
  let authed: HttpTestServer | null = null;
  let oid = "";
  const available = ["tinyproxy", "lighttpd", "git-http-backend", "openssl"].every((t) => findTool(t) !== null);

  before(async () => {
    if (!available) return;
    const base = tempDir("cpr-proxy-base-");
    const work = makeRepo({ "hello/atom.toml": atomToml("hello", "1.0.0") });
    execFileSync("git", ["clone", "-q", "--bare", work, join(base, "set.git")], { env: { ...process.env, ...GIT_TEST_ENV } });
    oid = gitIn(join(base, "set.git"), "rev-parse", "HEAD");
    gitIn(join(base, "set.git"), "update-ref", "refs/eka/atoms/hello/1.0.0", oid);
    plain = await startHttpBackend(base);
    secure = await startHttpBackend(base, { tls: true });
    proxy = await startTinyproxy({ connectPorts: [secure.port] });
    authProxy = await startTinyproxy({ connectPorts: [secure.port], auth: { user: "alice", password: "s3cret" } });
    authed = await startHttpBackend(base, { auth: { user: "ci", password: "t0ken" } });
  });
  after(async () => {
    await Promise.all([plain?.stop(), secure?.stop(), proxy?.stop(), authProxy?.stop(), authed?.stop()]);
  });

  const list = (url: string, env: NodeJS.ProcessEnv) => lsRefs(parseGitUrl(url), PREFIXES, { env, timeoutMs: 20_000 });

  test("http: http_proxy carries the requests (absolute-form), and no_proxy bypasses it", async (t) => {
    if (!needTools(t, "tinyproxy", "lighttpd", "git-http-backend", "openssl")) return;
    const url = plain!.url("set.git");
    const r = await list(url, cleanEnv({ http_proxy: proxy!.proxyUrl }));
    assert.deepEqual(
      r.refs.map((x) => x.name),
      ["refs/eka/atoms/hello/1.0.0"],
    );
    assert.ok(
      proxy!.requests().some((l) => l === `GET ${url}/info/refs?service=git-upload-pack`),
      proxy!.requests().join("\n"),
    );
    assert.ok(proxy!.requests().some((l) => l === `POST ${url}/git-upload-pack`));
    const before = proxy!.requests().length;
    await list(url, cleanEnv({ http_proxy: proxy!.proxyUrl, no_proxy: "127.0.0.1" }));
    assert.equal(proxy!.requests().length, before, "no_proxy: nothing went through the proxy");
  });

  test("git config http.proxy is used with no proxy variable set", async (t) => {
    if (!needTools(t, "tinyproxy", "lighttpd", "git-http-backend", "openssl")) return;
    const url = plain!.url("set.git");
    const before = proxy!.requests().length;
    const env = cleanEnv({ GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.proxy", GIT_CONFIG_VALUE_0: proxy!.proxyUrl });
    const r = await list(url, env);
    assert.equal(r.refs.length, 1);
    assert.ok(proxy!.requests().length > before);
  });

  test("https: a CONNECT tunnel with TLS inside, the certificate checked against GIT_SSL_CAINFO", async (t) => {
    if (!needTools(t, "tinyproxy", "lighttpd", "git-http-backend", "openssl")) return;
    const url = secure!.url("set.git");
    const r = await list(url, cleanEnv({ https_proxy: proxy!.proxyUrl, GIT_SSL_CAINFO: secure!.caFile! }));
    assert.deepEqual(
      r.refs.map((x) => [x.name, x.oid]),
      [["refs/eka/atoms/hello/1.0.0", oid]],
    );
    assert.ok(proxy!.requests().includes(`CONNECT 127.0.0.1:${secure!.port}`), proxy!.requests().join("\n"));
    // The proxy only saw the tunnel, never a request line for the repository.
    assert.ok(!proxy!.requests().some((l) => l.includes("https://")), proxy!.requests().join("\n"));
    // Without the CA the server's self-signed certificate is refused, with what to do.
    await assert.rejects(
      list(url, cleanEnv({ https_proxy: proxy!.proxyUrl })),
      (e: unknown) => e instanceof CprError && /GIT_SSL_CAINFO/.test(e.hint ?? ""),
    );
  });

  test("a proxy that wants credentials: a clear error without them, success with them in the proxy URL", async (t) => {
    if (!needTools(t, "tinyproxy", "lighttpd", "git-http-backend", "openssl")) return;
    const url = secure!.url("set.git");
    await assert.rejects(list(url, cleanEnv({ https_proxy: authProxy!.proxyUrl, GIT_SSL_CAINFO: secure!.caFile! })), (e: unknown) => {
      assert.ok(e instanceof CprError, String(e));
      assert.match(e.message, /HTTP 407/);
      assert.match(e.hint ?? "", /https_proxy=http:\/\/user:password@/);
      return true;
    });
    const withCreds = authProxy!.proxyUrl.replace("http://", "http://alice:s3cret@");
    const r = await list(url, cleanEnv({ https_proxy: withCreds, GIT_SSL_CAINFO: secure!.caFile! }));
    assert.equal(r.refs.length, 1);
    const plainUrl = plain!.url("set.git");
    await assert.rejects(
      list(plainUrl, cleanEnv({ http_proxy: authProxy!.proxyUrl })),
      (e: unknown) => e instanceof CprError && /407/.test(e.message),
    );
    assert.equal((await list(plainUrl, cleanEnv({ http_proxy: withCreds }))).refs.length, 1);
  });

  test("a proxy that is not there: the error names the proxy and where it was configured", async (t) => {
    if (!needTools(t, "tinyproxy", "lighttpd", "git-http-backend", "openssl")) return;
    const dead = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(list(plain!.url("set.git"), cleanEnv({ all_proxy: dead })), (e: unknown) => {
      assert.ok(e instanceof CprError, String(e));
      assert.match(e.message, new RegExp(`through the proxy ${dead.replace(/[.]/g, "\\.")} \\(all_proxy\\)`));
      assert.match(e.hint ?? "", /no_proxy/);
      return true;
    });
  });
  /** git config entries through the environment (GIT_CONFIG_COUNT), as `git -c` would give them. */
  const gitConfig = (pairs: [string, string][]): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { GIT_CONFIG_COUNT: String(pairs.length) };
    pairs.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return env;
  };

  test("git config http.sslCAInfo and http.sslVerify for the URL apply, as for git", async (t) => {
    if (!needTools(t, "lighttpd", "git-http-backend", "openssl")) return;
    const url = secure!.url("set.git");
    assert.equal((await list(url, cleanEnv(gitConfig([[`http.${url}.sslCAInfo`, secure!.caFile!]])))).refs.length, 1);
    assert.equal((await list(url, cleanEnv(gitConfig([["http.sslVerify", "false"]])))).refs.length, 1);
    await assert.rejects(
      list(url, cleanEnv(gitConfig([["http.https://elsewhere.example/.sslVerify", "false"]]))),
      (e: unknown) => e instanceof CprError && /GIT_SSL_CAINFO/.test(e.hint ?? ""),
    );
  });

  test("git config http.extraHeader is sent to the remote's origin (CI tokens as actions/checkout sets them)", async (t) => {
    if (!needTools(t, "lighttpd", "git-http-backend")) return;
    const url = authed!.url("set.git");
    const noPrompt = { GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "", HOME: tempDir("cpr-home-") };
    await assert.rejects(list(url, cleanEnv(noPrompt)), (e: unknown) => e instanceof CprError);
    const basic = Buffer.from("ci:t0ken").toString("base64");
    const r = await list(
      url,
      cleanEnv({ ...noPrompt, ...gitConfig([[`http.http://127.0.0.1:${authed!.port}/.extraHeader`, `Authorization: Basic ${basic}`]]) }),
    );
    assert.deepEqual(
      r.refs.map((x) => x.oid),
      [oid],
    );
  });
});
