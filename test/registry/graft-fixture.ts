/**
 * A published set for the graft tests (docs/grafts.md), built with real Nix:
 * - `y` 3.2.0, 3.3.0, 3.10.0 and 4.0.0: `$out/bin/y`, a script printing `y <version>`;
 * - `x` 1.0.0 (`y = "^3.2"`, locked to y 3.2.0): `$out/bin/x`, a script that runs y by its store path and prints its
 *   own path, and `$out/lib/x.bin`, a binary file embedding y's path and its own;
 *   `x` 1.0.1: the same, locked to y 3.3.0 (the rebuild a graft must equal);
 * - `xgz` 1.0.0 (`y = "^3.2"`, y 3.2.0): also a gzip file naming y's path;
 * - `xstatic` 1.0.0 (`y = "^3.2"`, y 3.2.0): reads y while building, keeps no reference to it (build-time only);
 * - `w` 1.0.0 (`x = "^1.0"`, locked to x 1.0.0 and so y 3.2.0): `$out/bin/w` runs x; y is an indirect dependency.
 * Derivation names carry no version of the dependent (cpr-x-<tag>), so x 1.0.0 and 1.0.1 differ only by y.
 */
import { join } from "node:path";
import { Cache } from "../../src/git/cache.js";
import { atomId } from "../../src/protocol/id.js";
import { defaultLocker, formatLock, type Lockfile } from "../../src/protocol/lock.js";
import { parseAtomUri } from "../../src/protocol/uri.js";
import { buildAtom, type BuildResult } from "../../src/build/build.js";
import { env, initTo, publishTo, resolveAtom } from "../publish/fixture.js";
import { atomToml, commitAll, makeBare, makeRepo, tempDir, writeFiles } from "../support/repo.js";
import { nixTestEnv } from "../support/nix.js";

const DEFAULT_LOCKER_REV = "e711aa1f48d877652dd2ba724d4af752be7b5371";

export const nixEnv = nixTestEnv(env);
export { env };

export interface GraftSet {
  readonly work: string;
  readonly remote: string;
  readonly root: string;
  readonly revs: Record<string, string>;
  readonly tag: string;
  /** Builds `label@=version` with real Nix (into the default store). */
  build(label: string, version: string): Promise<Omit<BuildResult, "expression">>;
}

const Y_NIX = (tag: string) => `derivation {
  name = "cpr-y-${tag}-\${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir -p $out/bin; printf '#!/bin/sh\\\\necho y ${"${cfg.package.version}"}\\\\n' > $out/bin/y; /bin/chmod +x $out/bin/y" ];
}
`;

const X_NIX = (tag: string, name: string, extra: string) => `let
  y = atoms.deps.from.home.y;
in
derivation {
  name = "cpr-${name}-${tag}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" ''
    /bin/mkdir -p $out/bin $out/lib
    printf '#!/bin/sh\\n%s/bin/y\\necho x at %s\\n' "\${y}" "$out" > $out/bin/x
    /bin/chmod +x $out/bin/x
    printf '\\001\\002\\000%s\\000\\377\\376%s\\000\\003' "\${y}" "$out" > $out/lib/x.bin
    ${extra}
  '' ];
}
`;

export async function graftSet(tag = "g"): Promise<GraftSet> {
  const work = makeRepo({ README: "graft set\n" });
  const remote = makeBare();
  const revs: Record<string, string> = {};
  const publish = async () => {
    const r = await publishTo(work, remote);
    for (const p of r.published) revs[`${p.label}@${p.version}`] = p.rev;
    if (r.failed.length) throw new Error(`publish failed: ${JSON.stringify(r.failed)}`);
  };
  const writeY = async (version: string) => {
    writeFiles(work, { "y/atom.toml": `${atomToml("y", version)}\n[compose.as]\nnix = "default.nix"\n`, "y/default.nix": Y_NIX(tag) });
    await resolveAtom(join(work, "y"));
    commitAll(work, `y ${version}`);
  };
  await writeY("3.2.0");
  const init = await initTo(work, remote);
  await publish();
  for (const v of ["3.3.0", "3.10.0", "4.0.0"]) {
    await writeY(v);
    await publish();
  }
  const writeX = (dir: string, label: string, version: string, yVersion: string, extra: string) => {
    const lock: Lockfile = {
      version: 1,
      sets: { [init.root]: { tag: "home", mirrors: [remote] } },
      locker: defaultLocker(DEFAULT_LOCKER_REV),
      compose: { use: "nix", entry: "default.nix" },
      deps: [
        {
          type: "atom",
          label: "y",
          version: yVersion,
          set: init.root,
          rev: revs[`y@${yVersion}`]!,
          mirror: remote,
          id: atomId(init.root, "y"),
        },
      ],
    };
    writeFiles(work, {
      [`${dir}/atom.toml`]: `${atomToml(label, version)}
[package.sets]
home = "${remote}"

[compose.as]
nix = "default.nix"

[deps.from.home]
y = "^3.2"
`,
      [`${dir}/atom.lock`]: formatLock(lock),
      [`${dir}/default.nix`]: X_NIX(tag, label, extra),
    });
  };
  writeX("x", "x", "1.0.0", "3.2.0", "");
  writeX("xgz", "xgz", "1.0.0", "3.2.0", `printf '%s\\n' "\${y}" | /bin/gzip -n > $out/lib/y.gz`);
  // Build-time only: reads y's script, keeps its text but not its path.
  writeX("xstatic", "xstatic", "1.0.0", "3.2.0", `/bin/sh \${y}/bin/y > $out/lib/y-version; /bin/rm -rf $out/bin/x $out/lib/x.bin`);
  commitAll(work, "x 1.0.0");
  await publish();
  const wLock: Lockfile = {
    version: 1,
    sets: { [init.root]: { tag: "home", mirrors: [remote] } },
    locker: defaultLocker(DEFAULT_LOCKER_REV),
    compose: { use: "nix", entry: "default.nix" },
    deps: (["x@1.0.0", "y@3.2.0"] as const).map((k) => {
      const [label, version] = k.split("@") as [string, string];
      return { type: "atom" as const, label, version, set: init.root, rev: revs[k]!, mirror: remote, id: atomId(init.root, label) };
    }),
  };
  writeFiles(work, {
    "w/atom.toml": `${atomToml("w", "1.0.0")}
[package.sets]
home = "${remote}"

[compose.as]
nix = "default.nix"

[deps.from.home]
x = "^1.0"
`,
    "w/atom.lock": formatLock(wLock),
    "w/default.nix": `let
  x = atoms.deps.from.home.x;
in
derivation {
  name = "cpr-w-${tag}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" ''
    /bin/mkdir -p $out/bin
    printf '#!/bin/sh\\nexec /bin/sh %s/bin/x\\n' "\${x}" > $out/bin/w
  '' ];
}
`,
  });
  commitAll(work, "w 1.0.0");
  await publish();
  writeX("x", "x", "1.0.1", "3.3.0", "");
  commitAll(work, "x 1.0.1");
  await publish();

  const build = async (label: string, version: string) => {
    const cache = await Cache.open({ dir: tempDir("cpr-cache-"), env: nixEnv });
    try {
      return await buildAtom({ cache, cwd: work, env: nixEnv, nix: { env: nixEnv } }, parseAtomUri(`${remote}::${label}@=${version}`));
    } finally {
      cache.close();
    }
  };
  return { work, remote, root: init.root, revs, tag, build };
}
