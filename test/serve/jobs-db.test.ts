/**
 * The build farm's tables (src/serve/jobs-db.ts), one suite against both drivers: SQLite in a temporary directory
 * and a real throwaway PostgreSQL server. Enqueueing is idempotent, a claim takes each job once (also under many
 * concurrent claims), leases expire back into the queue, and an outcome is recorded with its build record in one
 * transaction or not at all.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync, gunzipSync } from "node:zlib";
import { after, describe, test, type TestContext } from "node:test";
import type { RegistryDb } from "../../src/serve/db.js";
import { openDb } from "../../src/serve/db-open.js";
import type { NewJob } from "../../src/serve/jobs-db.js";
import { sharedPostgres } from "../support/postgres.js";

const postgres = sharedPostgres();
after(() => postgres.stop());

type Kind = "sqlite" | "postgres";

async function fresh(t: TestContext, kind: Kind): Promise<{ db: RegistryDb; url: string } | null> {
  let url: string;
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "cpr-jobs-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    url = `sqlite:${join(dir, "registry.sqlite")}`;
  } else {
    const server = await postgres.get(t);
    if (!server) return null;
    url = await server.createDatabase();
  }
  const db = await openDb(url);
  t.after(() => db.close());
  await db.migrate();
  return { db, url };
}

const ROOT = "a".repeat(40);
const OTHER = "b".repeat(40);
const ID = "c".repeat(52);
const SYS = "x86_64-linux";
const DRV = `/nix/store/${"d".repeat(32)}-x.drv`;
const OUT = `/nix/store/${"e".repeat(32)}-x`;

function job(version: string, over: Partial<NewJob> = {}): NewJob {
  return { kind: "eval", atomId: ID, root: ROOT, label: "hello", version, rev: "1".repeat(40), system: SYS, priority: 0, ...over };
}

async function indexed(db: RegistryDb, versions: string[]): Promise<void> {
  await db.upsertSet(ROOT, ["file:///set.git"]);
  await db.recordIndex(
    ROOT,
    [{ id: ID, root: ROOT, label: "hello", description: null, tags: [] }],
    versions.map((v) => ({ id: ID, version: v, rev: "1".repeat(40), origin: null, manifest: "" })),
    Date.now(),
  );
}

function claimQuery(worker: string, now = Date.now(), leaseMs = 60_000, roots = [ROOT]) {
  return { worker, systems: [SYS], roots, lease: `lease-${worker}-${Math.random()}`, leaseExpires: now + leaseMs, now };
}

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`jobs (${kind})`, () => {
    test("enqueue is idempotent and skips versions already built; claims go by priority, then age", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      await indexed(db, ["1.0.0", "2.0.0", "3.0.0"]);
      await db.insertBuild({
        id: ID,
        version: "3.0.0",
        rev: "1".repeat(40),
        system: SYS,
        configHash: "0".repeat(64),
        config: "{}",
        drv: DRV,
        outputs: { out: OUT },
        createdAt: 1,
      });
      assert.equal(await db.jobs.enqueue([job("1.0.0"), job("2.0.0", { priority: 5 }), job("3.0.0")], 1), 2, "3.0.0 is built already");
      assert.equal(await db.jobs.enqueue([job("1.0.0"), job("2.0.0")], 2), 0, "enqueueing again adds nothing");
      assert.deepEqual(await db.jobs.countByState(), { queued: 2, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
      const queued = await db.jobs.list({ state: "queued" });
      const first = queued.find((j) => j.version === "1.0.0")!;
      assert.equal(await db.jobs.position(first), 1, "the priority-5 job is ahead");
      const a = await db.jobs.claim(claimQuery("w1"));
      assert.equal(a?.version, "2.0.0");
      assert.equal(a?.attempts, 1);
      assert.equal(a?.state, "running");
      assert.equal(await db.jobs.claim(claimQuery("w2", Date.now(), 60_000, [OTHER])), null, "another set's token claims nothing");
      assert.equal(await db.jobs.claim({ ...claimQuery("w2"), systems: ["aarch64-darwin"] }), null, "another system claims nothing");
      const b = await db.jobs.claim(claimQuery("w2"));
      assert.equal(b?.version, "1.0.0");
      assert.equal(await db.jobs.claim(claimQuery("w3")), null);
      await db.jobs.touchWorker("w1", Date.now());
      await db.jobs.touchWorker("w2", Date.now() - 120_000);
      assert.equal(await db.jobs.liveWorkers(Date.now() - 60_000), 1);
    });

    test("concurrent claims take every job exactly once", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      const n = 40;
      await db.jobs.enqueue(
        Array.from({ length: n }, (_, i) => job(`1.0.${i}`)),
        1,
      );
      // Two connections (pools) on PostgreSQL, as two servers would have.
      const second = await openDb(f.url);
      t.after(() => second.close());
      const claims = await Promise.all(Array.from({ length: n + 10 }, (_, i) => (i % 2 ? second : db).jobs.claim(claimQuery(`w${i}`))));
      const got = claims.filter((c) => c !== null).map((c) => c!.jobId);
      assert.equal(got.length, n);
      assert.equal(new Set(got).size, n, "no job claimed twice");
      for (const id of got.slice(0, 5)) assert.equal((await db.jobs.attempts(id)).length, 1);
    });

    test("an expired lease returns the job to the queue; the old lease can no longer report", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      await indexed(db, ["1.0.0"]);
      await db.jobs.enqueue([job("1.0.0")], 1);
      const now = Date.now();
      const q = claimQuery("w1", now, 1000);
      const a = (await db.jobs.claim(q))!;
      assert.equal(await db.jobs.requeueExpired(now + 500), 0, "not yet");
      assert.equal(await db.jobs.heartbeat(a.jobId, q.lease, now + 2000, now), true);
      assert.equal(await db.jobs.requeueExpired(now + 1500), 0, "the heartbeat extended it");
      assert.equal(await db.jobs.requeueExpired(now + 2500), 1);
      const back = (await db.jobs.get(a.jobId))!;
      assert.equal(back.state, "queued");
      assert.equal(back.worker, null);
      assert.equal(await db.jobs.heartbeat(a.jobId, q.lease, now + 9000, now), false);
      assert.equal(await db.jobs.complete(a.jobId, q.lease, { drv: DRV, outputs: { out: OUT } }, now), null);
      assert.equal(await db.jobs.appendLog(a.jobId, q.lease, gzipSync("x"), now), false);
      const q2 = claimQuery("w2", now + 3000);
      const b = (await db.jobs.claim(q2))!;
      assert.equal(b.jobId, a.jobId);
      assert.equal(b.attempts, 2);
      const config = '{"system":"x86_64-linux"}';
      const done = await db.jobs.complete(
        b.jobId,
        q2.lease,
        {
          drv: DRV,
          outputs: { out: OUT },
          build: {
            id: ID,
            version: "1.0.0",
            rev: "1".repeat(40),
            system: SYS,
            configHash: "f".repeat(64),
            config,
            drv: DRV,
            outputs: { out: OUT },
            createdAt: 5,
          },
        },
        now + 4000,
      );
      assert.ok(done && done.buildId !== null);
      assert.equal(await db.countBuilds(), 1);
      const attempts = await db.jobs.attempts(a.jobId);
      assert.deepEqual(
        attempts.map((x) => [x.attempt, x.worker, x.outcome]),
        [
          [1, "w1", "expired"],
          [2, "w2", "succeeded"],
        ],
      );
      const final = (await db.jobs.get(a.jobId))!;
      assert.equal(final.state, "succeeded");
      assert.equal(final.buildId, done!.buildId);
      assert.equal(await db.jobs.enqueue([job("1.0.0")], 9), 0, "a built version is not enqueued again");
    });

    test("an evaluation's follow-up build job, failure with a log, retry, release and cancel", async (t) => {
      const f = await fresh(t, kind);
      if (!f) return;
      const { db } = f;
      await indexed(db, ["1.0.0"]);
      await db.jobs.enqueue([job("1.0.0", { priority: 3 })], 1);
      const q = claimQuery("w1");
      const ev = (await db.jobs.claim(q))!;
      const done = await db.jobs.complete(
        ev.jobId,
        q.lease,
        {
          drv: DRV,
          outputs: { out: OUT },
          followUp: job("1.0.0", { kind: "build", drv: DRV, outputs: { out: OUT }, parent: ev.jobId, priority: 3 }),
        },
        Date.now(),
      );
      assert.ok(done && done.buildJob !== null && done.buildId === null);
      const bj = (await db.jobs.get(done!.buildJob!))!;
      assert.deepEqual([bj.kind, bj.state, bj.drv, bj.parent, bj.priority], ["build", "queued", DRV, ev.jobId, 3]);
      const q2 = claimQuery("w2");
      const b = (await db.jobs.claim(q2))!;
      assert.equal(b.jobId, bj.jobId);
      assert.equal(b.outputs?.out, OUT);
      assert.ok(await db.jobs.appendLog(b.jobId, q2.lease, gzipSync("building…\n"), Date.now()));
      assert.ok(await db.jobs.appendLog(b.jobId, q2.lease, gzipSync("error: boom\n"), Date.now()));
      assert.ok(await db.jobs.fail(b.jobId, q2.lease, "builder failed", Date.now()));
      const failed = (await db.jobs.get(b.jobId))!;
      assert.equal(failed.state, "failed");
      assert.equal(failed.error, "builder failed");
      const chunks = await db.jobs.log(b.jobId, 1, 0);
      assert.equal(Buffer.concat(chunks.map((c) => gunzipSync(c.chunk))).toString(), "building…\nerror: boom\n");
      assert.equal((await db.jobs.log(b.jobId, 1, chunks[0]!.seq)).length, 1);
      assert.equal(await db.jobs.claim(claimQuery("w3")), null, "a failed job is not retried by itself");
      assert.equal(await db.jobs.cancel(b.jobId, Date.now()), null, "a failed job cannot be cancelled");
      const again = (await db.jobs.retry(b.jobId, Date.now()))!;
      assert.equal(again.state, "queued");
      assert.equal(again.error, null);
      assert.equal(await db.jobs.retry(b.jobId, Date.now()), null, "a queued job is not retried");
      const q3 = claimQuery("w3");
      const c = (await db.jobs.claim(q3))!;
      assert.equal(c.attempts, 2);
      assert.equal((await db.jobs.log(c.jobId, 2, 0)).length, 0, "a new attempt has a new log");
      assert.ok(await db.jobs.release(c.jobId, q3.lease, "stopping", Date.now()));
      assert.equal((await db.jobs.get(c.jobId))!.state, "queued");
      const q4 = claimQuery("w4");
      const d = (await db.jobs.claim(q4))!;
      const cancelled = (await db.jobs.cancel(d.jobId, Date.now()))!;
      assert.equal(cancelled.state, "cancelled");
      assert.equal(await db.jobs.heartbeat(d.jobId, q4.lease, Date.now() + 1000, Date.now()), false, "a cancelled job's lease is gone");
      assert.deepEqual(
        (await db.jobs.attempts(d.jobId)).map((x) => x.outcome),
        ["failed", "released", "cancelled"],
      );
      assert.equal(await db.countBuilds(), 0, "nothing was recorded");
    });
  });
}
