import { flag, str, strs, type Command } from "../command.js";
import { Cache } from "../../git/cache.js";
import { loadConfig } from "../../config/config.js";
import { UsageError } from "../../protocol/errors.js";
import { searchEverywhere, type SearchHit } from "../../registry/search.js";
import { registryClients, registrySettings } from "../shared.js";

/** `cpr search`: registries' catalogues and configured sets, merged by AtomId. */
export const command: Command = {
  name: "search",
  usage: "cpr search TEXT [--registry URL]... [--set URL]... [--limit N] [--json]",
  summary: "Search registries and configured sets for atoms",
  help: `Asks every registry (config registry.urls, CPR_REGISTRY, or --registry) and reads every set listed in
config registry.sets (or --set) directly, with ls-refs and the newest versions' manifest blobs (no server needed),
and merges what they find by AtomId. TEXT matches labels, descriptions and tags, case-insensitively; exact label
matches come first.

A source that cannot be reached is reported as a warning; the others still answer. When every source failed,
that is an error (exit 1), not an empty result.

Options:
  --registry URL   A registry to ask (repeatable; replaces config registry.urls)
  --set URL        A set mirror to read (repeatable; replaces config registry.sets)
  --limit N        At most N results from each registry
  --json           Print {"results":[{"id","label","set","description","tags","versions","sources"}],
                   "failures":[{"source","error"}]} on stdout

Exit codes: 0 searched (even with no match), 1 every source failed, 2 usage error.
`,
  options: { registry: { type: "string", multiple: true }, set: { type: "string", multiple: true }, limit: { type: "string" } },
  maxPositionals: 1,
  async run(ctx, args) {
    const text = args.positionals[0];
    if (text === undefined || text.trim() === "") throw new UsageError("missing TEXT", { hint: "e.g. `cpr search hello`" });
    const limitText = str(args, "limit");
    const limit = limitText === undefined ? undefined : Number(limitText);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
      throw new UsageError(`--limit expects a positive whole number, got ${JSON.stringify(limitText)}`);
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const settings = registrySettings(config);
    const urls = strs(args, "registry").length ? strs(args, "registry") : settings.urls;
    const sets = strs(args, "set").length ? strs(args, "set") : settings.sets;
    if (urls.length === 0 && sets.length === 0) {
      throw new UsageError("no registry and no set to search", {
        hint: "pass --registry URL or --set URL, or set config registry.urls / registry.sets",
      });
    }
    const clients = registryClients(urls, null, "--registry (or config registry.urls, CPR_REGISTRY)");
    const cache = await Cache.open({ dir: config.cacheDir, env: ctx.env });
    try {
      const { hits, failures } = await searchEverywhere({ cache, cwd: ctx.cwd, env: ctx.env, reporter: ctx.term }, text, {
        registries: clients,
        sets,
        limit,
      });
      const allFailed = failures.length === urls.length + sets.length;
      for (const f of failures) ctx.term.warn("search.source-failed", f.error);
      if (flag(args, "json")) ctx.term.json({ results: hits, failures });
      else if (!allFailed) printTable(ctx.term, hits);
      if (allFailed) {
        ctx.term.error(
          `nothing was searched: ${failures.length === 1 ? "the only source" : `all ${failures.length} sources`} failed (see above)`,
        );
        return 1;
      }
      return 0;
    } finally {
      cache.close();
    }
  },
};

function printTable(term: { out(l: string): void; info(l: string): void }, hits: readonly SearchHit[]): void {
  if (hits.length === 0) {
    term.info("no match");
    return;
  }
  const rows = [
    ["LABEL", "VERSION", "SET", "ID", "DESCRIPTION"],
    ...hits.map((h) => [h.label, h.versions[0] ?? "-", h.set.slice(0, 12), h.id, h.description ?? ""]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    term.out(
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    );
}
