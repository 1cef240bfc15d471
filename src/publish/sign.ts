/**
 * `cpr publish --sign KEY`: one annotated tag object per published version, pointing at the atom commit, signed in
 * git's SSH signature format (`ssh-keygen -Y sign -n git`, what `gpg.format=ssh` produces) or with OpenPGP
 * (`gpg --batch -bsau KEY`, what `git tag -s` runs; GNUPGHOME is honoured), stored under refs/eka/meta/<label>/<version>/sig and pushed in the same atomic push
 * as the atom's other refs. The tag message carries the BLAKE3 digest of the atom tree (docs/tree-digest.md).
 * The atom commit bytes are unchanged, and atom.lock gets no new field: eka reads everything as before.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CprError } from "../protocol/errors.js";
import { run as runProcess } from "../process/run.js";
import type { RefUpdate, Repo } from "../git/repo.js";
import { treeDigest } from "../git/tree-digest.js";
import { parseSignatureTag, sigRef, signaturePayload, type SignAtom } from "../protocol/signature.js";

export interface SignOptions {
  /** An ssh key file (private, or public with the private key in ssh-agent), `key::ssh-…` literal, or an OpenPGP key id, fingerprint or user id. */
  readonly key: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** The signature scheme a KEY argument selects: a file or an `ssh-` literal is ssh, anything else OpenPGP. */
export function keyFormat(key: string): "ssh" | "openpgp" {
  return existsSync(key) || key.startsWith("key::") || key.startsWith("ssh-") ? "ssh" : "openpgp";
}

/**
 * Sign these atom versions: write the tag objects into `repo` and return the sig refs to add to the atomic push.
 * A version whose local sig ref already points at a tag of the same commit keeps it (publishing to another mirror).
 */
export async function signAtoms(repo: Repo, atoms: readonly SignAtom[], opts: SignOptions): Promise<RefUpdate[]> {
  if (atoms.length === 0) return [];
  const existing = await repo.refValues(atoms.map((a) => sigRef(a.label, a.version)));
  const tagger = await taggerIdent(repo);
  const out: RefUpdate[] = [];
  const bodies: Buffer[] = [];
  const refs: string[] = [];
  for (const a of atoms) {
    const ref = sigRef(a.label, a.version);
    const have = existing.get(ref);
    if (have) {
      const o = await repo.readObject(have);
      if (o?.type === "tag" && parseSignatureTag(o.data).object === a.commit) {
        out.push({ ref, oid: have });
        continue;
      }
    }
    const payload = signaturePayload(a, await treeDigest(repo, a.commit), tagger);
    const signature = await sign(payload, opts);
    bodies.push(Buffer.from(payload + signature));
    refs.push(ref);
  }
  const ids = bodies.length ? await repo.writeObjects("tag", bodies) : [];
  refs.forEach((ref, i) => out.push({ ref, oid: ids[i]! }));
  return out;
}

/** The committer identity with the current time (`git var GIT_COMMITTER_IDENT`), as tags and yank records name it. */
export async function taggerIdent(repo: Repo): Promise<string> {
  const r = await repo.run(["var", "GIT_COMMITTER_IDENT"], { okCodes: [0, 128] });
  const ident = r.stdout.toString("utf8").trim();
  return r.code === 0 && ident ? ident : `cpr <> ${Math.floor(Date.now() / 1000)} +0000`;
}

/** A detached signature of `payload` with the key (an SSH signature block, or an armored OpenPGP one). */
export async function sign(payload: string, opts: SignOptions): Promise<string> {
  if (keyFormat(opts.key) === "ssh") {
    const dir = await mkdtemp(join(tmpdir(), "cpr-sign-"));
    try {
      let keyFile = opts.key;
      if (opts.key.startsWith("key::") || opts.key.startsWith("ssh-")) {
        keyFile = join(dir, "key.pub");
        await writeFile(keyFile, opts.key.replace(/^key::/, "") + "\n");
      }
      const file = join(dir, "payload");
      await writeFile(file, payload);
      const agent = keyFile.endsWith(".pub") ? ["-U"] : [];
      await run("ssh-keygen", ["-Y", "sign", "-n", "git", "-f", keyFile, ...agent, file], null, opts.env);
      return await readFile(`${file}.sig`, "utf8");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (/^(\/|\.\.?\/|~)/.test(opts.key) || opts.key.endsWith(".pub")) {
    // A path that does not exist would otherwise reach gpg as a user id and fail with "No secret key".
    throw new CprError("sign.key", `no such key file: ${opts.key}`, {
      hint: "give --sign an existing ssh key file, or an OpenPGP key id, fingerprint or user id",
    });
  }
  return run("gpg", ["--batch", "--status-fd=2", "-bsau", opts.key], payload, opts.env);
}

async function run(cmd: string, args: string[], input: string | null, env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await runProcess(cmd, args, {
    env,
    input: input ?? "",
    errors: {
      spawn: "sign.spawn",
      hint: `install ${cmd === "gpg" ? "gnupg" : "openssh-client"}`,
      failure: (e) =>
        new CprError(
          "sign.failed",
          `${cmd} could not sign: ${
            e.stderr
              .trim()
              .split("\n")
              .filter((l) => !/^\[GNUPG:\]/.test(l))
              .join("; ") || `exit ${e.code}`
          }`,
          {
            hint: "check the key given to --sign",
          },
        ),
    },
  });
  return r.stdout.toString("utf8");
}
