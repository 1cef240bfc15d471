/**
 * The registry's web pages in a real browser: Debian's chromium driven by playwright-core (the system executable,
 * no browser download), against a real registry indexing a real published set whose `hello` was built with real Nix
 * and pushed with `cpr build --push`. Checks what a reader sees (counts, search results, versions, dependencies and
 * dependents, builds with store paths and closure size, install lines), search as you type and without JavaScript,
 * a hostile manifest description shown as text, the JSON answers against the API's, the jobs pages through their
 * hook, and accessibility basics (title, one h1, labelled fields, link text, WCAG AA contrast computed here).
 * Screenshots of each page are saved under the test's temporary directory (or in $PAGES_SCREENSHOTS, kept).
 */
import { test, before, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { atomId } from "../../src/protocol/id.js";
import { startRegistry, type RunningRegistry } from "../../src/serve/serve.js";
import { createToken } from "../../src/serve/tokens.js";
import type { GraftView, JobDetail, JobsSource, JobState, YankMark } from "../../src/serve/pages/hooks.js";
import { runCprAsync } from "../support/cli.js";
import { atomToml, commitAll, tempDir, writeFiles } from "../support/repo.js";
import { findTool, needTools } from "../support/tools.js";
import { publishTo } from "../publish/fixture.js";
import { buildableSet, env, nixEnv, type BuildableSet } from "../registry/atoms-fixture.js";

/** A description written to break out of HTML, attributes and URLs, with RTL overrides. */
const HOSTILE =
  '<script>window.__pwned = 1</script> "onerror="window.__pwned=2" <img src=x onerror="window.__pwned=3"> ' +
  "javascript:window.__pwned=4 \u202Egnp.exe\u202C and \u2066isolated\u2069";

const TOOLS = ["chromium", "nix-store", "nix-instantiate", "nix"] as const;

let set: BuildableSet;
let reg: RunningRegistry;
let jobsReg: RunningRegistry;
let browser: Browser;
let built: { out: string; uploaded: string[]; system: string };
/** Screenshots: under the test's temporary directory (removed at exit), or in $PAGES_SCREENSHOTS to keep them. */
const shots = keptDir(process.env.PAGES_SCREENSHOTS) ?? tempDir("cpr-pages-shots-");

function keptDir(dir: string | undefined): string | null {
  if (!dir) return null;
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** What the yank and graft features would give the pages (their hooks), set by the test that checks them. */
const yanks = new Map<string, Map<string, YankMark>>();
const grafts: GraftView[] = [];

/** The in-memory build farm behind the jobs pages' hook (its log grows while the test watches). */
const jobs: JobDetail[] = [];
const jobsSource: JobsSource = {
  async list(state: JobState, limit: number, offset: number) {
    return jobs.filter((j) => j.state === state).slice(offset, offset + limit);
  },
  async get(id: string) {
    return jobs.find((j) => j.id === id) ?? null;
  },
};

before(async () => {
  if (TOOLS.some((t) => !findTool(t))) return;
  set = await buildableSet({ tag: "web", withNewer: true });
  writeFiles(set.work, {
    "evil/atom.toml": `${atomToml("evil", "1.0.0")}\n[package.meta]\ndescription = ${JSON.stringify(HOSTILE)}\ntags = ["hostile"]\n`,
  });
  commitAll(set.work, "evil");
  const p = await publishTo(set.work, set.remote);
  assert.deepEqual(p.failed, []);
  reg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    sets: [set.remote],
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
    pages: {
      yanks: async (id) => yanks.get(id) ?? new Map(),
      grafts: async () => grafts,
    },
  });
  const token = await createToken(reg.db, [set.root], "pages");
  const b = await runCprAsync(["build", `${set.remote}::hello@=0.1.0`, "--push", reg.url, "--token", token, "--json", "-q"], {
    cwd: tempDir("cpr-cwd-"),
    env: { ...nixEnv, CPR_CACHE_DIR: tempDir("cpr-cache-"), XDG_CONFIG_HOME: tempDir("cpr-xdg-") },
  });
  assert.equal(b.code, 0, b.stderr);
  const out = JSON.parse(b.stdout);
  built = { out: out.outputs.out, uploaded: out.pushed.uploaded, system: "" };
  const rec = await fetch(`${reg.url}/api/v1/resolve/${atomId(set.root, "hello")}/${encodeURIComponent("=0.1.0")}?system=${systemOf()}`);
  assert.equal(rec.status, 200, "the build is recorded for this machine's system");
  built.system = ((await rec.json()) as { system: string }).system;

  jobsReg = await startRegistry({
    dataDir: tempDir("cpr-registry-"),
    listen: "127.0.0.1:0",
    refreshSeconds: 0,
    log: false,
    env,
    cacheDir: tempDir("cpr-cache-"),
    pages: { jobs: jobsSource },
  });
  browser = await chromium.launch({
    executablePath: findTool("chromium")!,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
});

after(async () => {
  await browser?.close();
  await reg?.close();
  await jobsReg?.close();
});

/** This machine's Nix system, as cpr build records it by default. */
function systemOf(): string {
  const arch = process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
  return `${arch}-${process.platform}`;
}

function ready(t: TestContext): boolean {
  return needTools(t, ...TOOLS) !== null;
}

/** Paths the tests ask for knowing they are not found. */
const expected = new Set<string>();

/** A fresh browser context (JavaScript on or off) whose pages record errors and CSP violations. */
async function open(t: TestContext, js = true): Promise<{ ctx: BrowserContext; page: Page; problems: string[] }> {
  const ctx = await browser.newContext({ javaScriptEnabled: js, viewport: { width: 1100, height: 900 } });
  t.after(() => ctx.close());
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on("response", (r) => {
    if (r.status() >= 400 && !expected.has(new URL(r.url()).pathname)) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of/.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  return { ctx, page, problems };
}

async function shot(page: Page, name: string): Promise<void> {
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(existsSync(file) && statSync(file).size > 1000, `screenshot ${file}`);
}

/** What a reader sees of an element (innerText, whitespace collapsed). */
async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).innerText()).replace(/\s+/g, " ").trim();
}

/** Accessibility basics, computed in the page: title, one h1, labelled fields, link text, WCAG AA text contrast. */
async function accessible(page: Page): Promise<void> {
  const r = await page.evaluate(() => {
    // In the page (DOM types are not in this project's lib).
    const document: any = (globalThis as any).document;
    const getComputedStyle: (e: any) => any = (globalThis as any).getComputedStyle;
    const lum = (c: number[]): number => {
      const [R, G, B] = c.map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * R! + 0.7152 * G! + 0.0722 * B!;
    };
    const rgba = (text: string): number[] => (text.match(/[\d.]+/g) ?? []).map(Number);
    const background = (e: any): number[] => {
      for (let x = e; x; x = x.parentElement) {
        const c = rgba(getComputedStyle(x).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! > 0)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const low: string[] = [];
    const colours = new Set<string>();
    for (const e of Array.from(document.body.querySelectorAll("*")) as any[]) {
      const own = Array.from(e.childNodes as any[]).some((n) => n.nodeType === 3 && n.textContent!.trim() !== "");
      const style = getComputedStyle(e);
      if (!own || style.visibility === "hidden" || e.offsetParent === null) continue;
      const fg = rgba(style.color).slice(0, 3);
      const bg = background(e);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      const ratio = (a! + 0.05) / (b! + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      colours.add(`${style.color} on ${bg.join(",")}`);
      if (ratio < (large ? 3 : 4.5)) low.push(`${e.tagName}.${e.className} "${e.textContent!.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
    }
    const unlabelled = (Array.from(document.querySelectorAll("input, select, textarea")) as any[])
      .filter((f) => f.type !== "hidden")
      .filter((f) => f.labels?.length === 0 && !f.getAttribute("aria-label"))
      .map((f) => f.outerHTML as string);
    const emptyLinks = (Array.from(document.querySelectorAll("a")) as any[])
      .filter((a) => a.textContent!.trim() === "" && !a.getAttribute("aria-label"))
      .map((a) => a.outerHTML as string);
    return {
      title: document.title as string,
      h1: document.querySelectorAll("h1").length as number,
      lang: document.documentElement.lang as string,
      low,
      colours: colours.size,
      unlabelled,
      emptyLinks,
    };
  });
  assert.ok(r.title.trim().length > 0, "the page has a title");
  assert.equal(r.h1, 1, "one h1");
  assert.equal(r.lang, "en");
  assert.deepEqual(r.low, [], "text contrast passes WCAG AA");
  assert.ok(r.colours >= 3, "several text colours were checked");
  assert.deepEqual(r.unlabelled, [], "every field has a label");
  assert.deepEqual(r.emptyLinks, [], "every link has text");
}

test("home: counts of sets, atoms, versions and builds; the indexed set; accessible", async (t) => {
  if (!ready(t)) return;
  const { page, problems } = await open(t);
  const res = await page.goto(reg.url);
  assert.equal(res?.status(), 200);
  assert.match(res!.headers()["content-security-policy"]!, /script-src 'self'/);
  assert.equal(await page.title(), "Home · cpr registry");
  const counts = await textOf(page, "ul.counts");
  // dep, hello (0.1.0, 0.2.0), evil: 3 atoms, 4 versions; one build record of hello 0.1.0.
  assert.equal(counts, "1 sets 3 atoms 4 versions 1 builds");
  await page.getByRole("link", { name: `Set ${set.root.slice(0, 12)}` }).click();
  await page.waitForURL(`**/sets/${set.root}`);
  assert.match(await textOf(page, "dl.facts"), new RegExp(`Root ${set.root} Mirrors ${set.remote} Indexed \\d{4}-`));
  assert.deepEqual(await page.locator("ol.hits a.label").allInnerTexts(), ["dep", "evil", "hello"]);
  assert.match(await textOf(page, "ol.hits li:has(a.label:text-is('hello'))"), /^hello 0\.2\.0 in set \w{12} Says hello web greeting$/);
  await accessible(page);
  await shot(page, "set");
  await page.goto(reg.url);
  await accessible(page);
  await shot(page, "home");
  assert.deepEqual(problems, []);
});

test("search as you type finds an atom, and the result leads to its page", async (t) => {
  if (!ready(t)) return;
  const { page, problems } = await open(t);
  await page.goto(reg.url);
  assert.equal(await page.locator("#results").isVisible(), false);
  await page.getByLabel("Search atoms").pressSequentially("greet", { delay: 30 });
  // The address follows the search once the answer for the whole text is shown.
  await page.waitForURL(`${reg.url}/search?q=greet`);
  const hit = page.locator("#results a.label", { hasText: "hello" });
  assert.match(await textOf(page, "#results"), /^1 result for “greet” hello 0\.2\.0 in set \w{12} Says hello web greeting$/);
  await shot(page, "search-live");
  await hit.click();
  await page.waitForURL(`**/atoms/${atomId(set.root, "hello")}`);
  assert.equal(await textOf(page, "h1"), "hello 0.2.0");
  assert.deepEqual(problems, []);
});

test("without JavaScript: the search form, results, pages and links all work", async (t) => {
  if (!ready(t)) return;
  const { page, problems } = await open(t, false);
  await page.goto(reg.url);
  await page.getByLabel("Search atoms").fill("dep");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL("**/search?q=dep");
  assert.equal(await page.title(), "Search: dep · cpr registry");
  assert.deepEqual(await page.locator("ol.hits a.label").allInnerTexts(), ["dep"]);
  await accessible(page);
  await shot(page, "search-nojs");
  await page.getByRole("link", { name: "dep" }).click();
  assert.equal(await textOf(page, "h1"), "dep 0.1.0");
  assert.match(await textOf(page, "#dependents"), /^Dependents hello 0\.1\.0 \^0\.1 in set \w{12} hello 0\.2\.0 \^0\.1 in set \w{12}$/);
  await page.getByRole("link", { name: "hello 0.1.0" }).click();
  assert.equal(await textOf(page, "h1"), "hello 0.1.0");
  assert.equal(await page.locator("pre[data-copy] + button").count(), 0, "no copy buttons without JavaScript");
  const none = await page.goto(`${reg.url}/search?q=no-such-atom-anywhere`);
  assert.equal(none?.status(), 200);
  assert.equal(await textOf(page, "#results"), "No atom matches for “no-such-atom-anywhere”.");
  assert.deepEqual(problems, []);
});

test("atom page: versions, manifest, dependencies, dependents, builds with store paths and closure, install lines", async (t) => {
  if (!ready(t)) return;
  const { page, problems } = await open(t);
  const hello = atomId(set.root, "hello");
  const dep = atomId(set.root, "dep");
  await page.goto(`${reg.url}/atoms/${hello}/0.1.0`);
  assert.equal(await page.title(), "hello 0.1.0 · cpr registry");
  assert.equal(await textOf(page, "h1"), "hello 0.1.0");
  assert.equal(await textOf(page, "#versions ul"), "0.2.0 not built 0.1.0", "newest first; the unbuilt one marked");
  assert.equal(await page.locator("#versions [aria-current=page]").innerText(), "0.1.0");
  const manifest = await page.locator("#manifest pre").innerText();
  assert.match(manifest, /^\[package\]\nlabel = "hello"\nversion = "0\.1\.0"\n/);
  assert.match(await textOf(page, "#manifest dl"), new RegExp(`Atom commit ${set.revs["hello@0.1.0"]}`));
  assert.equal(await textOf(page, "#dependencies ul"), `dep ^0.1 from home (${set.remote})`);
  assert.equal(await page.locator("#dependencies a").getAttribute("href"), `/atoms/${dep}`);
  assert.equal(await textOf(page, "#dependents"), "Dependents No atom in this registry depends on hello.");

  const row = await textOf(page, "#builds tbody tr");
  const closure = built.uploaded.length;
  assert.equal(closure, 2, "hello and dep were pushed");
  assert.match(
    row,
    new RegExp(`^${built.system} out ${built.out} derivation /nix/store/\\S+\\.drv \\d+(\\.\\d)? (B|KiB) in ${closure} paths \\d{4}-`),
  );
  const install = await page.locator("#install pre").allInnerTexts();
  assert.deepEqual(install, [
    `cpr get ${set.remote}::hello@=0.1.0 --registry ${reg.url}`,
    `${set.remote}::hello@=0.1.0`,
    `cpr add ${set.remote}::hello@^0.1.0`,
  ]);
  assert.equal(await page.locator("#install button", { hasText: "Copy" }).count(), 3, "copy buttons with JavaScript");
  await accessible(page);
  await shot(page, "atom");

  await page.getByRole("link", { name: "0.2.0" }).click();
  await page.waitForURL(`**/atoms/${hello}/0.2.0`);
  assert.equal(await textOf(page, "#builds"), "Builds No build of hello 0.2.0 is recorded for any system.");
  expected.add(`/atoms/${hello}/9.9.9`);
  await page.goto(`${reg.url}/atoms/${hello}/9.9.9`);
  assert.equal(await textOf(page, "h1"), "Not found");
  assert.match(await textOf(page, "main"), /unknown version 9\.9\.9 of atom/);
  await accessible(page);
  assert.deepEqual(problems, []);
});

test("yank marks and grafts through their hooks: the newest version not yanked is the default, reasons shown as text", async (t) => {
  if (!ready(t)) return;
  const hello = atomId(set.root, "hello");
  yanks.set(hello, new Map([["0.2.0", { reason: "<b>broken</b> \u202Ebuild" }]]));
  grafts.push({
    name: "openssl fix",
    system: built.system,
    from: built.out,
    to: "/nix/store/00000000000000000000000000000000-grafted",
    createdAt: Date.UTC(2026, 0, 2),
  });
  t.after(() => {
    yanks.clear();
    grafts.length = 0;
  });
  const { page, problems } = await open(t);
  await page.goto(`${reg.url}/atoms/${hello}`);
  assert.equal(await textOf(page, "h1"), "hello 0.1.0", "the newest version that is not yanked");
  assert.equal(await textOf(page, "#versions ul"), "0.2.0 yanked: <b>broken</b> U+202Ebuild not built 0.1.0");
  assert.equal(
    await textOf(page, "#grafts ul"),
    `openssl fix (${built.system}): ${built.out} → /nix/store/00000000000000000000000000000000-grafted 2026-01-02T00:00:00Z`,
  );
  await page.getByRole("link", { name: "0.2.0" }).click();
  assert.equal(await textOf(page, "p.banner"), "This version is yanked: <b>broken</b> U+202Ebuild.");
  await accessible(page);
  await shot(page, "atom-yanked");
  const json = (await (await fetch(`${reg.url}/atoms/${hello}`, { headers: { accept: "application/json" } })).json()) as any;
  assert.deepEqual(json.versions[0].yanked, { reason: "<b>broken</b> \u202Ebuild" });
  assert.equal(json.selected.version, "0.1.0");
  assert.equal(json.selected.grafts.length, 1);
  assert.deepEqual(problems, []);
});

test("a hostile manifest description is shown as text: no script, no element, no attribute, RTL shown as marks", async (t) => {
  if (!ready(t)) return;
  for (const js of [true, false]) {
    const { page, problems } = await open(t, js);
    await page.goto(`${reg.url}/atoms/${atomId(set.root, "evil")}`);
    const desc = await page.locator("main p.desc").innerText();
    assert.equal(
      desc,
      '<script>window.__pwned = 1</script> "onerror="window.__pwned=2" <img src=x onerror="window.__pwned=3"> ' +
        "javascript:window.__pwned=4 U+202Egnp.exeU+202C and U+2066isolatedU+2069",
    );
    const found = await page.evaluate(() => {
      const w: any = globalThis;
      const d = w.document;
      return {
        pwned: (w.__pwned ?? null) as number | null,
        scripts: (Array.from(d.scripts) as any[]).map((s) => (s.src as string).replace(w.location.origin, "")),
        images: d.images.length as number,
        handlers: (Array.from(d.querySelectorAll("*")) as any[]).filter((e) =>
          (Array.from(e.attributes) as any[]).some((a) => (a.name as string).startsWith("on")),
        ).length,
        hrefs: (Array.from(d.querySelectorAll("a")) as any[]).filter((a) => !(a.href as string).startsWith(w.location.origin)).length,
      };
    });
    assert.equal(found.pwned, null);
    assert.equal(found.scripts.length, 1);
    assert.match(found.scripts[0]!, /^\/static\/site\.js\?v=[0-9a-f]{16}$/);
    assert.deepEqual([found.images, found.handlers, found.hrefs], [0, 0, 0]);
    assert.match(await page.title(), /^evil 1\.0\.0 · cpr registry$/);
    if (js) {
      // The same text through search as you type (rendered by site.js).
      await page.goto(reg.url);
      await page.getByLabel("Search atoms").pressSequentially("hostile", { delay: 20 });
      await page.waitForURL(`${reg.url}/search?q=hostile`);
      assert.equal(await page.locator("#results p.desc").innerText(), desc);
      assert.equal(await page.evaluate(() => ((globalThis as any).__pwned ?? null) as number | null), null);
      assert.equal(await page.locator("#results img, #results script").count(), 0);
      await shot(page, "hostile-search");
    } else {
      await shot(page, "hostile");
    }
    assert.deepEqual(problems, []);
  }
});

test("the same URLs answer JSON that agrees with the API", async (t) => {
  if (!ready(t)) return;
  const json = async (path: string) => {
    const r = await fetch(`${reg.url}${path}`, { headers: { accept: "application/json" } });
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    if (!path.startsWith("/api/")) assert.equal(r.headers.get("vary"), "Accept");
    return { status: r.status, body: (await r.json()) as any };
  };
  const hello = atomId(set.root, "hello");
  const page = await json(`/atoms/${hello}/0.1.0`);
  const api = await json(`/api/v1/atoms/${hello}`);
  assert.equal(page.status, 200);
  for (const k of ["id", "label", "set", "description", "tags"]) assert.deepEqual(page.body[k], api.body[k], k);
  assert.deepEqual(
    page.body.versions.map((v: any) => [v.version, v.rev, v.origin]),
    api.body.versions.map((v: any) => [v.version, v.rev, v.origin]),
  );
  assert.equal(page.body.selected.manifest, api.body.versions[1].manifest);
  const resolved = (await json(`/api/v1/resolve/${hello}/${encodeURIComponent("=0.1.0")}?system=${built.system}`)).body;
  assert.deepEqual(page.body.selected.builds[0].newest.outputs, resolved.outputs);
  assert.equal(page.body.selected.builds[0].newest.drv, resolved.drv);

  const search = await json("/search?q=hello");
  const apiSearch = await json("/api/v1/search?q=hello");
  assert.deepEqual(search.body.results, apiSearch.body.results);
  const home = await json("/");
  assert.deepEqual(home.body.sets, (await json("/api/v1/sets")).body.sets);
  assert.deepEqual(home.body.counts, { sets: 1, atoms: 3, versions: 4, builds: 1 });
  const missing = await json(`/atoms/${atomId(set.root, "nope")}`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /unknown atom/);
  // A browser's Accept gets HTML.
  const r = await fetch(`${reg.url}/atoms/${hello}`, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
  assert.match(r.headers.get("content-type") ?? "", /^text\/html/);
  assert.doesNotMatch(await r.text(), /<script>|<style|\sstyle=|\son[a-z]+=/i, "no inline script or style");
});

test("jobs pages through their hook: queue, running job with a live log, failure with the end of its log", async (t) => {
  if (!ready(t)) return;
  const base = { atomId: atomId(set.root, "hello"), label: "hello", version: "0.1.0", system: "x86_64-linux", buildId: null };
  const now = Date.UTC(2026, 0, 2, 3, 4, 5);
  jobs.push(
    { ...base, id: "7", state: "queued", createdAt: now, startedAt: null, finishedAt: null, logTail: null, log: "", logTruncated: false },
    {
      ...base,
      id: "8",
      state: "running",
      createdAt: now,
      startedAt: now,
      finishedAt: null,
      logTail: null,
      log: "building…\n",
      logTruncated: false,
    },
    {
      ...base,
      id: "9",
      state: "failed",
      createdAt: now,
      startedAt: now,
      finishedAt: now + 1000,
      logTail: "error: <b>builder</b> failed\u202E",
      log: "error: <b>builder</b> failed\u202E",
      logTruncated: true,
    },
  );
  const { page, problems } = await open(t);
  await page.goto(`${jobsReg.url}/jobs`);
  assert.equal(await textOf(page, "#queued"), "Queued Job 7: hello 0.1.0 for x86_64-linux 2026-01-02T03:04:05Z");
  assert.equal(await textOf(page, "#running"), "Running Job 8: hello 0.1.0 for x86_64-linux 2026-01-02T03:04:05Z");
  assert.equal(await textOf(page, "#failed pre"), "error: <b>builder</b> failedU+202E");
  await accessible(page);
  await shot(page, "jobs");
  await page.getByRole("link", { name: "Job 8" }).click();
  assert.equal(await textOf(page, "[data-field=log]"), "building…");
  // The running job's page follows its log.
  const running = jobs.find((j) => j.id === "8")!;
  jobs[jobs.indexOf(running)] = { ...running, state: "succeeded", finishedAt: now + 5000, log: "building…\ndone\n" };
  await page.locator("[data-field=state]", { hasText: "succeeded" }).waitFor({ timeout: 15_000 });
  assert.equal(await textOf(page, "[data-field=log]"), "building… done");
  await accessible(page);
  await shot(page, "job");
  expected.add("/jobs/nope");
  const unknown = await page.goto(`${jobsReg.url}/jobs/nope`);
  assert.equal(unknown?.status(), 404);
  // Without the hook, the pages say the build farm is off.
  await page.goto(`${reg.url}/jobs`);
  assert.equal(await textOf(page, "main p"), "The build farm is not enabled on this registry: builds are recorded by cpr build --push.");
  assert.deepEqual(problems, []);
});
