/**
 * An HTTP client for a registry's API (docs/registry.md, "HTTP interface"): search, atoms, resolve, missing paths,
 * uploads and build records. Every failure is a CprError naming the registry URL, the request and the status, with
 * the server's `{"error"}` message when it sent one.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import type { BuildRecord } from "../protocol/build-record.js";
import { CprError, type ErrorCode } from "../protocol/errors.js";
import { chooseProxy, proxyAuthorization, TunnelAgent } from "../git/transport/proxy.js";
import {
  FARM_PROTOCOL,
  parseClaimResponse,
  parseCompleteResponse,
  parseHeartbeatResponse,
  parseJobView,
  type ClaimResponse,
  type CompleteResponse,
  type JobView,
} from "../protocol/farm.js";

export interface SearchResult {
  readonly id: string;
  readonly label: string;
  /** Set root hex. */
  readonly set: string;
  readonly description: string | null;
  readonly tags: readonly string[];
  /** Newest first. */
  readonly versions: readonly string[];
}

export interface AtomVersion {
  readonly version: string;
  readonly rev: string;
  readonly origin: string | null;
  readonly manifest: string;
  /** Set when the version is yanked (docs/formats.md §15.5): its reason, null when the registry could not read it. */
  readonly yanked?: { readonly reason: string | null } | null;
}

export interface AtomInfo {
  readonly id: string;
  readonly label: string;
  readonly set: string;
  readonly description: string | null;
  readonly tags: readonly string[];
  /** Newest first. */
  readonly versions: readonly AtomVersion[];
}

export interface SetInfo {
  readonly root: string;
  readonly mirrors: readonly string[];
  readonly indexedAt: number | null;
}

/** What `GET /api/v1/resolve/<AtomId>/<req>?system=S` answers. */
export interface ResolvedBuild {
  readonly id: string;
  readonly label: string;
  readonly set: string;
  readonly version: string;
  readonly rev: string;
  readonly system: string;
  readonly configHash: string;
  readonly drv: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** `meta.mainProgram` of the build's derivation, when its record carries one. */
  readonly mainProgram?: string | null;
}

/** The body of `POST /api/v1/grafts` (src/serve/grafts.ts parseGraftRequest). */
export interface GraftRequestBody {
  readonly id: string;
  readonly version?: string | null;
  readonly system: string;
  readonly replace: readonly { readonly id: string; readonly version: string; readonly replaces?: string | null }[];
  readonly allowIncompatible?: boolean;
  readonly alias?: boolean;
  readonly force?: boolean;
  readonly dryRun?: boolean;
}

/** One rule of a graft that does not hold (src/protocol/graft-safety.ts Violation). */
export interface GraftReason {
  readonly code: string;
  readonly message: string;
  readonly hint: string;
  readonly override: string | null;
}

/** A graft record as the registry shows it. */
export interface GraftRecordDoc {
  readonly graftId: number;
  readonly atom: {
    readonly id: string;
    readonly label: string;
    readonly version: string;
    readonly system: string;
    readonly buildId: number;
  };
  readonly replacements: readonly { readonly id: string; readonly label: string; readonly from: string; readonly to: string }[];
  readonly algorithm: string;
  readonly outputs: Readonly<Record<string, string>>;
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  readonly warnings: readonly { readonly code: string; readonly message: string; readonly override?: string | null }[];
  readonly createdAt: string;
}

/** What `POST /api/v1/grafts` answers (src/serve/grafts.ts GraftDoc). */
export interface GraftAnswerDoc {
  readonly graftId: number | null;
  readonly created: boolean;
  readonly dryRun: boolean;
  readonly atom: GraftRecordDoc["atom"];
  readonly replacements: GraftRecordDoc["replacements"];
  readonly algorithm: string;
  readonly outputs: Readonly<Record<string, string>>;
  readonly paths: readonly { readonly old: string; readonly new: string }[];
  readonly members: readonly {
    readonly original: string;
    readonly graft: string;
    readonly narHash: string | null;
    readonly narSize: number | null;
    readonly references: readonly string[];
  }[];
  readonly aliases: readonly { readonly path: string; readonly target: string; readonly replaces: string }[];
  readonly warnings: readonly GraftReason[];
  readonly refusals: readonly GraftReason[];
}

export interface GraftAnswer extends GraftAnswerDoc {
  readonly status: 200 | 201 | 422;
}

/** What `resolve ?with=` answers: a build's identity with the graft's outputs and record. */
export interface ResolvedGraft extends ResolvedBuild {
  readonly graft: GraftRecordDoc;
}

/** The headers of one upload (`PUT /api/v1/paths/<hash>`). */
export interface UploadInfo {
  /** Full store path. */
  readonly path: string;
  /** `sha256:<nix32>` or SRI. */
  readonly narHash: string;
  readonly narSize: number;
  /** Full paths or basenames. */
  readonly references: readonly string[];
  /** Full path or basename, or null. */
  readonly deriver: string | null;
}

/** The body of `POST /api/v1/builds` (src/protocol/build-record.ts validates it on the server). */
export type BuildRecordBody = BuildRecord;

export interface ClientOptions {
  /** Bearer token for writes. */
  readonly token?: string | null;
  /** Environment for proxy settings (https_proxy, http_proxy, all_proxy, no_proxy); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** The code of a request that failed with HTTP `status`: one per status a registry (or a proxy before it) answers. */
const HTTP_ERROR_CODES: Readonly<Record<number, ErrorCode>> = {
  400: "registry.http-400",
  401: "registry.http-401",
  403: "registry.http-403",
  404: "registry.http-404",
  405: "registry.http-405",
  409: "registry.http-409",
  413: "registry.http-413",
  415: "registry.http-415",
  422: "registry.http-422",
  429: "registry.http-429",
  500: "registry.http-500",
  502: "registry.http-502",
  503: "registry.http-503",
  504: "registry.http-504",
};

/** Normalises a registry URL: http(s) only, no trailing slash, no query. */
export function registryUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new CprError("registry.url", `${JSON.stringify(text)} is not a registry URL`, {
      hint: "a registry URL looks like https://registry.example.org or http://127.0.0.1:8080",
    });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new CprError("registry.url", `${text}: a registry is reached over http:// or https://`, { where: text });
  }
  if (u.search || u.hash) throw new CprError("registry.url", `${text}: a registry URL has no query or fragment`, { where: text });
  return u.toString().replace(/\/+$/, "");
}

export class RegistryClient {
  readonly url: string;
  private readonly token: string | null;
  private readonly env: NodeJS.ProcessEnv;
  private tunnel: TunnelAgent | null = null;

  constructor(url: string, opts: ClientOptions = {}) {
    this.url = registryUrl(url);
    this.token = opts.token ?? null;
    this.env = opts.env ?? process.env;
  }

  /** `GET /api/v1/search?q=…` */
  async search(q: string, limit?: number): Promise<SearchResult[]> {
    const qs = new URLSearchParams({ q });
    if (limit !== undefined) qs.set("limit", String(limit));
    const a = await this.call("GET", `/api/v1/search?${qs}`);
    this.expect(a, [200], "search");
    const results = (a.body as { results?: unknown }).results;
    if (!Array.isArray(results)) throw this.malformed("search", a);
    return results as SearchResult[];
  }

  /** `GET /api/v1/atoms/<id>`; null when the registry does not know the atom. */
  async atom(id: string): Promise<AtomInfo | null> {
    const a = await this.call("GET", `/api/v1/atoms/${encodeURIComponent(id)}`);
    if (a.status === 404) return null;
    this.expect(a, [200], `atom ${id}`);
    return a.body as AtomInfo;
  }

  /** `GET /api/v1/sets` */
  async sets(): Promise<SetInfo[]> {
    const a = await this.call("GET", "/api/v1/sets");
    this.expect(a, [200], "sets");
    return ((a.body as { sets?: SetInfo[] }).sets ?? []) as SetInfo[];
  }

  /**
   * `GET /api/v1/resolve/<id>/<req>?system=S`: the newest version matching `req` (`*` for any) with a build for
   * `system`; null when there is none.
   */
  async resolve(id: string, req: string, system: string): Promise<ResolvedBuild | null> {
    const a = await this.call(
      "GET",
      `/api/v1/resolve/${encodeURIComponent(id)}/${encodeURIComponent(req || "*")}?${new URLSearchParams({ system })}`,
    );
    if (a.status === 404) return null;
    this.expect(a, [200], `resolve ${id} ${req}`);
    const b = a.body as Partial<ResolvedBuild>;
    if (typeof b.version !== "string" || typeof b.drv !== "string" || typeof b.outputs !== "object" || b.outputs === null)
      throw this.malformed("resolve", a);
    return b as ResolvedBuild;
  }

  /**
   * `GET /api/v1/resolve/<id>/<req>?system=S&with=<depId>@<version>…`: the newest version matching `req` with a
   * recorded graft of its build onto exactly those dependency versions (docs/grafts.md); null when there is none.
   */
  async resolveGraft(
    id: string,
    req: string,
    system: string,
    withs: readonly { id: string; version: string }[],
  ): Promise<ResolvedGraft | null> {
    const qs = new URLSearchParams({ system });
    for (const w of withs) qs.append("with", `${w.id}@${w.version}`);
    const a = await this.call("GET", `/api/v1/resolve/${encodeURIComponent(id)}/${encodeURIComponent(req || "*")}?${qs}`);
    if (a.status === 404) return null;
    this.expect(a, [200], `resolve ${id} ${req} with ${withs.map((w) => `${w.id}@${w.version}`).join(",")}`);
    const b = a.body as Partial<ResolvedGraft>;
    if (typeof b.version !== "string" || typeof b.outputs !== "object" || b.outputs === null || typeof b.graft !== "object")
      throw this.malformed("resolve", a);
    return b as ResolvedGraft;
  }

  /**
   * `POST /api/v1/grafts`: asks the registry to graft (or, with dryRun, to plan and check). A refusal (422) is
   * answered, not thrown: `refusals` lists every reason.
   */
  async graft(request: GraftRequestBody): Promise<GraftAnswer> {
    const a = await this.call("POST", "/api/v1/grafts", request);
    if (a.status === 422 && a.body && typeof a.body === "object" && Array.isArray((a.body as { reasons?: unknown }).reasons))
      return { status: 422, ...(a.body as GraftAnswerDoc) };
    this.expect(a, [200, 201], "graft");
    return { status: a.status as 200 | 201, ...(a.body as GraftAnswerDoc) };
  }

  /** `GET /api/v1/atoms/<id>/grafts`: the graft records of an atom, newest first. */
  async grafts(id: string): Promise<GraftRecordDoc[]> {
    const a = await this.call("GET", `/api/v1/atoms/${encodeURIComponent(id)}/grafts`);
    if (a.status === 404) return [];
    this.expect(a, [200], `grafts of ${id}`);
    return ((a.body as { grafts?: GraftRecordDoc[] }).grafts ?? []) as GraftRecordDoc[];
  }

  /**
   * Checks, before any work, that the registry answers and takes the token (an empty `paths/missing` query, which
   * needs a valid token). Whether the token may write a given set is only known when the build is recorded.
   */
  async checkWrite(): Promise<void> {
    const a = await this.call("POST", "/api/v1/paths/missing", { paths: [] });
    this.expect(a, [200], "the write token check");
  }

  /** `POST /api/v1/paths/missing`: the paths the cache does not hold. */
  async missing(paths: readonly string[]): Promise<string[]> {
    const a = await this.call("POST", "/api/v1/paths/missing", { paths });
    this.expect(a, [200], "paths/missing");
    const m = (a.body as { missing?: unknown }).missing;
    if (!Array.isArray(m)) throw this.malformed("paths/missing", a);
    return m.map(String);
  }

  /**
   * `PUT /api/v1/paths/<hash>`: uploads one store path, its NAR streamed as the body. `created` is false when the
   * cache already had it (200).
   */
  async upload(info: UploadInfo, nar: Readable): Promise<{ created: boolean; narinfo: string | null }> {
    const base = basename(info.path);
    const hash = base.slice(0, 32);
    const headers: Record<string, string> = {
      "content-type": "application/x-nix-nar",
      "content-length": String(info.narSize),
      "x-nix-store-path": info.path,
      "x-nix-nar-hash": info.narHash,
      "x-nix-nar-size": String(info.narSize),
      "x-nix-references": info.references.map(basename).join(" "),
    };
    if (info.deriver) headers["x-nix-deriver"] = basename(info.deriver);
    const a = await this.send("PUT", `/api/v1/paths/${hash}`, headers, nar);
    this.expect(a, [200, 201], `upload of ${info.path}`);
    const narinfo = (a.body as { narinfo?: unknown } | null)?.narinfo;
    return { created: a.status === 201, narinfo: typeof narinfo === "string" ? narinfo : null };
  }

  /** `POST /api/v1/builds` */
  async recordBuild(record: BuildRecordBody): Promise<{ buildId: unknown }> {
    const a = await this.call("POST", "/api/v1/builds", record);
    this.expect(a, [200, 201], `build record of ${record.label} ${record.version}`);
    return { buildId: (a.body as { buildId?: unknown }).buildId ?? null };
  }

  // ── jobs (the build farm, docs/farm.md) ──

  /** `POST /api/v1/jobs/claim` (worker token). */
  async claim(worker: string, systems: readonly string[]): Promise<ClaimResponse> {
    const a = await this.call("POST", "/api/v1/jobs/claim", { protocol: FARM_PROTOCOL, worker, systems });
    this.expectFarm(a, "job claim");
    return parseClaimResponse(a.body);
  }

  /** `POST /api/v1/jobs/<id>/heartbeat`: the lease's new expiry (unix ms). */
  async heartbeat(id: number, lease: string): Promise<number> {
    const a = await this.call("POST", `/api/v1/jobs/${id}/heartbeat`, { protocol: FARM_PROTOCOL, lease });
    this.expectFarm(a, `heartbeat of job ${id}`);
    return parseHeartbeatResponse(a.body).leaseExpiresAt;
  }

  /** `POST /api/v1/jobs/<id>/log`: appends to the job's log. */
  async appendLog(id: number, lease: string, text: string): Promise<void> {
    const a = await this.call("POST", `/api/v1/jobs/${id}/log`, { protocol: FARM_PROTOCOL, lease, text });
    this.expectFarm(a, `log of job ${id}`);
  }

  /** `POST /api/v1/jobs/<id>/complete` */
  async completeJob(
    id: number,
    lease: string,
    drv: string,
    outputs: Readonly<Record<string, string>>,
    mainProgram: string | null,
  ): Promise<CompleteResponse> {
    const a = await this.call("POST", `/api/v1/jobs/${id}/complete`, { protocol: FARM_PROTOCOL, lease, drv, outputs, mainProgram });
    this.expectFarm(a, `completion of job ${id}`);
    return parseCompleteResponse(a.body);
  }

  /** `POST /api/v1/jobs/<id>/fail` */
  async failJob(id: number, lease: string, error: string): Promise<void> {
    const a = await this.call("POST", `/api/v1/jobs/${id}/fail`, {
      protocol: FARM_PROTOCOL,
      lease,
      error: error.slice(-60_000) || "failed",
    });
    this.expectFarm(a, `failure of job ${id}`);
  }

  /** `POST /api/v1/jobs/<id>/release` */
  async releaseJob(id: number, lease: string, reason: string): Promise<void> {
    const a = await this.call("POST", `/api/v1/jobs/${id}/release`, { protocol: FARM_PROTOCOL, lease, reason });
    this.expectFarm(a, `release of job ${id}`);
  }

  /** `GET /api/v1/jobs?…` */
  async jobs(
    filter: { state?: string; atom?: string; system?: string; version?: string; kind?: string; limit?: number } = {},
  ): Promise<JobView[]> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) qs.set(k, String(v));
    const a = await this.call("GET", `/api/v1/jobs${qs.size ? `?${qs}` : ""}`);
    this.expect(a, [200], "jobs");
    const jobs = (a.body as { jobs?: unknown } | null)?.jobs;
    if (!Array.isArray(jobs)) throw this.malformed("jobs", a);
    return jobs.map(parseJobView);
  }

  /** `GET /api/v1/jobs/<id>`; null when unknown. */
  async job(id: number): Promise<(JobView & { attemptList: unknown[] }) | null> {
    const a = await this.call("GET", `/api/v1/jobs/${id}`);
    if (a.status === 404) return null;
    this.expect(a, [200], `job ${id}`);
    return parseJobView(a.body) as JobView & { attemptList: unknown[] };
  }

  /** `GET /api/v1/jobs/<id>/log`: the log text; with `onText`, streamed to it (following a running job). */
  async jobLog(id: number, opts: { follow?: boolean; attempt?: number; onText?: (text: string) => void } = {}): Promise<string> {
    const qs = new URLSearchParams({ follow: opts.follow ? "1" : "0" });
    if (opts.attempt !== undefined) qs.set("attempt", String(opts.attempt));
    const a = await this.send("GET", `/api/v1/jobs/${id}/log?${qs}`, { accept: "text/plain" }, undefined, opts.onText);
    this.expect(a, [200], `log of job ${id}`);
    return a.text;
  }

  /** `POST /api/v1/jobs/<id>/retry` or `…/cancel` (write token of the set). */
  async manageJob(id: number, action: "retry" | "cancel"): Promise<JobView> {
    const a = await this.send("POST", `/api/v1/jobs/${id}/${action}`, {});
    this.expect(a, [200], `${action} of job ${id}`);
    return parseJobView(a.body);
  }

  /** Like expect, with the farm's own errors: a lost lease and a protocol mismatch keep their codes. */
  private expectFarm(a: Answer, what: string): void {
    const body = a.body as { code?: unknown; error?: unknown } | null;
    if ((a.status === 409 || a.status === 400) && (body?.code === "farm.lease-lost" || body?.code === "farm.protocol")) {
      throw new CprError(body.code, `registry ${this.url}: ${what}: ${typeof body.error === "string" ? body.error : a.text}`, {
        where: this.url,
        ...(body.code === "farm.protocol" ? { hint: "run the same cpr release on the workers and the registry servers" } : {}),
      });
    }
    this.expect(a, [200], what);
  }

  // ── transport ──

  private async call(method: string, path: string, json?: unknown): Promise<Answer> {
    const headers: Record<string, string> = { accept: "application/json" };
    let body: Buffer | undefined;
    if (json !== undefined) {
      body = Buffer.from(JSON.stringify(json));
      headers["content-type"] = "application/json";
      headers["content-length"] = String(body.length);
    }
    return this.send(method, path, headers, body);
  }

  private send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Buffer | Readable,
    onText?: (text: string) => void,
  ): Promise<Answer> {
    const target = new URL(this.url + path);
    const all: Record<string, string> = { "user-agent": "cpr", ...headers };
    if (this.token && method !== "GET") all.authorization = `Bearer ${this.token}`;
    // Proxies as for git remotes (src/git/transport/proxy.ts): https in a CONNECT tunnel, http in absolute form.
    const proxy = chooseProxy(target, null, this.env);
    let req;
    if (!proxy) req = (target.protocol === "https:" ? httpsRequest : httpRequest)(target, { method, headers: all });
    else if (target.protocol === "https:") {
      this.tunnel ??= new TunnelAgent(proxy.url, { keepAlive: false });
      req = httpsRequest(target, { method, headers: all, agent: this.tunnel });
    } else {
      const auth = proxyAuthorization(proxy.url);
      req = httpRequest({
        host: proxy.url.hostname,
        port: Number(proxy.url.port),
        path: target.href,
        method,
        agent: false,
        headers: { ...all, host: target.host, ...(auth ? { "proxy-authorization": auth } : {}) },
      });
    }
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(e instanceof CprError ? e : this.unreachable(method, path, e));
      };
      req.on("error", fail);
      req.on("response", (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        const streaming = onText !== undefined && res.statusCode === 200;
        res.on("data", (c: Buffer) => {
          chunks.push(c);
          if (streaming) onText(c.toString("utf8"));
        });
        res.on("error", fail);
        res.on("end", () => {
          if (settled) return;
          settled = true;
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = null;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      });
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        // A failing NAR stream (Nix could not dump the path) aborts the request with the stream's error.
        body.on("error", fail);
        body.pipe(req);
      }
    });
  }

  private expect(a: Answer, ok: readonly number[], what: string): void {
    if (ok.includes(a.status)) return;
    const msg = (a.body as { error?: unknown } | null)?.error;
    const detail = typeof msg === "string" ? msg : a.text.trim().slice(0, 300) || "(no message)";
    const hint =
      a.status === 401 || a.status === 403
        ? "pass a write token for this set (--token, config registry.token or CPR_REGISTRY_TOKEN; `cpr registry token create` on the server)"
        : a.status === 404 && (typeof msg !== "string" || msg.startsWith("not found: "))
          ? `${this.url} does not serve the cpr registry API: give the registry's base URL (what \`cpr serve\` prints after "listening on")`
          : undefined;
    throw new CprError(
      HTTP_ERROR_CODES[a.status] ?? "registry.http-other",
      `registry ${this.url}: ${what} failed with HTTP ${a.status}: ${detail}`,
      { where: this.url, hint },
    );
  }

  private malformed(what: string, a: Answer): CprError {
    return new CprError("registry.malformed", `registry ${this.url}: ${what} answered something unexpected: ${a.text.slice(0, 200)}`, {
      where: this.url,
    });
  }

  private unreachable(method: string, path: string, e: unknown): CprError {
    const err = e as NodeJS.ErrnoException;
    return new CprError(
      "registry.unreachable",
      `cannot reach registry ${this.url} (${method} ${path.replace(/\?.*$/, "")}): ${err?.code ?? ""}${err?.code ? " " : ""}${err?.message ?? String(e)}`,
      {
        where: this.url,
        hint: "check the URL (--registry, config registry.urls or CPR_REGISTRY) and that the server runs",
        cause: e,
      },
    );
  }
}
