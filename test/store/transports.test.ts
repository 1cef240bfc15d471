import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fetchAtom, fetchLock } from "../../src/store/fetch.js";
import { verifyRemote } from "../../src/store/verify.js";
import { parseAtomUri, parseGitUrl } from "../../src/protocol/uri.js";
import { atomId } from "../../src/protocol/id.js";
import { gitIn, tempDir } from "../support/repo.js";
import { startGitDaemon, startHttpBackend, startSshd, type TestServer } from "../support/servers.js";
import { needTools } from "../support/tools.js";
import { allObjects, env, newCache, publishedSet, sshKey } from "./fixture.js";

/** fetch and verify end to end over git://, smart HTTP and ssh against real servers on loopback. */

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function roundTrip<S extends TestServer>(
  start: (base: string) => Promise<S>,
  opts: { allowFilter: boolean; extraEnv?: (s: S) => NodeJS.ProcessEnv },
) {
  const base = tempDir("cpr-served-");
  gitIn(base, "init", "-q", "--bare", "set.git");
  if (opts.allowFilter) gitIn(join(base, "set.git"), "config", "uploadpack.allowFilter", "true");
  const server = await start(base);
  servers.push(server);
  const url = server.url("set.git");
  const runEnv = { ...env, ...(opts.extraEnv?.(server) ?? {}) };
  const signer = sshKey("ci@example.org");
  const set = await publishedSet({ remote: url, extraEnv: opts.extraEnv?.(server), sign: signer.key });
  const cache = await newCache();
  try {
    const ctx = { cache, cwd: set.work, env: runEnv };
    const a = await fetchAtom(ctx, parseAtomUri(`${url}::a@^0.2`));
    assert.equal(a.rev, set.revs["a@0.2.0"]);
    assert.equal(a.id, atomId(set.root, "a"));
    assert.equal(readFileSync(join(a.path, "default.nix"), "utf8"), "{ a = 2; }\n");
    assert.deepEqual(gitIn(cache.gitDir, "rev-list", "--all").split("\n"), [a.rev], "only the atom commit, no origin history");
    assert.equal(allObjects(cache.gitDir).filter((o) => o.endsWith(" commit")).length, 1);
    assert.ok(!existsSync(join(cache.gitDir, "shallow")));

    const lock = {
      version: 1 as const,
      sets: { [set.root]: { tag: "s", mirrors: [url] } },
      locker: null,
      compose: { use: "static" as const },
      deps: (["a@0.1.0", "b@2.0.0"] as const).map((k) => {
        const [label, version] = k.split("@") as [string, string];
        return { type: "atom" as const, label, version, set: set.root, rev: set.revs[k]!, mirror: url, id: atomId(set.root, label) };
      }),
    };
    const r = await fetchLock(ctx, lock);
    assert.deepEqual(r.failed, []);
    assert.equal(r.fetched.length, 2);

    const reports = await verifyRemote(parseGitUrl(url), [], { cache, cwd: set.work, env: runEnv, deep: true, trust: signer.allowed });
    assert.deepEqual(
      reports.map((x) => [x.label, x.version, x.status, x.problems]),
      [
        ["a", "0.1.0", "ok", []],
        ["a", "0.2.0", "ok", []],
        ["b", "2.0.0", "ok", []],
      ],
    );
    const filterNote = reports.some((x) => x.notes.some((n) => n.includes("does not allow filters")));
    assert.equal(filterNote, !opts.allowFilter, reports.flatMap((x) => x.notes).join("\n"));
  } finally {
    cache.close();
  }
}

test("git:// (git daemon, no uploadpack.allowFilter: verify falls back and says so)", async (t) => {
  if (!needTools(t, "git-daemon", "ssh-keygen")) return;
  await roundTrip(startGitDaemon, { allowFilter: false });
});

test("http:// (lighttpd + git http-backend)", async (t) => {
  if (!needTools(t, "lighttpd", "git-http-backend", "ssh-keygen")) return;
  await roundTrip((base) => startHttpBackend(base), { allowFilter: true });
});

test("ssh:// (sshd on loopback)", async (t) => {
  if (!needTools(t, "sshd", "ssh", "ssh-keygen")) return;
  await roundTrip((base) => startSshd(base), { allowFilter: true, extraEnv: (s) => ({ GIT_SSH_COMMAND: s.sshCommand }) });
});
