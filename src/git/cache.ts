/**
 * The local cache: one bare git repository (CacheLayout.git, `<cache>/git`) shared by every set, so objects common
 * to atoms and versions are stored once. Resolution fetches manifest blobs into it by ref; `cpr fetch` fetches atom
 * commits (no tags, no history). Materialised atoms live under CacheLayout.atom (`<cache>/atoms/<AtomId>/<version>-<rev>`);
 * every place under the cache is named by src/config/paths.ts.
 *
 * Concurrency: several cpr processes may use the cache at once. Creation is a temp dir + rename; every fetch lands
 * its refs under a private `refs/cpr/tmp/<nonce>/` namespace, then moves them to content-addressed keep refs
 * (`refs/cpr/keep/…/<oid>`, same name ⇒ same value) in one ref transaction, retried on lock contention; objects go
 * in as packs (git writes them atomically). Materialisation is a temp dir + rename; pins are temp file + rename.
 * The cache repository is never shallow: atom commits have no parents, so `--depth=1` would transfer nothing
 * less, but it would take the repository-wide `shallow.lock` and fail concurrent fetches.
 *
 * Every git process here runs as `repo: "cpr"` (src/git/exec.ts): without GIT_DIR, GIT_INDEX_FILE… of a git hook
 * cpr may run in, which would otherwise send the cache's objects and keep refs into the hook's repository.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { CprError } from "../protocol/errors.js";
import { redactUrl } from "../protocol/uri.js";
import { openCacheRoot, type CacheLayout } from "../config/paths.js";
import { start } from "../process/run.js";
import { gitEnv, runGit, type GitResult } from "./exec.js";
import { Repo } from "./repo.js";
import { hashLength, parseTree, type ObjectFormat, type TreeItem } from "../protocol/git-object.js";
import { packIndex, type PackEntry } from "../protocol/pack.js";

export interface FetchRefsOptions {
  env?: NodeJS.ProcessEnv;
  /** `--depth=N`; only for scratch repositories (it takes shallow.lock). */
  depth?: number;
  /** `--filter=…` (e.g. `blob:none`, `tree:0`). */
  filter?: string;
  /** `--negotiation-tip=` globs: only these local refs are offered as "have"s (none match: no haves at all). */
  negotiationTips?: readonly string[];
}

/**
 * The ref keeping a fetched object in the cache: `refs/cpr/keep/atoms/<label>/<oid>` for an atom ref (so a later
 * fetch of the same label offers only that label's commits as "have"s, not the whole cache), else
 * `refs/cpr/keep/objects/<oid>`. Same name, same value: concurrent writers agree.
 */
export function keepRef(remoteRef: string, oid: string): string {
  const m = /^refs\/eka\/atoms\/([^/]+)\/[^/]+$/.exec(remoteRef);
  return m ? `refs/cpr/keep/atoms/${m[1]}/${oid}` : `refs/cpr/keep/objects/${oid}`;
}

/** Negotiation tips for fetching `refs`: the kept commits of the same labels (blobs need no negotiation). */
export function negotiationTipsFor(refs: readonly string[]): string[] {
  const labels = new Set(refs.flatMap((r) => /^refs\/eka\/atoms\/([^/]+)\/[^/]+$/.exec(r)?.[1] ?? []));
  return labels.size ? [...labels].map((l) => `refs/cpr/keep/atoms/${l}/*`) : ["refs/cpr/keep/none/*"];
}

/** What one `git fetch` brought: source ref → fetched object id, and whether the server ignored the filter. */
export interface FetchedRefs {
  readonly oids: ReadonlyMap<string, string>;
  readonly filterIgnored: boolean;
}

/** Pin: what (url, label, version) resolved to, so that an exact re-fetch needs no network. */
export interface Pin {
  readonly url: string;
  readonly label: string;
  readonly version: string;
  readonly root: string;
  readonly id: string;
  readonly rev: string;
}

/**
 * Fetch `refs` (remote ref names) from `url` into the repository at `gitDir`, in ONE `git fetch` (refspecs through a
 * temporary config file, so their number is unbounded), landing them under a private temporary namespace; returns
 * their values and deletes the temporary refs unless `keep` moves them to `refs/cpr/keep/<oid>`.
 * A failed fetch throws CprError `fetch.failed` with git's message (e.g. `couldn't find remote ref …`).
 */
export async function fetchRefsInto(
  gitDir: string,
  url: string,
  refs: readonly string[],
  opts: FetchRefsOptions & { keep?: boolean } = {},
): Promise<FetchedRefs> {
  if (refs.length === 0) return { oids: new Map(), filterIgnored: false };
  const nonce = `${process.pid}-${randomBytes(6).toString("hex")}`;
  const tmpNs = `refs/cpr/tmp/${nonce}/`;
  const cfgDir = await mkdtemp(join(dirname(gitDir), ".cpr-fetch-"));
  try {
    const config = join(cfgDir, "config");
    const lines = [
      '[remote "cpr-fetch"]',
      `\turl = ${configQuote(url)}`,
      ...refs.map((r, i) => `\tfetch = ${configQuote(`+${r}:${tmpNs}${i}`)}`),
      "",
    ];
    await writeFile(config, lines.join("\n"));
    const flags = ["--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules"];
    if (opts.depth) flags.push(`--depth=${opts.depth}`);
    if (opts.filter) flags.push(`--filter=${opts.filter}`);
    for (const tip of opts.negotiationTips ?? []) flags.push(`--negotiation-tip=${tip}`);
    // fetch.unpackLimit=1 keeps every received pack as a pack, which appears at once when its index is renamed
    // into place. Unpacked, a small fetch becomes loose objects written one by one (commit first, blobs last), and
    // another cpr process sharing the cache could see the commit before its blobs exist.
    const r = await runGit(
      ["-c", `include.path=${config}`, "-c", "fetch.prune=false", "-c", "fetch.unpackLimit=1", "fetch", ...flags, "cpr-fetch"],
      {
        cwd: gitDir,
        env: opts.env,
        repo: "cpr",
        okCodes: [0, 1, 128],
      },
    );
    const filterIgnored = /filtering not recognized by server/.test(r.stderr);
    const listed = await listRefs(gitDir, tmpNs, opts.env);
    const oids = new Map<string, string>();
    for (const [name, oid] of listed) oids.set(refs[Number(name.slice(tmpNs.length))]!, oid);
    const keep = opts.keep ? [...new Set([...oids].map(([ref, oid]) => `update ${keepRef(ref, oid)} ${oid}`))] : [];
    await refTransaction(gitDir, [...keep, ...[...listed.keys()].map((n) => `delete ${n}`)], opts.env);
    if (r.code !== 0) {
      throw new CprError("fetch.failed", `git fetch from ${redactUrl(url)} failed: ${cleanStderr(r.stderr) || `exit ${r.code}`}`, {
        where: redactUrl(url),
      });
    }
    return { oids, filterIgnored };
  } finally {
    await rm(cfgDir, { recursive: true, force: true });
  }
}

/**
 * Store a pack received and checked by our own fetch (parsed by src/protocol/pack.ts) as it is, with the index built
 * from its parsed entries: `objects/pack/pack-<checksum>.pack` then `.idx` (git only looks at a pack once its index
 * exists), each written to a temporary file and renamed. One pack per fetch: no process, no per-object files.
 */
export function storePack(gitDir: string, pack: Buffer, entries: readonly PackEntry[], algo: "sha1" | "sha256" = "sha1"): void {
  const hashLen = hashLength(algo);
  const name = `pack-${pack.toString("hex", pack.length - hashLen)}`;
  const dir = join(gitDir, "objects", "pack");
  if (existsSync(join(dir, `${name}.idx`))) return;
  const idx = packIndex(pack, entries, algo);
  mkdirSync(dir, { recursive: true });
  const nonce = `${process.pid}_${randomBytes(6).toString("hex")}`;
  // Synchronous: two small files; the promise API costs more main-thread time than the writes themselves.
  for (const [ext, bytes] of [
    ["pack", pack],
    ["idx", idx],
  ] as const) {
    const tmp = join(dir, `tmp_${ext}_cpr_${nonce}`);
    writeFileSync(tmp, bytes, { mode: 0o444 });
    renameSync(tmp, join(dir, `${name}.${ext}`));
  }
}

/**
 * Keep objects reachable (`refs/cpr/keep/objects/<oid>`) as they arrive: one `git update-ref --stdin` for the whole
 * run, committing a transaction per `add`, so git writes the refs while the caller goes on. `close()` ends it and
 * waits; if the streamed transactions failed (e.g. another process held a ref lock), every id is kept again in
 * one transaction with retries (same name, same value: repeating is harmless).
 */
export class KeepRefWriter {
  private input: PassThrough | null = null;
  private exited: Promise<number | null> | null = null;
  private readonly oids: string[] = [];

  constructor(
    private readonly gitDir: string,
    private readonly env?: NodeJS.ProcessEnv,
  ) {}

  /** Start the git process now (e.g. while waiting for the network), rather than on the first add. */
  start(): void {
    if (!this.input && !this.closed) this.spawn();
  }

  add(oids: readonly string[]): void {
    if (oids.length === 0) return;
    this.oids.push(...oids);
    if (!this.input) this.spawn();
    const lines = ["start", ...[...new Set(oids)].map((o) => `update ${keepRef("", o)} ${o}`), "prepare", "commit", ""];
    this.input!.write(lines.join("\n"));
  }

  private spawn(): void {
    const input = new PassThrough();
    const child = start("git", ["update-ref", "--stdin"], {
      cwd: this.gitDir,
      env: gitEnv(this.env, "cpr"),
      input,
      stdout: "ignore",
      okCodes: "any",
      stderrLimit: 4096,
    });
    // It died (or never started): close() notices and redoes the work.
    this.exited = child.exit.then(
      (e) => e.code,
      () => null,
    );
    this.input = input;
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    if (!this.input) return;
    this.input.end();
    const code = await this.exited;
    this.input = null;
    if (code !== 0 && this.oids.length > 0) await keepObjects(this.gitDir, this.oids, this.env);
    this.oids.length = 0;
  }
}

/** Keep objects reachable: `refs/cpr/keep/objects/<oid>` for each, in one ref transaction. */
export async function keepObjects(gitDir: string, oids: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  await refTransaction(
    gitDir,
    [...new Set(oids)].map((o) => `update ${keepRef("", o)} ${o}`),
    env,
  );
}

/** The object format of the repository at `gitDir` (`sha1` unless its config names another). */
export function objectFormatOf(gitDir: string): string {
  try {
    const m = /^\s*objectformat\s*=\s*(\S+)\s*$/im.exec(readFileSync(join(gitDir, "config"), "utf8"));
    return m ? m[1]!.toLowerCase() : "sha1";
  } catch {
    return "sha1";
  }
}

async function listRefs(gitDir: string, prefix: string, env?: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const r = await runGit(["for-each-ref", "--format=%(objectname) %(refname)", prefix], { cwd: gitDir, env, repo: "cpr" });
  const map = new Map<string, string>();
  for (const line of r.stdout.toString("utf8").split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) map.set(line.slice(sp + 1), line.slice(0, sp));
  }
  return map;
}

/** One `update-ref --stdin` transaction, retried a few times when another process holds a ref lock. */
async function refTransaction(gitDir: string, commands: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  if (commands.length === 0) return;
  const input = ["start", ...commands, "prepare", "commit", ""].join("\n");
  let last: GitResult | null = null;
  for (let attempt = 0; attempt < 8; attempt++) {
    last = await runGit(["update-ref", "--stdin"], { cwd: gitDir, env, repo: "cpr", input, okCodes: [0, 1, 128] });
    if (last.code === 0) return;
    if (!/lock|exists/i.test(last.stderr)) break;
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80 * (attempt + 1)));
  }
  throw new CprError("cache.refs", `could not update cache refs: ${last?.stderr.trim()}`, { where: gitDir });
}

function configQuote(value: string): string {
  if (/[\n\0]/.test(value)) throw new CprError("internal", `a git config value cannot hold a newline: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function cleanStderr(stderr: string): string {
  return stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("hint:"))
    .join("; ");
}

/** The shared cache. */
export class Cache {
  readonly dir: string;
  /** Where everything under the cache is (src/config/paths.ts). */
  readonly layout: CacheLayout;
  readonly gitDir: string;
  readonly repo: Repo;
  private readonly env: NodeJS.ProcessEnv | undefined;

  private constructor(layout: CacheLayout, repo: Repo, env: NodeJS.ProcessEnv | undefined) {
    this.dir = layout.root;
    this.layout = layout;
    this.gitDir = repo.gitDir;
    this.repo = repo;
    this.env = env;
  }

  /**
   * Open (creating on first use) the cache at `dir`, the cache root (Config.cacheDir; src/config/paths.ts). Safe
   * when raced. A cache of another layout version is refused (`cache.layout`).
   */
  static async open(opts: { dir: string; env?: NodeJS.ProcessEnv }): Promise<Cache> {
    const layout = await openCacheRoot(opts.dir);
    const gitDir = layout.git;
    if (!existsSync(join(gitDir, "HEAD"))) {
      const tmp = await mkdtemp(join(layout.root, ".git-new-"));
      await runGit(["init", "--quiet", "--bare", tmp], { env: opts.env, repo: "cpr" });
      for (const [k, v] of [
        ["gc.auto", "0"],
        ["core.logAllRefUpdates", "false"],
        ["fetch.writeCommitGraph", "false"],
      ] as const) {
        await runGit(["config", k, v], { cwd: tmp, env: opts.env, repo: "cpr" });
      }
      try {
        await rename(tmp, gitDir);
      } catch {
        await rm(tmp, { recursive: true, force: true }); // another process won the race
      }
    }
    return new Cache(layout, await Repo.open(gitDir, { env: opts.env, repo: "cpr" }), opts.env);
  }

  /**
   * Fetch remote refs (atom refs, manifest refs…) into the cache in one `git fetch`, keep their objects (keepRef),
   * and return their values. Only kept commits of the same labels are offered as "have"s, so the negotiation does
   * not grow with the cache.
   */
  fetchRefs(url: string, refs: readonly string[], opts: Omit<FetchRefsOptions, "depth"> = {}): Promise<FetchedRefs> {
    return fetchRefsInto(this.gitDir, url, refs, {
      negotiationTips: negotiationTipsFor(refs),
      ...opts,
      env: opts.env ?? this.env,
      keep: true,
    });
  }

  /** Which of these objects the cache holds. */
  has(oids: readonly string[]): Promise<Set<string>> {
    return this.repo.existing(oids);
  }

  /** Where an atom version is materialised. */
  atomDir(id: string, version: string, rev: string): string {
    return this.layout.atom(id, version, rev);
  }

  /**
   * Check out the tree of commit `rev` (already in the cache) at `dest`, atomically: into a temp dir beside it, then
   * renamed. `readOnly` strips write permission. An existing `dest` is left as it is (it holds the same content).
   */
  async materialise(rev: string, dest: string, opts: { readOnly: boolean }): Promise<void> {
    if (existsSync(dest)) return;
    await mkdir(dirname(dest), { recursive: true });
    const tmp = await mkdtemp(join(dirname(dest), ".tmp-"));
    const work = join(tmp, "tree");
    try {
      await this.checkout(rev, work);
      if (opts.readOnly) await makeReadOnly(work);
      try {
        await rename(work, dest);
      } catch (e) {
        if (!existsSync(dest)) throw e;
      }
    } finally {
      await removeTree(tmp);
    }
  }

  /**
   * Write the tree of commit `rev` into the new directory `dir`, reading objects through the long-lived
   * `cat-file --batch` (no process per atom): files with their executable bit, symlinks, gitlinks as empty dirs.
   */
  private async checkout(rev: string, dir: string): Promise<void> {
    const commit = await this.repo.readObject(`${rev}^{commit}`);
    if (!commit) throw new CprError("cache.missing", `commit ${rev} is not in the cache`, { where: this.gitDir });
    const tree = /^tree ([0-9a-f]+)/.exec(commit.data.toString("latin1"))?.[1];
    if (!tree) throw new CprError("cache.corrupt", `commit ${rev} has no tree`, { where: this.gitDir });
    const writeTree = async (oid: string, path: string): Promise<void> => {
      await mkdir(path, { recursive: true });
      const t = await this.repo.readObject(oid);
      if (t?.type !== "tree") throw new CprError("cache.missing", `tree ${oid} is not in the cache`, { where: this.gitDir });
      const entries = parseTreeIn(t.data, this.repo.objectFormat, oid, this.gitDir);
      const blobs = await this.repo.readObjects(entries.filter((e) => e.mode !== "40000" && e.mode !== "160000").map((e) => e.oid));
      let k = 0;
      const subdirs: Promise<void>[] = [];
      for (const e of entries) {
        if (e.name.includes("/") || e.name === "." || e.name === ".." || e.name === ".git") {
          throw new CprError("cache.unsafe-path", `tree ${oid} has an unsafe entry name ${JSON.stringify(e.name)}`, { where: this.gitDir });
        }
        const target = join(path, e.name);
        if (e.mode === "40000") subdirs.push(writeTree(e.oid, target));
        else if (e.mode === "160000") await mkdir(target);
        else {
          const blob = blobs[k++];
          if (!blob) throw new CprError("cache.missing", `blob ${e.oid} is not in the cache`, { where: this.gitDir });
          if (e.mode === "120000") await symlink(blob.data.toString("utf8"), target);
          else await writeFile(target, blob.data, { mode: e.mode === "100755" ? 0o755 : 0o644 });
        }
      }
      await Promise.all(subdirs);
    };
    await writeTree(tree, dir);
  }

  private pinPath(url: string, label: string, version: string): string {
    const h = createHash("sha256").update(`${url}\0${label}\0${version}`).digest("hex").slice(0, 40);
    return this.layout.pin(h);
  }

  async readPin(url: string, label: string, version: string): Promise<Pin | null> {
    try {
      const pin = JSON.parse(await readFile(this.pinPath(url, label, version), "utf8")) as Pin;
      return pin.url === url && pin.label === label && pin.version === version ? pin : null;
    } catch {
      return null;
    }
  }

  async writePin(pin: Pin): Promise<void> {
    const path = this.pinPath(pin.url, pin.label, pin.version);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, JSON.stringify(pin) + "\n");
    await rename(tmp, path);
  }

  /** A throw-away bare repository under the cache that borrows the cache's objects (alternates). */
  async scratch(opts: { alternates: boolean }): Promise<{ gitDir: string; remove: () => Promise<void> }> {
    await mkdir(this.layout.tmp, { recursive: true });
    const gitDir = await mkdtemp(join(this.layout.tmp, "scratch-"));
    await runGit(["init", "--quiet", "--bare", gitDir], { env: this.env, repo: "cpr" });
    if (opts.alternates) await writeFile(join(gitDir, "objects", "info", "alternates"), join(this.gitDir, "objects") + "\n");
    return { gitDir, remove: () => rm(gitDir, { recursive: true, force: true }) };
  }

  close(): void {
    this.repo.close();
  }
}

/** parseTree, its error as the cache's own (`cache.corrupt`, naming the tree and the cache). */
function parseTreeIn(data: Buffer, format: ObjectFormat, oid: string, gitDir: string): TreeItem[] {
  try {
    return parseTree(data, format);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError("cache.corrupt", `tree ${oid}: ${e.message}`, { where: gitDir, ...(e.hint ? { hint: e.hint } : {}), cause: e });
  }
}

async function makeReadOnly(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const st = await lstat(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) await makeReadOnly(p);
    else await chmod(p, st.mode & 0o555);
  }
  await chmod(dir, 0o555);
}

/** rm -rf that also works on read-only trees. */
export async function removeTree(path: string): Promise<void> {
  const walk = async (p: string): Promise<void> => {
    let st;
    try {
      st = await lstat(p);
    } catch {
      return;
    }
    if (st.isDirectory() && !st.isSymbolicLink()) {
      await chmod(p, 0o755);
      for (const n of await readdir(p)) await walk(join(p, n));
    }
  };
  await walk(path);
  await rm(path, { recursive: true, force: true });
}
