import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { CprError } from "../../src/protocol/errors.js";
import { recordingReporter } from "../../src/protocol/report.js";
import { encodeLine, FLUSH_PKT } from "../../src/git/pktline.js";
import { Connections, newStats } from "../../src/resolve/connections.js";
import { ListingCache } from "../../src/resolve/cache.js";
import { MirroredSet } from "../../src/resolve/mirrors.js";
import { isNudge, startGitDaemon, startScriptedDaemon, type ScriptStep, type TestServer } from "../support/servers.js";
import { needTools } from "../support/tools.js";
import { gitIn, tempDir } from "../support/repo.js";
import { isolatedEnv, lock, makeProject, makeSet, versionsOf } from "./fixture.js";

/**
 * Mirrors as the resolver sees them: what counts as a mirror's answer. A listing is an answer only when it is
 * complete and answers the request it was read for; anything else is a transport failure (tried once more on a
 * fresh connection), never "not an initialized atom set", which only a complete, matching listing can show.
 */

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const NOT_INITIALIZED = /not an initialized atom set/;

/** A MirroredSet over `mirrors` with its own connections and an empty cache, always listing over the network. */
function remoteSet(mirrors: readonly string[]) {
  const reporter = recordingReporter();
  const stats = newStats();
  const connections = new Connections({ env: process.env, cwd: process.cwd(), reporter, stats });
  const set = new MirroredSet(mirrors, {
    cache: new ListingCache(tempDir("cpr-listings-"), 300),
    stats,
    connections,
    reporter,
    env: process.env,
    cwd: process.cwd(),
    offline: false,
    refresh: true,
  });
  return { set, reporter, stats, connections };
}

/**
 * Busy processes, one per core (2 to 4), for at most `ms`: each spins in bursts of 3 ms with 3 ms pauses, which
 * keeps the cores busy and jitters the scheduling of everything else, as on a loaded machine. `stop()` ends them.
 */
function cpuLoad(ms: number): { stop: () => void } {
  const kids: ChildProcess[] = [];
  const n = Math.min(Math.max(availableParallelism(), 2), 4);
  const script = `const end = Date.now() + ${ms}; (function burst() { const t = Date.now() + 3; while (Date.now() < t) {} if (Date.now() < end) setTimeout(burst, 3); })();`;
  for (let i = 0; i < n; i++) kids.push(spawn(process.execPath, ["-e", script], { stdio: "ignore" }));
  return {
    stop: () => {
      for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill("SIGKILL");
    },
  };
}

/** `n` more versions 1.0.<i> of `label` (atom refs only, at the set's root commit), so that its listing is long. */
function addFillers(dir: string, label: string, n: number): void {
  const root = gitIn(dir, "rev-parse", "refs/ekala/init");
  const lines = Array.from({ length: n }, (_, i) => `create refs/eka/atoms/${label}/1.0.${i} ${root}`);
  execFileSync("git", ["update-ref", "--stdin"], { cwd: dir, input: lines.join("\n") + "\n" });
}

test("under CPU load, right after a git daemon restart, a healthy set is never reported uninitialized", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  const base = tempDir("cpr-served-");
  const first = await startGitDaemon(base);
  servers.push(first);
  const url = first.url("s.git");
  // A chain a → b → c → d in one set, each label with 301 versions: long listings come in several pieces, which is
  // when the client nudges (lsrefs.ts), and each listing reuses the connection of the one before.
  const setDir = join(base, "s.git");
  const root = makeSet(
    setDir,
    {
      a: { "1.5.0": { sets: { s: url }, deps: { s: { b: "^1" } } } },
      b: { "1.5.0": { sets: { s: url }, deps: { s: { c: "^1" } } } },
      c: { "1.5.0": { sets: { s: url }, deps: { s: { d: "^1" } } } },
      d: { "1.5.0": {} },
    },
    "s",
  );
  const labels = ["a", "b", "c", "d"];
  for (const label of labels) addFillers(setDir, label, 300);
  gitIn(setDir, "pack-refs", "--all");
  const project = makeProject({ sets: { s: url }, deps: { s: { a: "^1" } } });

  // Restarted (same port, so the same URLs) just before the runs.
  await first.stop();
  const server = await startGitDaemon(base, { port: first.port });
  servers.push(server);

  const reports: string[] = [];
  let listings = 0;
  let listed = 0;
  let resolves = 0;
  let resolved = 0;
  const load = cpuLoad(120_000);
  try {
    // Listings, as the resolver makes them: the four labels one after the other on one connection; 150 rounds at most.
    const until = Date.now() + 45_000;
    for (let round = 0; round < 150 && Date.now() < until; round++) {
      const { set, reporter, connections } = remoteSet([url]);
      for (const label of labels) {
        listings++;
        try {
          const l = await set.list(label, "");
          assert.equal(l.root, root);
          assert.equal(l.atoms.length, 301, `${label}: every version listed`);
          listed++;
        } catch (e) {
          if (!(e instanceof CprError)) throw e;
          reports.push(`listing ${label}: ${e.code}: ${e.message}`);
        }
      }
      await connections.close();
      reports.push(...reporter.warnings);
    }
    // Whole resolves (a fresh cache each, nothing written): listings, manifest fetches and listings again.
    const resolveUntil = Date.now() + 30_000;
    while (resolves < 10 && Date.now() < resolveUntil) {
      resolves++;
      try {
        const run = await lock(project, isolatedEnv(), { dryRun: true });
        reports.push(...run.warnings);
        assert.deepEqual(versionsOf(run), { a: "1.5.0", b: "1.5.0", c: "1.5.0", d: "1.5.0" });
        resolved++;
      } catch (e) {
        if (!(e instanceof CprError)) throw e;
        reports.push(`resolve: ${e.code}: ${e.message}`);
      }
    }
  } finally {
    load.stop();
  }
  t.diagnostic(`${listed}/${listings} listings and ${resolved}/${resolves} resolves succeeded under load; ${reports.length} report(s)`);
  const wrong = reports.filter((r) => NOT_INITIALIZED.test(r));
  assert.deepEqual(
    wrong,
    [],
    `a healthy set was reported uninitialized ${wrong.length} time(s) in ${listings} listings and ${resolves} resolves`,
  );
  // Anything else that failed was a transport failure, said as such with the mirror's URL.
  for (const r of reports.filter((x) => !/resolve\.mirrors-down/.test(x)))
    assert.match(r, new RegExp(`${url.replace(/\./g, "\\.")}: transport failure: `), r);
  assert.ok(listed > 0 && resolved > 0);
});

test("a mirror whose listings are cut short is reported as a transport failure, never as uninitialized", async () => {
  const OID = "1".repeat(40);
  const cut: ScriptStep[] = [encodeLine(`${OID} refs/eka/atoms/d/1.0.0`), "close"];
  const bad = await startScriptedDaemon(() => cut);
  servers.push(bad);
  const { set, reporter, stats, connections } = remoteSet([bad.url("s.git")]);
  try {
    await assert.rejects(set.list("d", ""), (e: unknown) => e instanceof CprError && e.code === "resolve.mirrors-down");
  } finally {
    await connections.close();
  }
  assert.equal(stats.connections, 2, "tried once more on a fresh connection");
  assert.equal(reporter.warnings.length, 1);
  const w = reporter.warnings[0]!;
  assert.doesNotMatch(w, NOT_INITIALIZED);
  assert.match(
    w,
    new RegExp(
      `^mirror ${bad.url("s.git").replace(/\./g, "\\.")} did not answer, going on without it: .*transport failure: git daemon ended inside the ls-refs reply \\(after 1 ref`,
    ),
  );
});

test("only a complete listing that lacks refs/ekala/init says the set is not initialized", async () => {
  const OID = "1".repeat(40);
  const complete = await startScriptedDaemon((r) => (isNudge(r) ? [FLUSH_PKT] : [encodeLine(`${OID} refs/eka/atoms/d/1.0.0`), FLUSH_PKT]));
  servers.push(complete);
  const { set, reporter, connections } = remoteSet([complete.url("s.git")]);
  try {
    await assert.rejects(set.list("d", ""), (e: unknown) => e instanceof CprError && e.code === "resolve.mirrors-down");
  } finally {
    await connections.close();
  }
  assert.equal(complete.connections(), 1, "a complete answer is not asked again");
  assert.equal(reporter.warnings.length, 1);
  assert.match(reporter.warnings[0]!, NOT_INITIALIZED);
});

test("a mirror that fails once, then answers on a fresh connection, is not reported at all", async () => {
  const OID = "1".repeat(40);
  const flaky = await startScriptedDaemon((r) =>
    isNudge(r)
      ? [FLUSH_PKT]
      : [encodeLine(`${OID} refs/eka/atoms/d/1.0.0`), encodeLine(`${OID} refs/ekala/init`), r.connection === 0 ? "close" : FLUSH_PKT],
  );
  servers.push(flaky);
  const { set, reporter, connections } = remoteSet([flaky.url("s.git")]);
  try {
    const l = await set.list("d", "");
    assert.equal(l.root, OID);
    assert.deepEqual(
      l.atoms.map((a) => a.version),
      ["1.0.0"],
    );
  } finally {
    await connections.close();
  }
  assert.deepEqual(reporter.warnings, []);
  assert.equal(flaky.connections(), 2);
});
