/**
 * Nix binary-cache metadata, pure: store paths, narinfo text and the fingerprint narinfo signatures sign.
 *
 * The text format is Nix's own (libstore/nar-info.cc): one `Key: value` line per field, in the order StorePath, URL,
 * Compression, FileHash, FileSize, NarHash, NarSize, References, Deriver, System, Sig (one line each), CA, each line
 * ending in "\n". References are space-separated basenames, sorted (the line is `References: ` when there are none);
 * the deriver is a basename. Hashes are written `sha256:<nix32>`.
 */
import { CprError } from "./errors.js";
import { NIX32_ALPHABET, parseNixHash, toNix32Hash } from "./nix-hash.js";

export const STORE_DIR = "/nix/store";

export interface StorePath {
  /** 32-char nix32 hash part. */
  readonly hash: string;
  readonly name: string;
  /** `<hash>-<name>` */
  readonly basename: string;
  /** `<storeDir>/<hash>-<name>` */
  readonly path: string;
}

export interface NarInfo {
  readonly storePath: string;
  readonly url: string;
  readonly compression: string;
  /** `sha256:<nix32>`; optional in Nix's format. */
  readonly fileHash: string | null;
  readonly fileSize: number | null;
  /** `sha256:<nix32>` */
  readonly narHash: string;
  readonly narSize: number;
  /** Basenames, sorted. */
  readonly references: readonly string[];
  /** Basename, or null. */
  readonly deriver: string | null;
  readonly system: string | null;
  readonly sigs: readonly string[];
  readonly ca: string | null;
}

/** Length of a store path's hash part (160 bits in nix32). */
export const STORE_HASH_LENGTH = 32;
/** Longest store path name Nix accepts. */
export const MAX_STORE_NAME_LENGTH = 211;

const HASH_PART = new RegExp(`^[${NIX32_ALPHABET}]{${STORE_HASH_LENGTH}}$`);
const NAME_CHARS = /^[A-Za-z0-9+\-._?=]+$/;

const STORE_PATH_HINT = "a store path looks like /nix/store/<32 characters of 0-9 a-z except e o u t>-<name>";

/** Parses `/nix/store/<32 nix32>-<name>` (or a basename when `basename` is set); throws CprError naming the input. */
export function parseStorePath(text: string, opts: { storeDir?: string; basename?: boolean } = {}): StorePath {
  const storeDir = opts.storeDir ?? STORE_DIR;
  const bad = (why: string): CprError =>
    new CprError("narinfo.store-path", `invalid store path ${JSON.stringify(text)}: ${why}`, {
      where: text,
      hint: opts.basename ? "a store path basename looks like <32 characters of 0-9 a-z except e o u t>-<name>" : STORE_PATH_HINT,
    });
  if (typeof text !== "string") throw bad("not a string");
  let base: string;
  if (opts.basename) {
    if (text.includes("/")) throw bad("a basename has no '/'");
    base = text;
  } else {
    const prefix = `${storeDir}/`;
    if (!text.startsWith(prefix)) throw bad(`not in the store directory ${storeDir}`);
    base = text.slice(prefix.length);
    if (base.includes("/")) throw bad("it names a file inside a store path, not the store path itself");
  }
  const hash = base.slice(0, STORE_HASH_LENGTH);
  if (base.length < STORE_HASH_LENGTH + 2 || base[STORE_HASH_LENGTH] !== "-")
    throw bad(`expected <${STORE_HASH_LENGTH}-character hash>-<name>`);
  if (!HASH_PART.test(hash)) throw bad(`the hash part ${JSON.stringify(hash)} is not ${STORE_HASH_LENGTH} nix32 characters`);
  const name = base.slice(STORE_HASH_LENGTH + 1);
  if (name.length > MAX_STORE_NAME_LENGTH) throw bad(`the name is ${name.length} characters long; Nix allows ${MAX_STORE_NAME_LENGTH}`);
  if (name.startsWith(".")) throw bad("the name cannot start with '.'");
  if (!NAME_CHARS.test(name)) throw bad("the name may only contain A-Z a-z 0-9 + - . _ ? =");
  return { hash, name, basename: base, path: `${storeDir}/${base}` };
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedUnique(items: Iterable<string>): string[] {
  return [...new Set(items)].sort(byCodeUnits);
}

/** The basename of a store path given either as a basename or as a full path in `storeDir`. */
function baseOf(ref: string, storeDir: string = STORE_DIR): string {
  return parseStorePath(ref, { storeDir, basename: !ref.includes("/") }).basename;
}

/**
 * Renders a narinfo exactly as Nix writes one (field order StorePath, URL, Compression, FileHash, FileSize, NarHash,
 * NarSize, References, Deriver, System, Sig, CA). References and signatures are written sorted and without repeats,
 * as Nix keeps them in ordered sets; a reference or deriver given as a full path is written as its basename.
 * FileHash/FileSize lines are left out when null. Throws CprError
 * `narinfo.invalid` on a value that would not survive the round trip (a newline, an empty URL, a bad hash).
 */
export function formatNarInfo(info: NarInfo): string {
  const where = info.storePath;
  const check = (field: string, value: string): string => {
    if (/[\n\r]/.test(value))
      throw new CprError("narinfo.invalid", `narinfo field ${field} contains a line break: ${JSON.stringify(value)}`, {
        where,
        hint: "narinfo values are single lines",
      });
    return value;
  };
  const size = (field: string, value: number): string => {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new CprError("narinfo.invalid", `narinfo field ${field} must be a whole number ≥ 0, got ${value}`, {
        where,
        hint: "give the size in bytes",
      });
    return String(value);
  };
  parseStorePath(info.storePath);
  if (info.url === "")
    throw new CprError("narinfo.invalid", "narinfo field URL is empty", { where, hint: "give the NAR's URL, e.g. nar/<filehash>.nar.xz" });
  if (info.compression === "")
    throw new CprError("narinfo.invalid", "narinfo field Compression is empty", {
      where,
      hint: "give the compression, e.g. xz, zstd or none",
    });
  let s = `StorePath: ${info.storePath}\n`;
  s += `URL: ${check("URL", info.url)}\n`;
  s += `Compression: ${check("Compression", info.compression)}\n`;
  if (info.fileHash !== null) s += `FileHash: ${normalizeSha256(info.fileHash, "narinfo FileHash")}\n`;
  if (info.fileSize !== null) s += `FileSize: ${size("FileSize", info.fileSize)}\n`;
  s += `NarHash: ${normalizeSha256(info.narHash, "narinfo NarHash")}\n`;
  s += `NarSize: ${size("NarSize", info.narSize)}\n`;
  s += `References: ${sortedUnique(info.references.map((r) => baseOf(r))).join(" ")}\n`;
  if (info.deriver !== null) s += `Deriver: ${baseOf(info.deriver)}\n`;
  if (info.system !== null && info.system !== "") s += `System: ${check("System", info.system)}\n`;
  for (const sig of sortedUnique(info.sigs)) s += `Sig: ${check("Sig", sig)}\n`;
  if (info.ca !== null) s += `CA: ${check("CA", info.ca)}\n`;
  return s;
}

/**
 * Parses narinfo text; unknown keys are ignored, missing required ones (StorePath, URL, NarHash, NarSize) are errors.
 * As in Nix, a missing Compression means `bzip2` and `Deriver: unknown-deriver` means none. Hashes are returned as
 * `sha256:<nix32>` whatever form the text used; references and signatures sorted.
 */
export function parseNarInfo(text: string, where?: string): NarInfo {
  const at = where ?? "narinfo";
  const corrupt = (why: string, line?: number): CprError =>
    new CprError("narinfo.invalid", `narinfo is corrupt: ${why}`, {
      where: line === undefined ? at : `${at}:${line}`,
      hint: "a narinfo is `Key: value` lines with at least StorePath, URL, NarHash and NarSize",
    });
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  let storePath: string | null = null;
  let url: string | null = null;
  let compression: string | null = null;
  let fileHash: string | null = null;
  let fileSize: number | null = null;
  let narHash: string | null = null;
  let narSize: number | null = null;
  let references: string[] | null = null;
  let deriver: string | null | undefined;
  let system: string | null = null;
  let ca: string | null = null;
  const sigs: string[] = [];
  const seen = new Set<string>();
  const wrap = <T>(lineNo: number, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof CprError)
        throw new CprError("narinfo.invalid", `narinfo is corrupt: ${e.message}`, { where: `${at}:${lineNo}`, hint: e.hint, cause: e });
      throw e;
    }
  };
  const int = (key: string, value: string, lineNo: number): number => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n))
      throw corrupt(`${key} must be a whole number, got ${JSON.stringify(value)}`, lineNo);
    return n;
  };
  for (const [i, line] of lines.entries()) {
    const lineNo = i + 1;
    const colon = line.indexOf(": ");
    if (colon <= 0) {
      // Nix tolerates `Key:` with nothing after it only as the empty References line.
      if (line === "References:") {
        if (seen.has("References")) throw corrupt("References appears twice", lineNo);
        seen.add("References");
        references = [];
        continue;
      }
      throw corrupt(`line ${JSON.stringify(line)} is not \`Key: value\``, lineNo);
    }
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key !== "Sig") {
      if (seen.has(key)) throw corrupt(`${key} appears twice`, lineNo);
      seen.add(key);
    }
    switch (key) {
      case "StorePath":
        storePath = wrap(lineNo, () => parseStorePath(value).path);
        break;
      case "URL":
        url = value;
        break;
      case "Compression":
        compression = value;
        break;
      case "FileHash":
        fileHash = wrap(lineNo, () => normalizeSha256(value, "FileHash"));
        break;
      case "FileSize":
        fileSize = int(key, value, lineNo);
        break;
      case "NarHash":
        narHash = wrap(lineNo, () => normalizeSha256(value, "NarHash"));
        break;
      case "NarSize":
        narSize = int(key, value, lineNo);
        break;
      case "References":
        references = wrap(lineNo, () =>
          value
            .split(" ")
            .filter((r) => r !== "")
            .map((r) => parseStorePath(r, { basename: true }).basename),
        );
        break;
      case "Deriver":
        deriver = value === "unknown-deriver" ? null : wrap(lineNo, () => parseStorePath(value, { basename: true }).basename);
        break;
      case "System":
        system = value;
        break;
      case "Sig":
        sigs.push(value);
        break;
      case "CA":
        ca = value;
        break;
      default:
        break; // unknown keys are ignored, as Nix does
    }
  }
  if (storePath === null) throw corrupt("no StorePath line");
  if (url === null || url === "") throw corrupt("no URL line");
  if (narHash === null) throw corrupt("no NarHash line");
  if (narSize === null || narSize === 0) throw corrupt("no NarSize line (or NarSize 0)");
  return {
    storePath,
    url,
    compression: compression === null || compression === "" ? "bzip2" : compression,
    fileHash,
    fileSize,
    narHash,
    narSize,
    references: sortedUnique(references ?? []),
    deriver: deriver ?? null,
    system,
    sigs: sortedUnique(sigs),
    ca,
  };
}

/**
 * `1;<storePath>;<narHash>;<narSize>;<comma-separated full reference paths>`, the message narinfo signatures sign
 * (Nix's ValidPathInfo::fingerprint). The NAR hash is written `sha256:<nix32>` whatever form it is given in;
 * references may be basenames or full paths and are written as full paths, sorted.
 */
export function narInfoFingerprint(
  info: Pick<NarInfo, "storePath" | "narHash" | "narSize" | "references">,
  storeDir: string = STORE_DIR,
): string {
  const path = parseStorePath(info.storePath, { storeDir }).path;
  if (!Number.isSafeInteger(info.narSize) || info.narSize <= 0)
    throw new CprError(
      "narinfo.invalid",
      `cannot compute the fingerprint of ${path}: its NAR size ${info.narSize} is not a positive whole number`,
      {
        where: path,
        hint: "give the NAR size in bytes",
      },
    );
  const refs = sortedUnique(info.references.map((r) => baseOf(r, storeDir))).map((b) => `${storeDir}/${b}`);
  return `1;${path};${normalizeSha256(info.narHash, `NAR hash of ${path}`)};${info.narSize};${refs.join(",")}`;
}

/** Accepts `sha256:<nix32>`, `sha256:<hex>` or SRI `sha256-<base64>`; returns `sha256:<nix32>`. */
export function normalizeSha256(text: string, what: string): string {
  // Nix also writes `sha256:<base64>`; read it as the SRI form it is equivalent to.
  const b64 = /^sha256:([A-Za-z0-9+/]{43}=)$/.exec(text);
  try {
    return toNix32Hash("sha256", parseNixHash(b64 ? `sha256-${b64[1]}` : text).bytes);
  } catch (e) {
    if (!(e instanceof CprError)) throw e;
    throw new CprError(
      "narinfo.hash",
      `${what} ${JSON.stringify(text)} is not a sha256 hash: ${e.message.replace(/^invalid hash "[^"]*": /, "")}`,
      {
        where: what,
        hint: "write sha256:<52 nix32 characters>, sha256:<64 hex digits> or sha256-<base64> (SRI)",
        cause: e,
      },
    );
  }
}
