import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatNarInfo,
  narInfoFingerprint,
  normalizeSha256,
  parseNarInfo,
  parseStorePath,
  type NarInfo,
} from "../../src/protocol/narinfo.js";
import { parsePublicKey, parseSecretKey, signDetached, verifyDetached } from "../../src/protocol/nix-key.js";
import { toNix32, toSri, toHex } from "../../src/protocol/nix-hash.js";
import { cprFailure } from "../support/assert.js";
import { nixTestEnv } from "../support/nix.js";
import { needTools } from "../support/tools.js";

/** A temp directory with a throwaway chroot store `<dir>/s` and a private HOME/cache for nix. */
function nixSandbox() {
  const dir = mkdtempSync(join(tmpdir(), "cpr-narinfo-"));
  const env = nixTestEnv(process.env, { HOME: dir, XDG_CACHE_HOME: join(dir, "cache-home"), XDG_CONFIG_HOME: join(dir, "config") });
  delete env.NIX_REMOTE;
  const run = (tool: string, args: string[]) =>
    execFileSync(tool, args, { env, cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  const done = () => {
    try {
      execFileSync("chmod", ["-R", "u+w", dir], { stdio: "ignore" });
    } catch {
      /* best effort */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, store: join(dir, "s"), run, done };
}

const H1 = "xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c";
const H2 = "lxih6h0h8iqkgrh159kzyqdppgraf75k";
const NARHASH = "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw";

test("real Nix: our fingerprint and signature equal nix store sign's; narinfo round-trips byte for byte; Sig verifies", (t) => {
  if (!needTools(t, "nix-store", "nix", "nix-instantiate")) return;
  const s = nixSandbox();
  try {
    s.run("nix-store", ["--generate-binary-cache-key", "cache-a-1", "a.sec", "a.pub"]);
    s.run("nix-store", ["--generate-binary-cache-key", "cache-b-1", "b.sec", "b.pub"]);
    const secA = parseSecretKey(readFileSync(join(s.dir, "a.sec"), "utf8"), "a.sec");
    const secB = parseSecretKey(readFileSync(join(s.dir, "b.sec"), "utf8"), "b.sec");
    const pubs = [parsePublicKey(readFileSync(join(s.dir, "a.pub"), "utf8")), parsePublicKey(readFileSync(join(s.dir, "b.pub"), "utf8"))];

    // A plain file (no references), text paths that reference other paths, and a .drv (references sources).
    writeFileSync(join(s.dir, "f"), "hello\n");
    const f = s.run("nix-store", ["--store", s.store, "--add", join(s.dir, "f")]);
    const expr = `let a = builtins.toFile "a" "x"; f = ${f}; in builtins.toFile "b" "\${a} \${builtins.storePath f}"`;
    const b = JSON.parse(s.run("nix-instantiate", ["--store", s.store, "--read-write-mode", "--eval", "--json", "-E", expr])) as string;
    const drvExpr = `derivation { name = "d"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo \${builtins.storePath ${b}} > $out" ]; }`;
    const drv = s.run("nix-instantiate", ["--store", s.store, "-E", drvExpr]);
    assert.match(drv, /\.drv$/);
    for (const key of ["a.sec", "b.sec"]) s.run("nix", ["store", "sign", "--store", s.store, "--key-file", join(s.dir, key), "--all"]);

    const infos = JSON.parse(s.run("nix", ["path-info", "--store", s.store, "--json", "--sigs", "--all"])) as {
      path: string;
      narHash: string;
      narSize: number;
      references: string[];
      signatures?: string[];
    }[];
    assert.ok(infos.length >= 4, "f, a, b and the drv");
    let withRefs = 0;
    for (const info of infos) {
      if (info.references.length > 0) withRefs++;
      const fp = narInfoFingerprint({ storePath: info.path, narHash: info.narHash, narSize: info.narSize, references: info.references });
      assert.match(fp, /^1;\/nix\/store\/[^;]+;sha256:[0-9a-z]{52};[0-9]+;/);
      const ours = [signDetached(secA, fp), signDetached(secB, fp)];
      for (const sig of ours)
        assert.ok(info.signatures?.includes(sig), `${info.path}: our ${sig} is among Nix's ${JSON.stringify(info.signatures)}`);
      for (const sig of info.signatures ?? []) assert.ok(verifyDetached(pubs, fp, sig), `${info.path}: Nix's signature verifies`);
    }
    assert.ok(withRefs >= 2, "paths with references were checked");

    s.run("nix", ["copy", "--store", s.store, "--to", `file://${join(s.dir, "cache")}`, "--all"]);
    const narinfos = readdirSync(join(s.dir, "cache")).filter((n) => n.endsWith(".narinfo"));
    assert.equal(narinfos.length, infos.length);
    for (const name of narinfos) {
      const text = readFileSync(join(s.dir, "cache", name), "utf8");
      const parsed = parseNarInfo(text, name);
      assert.equal(formatNarInfo(parsed), text, name);
      assert.equal(parseStorePath(parsed.storePath).hash, name.slice(0, -".narinfo".length));
      assert.equal(parsed.sigs.length, 2, name);
      const fp = narInfoFingerprint(parsed);
      for (const sig of parsed.sigs) assert.ok(verifyDetached(pubs, fp, sig), `${name}: ${sig}`);
      assert.ok(
        !verifyDetached(pubs.slice(0, 1), fp, parsed.sigs.find((x) => x.startsWith("cache-b-1:"))!),
        "only key b made b's signature",
      );
      assert.ok(!verifyDetached(pubs, `${fp}x`, parsed.sigs[0]!), "a changed message fails");
      const info = infos.find((i) => i.path === parsed.storePath)!;
      assert.equal(parsed.narSize, info.narSize);
      assert.equal(normalizeSha256(info.narHash, "narHash"), parsed.narHash);
      assert.deepEqual(parsed.references, info.references.map((r) => parseStorePath(r).basename).sort());
    }
  } finally {
    s.done();
  }
});

test("parseStorePath: full paths, basenames, other store dirs, and the errors", () => {
  assert.deepEqual(parseStorePath(`/nix/store/${H1}-hello-2.12.2`), {
    hash: H1,
    name: "hello-2.12.2",
    basename: `${H1}-hello-2.12.2`,
    path: `/nix/store/${H1}-hello-2.12.2`,
  });
  assert.equal(parseStorePath(`${H1}-a+b_c?=.drv`, { basename: true }).path, `/nix/store/${H1}-a+b_c?=.drv`);
  assert.equal(parseStorePath(`/gnu/store/${H1}-x`, { storeDir: "/gnu/store" }).name, "x");
  const cases: [string, RegExp, { basename?: boolean }?][] = [
    [`/gnu/store/${H1}-x`, /not in the store directory \/nix\/store/],
    [`/nix/store/${H1}-x/bin/sh`, /inside a store path/],
    [`/nix/store/${H1}`, /<32-character hash>-<name>/],
    [`/nix/store/${H1}-`, /<32-character hash>-<name>/],
    [`/nix/store/${H1.slice(0, 31)}e-x`, /not 32 nix32 characters/],
    [`/nix/store/${H1}-.hidden`, /cannot start with '\.'/],
    [`/nix/store/${H1}-a b`, /may only contain/],
    [`/nix/store/${H1}-${"n".repeat(212)}`, /212 characters long; Nix allows 211/],
    [`/nix/store/${H1}-x`, /a basename has no '\/'/, { basename: true }],
  ];
  for (const [input, re, opts] of cases) {
    const err = cprFailure(() => parseStorePath(input, opts));
    assert.equal(err.code, "narinfo.store-path");
    assert.match(err.message, re, input);
    assert.ok(err.message.includes(JSON.stringify(input)), "names the input");
    assert.ok(err.hint);
  }
});

test("normalizeSha256: nix32, hex, SRI and sha256:base64 all give sha256:<nix32>; bad ones name the field", () => {
  const bytes = new Uint8Array(32).map((_, i) => i * 7 + 1);
  const want = `sha256:${toNix32(bytes)}`;
  for (const form of [
    want,
    `sha256:${toHex(bytes)}`,
    `sha256:${toHex(bytes).toUpperCase()}`,
    toSri("sha256", bytes),
    `sha256:${toSri("sha256", bytes).slice(7)}`,
  ])
    assert.equal(normalizeSha256(form, "NarHash"), want, form);
  for (const bad of [
    "",
    "sha256:",
    "md5:abc",
    "sha1-AAAA",
    `sha256:${toNix32(bytes).slice(1)}`,
    `sha256:${toHex(bytes)}0`,
    "sha256-AAAA",
  ]) {
    const err = cprFailure(() => normalizeSha256(bad, "X-Nix-Nar-Hash"));
    assert.equal(err.code, "narinfo.hash");
    assert.match(err.message, /^X-Nix-Nar-Hash ".*" is not a sha256 hash/);
    assert.equal(err.where, "X-Nix-Nar-Hash");
  }
});

function sample(over: Partial<NarInfo> = {}): NarInfo {
  return {
    storePath: `/nix/store/${H1}-hello`,
    url: "nar/abc.nar.xz",
    compression: "xz",
    fileHash: NARHASH,
    fileSize: 128,
    narHash: NARHASH,
    narSize: 120,
    references: [`${H2}-b`, `${H1}-hello`],
    deriver: `${H2}-hello.drv`,
    system: "x86_64-linux",
    sigs: ["k2:BBBB", "k1:AAAA"],
    ca: null,
    ...over,
  };
}

test("formatNarInfo: Nix's field order, sorted references and signatures, optional lines left out", () => {
  assert.equal(
    formatNarInfo(sample()),
    [
      `StorePath: /nix/store/${H1}-hello`,
      "URL: nar/abc.nar.xz",
      "Compression: xz",
      `FileHash: ${NARHASH}`,
      "FileSize: 128",
      `NarHash: ${NARHASH}`,
      "NarSize: 120",
      `References: ${H2}-b ${H1}-hello`,
      `Deriver: ${H2}-hello.drv`,
      "System: x86_64-linux",
      "Sig: k1:AAAA",
      "Sig: k2:BBBB",
      "",
    ].join("\n"),
  );
  const minimal = formatNarInfo(
    sample({ fileHash: null, fileSize: null, references: [], deriver: null, system: null, sigs: [], ca: "text:sha256:x" }),
  );
  assert.equal(
    minimal,
    `StorePath: /nix/store/${H1}-hello\nURL: nar/abc.nar.xz\nCompression: xz\nNarHash: ${NARHASH}\nNarSize: 120\nReferences: \nCA: text:sha256:x\n`,
  );
  assert.deepEqual(parseNarInfo(formatNarInfo(sample())), {
    ...sample(),
    references: [`${H2}-b`, `${H1}-hello`].sort(),
    sigs: ["k1:AAAA", "k2:BBBB"],
  });
  // Any hash form is written as sha256:<nix32>.
  const sri = toSri("sha256", new Uint8Array(32));
  assert.match(formatNarInfo(sample({ narHash: sri })), new RegExp(`NarHash: sha256:${"0".repeat(52)}\n`));
  for (const [over, re] of [
    [{ url: "a\nb" }, /URL contains a line break/],
    [{ url: "" }, /URL is empty/],
    [{ compression: "" }, /Compression is empty/],
    [{ narSize: -1 }, /NarSize must be a whole number/],
    [{ sigs: ["k:A\nStorePath: x"] }, /Sig contains a line break/],
  ] as [Partial<NarInfo>, RegExp][]) {
    const err = cprFailure(() => formatNarInfo(sample(over)));
    assert.equal(err.code, "narinfo.invalid");
    assert.match(err.message, re);
  }
  assert.equal(cprFailure(() => formatNarInfo(sample({ references: ["nope"] }))).code, "narinfo.store-path");
  assert.equal(cprFailure(() => formatNarInfo(sample({ references: [`/gnu/store/${H2}-b`] }))).code, "narinfo.store-path");
  // Full paths are accepted for references and the deriver, and written as basenames.
  assert.equal(
    formatNarInfo(sample({ references: [`/nix/store/${H2}-b`, `${H1}-hello`], deriver: `/nix/store/${H2}-hello.drv` })),
    formatNarInfo(sample()),
  );
  assert.equal(cprFailure(() => formatNarInfo(sample({ narHash: "sha256:zz" }))).code, "narinfo.hash");
});

test("parseNarInfo: defaults, ignored keys, and corrupt inputs with line numbers", () => {
  const base = `StorePath: /nix/store/${H1}-hello\nURL: nar/x.nar\nNarHash: ${NARHASH}\nNarSize: 5\n`;
  const p = parseNarInfo(`${base}Deriver: unknown-deriver\nFuture: whatever\nReferences:`);
  assert.equal(p.compression, "bzip2", "Nix's default");
  assert.equal(p.deriver, null);
  assert.deepEqual(p.references, []);
  assert.equal(p.fileHash, null);
  assert.equal(p.fileSize, null);
  assert.equal(p.system, null);
  assert.equal(parseNarInfo(base.replace(NARHASH, toSri("sha256", new Uint8Array(32)))).narHash, `sha256:${"0".repeat(52)}`);
  const cases: [string, RegExp, string][] = [
    [base.replace(/StorePath.*\n/, ""), /no StorePath line/, "x.narinfo"],
    [base.replace(/URL.*\n/, ""), /no URL line/, "x.narinfo"],
    [base.replace(/NarHash.*\n/, ""), /no NarHash line/, "x.narinfo"],
    [base.replace("NarSize: 5", "NarSize: 0"), /NarSize 0/, "x.narinfo"],
    [base.replace("NarSize: 5", "NarSize: 5x"), /NarSize must be a whole number, got "5x"/, "x.narinfo:4"],
    [`${base}NarSize: 6\n`, /NarSize appears twice/, "x.narinfo:5"],
    [`${base}garbage\n`, /line "garbage" is not `Key: value`/, "x.narinfo:5"],
    [`${base}References: nope\n`, /invalid store path "nope"/, "x.narinfo:5"],
    [base.replace(`/nix/store/${H1}-hello`, "/tmp/x"), /invalid store path "\/tmp\/x"/, "x.narinfo:1"],
    [base.replace(NARHASH, "sha256:bad"), /NarHash "sha256:bad" is not a sha256 hash/, "x.narinfo:3"],
  ];
  for (const [text, re, where] of cases) {
    const err = cprFailure(() => parseNarInfo(text, "x.narinfo"));
    assert.equal(err.code, "narinfo.invalid");
    assert.match(err.message, re);
    assert.equal(err.where, where);
    assert.ok(err.hint);
  }
});

test("narInfoFingerprint: Nix's layout; references as basenames or paths, sorted; another store dir", () => {
  const fp = narInfoFingerprint({
    storePath: `/nix/store/${H1}-hello`,
    narHash: NARHASH,
    narSize: 120,
    references: [`/nix/store/${H2}-b`, `${H1}-hello`],
  });
  assert.equal(fp, `1;/nix/store/${H1}-hello;${NARHASH};120;/nix/store/${H2}-b,/nix/store/${H1}-hello`);
  assert.equal(
    narInfoFingerprint({ storePath: `/nix/store/${H1}-hello`, narHash: NARHASH, narSize: 1, references: [] }),
    `1;/nix/store/${H1}-hello;${NARHASH};1;`,
  );
  assert.equal(
    narInfoFingerprint({ storePath: `/gnu/store/${H1}-x`, narHash: NARHASH, narSize: 1, references: [`${H2}-y`] }, "/gnu/store"),
    `1;/gnu/store/${H1}-x;${NARHASH};1;/gnu/store/${H2}-y`,
  );
  assert.match(
    cprFailure(() => narInfoFingerprint({ storePath: `/nix/store/${H1}-x`, narHash: NARHASH, narSize: 0, references: [] })).message,
    /NAR size 0/,
  );
});
