import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { CprError } from "../../src/protocol/errors.js";
import { atomId } from "../../src/protocol/id.js";
import {
  DEFAULT_LOCKER,
  DEFAULT_LOCKER_SET,
  defaultLocker,
  lockerEntry,
  formatLock,
  isLockHash,
  LOCK_HEADER,
  lockAtom,
  parseLock,
  sortMirrors,
  type Lockfile,
} from "../../src/protocol/lock.js";
import { tomlBasicString } from "../../src/protocol/toml.js";
import { cprFailure } from "../support/assert.js";

const fixtures = new URL("../../../test/fixtures/locks/", import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, fixtures), "utf8");
/** The rev the eka fixtures' [locker] has (another mirror's, as far as these tests care). */
const LOCKER_REV = "0123456789abcdef0123456789abcdef01234567";
const EKA = "4abbd2644bc3585e9be95deb277ccf48f6ed26ac";
const ATOM = "68b63bd131acd23bdfd57983fe85ba7c092ce02f";

function throwsCpr(fn: () => unknown, code: string, where?: RegExp, message?: RegExp): CprError {
  const caught = cprFailure(fn, `expected a CprError ${code}`);
  assert.equal(caught.code, code, caught.message);
  if (where) assert.match(caught.where ?? "", where);
  if (message) assert.match(caught.message, message);
  return caught;
}

test("eka lock with [locker] and every dep type reads", () => {
  const lock = parseLock(fixture("eka-with-locker.lock"), "atom.lock");
  assert.equal(lock.version, 1);
  assert.deepEqual(lock.sets[ATOM], { tag: "atom", mirrors: ["https://github.com/ekala-project/atom"] });
  assert.deepEqual(lock.sets[EKA]!.mirrors, ["https://github.com/ekala-project/eka.git", "::"]);
  assert.equal(lock.locker?.label, "nix-lock");
  assert.equal(lock.compose.use, "atom");
  assert.deepEqual(
    lock.deps.map((d) => d.type),
    ["nix+git", "atom", "atom", "nix", "nix+tar", "nix+src", "nix+git"],
  );
  const src = lock.deps.find((d) => d.type === "nix+src");
  assert.deepEqual(src, {
    type: "nix+src",
    name: "zlib-1",
    url: "https://www.zlib.net/zlib-1.3.1.tar.gz",
    hash: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    unpack: true,
  });
  const tool = lock.deps.find((d) => d.type === "nix+git" && d.name === "tool");
  assert.ok(tool && tool.type === "nix+git" && tool.version === "2.3.0");
  const nixpkgs = lock.deps.find((d) => d.type === "nix+git" && d.name === "nixpkgs");
  assert.ok(nixpkgs && nixpkgs.type === "nix+git" && nixpkgs.version === null);
});

test("eka lock without [locker] reads; it is written with the §10 default locker, or the one given", () => {
  const lock = parseLock(fixture("eka-no-locker.lock"), "atom.lock");
  assert.equal(lock.locker, null);
  assert.deepEqual(lock.compose, { use: "nix", entry: "nix" });
  const dev = lock.deps[0]!;
  assert.ok(dev.type === "atom" && dev.rev === null && dev.mirror === null && dev.version === "0.1.4-local");
  assert.deepEqual(lock.deps[1], {
    type: "nix+src",
    name: "src",
    url: "https://example.org/src.tar.gz",
    hash: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    unpack: false,
  });
  // The §10 default, byte for byte: nix-lock 0.1.6 at the published rev of refs/eka/atoms/nix-lock/0.1.6.
  const written = formatLock(lock);
  assert.ok(
    written.includes(`
[locker]
label = "nix-lock"
version = "0.1.6"
set = "4abbd2644bc3585e9be95deb277ccf48f6ed26ac"
rev = "e711aa1f48d877652dd2ba724d4af752be7b5371"
mirror = "https://github.com/ekala-project/eka"
id = "r3rlam6bd31t9i04ggug7avs8vf8981q7a3b6gobemk1gfs50qm0"

[compose]
`),
    written,
  );
  assert.deepEqual(DEFAULT_LOCKER, parseLock(written, "atom.lock").locker);
  const out = formatLock(lock, { defaultLocker: defaultLocker(LOCKER_REV) });
  const again = parseLock(out, "atom.lock");
  assert.deepEqual(again.locker, {
    label: "nix-lock",
    version: "0.1.6",
    set: DEFAULT_LOCKER_SET,
    rev: LOCKER_REV,
    mirror: "https://github.com/ekala-project/eka",
    id: atomId(DEFAULT_LOCKER_SET, "nix-lock"),
  });
  // An existing [locker] wins over the default.
  const kept = formatLock(parseLock(fixture("eka-with-locker.lock"), "a"), { defaultLocker: defaultLocker("f".repeat(40)) });
  assert.match(kept, new RegExp(`rev = "${LOCKER_REV}"`));
  throwsCpr(() => defaultLocker("nope"), "lock.invalid-rev");
  throwsCpr(
    () => lockerEntry({ label: "my-lock", version: "1.0.0", set: EKA, mirror: "https://example.org/x", rev: "0".repeat(39) }),
    "lock.invalid-rev",
  );
  assert.deepEqual(lockerEntry({ label: "my-lock", version: "1.0.0", set: EKA, mirror: "https://example.org/x", rev: LOCKER_REV }), {
    label: "my-lock",
    version: "1.0.0",
    set: EKA,
    rev: LOCKER_REV,
    mirror: "https://example.org/x",
    id: atomId(EKA, "my-lock"),
  });
  assert.equal(lockAtom({ label: "dev", version: "0.1.0", set: EKA, rev: null, mirror: null }).id, atomId(EKA, "dev"));
});

test("writing is deterministic and stable: format(parse(x)) is a fixed point", () => {
  for (const name of ["eka-with-locker.lock", "eka-no-locker.lock", "static-sha256.lock", "spec-example.lock"]) {
    const opts = { defaultLocker: defaultLocker(LOCKER_REV) };
    const once = formatLock(parseLock(fixture(name), name), opts);
    assert.ok(once.startsWith(LOCK_HEADER + "version = 1\n"), name);
    assert.equal(formatLock(parseLock(once, name), opts), once, name);
    assert.doesNotThrow(() => parseToml(once), name);
  }
});

test("eka lock is rewritten in docs/formats.md §11.8 order", () => {
  const out = formatLock(parseLock(fixture("eka-with-locker.lock"), "atom.lock"));
  const expected = `${LOCK_HEADER}version = 1

[sets.${EKA}]
tag = "eka"
mirrors = [
    "::",
    "https://github.com/ekala-project/eka.git",
]

[sets.${ATOM}]
tag = "atom"
mirrors = ["https://github.com/ekala-project/atom"]
`;
  assert.ok(out.startsWith(expected), out);
  const order = [...out.matchAll(/^\[\[deps\]\]\ntype = "([^"]+)"\n(?:label|name) = "([^"]+)"/gm)].map((m) => `${m[1]}:${m[2]}`);
  // atoms by (root bytes, label), then direct entries by name
  assert.deepEqual(order, [
    "atom:dev",
    "atom:hosts",
    "nix+git:nixpkgs",
    "nix+tar:nixpkgs-unstable",
    "nix:patch",
    "nix+git:tool",
    "nix+src:zlib-1",
  ]);
  assert.match(out, /\nunpack = true\n/);
  assert.match(out, /name = "tool"\nurl = "https:\/\/example.org\/tool.git"\nversion = "2.3.0"\nrev = /);
  // hashes are kept as written
  assert.match(out, /hash = "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"/);
});

test("the upstream atom protocol's complete lock example (real ids substituted) round-trips byte for byte", () => {
  const text = fixture("spec-example.lock");
  assert.equal(formatLock(parseLock(text, "atom.lock")), text);
  // The fixture is the upstream spec's text (format pre1, beside the repository when present) with its placeholders filled in.
  const specPath = fileURLToPath(new URL("../../../../shared/spec/atom-protocol.md", import.meta.url));
  if (existsSync(specPath)) {
    const spec = readFileSync(specPath, "utf8");
    const section = spec.slice(spec.indexOf("Complete example; ids and the locker rev are placeholders"));
    const m = /```toml\n([\s\S]*?)```/.exec(section);
    assert.ok(m);
    let example = m[1]!.replace("<40-hex id of refs/eka/atoms/nix-lock/0.1.6>", LOCKER_REV);
    for (const [set, label] of [
      [EKA, "nix-lock"],
      [ATOM, "atom-nix"],
      [EKA, "dev"],
    ] as const) {
      example = example.replace("<52-char AtomId>", atomId(set, label));
    }
    assert.equal(example, text);
  }
});

test("hash spellings: SRI, sha256:<nix32>, sha256:<hex>; anything else is refused", () => {
  assert.ok(isLockHash("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
  assert.ok(isLockHash("sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"));
  assert.ok(isLockHash("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  assert.ok(!isLockHash("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"));
  assert.ok(!isLockHash("sha256:eb8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s")); // 'e' is not nix32
  assert.ok(!isLockHash("sha512-abc"));
  const bad = fixture("eka-with-locker.lock").replace("sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", "sha256:xyz");
  throwsCpr(() => parseLock(bad, "atom.lock"), "lock.invalid-hash", /^atom\.lock:70:1$/, /\[\[deps\]\] #5 hash/);
});

test("id mismatch names the entry and both values, with its position", () => {
  const text = fixture("eka-with-locker.lock");
  const wrong = atomId(ATOM, "other");
  const bad = text.replace('id = "rr8iddi3tdfmqkv59fu3bi8a2hn1s170mnpnhf0579emjd6cbtmg"', `id = "${wrong}"`);
  const e = throwsCpr(() => parseLock(bad, "x/atom.lock"), "lock.id-mismatch", /^x\/atom\.lock:49:1$/);
  assert.match(e.message, /"hosts"/);
  assert.match(e.message, new RegExp(wrong));
  assert.match(e.message, /rr8iddi3tdfmqkv59fu3bi8a2hn1s170mnpnhf0579emjd6cbtmg/);
  const locker = text.replace('id = "r3rlam6bd31t9i04ggug7avs8vf8981q7a3b6gobemk1gfs50qm0"', `id = "${wrong}"`);
  throwsCpr(() => parseLock(locker, "atom.lock"), "lock.id-mismatch", /:24:1$/, /\[locker\]/);
});

test("unknown keys are errors (except unpack on nix+src), with file:line:col", () => {
  const text = fixture("eka-with-locker.lock");
  throwsCpr(() => parseLock(text.replace('tag = "atom"\n', 'tag = "atom"\nextra = 1\n'), "atom.lock"), "lock.unknown-key", /:7:1$/);
  throwsCpr(() => parseLock(text + "\n[extra]\n", "atom.lock"), "lock.unknown-key", /:86:1$/, /"extra"/);
  throwsCpr(
    () => parseLock(text.replace('name = "patch"\n', 'name = "patch"\nunpack = true\n'), "atom.lock"),
    "lock.unknown-key",
    /:63:1$/,
  );
  throwsCpr(() => parseLock(text.replace('entry = "eka"', 'entry = "eka"\nexec = true'), "atom.lock"), "lock.unknown-key", /:35:1$/);
});

test("version must be 1; structural errors", () => {
  const text = fixture("static-sha256.lock");
  throwsCpr(
    () => parseLock(text.replace("version = 1", "version = 2"), "atom.lock"),
    "lock.version",
    /:3:1$/,
    /unsupported lock version 2/,
  );
  throwsCpr(() => parseLock(text.replace("version = 1", 'version = "1"'), "atom.lock"), "lock.version");
  throwsCpr(() => parseLock(text.replace("version = 1\n", ""), "atom.lock"), "lock.version");
  throwsCpr(() => parseLock("version = 1\n[compose\n", "atom.lock"), "lock.syntax", /^atom\.lock:2:/);
  throwsCpr(() => parseLock(text.replace('use = "static"', 'use = "flake"'), "atom.lock"), "lock.compose");
  throwsCpr(() => parseLock(text.replace("[sets.c0ffee00", "[sets.C0FFEE00"), "atom.lock"), "lock.invalid-hex");
  throwsCpr(() => parseLock(`version = 1\n\n[[deps]]\ntype = "flake"\n`, "atom.lock"), "lock.dep-type", /:4:1$/);
  const dup = fixture("eka-with-locker.lock") + '\n[[deps]]\ntype = "nix+git"\nname = "tool"\nurl = "u"\nrev = "' + LOCKER_REV + '"\n';
  throwsCpr(() => parseLock(dup, "atom.lock"), "lock.duplicate", /:86:1$/);
  // Missing [compose] reads as static.
  assert.deepEqual(parseLock("version = 1\n", "atom.lock").compose, { use: "static" });
});

test("64-hex roots and CRLF files read", () => {
  const lock = parseLock(fixture("static-sha256.lock").replace(/\n/g, "\r\n"), "atom.lock");
  assert.deepEqual(Object.keys(lock.sets), ["c0ffee00".repeat(8)]);
  assert.deepEqual(lock.compose, { use: "static" });
  assert.equal(formatLock(lock), fixture("static-sha256.lock"));
});

test("mirrors: :: first, URLs in UTF-8 byte order, no duplicates; strings escaped", () => {
  assert.deepEqual(sortMirrors(["https://b", "https://a", "::", "https://b", "https://é", "https://Z"]), [
    "::",
    "https://Z",
    "https://a",
    "https://b",
    "https://é",
  ]);
  assert.equal(tomlBasicString('a"b\\c\nd\u0001\u007f'), '"a\\"b\\\\c\\nd\\u0001\\u007F"');
  const lock: Lockfile = {
    version: 1,
    sets: { [EKA]: { tag: "eka", mirrors: ['/path with "quote"', "::", "::"] } },
    locker: defaultLocker(LOCKER_REV),
    compose: { use: "nix", entry: "a\\b" },
    deps: [],
  };
  const out = formatLock(lock);
  assert.match(out, /mirrors = \[\n {4}"::",\n {4}"\/path with \\"quote\\"",\n\]\n/);
  const back = parseLock(out, "atom.lock");
  assert.deepEqual(back.sets[EKA]!.mirrors, ["::", '/path with "quote"']);
  assert.deepEqual(back.compose, { use: "nix", entry: "a\\b" });
  assert.ok(!out.includes("[[deps]]"));
});
