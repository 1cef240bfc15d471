/**
 * Deterministic generator of a nixpkgs-like atom set, built in ONE `git fast-import` process.
 *
 * Layout: `pkgs/by-name/<xx>/<name>/` (xx = first two letters of the name, as in nixpkgs), each atom holding
 * `atom.toml` ([package] label/version, [package.meta] description), `default.nix` and one or two small files
 * (some in a `patches/` subdirectory). History: a first commit with most atoms, then commits that each touch a
 * handful of atoms (version bumps, edits) or add a new one, with fixed author/committer dates, so every object id is
 * a pure function of the parameters. One more commit on `refs/heads/bench-next` bumps a single atom and edits one of
 * its files: the "one atom changed" state used by the incremental-publish benchmark.
 *
 * The result is a bare repository cached under bench/out/sets/<key>/ (key = parameters + generator version), so
 * reruns cost nothing. Run directly: `node dist/bench/gen-set.js [--atoms N] [--commits N] [--seed N]`.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { benchEnv, BenchError, ensureDir, git, log, OUT_DIR, Rng } from "./lib.js";

/** Bump when the generated content changes, so stale caches are not reused. */
const GENERATOR_VERSION = 1;

export interface SetParams {
  atoms: number;
  commits: number;
  seed: number;
}

export interface ChangedAtom {
  label: string;
  path: string;
  from: string;
  to: string;
}

export interface SetInfo {
  params: SetParams;
  key: string;
  /** Bare repository holding refs/heads/main (HEAD) and refs/heads/bench-next. */
  repo: string;
  head: string;
  next: string;
  root: string;
  /** Atoms at HEAD (always params.atoms). */
  atoms: number;
  /** Commits on main. */
  commits: number;
  /** Files (blobs) in HEAD's tree. */
  files: number;
  changed: ChangedAtom;
  /** Size of the packed repository in bytes. */
  packBytes: number;
  generatedMs: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Names and content

const SYLLABLES = [
  "ba",
  "be",
  "bi",
  "bo",
  "ca",
  "ce",
  "co",
  "da",
  "de",
  "di",
  "do",
  "fa",
  "fe",
  "fi",
  "ga",
  "ge",
  "go",
  "ha",
  "he",
  "ka",
  "ki",
  "ko",
  "la",
  "le",
  "li",
  "lo",
  "lu",
  "ma",
  "me",
  "mi",
  "mo",
  "mu",
  "na",
  "ne",
  "ni",
  "no",
  "pa",
  "pe",
  "pi",
  "po",
  "ra",
  "re",
  "ri",
  "ro",
  "ru",
  "sa",
  "se",
  "si",
  "so",
  "su",
  "ta",
  "te",
  "ti",
  "to",
  "tu",
  "va",
  "ve",
  "vi",
  "xa",
  "xe",
  "za",
  "ze",
  "zo",
  "gr",
  "fl",
  "st",
  "pr",
  "tr",
  "ch",
  "th",
  "sh",
  "qu",
  "wy",
  "yo",
  "ux",
  "ix",
];
const PREFIXES = ["lib", "py", "go", "rust", "node", "perl", "haskell", "ocaml", "lua", "gnome", "kde", "x", "qt", "vim", "emacs"];
const SUFFIXES = [
  "utils",
  "cli",
  "tools",
  "ng",
  "bin",
  "rs",
  "git",
  "gtk",
  "qt",
  "server",
  "client",
  "fonts",
  "unwrapped",
  "daemon",
  "2",
  "3",
  "4",
];
const WORDS = [
  "fast",
  "small",
  "simple",
  "modern",
  "secure",
  "portable",
  "extensible",
  "library",
  "tool",
  "utility",
  "parser",
  "compiler",
  "interpreter",
  "server",
  "client",
  "framework",
  "terminal",
  "image",
  "audio",
  "video",
  "network",
  "file",
  "system",
  "manager",
  "editor",
  "viewer",
  "converter",
  "for",
  "and",
  "with",
  "the",
  "of",
  "a",
  "data",
  "protocol",
  "toolkit",
  "bindings",
  "implementation",
  "daemon",
  "backup",
  "monitor",
  "shell",
  "graphics",
  "font",
];
const LICENSES = ["mit", "asl20", "gpl2Plus", "gpl3Only", "bsd3", "lgpl21Plus", "mpl20", "isc", "zlib"];
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** `count` distinct nixpkgs-like package names (valid labels: ASCII letter first, then letters, digits, `-`). */
export function makeNames(count: number, rng: Rng): string[] {
  const seen = new Set<string>();
  const names: string[] = [];
  while (names.length < count) {
    let name = "";
    const n = rng.int(2, 4);
    for (let i = 0; i < n; i++) name += rng.pick(SYLLABLES);
    if (rng.chance(0.25)) name = rng.pick(PREFIXES) + (rng.chance(0.5) ? "-" : "") + name;
    if (rng.chance(0.3)) name += "-" + rng.pick(SUFFIXES);
    if (seen.has(name)) continue;
    seen.add(name);
    names.push(name);
  }
  return names;
}

function sentence(rng: Rng, min: number, max: number): string {
  const n = rng.int(min, max);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(rng.pick(WORDS));
  const s = words.join(" ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function fakeHash(rng: Rng): string {
  let s = "";
  for (let i = 0; i < 43; i++) s += B64[rng.int(0, 63)];
  return `sha256-${s}=`;
}

interface Atom {
  name: string;
  dir: string;
  version: [number, number, number];
  description: string;
  license: string;
  hash: string;
  /** Extra small files: relative path → content. */
  extras: Map<string, string>;
  edits: number;
}

function versionText(a: Atom): string {
  return a.version.join(".");
}

function newAtom(name: string, rng: Rng): Atom {
  const atom: Atom = {
    name,
    dir: `pkgs/by-name/${name.slice(0, 2).toLowerCase()}/${name}`,
    version: [rng.int(0, 4), rng.int(0, 20), rng.int(0, 30)],
    description: sentence(rng, 3, 9),
    license: rng.pick(LICENSES),
    hash: fakeHash(rng),
    extras: new Map(),
    edits: 0,
  };
  const kinds = ["update.sh", "tests.nix", "patches/fix-build.patch", "README.md"];
  const count = rng.chance(0.6) ? 1 : 2;
  while (atom.extras.size < count) {
    const kind = rng.pick(kinds);
    if (!atom.extras.has(kind)) atom.extras.set(kind, extraContent(kind, atom, rng));
  }
  return atom;
}

function extraContent(kind: string, a: Atom, rng: Rng): string {
  switch (kind) {
    case "update.sh":
      return `#!/usr/bin/env nix-shell\n#!nix-shell -i bash -p curl jq common-updater-scripts\nset -eu\nversion=$(curl -s https://example.org/api/${a.name}/releases | jq -r '.[0].tag')\nupdate-source-version ${a.name} "$version"\n`;
    case "tests.nix":
      return `{ runCommand, ${a.name} }:\n\nrunCommand "${a.name}-test" { } ''\n  ${a.name} --version | grep -q ${rng.int(0, 9)}\n  touch $out\n''\n`;
    case "patches/fix-build.patch":
      return `--- a/Makefile\n+++ b/Makefile\n@@ -${rng.int(1, 200)},3 +${rng.int(1, 200)},3 @@\n-CFLAGS = -O2 -Werror\n+CFLAGS = -O2\n all: ${a.name}\n`;
    default:
      return `# ${a.name}\n\n${a.description}.\n\nMaintained in this set; see default.nix for the build.\n`;
  }
}

function atomToml(a: Atom): string {
  return `[package]\nlabel = "${a.name}"\nversion = "${versionText(a)}"\n\n[package.meta]\ndescription = "${a.description}"\n`;
}

function defaultNix(a: Atom): string {
  const patches = a.extras.has("patches/fix-build.patch") ? `\n  patches = [ ./patches/fix-build.patch ];\n` : "";
  const tests = a.extras.has("tests.nix") ? `\n  passthru.tests.basic = callPackage ./tests.nix { };\n` : "";
  const rev = a.edits ? `\n  # revision ${a.edits}\n` : "";
  return (
    `{ lib, stdenv, fetchurl, callPackage }:\n\nstdenv.mkDerivation (finalAttrs: {\n  pname = "${a.name}";\n  version = "${versionText(a)}";\n\n` +
    `  src = fetchurl {\n    url = "https://example.org/${a.name}/${a.name}-\${finalAttrs.version}.tar.gz";\n    hash = "${a.hash}";\n  };\n` +
    `${patches}${tests}${rev}\n  meta = {\n    description = "${a.description}";\n    license = lib.licenses.${a.license};\n    mainProgram = "${a.name}";\n  };\n})\n`
  );
}

function atomFiles(a: Atom): [string, string][] {
  return [
    [`${a.dir}/atom.toml`, atomToml(a)],
    [`${a.dir}/default.nix`, defaultNix(a)],
    ...[...a.extras].map(([p, c]): [string, string] => [`${a.dir}/${p}`, c]),
  ];
}

const TOP_FILES: [string, string][] = [
  ["README.md", "# bench-pkgs\n\nA generated, nixpkgs-like set of atoms for cpr's benchmarks.\n"],
  ["default.nix", "{ system ? builtins.currentSystem }:\nimport ./pkgs/top-level { inherit system; }\n"],
  ["pkgs/top-level/default.nix", "{ system }:\nlet by-name = ../by-name; in { inherit system by-name; }\n"],
  ["lib/default.nix", '{ }:\n{\n  version = "24.05";\n}\n'],
];

// ---------------------------------------------------------------------------------------------------------------
// fast-import stream

class Stream {
  parts: Buffer[] = [];
  size = 0;
  text(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.parts.push(b);
    this.size += b.length;
  }
  data(s: string): void {
    this.text(`data ${Buffer.byteLength(s, "utf8")}\n${s}\n`);
  }
  commit(ref: string, mark: number, time: number, message: string, from: number | null, files: readonly [string, string][]): void {
    this.text(
      `commit ${ref}\nmark :${mark}\nauthor Bench Author <author@example.org> ${time} +0000\ncommitter Bench Committer <committer@example.org> ${time} +0000\n`,
    );
    this.data(message);
    if (from !== null) this.text(`from :${from}\n`);
    for (const [path, content] of files) {
      this.text(`M ${path.endsWith(".sh") ? "100755" : "100644"} inline ${path}\n`);
      this.data(content);
    }
    this.text("\n");
  }
}

function bump(a: Atom, rng: Rng): void {
  const r = rng.next();
  if (r < 0.7) a.version = [a.version[0], a.version[1], a.version[2] + 1];
  else if (r < 0.95) a.version = [a.version[0], a.version[1] + 1, 0];
  else a.version = [a.version[0] + 1, 0, 0];
  a.hash = fakeHash(rng);
}

/** Build the fast-import stream for the whole history. */
function buildStream(p: SetParams): { stream: Stream; changed: ChangedAtom; files: number } {
  const rng = new Rng(p.seed);
  const names = makeNames(p.atoms, rng);
  const commits = Math.max(1, p.commits);
  // Atoms added during the history (one every few commits); the rest are in the first commit.
  const added = Math.min(Math.floor((commits - 1) / 4), Math.floor(p.atoms / 10));
  const atoms = names.map((n) => newAtom(n, rng));
  const live: Atom[] = atoms.slice(0, p.atoms - added);
  const pending = atoms.slice(p.atoms - added);
  const s = new Stream();
  const t0 = 1_600_000_000;

  const first: [string, string][] = [...TOP_FILES];
  for (const a of live) first.push(...atomFiles(a));
  s.commit("refs/heads/main", 1, t0, `Initial import of ${live.length} packages\n`, null, first);

  for (let i = 1; i < commits; i++) {
    const time = t0 + i * 3600 + rng.int(0, 3599);
    const files: [string, string][] = [];
    let message: string;
    if (pending.length && i % 4 === 0) {
      const a = pending.shift()!;
      live.push(a);
      files.push(...atomFiles(a));
      message = `${a.name}: init at ${versionText(a)}\n`;
    } else {
      const touched = new Set<Atom>();
      const n = rng.int(1, 5);
      while (touched.size < Math.min(n, live.length)) touched.add(rng.pick(live));
      const parts: string[] = [];
      for (const a of touched) {
        if (rng.chance(0.75)) {
          const from = versionText(a);
          bump(a, rng);
          parts.push(`${a.name}: ${from} -> ${versionText(a)}`);
        } else {
          a.edits++;
          parts.push(`${a.name}: tidy build`);
        }
        files.push(...atomFiles(a));
      }
      message = parts.length === 1 ? `${parts[0]}\n` : `treewide: ${parts.length} package updates\n\n${parts.join("\n")}\n`;
    }
    s.commit("refs/heads/main", i + 1, time, message, i, files);
  }

  // The "one atom changed" commit: bump a version and edit a file, on a side branch.
  const a = live[Math.floor(rng.next() * live.length)]!;
  const from = versionText(a);
  bump(a, rng);
  a.edits++;
  s.commit("refs/heads/bench-next", commits + 1, t0 + commits * 3600, `${a.name}: ${from} -> ${versionText(a)}\n`, commits, atomFiles(a));
  s.text("done\n");
  const files = TOP_FILES.length + live.reduce((n, x) => n + 2 + x.extras.size, 0);
  return { stream: s, changed: { label: a.name, path: a.dir, from, to: versionText(a) }, files };
}

function fastImport(repo: string, stream: Stream): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn("git", ["fast-import", "--quiet", "--done", "--date-format=raw"], {
      cwd: repo,
      env: benchEnv(),
      stdio: ["pipe", "ignore", "pipe"],
    });
    const err: Buffer[] = [];
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolvePromise() : reject(new BenchError(`git fast-import failed (${code}): ${Buffer.concat(err).toString()}`)),
    );
    child.stdin.end(Buffer.concat(stream.parts, stream.size));
  });
}

export function setKey(p: SetParams): string {
  return `a${p.atoms}-c${p.commits}-s${p.seed}-g${GENERATOR_VERSION}`;
}

/** The cached set for these parameters, generating it first if needed. */
export async function ensureSet(p: SetParams): Promise<SetInfo> {
  const key = setKey(p);
  const dir = join(ensureDir(join(OUT_DIR, "sets")), key);
  const infoFile = join(dir, "info.json");
  if (existsSync(infoFile)) return JSON.parse(readFileSync(infoFile, "utf8")) as SetInfo;

  log(`generating set ${key} (${p.atoms} atoms, ${p.commits} commits)`);
  const started = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const repo = join(tmp, "source.git");
  ensureDir(repo);
  await git(repo, ["init", "--quiet", "--bare", "--initial-branch=main"]);
  const { stream, changed, files } = buildStream(p);
  await fastImport(repo, stream);
  await git(repo, ["symbolic-ref", "HEAD", "refs/heads/main"]);
  await git(repo, ["repack", "-adq"]);
  await git(repo, ["pack-refs", "--all"]);
  const head = await git(repo, ["rev-parse", "refs/heads/main"]);
  const next = await git(repo, ["rev-parse", "refs/heads/bench-next"]);
  const roots = (await git(repo, ["rev-list", "--max-parents=0", head])).split("\n");
  if (roots.length !== 1) throw new BenchError(`generated history has ${roots.length} roots`);
  const count = Number(await git(repo, ["rev-list", "--count", head]));
  const atomTomls = (await git(repo, ["ls-tree", "-r", "--name-only", head])).split("\n").filter((l) => l.endsWith("/atom.toml")).length;
  if (atomTomls !== p.atoms) throw new BenchError(`generated HEAD has ${atomTomls} atom.toml files, expected ${p.atoms}`);
  const sizes = await git(repo, ["count-objects", "-v"]);
  const packKiB = Number(/size-pack: (\d+)/.exec(sizes)?.[1] ?? "0");
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  const info: SetInfo = {
    params: p,
    key,
    repo: join(dir, "source.git"),
    head,
    next,
    root: roots[0]!,
    atoms: atomTomls,
    commits: count,
    files,
    changed,
    packBytes: packKiB * 1024,
    generatedMs: Date.now() - started,
  };
  writeFileSync(infoFile, JSON.stringify(info, null, 2) + "\n");
  log(
    `generated ${key} in ${(info.generatedMs / 1000).toFixed(1)} s (${count} commits, ${files} files, pack ${(packKiB / 1024).toFixed(1)} MiB)`,
  );
  return info;
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const p: SetParams = {
    atoms: Number(argValue(args, "--atoms") ?? process.env.CPR_BENCH_ATOMS ?? 10000),
    commits: Number(argValue(args, "--commits") ?? process.env.CPR_BENCH_COMMITS ?? 300),
    seed: Number(argValue(args, "--seed") ?? process.env.CPR_BENCH_SEED ?? 1),
  };
  ensureSet(p).then(
    (info) => console.log(JSON.stringify(info, null, 2)),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    },
  );
}
