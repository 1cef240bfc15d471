/**
 * `npm run demo`: cpr's main job end to end on the bundled demo set (demo/set), against local remotes only.
 *
 * It copies the demo set into .cpr-demo/work, commits it with a fixed identity and date (so every id printed is
 * reproducible), creates a bare remote, then runs the real `bin/cpr` the way a user would: init, publish (hello is
 * refused until `cpr resolve` writes its lock), ls over
 * a path and over git:// (a `git daemon` on loopback), a bump + incremental publish signed with an ssh key made for
 * the demo, a refused re-publish, then fetch (one atom, then again from the cache) and verify (deep, and signatures).
 * Then a second set depends on hello across sets (add, resolve --locked, tree, why), and, when Nix is installed, a
 * registry on SQLite indexes the demo set, cpr build --push builds hello, and cpr get brings it back after the
 * local output is deleted. Everything it creates stays in .cpr-demo/ for you to inspect.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, rmSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { canConnect, freePort } from "./lib/net.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const cpr = join(repoRoot, "bin/cpr");
const base = join(repoRoot, ".cpr-demo");
const work = join(base, "work");
const remote = join(base, "remote.git");

const env: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "Demo",
  GIT_AUTHOR_EMAIL: "demo@example.org",
  GIT_COMMITTER_NAME: "Demo",
  GIT_COMMITTER_EMAIL: "demo@example.org",
  GIT_AUTHOR_DATE: "2026-01-01T00:00:00Z",
  GIT_COMMITTER_DATE: "2026-01-01T00:00:00Z",
  GIT_CONFIG_NOSYSTEM: "1",
  CPR_CACHE_DIR: join(base, "cache"),
  // The demo runs without network, so it configures the Nix locker's rev instead of resolving
  // refs/eka/atoms/nix-lock/0.1.6 on github.com/ekala-project/eka (what cpr does by default).
};

const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s);

function quiet(cmd: string, args: string[], cwd = work): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout.trim();
}

/** Run `cpr …` visibly, as in a terminal session. */
function step(args: string[], opts: { expectFail?: boolean } = {}): void {
  stepIn(work, args, opts);
}

/** Run `cpr …` visibly in `cwd`. */
function stepIn(cwd: string, args: string[], opts: { expectFail?: boolean } = {}): void {
  const where = cwd === work ? "" : `(cd ${cwd.slice(work.length + 1)}) `;
  process.stdout.write(`\n${bold(`$ ${where}cpr ${args.join(" ")}`)}\n`);
  const r = spawnSync(process.execPath, [cpr, ...args], { cwd, env, stdio: ["ignore", "inherit", "inherit"] });
  const failed = r.status !== 0;
  if (failed !== Boolean(opts.expectFail)) {
    throw new Error(`demo step 'cpr ${args.join(" ")}' exited ${r.status}, expected ${opts.expectFail ? "a failure" : "success"}`);
  }
  if (failed) process.stdout.write(`(exit ${r.status}, as expected)\n`);
}

/** Run another program visibly (its output, stdout and stderr, as in a terminal). */
function show(cmd: string, args: string[], cwd = work, runEnv = env): void {
  process.stdout.write(`\n${bold(`$ ${cmd} ${args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(" ")}`)}\n`);
  const r = spawnSync(cmd, args, { cwd, env: runEnv, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error(`demo step '${cmd} ${args.join(" ")}' exited ${r.status}`);
}

function say(text: string): void {
  process.stdout.write(`\n# ${text}\n`);
}

async function startDaemon(): Promise<{ url: string; proc: ChildProcess } | null> {
  const port = await freePort();
  const proc = spawn(
    "git",
    ["daemon", "--reuseaddr", `--base-path=${base}`, "--export-all", "--listen=127.0.0.1", `--port=${port}`, base],
    { env, stdio: "ignore" },
  );
  for (let i = 0; i < 50; i++) {
    if (await canConnect(port)) return { url: `git://127.0.0.1:${port}/remote.git`, proc };
    if (proc.exitCode !== null) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  return null;
}

async function main(): Promise<void> {
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  cpSync(join(repoRoot, "demo/set"), work, { recursive: true });
  quiet("git", ["init", "-q", "-b", "main"]);
  quiet("git", ["add", "-A"]);
  quiet("git", ["commit", "-q", "-m", "demo set: four atoms"]);
  quiet("git", ["init", "-q", "--bare", remote], base);
  quiet("git", ["config", "uploadpack.allowFilter", "true"], remote); // lets cpr verify fetch origins tree-only
  quiet("git", ["remote", "add", "origin", remote]);
  quiet("git", ["push", "-q", "origin", "main"]);
  process.stdout.write(`cpr demo: a set of four atoms in ${work}\n          its remote is the bare repository ${remote}\n`);

  say("Mark the remote as an atom set: refs/ekala/init = the root commit. No new commit, no ekala.toml needed.");
  step(["init"]);
  step(["init"]);

  say("Publish every atom: one orphan commit each, reusing the atom's existing tree, in one atomic push. An atom that is");
  process.stdout.write("# evaluated needs its atom.lock in its tree (consumers read each atom's own lock): hello has none yet. A run is\n");
  process.stdout.write(
    "# all-or-nothing, so nothing is pushed; the three atoms whose locks are committed can be published on their own.\n",
  );
  step(["publish", "--all"], { expectFail: true });
  step(["publish", "lib/greet", "pkgs/cowsay", "tools/fmt"]);
  say('hello depends on greet from its own set ("::"). Consumers fetch greet from a mirror of that set, so name the set\'s');
  process.stdout.write('# remote beside "::" in hello\'s [package.sets], lock the published greet with cpr resolve, commit, and publish\n');
  process.stdout.write("# again: only hello is new.\n");
  const helloToml = join(work, "pkgs/hello/atom.toml");
  writeFileSync(helloToml, readFileSync(helloToml, "utf8").replace('demo = "::"', `demo = ["::", ${JSON.stringify(remote)}]`));
  show("git", ["--no-pager", "diff", "--", "pkgs/hello/atom.toml"]);
  stepIn(join(work, "pkgs/hello"), ["resolve"]);
  quiet("git", ["add", "pkgs/hello/atom.toml", "pkgs/hello/atom.lock"]);
  quiet("git", ["commit", "-q", "-m", "hello: lock"]);
  step(["publish", "--all"]);

  say("Discover versions by listing refs only (protocol v2 ls-refs with ref-prefix), never cloning.");
  step(["ls", "origin"]);

  const daemon = await startDaemon();
  if (daemon) {
    say(`The same over the wire, from a git daemon on loopback (${daemon.url}), narrowed to one label:`);
    try {
      step(["ls", daemon.url, "hello", "--json"]);
    } finally {
      daemon.proc.kill();
    }
  } else {
    say("(git daemon is not available here, so the git:// listing is skipped)");
  }

  say("Bump one atom and publish the whole set again: only what changed is published, the rest is skipped.");
  const manifest = join(work, "pkgs/hello/atom.toml");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace('version = "2.12.1"', 'version = "2.12.2"'));
  quiet("git", ["commit", "-q", "-am", "hello: 2.12.2"]);
  const key = join(base, "demo_ed25519");
  quiet("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "demo@example.org", "-f", key], base);
  const allowed = join(base, "allowed_signers");
  writeFileSync(allowed, `demo@example.org ${readFileSync(`${key}.pub`, "utf8")}`);
  say("This time sign what is published (an ssh key made for the demo): a tag under refs/eka/meta/<label>/<version>/sig.");
  step(["publish", "--all", "--sign", key]);
  step(["ls", "origin", "hello"]);

  say("Versions are immutable: changing an atom without bumping its version is refused, and nothing is pushed.");
  writeFileSync(
    join(work, "pkgs/cowsay/default.nix"),
    readFileSync(join(work, "pkgs/cowsay/default.nix"), "utf8").replace("echo moo", "echo moo!"),
  );
  quiet("git", ["commit", "-q", "-am", "cowsay: change without a bump"]);
  step(["publish", "pkgs/cowsay"], { expectFail: true });

  say("An atom's identity is its label keyed by the set's root commit: stable across versions and mirrors.");
  step(["id", "pkgs/hello", "lib/greet"]);
  say("Atom URIs name an atom anywhere; aliases such as gh: expand to full URLs.");
  step(["uri", "gh:owner/repo::hello@2"]);

  say("Fetch one atom: only its commit (tree and blobs), checked out read-only in the cache. Nothing else is fetched.");
  step(["fetch", "../remote.git::hello@^2"]);
  say("The cache holds that one commit and no history:");
  show("git", ["--git-dir", join(base, "cache/git"), "rev-list", "--all"]);
  say("An exact version already fetched needs no network at all:");
  step(["fetch", "../remote.git::hello@=2.12.2"]);
  say("Verify every atom: each commit rebuilt byte for byte from its origin (fetched tree-only), manifests, ids, history.");
  step(["verify", "origin", "--deep"]);
  say("The signed version: real git accepts the signature, and cpr checks it and the BLAKE3 digest of the content.");
  show("git", ["-c", `gpg.ssh.allowedSignersFile=${allowed}`, "verify-tag", "refs/eka/meta/hello/2.12.2/sig"], remote);
  step(["verify", "origin", "hello@2.12.2", "--trust", allowed]);
  say("Requiring signatures for every atom fails for those published unsigned:");
  step(["verify", "origin", "cowsay", "--trust", allowed], { expectFail: true });

  dependencyDemo();
  await registryDemo();

  process.stdout.write(`\nDemo finished. Everything it made is in ${base}.\n`);
}

/**
 * Dependencies across two sets (issue 3): a second repository holding the atom `app` depends on `hello` from the
 * demo set's remote; `cpr add` records it and locks the whole graph (hello's own dependency on greet comes from its
 * published manifest blob), then `cpr tree` and `cpr why` read the lock with no network.
 */
function dependencyDemo(): void {
  const appRepo = join(base, "app-set");
  const appDir = join(appRepo, "app");
  mkdirSync(appDir, { recursive: true });
  writeFileSync(join(appDir, "atom.toml"), '[package]\nlabel = "app"\nversion = "0.1.0"\n\n[compose.as]\nnix = "default.nix"\n');
  writeFileSync(join(appDir, "default.nix"), "{ }\n");
  quiet("git", ["init", "-q", "-b", "main"], appRepo);
  quiet("git", ["add", "-A"], appRepo);
  quiet("git", ["commit", "-q", "-m", "app"], appRepo);
  // No locker configuration: the lock names the default Nix locker (nix-lock 0.1.6, docs/formats.md §11.9) at its published
  // rev, which cpr knows without asking the network.
  const depEnv = env;
  const run = (args: string[]) => {
    process.stdout.write(`\n${bold(`$ cpr ${args.join(" ")}`)}\n`);
    const r = spawnSync(process.execPath, [cpr, ...args], { cwd: appDir, env: depEnv, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw new Error(`demo step 'cpr ${args.join(" ")}' exited ${r.status}`);
  };
  say(
    `Another set (${appRepo}) depends on hello from the demo set: add records the set and ^<resolved> in atom.toml, and locks the whole graph.`,
  );
  run(["add", "../../remote.git::hello", "--set", "demo"]);
  show("cat", ["atom.toml"], appDir);
  say(
    "hello's own dependency (greet) came from its published manifest blob, fetched alone into the cache. The lock already satisfies the manifest, so this opens no connection:",
  );
  run(["resolve", "--locked"]);
  say("The locked graph, and why greet is in it (no network):");
  run(["tree"]);
  run(["why", "greet"]);
}

/** Nix settings for the registry demo, added to the user's own (NIX_CONFIG): the demo atoms build with the host's
 * /bin/sh, so outside the sandbox; a root without the nixbld group builds as itself; there is no network, so no
 * substituter but ours (which cpr get passes itself). */
function demoNixConfig(): string {
  const lines = ["sandbox = false", "substituters =", "experimental-features = nix-command"];
  const group = spawnSync("getent", ["group", "nixbld"], { encoding: "utf8" });
  if (group.status !== 0) lines.push("build-users-group =");
  return [process.env.NIX_CONFIG ?? "", ...lines].filter(Boolean).join("\n");
}

/**
 * The registry (issue 5): `cpr serve` on SQLite indexes the demo set, `cpr build --push` builds hello with Nix and
 * uploads it, then the local output is deleted and `cpr get` brings it back from the registry's binary cache, with
 * no evaluation. Skipped, with how to install Nix, when Nix is not installed.
 */
async function registryDemo(): Promise<void> {
  const hasNix = ["nix-store", "nix-instantiate"].every((t) => spawnSync(t, ["--version"], { stdio: "ignore" }).status === 0);
  if (!hasNix) {
    say("Skipping the registry part: it builds with Nix, which is not installed. Install it (Debian/Ubuntu:");
    process.stdout.write("#   sudo apt-get install nix-bin; elsewhere: https://nixos.org/download) and run npm run demo again.\n");
    return;
  }
  const nixEnv = { ...env, NIX_CONFIG: demoNixConfig() };
  const data = join(base, "registry");
  const cprIn = (cwd: string, args: string[], opts: { capture?: boolean } = {}): string => {
    process.stdout.write(`\n${bold(`$ cpr ${args.join(" ")}`)}\n`);
    const r = spawnSync(process.execPath, [cpr, ...args], {
      cwd,
      env: nixEnv,
      encoding: "utf8",
      stdio: ["ignore", opts.capture ? "pipe" : "inherit", "inherit"],
    });
    if (r.status !== 0) throw new Error(`demo step 'cpr ${args.join(" ")}' exited ${r.status}`);
    if (opts.capture) process.stdout.write(r.stdout);
    return (r.stdout ?? "").trim();
  };

  say(`Start a registry on SQLite (data in ${data}) that indexes the demo set; port 0 picks a free port.`);
  process.stdout.write(`\n${bold(`$ cpr serve --data ${data} --listen 127.0.0.1:0 --set ${remote} --json &`)}\n`);
  const server = spawn(process.execPath, [cpr, "serve", "--data", data, "--listen", "127.0.0.1:0", "--set", remote, "--json"], {
    cwd: work,
    env: nixEnv,
    stdio: ["ignore", "pipe", "ignore"],
  });
  try {
    const ready = await new Promise<{ listening: string; publicKey: string }>((res, rej) => {
      let buf = "";
      server.stdout!.on("data", (d: Buffer) => {
        buf += d.toString("utf8");
        const nl = buf.indexOf("\n");
        if (nl >= 0) res(JSON.parse(buf.slice(0, nl)) as { listening: string; publicKey: string });
      });
      server.once("exit", (code) => rej(new Error(`cpr serve exited ${code} before listening`)));
    });
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    const url = ready.listening;
    const root = quiet("git", ["rev-list", "--max-parents=0", "HEAD"]);
    say("A write token for the demo set (scoped to its root), and the registry's public key, which clients trust:");
    const token = cprIn(work, ["registry", "token", "create", "--data", data, "--set", root, "--note", "demo"], { capture: true });
    const key = cprIn(work, ["registry", "key", "--data", data], { capture: true });

    say("Build hello with Nix from its published atom, evaluated as its locker (nix-lock) would: hello's value is its");
    process.stdout.write(
      "# default.nix, with greet's value in scope as atoms.deps.from.demo.greet. Upload the closure, record the build:\n",
    );
    const built = JSON.parse(
      cprIn(work, ["build", "../remote.git::hello", "--push", url, "--token", token, "--json"], { capture: true }),
    ) as {
      outputs: Record<string, string>;
    };
    const out = built.outputs.out!;
    say("Anyone can now search the registry by name, and resolve a version to its build:");
    cprIn(work, ["search", "hello", "--registry", url]);

    say("Delete the local output, as on a machine that never built it:");
    process.stdout.write(`\n${bold(`$ nix-store --delete ${out}`)}\n`);
    const deleted =
      spawnSync("nix-store", ["--delete", out], { cwd: work, env: nixEnv, stdio: ["ignore", "inherit", "inherit"] }).status === 0;
    const getDir = join(base, "get");
    mkdirSync(getDir, { recursive: true });
    if (deleted) {
      say(
        "cpr get finds hello's newest build and substitutes it from the registry's binary cache, checking the signature; no Nix evaluation runs:",
      );
      cprIn(getDir, ["get", "hello", "--registry", url, "--key", key]);
      show("cat", [join(getDir, "result")], getDir);
    } else {
      // Another GC root on this machine (say, the demo of another checkout) keeps it alive: get it into a store of
      // its own instead, which has never seen it.
      const store = join(base, "store");
      say(`Another GC root keeps that path alive, so cpr get installs it into a fresh store (${store}) instead; no Nix evaluation runs:`);
      cprIn(getDir, ["get", "hello", "--registry", url, "--key", key, "--store", store, "--no-out-link"]);
      show("cat", [join(store, out)], getDir);
    }
  } finally {
    server.kill("SIGTERM");
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
