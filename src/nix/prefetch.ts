/**
 * Prefetching direct Nix dependencies (docs/formats.md §6.1 `[deps.direct.nix]`, §11.5 lock types), computing the hashes Nix
 * itself would:
 *
 * - `url`  → lock type `nix`: the flat sha256 of the file (= `nix-prefetch-url URL`).
 * - `tar`  → lock type `nix+tar`: the NAR sha256 of the unpacked tree (= `nix-prefetch-url --unpack URL`).
 * - `build` → lock type `nix+src`: the flat sha256, or with `unpack` the NAR sha256 of the unpacked tree (docs/formats.md §14.7).
 * - `git`  → lock type `nix+git`: the rev a `ref` (branch, tag, `HEAD`) or a `version` requirement over tags resolves
 *   to, found with our own `ls-refs` (docs/formats.md §14.6: `refs/tags/` stripped, a leading `v` allowed, highest match).
 *
 * URLs may be http(s), `file://` or a local path (docs/formats.md §14.5); any other scheme is a clear error. Unpacking uses the
 * system `tar`, which detects gzip, bzip2, xz and zstd itself (given the decompressor is installed), or a zip archive
 * with `bsdtar` (libarchive, which Nix uses) or `unzip`. As
 * `nix-prefetch-url --unpack` does, an archive holding exactly one top-level entry hashes as that entry; otherwise the
 * whole unpacked directory is hashed.
 *
 * `__VERSION__` substitution (`from_version`) is the caller's business: pass the URL with the version filled in.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, open, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { CprError } from "../protocol/errors.js";
import type { ListedRef } from "../protocol/refs.js";
import { DEFAULT_ALIASES, parseGitUrl, redactUrl, type Aliases, type GitUrl } from "../protocol/uri.js";
import { parseRequirement, matches, type Requirement } from "../protocol/requirement.js";
import { compareVersions, tryParseVersion, type Version } from "../protocol/version.js";
import { lsRefs, type LsRefsOptions } from "../git/lsrefs.js";
import { run } from "../process/run.js";
import { toSri } from "./hash.js";
import { narHash } from "./nar.js";

/** The four `[deps.direct.nix]` forms. */
export type DirectKind = "url" | "tar" | "build" | "git";

/** Lock `type` per form (docs/formats.md §11.5). */
export const LOCK_TYPE: Readonly<Record<DirectKind, "nix" | "nix+tar" | "nix+src" | "nix+git">> = Object.freeze({
  url: "nix",
  tar: "nix+tar",
  build: "nix+src",
  git: "nix+git",
});

export interface PrefetchOptions {
  /** `build` only: unpack and record the NAR hash (lock `unpack = true`). */
  unpack?: boolean;
  /** `git` only: a branch, tag, full ref name or `HEAD` (the default). Exclusive with `version`. */
  ref?: string;
  /** `git` only: a version requirement over the repository's tags. Exclusive with `ref`. */
  version?: string;
  /** Directory for relative local paths (default process.cwd()). */
  cwd?: string;
  /** Where temporary downloads and unpacked trees go (default os.tmpdir()). Always removed afterwards. */
  tmpDir?: string;
  /** Aliases for git URLs (default: those of docs/formats.md §13.2). */
  aliases?: Aliases;
  /** Passed to lsRefs for git deps (env, reporter, timeoutMs). */
  git?: Omit<LsRefsOptions, "cwd">;
  /** Aborts a download. */
  signal?: AbortSignal;
  /** Environment (for `tar`'s PATH). */
  env?: NodeJS.ProcessEnv;
}

/** A lock entry's fields (docs/formats.md §11.5) minus `name`, which the caller owns. */
export interface PrefetchResult {
  kind: DirectKind;
  type: "nix" | "nix+tar" | "nix+src" | "nix+git";
  /** The URL as given (for git: as given, not alias-expanded, so the lock mirrors the manifest). */
  url: string;
  /** SRI `sha256-…`; absent for git. */
  hash?: string;
  /** `build` only, and only when true. */
  unpack?: true;
  /** git only: the commit id. */
  rev?: string;
  /** git only, and only for a `version =` requirement: the version of the tag chosen (no leading `v`). */
  version?: string;
}

/** Fetch/resolve one direct dependency and return its lock fields. */
export async function prefetchDirect(kind: DirectKind, url: string, opts: PrefetchOptions = {}): Promise<PrefetchResult> {
  if (kind !== "git" && (opts.ref !== undefined || opts.version !== undefined)) {
    throw new CprError("nix.bad-option", `ref and version apply only to git dependencies, not ${kind}`, { where: url });
  }
  if (kind !== "build" && opts.unpack) {
    throw new CprError("nix.bad-option", `unpack applies only to build dependencies, not ${kind}`, {
      where: url,
      hint: kind === "url" ? "use the tar form for an unpacked tarball" : undefined,
    });
  }
  switch (kind) {
    case "url": {
      const h = await prefetchUrl(url, { ...opts, unpack: false });
      return { kind, type: LOCK_TYPE[kind], url, hash: toSri("sha256", h.sha256) };
    }
    case "tar": {
      const h = await prefetchUrl(url, { ...opts, unpack: true });
      return { kind, type: LOCK_TYPE[kind], url, hash: toSri("sha256", h.sha256) };
    }
    case "build": {
      const unpack = opts.unpack === true;
      const h = await prefetchUrl(url, { ...opts, unpack });
      return unpack
        ? { kind, type: LOCK_TYPE[kind], url, hash: toSri("sha256", h.sha256), unpack: true }
        : { kind, type: LOCK_TYPE[kind], url, hash: toSri("sha256", h.sha256) };
    }
    case "git": {
      const r = await resolveGitRev(url, opts);
      return r.version === undefined
        ? { kind, type: LOCK_TYPE[kind], url, rev: r.rev }
        : { kind, type: LOCK_TYPE[kind], url, version: r.version, rev: r.rev };
    }
    default: {
      const never: never = kind;
      throw new CprError("nix.bad-kind", `unknown direct dependency form ${String(never)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// url / tar / build
// ---------------------------------------------------------------------------------------------------------------

/** Where a URL's bytes come from. */
type Source = { kind: "http"; url: string } | { kind: "file"; path: string };

function classify(url: string, cwd: string): Source {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === "http" || scheme === "https") return { kind: "http", url };
  if (scheme === "file") {
    try {
      return { kind: "file", path: fileURLToPath(url) };
    } catch (e) {
      throw new CprError("nix.bad-url", `${JSON.stringify(url)} is not a valid file URL: ${(e as Error).message}`, {
        where: url,
        hint: "write file:///absolute/path, or just the path",
      });
    }
  }
  // A path: absolute, ./relative, ../relative, or anything without a scheme. (A Windows drive letter is no concern.)
  if (scheme === undefined || isAbsolute(url)) return { kind: "file", path: resolve(cwd, url) };
  throw new CprError("nix.bad-url", `unsupported URL scheme ${scheme}: in ${redactUrl(url)}`, {
    where: redactUrl(url),
    hint: "direct Nix dependencies are fetched over https://, http://, file:// or from a local path",
  });
}

/** Hash of a fetched URL: flat (the file's sha256) or, with unpack, the NAR sha256 of the unpacked tree. */
export interface UrlHash {
  sha256: Uint8Array;
  /** Bytes downloaded (the file's size). */
  fileSize: number;
  /** With unpack: the NAR size of what was hashed. */
  narSize?: number;
  /**
   * With unpack: whether the archive held exactly one top-level entry (hashed as that entry). When false the whole
   * unpacked directory was hashed, as `nix-prefetch-url --unpack` does; `builtins.fetchTarball` refuses such archives,
   * so callers may want to warn.
   */
  singleTop?: boolean;
}

/** `nix-prefetch-url [--unpack] URL`, without Nix: the sha256 digest it would print. */
export async function prefetchUrl(url: string, opts: PrefetchOptions & { unpack: boolean }): Promise<UrlHash> {
  const source = classify(url, opts.cwd ?? process.cwd());
  if (!opts.unpack) {
    // Flat: hash while streaming; no temp file needed.
    const hash = createHash("sha256");
    let size = 0;
    await streamSource(source, url, opts, async (body) => {
      for await (const chunk of body) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    });
    return { sha256: new Uint8Array(hash.digest()), fileSize: size };
  }
  const work = await mkdtemp(join(opts.tmpDir ?? tmpdir(), "cpr-prefetch-"));
  try {
    let archive: string;
    let fileSize = 0;
    if (source.kind === "file") {
      await checkLocalFile(source.path, url);
      archive = source.path;
      fileSize = (await stat(archive)).size;
    } else {
      archive = join(work, "download");
      await streamSource(source, url, opts, async (body) => {
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            fileSize += chunk.length;
            cb(null, chunk);
          },
        });
        await pipeline(body, count, createWriteStream(archive, { flags: "wx" }));
      });
    }
    const unpacked = join(work, "unpacked");
    await unpackTarball(archive, unpacked, url, opts.env);
    const entries = await readdir(unpacked);
    const top = entries.length === 1 ? join(unpacked, entries[0]!) : unpacked;
    const nar = await narHash(top);
    return { sha256: nar.sha256, fileSize, narSize: nar.size, singleTop: entries.length === 1 };
  } finally {
    await removeTree(work);
  }
}

async function checkLocalFile(path: string, url: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CprError("nix.fetch", code === "ENOENT" ? `no such file: ${path}` : `cannot read ${path}: ${(e as Error).message}`, {
      where: url,
      hint: /^[a-z]+:/i.test(url) ? undefined : "a URL without a scheme is read as a local path; write https://… to download",
      cause: e,
    });
  }
  if (!st.isFile()) {
    throw new CprError("nix.fetch", `${path} is not a regular file`, {
      where: url,
      hint: "a direct Nix dependency names a file or a tarball; for a directory under git use the git form",
    });
  }
}

/** Run `consume` on the body stream of a URL; errors become CprErrors naming the (redacted) URL. */
async function streamSource(source: Source, url: string, opts: PrefetchOptions, consume: (body: Readable) => Promise<void>): Promise<void> {
  const shown = redactUrl(url);
  if (source.kind === "file") {
    await checkLocalFile(source.path, url);
    try {
      await consume(createReadStream(source.path));
    } catch (e) {
      if (e instanceof CprError) throw e;
      throw new CprError("nix.fetch", `cannot read ${source.path}: ${(e as Error).message}`, { where: url, cause: e });
    }
    return;
  }
  let res: Response;
  try {
    // fetch refuses URLs with credentials: send them as Basic auth instead.
    const target = new URL(source.url);
    const headers: Record<string, string> = {};
    if (target.username || target.password) {
      const user = decodeURIComponent(target.username);
      const pass = decodeURIComponent(target.password);
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
      target.username = "";
      target.password = "";
    }
    res = await fetch(target, { redirect: "follow", headers, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (e) {
    const cause = (e as { cause?: { message?: string; code?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new CprError("nix.fetch", `cannot fetch ${shown}: ${why}`, {
      where: shown,
      hint: "check the URL and your network connection",
      cause: e,
    });
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel().catch(() => undefined);
    throw new CprError("nix.fetch-http", `cannot fetch ${shown}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`, {
      where: shown,
      hint:
        res.status === 404
          ? "check the URL: the server has no such file"
          : res.status === 401 || res.status === 403
            ? "the server refused access"
            : undefined,
    });
  }
  try {
    await consume(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>));
  } catch (e) {
    if (e instanceof CprError) throw e;
    throw new CprError("nix.fetch", `download of ${shown} failed: ${(e as Error).message}`, { where: shown, cause: e });
  }
}

/** Whether `archive` is a zip file (local file header or empty-archive signature). */
async function isZip(archive: string): Promise<boolean> {
  const fh = await open(archive, "r");
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    const magic = buffer.subarray(0, bytesRead).toString("latin1");
    return magic === "PK\x03\x04" || magic === "PK\x05\x06";
  } finally {
    await fh.close();
  }
}

/** The first of `programs` found on PATH (in `env`), or null. */
function onPath(programs: readonly string[], env: NodeJS.ProcessEnv | undefined): string | null {
  const dirs = ((env ?? process.env).PATH ?? "").split(":").filter(Boolean);
  for (const p of programs) if (dirs.some((d) => existsSync(join(d, p)))) return p;
  return null;
}

/**
 * Unpack an archive as Nix's unpacker (libarchive) would: a tarball with the system tar (it detects gzip, bzip2, xz
 * and zstd itself), a zip with bsdtar (libarchive itself) or else unzip.
 */
async function unpackTarball(archive: string, dest: string, url: string, env: NodeJS.ProcessEnv | undefined): Promise<void> {
  await mkdir(dest);
  const shown = redactUrl(url);
  let program = "tar";
  let args = ["-x", "-f", archive, "-C", dest, "--no-same-owner"];
  if (await isZip(archive)) {
    const zipTool = onPath(["bsdtar", "unzip"], env);
    if (!zipTool) {
      throw new CprError("nix.unpack", `cannot unpack ${shown}: it is a zip archive, and neither bsdtar nor unzip is installed`, {
        where: shown,
        hint: "install bsdtar (Debian: libarchive-tools) or unzip",
      });
    }
    program = zipTool;
    args = zipTool === "bsdtar" ? ["-x", "-f", archive, "-C", dest, "--no-same-owner"] : ["-q", "-o", archive, "-d", dest];
  }
  await run(program, args, {
    env,
    stdout: "ignore",
    errors: {
      spawn: "nix.unpack",
      where: shown,
      hint: `install ${program} (and xz, bzip2 or zstd for those compressions)`,
      failure: (e) => {
        const msg = e.stderr.trim().split("\n").slice(0, 3).join("; ");
        return new CprError(
          "nix.unpack",
          `cannot unpack ${shown}: ${program} failed${msg ? `: ${msg}` : ` (${e.signal ? `killed by ${e.signal}` : `exit ${e.code}`})`}`,
          {
            where: shown,
            hint: "the URL must name a tarball (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .tar.zst; the decompressor must be installed) or a zip archive",
          },
        );
      },
    },
  });
  await makeRemovable(dest);
}

/** Give the owner rwx on every directory, so a tarball with read-only directories can be hashed and removed. */
async function makeRemovable(dir: string): Promise<void> {
  const st = await lstat(dir);
  if (!st.isDirectory()) return;
  if ((st.mode & 0o700) !== 0o700) await chmod(dir, st.mode | 0o700);
  for (const name of await readdir(dir)) await makeRemovable(join(dir, name));
}

async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    try {
      await makeRemovable(dir);
      await rm(dir, { recursive: true, force: true });
    } catch {
      /* leave it to the OS's tmp cleaning */
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// git
// ---------------------------------------------------------------------------------------------------------------

/** A git dependency resolved to a commit. */
export interface GitRev {
  rev: string;
  /** The ref chosen, e.g. `refs/heads/main`, `refs/tags/v2.1.0`, `HEAD`. */
  ref: string;
  /** For a version requirement: the chosen tag's version (no `v`). */
  version?: string;
}

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** The commit a ref peels to (annotated tags point at tag objects). */
function target(r: ListedRef): string {
  return r.peeled ?? r.oid;
}

/** The version a tag name stands for (docs/formats.md §14.6): `refs/tags/` stripped, one leading `v` allowed. */
export function tagVersion(refName: string): Version | null {
  if (!refName.startsWith("refs/tags/") || refName.endsWith("^{}")) return null;
  const name = refName.slice("refs/tags/".length);
  return tryParseVersion(name.startsWith("v") ? name.slice(1) : name);
}

/** Among `refs`, the tag with the highest version matching `req`; null when none. Ties (`v1.0.0` and `1.0.0`) go to the first. */
export function pickVersionTag(refs: readonly ListedRef[], req: Requirement): { ref: ListedRef; version: Version } | null {
  let best: { ref: ListedRef; version: Version } | null = null;
  for (const r of refs) {
    const v = tagVersion(r.name);
    if (v && matches(req, v) && (best === null || compareVersions(v, best.version) > 0)) best = { ref: r, version: v };
  }
  return best;
}

/** Resolve a git dependency's `ref` (default HEAD) or `version` requirement to a rev, listing refs only. */
export async function resolveGitRev(url: string, opts: PrefetchOptions = {}): Promise<GitRev> {
  if (opts.ref !== undefined && opts.version !== undefined) {
    throw new CprError("nix.bad-option", "a git dependency takes ref or version, not both", { where: url });
  }
  const gitUrl: GitUrl = parseGitUrl(url, opts.aliases ?? DEFAULT_ALIASES);
  const lsOpts: LsRefsOptions = { ...(opts.git ?? {}), ...(opts.cwd ? { cwd: opts.cwd } : {}) };
  const shown = redactUrl(gitUrl.url);

  if (opts.version !== undefined) {
    const req = parseRequirement(opts.version);
    const { refs } = await lsRefs(gitUrl, ["refs/tags/"], lsOpts);
    const best = pickVersionTag(refs, req);
    if (!best) {
      const versions = refs.map((r) => tagVersion(r.name)).filter((v): v is Version => v !== null);
      versions.sort(compareVersions);
      const shownVersions = versions
        .slice(-5)
        .map((v) => v.text)
        .join(", ");
      throw new CprError("nix.git-no-version", `no tag of ${shown} matches ${req.text}`, {
        where: shown,
        hint: versions.length
          ? `version tags found: ${shownVersions}${versions.length > 5 ? " (newest five)" : ""}`
          : "the repository has no SemVer tags (like v1.2.3 or 1.2.3); use a ref instead",
      });
    }
    return { rev: target(best.ref), ref: best.ref.name, version: best.version.text };
  }

  const ref = opts.ref ?? "HEAD";
  if (OID.test(ref)) return { rev: ref, ref };
  const candidates = ref === "HEAD" || ref.startsWith("refs/") ? [ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`];
  const { refs } = await lsRefs(gitUrl, candidates, lsOpts);
  for (const want of candidates) {
    const hit = refs.find((r) => r.name === want);
    if (hit) return { rev: target(hit), ref: hit.name };
  }
  throw new CprError("nix.git-no-ref", `${shown} has no ${ref === "HEAD" ? "HEAD" : `branch or tag ${JSON.stringify(ref)}`}`, {
    where: shown,
    hint:
      ref === "HEAD"
        ? "the repository looks empty; name a branch or tag with ref"
        : "check the name; ref takes a branch, a tag, a full ref name or HEAD",
  });
}
