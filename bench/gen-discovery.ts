/**
 * The discovery benchmark's remote: a bare repository holding A atoms x V versions, published the pre1 way
 * (refs/eka/atoms/<label>/<version> -> atom commit, refs/eka/meta/<label>/<version>/{manifest,origin}), plus
 * refs/ekala/init and refs/heads/main. With the defaults (10,000 x 5) that is 50,000 atom refs and 100,000 meta refs.
 *
 * Built cheaply but with real objects: one root commit; per version a manifest blob, a tree holding it and the
 * atom commit with the exact pre1 bytes (docs/formats.md §7); all written as one pack through `git index-pack`, and the refs as a
 * sorted `packed-refs` file (what `git pack-refs --all` leaves, as on a hosted repository). Cached under
 * bench/out/discovery/<key>/.
 */
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BenchError, ensureDir, git, log, OUT_DIR, Rng, run, scratchRoot } from "./lib.js";
import { atomCommitBody } from "../src/protocol/commit.js";
import { makeObject, makeTree, writePack, writePackedRefs, type GitObject } from "./pack.js";
import { makeNames } from "./gen-set.js";

const GENERATOR_VERSION = 1;

export interface DiscoveryParams {
  atoms: number;
  versions: number;
  seed: number;
}

export interface DiscoveryInfo {
  params: DiscoveryParams;
  key: string;
  /** Directory served by the servers; the repository is `<root>/<name>`. */
  root: string;
  name: string;
  repo: string;
  /** The label the benchmark asks for, and its versions (ascending). */
  label: string;
  versions: string[];
  setRoot: string;
  atomRefs: number;
  totalRefs: number;
  generatedMs: number;
}

function versionsFor(rng: Rng, n: number): string[] {
  const out: string[] = [];
  let [a, b, c] = [rng.int(0, 2), rng.int(0, 9), rng.int(0, 9)];
  for (let i = 0; i < n; i++) {
    out.push(`${a}.${b}.${c}`);
    const r = rng.next();
    if (r < 0.6) c++;
    else if (r < 0.9) [b, c] = [b + 1, 0];
    else [a, b, c] = [a + 1, 0, 0];
  }
  return out;
}

export function discoveryKey(p: DiscoveryParams): string {
  return `a${p.atoms}-v${p.versions}-s${p.seed}-g${GENERATOR_VERSION}`;
}

export async function ensureDiscoveryRemote(p: DiscoveryParams): Promise<DiscoveryInfo> {
  const key = discoveryKey(p);
  const dir = join(ensureDir(join(OUT_DIR, "discovery")), key);
  const infoFile = join(dir, "info.json");
  if (existsSync(infoFile)) return JSON.parse(readFileSync(infoFile, "utf8")) as DiscoveryInfo;

  log(`generating discovery remote ${key} (${p.atoms} atoms x ${p.versions} versions)`);
  const started = Date.now();
  // Build on the scratch space (tens of thousands of loose objects and temporary files), then copy the packed result.
  const tmp = join(scratchRoot(), `discovery-${key}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const name = "set.git";
  const repo = join(tmp, "repos", name);
  ensureDir(repo);
  await git(repo, ["init", "--quiet", "--bare", "--initial-branch=main"]);

  const rng = new Rng(p.seed ^ 0x5eed);
  const labels = makeNames(p.atoms, rng);
  const entries: { label: string; version: string }[] = [];
  const versionsByLabel = new Map<string, string[]>();
  for (const label of labels) {
    const vs = versionsFor(rng, p.versions);
    versionsByLabel.set(label, vs);
    for (const version of vs) entries.push({ label, version });
  }

  // Root commit: an empty tree, fixed identity and date.
  const objects: GitObject[] = [];
  const emptyTree = makeTree([]);
  const rootCommit = makeObject(
    "commit",
    `tree ${emptyTree.oid}\nauthor Bench <bench@example.org> 1700000000 +0000\ncommitter Bench <bench@example.org> 1700000000 +0000\n\nInitial commit\n`,
  );
  objects.push(emptyTree, rootCommit);
  const refs = new Map<string, string>([
    ["refs/ekala/init", rootCommit.oid],
    ["refs/heads/main", rootCommit.oid],
  ]);
  for (const e of entries) {
    const manifest = makeObject(
      "blob",
      `[package]\nlabel = "${e.label}"\nversion = "${e.version}"\n\n[package.meta]\ndescription = "Package ${e.label}"\n`,
    );
    const tree = makeTree([{ mode: "100644", name: "atom.toml", oid: manifest.oid }]);
    const commit = makeObject("commit", atomCommitBody({ tree: tree.oid, origin: rootCommit.oid, label: e.label, version: e.version }));
    objects.push(manifest, tree, commit);
    refs.set(`refs/eka/atoms/${e.label}/${e.version}`, commit.oid);
    refs.set(`refs/eka/meta/${e.label}/${e.version}/manifest`, manifest.oid);
    refs.set(`refs/eka/meta/${e.label}/${e.version}/origin`, rootCommit.oid);
  }
  await writePack(repo, objects);
  writePackedRefs(repo, refs);
  // Sanity: git agrees with the objects and refs written here.
  const check = await git(repo, ["cat-file", "-p", refs.get(`refs/eka/atoms/${entries[0]!.label}/${entries[0]!.version}`)!]);
  if (!check.startsWith("tree ")) throw new BenchError("the generated discovery remote is unreadable");
  await git(repo, ["fsck", "--connectivity-only", "--no-dangling"]);
  const totalRefs = Number((await run("git", ["for-each-ref", "--format=x"], { cwd: repo })).stdout.split("\n").filter(Boolean).length);

  rmSync(dir, { recursive: true, force: true });
  ensureDir(dir);
  cpSync(join(tmp, "repos"), join(dir, "repos"), { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  const label = labels[Math.floor(labels.length / 2)]!;
  const info: DiscoveryInfo = {
    params: p,
    key,
    root: join(dir, "repos"),
    name,
    repo: join(dir, "repos", name),
    label,
    versions: versionsByLabel.get(label)!,
    setRoot: rootCommit.oid,
    atomRefs: entries.length,
    totalRefs,
    generatedMs: Date.now() - started,
  };
  writeFileSync(infoFile, JSON.stringify(info, null, 2) + "\n");
  log(`generated ${key} in ${(info.generatedMs / 1000).toFixed(1)} s (${totalRefs} refs)`);
  return info;
}
