import { test } from "node:test";
import assert from "node:assert/strict";
import { makeVersion, parseRequirement, parseVersion, VersionSet, type Version } from "../../src/protocol/version.js";
import { ResolutionError, solve, type Provider, type Solution } from "../../src/resolve/pubgrub.js";

/** An in-memory registry: `{ "foo 1.0.0": { bar: "^1" } }`; the root is `root 1.0.0` unless given. */
type Registry = Record<string, Record<string, string>>;

interface Options {
  locked?: Record<string, string>;
  delay?: () => number;
}

class MemoryProvider implements Provider {
  readonly packages = new Map<string, Map<string, ReadonlyMap<string, VersionSet>>>();
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;
  prefetched: string[] = [];

  constructor(
    registry: Registry,
    private readonly opts: Options = {},
  ) {
    for (const [key, deps] of Object.entries(registry)) {
      const [name, version] = key.split(" ") as [string, string];
      let versions = this.packages.get(name);
      if (!versions) this.packages.set(name, (versions = new Map()));
      versions.set(parseVersion(version).text, new Map(Object.entries(deps).map(([d, r]) => [d, VersionSet.fromRequirement(parseRequirement(r))])));
    }
  }

  name(pkg: string): string {
    return pkg;
  }

  private async later<T>(value: () => T): Promise<T> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const ms = this.opts.delay?.() ?? 0;
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      else await Promise.resolve();
      return value();
    } finally {
      this.inFlight--;
    }
  }

  versions(pkg: string): Promise<readonly Version[]> {
    return this.later(() => [...(this.packages.get(pkg)?.keys() ?? [])].map(parseVersion));
  }

  dependencies(pkg: string, version: Version): Promise<ReadonlyMap<string, VersionSet>> {
    return this.later(() => {
      const deps = this.packages.get(pkg)?.get(version.text);
      if (!deps) throw new Error(`no ${pkg} ${version.text}`);
      return deps;
    });
  }

  preferred(pkg: string): Version | null {
    const v = this.opts.locked?.[pkg];
    return v === undefined ? null : parseVersion(v);
  }

  prefetch(pkgs: readonly string[]): void {
    this.prefetched.push(...pkgs);
  }
}

async function run(registry: Registry, opts: Options = {}): Promise<Solution> {
  return solve(new MemoryProvider(registry, opts), "root", parseVersion("1.0.0"));
}

function picked(solution: Solution): Record<string, string> {
  return Object.fromEntries([...solution.versions].map(([k, v]) => [k, v.text]).sort());
}

async function failure(registry: Registry, opts: Options = {}): Promise<ResolutionError> {
  try {
    const s = await run(registry, opts);
    assert.fail(`expected a failure, got ${JSON.stringify(picked(s))}`);
  } catch (err) {
    assert.ok(err instanceof ResolutionError, `expected a ResolutionError, got ${String(err)}`);
    return err;
  }
}

function includes(text: string, ...sentences: string[]): void {
  for (const s of sentences) assert.ok(text.includes(s), `expected ${JSON.stringify(s)} in:\n${text}`);
}

// --- The classic examples of pub's solver.md ------------------------------------------------------------------

test("no conflicts", async () => {
  const s = await run({
    "root 1.0.0": { foo: "^1.0.0" },
    "foo 1.0.0": { bar: "^1.0.0" },
    "bar 1.0.0": {},
    "bar 2.0.0": {},
  });
  assert.deepEqual(picked(s), { bar: "1.0.0", foo: "1.0.0", root: "1.0.0" });
});

test("avoiding a conflict during decision making", async () => {
  const s = await run({
    "root 1.0.0": { foo: "^1.0.0", bar: "^1.0.0" },
    "foo 1.1.0": { bar: "^2.0.0" },
    "foo 1.0.0": {},
    "bar 1.0.0": {},
    "bar 1.1.0": {},
    "bar 2.0.0": {},
  });
  assert.deepEqual(picked(s), { bar: "1.1.0", foo: "1.0.0", root: "1.0.0" });
});

test("performing conflict resolution", async () => {
  const s = await run({
    "root 1.0.0": { foo: ">=1.0.0" },
    "foo 2.0.0": { bar: "^1.0.0" },
    "foo 1.0.0": {},
    "bar 1.0.0": { foo: "^1.0.0" },
  });
  assert.deepEqual(picked(s), { foo: "1.0.0", root: "1.0.0" });
  assert.ok(s.stats.conflicts >= 1);
});

test("conflict resolution with a partial satisfier", async () => {
  const s = await run({
    "root 1.0.0": { foo: "^1.0.0", target: "^2.0.0" },
    "foo 1.1.0": { left: "^1.0.0", right: "^1.0.0" },
    "foo 1.0.0": {},
    "left 1.0.0": { shared: ">=1.0.0" },
    "right 1.0.0": { shared: "<2.0.0" },
    "shared 2.0.0": {},
    "shared 1.0.0": { target: "^1.0.0" },
    "target 2.0.0": {},
    "target 1.0.0": {},
  });
  assert.deepEqual(picked(s), { foo: "1.0.0", root: "1.0.0", target: "2.0.0" });
});

test("linear error reporting", async () => {
  const err = await failure({
    "root 1.0.0": { foo: "^1.0.0", baz: "^1.0.0" },
    "foo 1.0.0": { bar: "^2.0.0" },
    "bar 2.0.0": { baz: "^3.0.0" },
    "baz 1.0.0": {},
    "baz 3.0.0": {},
  });
  includes(
    err.explanation,
    "Because every version of foo depends on bar ^2 which depends on baz ^3, every version of foo requires baz ^3.",
    "So, because root depends on both foo ^1 and baz ^1, version solving failed.",
  );
  includes(err.hint, "relax root's requirement baz ^1", "relax root's requirement foo ^1");
});

test("branching error reporting", async () => {
  const err = await failure({
    "root 1.0.0": { foo: "^1.0.0" },
    "foo 1.0.0": { a: "^1.0.0", b: "^1.0.0" },
    "foo 1.1.0": { x: "^1.0.0", y: "^1.0.0" },
    "a 1.0.0": { b: "^2.0.0" },
    "b 1.0.0": {},
    "b 2.0.0": {},
    "x 1.0.0": { y: "^2.0.0" },
    "y 1.0.0": {},
    "y 2.0.0": {},
  });
  includes(
    err.explanation,
    "Because foo <1.1.0 depends on a ^1 which depends on b ^2, foo <1.1.0 requires b ^2.",
    "(1) So, because foo <1.1.0 depends on b ^1, foo <1.1.0 is forbidden.",
    "Because foo >=1.1.0 depends on x ^1 which depends on y ^2, foo >=1.1.0 requires y ^2.",
    "And because foo >=1.1.0 depends on y ^1, foo >=1.1.0 is forbidden.",
    "And because foo <1.1.0 is forbidden (1), every version of foo is forbidden.",
    "So, because root depends on foo ^1, version solving failed.",
  );
});
