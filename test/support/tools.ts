import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";

/**
 * Real-parts tests need real binaries (git daemon, lighttpd, sshd, nix…). On a machine without one, the test
 * reports itself skipped with the reason; under CI=true a missing tool is a failure, because .ci/run installs them.
 */
const cache = new Map<string, string | null>();

/** Absolute path of a tool, searching PATH plus the sbin/libexec places Debian uses; null when absent. */
export function findTool(name: string): string | null {
  if (cache.has(name)) return cache.get(name)!;
  let found: string | null = null;
  const extra = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/lib/git-core", "/usr/libexec/git-core"];
  for (const dir of [...(process.env.PATH ?? "").split(":"), ...extra]) {
    if (dir && existsSync(`${dir}/${name}`)) {
      found = `${dir}/${name}`;
      break;
    }
  }
  if (!found && (name === "git-http-backend" || name === "git-daemon")) {
    try {
      const execPath = execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim();
      if (existsSync(`${execPath}/${name}`)) found = `${execPath}/${name}`;
    } catch {
      /* no git */
    }
  }
  cache.set(name, found);
  return found;
}

export const inCI = process.env.CI === "true";

/**
 * Returns the tool paths, or skips the test (throws under CI) when one is missing. Use as
 * `const tools = needTools(t, "lighttpd", "git-http-backend"); if (!tools) return;`
 */
export function needTools<T extends string>(t: TestContext, ...names: T[]): Record<T, string> | null {
  const out = {} as Record<T, string>;
  const missing: string[] = [];
  for (const n of names) {
    const p = findTool(n);
    if (p) out[n] = p;
    else missing.push(n);
  }
  if (missing.length === 0) return out;
  const reason = `needs ${missing.join(", ")} (Debian: see .ci/run for the packages)`;
  if (inCI) throw new Error(`CI=true but a required tool is missing: ${reason}`);
  t.skip(reason);
  return null;
}
