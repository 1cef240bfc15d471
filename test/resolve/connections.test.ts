import { after, test } from "node:test";
import assert from "node:assert/strict";
import { CprError } from "../../src/protocol/errors.js";
import { silentReporter } from "../../src/protocol/report.js";
import { encodeLine, FLUSH_PKT } from "../../src/git/pktline.js";
import { parseRemoteUrl } from "../../src/git/remote.js";
import { Connections, newStats } from "../../src/resolve/connections.js";
import { isNudge, startScriptedDaemon, type ScriptStep, type ScriptedRequest, type TestServer } from "../support/servers.js";

/**
 * The pool's retry: a conversation that broke off or went out of step (remote.transport) is tried once more on a
 * fresh connection; a second failure, or any other error, is reported as it is. (Reuse, limits and idle drops are
 * tested with a real git daemon in fetch.test.ts.)
 */

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const OID = "1".repeat(40);
const INIT = encodeLine(`${OID} refs/ekala/init`);

/** A pool and a scripted server answering listings with `answer` (and nudges with a bare flush, as git does). */
async function pool(answer: (r: ScriptedRequest) => readonly ScriptStep[]) {
  const server = await startScriptedDaemon((r) => (isNudge(r) ? [FLUSH_PKT] : answer(r)));
  servers.push(server);
  const stats = newStats();
  const connections = new Connections({ env: process.env, cwd: process.cwd(), reporter: silentReporter, stats });
  const url = parseRemoteUrl(server.url("s.git"), process.cwd());
  const list = () => connections.use("m", url, (c) => c.lsRefs(["refs/ekala/init"]));
  return { server, stats, connections, list };
}

test("a reply cut short on a fresh connection: tried once more on another, whose answer counts", async () => {
  const p = await pool((r) => (r.connection === 0 ? [INIT, "close"] : [INIT, FLUSH_PKT]));
  try {
    assert.deepEqual(await p.list(), [{ name: "refs/ekala/init", oid: OID }]);
    assert.equal(p.stats.connections, 2);
    // The good connection went back to the pool and serves the next listing.
    assert.deepEqual(await p.list(), [{ name: "refs/ekala/init", oid: OID }]);
    assert.equal(p.server.connections(), 2);
  } finally {
    await p.connections.close();
  }
});

test("failing twice: the second transport failure is reported, and no third connection is made", async () => {
  const p = await pool(() => [INIT, "close"]);
  try {
    await assert.rejects(
      p.list(),
      (e: unknown) =>
        e instanceof CprError &&
        e.code === "remote.transport" &&
        /transport failure: git daemon ended inside the ls-refs reply/.test(e.message),
    );
    assert.equal(p.server.connections(), 2);
  } finally {
    await p.connections.close();
  }
});

test("an error the server states (ERR) is not a transport failure: no second try", async () => {
  const p = await pool(() => [encodeLine("ERR access denied or repository not exported: /s.git"), FLUSH_PKT]);
  try {
    await assert.rejects(
      p.list(),
      (e: unknown) => e instanceof CprError && e.code !== "remote.transport" && /the server said: access denied/.test(e.message),
    );
    assert.equal(p.server.connections(), 1);
  } finally {
    await p.connections.close();
  }
});

test("a reused connection that fails is replaced once; a transport failure on the replacement is reported", async () => {
  const p = await pool((r) => (r.connection === 0 && r.index === 0 ? [INIT, FLUSH_PKT] : [INIT, "close"]));
  try {
    assert.equal((await p.list()).length, 1);
    await assert.rejects(p.list(), (e: unknown) => e instanceof CprError && e.code === "remote.transport");
    assert.equal(p.server.connections(), 2, "the reused one, then one fresh one");
  } finally {
    await p.connections.close();
  }
});
