/**
 * Prometheus metrics of one server (its own prom-client Registry, so several servers in one process do not mix):
 * requests and their durations by route and status, narinfo cache hits, and gauges read from the database at scrape
 * time (store paths, build records), plus the process's default metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RegistryDb } from "./db.js";

export interface Metrics {
  readonly registry: Registry;
  /** Records one answered request. `route` is the route pattern (`/:hash.narinfo`), never the raw URL. */
  observe(method: string, route: string, status: number, seconds: number): void;
  narinfoCache(hit: boolean): void;
  uploaded(bytes: number): void;
  /** Records a finished job: its kind, how it ended, and the seconds from claim to outcome. */
  jobDone(kind: string, outcome: string, seconds: number): void;
  /** Prometheus text format. */
  text(): Promise<string>;
  readonly contentType: string;
}

export function createMetrics(db: RegistryDb, opts: { defaultMetrics?: boolean; leaseSeconds?: number } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: "cpr_registry_" });
  const requests = new Counter({
    name: "cpr_registry_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "cpr_registry_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const narinfoCache = new Counter({
    name: "cpr_registry_narinfo_cache_total",
    help: "narinfo lookups answered from the in-process cache (hit) or the database (miss)",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const uploadedBytes = new Counter({
    name: "cpr_registry_uploaded_nar_bytes_total",
    help: "Uncompressed NAR bytes of store paths accepted by uploads",
    registers: [registry],
  });
  new Gauge({
    name: "cpr_registry_store_paths",
    help: "Store paths in the binary cache",
    registers: [registry],
    async collect() {
      this.set(await db.countPaths());
    },
  });
  new Gauge({
    name: "cpr_registry_builds",
    help: "Build records",
    registers: [registry],
    async collect() {
      this.set(await db.countBuilds());
    },
  });
  // ── jobs ──
  new Gauge({
    name: "cpr_registry_jobs",
    help: "Build farm jobs, by state (queue depth: state=queued)",
    labelNames: ["state"] as const,
    registers: [registry],
    async collect() {
      for (const [state, n] of Object.entries(await db.jobs.countByState())) this.labels({ state }).set(n);
    },
  });
  new Gauge({
    name: "cpr_registry_live_workers",
    help: "Workers that claimed a job or sent a heartbeat within the last lease period",
    registers: [registry],
    async collect() {
      this.set(await db.jobs.liveWorkers(Date.now() - (opts.leaseSeconds ?? 60) * 1000));
    },
  });
  const jobDuration = new Histogram({
    name: "cpr_registry_job_duration_seconds",
    help: "Time from a job's claim to its outcome, by kind and outcome",
    labelNames: ["kind", "outcome"] as const,
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  // Label-bound children, made once per (method, route, status): prom-client hashes a label set on every call
  // otherwise, which on the narinfo hot path costs more than the lookup itself.
  const bound = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>();
  const hits = narinfoCache.labels({ result: "hit" });
  const misses = narinfoCache.labels({ result: "miss" });
  return {
    registry,
    observe(method, route, status, seconds) {
      const key = `${method} ${status} ${route}`;
      let b = bound.get(key);
      if (!b) {
        const labels = { method, route, status: String(status) };
        b = { count: requests.labels(labels), time: duration.labels(labels) };
        bound.set(key, b);
      }
      b.count.inc();
      b.time.observe(seconds);
    },
    narinfoCache(hit) {
      (hit ? hits : misses).inc();
    },
    uploaded(bytes) {
      uploadedBytes.inc(bytes);
    },
    jobDone(kind, outcome, seconds) {
      jobDuration.labels({ kind, outcome }).observe(seconds);
    },
    text: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
