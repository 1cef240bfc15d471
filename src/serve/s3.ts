/**
 * A small S3 client: the handful of requests the registry's object storage needs (HEAD, GET, PUT, DELETE of an
 * object, the multipart upload calls, a bucket check), signed with AWS Signature Version 4 (node:crypto) and sent
 * with Node's fetch. Written here rather than taken from the AWS SDK: the SDK's S3 client brings about a hundred
 * packages for these ten requests, and signing is a page of code checked against a real S3 server by the tests.
 *
 * Store URLs: `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&profile=P&path-style=true|false]`. With no endpoint
 * (nor AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, as the AWS tools read them) the bucket is AWS's (`https://s3.REGION.amazonaws.com`, virtual-hosted addressing); with one (Ceph RGW, MinIO, …)
 * path-style addressing is the default.
 *
 * Credentials and region come from the standard AWS places, in the AWS tools' order: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; else the profile (`?profile=`, else AWS_PROFILE, else `default`) of
 * the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) and then of the config file
 * (AWS_CONFIG_FILE, else ~/.aws/config). The region: `?region=`, AWS_REGION, AWS_DEFAULT_REGION, the profile's
 * `region` in the config file, else us-east-1.
 */
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { CprError } from "../protocol/errors.js";
import { redactUrl } from "../protocol/uri.js";

export interface S3Location {
  readonly bucket: string;
  /** Key prefix, "" or ending in "/". */
  readonly prefix: string;
  /** Base URL of the service, without trailing slash (e.g. `http://127.0.0.1:7480`). */
  readonly endpoint: string;
  readonly region: string;
  readonly pathStyle: boolean;
  /** The profile to read from the AWS files. */
  readonly profile: string;
}

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** Where they came from, for messages (never the secret). */
  readonly source: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function storeUrlError(url: string, why: string): CprError {
  return new CprError("registry.store-url", `--store-url ${redactUrl(url)}: ${why}`, {
    where: redactUrl(url),
    hint: "give s3://BUCKET/PREFIX?endpoint=http://HOST:PORT (endpoint, region, profile and path-style are optional), or leave it out to keep NARs in the data directory",
  });
}

/** Parses `s3://bucket/prefix?…`; the region and profile defaults come from `env` and the AWS config file. */
export function parseS3Url(url: string, env: NodeJS.ProcessEnv = process.env): S3Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw storeUrlError(url, "not a URL");
  }
  if (u.protocol !== "s3:") throw storeUrlError(url, `unsupported scheme ${u.protocol.replace(/:$/, "")} (only s3:// is known)`);
  if (u.username || u.password) throw storeUrlError(url, "credentials do not belong in the URL (use the AWS environment or files)");
  if (u.hash) throw storeUrlError(url, "a fragment means nothing here");
  const bucket = u.hostname;
  if (!BUCKET.test(bucket)) throw storeUrlError(url, `${JSON.stringify(bucket)} is not an S3 bucket name`);
  const segments = decodeURIComponent(u.pathname)
    .split("/")
    .filter((s) => s !== "");
  const prefix = segments.length ? `${segments.join("/")}/` : "";
  const known = new Set(["endpoint", "region", "profile", "path-style"]);
  for (const k of u.searchParams.keys())
    if (!known.has(k)) throw storeUrlError(url, `unknown parameter ${JSON.stringify(k)} (known: ${[...known].join(", ")})`);
  const profile = u.searchParams.get("profile") || nonEmpty(env.AWS_PROFILE) || "default";
  const region =
    u.searchParams.get("region") ||
    nonEmpty(env.AWS_REGION) ||
    nonEmpty(env.AWS_DEFAULT_REGION) ||
    iniValue(readIni(configFile(env)), `profile ${profile}`, profile, "region") ||
    "us-east-1";
  if (!/^[a-z0-9-]+$/.test(region)) throw storeUrlError(url, `region ${JSON.stringify(region)} is not a region name`);
  const endpointText = u.searchParams.get("endpoint") || nonEmpty(env.AWS_ENDPOINT_URL_S3) || nonEmpty(env.AWS_ENDPOINT_URL) || null;
  let endpoint: string;
  if (endpointText) {
    let e: URL;
    try {
      e = new URL(endpointText);
    } catch {
      throw storeUrlError(url, `endpoint ${JSON.stringify(endpointText)} is not a URL`);
    }
    if (e.protocol !== "http:" && e.protocol !== "https:") throw storeUrlError(url, "the endpoint must be an http(s) URL");
    if (e.search || e.hash || e.username) throw storeUrlError(url, "the endpoint must be a base URL (scheme, host, port, path)");
    endpoint = `${e.origin}${e.pathname.replace(/\/+$/, "")}`;
  } else {
    endpoint = `https://s3.${region}.amazonaws.com`;
  }
  const ps = u.searchParams.get("path-style");
  if (ps !== null && ps !== "true" && ps !== "false") throw storeUrlError(url, "path-style is true or false");
  const pathStyle = ps === null ? endpointText !== null || bucket.includes(".") : ps === "true";
  return { bucket, prefix, endpoint, region, pathStyle, profile };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function home(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env.HOME) ?? homedir();
}

function configFile(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env.AWS_CONFIG_FILE) ?? join(home(env), ".aws", "config");
}

function credentialsFile(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ?? join(home(env), ".aws", "credentials");
}

type Ini = Map<string, Map<string, string>>;

/** The AWS files' INI dialect: `[section]`, `key = value`, `#`/`;` comments. A missing file is empty. */
function readIni(path: string): Ini {
  const out: Ini = new Map();
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return out;
  }
  let section: Map<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const s = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (s) {
      section = out.get(s[1]!) ?? new Map();
      out.set(s[1]!, section);
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv && section) section.set(kv[1]!.toLowerCase(), kv[2]!);
  }
  return out;
}

function iniValue(ini: Ini, section: string, alt: string, key: string): string | undefined {
  return nonEmpty(ini.get(section)?.get(key)) ?? (alt === "default" ? nonEmpty(ini.get(alt)?.get(key)) : undefined);
}

/** The credentials, from the environment or the AWS files (see the module comment); an error names where it looked. */
export function resolveCredentials(loc: S3Location, env: NodeJS.ProcessEnv = process.env): S3Credentials {
  const id = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secret = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (id && secret) {
    const token = nonEmpty(env.AWS_SESSION_TOKEN);
    return {
      accessKeyId: id,
      secretAccessKey: secret,
      ...(token ? { sessionToken: token } : {}),
      source: "the environment (AWS_ACCESS_KEY_ID)",
    };
  }
  const files: [string, string][] = [
    [credentialsFile(env), loc.profile],
    [configFile(env), loc.profile === "default" ? "default" : `profile ${loc.profile}`],
  ];
  for (const [file, section] of files) {
    const values = readIni(file).get(section);
    const fid = nonEmpty(values?.get("aws_access_key_id"));
    const fsecret = nonEmpty(values?.get("aws_secret_access_key"));
    if (fid && fsecret) {
      const token = nonEmpty(values?.get("aws_session_token"));
      return { accessKeyId: fid, secretAccessKey: fsecret, ...(token ? { sessionToken: token } : {}), source: `${file} [${section}]` };
    }
  }
  throw new CprError("registry.s3-credentials", `no S3 credentials for profile ${loc.profile}`, {
    where: files.map(([f]) => f).join(", "),
    hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add aws_access_key_id and aws_secret_access_key to the profile in ~/.aws/credentials (AWS_PROFILE picks the profile)",
  });
}

// ── signing (AWS Signature Version 4) ──

const EMPTY_SHA256 = createHash("sha256").digest("hex");

/** RFC 3986 percent-encoding, as SigV4 wants it (slashes kept when `keepSlash`). */
function uriEncode(s: string, keepSlash: boolean): string {
  const e = encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? e.replace(/%2F/g, "/") : e;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

export interface SignInput {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly payloadHash: string;
  readonly region: string;
  readonly credentials: S3Credentials;
  readonly now: Date;
}

/** The headers to add to a request (x-amz-date, x-amz-content-sha256, authorization, the session token). */
export function signV4(input: SignInput): Record<string, string> {
  const amzDate = input.now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v.trim()])),
    host: input.url.host,
    "x-amz-date": amzDate,
    "x-amz-content-sha256": input.payloadHash,
  };
  if (input.credentials.sessionToken) headers["x-amz-security-token"] = input.credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const query = [...input.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [
    input.method,
    input.url.pathname, // built from already-encoded segments by the client
    query,
    names.map((n) => `${n}:${headers[n]}\n`).join(""),
    names.join(";"),
    input.payloadHash,
  ].join("\n");
  const scope = `${day}/${input.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, createHash("sha256").update(canonical).digest("hex")].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${input.credentials.secretAccessKey}`, day), input.region), "s3"), "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  const out: Record<string, string> = {
    "x-amz-date": amzDate,
    "x-amz-content-sha256": input.payloadHash,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
  if (input.credentials.sessionToken) out["x-amz-security-token"] = input.credentials.sessionToken;
  return out;
}

// ── the client ──

/** An S3 error answer: its HTTP status and the service's code (`NoSuchKey`, `AccessDenied`, …). */
export class S3Error extends CprError {
  constructor(
    readonly status: number,
    readonly s3Code: string,
    message: string,
    where: string,
  ) {
    super("registry.storage-error", message, {
      where,
      hint:
        s3Code === "AccessDenied" || s3Code === "InvalidAccessKeyId" || s3Code === "SignatureDoesNotMatch"
          ? "check the S3 credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile) and the bucket's policy"
          : s3Code === "NoSuchBucket"
            ? "create the bucket, or correct the bucket name in --store-url"
            : "check the object storage's logs and --store-url",
    });
  }
}

export interface S3ObjectHead {
  readonly size: number;
}

export interface S3ClientOptions {
  /** Attempts for an idempotent request whose connection fails or that gets a 5xx (default 3). */
  readonly attempts?: number;
}

function xmlField(xml: string, name: string): string | null {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return m
    ? m[1]!
        .replace(/&quot;/g, '"')
        .replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">")
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, "&")
    : null;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export class S3Client {
  private readonly attempts: number;

  constructor(
    readonly location: S3Location,
    private readonly credentials: S3Credentials,
    opts: S3ClientOptions = {},
  ) {
    this.attempts = opts.attempts ?? 3;
  }

  /** `s3://bucket/prefix` with the endpoint, for messages. */
  describe(): string {
    return `s3://${this.location.bucket}/${this.location.prefix} at ${redactUrl(this.location.endpoint)}`;
  }

  /** The URL of `key` (a full key, prefix included) or of the bucket when key is "". */
  private urlOf(key: string, query: Record<string, string> = {}): URL {
    const { endpoint, bucket, pathStyle } = this.location;
    const e = new URL(endpoint);
    const path = uriEncode(key, true);
    const base = pathStyle
      ? `${e.origin}${e.pathname.replace(/\/$/, "")}/${bucket}${key ? `/${path}` : ""}`
      : `${e.protocol}//${bucket}.${e.host}${e.pathname.replace(/\/$/, "")}/${path}`;
    const u = new URL(base);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u;
  }

  private async send(
    method: string,
    key: string,
    opts: { query?: Record<string, string>; body?: Buffer; headers?: Record<string, string>; retry?: boolean } = {},
  ): Promise<Response> {
    const url = this.urlOf(key, opts.query);
    // `?uploads` and the like: a key with no value is signed as `uploads=`; URLSearchParams renders it `uploads=`.
    const attempts = opts.retry === false ? 1 : this.attempts;
    const where = `${method} s3://${this.location.bucket}/${key}`;
    let last: unknown = null;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 2)));
      const payloadHash = opts.body ? createHash("sha256").update(opts.body).digest("hex") : EMPTY_SHA256;
      const headers = { ...(opts.headers ?? {}) };
      const signed = signV4({
        method,
        url,
        headers,
        payloadHash,
        region: this.location.region,
        credentials: this.credentials,
        now: new Date(),
      });
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: { ...headers, ...signed },
          ...(opts.body ? { body: opts.body } : {}),
          redirect: "manual",
        });
      } catch (e) {
        last = e;
        continue;
      }
      if (res.status >= 500 && attempt < attempts) {
        await res.body?.cancel().catch(() => undefined);
        last = new Error(`HTTP ${res.status}`);
        continue;
      }
      return res;
    }
    const cause = last as { cause?: { code?: string; message?: string }; message?: string };
    const why = cause?.cause?.code ?? cause?.cause?.message ?? cause?.message ?? String(last);
    throw new CprError("registry.storage-unreachable", `the object storage ${this.describe()} did not answer ${where}: ${why}`, {
      where,
      hint: "check that the S3 endpoint in --store-url is up and reachable from this server",
      cause: last,
    });
  }

  /** Turns a non-2xx answer into an S3Error (reading its XML body). */
  private async fail(res: Response, what: string): Promise<never> {
    const text = await res.text().catch(() => "");
    const code = xmlField(text, "Code") ?? `HTTP${res.status}`;
    const msg = xmlField(text, "Message");
    throw new S3Error(
      res.status,
      code,
      `the object storage refused ${what}: ${res.status} ${code}${msg ? ` (${msg})` : ""}`,
      this.describe(),
    );
  }

  /** Full key of a name under the prefix. */
  key(name: string): string {
    return `${this.location.prefix}${name}`;
  }

  /** Checks that the bucket exists and the credentials may use it (HEAD bucket). */
  async checkBucket(): Promise<void> {
    const res = await this.send("HEAD", "");
    if (res.ok) return;
    const code = res.status === 404 ? "NoSuchBucket" : res.status === 403 ? "AccessDenied" : `HTTP${res.status}`;
    throw new S3Error(
      res.status,
      code,
      `the object storage refused bucket ${this.location.bucket}: ${res.status} ${code}`,
      this.describe(),
    );
  }

  /** Creates the bucket (tests and first set-up). An existing bucket of ours is fine. */
  async createBucket(): Promise<void> {
    const res = await this.send("PUT", "");
    if (res.ok) return void (await res.arrayBuffer());
    const text = await res.text();
    if (xmlField(text, "Code") === "BucketAlreadyOwnedByYou") return;
    throw new S3Error(
      res.status,
      xmlField(text, "Code") ?? `HTTP${res.status}`,
      `cannot create bucket ${this.location.bucket}: ${res.status} ${text.slice(0, 200)}`,
      this.describe(),
    );
  }

  /** Size of an object, or null when there is none. */
  async head(key: string): Promise<S3ObjectHead | null> {
    const res = await this.send("HEAD", key);
    if (res.status === 404) return null;
    if (!res.ok) return this.fail(res, `HEAD ${key}`);
    return { size: Number(res.headers.get("content-length") ?? "0") };
  }

  /** An object's body as a stream with its size, or null when there is none. */
  async get(key: string): Promise<{ size: number; body: Readable } | null> {
    const res = await this.send("GET", key);
    if (res.status === 404) {
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!res.ok || !res.body) return this.fail(res, `GET ${key}`);
    return {
      size: Number(res.headers.get("content-length") ?? "0"),
      body: Readable.fromWeb(res.body as import("node:stream/web").ReadableStream),
    };
  }

  async put(key: string, body: Buffer, contentType = "application/octet-stream"): Promise<void> {
    const res = await this.send("PUT", key, { body, headers: { "content-type": contentType } });
    if (!res.ok) return this.fail(res, `PUT ${key}`);
    await res.arrayBuffer();
  }

  async delete(key: string): Promise<void> {
    const res = await this.send("DELETE", key);
    if (!res.ok && res.status !== 404) return this.fail(res, `DELETE ${key}`);
    await res.arrayBuffer();
  }

  /** Starts a multipart upload; returns its upload id. */
  async createMultipart(key: string, contentType = "application/octet-stream"): Promise<string> {
    const res = await this.send("POST", key, { query: { uploads: "" }, headers: { "content-type": contentType }, retry: false });
    if (!res.ok) return this.fail(res, `starting a multipart upload of ${key}`);
    const id = xmlField(await res.text(), "UploadId");
    if (!id)
      throw new S3Error(
        res.status,
        "Malformed",
        `the object storage started a multipart upload of ${key} without an UploadId`,
        this.describe(),
      );
    return id;
  }

  /** Uploads part `n` (1-based); returns its ETag. */
  async uploadPart(key: string, uploadId: string, n: number, body: Buffer): Promise<string> {
    const res = await this.send("PUT", key, { query: { partNumber: String(n), uploadId }, body });
    if (!res.ok) return this.fail(res, `part ${n} of ${key}`);
    await res.arrayBuffer();
    const etag = res.headers.get("etag");
    if (!etag) throw new S3Error(res.status, "Malformed", `the object storage took part ${n} of ${key} without an ETag`, this.describe());
    return etag;
  }

  /** Completes the upload: the object becomes visible, whole, under `key`. */
  async completeMultipart(key: string, uploadId: string, etags: readonly string[]): Promise<void> {
    const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(e)}</ETag></Part>`).join("")}</CompleteMultipartUpload>`;
    const res = await this.send("POST", key, {
      query: { uploadId },
      body: Buffer.from(xml),
      headers: { "content-type": "application/xml" },
      retry: false,
    });
    if (!res.ok) return this.fail(res, `completing the upload of ${key}`);
    // S3 may answer 200 and still report an error in the body.
    const text = await res.text();
    if (/<Error>/.test(text)) {
      const code = xmlField(text, "Code") ?? "Error";
      throw new S3Error(
        500,
        code,
        `the object storage failed to complete the upload of ${key}: ${code} ${xmlField(text, "Message") ?? ""}`.trim(),
        this.describe(),
      );
    }
  }

  /** Aborts the upload: its parts are dropped and nothing appears under the key. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const res = await this.send("DELETE", key, { query: { uploadId } });
    if (!res.ok && res.status !== 404) return this.fail(res, `aborting the upload of ${key}`);
    await res.arrayBuffer();
  }

  /** Multipart uploads in progress under `prefix` (key, upload id, start time). */
  async listMultipart(prefix: string): Promise<{ key: string; uploadId: string; initiated: number }[]> {
    const out: { key: string; uploadId: string; initiated: number }[] = [];
    let keyMarker = "";
    let idMarker = "";
    for (;;) {
      const query: Record<string, string> = { uploads: "", prefix };
      if (keyMarker) Object.assign(query, { "key-marker": keyMarker, "upload-id-marker": idMarker });
      const res = await this.send("GET", "", { query });
      if (!res.ok) return this.fail(res, `listing the uploads under ${prefix}`);
      const text = await res.text();
      for (const m of text.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)) {
        const key = xmlField(m[1]!, "Key");
        const uploadId = xmlField(m[1]!, "UploadId");
        const initiated = Date.parse(xmlField(m[1]!, "Initiated") ?? "");
        if (key && uploadId) out.push({ key, uploadId, initiated });
      }
      if (xmlField(text, "IsTruncated") !== "true") return out;
      keyMarker = xmlField(text, "NextKeyMarker") ?? "";
      idMarker = xmlField(text, "NextUploadIdMarker") ?? "";
      if (!keyMarker) return out;
    }
  }

  /** Keys under `prefix` (tests, for checking that nothing is left). */
  async listKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token = "";
    for (;;) {
      const query: Record<string, string> = { "list-type": "2", prefix };
      if (token) query["continuation-token"] = token;
      const res = await this.send("GET", "", { query });
      if (!res.ok) return this.fail(res, `listing ${prefix}`);
      const text = await res.text();
      for (const m of text.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = xmlField(m[1]!, "Key");
        if (key) out.push(key);
      }
      if (xmlField(text, "IsTruncated") !== "true") return out;
      token = xmlField(text, "NextContinuationToken") ?? "";
      if (!token) return out;
    }
  }
}
