/**
 * Helpers for checking cpr's Nix hashing against real Nix (Debian `nix-bin`). Nix runs against a throwaway chroot
 * store (`NIX_REMOTE=local?root=<tmp>`): no daemon, no writes to /nix, works as root (CI) or as a user.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nixTestEnv } from "../support/nix.js";
import { seededRandom } from "../support/random.js";

let store: string | null = null;

/** Environment for nix commands: a private store and cache, and the tests' Nix configuration (support/nix.ts). */
export function nixEnv(): NodeJS.ProcessEnv {
  if (store === null) {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "cpr-nix-store-")));
    store = dir;
    // Nix makes store paths read-only: give write permission back before removing (root needs no such help).
    process.on("exit", () => {
      if (process.env.CPR_KEEP_TMP) return;
      try {
        execFileSync("chmod", ["-R", "u+w", dir], { stdio: "ignore" });
      } catch {
        /* best effort */
      }
      rmSync(dir, { recursive: true, force: true });
    });
  }
  return nixTestEnv(process.env, {
    NIX_REMOTE: `local?root=${store}`,
    HOME: store,
    XDG_CACHE_HOME: join(store, "cache"),
    XDG_CONFIG_HOME: join(store, "config"),
  });
}

export function nix(tool: string, args: string[]): string {
  return execFileSync(tool, args, { env: nixEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** Asynchronous, for commands that talk to a server running in this process (a sync call would deadlock). */
export function nixAsync(tool: string, args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(tool, args, { env: nixEnv(), encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${tool} ${args.join(" ")} failed: ${stderr || err.message}`));
      else ok(stdout.trim());
    });
  });
}

export function nixBytes(tool: string, args: string[]): Buffer {
  return execFileSync(tool, args, { env: nixEnv(), maxBuffer: 256 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
}

/** Bytes of the given length from `rand`. */
export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/**
 * A hand-made tree covering the corner cases: nested and empty directories, executables, empty files, sizes that
 * are and are not multiples of 8, symlinks (relative, absolute, dangling, to a directory), unicode names whose UTF-8
 * byte order differs from JavaScript's UTF-16 order, names that are prefixes of each other, case differences.
 */
export function cornerTree(root: string): string {
  const d = join(root, "corner");
  mkdirSync(join(d, "nested/deeper/deepest"), { recursive: true });
  mkdirSync(join(d, "empty-dir"));
  mkdirSync(join(d, "nested/empty"));
  writeFileSync(join(d, "empty-file"), "");
  writeFileSync(join(d, "seven"), "1234567");
  writeFileSync(join(d, "eight"), "12345678");
  writeFileSync(join(d, "nine"), "123456789");
  writeFileSync(join(d, "nested/deeper/deepest/leaf.txt"), "leaf\n");
  writeFileSync(join(d, "run.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(d, "run.sh"), 0o755);
  writeFileSync(join(d, "exec-empty"), "");
  chmodSync(join(d, "exec-empty"), 0o700);
  writeFileSync(join(d, "group-exec-only"), "g");
  chmodSync(join(d, "group-exec-only"), 0o654);
  writeFileSync(join(d, "readonly"), "ro");
  chmodSync(join(d, "readonly"), 0o444);
  symlinkSync("nine", join(d, "link-rel"));
  symlinkSync("/etc/hostname", join(d, "link-abs"));
  symlinkSync("does/not/exist", join(d, "link-dangling"));
  symlinkSync("nested/deeper", join(d, "link-dir"));
  symlinkSync("1234567", join(d, "link-7chars"));
  symlinkSync("12345678", join(d, "link-8chars"));
  for (const name of ["a", "a.b", "a-b", "aa", "A", "B", "_", "~", "ünïcödé", "日本語", "\uff5e", "\u{1f600}", "e\u0301", "\u00e9"]) {
    writeFileSync(join(d, `n-${name}`), name);
  }
  writeFileSync(join(d, "big.bin"), randomBytes(seededRandom(7), 1024 * 1024 + 3));
  return d;
}

/** A pseudo-random tree: `count` nodes of every kind, seeded. */
export function randomTree(root: string, seed: number, count = 60): string {
  const rand = seededRandom(seed);
  const d = join(root, `random-${seed}`);
  mkdirSync(d);
  const dirs = [d];
  const alphabet = "abcXYZ019._-éß日🙂";
  const name = (): string => {
    const chars = [...alphabet];
    let s = "";
    const n = 1 + Math.floor(rand() * 8);
    for (let i = 0; i < n; i++) s += chars[Math.floor(rand() * chars.length)];
    return s === "." || s === ".." ? `${s}x` : s;
  };
  for (let i = 0; i < count; i++) {
    const parent = dirs[Math.floor(rand() * dirs.length)]!;
    const p = join(parent, `${name()}${i}`);
    const r = rand();
    if (r < 0.25) {
      mkdirSync(p);
      dirs.push(p);
    } else if (r < 0.35) {
      symlinkSync(name(), p);
    } else {
      writeFileSync(p, randomBytes(rand, Math.floor(rand() * 300)));
      if (rand() < 0.3) chmodSync(p, 0o755);
    }
  }
  return d;
}
