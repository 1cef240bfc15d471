import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { toSri } from "../../src/nix/hash.js";
import { atomId } from "../../src/protocol/id.js";
import { defaultLocker, formatLock, type Lockfile } from "../../src/protocol/lock.js";

/** The published rev of the default locker, nix-lock 0.1.6 (docs/formats.md §11.9). */
const DEFAULT_LOCKER_REV = "e711aa1f48d877652dd2ba724d4af752be7b5371";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { env, initTo, publishTo, resolveAtom } from "../publish/fixture.js";
import { nixTestEnv } from "../support/nix.js";

export { env };

/** The fixtures' git environment with the tests' Nix configuration (support/nix.ts). */
export const nixEnv = nixTestEnv(env);

/**
 * A published set of buildable atoms on a bare remote:
 * - `dep` 0.1.0: `[compose.as] nix`, a /bin/sh derivation reading a file of its tree (`./msg`), with the atom.lock
 *   `cpr resolve` writes (publish needs one, docs/formats.md §12);
 * - `hello` 0.1.0: depends on `dep` (`[deps.from.home]`) and on a direct Nix file (`[deps.direct.nix] note`), with a
 *   published atom.lock pinning both; its derivation references dep's output;
 * - `hello` 0.2.0 (same shape, never built by the tests), when `withNewer`; then each version of `more`, in order.
 * `tag` goes into the derivation names, so two fixtures with different tags give different store paths.
 */
export interface BuildableSet {
  readonly work: string;
  readonly remote: string;
  readonly root: string;
  readonly revs: Record<string, string>;
  /** The direct Nix dependency's file. */
  readonly note: string;
}

export async function buildableSet(
  opts: { tag?: string; withNewer?: boolean; readme?: string; more?: readonly string[]; mainProgram?: string } = {},
): Promise<BuildableSet> {
  const tag = opts.tag ?? "t";
  const work = makeRepo({ README: opts.readme ?? "buildable set\n" });
  const remote = makeBare();
  writeFiles(work, {
    "dep/atom.toml": `${atomToml("dep", "0.1.0")}\n[compose.as]\nnix = "default.nix"\n`,
    "dep/msg": `dep message ${tag}\n`,
    "dep/default.nix": `derivation {
  name = "cpr-dep-${tag}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "read line < \${./msg}; echo \\"$line\\" > $out" ];
}
`,
  });
  await resolveAtom(join(work, "dep"));
  commitAll(work, "dep");
  const init = await initTo(work, remote);
  const first = await publishTo(work, remote);
  const revs: Record<string, string> = {};
  for (const p of first.published) revs[`${p.label}@${p.version}`] = p.rev;
  if (!revs["dep@0.1.0"]) throw new Error(`publish failed: ${JSON.stringify(first.failed)}`);

  const noteDir = tempDir("cpr-note-");
  const note = join(noteDir, "note.txt");
  writeFileSync(note, `a note ${tag}\n`);
  const noteHash = toSri("sha256", createHash("sha256").update(`a note ${tag}\n`).digest());
  const writeHello = (version: string) => {
    const lock: Lockfile = {
      version: 1,
      sets: { [init.root]: { tag: "home", mirrors: [remote] } },
      locker: defaultLocker(DEFAULT_LOCKER_REV),
      compose: { use: "nix", entry: "default.nix" },
      deps: [
        {
          type: "atom",
          label: "dep",
          version: "0.1.0",
          set: init.root,
          rev: revs["dep@0.1.0"]!,
          mirror: remote,
          id: atomId(init.root, "dep"),
        },
        { type: "nix", name: "note", url: `file://${note}`, hash: noteHash },
      ],
    };
    writeFiles(work, {
      "hello/atom.toml": `${atomToml("hello", version)}
[package.meta]
description = "Says hello ${tag}"
tags = ["greeting"]

[package.sets]
home = "${remote}"

[compose.as]
nix = "default.nix"

[deps.from.home]
dep = "^0.1"

[deps.direct.nix]
note.url = "file://${note}"
`,
      "hello/atom.lock": formatLock(lock),
      "hello/greeting": `hello ${version}\n`,
      "hello/default.nix": `let
  dep = atoms.deps.from.home.dep;
  note = atoms.deps.pins.note.src;
in
derivation {
  name = "cpr-hello-${tag}-\${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "read a < \${./greeting}; read b < \${dep}; read c < \${note}; echo \\"$a|$b|$c|\${dep}\\" > $out" ];
}${opts.mainProgram ? ` // { meta.mainProgram = "${opts.mainProgram}"; }` : ""}
`,
    });
    commitAll(work, `hello ${version}`);
  };
  writeHello("0.1.0");
  const second = await publishTo(work, remote);
  for (const p of second.published) revs[`${p.label}@${p.version}`] = p.rev;
  if (opts.withNewer) {
    writeHello("0.2.0");
    const third = await publishTo(work, remote);
    for (const p of third.published) revs[`${p.label}@${p.version}`] = p.rev;
  }
  for (const v of opts.more ?? []) {
    writeHello(v);
    const r = await publishTo(work, remote);
    for (const p of r.published) revs[`${p.label}@${p.version}`] = p.rev;
    if (!revs[`hello@${v}`]) throw new Error(`publish failed: ${JSON.stringify(r.failed)}`);
  }
  if (!revs["hello@0.1.0"] || (opts.withNewer && !revs["hello@0.2.0"])) throw new Error(`publish failed: ${JSON.stringify(second.failed)}`);
  return { work, remote, root: init.root, revs, note };
}
