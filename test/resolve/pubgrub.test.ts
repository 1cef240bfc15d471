import { test } from "node:test";
import assert from "node:assert/strict";
import { CprError, describeError } from "../../src/protocol/errors.js";
import { parseRequirement } from "../../src/protocol/requirement.js";
import { VersionSet } from "../../src/protocol/version-set.js";
import { makeVersion, parseVersion, type Version } from "../../src/protocol/version.js";
import { ResolutionError, solve, type Provider, type Solution } from "../../src/resolve/pubgrub.js";
import { seededRandom } from "../support/random.js";

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
      versions.set(
        parseVersion(version).text,
        new Map(Object.entries(deps).map(([d, r]) => [d, VersionSet.fromRequirement(parseRequirement(r))])),
      );
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
  includes(
    err.hint ?? "",
    "relax root's requirement on foo ^1 or baz ^1",
    "update foo or bar to versions whose requirements agree (every version of foo depends on bar ^2; every version of bar depends on baz ^3)",
  );
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

// --- The example and other failures -------------------------------------------------------------------

test("the issue's example: two requirements that disagree through a shared dependency", async () => {
  const err = await failure({
    "root 1.0.0": { foo: "^1", bar: "^2" },
    "foo 1.0.0": { baz: "^1" },
    "foo 1.1.0": { baz: "^1" },
    "foo 2.0.0": { baz: "^2" },
    "bar 1.0.0": { baz: "^1" },
    "bar 2.0.0": { baz: "^2" },
    "baz 1.0.0": {},
    "baz 2.0.0": {},
  });
  includes(
    err.explanation,
    "Because bar >=2.0.0 depends on baz ^2 and foo <2.0.0 depends on baz ^1, bar >=2.0.0 is incompatible with foo <2.0.0.",
    "So, because root depends on both foo ^1 and bar ^2, version solving failed.",
  );
  includes(
    err.hint ?? "",
    "To fix this, change one of:",
    "relax root's requirement on foo ^1 or bar ^2",
    "update bar or foo to versions whose requirements agree",
  );
  assert.ok(err.message.startsWith("version solving failed:\n"));
  assert.ok(err instanceof CprError);
  assert.equal(err.code, "resolve.conflict");
  includes(describeError(err), "version solving failed:\nBecause", "\n  hint: To fix this, change one of:\n  - relax");
});

test("a package with no versions at all", async () => {
  const err = await failure({ "root 1.0.0": { ghost: "^1" } });
  includes(err.explanation, "Because root depends on ghost ^1 which doesn't exist, version solving failed.");
  includes(err.hint ?? "", "check the name and location of ghost");
});

test("no version matches a requirement", async () => {
  const err = await failure({ "root 1.0.0": { foo: "^1" }, "foo 1.0.0": { baz: "^3" }, "baz 1.0.0": {}, "baz 2.0.0": {} });
  includes(err.explanation, "every version of foo depends on baz ^3 which doesn't match any versions", "version solving failed.");
  includes(err.hint ?? "", "publish a version of baz matching ^3");
});

test("a missing dependency deep down is explained along the chain", async () => {
  // root → a → b → c → missing: one sentence naming every link.
  const err = await failure({
    "root 1.0.0": { a: "^1" },
    "a 1.0.0": { b: "^1" },
    "b 1.0.0": { c: "^1" },
    "c 1.0.0": { missing: "^0.3" },
  });
  includes(err.explanation, "no versions of missing exist", "version solving failed.");
  for (const name of ["a", "b", "c", "missing"]) includes(err.explanation, name);
  includes(err.hint ?? "", "check the name and location of missing");
});

test("a missing dependency is avoided by an older version", async () => {
  const s = await run({
    "root 1.0.0": { a: "^1" },
    "a 1.0.0": {},
    "a 1.1.0": { gone: "^1" },
  });
  assert.deepEqual(picked(s), { a: "1.0.0", root: "1.0.0" });
});

// --- Successes ------------------------------------------------------------------------------------------------

test("a diamond unifies on one version", async () => {
  const s = await run({
    "root 1.0.0": { left: "^1", right: "^1" },
    "left 1.0.0": { shared: ">=1.0.0, <1.5.0" },
    "right 1.0.0": { shared: "^1.2" },
    "shared 1.0.0": {},
    "shared 1.2.0": {},
    "shared 1.4.9": {},
    "shared 1.5.0": {},
    "shared 2.0.0": {},
  });
  assert.deepEqual(picked(s), { left: "1.0.0", right: "1.0.0", root: "1.0.0", shared: "1.4.9" });
});

test("a diamond that needs backtracking to an older version of one side", async () => {
  const s = await run({
    "root 1.0.0": { left: "^1", right: "^1" },
    "left 1.0.0": { shared: "^1" },
    "left 1.1.0": { shared: "^2" },
    "right 1.0.0": { shared: "^1" },
    "shared 1.0.0": {},
    "shared 2.0.0": {},
  });
  assert.deepEqual(picked(s), { left: "1.0.0", right: "1.0.0", root: "1.0.0", shared: "1.0.0" });
});

test("pre-releases are chosen only when a requirement names one (Cargo's rule)", async () => {
  const registry: Registry = {
    "root 1.0.0": { foo: "^1" },
    "foo 1.0.0": {},
    "foo 1.1.0-rc.1": {},
  };
  assert.deepEqual(picked(await run(registry)), { foo: "1.0.0", root: "1.0.0" });
  registry["root 1.0.0"] = { foo: "^1.1.0-rc.1" };
  assert.deepEqual(picked(await run(registry)), { foo: "1.1.0-rc.1", root: "1.0.0" });
  registry["foo 1.1.0"] = {};
  assert.deepEqual(picked(await run(registry)), { foo: "1.1.0", root: "1.0.0" });
  // A pre-release is never pulled in through `*` or another package's plain requirement.
  const err = await failure({ "root 1.0.0": { foo: "*" }, "foo 2.0.0-beta.1": {} });
  includes(err.explanation, "root depends on foo * which doesn't match any versions");
  const err2 = await failure({ "root 1.0.0": { foo: "^2.0.0-beta.1" }, "foo 2.0.0-beta.1": { bar: "^1.0.0-rc.2" }, "bar 1.0.0-rc.1": {} });
  includes(err2.explanation, "bar ^1.0.0-rc.2");
});

test("preferred (locked) versions are kept while allowed, else the newest allowed is taken", async () => {
  const registry: Registry = {
    "root 1.0.0": { foo: "^1", bar: "^1" },
    "foo 1.0.0": {},
    "foo 1.1.0": {},
    "foo 1.2.0": {},
    "bar 1.0.0": {},
    "bar 1.3.0": {},
  };
  assert.deepEqual(picked(await run(registry, { locked: { foo: "1.1.0", bar: "0.9.0" } })), { bar: "1.3.0", foo: "1.1.0", root: "1.0.0" });
  assert.deepEqual(picked(await run(registry)), { bar: "1.3.0", foo: "1.2.0", root: "1.0.0" });
  // A locked version that a new requirement rules out is moved, the others stay.
  registry["root 1.0.0"] = { foo: ">=1.2", bar: "^1" };
  assert.deepEqual(picked(await run(registry, { locked: { foo: "1.1.0", bar: "1.0.0" } })), { bar: "1.0.0", foo: "1.2.0", root: "1.0.0" });
});

test("a deep chain resolves and a conflict at its bottom names the whole chain", async () => {
  const registry: Registry = { "root 1.0.0": { p0: "^1", leaf: "^1" }, "leaf 1.0.0": {}, "leaf 2.0.0": {} };
  const depth = 40;
  for (let i = 0; i < depth; i++) registry[`p${i} 1.0.0`] = i === depth - 1 ? { leaf: "^1" } : { [`p${i + 1}`]: "^1" };
  const s = await run(registry);
  assert.equal(s.versions.size, depth + 2);
  registry[`p${depth - 1} 1.0.0`] = { leaf: "^2" };
  const err = await failure(registry);
  includes(
    err.explanation,
    "Because every version of p0 depends on p1 ^1,\n  which depends on p2 ^1,\n",
    `  which depends on p${depth - 1} ^1,\n  which depends on leaf ^2,\nevery version of p0 requires leaf ^2.\n`,
    "So, because root depends on both p0 ^1 and leaf ^1, version solving failed.",
  );
  for (let i = 2; i < depth; i++) includes(err.explanation, `which depends on p${i} ^1,\n`);
  includes(
    err.hint ?? "",
    "relax root's requirement on p0 ^1 or leaf ^1",
    "update p0, p1, p2, p3, p4, p5, p6 or 33 others to versions",
    "and 35 more)",
  );
});

test("a dependency back on the root must allow the root's version", async () => {
  const err = await failure({ "root 1.0.0": { plugin: "^1" }, "plugin 1.0.0": { root: "^2" } });
  includes(err.explanation, "Because every version of plugin depends on root ^2", "version solving failed.");
  const s = await run({ "root 1.0.0": { plugin: "^1" }, "plugin 1.0.0": { root: "^1" } });
  assert.deepEqual(picked(s), { plugin: "1.0.0", root: "1.0.0" });
});

test("cycles between packages are fine", async () => {
  const s = await run({ "root 1.0.0": { a: "^1" }, "a 1.0.0": { b: "^1" }, "b 1.0.0": { a: "^1" } });
  assert.deepEqual(picked(s), { a: "1.0.0", b: "1.0.0", root: "1.0.0" });
});

test("performance sanity: 300 packages × 10 versions with shared dependencies", async () => {
  const registry: Registry = { "root 1.0.0": {} };
  const n = 300;
  for (let i = 0; i < 30; i++) registry["root 1.0.0"]![`p${i * 10}`] = "^1";
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 10; k++) {
      const deps: Record<string, string> = {};
      // Each package depends on a few later ones; newer versions need newer minors, which forces some search.
      for (const j of [i + 1, i + 7, i + 31]) if (j < n) deps[`p${j}`] = k >= 8 ? `^1.${(k + j) % 5}` : "^1";
      registry[`p${i} 1.${k}.0`] = deps;
    }
  }
  const s = await run(registry);
  assert.equal(s.versions.get("root")!.text, "1.0.0");
  assert.ok(s.versions.size > 250, `only ${s.versions.size} packages`);
  // Every chosen version satisfies every requirement on it.
  const provider = new MemoryProvider(registry);
  for (const [pkg, version] of s.versions) {
    for (const [dep, set] of await provider.dependencies(pkg, version))
      assert.ok(set.contains(s.versions.get(dep)!), `${pkg} ${version.text} → ${dep}`);
  }
});

test("an asynchronous provider with random delays is queried in parallel and prefetch is called", async () => {
  const uniform = seededRandom(42);
  const random = (): number => uniform() * 5;
  const registry: Registry = { "root 1.0.0": {} };
  for (let i = 0; i < 12; i++) {
    registry["root 1.0.0"]![`d${i}`] = "^1";
    registry[`d${i} 1.0.0`] = { [`e${i}`]: "^1", [`e${(i + 1) % 12}`]: "^1" };
    registry[`d${i} 1.1.0`] = { [`e${i}`]: "^1" };
    registry[`e${i} 1.0.0`] = {};
  }
  const provider = new MemoryProvider(registry, { delay: random });
  const s = await solve(provider, "root", parseVersion("1.0.0"));
  assert.equal(s.versions.size, 25);
  assert.ok(provider.maxInFlight > 1, `at most ${provider.maxInFlight} call in flight`);
  assert.ok(provider.maxInFlight >= 6, `only ${provider.maxInFlight} calls in flight at once`);
  assert.deepEqual(
    new Set(provider.prefetched),
    new Set(
      Object.keys(registry)
        .map((k) => k.split(" ")[0])
        .filter((p) => p !== "root"),
    ),
  );
  // Each version list and manifest is fetched at most once per solve.
  assert.ok(provider.calls <= 12 * 2 + 12 + 12 * 2 + 1, `${provider.calls} calls`);
});

test("provider errors are not turned into explanations", async () => {
  const provider = new MemoryProvider({ "root 1.0.0": { foo: "^1" }, "foo 1.0.0": {} });
  provider.versions = async () => {
    throw new Error("mirror down");
  };
  await assert.rejects(solve(provider, "root", parseVersion("1.0.0")), /mirror down/);
});

test("display names come from the provider", async () => {
  const provider = new MemoryProvider({ "root 1.0.0": { "id:foo": "^1" }, "id:foo 1.0.0": {} });
  provider.name = (pkg) => (pkg === "root" ? "my-app" : `${pkg.slice(3)} (from gh:o/r)`);
  try {
    await solve(provider, "root", makeVersion(1, 0, 0));
  } catch {
    assert.fail("should solve");
  }
  provider.packages.get("id:foo")!.clear();
  const err = await solve(provider, "root", makeVersion(1, 0, 0)).then(
    () => assert.fail("expected a failure"),
    (e: unknown) => e as ResolutionError,
  );
  includes(err.explanation, "Because my-app depends on foo (from gh:o/r) ^1 which doesn't exist, version solving failed.");
});

// --- Randomised cross-check against brute force ---------------------------------------------------------------

/** Whether a registry has a solution, by exhaustive search over the packages reachable from the root. */
function bruteForce(registry: Registry): boolean {
  const provider = new MemoryProvider(registry);
  const names = [...provider.packages.keys()].filter((n) => n !== "root");
  const choice = new Map<string, string | null>();
  const depsOf = (pkg: string, v: string): ReadonlyMap<string, VersionSet> => provider.packages.get(pkg)!.get(v)!;
  const ok = (): boolean => {
    // Every selected package's deps are selected at an allowed version; unselected packages are unreachable.
    const selected = new Map<string, string>([["root", "1.0.0"]]);
    for (const [k, v] of choice) if (v !== null) selected.set(k, v);
    const reached = new Set<string>(["root"]);
    const queue = ["root"];
    while (queue.length > 0) {
      const p = queue.pop()!;
      for (const [dep, set] of depsOf(p, selected.get(p)!)) {
        const v = selected.get(dep);
        if (v === undefined || !set.contains(parseVersion(v))) return false;
        if (!reached.has(dep)) {
          reached.add(dep);
          queue.push(dep);
        }
      }
    }
    return reached.size === selected.size;
  };
  const search = (i: number): boolean => {
    if (i === names.length) return ok();
    const name = names[i]!;
    for (const v of [null, ...provider.packages.get(name)!.keys()]) {
      choice.set(name, v);
      if (search(i + 1)) return true;
    }
    return false;
  };
  return search(0);
}

test("randomised registries: solve succeeds exactly when a solution exists, and solutions are valid", async () => {
  const uniform = seededRandom(7);
  const rand = (n: number): number => Math.floor(uniform() * n);
  const reqs = ["^1", "^2", "^1.1", "~1.0", ">=1.1", "<2", "=1.0.0", "*", "^2.0.0-rc.1", ">=1.0.0, <1.1.0"];
  const versions = ["1.0.0", "1.1.0", "2.0.0", "2.0.0-rc.1", "1.2.0"];
  let failures = 0;
  for (let round = 0; round < 150; round++) {
    const registry: Registry = {};
    const names = ["a", "b", "c", "d", "e"];
    const dependsOn = (self: string): Record<string, string> => {
      const deps: Record<string, string> = {};
      for (const n of names) if (n !== self && rand(3) === 0) deps[n] = reqs[rand(reqs.length)]!;
      return deps;
    };
    registry["root 1.0.0"] = dependsOn("root");
    for (const n of names) for (const v of versions) if (rand(2) === 0) registry[`${n} ${v}`] = dependsOn(n);
    const exists = bruteForce(registry);
    const provider = new MemoryProvider(registry);
    try {
      const s = await solve(provider, "root", parseVersion("1.0.0"));
      assert.ok(exists, `solved an unsolvable registry ${JSON.stringify(registry)}`);
      for (const [pkg, version] of s.versions) {
        for (const [dep, set] of await provider.dependencies(pkg, version)) {
          assert.ok(
            s.versions.has(dep) && set.contains(s.versions.get(dep)!),
            `${pkg} ${version.text} → ${dep} in ${JSON.stringify(registry)}`,
          );
        }
      }
    } catch (err) {
      assert.ok(err instanceof ResolutionError, String(err));
      assert.ok(!exists, `failed on a solvable registry ${JSON.stringify(registry)}:\n${err.explanation}`);
      assert.ok(err.explanation.endsWith("version solving failed."), err.explanation);
      failures++;
    }
  }
  assert.ok(failures > 10 && failures < 140, `${failures} failures: the generator should give both outcomes`);
});
