/**
 * Git objects and packs for building benchmark fixtures fast: object ids computed in process, all objects sent as ONE
 * undeltified pack through `git index-pack --stdin`, refs written as a `packed-refs` file. (Writing tens of thousands
 * of loose objects through `hash-object -w` spends most of its time in the filesystem.) The formats are cpr's own
 * (src/protocol/git-object.ts, src/protocol/pack.ts); this file only adds the I/O.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeTree, gitObjectId, type TreeItem } from "../src/protocol/git-object.js";
import { encodePack, type PackInput } from "../src/protocol/pack.js";
import { benchEnv, BenchError, run } from "./lib.js";

export type ObjectType = "commit" | "tree" | "blob";

export interface GitObject extends PackInput {
  readonly type: ObjectType;
  readonly data: Buffer;
}

export function makeObject(type: ObjectType, body: Buffer | string): GitObject {
  const data = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return { type, data, oid: gitObjectId(type, data) };
}

/** A tree from (mode, name, oid) entries, sorted the way git sorts them. */
export function makeTree(entries: readonly TreeItem[]): GitObject {
  return makeObject("tree", encodeTree(entries));
}

/** Write `objects` into the repository `repo` as one pack (duplicates dropped). */
export async function writePack(repo: string, objects: readonly GitObject[]): Promise<void> {
  const r = await run("git", ["index-pack", "--stdin"], { cwd: repo, env: benchEnv(), input: encodePack(objects), check: false });
  if (r.code !== 0) throw new BenchError(`git index-pack failed: ${r.stderr}`);
}

/** Replace the repository's refs with a `packed-refs` file (refs must point at non-tag objects). */
export function writePackedRefs(repo: string, refs: ReadonlyMap<string, string>): void {
  const names = [...refs.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const lines = ["# pack-refs with: peeled fully-peeled sorted "];
  for (const n of names) lines.push(`${refs.get(n)} ${n}`);
  writeFileSync(join(repo, "packed-refs"), lines.join("\n") + "\n");
}
