import { CprError } from "../protocol/errors.js";
import { treeDigestOf } from "../protocol/signature.js";
import type { Repo } from "./repo.js";

/** Digest of the tree of `treeish` (a commit or tree id) in `repo`: one ls-tree and one pipelined cat-file batch. */
export async function treeDigest(repo: Repo, treeish: string): Promise<string> {
  const entries = (await repo.listTree(treeish)).filter((e) => e.type !== "tree");
  const blobs = await repo.readObjects(entries.map((e) => (e.type === "commit" ? "" : e.oid)).filter((x) => x !== ""));
  let k = 0;
  return treeDigestOf(
    entries.map((e) => {
      if (e.type === "commit") return { mode: e.mode, path: e.path, content: Buffer.from(e.oid) };
      const blob = blobs[k++];
      if (!blob) throw new CprError("digest.missing", `blob ${e.oid} (${e.path}) is missing; cannot compute the tree digest`);
      return { mode: e.mode, path: e.path, content: blob.data };
    }),
  );
}
