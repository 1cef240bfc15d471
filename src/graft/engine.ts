/**
 * The graft engine (docs/grafts.md, "The engine"): executes a GraftPlan (src/protocol/graft.ts) from a NAR source to
 * a sink. For each member, dependencies first, it opens the original's NAR from the source, rewrites it with the
 * member's rewrites (one pass, constant memory, src/graft/rewrite.ts), scans the output for every old hash part of
 * the graft (the residue scan) and streams it into the sink. It returns what each member became: its graft path,
 * NarHash, NarSize, references and residue report.
 *
 * Writing is the first of three phases: the caller checks every member's residue (checkResidue in
 * src/protocol/graft-safety.ts), then commits every staged member, or discards them all, so that nothing is stored for
 * a refused graft. The registry's source is its artifact store (its own stored NARs, never a client's bytes); a local
 * graft's is `nix-store --dump` (dumpNar).
 */
import { createHash } from "node:crypto";
import type { Writable } from "node:stream";
import { CprError } from "../protocol/errors.js";
import type { GraftPlan, GraftedMember } from "../protocol/graft.js";
import type { MemberResidue } from "../protocol/graft-safety.js";
import { parseNixHash } from "../protocol/nix-hash.js";
import { parseStorePath } from "../protocol/store-path.js";
import type { ResidueOptions, ResidueReport } from "./residue.js";
import { rewriteNar } from "./rewrite.js";

/** Where original NARs come from. */
export interface NarSource {
  /**
   * The NAR of `path` (an original closure member). `narHash` (`sha256:<nix32>`), when known, is checked against what
   * was read: a stored NAR that changed is refused.
   */
  open(path: string): AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>;
  /** The recorded NarHash of `path`, to check what `open` gives; null to skip the check. */
  narHash?(path: string): string | null | Promise<string | null>;
}

/** Where grafted NARs go. `T` is whatever the sink keeps per member (a temporary file, a buffer…). */
export interface GraftSink<T> {
  /** A writable for the grafted NAR of `member` (the engine ends it), and the sink's handle on it. */
  open(member: GraftedMember): Promise<{ output: Writable; staged: T }>;
}

/** What one member became. */
export interface MemberResult<T> {
  readonly original: string;
  readonly graft: string;
  /** `sha256:<nix32>` */
  readonly narHash: string;
  readonly narSize: number;
  /** Full store paths, sorted. */
  readonly references: readonly string[];
  readonly residue: ResidueReport;
  /** How many times each rewrite applied, in the member's rewrite order. */
  readonly counts: readonly number[];
  readonly staged: T;
}

export interface WriteGraftOptions<T> {
  readonly source: NarSource;
  readonly sink: GraftSink<T>;
  /** Limits of the residue scan. */
  readonly residue?: ResidueOptions;
  /** Members not to write (e.g. already stored by an earlier graft); they are left out of the result. */
  readonly skip?: (member: GraftedMember) => boolean;
  /** Called after each member. */
  readonly onMember?: (result: MemberResult<T>) => void;
  /**
   * Members rewritten at once (default 2). Each member's rewrites are known from the plan, so members do not wait
   * for each other; the results keep the plan's order (dependencies first).
   */
  readonly concurrency?: number;
}

/** Every old hash part of a graft: the replaced paths' and the grafted members' (the residue scan looks for them). */
export function oldHashParts(plan: GraftPlan): string[] {
  return [...new Set([...plan.remap.keys()].map((p) => parseStorePath(p).hash))].sort();
}

/** Hashes what flows through, to check an original NAR against its recorded NarHash. */
async function* checked(input: AsyncIterable<Uint8Array>, path: string, expected: string | null): AsyncGenerator<Uint8Array> {
  if (expected === null) {
    yield* input;
    return;
  }
  const want = Buffer.from(parseNixHash(expected).bytes);
  const h = createHash("sha256");
  for await (const chunk of input) {
    h.update(chunk);
    yield chunk;
  }
  if (!h.digest().equals(want)) {
    throw new CprError("graft.source-hash", `the NAR read for ${path} does not have its recorded hash ${expected}`, {
      where: path,
      hint: "the stored copy changed or is damaged: restore it (or push the path again), then retry the graft",
    });
  }
}

/**
 * Phase one: rewrites every member of `plan` from the source into the sink, with the residue scan, `concurrency` at
 * a time; the results in the plan's order (dependencies first). Rejects with the first failure once every member
 * started has finished (the caller discards what was staged).
 */
export async function writeGraft<T>(plan: GraftPlan, opts: WriteGraftOptions<T>): Promise<MemberResult<T>[]> {
  const hashParts = oldHashParts(plan);
  const members = plan.members.filter((m) => !opts.skip?.(m));
  const out: (MemberResult<T> | undefined)[] = new Array(members.length);
  const one = async (member: GraftedMember): Promise<MemberResult<T>> => {
    const expected = opts.source.narHash ? await opts.source.narHash(member.original) : null;
    const input = checked(await opts.source.open(member.original), member.original, expected);
    const { output, staged } = await opts.sink.open(member);
    const r = await rewriteNar(input, member.rewrites, { output, scan: { hashParts, ...opts.residue } });
    return {
      original: member.original,
      graft: member.graft,
      narHash: r.narHash,
      narSize: r.narSize,
      references: member.references,
      residue: r.residue!,
      counts: r.counts,
      staged,
    };
  };
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < members.length) {
      const i = next++;
      try {
        out[i] = await one(members[i]!);
      } catch (e) {
        failed = true;
        throw e;
      }
      opts.onMember?.(out[i]!);
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? 2, members.length));
  const settled = await Promise.allSettled(Array.from({ length: n }, worker));
  const rejected = settled.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (rejected) throw rejected.reason;
  return out as MemberResult<T>[];
}

/** The residue of each member, as the safety rule reads it. */
export function residueOf(results: readonly MemberResult<unknown>[]): MemberResidue[] {
  return results.map((r) => ({ path: r.graft, hits: r.residue.hits, unscanned: r.residue.unscanned, damaged: r.residue.damaged }));
}
