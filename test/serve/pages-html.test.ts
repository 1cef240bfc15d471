/**
 * The pages' escaping template, shell quoting of install lines and content negotiation, without a browser (the
 * browser tests are in pages.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { attr, escapeText, href, html, shellWord, withQuery } from "../../src/serve/pages/html.js";
import { installLines } from "../../src/serve/pages/data.js";
import { wantsJson } from "../../src/serve/pages/routes.js";

test("html escapes every interpolated value, passes Html through, and shows bidi and control characters", () => {
  const hostile = `<script>alert(1)</script>"'&\u202Eevil\u0007`;
  const out = html`<p title="${attr(hostile)}">${hostile}${html`<b>${"x<y"}</b>`}${[html`<i>1</i>`, "<2>"]}${null}${false}</p>`.text;
  assert.equal(
    out,
    '<p title="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;[U+202E]evil[U+0007]">' +
      "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;<span class=ctl>U+202E</span>evil<span class=ctl>U+0007</span>" +
      "<b>x&lt;y</b><i>1</i>&lt;2&gt;</p>",
  );
  assert.equal(escapeText("line\r\nnext\ttab"), "line\r\nnext\ttab", "newlines and tabs stay");
  assert.equal(escapeText("\u2066\u2069\u200f"), "<span class=ctl>U+2066</span><span class=ctl>U+2069</span><span class=ctl>U+200F</span>");
});

test("links are this server's paths, percent-encoded", () => {
  assert.equal(href("atoms", "abc", "1.0.0+build/x"), "/atoms/abc/1.0.0%2Bbuild%2Fx");
  assert.equal(withQuery("/search", { q: 'a&b="c"', page: 2, none: null }), "/search?q=a%26b%3D%22c%22&page=2");
  assert.equal(withQuery("/jobs", {}), "/jobs");
});

test("install lines survive a POSIX shell: each argument comes back as written", () => {
  const words = ["/srv/sets/a.git::hello@=1.0.0", "https://h/x y.git::a@^1", "it's;$(rm -rf ~)`x`::b@^0.1"];
  for (const w of words) {
    const echoed = execFileSync("/bin/sh", ["-c", `printf '%s' ${shellWord(w)}`], { encoding: "utf8" });
    assert.equal(echoed, w);
  }
  assert.equal(shellWord("/srv/a.git::hello@=1.0.0"), "/srv/a.git::hello@=1.0.0", "plain words stay unquoted");
  const lines = installLines("https://user:secret@example.org/set.git", "hello", "1.2.3-rc.1+build.5", "http://127.0.0.1:8080");
  assert.deepEqual(lines, {
    uri: "https://user@example.org/set.git::hello@=1.2.3-rc.1",
    get: "cpr get https://user@example.org/set.git::hello@=1.2.3-rc.1 --registry http://127.0.0.1:8080",
    add: "cpr add https://user@example.org/set.git::hello@^1.2.3-rc.1",
  });
  assert.equal(installLines(null, "hello", "1.0.0", "http://x"), null);
});

test("content negotiation: JSON only when Accept prefers it to HTML", () => {
  assert.equal(wantsJson(undefined), false);
  assert.equal(wantsJson("application/json"), true);
  assert.equal(wantsJson("*/*"), false);
  assert.equal(wantsJson("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), false);
  assert.equal(wantsJson("application/json, text/html;q=0.5"), true);
  assert.equal(wantsJson("text/html, application/json"), false, "a tie goes to HTML");
  assert.equal(wantsJson("application/json;q=0"), false);
});
