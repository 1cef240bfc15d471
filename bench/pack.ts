/**
 * A minimal git object and pack writer for building benchmark fixtures fast: object ids computed here, all objects
 * sent as ONE undeltified pack through `git index-pack --stdin`, refs written as a `packed-refs` file. (Writing tens of
 * thousands of loose objects through `hash-object -w` spends most of its time in the filesystem.)
 */
import { createHash } from "node:crypto";
import { deflateSync } from "node:zlib";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchEnv, BenchError, run } from "./lib.js";

export type ObjectType = "commit" | "tree" | "blob";
const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };

export interface GitObject {
  type: ObjectType;
  body: Buffer;
  oid: string;
}

export function makeObject(type: ObjectType, body: Buffer | string): GitObject {
  const b = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const oid = createHash("sha1").update(`${type} ${b.length}\0`).update(b).digest("hex");
  return { type, body: b, oid };
}

/** A tree from (mode, name, oid) entries; sorts them the way git does (trees compare as `name/`). */
export function makeTree(entries: readonly { mode: string; name: string; oid: string }[]): GitObject {
  const key = (e: { mode: string; name: string }) => (e.mode === "40000" ? `${e.name}/` : e.name);
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(key(a)), Buffer.from(key(b))));
  const parts: Buffer[] = [];
  for (const e of sorted) parts.push(Buffer.from(`${e.mode} ${e.name}\0`, "utf8"), Buffer.from(e.oid, "hex"));
  return makeObject("tree", Buffer.concat(parts));
}

function packHeader(type: ObjectType, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (TYPE_CODE[type] << 4) | (size & 0x0f);
  size = Math.floor(size / 16);
  while (size > 0) {
    bytes.push(byte | 0x80);
    byte = size & 0x7f;
    size = Math.floor(size / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

/** Write `objects` into the repository `repo` as one pack (duplicates dropped). */
export async function writePack(repo: string, objects: readonly GitObject[]): Promise<void> {
  const seen = new Set<string>();
  const unique = objects.filter((o) => !seen.has(o.oid) && seen.add(o.oid));
  const head = Buffer.alloc(12);
  head.write("PACK", 0, "ascii");
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(unique.length, 8);
  const parts: Buffer[] = [head];
  for (const o of unique) parts.push(packHeader(o.type, o.body.length), deflateSync(o.body, { level: 1 }));
  const body = Buffer.concat(parts);
  const pack = Buffer.concat([body, createHash("sha1").update(body).digest()]);
  const r = await run("git", ["index-pack", "--stdin"], { cwd: repo, env: benchEnv(), input: pack, check: false });
  if (r.code !== 0) throw new BenchError(`git index-pack failed: ${r.stderr}`);
}

/** Replace the repository's refs with a `packed-refs` file (refs must point at non-tag objects). */
export function writePackedRefs(repo: string, refs: ReadonlyMap<string, string>): void {
  const names = [...refs.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const lines = ["# pack-refs with: peeled fully-peeled sorted "];
  for (const n of names) lines.push(`${refs.get(n)} ${n}`);
  writeFileSync(join(repo, "packed-refs"), lines.join("\n") + "\n");
}
