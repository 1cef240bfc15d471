import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import {
  aliasCandidate,
  DEFAULT_ALIASES,
  expandAlias,
  explainAtomUri,
  formatAtomUri,
  hasKnownPublicSuffix,
  isDnsName,
  parseAtomUri,
  parseGitUrl,
  redactUrl,
  replaceVersionPlaceholder,
  VERSION_PLACEHOLDER,
  type Aliases,
} from "../../src/protocol/uri.js";
import { cprFailure } from "../support/assert.js";

const failure = cprFailure;

type Row = [
  input: string,
  scheme: string,
  user: string | null,
  host: string,
  port: number | null,
  path: string,
  label: string,
  req: string | null,
];

/** The docs/formats.md §13.6 vectors (default aliases; every requirement is a caret requirement). */
const SPEC_VECTORS: readonly Row[] = [
  ["gl:repo::atom@^2.0", "https", null, "gitlab.com", null, "/repo", "atom", "^2.0"],
  ["gl::atom@^2.1", "https", null, "gitlab.com", null, "/", "atom", "^2.1"],
  ["gl:path.with/dot::my-atom@^2", "https", null, "gitlab.com", null, "/path.with/dot", "my-atom", "^2"],
  ["git@github.com:owner/repo::this-atom@^1", "ssh", "git", "github.com", null, "/owner/repo", "this-atom", "^1"],
  ["git@gh:owner/repo::this-atom@^1", "ssh", "git", "github.com", null, "/owner/repo", "this-atom", "^1"],
  ["https://example.com:8080/owner/repo::foo@^1", "https", null, "example.com", 8080, "/owner/repo", "foo", "^1"],
  ["https://foo.com/owner/repo::bar@^1", "https", null, "foo.com", null, "/owner/repo", "bar", "^1"],
  ["https://gh:owner/repo::λ@^1", "https", null, "github.com", null, "/owner/repo", "λ", "^1"],
  ["gh:owner/repo::λ@^1", "https", null, "github.com", null, "/owner/repo", "λ", "^1"],
  ["git@gh:owner/repo::λ@^1", "ssh", "git", "github.com", null, "/owner/repo", "λ", "^1"],
  ["pkgs::zlib@^1", "https", null, "github.com", null, "/nixos/nixpkgs", "zlib", "^1"],
  ["pkgs:foo/bar::baz", "https", null, "github.com", null, "/nixos/nixpkgs/foo/bar", "baz", null],
];

for (const [input, scheme, user, host, port, path, label, requirement] of SPEC_VECTORS) {
  test(`docs/formats.md §13.6 vector ${input}`, () => {
    const uri = parseAtomUri(input);
    assert.ok(uri.url !== null);
    assert.equal(uri.url.scheme, scheme);
    assert.equal(uri.url.user, user);
    assert.equal(uri.url.password, null);
    assert.equal(uri.url.host, host);
    assert.equal(uri.url.port, port);
    assert.equal(uri.url.path, path);
    assert.equal(uri.label, label);
    assert.equal(uri.requirement?.text ?? null, requirement);
    if (requirement !== null) assert.equal(uri.requirement?.comparators[0]?.op, "^");
    const portText = port === null ? "" : `:${port}`;
    // scp-like input keeps its form for git (`user@host:path`); everything else is a full URL.
    const scp = uri.url.scpLike && port === null;
    const expectedUrl = scp
      ? `${user === null ? "" : `${user}@`}${host}:${path.slice(1)}`
      : `${scheme}://${user === null ? "" : `${user}@`}${host}${portText}${path}`;
    assert.equal(uri.url.url, expectedUrl);
  });
}

/** The docs/formats.md §13.7 URL-only form. */
const URL_ONLY: ReadonlyArray<[string, string]> = [
  ["gh:foo/bar", "https://github.com/foo/bar"],
  ["bb", "https://bitbucket.org/"],
  ["https://gl:bar/baz", "https://gitlab.com/bar/baz"],
];

for (const [input, url] of URL_ONLY) {
  test(`docs/formats.md §13.7 URL-only form ${input}`, () => {
    assert.equal(parseGitUrl(input).url, url);
  });
}

test("docs/formats.md §13.2 default aliases", () => {
  assert.deepEqual(
    { ...DEFAULT_ALIASES },
    {
      gh: "github.com",
      gl: "gitlab.com",
      bb: "bitbucket.org",
      cb: "codeberg.org",
      sh: "sr.ht",
      ekl: "gh:ekala-project",
      atom: "ekl:atom",
      cogs: "ekl:corepkgs",
      eka: "ekl:eka",
      nxs: "gh:nixos",
      pkgs: "nxs:nixpkgs",
    },
  );
  assert.equal(parseGitUrl("cb:me/x").url, "https://codeberg.org/me/x");
  assert.equal(parseGitUrl("sh:~me/x").url, "https://sr.ht/~me/x");
  assert.equal(parseGitUrl("atom").url, "https://github.com/ekala-project/atom");
  assert.equal(parseGitUrl("cogs").url, "https://github.com/ekala-project/corepkgs");
  assert.equal(parseGitUrl("eka").url, "https://github.com/ekala-project/eka");
});

test("docs/formats.md §13.2 chained expansion: pkgs → nxs:nixpkgs → gh:nixos/nixpkgs → github.com/nixos/nixpkgs", () => {
  assert.deepEqual(expandAlias("pkgs"), ["nxs:nixpkgs", "gh:nixos/nixpkgs", "github.com/nixos/nixpkgs"]);
  assert.deepEqual(explainAtomUri("pkgs:foo/bar::baz").aliasSteps, [
    "pkgs:foo/bar",
    "nxs:nixpkgs/foo/bar",
    "gh:nixos/nixpkgs/foo/bar",
    "github.com/nixos/nixpkgs/foo/bar",
  ]);
  // Expansion stops at a left side that is not an alias.
  assert.deepEqual(expandAlias("w", { w: "example.com:2222" }), ["example.com:2222"]);
});

test("alias cycles are errors that show the chain", () => {
  const cyclic: Aliases = { a: "b:x", b: "c:y", c: "a:z", self: "self:x" };
  const err = failure(() => parseAtomUri("a::foo", cyclic));
  assert.equal(err.code, "uri.alias-cycle");
  assert.match(err.message, /a → b → c → a/);
  assert.match(failure(() => parseGitUrl("self", cyclic)).message, /self → self/);
  assert.match(failure(() => parseGitUrl("b:q", cyclic)).message, /b → c → a → b/);
});

test("unknown aliases are errors naming the alias, with a hint for relative directories", () => {
  for (const input of ["foo::bar", "foo:owner/repo::bar", "localhost:repo::x"]) {
    const name = input.slice(0, input.search(/:/));
    const err = failure(() => parseAtomUri(input));
    assert.equal(err.code, "uri.unknown-alias", input);
    assert.match(err.message, new RegExp(`unknown alias '${name}'`));
    assert.ok(err.hint?.includes(`./${name}`), err.hint);
  }
  assert.equal(failure(() => parseGitUrl("nope")).code, "uri.unknown-alias");
  // Custom aliases are honoured.
  assert.equal(parseAtomUri("work:repo::x", { ...DEFAULT_ALIASES, work: "gh:my-org" }).url?.url, "https://github.com/my-org/repo");
});

test("with a scheme or credentials the candidate is a host name, not an alias", () => {
  const withUser = parseAtomUri("git@myhost:repo::x");
  assert.equal(withUser.url?.host, "myhost");
  assert.equal(withUser.url?.scheme, "ssh");
  const withScheme = parseAtomUri("https://localhost:repo::x");
  assert.equal(withScheme.url?.url, "https://localhost/repo");
});

test("alias detection (docs/formats.md §13.2)", () => {
  assert.deepEqual(aliasCandidate("gh:owner/repo"), { name: "gh", rest: "owner/repo" });
  assert.deepEqual(aliasCandidate("gl"), { name: "gl", rest: "" });
  assert.deepEqual(aliasCandidate("gl:"), { name: "gl", rest: "" });
  assert.equal(aliasCandidate("example.com:8080/x"), null, "a digit after ':' is a port");
  assert.equal(aliasCandidate("host:22"), null);
  assert.equal(aliasCandidate("github.com:owner/repo"), null, "'.' is never in an alias");
  assert.equal(aliasCandidate("foo/bar"), null, "'/' is never in an alias");
  assert.equal(aliasCandidate(":foo"), null);
  assert.equal(aliasCandidate("./repo"), null);
});

test("other URL shapes", () => {
  const cases: Array<[string, Partial<Record<string, unknown>>]> = [
    [
      "https://user:password@example.com/my/repo::id@^0.2",
      {
        scheme: "https",
        user: "user",
        password: "password",
        host: "example.com",
        path: "/my/repo",
        url: "https://user:password@example.com/my/repo",
      },
    ],
    [
      "user:password@example.com/my/repo::id@^0.2",
      { scheme: "https", user: "user", password: "password", host: "example.com", path: "/my/repo" },
    ],
    [
      "user@example.com/my/repo::id@^0.2",
      { scheme: "ssh", user: "user", password: null, host: "example.com", url: "ssh://user@example.com/my/repo" },
    ],
    [
      "my.ssh.com:my/repo::hello",
      { scheme: "ssh", user: null, host: "my.ssh.com", path: "/my/repo", scpLike: true, url: "my.ssh.com:my/repo" },
    ],
    ["git@github.com:owner/repo.git::x", { scheme: "ssh", scpLike: true, url: "git@github.com:owner/repo.git" }],
    [
      "git@example.com:2222:owner/repo::x",
      { scheme: "ssh", port: 2222, path: "/owner/repo", url: "ssh://git@example.com:2222/owner/repo" },
    ],
    [
      "ssh://git@example.com:2222/owner/repo::x",
      { scheme: "ssh", port: 2222, url: "ssh://git@example.com:2222/owner/repo", scpLike: false },
    ],
    ["example.com:8080/owner/repo::x", { scheme: "https", port: 8080, host: "example.com" }],
    ["https://example.com:8080::x", { port: 8080, path: "/", url: "https://example.com:8080/" }],
    ["git@host.example.org:/srv/repo.git::x", { path: "/srv/repo.git", url: "git@host.example.org:/srv/repo.git" }],
    ["foo.github.io/x::a", { scheme: "https", host: "foo.github.io" }],
    ["http://127.0.0.1:8080/r.git::a", { scheme: "http", host: "127.0.0.1", port: 8080, url: "http://127.0.0.1:8080/r.git" }],
    ["git://example.org/r::a", { scheme: "git", url: "git://example.org/r" }],
    ["HTTPS://example.org/r::a", { scheme: "https", url: "https://example.org/r" }],
  ];
  for (const [input, expected] of cases) {
    const url = parseAtomUri(input).url as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(expected)) assert.equal(url[key], value, `${input}: ${key}`);
  }
});

test("local paths: no host, scheme file, the URL is the path as written", () => {
  const cases: Array<[string, string]> = [
    ["foo/bar/baz::my-atom", "foo/bar/baz"],
    ["/foo/bar/baz::my-atom", "/foo/bar/baz"],
    ["./repo::x", "./repo"],
    ["../up/repo.git::x", "../up/repo.git"],
    ["repo.git::x", "repo.git"],
    ["example.invalidtld/x::a", "example.invalidtld/x"],
    ["/srv/a@b/repo::x", "/srv/a@b/repo"],
    ["./my:dir::x", "./my:dir"],
  ];
  for (const [input, path] of cases) {
    const url = parseAtomUri(input).url;
    assert.ok(url, input);
    assert.deepEqual(url, { url: path, scheme: "file", user: null, password: null, host: null, port: null, path, scpLike: false }, input);
  }
  const file = parseAtomUri("file:///abs/repo::x").url;
  assert.equal(file?.url, "file:///abs/repo");
  assert.equal(file?.path, "/abs/repo");
  assert.equal(file?.scheme, "file");
});

test("local atoms: no URL part", () => {
  for (const input of ["::foo", "foo"]) {
    assert.deepEqual(parseAtomUri(input), { url: null, label: "foo", requirement: null });
  }
  const withReq = parseAtomUri("foo@^0.8");
  assert.equal(withReq.url, null);
  assert.equal(withReq.requirement?.text, "^0.8");
  assert.equal(parseAtomUri("::foo@").requirement, null, "an empty requirement means none");
  assert.equal(parseAtomUri("::foo@1.2").requirement?.text, "^1.2", "a bare version is a caret requirement");
  assert.equal(parseAtomUri("::ｆｏｏ").label, "foo", "labels are NFKC-normalized");
});

test("errors: missing label, bad label, bad requirement, bad URLs", () => {
  assert.equal(failure(() => parseAtomUri("gh:foo::")).code, "uri.no-label");
  assert.equal(failure(() => parseAtomUri("gh:foo::@^1")).code, "uri.no-label");
  assert.equal(failure(() => parseAtomUri("")).code, "uri.no-label");
  assert.equal(failure(() => parseAtomUri("gh:foo::-x")).code, "label.invalid-start");
  assert.match(failure(() => parseAtomUri("gh:foo/bar")).hint ?? "", /URL::LABEL/);
  assert.equal(failure(() => parseAtomUri("gh:foo::x@^1 || ^2")).code, "requirement.invalid");
  assert.equal(failure(() => parseAtomUri("ftp://example.com/x::a")).code, "uri.bad-scheme");
  assert.equal(failure(() => parseAtomUri("https://example.com:70000/x::a")).code, "uri.bad-url");
  assert.equal(failure(() => parseAtomUri("https://exa mple.com/x::a")).code, "uri.bad-url");
  assert.equal(failure(() => parseAtomUri("https://::a")).code, "uri.bad-url");
  assert.equal(failure(() => parseAtomUri("file://relative/x::a")).code, "uri.bad-url");
  assert.equal(failure(() => parseAtomUri("@example.com:x::a")).code, "uri.bad-url");
  assert.equal(failure(() => parseAtomUri("user@./x::a")).code, "uri.bad-url", "credentials need a host");
  assert.equal(failure(() => parseGitUrl("https://example.com/a\nb")).code, "uri.bad-url");
  assert.equal(failure(() => parseGitUrl("gh:foo::bar")).code, "uri.bad-url", "a URL cannot contain '::'");
  assert.equal(failure(() => parseGitUrl("e:x", { e: "" })).code, "uri.bad-alias");
});

test("docs/formats.md §13.4: display as <url without trailing />::<label>[@<requirement>]", () => {
  assert.equal(formatAtomUri(parseAtomUri("gl::atom@^2.1")), "https://gitlab.com::atom@^2.1");
  assert.equal(formatAtomUri(parseAtomUri("pkgs:foo/bar::baz")), "https://github.com/nixos/nixpkgs/foo/bar::baz");
  assert.equal(formatAtomUri(parseAtomUri("foo@1")), "::foo@^1");
  assert.equal(formatAtomUri(parseAtomUri("./repo/::x@>=1.2,<1.5")), "./repo::x@>=1.2, <1.5");
  assert.equal(formatAtomUri(parseAtomUri("/::x")), "/::x");
  assert.equal(formatAtomUri(parseAtomUri("git@example.com:2222:o/r::x")), "ssh://git@example.com:2222/o/r::x", "ssh ports are kept");
  // The displayed form parses back to the same URI.
  for (const [input] of SPEC_VECTORS) {
    const uri = parseAtomUri(input);
    const again = parseAtomUri(formatAtomUri(uri));
    assert.equal(again.url?.url.replace(/\/$/, ""), uri.url?.url.replace(/\/$/, ""), input);
    assert.equal(again.label, uri.label);
    assert.equal(again.requirement?.text, uri.requirement?.text);
  }
});

test("URL-only form: the first {<set>.<label>} becomes __VERSION__", () => {
  const replaced = replaceVersionPlaceholder("https://example.org/{home.foo}/v{home.bar}.tar.gz");
  assert.equal(replaced.text, `https://example.org/${VERSION_PLACEHOLDER}/v{home.bar}.tar.gz`);
  assert.deepEqual(replaced.fromVersion, ["home", "foo"]);
  assert.deepEqual(replaceVersionPlaceholder("gh:a/b"), { text: "gh:a/b", fromVersion: null });
  assert.equal(parseGitUrl("gh:owner/tool/archive/{home.tool}").url, "https://github.com/owner/tool/archive/__VERSION__");
  assert.equal(failure(() => replaceVersionPlaceholder("https://x.org/{home.-bad}")).code, "label.invalid-start");
});

test("host name checks and the Public Suffix List", () => {
  for (const name of ["github.com", "example.co.uk", "sr.ht", "foo.github.io", "xn--bcher-kva.de", "a.b.c.dev"]) {
    assert.ok(hasKnownPublicSuffix(name), name);
  }
  for (const name of ["localhost", "example.invalidtld", "127.0.0.1", "path.with", "com"]) {
    assert.ok(!hasKnownPublicSuffix(name), name);
  }
  assert.ok(isDnsName("a-b.example.com") && isDnsName("127.0.0.1") && isDnsName("_srv.example.com"));
  assert.ok(!isDnsName("") && !isDnsName("-a.com") && !isDnsName("a..com") && !isDnsName("a b.com") && !isDnsName("a".repeat(64) + ".com"));
});

test("local URLs are strings git itself accepts (git ls-remote on a bare repository)", (t) => {
  const parent = mkdtempSync(join(tmpdir(), "cpr-uri-"));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const bare = join(parent, "set.git");
  const init = spawnSync("git", ["init", "--bare", "--quiet", bare], { encoding: "utf8" });
  if (init.error) {
    t.skip("git is not installed");
    return;
  }
  assert.equal(init.status, 0, init.stderr);
  for (const written of [`file://${bare}`, bare, `./${basename(bare)}`, `../${basename(parent)}/${basename(bare)}`]) {
    const { url } = parseAtomUri(`${written}::foo`).url!;
    const r = spawnSync("git", ["ls-remote", url], { cwd: parent, encoding: "utf8" });
    assert.equal(r.status, 0, `git ls-remote ${url}: ${r.stderr}`);
  }
});

test("redactUrl: the password goes, whole, from any scheme's userinfo; the rest is kept", () => {
  assert.equal(redactUrl("https://u:secret@example.com/o/r"), "https://u@example.com/o/r");
  // A password holding '@' (even unencoded) is removed whole: the userinfo ends at the authority's last '@'.
  assert.equal(redactUrl("postgres://cpr:p@ss@db.example.org:5432/cpr"), "postgres://cpr@db.example.org:5432/cpr");
  assert.equal(redactUrl("postgresql://cpr:p%40ss@db/cpr?sslmode=require"), "postgresql://cpr@db/cpr?sslmode=require");
  // The authority ends at '/', '?' or '#': an '@' after it is not userinfo.
  assert.equal(redactUrl("https://example.com/a:b@c"), "https://example.com/a:b@c");
  assert.equal(redactUrl("https://example.com?x=a:b@c"), "https://example.com?x=a:b@c");
  assert.equal(redactUrl("mysql://u:secret@db/x"), "mysql://u@db/x");
  // Nothing to hide: a user without a password, scp-like and path forms.
  assert.equal(redactUrl("ssh://git@example.com/o/r"), "ssh://git@example.com/o/r");
  assert.equal(redactUrl("git@github.com:o/r"), "git@github.com:o/r");
  assert.equal(redactUrl("/srv/set.git"), "/srv/set.git");
});
