import { after, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { listRemoteSet } from "../../src/git/remote-set.js";
import { parseGitUrl } from "../../src/protocol/uri.js";
import { atomToml, gitIn, makeRepo, refsOf, tempDir } from "../support/repo.js";
import { startGitDaemon, startHttpBackend, startSshd, type TestServer } from "../support/servers.js";
import { needTools } from "../support/tools.js";
import { env, fsckStrict, initTo, publishTo } from "./fixture.js";

/** End to end over the network transports: init, publish (one atomic push) and list (ls-refs) against real servers. */

const files = { "a/atom.toml": atomToml("a", "0.1.0"), "b/atom.toml": atomToml("b", "2.0.0"), "b/x.nix": "{ }\n" };
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function roundTrip<S extends TestServer>(start: (base: string) => Promise<S>, extraEnv: (s: S) => NodeJS.ProcessEnv = () => ({})) {
  const base = tempDir("cpr-served-");
  gitIn(base, "init", "-q", "--bare", "set.git");
  const server = await start(base);
  servers.push(server);
  const url = server.url("set.git");
  const runEnv = extraEnv(server);
  const dir = makeRepo(files);
  const init = await initTo(dir, url, runEnv);
  assert.equal(init.status, "initialized");
  const result = await publishTo(dir, url, { env: runEnv });
  assert.deepEqual(result.failed, []);
  assert.deepEqual(
    result.published.map((a) => a.label),
    ["a", "b"],
  );
  const { listing } = await listRemoteSet(parseGitUrl(url), undefined, { env: { ...env, ...runEnv } });
  assert.equal(listing.root, init.root);
  assert.deepEqual(
    listing.atoms.map((a) => [a.label, a.version, a.rev, a.origin]),
    result.published.map((a) => [a.label, a.version, a.rev, init.root]),
  );
  fsckStrict(join(base, "set.git"));
  // The same publish over a plain path gives byte-identical refs.
  const local = tempDir("cpr-local-");
  gitIn(local, "init", "-q", "--bare");
  await initTo(dir, local);
  await publishTo(dir, local);
  assert.equal(refsOf(join(base, "set.git")), refsOf(local));
  assert.equal((await publishTo(dir, url, { env: runEnv })).skipped.length, 2);
}

test("git:// (git daemon)", async (t) => {
  if (!needTools(t, "git-daemon")) return;
  await roundTrip(startGitDaemon);
});

test("http:// (lighttpd + git http-backend)", async (t) => {
  if (!needTools(t, "lighttpd", "git-http-backend")) return;
  await roundTrip((base) => startHttpBackend(base));
});

test("ssh:// (sshd on loopback)", async (t) => {
  if (!needTools(t, "sshd", "ssh", "ssh-keygen")) return;
  await roundTrip(
    (base) => startSshd(base),
    (s) => ({ GIT_SSH_COMMAND: s.sshCommand }),
  );
});
