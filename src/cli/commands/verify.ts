import { writeFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { flag, str, type Command, type Context } from "../command.js";
import { Cache } from "../../git/cache.js";
import { loadConfig, type Config } from "../../config/config.js";
import { Repo } from "../../git/repo.js";
import { parseRemoteUrl, resolveRemote } from "../../git/remote.js";
import { CprError, UsageError } from "../../protocol/errors.js";
import { parseAtomUri } from "../../protocol/uri.js";
import { tryParseVersion } from "../../protocol/version.js";
import { lockAtoms, mirrorsOf, exactVersion } from "../../store/fetch.js";
import { verifyRemote, type AtomReport, type VerifyRequest } from "../../store/verify.js";
import { labelArg, loadLock } from "../shared.js";

/** `cpr verify`: prove that published atoms are exactly the source they claim to come from. */
export const command: Command = {
  name: "verify",
  usage: "cpr verify URI | REMOTE [LABEL[@VERSION] ...] | --lock [FILE] [--deep] [--trust FILE] [--json]",
  summary: "Check that published atoms are exactly their source: rebuilt commits, manifests, ids, mirrors, signatures",
  help: `For each atom version, checks that:
  - the atom commit has no parent and is byte for byte the format pre1 commit rebuilt from (origin subtree,
    origin, label, version); the origin is fetched tree-only (--filter=blob:none, depth 1) and the subtree found by
    its tree id (a server without uploadpack.allowFilter sends blobs too; this is noted, not a failure);
  - the manifest ref's blob is the atom tree's atom.toml, and its label and version match the ref;
  - the AtomId follows from the root in refs/ekala/init (and, with --lock, equals the lock's id and set);
  - with --lock, every mirror of the set agrees on the rev and the root;
  - with --deep, the origin commit descends from the set root (commit graph only, --filter=tree:0);
  - with --trust FILE, refs/eka/meta/<label>/<version>/sig is a tag on the atom commit signed by a key of FILE
    (checked by git verify-tag), whose BLAKE3 tree digest matches the content.
Legacy layouts are reported as legacy, not as failures. An atom that no consumer can evaluate (docs/formats.md §12: composed,
not static, and its tree has no atom.lock, or one that does not parse or satisfy its atom.toml, or that locks an
atom local-only) gets a warning line (codes verify.no-lock, verify.bad-lock, verify.lock-unsatisfied,
verify.manifest-unresolvable): it is not tampering, so it does not change the exit code. A yanked version (cpr yank)
is verified as any other, and gets a verify.yanked warning with the reason from its yank record.

Targets: URI (URL::LABEL[@REQ]: the highest matching version, every version without REQ); REMOTE with LABEL
(every version) or LABEL@VERSION arguments, or alone for every atom; --lock [FILE] for every atom of atom.lock.

Output: one line per atom version: "ok", "legacy", or "FAILED" with exactly what differs; then a "warning" line
per warning.

Options:
  --lock        Verify the atoms of ./atom.lock (or FILE) against their mirror, and every mirror against the lock
  --deep        Also check that each origin descends from the set root
  --trust FILE  Require a valid signature from a key of FILE: ssh allowed-signers lines (ssh-keygen format)
                and/or armored OpenPGP public keys (gpg --armor --export KEY), recognised by content.
                OpenPGP signatures are checked against a throwaway keyring of FILE's keys only, never
                your own. Without --trust, a set with a [trust] list in config (keyed by its root, or by
                its tag from the lock: allowed-signers lines or armored key blocks) gets the same check
  --json        Print {"ok":bool,"atoms":[{label,version,url,rev,id,root,origin,path,status,problems,notes,
                warnings:[{code,message}],signer,yanked?:{reason,yanker,error}}]}

Exit codes: 0 all ok (or legacy), 1 any failure, 2 usage error.
`,
  options: { lock: { type: "boolean" }, deep: { type: "boolean" }, trust: { type: "string" } },
  async run(ctx, args) {
    const trustArg = str(args, "trust");
    const trust = trustArg === undefined ? undefined : resolve(ctx.cwd, trustArg);
    const deep = flag(args, "deep");
    const { config } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    const cache = await Cache.open({ dir: config.cacheDir, env: ctx.env });
    const tags = new Map<string, string>();
    const trustFor = trust === undefined ? configTrust(cache, config.trust, tags) : undefined;
    const opts = { cache, cwd: ctx.cwd, env: ctx.env, reporter: ctx.term, deep, trust, trustFor };
    try {
      let reports: AtomReport[] = [];
      if (flag(args, "lock")) {
        if (args.positionals.length > 1) throw new UsageError("--lock takes at most one FILE");
        const lock = await loadLock(resolve(ctx.cwd, args.positionals[0] ?? "atom.lock"));
        for (const [root, set] of Object.entries(lock.sets)) tags.set(root, set.tag);
        const byUrl = new Map<string, VerifyRequest[]>();
        for (const a of lockAtoms(lock)) {
          const [first, ...rest] = mirrorsOf(lock, a);
          if (first === undefined) {
            reports.push({
              label: a.label,
              version: a.version,
              url: "::",
              rev: a.rev,
              id: a.id,
              root: a.set,
              origin: null,
              path: null,
              status: "failed",
              problems: ["no URL mirror to verify against"],
              notes: [],
              warnings: [],
              signer: null,
            });
            continue;
          }
          byUrl.set(first, [
            ...(byUrl.get(first) ?? []),
            { label: a.label, version: a.version, expected: { rev: a.rev, root: a.set, id: a.id, mirrors: rest } },
          ]);
        }
        for (const [url, reqs] of byUrl) reports.push(...(await verifyRemote(parseRemoteUrl(url, ctx.cwd), reqs, opts)));
      } else {
        const [target, ...rest] = args.positionals;
        if (target === undefined)
          throw new UsageError("missing URI, REMOTE or --lock", { hint: "e.g. `cpr verify origin`, `cpr verify gh:o/r::hello@^1`" });
        if (target.includes("::")) {
          if (rest.length) throw new UsageError("a URI names its atom; LABEL arguments go with a REMOTE");
          const uri = parseAtomUri(target, config.aliases);
          if (!uri.url) throw new UsageError(`'${target}' has no location`);
          const url = uri.url.scheme === "file" ? parseRemoteUrl(uri.url.url, ctx.cwd) : uri.url;
          const exact = exactVersion(uri.requirement);
          let reqs: VerifyRequest[] = [{ label: uri.label, version: exact }];
          if (uri.requirement && !exact) {
            const { listRemoteSet } = await import("../../git/remote-set.js");
            const { maxSatisfying } = await import("../../protocol/requirement.js");
            const { listing } = await listRemoteSet(url, [uri.label], { env: ctx.env, cwd: ctx.cwd });
            const best = maxSatisfying(
              listing.atoms.filter((a) => a.label === uri.label).flatMap((a) => tryParseVersion(a.version) ?? []),
              uri.requirement,
            );
            if (!best)
              throw new CprError("verify.no-version", `no version of '${uri.label}' on ${url.url} satisfies ${uri.requirement.text}`, {
                where: url.url,
              });
            reqs = [{ label: uri.label, version: best.text }];
          }
          reports = await verifyRemote(url, reqs, opts);
        } else {
          const repo = await Repo.open(ctx.cwd, { env: ctx.env, repo: "user" }).catch(() => null);
          try {
            const remote = await resolveRemote(target, repo, ctx.cwd);
            const reqs = rest.map((arg): VerifyRequest => {
              const at = arg.lastIndexOf("@");
              if (at <= 0) return { label: labelArg(arg), version: null };
              const v = tryParseVersion(arg.slice(at + 1));
              if (!v)
                throw new UsageError(`'${arg.slice(at + 1)}' is not a version`, {
                  hint: "LABEL@VERSION takes an exact version, e.g. hello@0.1.0",
                });
              return { label: labelArg(arg.slice(0, at)), version: v.text };
            });
            reports = await verifyRemote(remote.url, reqs, opts);
          } finally {
            repo?.close();
          }
        }
      }
      const ok = reports.every((r) => r.status !== "failed");
      if (args.values.json === true) ctx.term.json({ ok, atoms: reports });
      else printReports(ctx, reports);
      return ok ? 0 : 1;
    } finally {
      cache.close();
    }
  },
};

function printReports(ctx: Context, reports: readonly AtomReport[]): void {
  const t = ctx.term;
  if (reports.length === 0) t.info("no atoms to verify");
  for (const r of reports) {
    const rev = r.rev ? r.rev.slice(0, 12) : "-";
    if (r.status === "ok") t.out(`${t.green("ok")}      ${r.label} ${r.version}  ${rev}${r.signer ? `  signed by ${r.signer}` : ""}`);
    else if (r.status === "legacy") t.out(`${t.yellow("legacy")}  ${r.label} ${r.version}  ${rev}  ${r.notes.join("; ")}`);
    else t.out(`${t.red("FAILED")}  ${r.label} ${r.version}  ${rev}: ${r.problems.join("; ")}`);
    for (const w of r.warnings) t.out(`${t.yellow("warning")} ${r.label} ${r.version}  ${rev}: ${w.message} [${w.code}]`);
  }
  // Notes are mostly about the server (e.g. filters not allowed): each distinct one once.
  const notes = new Map<string, number>();
  for (const r of reports) if (r.status !== "legacy") for (const n of r.notes) notes.set(n, (notes.get(n) ?? 0) + 1);
  for (const [n, count] of notes) t.info(`note: ${n}${count > 1 ? ` (${count} atoms)` : ""}`);
  const failed = reports.filter((r) => r.status === "failed").length;
  const warned = reports.filter((r) => r.warnings.length > 0).length;
  t.info(`${reports.length - failed} ok, ${failed} failed${warned ? `, ${warned} with warnings` : ""}`);
}

/**
 * Per-set trusted keys from config ([trust], keyed by root hex or set tag): an allowed-signers file per set that has
 * them, written once under the cache; undefined for sets without.
 */
function configTrust(cache: Cache, trust: Config["trust"], tags: ReadonlyMap<string, string>): (root: string) => string | undefined {
  const files = new Map<string, string | undefined>();
  return (root) => {
    if (!files.has(root)) {
      const tag = tags.get(root);
      const lines = trust[root] ?? (tag !== undefined ? trust[tag] : undefined);
      let file: string | undefined;
      if (lines?.length) {
        const dir = cache.layout.tmp;
        mkdirSync(dir, { recursive: true });
        file = join(dir, `trust-${process.pid}-${root}`);
        writeFileSync(file, lines.join("\n") + "\n");
      }
      files.set(root, file);
    }
    return files.get(root);
  };
}
