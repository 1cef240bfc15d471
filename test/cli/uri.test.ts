import { test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { cprJson, runCpr, type CprRun } from "../support/cli.js";

const cpr = (...args: string[]): CprRun => runCpr(args, { cwd: tmpdir() });

const KEYS = ["url", "scheme", "user", "host", "port", "path", "label", "version"];

function json(r: CprRun): Record<string, unknown> {
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  const value = cprJson(r);
  assert.deepEqual(Object.keys(value), KEYS, "exactly the documented keys, in order");
  return value;
}

test("cpr uri --json: an aliased atom URI", () => {
  assert.deepEqual(json(cpr("uri", "pkgs::zlib@1.2", "--json")), {
    url: "https://github.com/nixos/nixpkgs",
    scheme: "https",
    user: null,
    host: "github.com",
    port: null,
    path: "/nixos/nixpkgs",
    label: "zlib",
    version: "^1.2",
  });
});

test("cpr uri --json: ssh with a user, and a kept ssh port", () => {
  assert.deepEqual(json(cpr("uri", "--json", "git@github.com:owner/repo::this-atom@^1")), {
    url: "git@github.com:owner/repo",
    scheme: "ssh",
    user: "git",
    host: "github.com",
    port: null,
    path: "/owner/repo",
    label: "this-atom",
    version: "^1",
  });
  const ported = json(cpr("uri", "--json", "git@example.com:2222:owner/repo::x"));
  assert.equal(ported.port, 2222);
  assert.equal(ported.url, "ssh://git@example.com:2222/owner/repo");
  assert.equal(ported.version, null);
});

test("cpr uri --json: fields that do not apply are null", () => {
  assert.deepEqual(json(cpr("uri", "--json", "::foo@>=1.2,<1.5")), {
    url: null,
    scheme: null,
    user: null,
    host: null,
    port: null,
    path: null,
    label: "foo",
    version: ">=1.2, <1.5",
  });
  assert.deepEqual(json(cpr("uri", "--json", "./repo::foo")), {
    url: "./repo",
    scheme: "file",
    user: null,
    host: null,
    port: null,
    path: "./repo",
    label: "foo",
    version: null,
  });
  // A URL only: no label or version.
  assert.deepEqual(json(cpr("uri", "--json", "gh:foo/bar")), {
    url: "https://github.com/foo/bar",
    scheme: "https",
    user: null,
    host: "github.com",
    port: null,
    path: "/foo/bar",
    label: null,
    version: null,
  });
  assert.equal(json(cpr("uri", "--json", "--url", "bb")).url, "https://bitbucket.org/");
});

test("cpr uri: human output is aligned lines on stdout", () => {
  const r = cpr("uri", "pkgs::zlib@^1");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const lines = r.stdout.trimEnd().split("\n");
  const rows = new Map(lines.map((line) => [line.split(/\s+/)[0], line]));
  assert.match(rows.get("alias") ?? "", /pkgs → nxs:nixpkgs → gh:nixos\/nixpkgs → github\.com\/nixos\/nixpkgs$/);
  assert.match(rows.get("url") ?? "", /https:\/\/github\.com\/nixos\/nixpkgs$/);
  assert.match(rows.get("host") ?? "", /github\.com$/);
  assert.match(rows.get("label") ?? "", /zlib$/);
  assert.match(rows.get("version") ?? "", /\^1$/);
  assert.match(rows.get("uri") ?? "", /https:\/\/github\.com\/nixos\/nixpkgs::zlib@\^1$/);
  const columns = new Set(lines.map((line) => line.search(/(?<=\S\s{2,})\S/)));
  assert.equal(columns.size, 1, `values start in one column:\n${r.stdout}`);
});

test("cpr uri: unknown alias is exit 1 with a clear message", () => {
  const r = cpr("uri", "foo::bar");
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /error: unknown alias 'foo'/);
  assert.match(r.stderr, /hint: .*\.\/foo/);
});

test("cpr uri: alias cycles, bad URLs, labels and requirements are exit 1", () => {
  const cycle = cpr("uri", "a::x", "--alias", "a=b:y", "--alias", "b=a:z");
  assert.equal(cycle.code, 1);
  assert.match(cycle.stderr, /a → b → a/);
  const custom = json(cpr("uri", "--json", "--alias", "work=gh:my-org", "work:repo::x"));
  assert.equal(custom.url, "https://github.com/my-org/repo");

  const scheme = cpr("uri", "ftp://example.com/x::a");
  assert.equal(scheme.code, 1);
  assert.match(scheme.stderr, /unsupported URL scheme "ftp"/);

  const label = cpr("uri", "gh:x/y::-bad");
  assert.equal(label.code, 1);
  assert.match(label.stderr, /cannot start with '-'/);

  const requirement = cpr("uri", "gh:x/y::a@^1 || ^2");
  assert.equal(requirement.code, 1);
  assert.match(requirement.stderr, /hint: Cargo requirements have no `\|\|`/);

  const port = cpr("uri", "--json", "https://example.com:99999/x::a");
  assert.equal(port.code, 1);
  assert.match(port.stderr, /port 99999/);
  assert.equal((JSON.parse(port.stdout) as { error: { code: string } }).error.code, "uri.bad-url", "--json reports the error on stdout");
});

test("cpr uri: usage errors are exit 2", () => {
  const missing = cpr("uri");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing URI/);
  assert.match(missing.stderr, /Usage: cpr uri/);
  assert.equal(cpr("uri", "a", "b").code, 2);
  assert.equal(cpr("uri", "--bogus", "a").code, 2);
  const alias = cpr("uri", "--alias", "no-equals", "x");
  assert.equal(alias.code, 2);
  assert.match(alias.stderr, /NAME=VALUE/);
  assert.equal(cpr("uri", "--alias", "a.b=c", "x").code, 2);
});

test("cpr uri --help documents options and examples", () => {
  const r = cpr("uri", "--help");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: cpr uri URI/);
  for (const text of ["--json", "--alias NAME=VALUE", "--url", "Examples:", "pkgs nxs:nixpkgs", "./name"]) {
    assert.ok(r.stdout.includes(text), `help mentions ${text}`);
  }
});
