/**
 * `cpr verify`: prove that published atom versions are exactly the source they claim to come from (docs/formats.md §7.4, §8, §10).
 * Per atom version: the atom commit is parentless and is byte for byte the pre1 commit rebuilt from (origin subtree,
 * origin, label, version), the origin fetched tree-only (`--filter=blob:none --depth=1`) and the subtree found by its
 * tree id; the manifest ref is the atom tree's atom.toml blob, whose label and version match the ref; the AtomId
 * matches the root in refs/ekala/init (and the lock); every mirror agrees; with `deep`, the origin descends from the
 * root (commit graph only, `--filter=tree:0`); with `trust`, a signature tag from a trusted key whose BLAKE3 tree
 * digest matches the fetched content.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cache, fetchRefsInto } from "../git/cache.js";
import { CprError } from "../protocol/errors.js";
import type { WarningCode } from "../protocol/error-codes.js";
import { runGit } from "../git/exec.js";
import { run } from "../process/run.js";
import { Repo } from "../git/repo.js";
import { lsRefs } from "../git/lsrefs.js";
import { parseRemoteUrl } from "../git/remote.js";
import { atomCommitId, parseAtomCommit } from "../protocol/commit.js";
import { atomId } from "../protocol/id.js";
import { unevaluable } from "../protocol/lock-check.js";
import { parseAtomManifest } from "../protocol/atom-manifest.js";
import { atomRef, INIT_REF, manifestRef, originRef, type ListedAtom } from "../protocol/refs.js";
import { silentReporter, type Reporter } from "../protocol/report.js";
import type { GitUrl } from "../protocol/uri.js";
import { parseSignatureTag, sigRef } from "../protocol/signature.js";
import { treeDigest } from "../git/tree-digest.js";
import { listRemoteSet, readYanks } from "../git/remote-set.js";
import { reasonLine } from "../protocol/yank.js";

export type VerifyStatus = "ok" | "failed" | "legacy";

export interface AtomReport {
  readonly label: string;
  readonly version: string;
  readonly url: string;
  readonly rev: string | null;
  readonly id: string | null;
  readonly root: string | null;
  readonly origin: string | null;
  /** The atom's directory in the origin commit, when found. */
  readonly path: string | null;
  readonly status: VerifyStatus;
  /** What differs, one sentence each (empty when ok). */
  readonly problems: readonly string[];
  /** Facts worth knowing that are not failures (e.g. the server ignored the filter). */
  readonly notes: readonly string[];
  /** Findings about the atom that are not tampering and not failures (e.g. it cannot be evaluated: no atom.lock). */
  readonly warnings: readonly VerifyWarning[];
  /** The trusted signer, with --trust. */
  readonly signer: string | null;
  /** The version's yank record (docs/formats.md §15.5), when it is yanked: the reason, or why it could not be read. */
  readonly yanked?: { readonly reason: string | null; readonly yanker: string | null; readonly error: string | null };
}

/**
 * A finding that does not fail verification. Codes: `verify.no-lock` (composed, not static, and no atom.lock in the
 * atom tree), `verify.bad-lock` (its atom.lock does not parse), `verify.lock-unsatisfied` (the lock does not satisfy
 * atom.toml, or locks an atom local-only), `verify.manifest-unresolvable` (atom.toml has a [compose] that cannot be
 * resolved). Each means that no consumer can evaluate the atom (docs/formats.md §12).
 */
export interface VerifyWarning {
  readonly code: WarningCode;
  readonly message: string;
}

const WARNING_CODES = {
  "no-lock": "verify.no-lock",
  "bad-lock": "verify.bad-lock",
  unsatisfied: "verify.lock-unsatisfied",
  manifest: "verify.manifest-unresolvable",
} as const;

/** What one atom version is expected to be (from a lock), beyond what the remote says. */
export interface Expected {
  readonly rev?: string | null;
  readonly root?: string;
  readonly id?: string;
  /** Other mirrors that must agree on the rev and root. */
  readonly mirrors?: readonly string[];
}

export interface VerifyRequest {
  /** Label, and an exact version or null for every version of the label. */
  readonly label: string;
  readonly version: string | null;
  readonly expected?: Expected;
}

export interface VerifyOptions {
  readonly cache: Cache;
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly reporter?: Reporter;
  readonly deep?: boolean;
  /**
   * A trust file: require a valid signature from one of its keys. It holds ssh allowed-signers lines and/or armored
   * OpenPGP public keys (see `loadTrust`).
   */
  readonly trust?: string;
  /** Without `trust`: a trust file for the set with this root (trusted keys from config), if any. */
  readonly trustFor?: (root: string) => string | undefined;
}

interface Item {
  readonly listed: ListedAtom;
  readonly expected: Expected | undefined;
  readonly problems: string[];
  readonly notes: string[];
  readonly warnings: VerifyWarning[];
  path: string | null;
  signer: string | null;
}

/**
 * Verify atom versions of the set at `url`: those of `requests`, or every atom when `requests` is empty. Never
 * throws for a failed check; the reports say what differs. Throws only when the remote cannot be listed at all.
 */
export async function verifyRemote(url: GitUrl, requests: readonly VerifyRequest[], opts: VerifyOptions): Promise<AtomReport[]> {
  const reporter = opts.reporter ?? silentReporter;
  const labels = requests.length ? [...new Set(requests.map((r) => r.label))] : undefined;
  const { listing, refs } = await listRemoteSet(url, labels, { env: opts.env, reporter, cwd: opts.cwd, legacy: true });
  const display = url.url;
  const root = listing.root;
  const reports: AtomReport[] = [];
  const items: Item[] = [];
  const report = (label: string, version: string, status: VerifyStatus, problems: string[], extra: Partial<AtomReport> = {}): void =>
    void reports.push({
      label,
      version,
      url: display,
      rev: null,
      id: null,
      root,
      origin: null,
      path: null,
      status,
      problems,
      notes: [],
      warnings: [],
      signer: null,
      ...extra,
    });

  for (const req of requests.length ? requests : [{ label: "", version: null } as VerifyRequest]) {
    const all = listing.atoms.filter((a) => (requests.length ? a.label === req.label : true));
    const chosen = req.version === null ? all : all.filter((a) => a.version === req.version);
    if (chosen.length === 0) {
      if (requests.length)
        report(req.label, req.version ?? "*", "failed", [`${display} has no ${atomRef(req.label, req.version ?? "*")}`], {
          rev: req.expected?.rev ?? null,
        });
      continue;
    }
    for (const a of chosen) {
      if (a.format !== "pre1") {
        report(a.label, a.version, "legacy", [], { rev: a.rev, notes: [`legacy ref layout (refs/atoms/…): not checked`] });
        continue;
      }
      items.push({ listed: a, expected: req.expected, problems: [], notes: [], warnings: [], path: null, signer: null });
    }
  }
  if (items.length === 0) return reports;
  // Yanked versions are still verified (they are still fetched by the locks that pin them); the reason is a warning.
  const yanks = await readYanks(
    url,
    items.map((it) => it.listed),
    { env: opts.env, reporter, cwd: opts.cwd },
  );
  const yankedOf = new Map<Item, NonNullable<AtomReport["yanked"]>>();
  for (const it of items) {
    const y = yanks.get(`${it.listed.label}@${it.listed.version}`);
    if (!y) continue;
    yankedOf.set(it, { reason: y.record?.reason ?? null, yanker: y.record?.yanker ?? null, error: y.error });
    it.warnings.push({
      code: "verify.yanked",
      message: `${it.listed.label} ${it.listed.version} is yanked: ${y.record ? reasonLine(y.record.reason) : `(its record could not be read: ${y.error})`}`,
    });
  }
  if (root === null) {
    for (const it of items) it.problems.push(`${display} has no refs/ekala/init: not an initialized set, so its atoms have no identity`);
  } else if (listing.rootIsTag) {
    for (const it of items) it.problems.push(`refs/ekala/init on ${display} is an annotated tag, not a valid set marker`);
  }

  const trust = opts.trust ?? (root !== null ? opts.trustFor?.(root) : undefined);
  if (trust !== opts.trust) opts = { ...opts, trust };
  const keys = trust ? await loadTrust(trust, opts.env) : null;
  const scratch = await opts.cache.scratch({ alternates: true });
  const repo = await Repo.open(scratch.gitDir, { env: opts.env, repo: "cpr" });
  try {
    await checkAtoms(url, refs, items, repo, scratch.gitDir, opts, keys);
    if (opts.deep && root !== null) await checkDeep(url, root, items, opts);
    await checkMirrors(items, opts);
  } finally {
    repo.close();
    await scratch.remove();
    await keys?.remove();
  }
  for (const it of items) {
    const a = it.listed;
    const id = root === null ? null : atomId(root, a.label);
    const e = it.expected;
    if (e?.root !== undefined && root !== null && e.root !== root)
      it.problems.push(`refs/ekala/init on ${display} is ${root}, but the lock's set is ${e.root} (wrong root)`);
    if (e?.id !== undefined && id !== null && e.id !== id)
      it.problems.push(`AtomId ${id} (root ${root}) differs from the lock's id ${e.id}`);
    if (e?.rev && e.rev !== a.rev) it.problems.push(`${atomRef(a.label, a.version)} on ${display} is ${a.rev}, but the lock pins ${e.rev}`);
    const status: VerifyStatus = it.problems.length ? "failed" : it.notes.some((n) => n.startsWith("legacy")) ? "legacy" : "ok";
    reports.push({
      label: a.label,
      version: a.version,
      url: display,
      rev: a.rev,
      id,
      root,
      origin: a.origin,
      path: it.path,
      status,
      problems: it.problems,
      notes: it.notes,
      warnings: it.warnings,
      signer: it.signer,
      ...(yankedOf.has(it) ? { yanked: yankedOf.get(it)! } : {}),
    });
  }
  return reports.sort((x, y) => (x.label === y.label ? (x.version < y.version ? -1 : 1) : x.label < y.label ? -1 : 1));
}

async function checkAtoms(
  url: GitUrl,
  refs: ReadonlyMap<string, string>,
  items: Item[],
  repo: Repo,
  gitDir: string,
  opts: VerifyOptions,
  keys: TrustedKeys | null,
): Promise<void> {
  const env = opts.env;
  // 1. The atom commits (with trees and blobs: the content), manifest blobs and signature tags: one fetch.
  const full = items.flatMap((it) => {
    const { label, version } = it.listed;
    return [
      atomRef(label, version),
      ...(refs.has(manifestRef(label, version)) ? [manifestRef(label, version)] : []),
      ...(refs.has(sigRef(label, version)) ? [sigRef(label, version)] : []),
    ];
  });
  let fetched = new Map<string, string>();
  try {
    fetched = new Map((await fetchRefsInto(gitDir, url.url, full, { env })).oids);
  } catch (err) {
    for (const it of items) it.problems.push(`could not fetch the atom refs: ${(err as Error).message}`);
    return;
  }
  // 2. The origins, tree-only and depth 1.
  const origins = [...new Set(items.filter((it) => it.listed.origin).map((it) => originRef(it.listed.label, it.listed.version)))];
  let originOids = new Map<string, string>();
  try {
    const r = await fetchRefsInto(gitDir, url.url, origins, { env, depth: 1, filter: "blob:none" });
    originOids = new Map(r.oids);
    if (r.filterIgnored)
      for (const it of items)
        it.notes.push("the server does not allow filters (uploadpack.allowFilter): the origin was fetched with its blobs, at depth 1");
  } catch (err) {
    for (const it of items) if (it.listed.origin) it.problems.push(`could not fetch the origin commit: ${(err as Error).message}`);
  }

  for (const it of items) {
    const { label, version, rev } = it.listed;
    const ref = atomRef(label, version);
    const p = it.problems;
    const got = fetched.get(ref);
    if (got !== rev) {
      p.push(`${ref} changed between listing (${rev}) and fetch (${got ?? "absent"})`);
      continue;
    }
    const commit = await repo.readObject(rev);
    if (commit?.type !== "commit") {
      p.push(`${ref} points at a ${commit?.type ?? "missing object"} ${rev}, not at a commit`);
      continue;
    }
    const parsed = parseAtomCommit(commit.data);
    if (parsed.format !== "pre1") {
      it.notes.push(`legacy atom commit (format ${parsed.format}): not rebuilt`);
      continue;
    }
    if (parsed.parents.length) p.push(`atom commit ${rev} has parent(s) ${parsed.parents.join(", ")}; an atom commit has none`);
    if (parsed.label !== label || parsed.version !== version) {
      p.push(`${ref} points at ${rev}, the atom commit of ${parsed.label ?? "?"} ${parsed.version ?? "?"} (moved ref)`);
    }
    // Manifest ref == atom tree's atom.toml; its label and version match the ref.
    const toml = await repo.readObject(`${rev}:atom.toml`);
    const manifest = it.listed.manifest;
    if (!toml || toml.type !== "blob") p.push(`the atom tree ${parsed.tree} has no atom.toml`);
    else {
      if (manifest === null) p.push(`${manifestRef(label, version)} is missing`);
      else if (manifest !== toml.oid)
        p.push(`${manifestRef(label, version)} is blob ${manifest}, but the atom tree's atom.toml is ${toml.oid}`);
      try {
        const text = toml.data.toString("utf8");
        const m = parseAtomManifest(text, `${ref}:atom.toml`, "publish");
        if (m.package.label !== label) p.push(`atom.toml says label '${m.package.label}', the ref says '${label}'`);
        if (m.package.version.text !== version) p.push(`atom.toml says version ${m.package.version.text}, the ref says ${version}`);
        // docs/formats.md §12: consumers evaluate the atom from this tree with its own lock.
        const lock = await repo.readObject(`${rev}:atom.lock`);
        const problem = unevaluable(
          text,
          lock?.type === "blob" ? lock.data.toString("utf8") : null,
          `${ref}:atom.toml`,
          `${ref}:atom.lock`,
        );
        if (problem) it.warnings.push({ code: WARNING_CODES[problem.kind], message: `cannot be evaluated: ${problem.message}` });
      } catch (err) {
        p.push(`atom.toml does not parse: ${(err as Error).message}`);
      }
    }
    // Origin: the header matches the origin ref; the subtree is found by tree id; the rebuilt bytes hash to rev.
    const origin = it.listed.origin;
    if (origin === null) p.push(`${originRef(label, version)} is missing, so the source cannot be checked`);
    else if (parsed.origin !== origin)
      p.push(`the atom commit's origin header is ${parsed.origin}, but ${originRef(label, version)} is ${origin}`);
    if (origin !== null && originOids.get(originRef(label, version)) === origin) {
      const trees = (await listTrees(gitDir, origin, env)).filter((t) => t.oid === parsed.tree);
      if (trees.length === 0) p.push(`the atom tree ${parsed.tree} is not a subtree of origin ${origin}`);
      else {
        it.path = trees[0]!.path;
        const rebuilt = atomCommitId({ tree: parsed.tree, origin, label, version });
        if (rebuilt !== rev)
          p.push(
            `atom commit ${rev} is not the pre1 commit of (${it.path} in ${origin}, ${label}, ${version}): rebuilt ${rebuilt} (rewritten atom commit)`,
          );
      }
    } else if (origin !== null && !p.some((x) => x.startsWith("could not fetch the origin"))) {
      p.push(`origin ${origin} could not be fetched`);
    }
    if (keys) await checkSignature(repo, gitDir, it, fetched.get(sigRef(label, version)) ?? null, parsed.tree, keys, opts);
  }
}

async function listTrees(gitDir: string, commit: string, env?: NodeJS.ProcessEnv): Promise<{ oid: string; path: string }[]> {
  const r = await runGit(["ls-tree", "-r", "-d", "-z", commit], { cwd: gitDir, env, repo: "cpr", okCodes: [0, 128] });
  return r.stdout
    .toString("utf8")
    .split("\0")
    .filter(Boolean)
    .map((rec) => {
      const tab = rec.indexOf("\t");
      return { oid: rec.slice(0, tab).split(" ")[2]!, path: rec.slice(tab + 1) };
    });
}

/**
 * The keys of a trust file, split by scheme. The file holds ssh allowed-signers lines (ssh-keygen format) and/or
 * armored OpenPGP public keys (`gpg --armor --export`); each kind is recognised by its content. OpenPGP signatures
 * are checked against a throwaway GnuPG home holding exactly the file's OpenPGP keys (never the user's keyring, and
 * an empty one when the file has none), ssh signatures against the file's allowed-signers lines alone.
 */
export interface TrustedKeys {
  readonly file: string;
  /** An allowed-signers file with the ssh lines (the trust file itself when it has no OpenPGP key). */
  readonly allowedSigners: string;
  /** GNUPGHOME holding the trusted OpenPGP public keys only. */
  readonly gnupgHome: string;
  /** Fingerprints of the trusted OpenPGP primary keys. */
  readonly openpgp: readonly string[];
  remove(): Promise<void>;
}

const PGP_KEY_BLOCK = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

export async function loadTrust(file: string, env?: NodeJS.ProcessEnv): Promise<TrustedKeys> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new CprError(
      "verify.trust",
      `cannot read the trust file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { hint: "give --trust an allowed-signers file or an armored OpenPGP public key file" },
    );
  }
  const blocks = text.match(PGP_KEY_BLOCK) ?? [];
  const dir = await mkdtemp(join(tmpdir(), "cpr-trust-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const gnupgHome = join(dir, "gnupg");
    await mkdir(gnupgHome, { mode: 0o700 });
    let allowedSigners = file;
    let openpgp: string[] = [];
    if (blocks.length) {
      allowedSigners = join(dir, "allowed_signers");
      await writeFile(allowedSigners, text.replace(PGP_KEY_BLOCK, ""));
      const keys = join(dir, "keys.asc");
      await writeFile(keys, blocks.join("\n") + "\n");
      const gpgEnv = { ...(env ?? process.env), GNUPGHOME: gnupgHome };
      const imported = await runTool("gpg", ["--batch", "--quiet", "--no-autostart", "--import", keys], gpgEnv);
      if (imported.code !== 0)
        throw new CprError(
          "verify.trust",
          `the OpenPGP keys in ${file} could not be imported: ${gpgLines(imported.stderr) || `gpg exited ${imported.code}`}`,
        );
      const listed = await runTool("gpg", ["--batch", "--no-autostart", "--with-colons", "--fingerprint", "--list-keys"], gpgEnv);
      const lines = listed.stdout.split("\n");
      openpgp = lines.flatMap((l, i) => (l.startsWith("pub:") && lines[i + 1]?.startsWith("fpr:") ? [lines[i + 1]!.split(":")[9]!] : []));
    }
    return { file, allowedSigners, gnupgHome, openpgp, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

function gpgLines(stderr: string): string {
  return stderr
    .trim()
    .split("\n")
    .filter((l) => l && !/^\[GNUPG:\]/.test(l))
    .join("; ");
}

async function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await run(cmd, args, {
    env,
    okCodes: "any",
    errors: { spawn: "verify.trust", hint: "install gnupg to verify OpenPGP signatures" },
  });
  return { code: r.code ?? 1, stdout: r.stdout.toString("utf8"), stderr: r.stderr };
}

async function checkSignature(
  repo: Repo,
  gitDir: string,
  it: Item,
  tag: string | null,
  tree: string,
  keys: TrustedKeys,
  opts: VerifyOptions,
): Promise<void> {
  const { label, version, rev } = it.listed;
  const p = it.problems;
  const ref = sigRef(label, version);
  if (tag === null) {
    p.push(`no signature: ${ref} is missing`);
    return;
  }
  const obj = await repo.readObject(tag);
  if (obj?.type !== "tag") {
    p.push(`${ref} is a ${obj?.type ?? "missing object"}, not a signed tag`);
    return;
  }
  const sig = parseSignatureTag(obj.data);
  if (sig.object !== rev) p.push(`the signature tag points at ${sig.object}, not at the atom commit ${rev}`);
  // gpg.program and gpg.minTrustLevel are pinned, and GNUPGHOME is the trust file's own keyring: the user's git and
  // GnuPG configuration cannot widen (or narrow) what is trusted.
  const config = ["-c", `gpg.ssh.allowedSignersFile=${keys.allowedSigners}`, "-c", "gpg.program=gpg", "-c", "gpg.minTrustLevel=undefined"];
  const env = { ...(opts.env ?? process.env), GNUPGHOME: keys.gnupgHome };
  const r = await runGit([...config, "verify-tag", "--raw", tag], { cwd: gitDir, env, repo: "cpr", okCodes: [0, 1, 128] });
  const out = r.stderr;
  const good = /Good "git" signature for (\S+) with (\S+) key (\S+)/.exec(out);
  const validPgp = /^\[GNUPG:\] VALIDSIG (?:\S+ ){9}([0-9A-F]+)/m.exec(out)?.[1];
  const errPgp = /^\[GNUPG:\] ERRSIG (\S+)(?: \S+){5} ?([0-9A-F]*)/m.exec(out);
  const badPgp = /^\[GNUPG:\] BADSIG (\S+) (.*)$/m.exec(out);
  const stalePgp = /^\[GNUPG:\] (EXPKEYSIG|REVKEYSIG|EXPSIG) (\S+) (.*)$/m.exec(out);
  if (r.code === 0 && good) it.signer = `${good[1]} (${good[2]} ${good[3]})`;
  else if (r.code === 0 && validPgp && /^\[GNUPG:\] GOODSIG /m.test(out) && keys.openpgp.includes(validPgp)) {
    it.signer = `${/^\[GNUPG:\] GOODSIG \S+ (.*)$/m.exec(out)?.[1] ?? "OpenPGP key"} (OpenPGP ${validPgp})`;
  } else if (/No principal matched/.test(out)) {
    const key = /with (\S+ key \S+)/.exec(out)?.[1] ?? "an unknown key";
    p.push(`signed by an untrusted key (${key}, not in ${keys.file})`);
  } else if (badPgp) p.push(`bad signature on ${ref}: the OpenPGP signature of key ${badPgp[1]} (${badPgp[2]}) does not match the tag`);
  else if (stalePgp)
    p.push(
      `signature on ${ref} not accepted: the OpenPGP key ${stalePgp[2]} (${stalePgp[3]}) ${stalePgp[1] === "REVKEYSIG" ? "is revoked" : "or its signature has expired"}`,
    );
  else if (errPgp && /^\[GNUPG:\] NO_PUBKEY /m.test(out))
    p.push(`signed by an untrusted key (OpenPGP key ${errPgp[2] || errPgp[1]}, not in ${keys.file})`);
  else if (/incorrect signature|Could not verify/i.test(out))
    p.push(`bad signature on ${ref}: ${firstLine(out, /incorrect signature/i) ?? firstLine(out, /verif/i) ?? out.trim()}`);
  else p.push(`signature on ${ref} not accepted: ${out.trim().split("\n").pop() || `git verify-tag exited ${r.code}`}`);
  if (sig.digest === null) p.push(`the signature tag carries no tree-digest line`);
  else {
    const actual = await treeDigest(repo, tree);
    if (actual !== sig.digest) p.push(`BLAKE3 tree digest differs: the signature says ${sig.digest}, the fetched content is ${actual}`);
  }
}

function firstLine(text: string, re: RegExp): string | undefined {
  return text
    .split("\n")
    .find((l) => re.test(l))
    ?.trim();
}

/** --deep: the origin commit descends from the set root; commit graph only (`--filter=tree:0`), no depth limit. */
async function checkDeep(url: GitUrl, root: string, items: Item[], opts: VerifyOptions): Promise<void> {
  const withOrigin = items.filter((it) => it.listed.origin !== null);
  if (withOrigin.length === 0) return;
  const scratch = await opts.cache.scratch({ alternates: false });
  try {
    const origins = [...new Set(withOrigin.map((it) => originRef(it.listed.label, it.listed.version)))];
    const r = await fetchRefsInto(scratch.gitDir, url.url, [INIT_REF, ...origins], { env: opts.env, filter: "tree:0" });
    if (r.filterIgnored)
      for (const it of withOrigin) it.notes.push("the server does not allow filters: --deep fetched the full origin history");
    const rootObj = await runGit(["cat-file", "-p", root], { cwd: scratch.gitDir, env: opts.env, repo: "cpr", okCodes: [0, 128] });
    if (/^parent /m.test(rootObj.stdout.toString("utf8")))
      for (const it of withOrigin) it.problems.push(`refs/ekala/init ${root} has parents: it is not a root commit (wrong root)`);
    for (const it of withOrigin) {
      const origin = it.listed.origin!;
      const a = await runGit(["merge-base", "--is-ancestor", root, origin], {
        cwd: scratch.gitDir,
        env: opts.env,
        repo: "cpr",
        okCodes: [0, 1, 128],
      });
      if (a.code !== 0) it.problems.push(`origin ${origin} does not descend from the set root ${root} (wrong root)`);
    }
  } catch (err) {
    for (const it of withOrigin) it.problems.push(`--deep: ${(err as Error).message}`);
  } finally {
    await scratch.remove();
  }
}

/** Every mirror of the lock advertises the same root and the same rev. */
async function checkMirrors(items: Item[], opts: VerifyOptions): Promise<void> {
  const urls = [...new Set(items.flatMap((it) => it.expected?.mirrors ?? []))];
  await Promise.all(
    urls.map(async (m) => {
      const mine = items.filter((it) => it.expected?.mirrors?.includes(m));
      try {
        const url = parseRemoteUrl(m, opts.cwd);
        const { refs } = await lsRefs(url, [...new Set(mine.map((it) => atomRef(it.listed.label, it.listed.version))), INIT_REF], {
          env: opts.env,
          cwd: opts.cwd,
        });
        const by = new Map(refs.map((r) => [r.name, r.peeled ?? r.oid]));
        for (const it of mine) {
          const ref = atomRef(it.listed.label, it.listed.version);
          const v = by.get(ref);
          if (v === undefined) it.problems.push(`mirror ${m} does not have ${ref}`);
          else if (v !== it.listed.rev)
            it.problems.push(`mirror ${m} has ${ref} = ${v}, but ${it.listed.rev} elsewhere (mirrors disagree)`);
          const init = refs.find((r) => r.name === INIT_REF)?.oid;
          if (it.expected?.root && init !== it.expected.root)
            it.problems.push(`mirror ${m} has refs/ekala/init = ${init ?? "(none)"}, but the set is ${it.expected.root}`);
        }
      } catch (err) {
        for (const it of mine) it.problems.push(`mirror ${m} could not be listed: ${(err as Error).message}`);
      }
    }),
  );
}
