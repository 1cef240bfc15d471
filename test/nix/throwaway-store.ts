/**
 * A throwaway Nix store for tests: real Nix 2.8 on a chroot store in a temp directory (`--store <dir>/s`, logical
 * store directory /nix/store), with a private HOME and cache, no build users and no substituters. Commands run as
 * whoever runs the tests (root in CI); a local store needs no daemon and no trust for `--import`.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NIX_TEST_CONFIG = "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command";

export interface ThrowawayStore {
  /** The temp directory (scratch files may go here). */
  readonly dir: string;
  /** The `--store` argument. */
  readonly store: string;
  /** Runs a Nix tool with `--store <store>` before `args`; returns trimmed stdout. */
  run(tool: string, args: readonly string[], input?: Uint8Array): string;
  /** Same, stdout as bytes. */
  bytes(tool: string, args: readonly string[], input?: Uint8Array): Buffer;
  /** Where a store path's files are on disk. */
  real(storePath: string): string;
  /** The NAR of a store path: `nix-store --dump` of its files on disk. */
  dump(storePath: string): Buffer;
  done(): void;
}

export function throwawayStore(prefix = "cpr-store-"): ThrowawayStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = join(dir, "s");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    XDG_CACHE_HOME: join(dir, "cache"),
    XDG_CONFIG_HOME: join(dir, "config"),
    NIX_CONFIG: NIX_TEST_CONFIG,
  };
  delete env.NIX_REMOTE;
  const exec = (tool: string, args: readonly string[], input?: Uint8Array): Buffer => {
    try {
      return execFileSync(tool, ["--store", store, ...args], {
        env,
        cwd: dir,
        input,
        maxBuffer: 512 * 1024 * 1024,
        stdio: [input ? "pipe" : "ignore", "pipe", "pipe"],
      });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`${tool} ${args.join(" ")} failed: ${err.stderr?.toString() || err.message}`);
    }
  };
  return {
    dir,
    store,
    run: (tool, args, input) => exec(tool, args, input).toString("utf8").trim(),
    bytes: exec,
    real: (p) => join(store, p),
    dump: (p) => exec("nix-store", ["--dump", join(store, p)]),
    done: () => {
      if (process.env.CPR_KEEP_TMP) return;
      try {
        execFileSync("chmod", ["-R", "u+w", dir], { stdio: "ignore" });
      } catch {
        /* best effort */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
