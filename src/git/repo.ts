import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { CprError } from "../protocol/errors.js";
import { gitObjectId, hashLength, type ObjectFormat, type ObjectType } from "../protocol/git-object.js";
import { encodePack } from "../protocol/pack.js";
import { spawnChild, spawnFailure, type Child } from "../process/run.js";
import { git, gitEnv, gitErrors, runGit, type GitRepoKind, type GitResult, type GitRunOptions } from "./exec.js";

/**
 * A local git repository, driven through the real `git` binary with a small, constant number of processes:
 * one long-lived `cat-file --batch` for reading objects (plus a one-shot buffered one per large batch), one
 * `ls-tree` per scanned commit, one `hash-object` (small batches) or `index-pack` (large ones) per batch of written
 * objects, one `update-ref --stdin` per ref transaction and one `push` per remote.
 */

/** An object read from the repository. */
export interface GitObject {
  readonly oid: string;
  readonly type: ObjectType;
  readonly data: Buffer;
}

/** One entry of a recursive tree listing. `path` is repository-relative, `/`-separated. */
export interface TreeEntry {
  readonly mode: string;
  readonly type: "blob" | "tree" | "commit";
  readonly oid: string;
  readonly path: string;
}

/** One ref of a ref transaction: set `ref` to `oid`. */
export interface RefUpdate {
  readonly ref: string;
  readonly oid: string;
}

/** A local ref that already holds another value than the one intended. */
export interface RefConflict {
  readonly ref: string;
  readonly oid: string;
  readonly current: string;
}

/** The outcome of comparing intended ref values with the local refs. */
export interface RefPlan {
  readonly changes: readonly RefUpdate[];
  readonly conflicts: readonly RefConflict[];
}

/** The error for a local ref that holds another value. */
export function refConflictError(c: RefConflict): CprError {
  return new CprError("ref.conflict", `local ref ${c.ref} already points at ${c.current}, not at ${c.oid}`, {
    where: c.ref,
    hint: "a published version is never replaced: bump the version (or, if it was never pushed anywhere, delete the local ref with `git update-ref -d`)",
  });
}

/** What `git push --porcelain` said about one ref. */
export interface PushRefResult {
  readonly ref: string;
  /** `new`/`updated`/`up-to-date` landed; the others did not. */
  readonly status: "new" | "updated" | "up-to-date" | "rejected" | "remote-rejected" | "error";
  /** git's summary, e.g. `[new reference]` or `[rejected] (atomic push failed)`. */
  readonly summary: string;
  /** The reason in parentheses, when git gave one. */
  readonly reason: string | null;
}

/** The outcome of one push: per-ref results, plus git's own error text when the push as a whole failed. */
export interface PushOutcome {
  readonly ok: boolean;
  readonly refs: readonly PushRefResult[];
  /** stderr of a failed push (connection refused, auth…), trimmed; null when it succeeded. */
  readonly error: string | null;
}

const OBJECT_TYPES = new Set(["commit", "tree", "blob", "tag"]);
/** From this many new objects on, writeObjects writes one pack instead of loose objects. */
const BULK_WRITE = 256;
/** From this many objects on, readEach uses a one-shot buffered `cat-file` rather than the long-lived one. */
const BULK_READ = 256;
const PUSH_REMOTE = "cpr-push";

/** Whose repository a Repo is (GitRepoKind without `remote`): the user's, or one cpr owns (the cache, scratch). */
export type RepoKind = Exclude<GitRepoKind, "remote">;

/** Run options for a Repo's own git commands: the working directory and the kind are the Repo's. */
export type RepoRunOptions = Omit<GitRunOptions, "cwd" | "repo">;

/** Open a repository and drive it with git. Call `close()` when done: it ends the `cat-file` child. */
export class Repo {
  /** Absolute git directory. */
  readonly gitDir: string;
  /** Absolute top of the work tree, or null in a bare repository. */
  readonly workTree: string | null;
  readonly shallow: boolean;
  readonly objectFormat: ObjectFormat;
  /** The user's repository, or one cpr owns: every git process of this Repo runs as that kind (GitRepoKind). */
  readonly kind: RepoKind;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private reader: ObjectReader | null = null;

  private constructor(init: {
    gitDir: string;
    workTree: string | null;
    shallow: boolean;
    objectFormat: ObjectFormat;
    kind: RepoKind;
    env?: NodeJS.ProcessEnv;
  }) {
    this.gitDir = init.gitDir;
    this.workTree = init.workTree;
    this.shallow = init.shallow;
    this.objectFormat = init.objectFormat;
    this.kind = init.kind;
    this.env = init.env;
  }

  /**
   * Open the repository containing `cwd`. Throws CprError `repo.not-found` outside a repository. `repo` says whose
   * it is: the user's (`user`: GIT_DIR, GIT_WORK_TREE… are honoured, as git honours them; relative ones are made
   * absolute here, so that later commands, which run at the top of the work tree, still find the same repository),
   * or one cpr owns (`cpr`: they are ignored).
   */
  static async open(cwd: string, opts: { env?: NodeJS.ProcessEnv; repo: RepoKind }): Promise<Repo> {
    const probe = ["rev-parse", "--absolute-git-dir", "--is-inside-work-tree", "--is-shallow-repository", "--show-object-format"];
    const r = await runGit(probe, { cwd, env: opts.env, repo: opts.repo, okCodes: [0, 128] });
    const [gitDir, inside, shallow, format] = r.stdout.toString("utf8").trim().split("\n");
    if (r.code !== 0 || !gitDir || !format) {
      throw new CprError("repo.not-found", `not a git repository: ${cwd}`, {
        where: cwd,
        hint: "run cpr inside a git repository, or `git init` one",
      });
    }
    if (format !== "sha1" && format !== "sha256") {
      throw new CprError("repo.object-format", `unsupported object format '${format}'`, { where: gitDir });
    }
    const workTree = inside === "true" ? await git(["rev-parse", "--show-toplevel"], { cwd, env: opts.env, repo: opts.repo }) : null;
    const env = opts.repo === "user" ? pinLocation(opts.env, cwd, gitDir, workTree) : opts.env;
    return new Repo({ gitDir, workTree, shallow: shallow === "true", objectFormat: format, kind: opts.repo, env });
  }

  /** Where git commands run: the work tree top, or the git directory of a bare repository. */
  get cwd(): string {
    return this.workTree ?? this.gitDir;
  }

  /** Length of an object id in hex: 40 (SHA-1) or 64 (SHA-256). */
  get oidLength(): number {
    return hashLength(this.objectFormat) * 2;
  }

  /** The all-zero object id of this repository's format. */
  get zeroOid(): string {
    return "0".repeat(this.oidLength);
  }

  /** Run git in this repository; stdout trimmed. */
  git(args: readonly string[], opts: RepoRunOptions = {}): Promise<string> {
    return git(args, { ...opts, cwd: this.cwd, env: opts.env ?? this.env, repo: this.kind });
  }

  /** Run git in this repository; the raw result. */
  run(args: readonly string[], opts: RepoRunOptions = {}): Promise<GitResult> {
    return runGit(args, { ...opts, cwd: this.cwd, env: opts.env ?? this.env, repo: this.kind });
  }

  /** Resolve a revision to an object id, or null when it does not resolve. `rev` is passed as one argument. */
  async revParse(rev: string): Promise<string | null> {
    const r = await this.run(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], { okCodes: [0, 1, 128] });
    const oid = r.stdout.toString("utf8").trim();
    return r.code === 0 && oid ? oid : null;
  }

  /** Resolve a revision to a commit id; a CprError naming the revision when it is not a commit. */
  async resolveCommit(rev: string): Promise<string> {
    const oid = await this.revParse(`${rev}^{commit}`);
    if (!oid) {
      throw new CprError("rev.not-found", `revision '${rev}' does not name a commit in this repository`, {
        where: this.cwd,
        hint: rev === "HEAD" ? "make a first commit, or pass --rev" : "check the revision with `git rev-parse`",
      });
    }
    return oid;
  }

  /** The `git config` value of `key`, or null when unset. */
  async config(key: string): Promise<string | null> {
    const r = await this.run(["config", "--get", key], { okCodes: [0, 1] });
    return r.code === 0 ? r.stdout.toString("utf8").replace(/\n$/, "") : null;
  }

  /** The long-lived object reader, started on first use. */
  private objects(): ObjectReader {
    this.reader ??= new ObjectReader(this.cwd, this.env, this.kind);
    return this.reader;
  }

  /**
   * Read one object by id or by expression (`<rev>:<path>`, `<rev>^{tree}`…), or null when it does not exist.
   * Requests are pipelined through one `git cat-file --batch`, so issuing many reads at once is cheap.
   */
  readObject(spec: string): Promise<GitObject | null> {
    return this.objects().read(spec);
  }

  /** Read many objects in one pipelined batch; the result is in request order. */
  readObjects(specs: readonly string[]): Promise<(GitObject | null)[]> {
    return Promise.all(this.readEach(specs));
  }

  /**
   * One promise per object, in request order, for callers that act on each as it arrives. A large batch goes
   * through its own `git cat-file --batch --buffer`, whose input is closed at once: git then writes its answers in
   * large blocks instead of flushing after every object, which for thousands of small objects costs the reader
   * (and git) more than the lookups do.
   */
  readEach(specs: readonly string[]): Promise<GitObject | null>[] {
    if (specs.length < BULK_READ) {
      const reader = this.objects();
      return specs.map((s) => reader.read(s));
    }
    const reader = new ObjectReader(this.cwd, this.env, this.kind, ["--buffer"]);
    const reads = specs.map((s) => reader.read(s));
    reader.close();
    return reads;
  }

  /**
   * Every entry of a commit's tree, recursively, trees included (`git ls-tree -r -t --full-tree -z`). With
   * `blobNames`, blobs are kept only when their file name is one of these (trees and submodules are all kept): a
   * caller looking for a few files in a large tree skips decoding every other path.
   */
  async listTree(commit: string, opts: { blobNames?: readonly string[] } = {}): Promise<TreeEntry[]> {
    const r = await this.run(["ls-tree", "-r", "-t", "--full-tree", "-z", commit]);
    return parseLsTree(r.stdout, opts.blobNames);
  }

  /**
   * Write objects of one type and return their ids, in order. Objects that already exist are not rewritten. All
   * missing objects go through ONE process: `git hash-object -w --stdin-paths` fed from temporary files for a few,
   * one pack through `git index-pack` for many. Blobs are refused: cpr never writes file content into a repository.
   */
  async writeObjects(
    type: "commit" | "tree" | "tag" | "blob",
    bodies: readonly Uint8Array[],
    expectedIds?: readonly string[],
  ): Promise<string[]> {
    const ids: (string | null)[] = expectedIds ? [...expectedIds] : bodies.map(() => null);
    const present = expectedIds ? await this.existing(expectedIds) : new Set<string>();
    const todo = bodies.map((_, i) => i).filter((i) => !present.has(ids[i] ?? ""));
    if (todo.length > 0) {
      const missing = todo.map((i) => bodies[i]!);
      const written = missing.length >= BULK_WRITE ? await this.packObjects(type, missing) : await this.hashObjects(type, missing);
      todo.forEach((i, k) => {
        const expected = ids[i];
        if (expected && expected !== written[k]) {
          throw new CprError("internal", `git wrote ${type} ${written[k]} but cpr computed ${expected}`, { where: this.gitDir });
        }
        ids[i] = written[k]!;
      });
    }
    return ids as string[];
  }

  /** Which of these object ids exist in the repository (one pipelined batch). */
  async existing(oids: readonly string[]): Promise<Set<string>> {
    const unique = [...new Set(oids)];
    const objects = await this.readObjects(unique);
    return new Set(unique.filter((_, i) => objects[i] !== null));
  }

  /**
   * Write many objects as ONE pack (`git index-pack --strict --stdin`) rather than as loose files: thousands of
   * loose objects cost the write, and every later git command that reads them (the next publish's push walks all
   * published atom commits) pays for opening each file. Returns the ids git now holds, checked to exist.
   */
  private async packObjects(type: "commit" | "tree" | "tag" | "blob", bodies: readonly Uint8Array[]): Promise<string[]> {
    const ids = bodies.map((b) => gitObjectId(type, b, this.objectFormat));
    const pack = encodePack(
      bodies.map((data, i) => ({ oid: ids[i]!, type, data })),
      this.objectFormat,
    );
    const r = await this.run(["index-pack", "--strict", "--stdin"], { input: pack, okCodes: [0, 1, 128] });
    if (r.code !== 0) {
      throw new CprError(
        "git.failed",
        `git index-pack could not write ${new Set(ids).size} ${type} objects: ${r.stderr.trim() || `exit ${r.code}`}`,
        { where: this.gitDir },
      );
    }
    const present = await this.existing(ids);
    const absent = ids.find((id) => !present.has(id));
    if (absent) throw new CprError("internal", `git did not store ${type} ${absent} that cpr computed`, { where: this.gitDir });
    return ids;
  }

  private async hashObjects(type: string, bodies: readonly Uint8Array[]): Promise<string[]> {
    const dir = await mkdtemp(join(tmpdir(), "cpr-objects-"));
    try {
      const paths = bodies.map((_, i) => join(dir, String(i)));
      await writeInChunks(paths, bodies);
      const out = await this.git(["hash-object", "-w", "-t", type, "--stdin-paths"], { input: paths.join("\n") + "\n" });
      const ids = out.split("\n");
      if (ids.length !== bodies.length) {
        throw new CprError("git.failed", `git hash-object returned ${ids.length} ids for ${bodies.length} objects`, { where: this.gitDir });
      }
      return ids;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Current values of local refs under `prefixes` (e.g. `refs/eka/`), as ref name → object id. */
  async refs(prefixes: readonly string[]): Promise<Map<string, string>> {
    const out = await this.git(["for-each-ref", "--format=%(objectname) %(refname)", ...prefixes]);
    const map = new Map<string, string>();
    for (const line of out.split("\n")) {
      const sp = line.indexOf(" ");
      if (sp > 0) map.set(line.slice(sp + 1), line.slice(0, sp));
    }
    return map;
  }

  /**
   * Compare intended ref values with the local refs: `changes` are the refs to create, `conflicts` the refs that
   * already hold another value. A ref already holding the intended value is in neither.
   */
  async planRefUpdates(updates: readonly RefUpdate[]): Promise<RefPlan> {
    const current = await this.refValues(updates.map((u) => u.ref));
    const changes: RefUpdate[] = [];
    const conflicts: RefConflict[] = [];
    for (const u of updates) {
      const have = current.get(u.ref);
      if (have === undefined) changes.push(u);
      else if (have !== u.oid) conflicts.push({ ref: u.ref, oid: u.oid, current: have });
    }
    return { changes, conflicts };
  }

  /**
   * Set refs in ONE `git update-ref --stdin` transaction (start/update/prepare/commit): all land or none do. A ref
   * already holding the intended value is left alone; any other existing value is an error naming the ref, raised
   * before anything is written. Returns the refs actually created.
   */
  async updateRefs(updates: readonly RefUpdate[]): Promise<readonly RefUpdate[]> {
    const { changes, conflicts } = await this.planRefUpdates(updates);
    if (conflicts.length > 0) throw refConflictError(conflicts[0]!);
    if (changes.length === 0) return [];
    // `update <ref> <new> <zero>` creates the ref and fails if it appeared meanwhile.
    const lines = ["start", ...changes.map((u) => `update ${u.ref} ${u.oid} ${this.zeroOid}`), "prepare", "commit", ""];
    const r = await this.run(["update-ref", "--stdin"], { input: lines.join("\n"), okCodes: [0, 1, 128] });
    if (r.code !== 0) {
      throw new CprError("ref.transaction", `could not write local refs: ${r.stderr.trim() || `git update-ref exited ${r.code}`}`, {
        where: this.gitDir,
        hint: "no ref was written; fix the cause above and run the command again",
      });
    }
    return changes;
  }

  /** Current values of these local refs (absent refs are left out). */
  async refValues(refs: readonly string[]): Promise<Map<string, string>> {
    // A few refs: ask for exactly those names. Many: list their namespaces once (argument lists are finite).
    const wanted = new Set(refs);
    const patterns = wanted.size <= 200 ? [...wanted] : [...new Set(refs.map((r) => r.split("/").slice(0, 2).join("/") + "/"))];
    const all = await this.refs(patterns);
    return new Map([...all].filter(([name]) => wanted.has(name)));
  }

  /**
   * Push `refs` (ref name → object id) to `url` in ONE `git push --atomic --porcelain`. The push runs from a
   * throw-away repository that borrows this one's objects (alternates) and config (include), and whose only refs
   * are the ones to push (a packed-refs file), pushed with the wildcard refspec `refs/*:refs/*`. Explicit refspecs
   * would not scale: git matches each one against every local and remote ref with sprintf, which is quadratic
   * (minutes for a 10,000-atom set); nor would a command line hold them.
   * Never throws for a rejected or failed push: the outcome says per ref what happened.
   */
  async push(url: string, refs: readonly RefUpdate[]): Promise<PushOutcome> {
    if (refs.length === 0) return { ok: true, refs: [], error: null };
    const r = await this.withPushRepo(url, refs, (gitDir) =>
      runGit([`--git-dir=${gitDir}`, "push", "--atomic", "--porcelain", "--no-follow-tags", PUSH_REMOTE], {
        cwd: gitDir,
        env: this.env,
        repo: "cpr",
        okCodes: [0, 1, 128],
      }),
    );
    const parsed = parsePushPorcelain(r.stdout.toString("utf8"));
    const byRef = new Map(parsed.map((p) => [p.ref, p]));
    const results = refs.map(
      (u): PushRefResult => byRef.get(u.ref) ?? { ref: u.ref, status: "error", summary: "not pushed", reason: null },
    );
    const ok = r.code === 0 && results.every((p) => p.status === "new" || p.status === "updated" || p.status === "up-to-date");
    return { ok, refs: results, error: ok ? null : cleanPushError(r.stderr) };
  }

  /**
   * Delete refs on `url` in ONE `git push --atomic --porcelain URL :REF…` (a few refs: the command line holds them).
   * Never throws for a rejected push: the outcome says per ref what happened; a ref already absent is "deleted".
   */
  async deleteRemoteRefs(url: string, refs: readonly string[]): Promise<PushOutcome> {
    if (refs.length === 0) return { ok: true, refs: [], error: null };
    const r = await this.run(["push", "--atomic", "--porcelain", url, ...refs.map((ref) => `:${ref}`)], { okCodes: [0, 1, 128] });
    const parsed = parsePushPorcelain(r.stdout.toString("utf8"));
    const byRef = new Map(parsed.map((p) => [p.ref, p]));
    const results = refs.map((ref): PushRefResult => byRef.get(ref) ?? { ref, status: "error", summary: "not pushed", reason: null });
    const ok = r.code === 0 && results.every((p) => p.status === "updated" || p.status === "new" || p.status === "up-to-date");
    return { ok, refs: results, error: ok ? null : cleanPushError(r.stderr) };
  }

  private async withPushRepo<T>(url: string, refs: readonly RefUpdate[], run: (gitDir: string) => Promise<T>): Promise<T> {
    const [objects, config] = (
      await this.git(["rev-parse", "--path-format=absolute", "--git-path", "objects", "--git-path", "config"])
    ).split("\n");
    const dir = await mkdtemp(join(tmpdir(), "cpr-push-"));
    try {
      await mkdir(join(dir, "refs"));
      await mkdir(join(dir, "objects", "info"), { recursive: true });
      await writeFile(join(dir, "HEAD"), "ref: refs/heads/cpr-push\n");
      await writeFile(join(dir, "objects", "info", "alternates"), [objects, ...this.envAlternates()].map((p) => `${p}\n`).join(""));
      await writeFile(join(dir, "packed-refs"), packedRefs(refs));
      const lines = [
        "[include]",
        `\tpath = ${configQuote(config!)}`,
        // The repository format is read from this file alone, never from includes.
        "[core]",
        "\tbare = true",
        `\trepositoryformatversion = ${this.objectFormat === "sha1" ? 0 : 1}`,
        ...(this.objectFormat === "sha1" ? [] : ["[extensions]", `\tobjectformat = ${this.objectFormat}`]),
        `[remote "${PUSH_REMOTE}"]`,
        `\turl = ${configQuote(url)}`,
        "\tpush = refs/*:refs/*",
        "",
      ];
      await writeFile(join(dir, "config"), lines.join("\n"));
      return await run(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Fetch the objects named by remote refs into a throw-away object directory (a quarantine that borrows this
   * repository's objects) and return the requested objects: nothing is written to this repository, no ref, no
   * FETCH_HEAD, no object. One `git fetch` and one `git cat-file --batch`, whatever the number of refs.
   */
  async fetchObjects(url: string, refs: readonly string[], oids: readonly string[]): Promise<Map<string, GitObject>> {
    const found = new Map<string, GitObject>();
    if (refs.length === 0) return found;
    const objects = await this.git(["rev-parse", "--path-format=absolute", "--git-path", "objects"]);
    const dir = await mkdtemp(join(tmpdir(), "cpr-quarantine-"));
    try {
      // The quarantine goes on top of the environment this repository's kind calls for, and must reach git as it
      // is (as `user`: passed through), even for a repository cpr owns, whose kind would remove these variables.
      const env = {
        ...gitEnv(this.env, this.kind),
        GIT_OBJECT_DIRECTORY: dir,
        GIT_ALTERNATE_OBJECT_DIRECTORIES: [objects, ...this.envAlternates()].join(":"),
      };
      await this.fetchWith(url, refs, env, "user");
      const reader = new ObjectReader(this.cwd, env, "user");
      try {
        for (const o of await Promise.all(oids.map((oid) => reader.read(oid)))) if (o) found.set(o.oid, o);
      } finally {
        reader.close();
      }
      return found;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Fetch the objects named by remote refs into this repository, in one process: no ref, no FETCH_HEAD, no tags.
   * The refs go through a temporary config file, so their number is not limited by the command line.
   */
  fetch(url: string, refs: readonly string[]): Promise<void> {
    return this.fetchWith(url, refs, this.env, this.kind);
  }

  private async fetchWith(url: string, refs: readonly string[], env: NodeJS.ProcessEnv | undefined, kind: GitRepoKind): Promise<void> {
    if (refs.length === 0) return;
    const dir = await mkdtemp(join(tmpdir(), "cpr-fetch-"));
    try {
      const config = join(dir, "config");
      const lines = ['[remote "cpr-fetch"]', `\turl = ${configQuote(url)}`, ...refs.map((r) => `\tfetch = ${configQuote(r)}`), ""];
      await writeFile(config, lines.join("\n"));
      const flags = ["--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules"];
      await runGit(["-c", `include.path=${config}`, "fetch", ...flags, "cpr-fetch"], { cwd: this.cwd, env, repo: kind });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Object directories the user's environment adds (GIT_ALTERNATE_OBJECT_DIRECTORIES: e.g. a pre-receive hook's,
   * whose new objects are in a quarantine that borrows the repository's). The throw-away repositories that borrow
   * this one's objects must borrow these too, as they do not see the variable.
   */
  private envAlternates(): string[] {
    const v = this.kind === "user" ? (this.env ?? process.env).GIT_ALTERNATE_OBJECT_DIRECTORIES : undefined;
    return v
      ? v
          .split(":")
          .filter(Boolean)
          .map((p) => resolve(this.cwd, p))
      : [];
  }

  /** Resolve a path argument against `cwd` and return it relative to the work tree top (`/`-separated, "" for the top). */
  repoRelative(path: string, cwd: string): string | null {
    if (!this.workTree) return null;
    const abs = isAbsolute(path) ? resolve(path) : resolve(cwd, path);
    if (abs === this.workTree) return "";
    if (!abs.startsWith(this.workTree + "/")) return null;
    return abs
      .slice(this.workTree.length + 1)
      .split("\\")
      .join("/");
  }

  /** End the long-lived children. The Repo can still run one-shot commands afterwards. */
  close(): void {
    this.reader?.close();
    this.reader = null;
  }
}

/**
 * The user's environment with GIT_DIR and GIT_WORK_TREE made absolute, as they resolved where the repository was
 * opened: a relative one is relative to where cpr started, but a Repo's commands run at the top of the work tree.
 */
function pinLocation(
  env: NodeJS.ProcessEnv | undefined,
  cwd: string,
  gitDir: string,
  workTree: string | null,
): NodeJS.ProcessEnv | undefined {
  const e = env ?? process.env;
  if (!e.GIT_DIR && !e.GIT_WORK_TREE) return env;
  const out: NodeJS.ProcessEnv = { ...e };
  if (e.GIT_DIR) out.GIT_DIR = gitDir;
  if (workTree !== null) out.GIT_WORK_TREE = workTree;
  else if (e.GIT_WORK_TREE) out.GIT_WORK_TREE = resolve(cwd, e.GIT_WORK_TREE);
  return out;
}

/** A packed-refs file holding `refs`, sorted by name in byte order as the `sorted` trait promises. */
function packedRefs(refs: readonly RefUpdate[]): string {
  const sorted = [...refs].sort((a, b) => Buffer.compare(Buffer.from(a.ref), Buffer.from(b.ref)));
  for (const u of sorted) {
    if (!u.ref.startsWith("refs/") || /[\s\0]/.test(u.ref)) throw new CprError("internal", `cannot push ref name ${JSON.stringify(u.ref)}`);
  }
  return ["# pack-refs with: sorted ", ...sorted.map((u) => `${u.oid} ${u.ref}`), ""].join("\n");
}

/** Quote a value for a git config file. */
function configQuote(value: string): string {
  if (/[\n\0]/.test(value)) throw new CprError("internal", `a git config value cannot hold a newline: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

async function writeInChunks(paths: readonly string[], bodies: readonly Uint8Array[], width = 64): Promise<void> {
  for (let i = 0; i < paths.length; i += width) {
    await Promise.all(paths.slice(i, i + width).map((p, k) => writeFile(p, bodies[i + k]!)));
  }
}

function cleanPushError(stderr: string): string | null {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("hint:") && !l.startsWith("To "));
  return lines.length ? lines.join("; ") : null;
}

/**
 * Parse `git ls-tree -z` output: `<mode> SP <type> SP <oid> TAB <path> NUL`. With `blobNames`, a blob is kept only
 * when its file name (after the last `/`) is one of them; the test is on the bytes, before anything is decoded.
 */
export function parseLsTree(out: Buffer, blobNames?: readonly string[]): TreeEntry[] {
  const entries: TreeEntry[] = [];
  const names = blobNames?.map((n) => Buffer.from(`/${n}`));
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0, start);
    if (end < 0) end = out.length;
    const recStart = start;
    start = end + 1;
    // Regular blobs start "100644 blob " or "100755 blob ", symlinks "120000 blob ": byte 7 is 'b' for blobs only.
    if (names && out[recStart + 7] === 0x62 && !names.some((n) => endsWithName(out, recStart, end, n))) continue;
    const rec = out.toString("utf8", recStart, end);
    const tab = rec.indexOf("\t");
    const [mode, type, oid] = rec.slice(0, tab).split(" ");
    if (tab < 0 || !mode || !oid || (type !== "blob" && type !== "tree" && type !== "commit")) {
      throw new CprError("git.output", `unexpected git ls-tree entry: ${JSON.stringify(rec)}`);
    }
    entries.push({ mode, type, oid, path: rec.slice(tab + 1) });
  }
  return entries;
}

/** Whether the record out[start, end) ends with `slashName` ("/atom.toml"), or its path is the bare name. */
function endsWithName(out: Buffer, start: number, end: number, slashName: Buffer): boolean {
  const from = end - slashName.length;
  if (from < start) return false;
  if (out.compare(slashName, 1, slashName.length, from + 1, end) !== 0) return false;
  return out[from] === 0x2f || out[from] === 0x09; // '/' in a path, or TAB: the name is the whole path
}

/** Parse `git push --porcelain` lines: `<flag> TAB <from>:<to> TAB <summary> [(<reason>)]`. */
export function parsePushPorcelain(out: string): PushRefResult[] {
  const results: PushRefResult[] = [];
  for (const line of out.split("\n")) {
    const parts = line.split("\t");
    if (parts.length < 3 || parts[0]!.length !== 1) continue;
    const [flag, spec, summary] = parts as [string, string, string];
    const ref = spec.slice(spec.lastIndexOf(":") + 1);
    const m = /\(([^)]*)\)\s*$/.exec(summary);
    const reason = m ? m[1]! : null;
    results.push({ ref, status: pushStatus(flag, summary), summary: summary.trim(), reason });
  }
  return results;
}

function pushStatus(flag: string, summary: string): PushRefResult["status"] {
  switch (flag) {
    case "*":
      return "new";
    case " ":
    case "+":
    case "-":
      return "updated";
    case "=":
      return "up-to-date";
    case "!":
      return summary.includes("remote rejected") ? "remote-rejected" : "rejected";
    default:
      return "error";
  }
}

interface PendingRead {
  spec: string;
  resolve: (o: GitObject | null) => void;
  reject: (e: Error) => void;
}

/**
 * A long-lived `git cat-file --batch`: requests are written as they come, and answers are parsed from the stream
 * in order (`<oid> <type> <size>\n<data>\n`, or `<spec> missing\n`).
 */
class ObjectReader {
  private readonly child: Child;
  /** Pending requests in order; answered ones before `head` are cleared (shift() is O(n) on large queues). */
  private queue: PendingRead[] = [];
  private head = 0;
  private outgoing: string[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private header: { oid: string; type: GitObject["type"]; size: number } | null = null;
  private failure: Error | null = null;
  private stderr = "";

  constructor(cwd: string, env: NodeJS.ProcessEnv | undefined, kind: RepoKind, flags: readonly string[] = []) {
    this.child = spawnChild("git", ["cat-file", "--batch", ...flags], { cwd, env: gitEnv(env, kind) });
    this.child.stdout.on("data", (chunk: Buffer) => this.onData(chunk));
    this.child.stderr.on("data", (chunk: Buffer) => void (this.stderr += chunk.toString("utf8")));
    this.child.on("error", (e) => this.fail(spawnFailure("git", e, gitErrors(["cat-file"]))));
    this.child.on("close", (code) => {
      if (this.pending())
        this.fail(new CprError("git.failed", `git cat-file exited ${code}: ${this.stderr.trim() || "(no output)"}`, { where: cwd }));
    });
    this.child.stdin.on("error", () => {});
  }

  read(spec: string): Promise<GitObject | null> {
    if (this.failure) return Promise.reject(this.failure);
    if (/[\n\r]/.test(spec) || spec.length === 0) {
      return Promise.reject(new CprError("git.object-name", `cannot look up object name ${JSON.stringify(spec)}`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ spec, resolve, reject });
      // Requests issued in the same tick go out as ONE write: thousands of tiny writes would each cost a syscall
      // and let git answer in a ping-pong of small reads.
      if (this.outgoing.length === 0) queueMicrotask(() => this.flush());
      this.outgoing.push(spec);
    });
  }

  private pending(): number {
    return this.queue.length - this.head;
  }

  /** The oldest unanswered request, removed from the queue. */
  private next(): PendingRead | undefined {
    const p = this.queue[this.head];
    if (p === undefined) return undefined;
    this.queue[this.head++] = undefined as unknown as PendingRead;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return p;
  }

  private flush(): void {
    if (this.outgoing.length === 0) return;
    const lines = this.outgoing.join("\n") + "\n";
    this.outgoing = [];
    this.child.stdin.write(lines);
  }

  close(): void {
    if (this.outgoing.length) this.flush();
    this.child.stdin.end();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiting = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const p of waiting) p.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (!this.header) {
        const nl = this.buf.indexOf(10, pos);
        if (nl < 0) break;
        const line = this.buf.toString("utf8", pos, nl);
        pos = nl + 1;
        this.onHeader(line);
        continue;
      }
      if (this.buf.length - pos < this.header.size + 1) break;
      const data = Buffer.from(this.buf.subarray(pos, pos + this.header.size));
      pos += this.header.size + 1;
      const { oid, type } = this.header;
      this.header = null;
      this.next()?.resolve({ oid, type, data });
    }
    this.buf = this.buf.subarray(pos);
  }

  private onHeader(line: string): void {
    const m = /^([0-9a-f]{40}|[0-9a-f]{64}) (\S+) (\d+)$/.exec(line);
    if (m && OBJECT_TYPES.has(m[2]!)) {
      this.header = { oid: m[1]!, type: m[2] as GitObject["type"], size: Number(m[3]) };
      return;
    }
    const pending = this.next();
    if (!pending) return;
    if (line.endsWith(" missing")) pending.resolve(null);
    else pending.reject(new CprError("git.object-name", `cannot read object '${pending.spec}': ${line}`));
  }
}
