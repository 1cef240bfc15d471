import { resolve } from "node:path";
import { flag, str, type Command } from "../command.js";
import { Cache } from "../../git/cache.js";
import { loadConfig } from "../../config/config.js";
import { UsageError } from "../../protocol/errors.js";
import { parseAtomUri } from "../../protocol/uri.js";
import { fetchAtom, fetchLock, type FetchedAtom } from "../../store/fetch.js";
import { loadLock } from "../shared.js";

/** `cpr fetch`: fetch exactly an atom (or every atom of atom.lock) into the cache and materialise it. */
export const command: Command = {
  name: "fetch",
  usage: "cpr fetch URI | --lock [FILE] [--out DIR] [--json]",
  summary: "Fetch exactly an atom commit (no history, no other atoms) and materialise it read-only",
  help: `Fetches only the atom commit (its tree and blobs; no parent, no origin history, no other atom, no tag) into
the shared cache, a bare git repository at <cache>/git, and checks it out read-only at
<cache>/atoms/<AtomId>/<version>-<rev>, atomically (temp dir + rename). The path is printed on stdout.

URI is URL::LABEL[@REQUIREMENT], e.g. gh:owner/repo::hello@^1, ./set.git::hello@=0.1.0. The highest published
version satisfying the requirement is chosen with one ls-refs request. An exact version (@=1.2.3) fetched before is
served from the cache without touching the network.

With --lock, fetches every atom of atom.lock (or FILE): in parallel, at most 4 connections per host, many atoms per
connection; each mirror of the set in turn when one fails; every fetched rev checked against the lock. Atoms already
in the cache touch no network.

The cache is the configured cache directory (cpr config list: $CPR_CACHE_DIR, [cache] dir, else
$XDG_CACHE_HOME/cpr, else ~/.cache/cpr). Several cpr processes may share it. Aliases in URIs come from config.

Options:
  --lock          Fetch every atom dependency of ./atom.lock
  --out DIR       Check out into DIR instead (writable; with --lock, DIR/<label>)
  --json          Print {"atoms":[{label,version,id,root,rev,path,url,cached}],"failed":[…]} on stdout

Exit codes: 0 fetched, 1 something failed, 2 usage error.
`,
  options: { lock: { type: "boolean" }, out: { type: "string" } },
  maxPositionals: 1,
  async run(ctx, args) {
    const useLock = flag(args, "lock");
    const target = args.positionals[0];
    if (!useLock && target === undefined)
      throw new UsageError("missing URI (or --lock)", { hint: "e.g. `cpr fetch gh:owner/repo::hello@^1`" });
    const outArg = str(args, "out");
    const out = outArg === undefined ? undefined : resolve(ctx.cwd, outArg);
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const cache = await Cache.open({ dir: config.cacheDir, env: ctx.env });
    try {
      let atoms: readonly FetchedAtom[];
      let failed: readonly { label: string; version: string; error: string }[] = [];
      if (useLock) {
        const file = resolve(ctx.cwd, target ?? "atom.lock");
        const lock = await loadLock(file);
        const r = await fetchLock({ cache, cwd: ctx.cwd, env: ctx.env, reporter: ctx.term }, lock, { out });
        for (const w of r.warnings) ctx.term.warn("fetch.mirror-failed", w);
        atoms = r.fetched;
        failed = r.failed;
      } else {
        atoms = [await fetchAtom({ cache, cwd: ctx.cwd, env: ctx.env, reporter: ctx.term }, parseAtomUri(target!, config.aliases), out)];
      }
      if (args.values.json === true) ctx.term.json({ atoms, failed });
      else {
        for (const a of atoms) ctx.term.out(useLock ? `${a.label} ${a.version} ${a.path}` : a.path);
        for (const f of failed) ctx.term.out(`${ctx.term.red("failed")}  ${f.label} ${f.version}: ${f.error}`);
        const cached = atoms.filter((a) => a.cached).length;
        const fetched = atoms.length - cached;
        ctx.term.info(
          `${atoms.length} atom(s) ready: ${fetched} fetched, ${cached} already in the cache (no network); ${failed.length} failed`,
        );
      }
      return failed.length ? 1 : 0;
    } finally {
      cache.close();
    }
  },
};
