/**
 * Recognising and decompressing the compressed data found in store paths (and NARs): gzip with node:zlib, xz and zstd
 * with the real `xz` and `zstd` programs (Debian xz-utils, zstd), spawned through the process runner (src/process/run.ts). Output is streamed and capped: past the cap the decompressor is stopped and a CprError
 * `compression.cap` is thrown, so a small bomb cannot fill memory or disk.
 */
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createInflateRaw } from "node:zlib";
import { CprError } from "../protocol/errors.js";
import { spawnChild } from "../process/run.js";

/** Stream formats `decompress` reads; `deflate-raw` is a zip member's deflate data (no header). */
export type StreamCompression = "gzip" | "xz" | "zstd" | "deflate-raw";
export type Container = "gzip" | "xz" | "zstd" | "zip";

/** Magic bytes at the start of each format, and how many bytes sniffing needs. */
const MAGIC: readonly [Container, readonly number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["zip", [0x50, 0x4b, 0x03, 0x04]],
];
export const SNIFF_BYTES = 6;

/** The container format whose magic `head` starts with, or null. */
export function sniffContainer(head: Uint8Array): Container | null {
  for (const [kind, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  return null;
}

export interface DecompressOptions {
  /** Most bytes of output accepted; more is a CprError `compression.cap`. */
  readonly maxOutput: number;
  /** Shown in errors (e.g. the file's path). */
  readonly what?: string;
}

function capError(kind: string, what: string, max: number): CprError {
  return new CprError("compression.cap", `${what}: the ${kind} data decompresses to more than ${max} bytes`, {
    where: what,
    hint: "raise the decompression cap to look inside it, or treat the member as not checked",
  });
}

function corrupt(kind: string, what: string, why: string, cause?: unknown): CprError {
  return new CprError("compression.corrupt", `${what}: cannot decompress the ${kind} data: ${why}`, {
    where: what,
    hint: "the data is not valid " + kind + " (or only starts like it)",
    cause,
  });
}

/**
 * Decompresses `input` (a gzip, xz or zstd stream, concatenated streams too, or raw deflate data) and yields the output in chunks. Stops
 * early, without error, when the consumer stops; throws `compression.cap` past `maxOutput` bytes,
 * `compression.corrupt` on invalid data, `compression.missing` when the program is not installed. An error of
 * `input` itself is passed through unchanged.
 */
export async function* decompress(
  kind: StreamCompression,
  input: AsyncIterable<Uint8Array>,
  opts: DecompressOptions,
): AsyncGenerator<Buffer, void, undefined> {
  const what = opts.what ?? "input";
  let inputError: unknown = null;
  // Only errors of `input` itself are recorded here: Readable.from throws the decompressor's error into this
  // generator at its `yield` when the pipeline fails, and that one is not the input's.
  const source = Readable.from(
    (async function* () {
      const it = input[Symbol.asyncIterator]();
      try {
        for (;;) {
          let r: IteratorResult<Uint8Array>;
          try {
            r = await it.next();
          } catch (e) {
            inputError = e;
            throw e;
          }
          if (r.done) return;
          yield r.value;
        }
      } finally {
        await it.return?.();
      }
    })(),
    { objectMode: false },
  );
  let sink: Writable;
  let output: Readable;
  let exited: Promise<string | null> = Promise.resolve(null);
  let kill = (): void => {};
  if (kind === "gzip" || kind === "deflate-raw") {
    const gunzip = kind === "gzip" ? createGunzip() : createInflateRaw();
    sink = gunzip;
    output = gunzip;
    kill = () => gunzip.destroy();
  } else {
    const [cmd, args] = kind === "xz" ? ["xz", ["-d", "-c", "-q", "-T1"]] : ["zstd", ["-d", "-c", "-q"]];
    const child = spawnChild(cmd, args);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString();
    });
    exited = new Promise((resolve) => {
      child.once("error", (err) => {
        const e = err as NodeJS.ErrnoException;
        resolve(e.code === "ENOENT" ? `missing:${cmd}` : e.message);
      });
      child.once("close", (code, signal) =>
        resolve(code === 0 ? null : signal ? `killed by ${signal}` : `exit ${code}${stderr ? `: ${stderr.trim()}` : ""}`),
      );
    });
    child.stdin.on("error", () => {}); // EPIPE when the program stops reading (corrupt data, or killed): reported below
    sink = child.stdin;
    output = child.stdout;
    kill = () => child.kill("SIGKILL");
  }
  // Feeding runs beside the reading below; its failure is either the input's (rethrown) or the decompressor's
  // (reported by the output side).
  const fed = pipeline(source, sink).catch(() => {});
  let size = 0;
  let finished = false;
  try {
    try {
      for await (const chunk of output) {
        const b = chunk as Buffer;
        size += b.length;
        if (size > opts.maxOutput) throw capError(kind, what, opts.maxOutput);
        yield b;
      }
    } catch (e) {
      if (e instanceof CprError) throw e;
      if (inputError) throw inputError;
      throw corrupt(kind, what, e instanceof Error ? e.message : String(e), e);
    }
    await fed;
    if (inputError) throw inputError;
    const failure = await exited;
    if (failure?.startsWith("missing:")) {
      const cmd = failure.slice("missing:".length);
      throw new CprError("compression.missing", `${what}: cannot decompress ${kind} data: ${cmd} is not installed`, {
        where: what,
        hint: `install ${cmd} (Debian: ${cmd === "xz" ? "xz-utils" : "zstd"})`,
      });
    }
    if (failure) throw corrupt(kind, what, failure);
    finished = true;
  } finally {
    if (!finished) {
      kill();
      source.destroy();
      await fed;
    }
  }
}
