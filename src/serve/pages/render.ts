/**
 * The pages' HTML: one layout, one renderer per page, and on the atom page one renderer per section (ATOM_SECTIONS),
 * each taking the view of data.ts. Every value goes through the `html` template (html.ts), which escapes it. No
 * inline script or style: the layout links /static/site.css and /static/site.js (assets.ts), as the
 * Content-Security-Policy requires.
 */
import type { AtomView, HomeView, Paged, SearchView, SetView } from "./data.js";
import { attr, formatBytes, href, html, isoTime, withQuery, type Html } from "./html.js";

/** URLs of the static assets, with their content hash (set once by the routes). */
export interface AssetUrls {
  readonly css: string;
  readonly js: string;
}

export interface LayoutOptions {
  readonly title: string;
  /** The search box's text. */
  readonly q?: string;
  readonly assets: AssetUrls;
  /** Extra attributes' worth of data for site.js, as `data-*` on <main>. */
  readonly live?: string;
}

export function layout(o: LayoutOptions, body: Html): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${attr(o.title)} · cpr registry</title>
        <link rel="stylesheet" href="${o.assets.css}" />
        <script src="${o.assets.js}" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/">cpr registry</a>
          <form class="search" role="search" action="/search" method="get">
            <label for="q">Search atoms</label>
            <input
              id="q"
              name="q"
              type="search"
              value="${attr(o.q ?? "")}"
              maxlength="200"
              autocomplete="off"
              spellcheck="false"
              placeholder="label, description or tag"
            />
            <button type="submit">Search</button>
          </form>
          <nav aria-label="Site"><a href="/">Home</a> <a href="/jobs">Jobs</a></nav>
        </header>
        <main id="main" ${o.live ? html` data-live="${attr(o.live)}"` : ""}>${body}</main>
        <footer>Every page answers JSON too (<code>Accept: application/json</code>); the API is under <code>/api/v1/</code>.</footer>
      </body>
    </html> `.text;
}

/** "Previous page" / "Next page" links for a paged list at `path` with the page in `param`. */
function pager(p: Paged, path: string, query: Record<string, string | null>, param = "page"): Html {
  if (p.page <= 1 && !p.more) return html``;
  const prev = p.page > 1 ? html`<a rel="prev" href="${withQuery(path, { ...query, [param]: p.page - 1 })}">Previous page</a>` : "";
  const next = p.more ? html`<a rel="next" href="${withQuery(path, { ...query, [param]: p.page + 1 })}">Next page</a>` : "";
  return html`<nav class="pager" aria-label="Pages">${prev} <span>Page ${p.page}</span> ${next}</nav>`;
}

function tags(list: readonly string[]): Html {
  if (list.length === 0) return html``;
  return html`<ul class="tags" aria-label="Tags">
    ${list.map((t) => html`<li>${t}</li>`)}
  </ul>`;
}

const short = (root: string): string => root.slice(0, 12);

/** A search hit or a set's atom, as a list item. */
function atomItem(h: {
  id: string;
  label: string;
  set: string;
  description: string | null;
  tags: readonly string[];
  versions: readonly string[];
}): Html {
  const newest = h.versions[0];
  return html`<li class="hit">
    <a class="label" href="${href("atoms", h.id)}">${h.label}</a>${newest ? html` <span class="version">${newest}</span>` : ""}
    <span class="set">in set <a href="${href("sets", h.set)}" title="${attr(h.set)}">${short(h.set)}</a></span>
    ${h.description ? html`<p class="desc">${h.description}</p>` : ""} ${tags(h.tags)}
  </li>`;
}

// ── home and search ──

export function renderHome(v: HomeView, assets: AssetUrls): string {
  const c = v.counts;
  const body = html`<h1>Find an atom</h1>
    <p class="lede">Search by label, description or tag in the box above; results appear as you type.</p>
    <section id="results" aria-live="polite" hidden></section>
    <section aria-labelledby="counts-h">
      <h2 id="counts-h">This registry</h2>
      <ul class="counts">
        <li><strong>${c.sets}</strong> sets</li>
        <li><strong>${c.atoms}</strong> atoms</li>
        <li><strong>${c.versions}</strong> versions</li>
        <li><strong>${c.builds}</strong> builds</li>
      </ul>
    </section>
    <section aria-labelledby="sets-h">
      <h2 id="sets-h">Sets</h2>
      ${v.sets.length === 0
        ? html`<p>No sets yet: start <code>cpr serve</code> with <code>--set URL</code>.</p>`
        : html`<ul class="sets">
            ${v.sets.map(
              (s) =>
                html`<li>
                  <a href="${href("sets", s.root)}">Set ${short(s.root)}</a> <span class="muted">${s.mirrors[0] ?? ""}</span>
                  <span class="muted">${s.indexedAt ? html`indexed ${s.indexedAt}` : "not indexed yet"}</span>
                </li>`,
            )}
          </ul>`}
    </section>`;
  return layout({ title: "Home", assets, live: "search" }, body);
}

export function renderSearch(v: SearchView, assets: AssetUrls): string {
  const body = html`<h1>Search</h1>
    <section id="results" aria-live="polite">${searchResults(v)}</section>`;
  return layout({ title: v.q ? `Search: ${v.q}` : "Search", q: v.q, assets, live: "search" }, body);
}

/** The results part of the search page (site.js builds the same from the JSON answer). */
function searchResults(v: SearchView): Html {
  const what = v.q ? html`for “${v.q}”` : html`(every atom)`;
  if (v.results.length === 0) return html`<p class="count">No atom matches ${what}.</p>`;
  return html`<p class="count">
      ${v.more || v.page > 1 ? `Page ${v.page} of the results` : `${v.results.length} result${v.results.length === 1 ? "" : "s"}`} ${what}
    </p>
    <ol class="hits">
      ${v.results.map(atomItem)}
    </ol>
    ${pager(v, "/search", { q: v.q })}`;
}

// ── set ──

export function renderSet(v: SetView, assets: AssetUrls): string {
  const s = v.set;
  const body = html`<h1>Set <span class="mono">${short(s.root)}</span></h1>
    <dl class="facts">
      <dt>Root</dt>
      <dd class="mono">${s.root}</dd>
      <dt>Mirrors</dt>
      <dd>
        ${s.mirrors.length
          ? html`<ul>
              ${s.mirrors.map((m) => html`<li class="mono">${m}</li>`)}
            </ul>`
          : "none"}
      </dd>
      <dt>Indexed</dt>
      <dd>${s.indexedAt ?? "not yet"}</dd>
    </dl>
    <section aria-labelledby="atoms-h">
      <h2 id="atoms-h">Atoms</h2>
      ${v.atoms.length === 0
        ? html`<p>No atoms indexed in this set.</p>`
        : html`<ol class="hits">
            ${v.atoms.map(atomItem)}
          </ol>`}
      ${pager(v, href("sets", s.root), {})}
    </section>`;
  return layout({ title: `Set ${short(s.root)}`, assets }, body);
}

// ── atom ──

/** One section of the atom page: a heading id, a heading, and its body (null: the section is left out). */
export interface AtomSection {
  readonly id: string;
  readonly title: string;
  readonly render: (v: AtomView) => Html | null;
}

const versionHref = (v: AtomView, version: string): string => href("atoms", v.id, version);

const installSection: AtomSection = {
  id: "install",
  title: "Install",
  render: (v) => {
    const i = v.selected.install;
    if (!i) return html`<p>This set has no mirror to install from.</p>`;
    const line = (label: string, text: string, id: string) =>
      html`<div class="copy">
        <span id="${id}-l" class="copy-label">${label}</span>
        <pre aria-labelledby="${id}-l" data-copy><code>${text}</code></pre>
      </div>`;
    return html`${line("Install this version (prebuilt, from this registry)", i.get, "get")} ${line("Atom URI", i.uri, "uri")}
    ${line("Depend on it from another atom", i.add, "add")}`;
  },
};

const versionsSection: AtomSection = {
  id: "versions",
  title: "Versions",
  render: (v) =>
    html`<ul class="versions">
        ${v.versions.map((x) => {
          const current = x.version === v.selected.version;
          return html`<li${current ? html` class="current"` : ""}><a href="${versionHref(v, x.version)}"${current ? html` aria-current="page"` : ""}>${x.version}</a>${
            x.yanked ? html` <span class="mark yanked">yanked${x.yanked.reason ? html`: ${x.yanked.reason}` : ""}</span>` : ""
          }${x.built ? "" : html` <span class="mark unbuilt">not built</span>`}</li>`;
        })}
      </ul>
      ${v.moreVersions
        ? html`<p><a href="${withQuery(versionHref(v, v.selected.version), { versions: "all" })}">Show every version</a></p>`
        : ""}`,
};

const manifestSection: AtomSection = {
  id: "manifest",
  title: "Manifest",
  render: (v) =>
    html`<dl class="facts">
        <dt>Version</dt>
        <dd>${v.selected.version}</dd>
        <dt>Atom commit</dt>
        <dd class="mono">${v.selected.rev}</dd>
        ${v.selected.origin
          ? html`<dt>Source commit</dt>
              <dd class="mono">${v.selected.origin}</dd>`
          : ""}
      </dl>
      <pre class="manifest" aria-label="atom.toml"><code>${v.selected.manifest}</code></pre>`,
};

const dependenciesSection: AtomSection = {
  id: "dependencies",
  title: "Dependencies",
  render: (v) => {
    const deps = v.selected.dependencies;
    if (deps.length === 0) return html`<p>No atom dependencies.</p>`;
    return html`<ul class="deps">
      ${deps.map(
        (d) =>
          html`<li>
            ${d.atoms.length
              ? d.atoms.map((a) => html`<a href="${href("atoms", a.id)}">${d.label}</a> `)
              : html`<span class="label">${d.label}</span> `}<code>${d.requirement}</code>
            <span class="muted">from ${d.tag} (${d.mirrors.join(", ")})</span>
          </li>`,
      )}
    </ul>`;
  },
};

const dependentsSection: AtomSection = {
  id: "dependents",
  title: "Dependents",
  render: (v) => {
    const d = v.selected.dependents;
    if (d.results.length === 0 && d.page === 1) return html`<p>No atom in this registry depends on ${v.label}.</p>`;
    return html`<ul class="deps">
        ${d.results.map(
          (r) =>
            html`<li>
              <a href="${href("atoms", r.id, r.version)}">${r.label} ${r.version}</a> <code>${r.requirement}</code>
              <span class="muted">in set ${short(r.root)}</span>
            </li>`,
        )}
      </ul>
      ${pager(d, versionHref(v, v.selected.version), {}, "dependents")}`;
  },
};

const buildsSection: AtomSection = {
  id: "builds",
  title: "Builds",
  render: (v) => {
    const b = v.selected.builds;
    if (b.length === 0) return html`<p>No build of ${v.label} ${v.selected.version} is recorded for any system.</p>`;
    return html`<table class="builds">
      <caption>
        Newest build record per system
      </caption>
      <thead>
        <tr>
          <th scope="col">System</th>
          <th scope="col">Outputs</th>
          <th scope="col">Closure</th>
          <th scope="col">Recorded</th>
        </tr>
      </thead>
      <tbody>
        ${b.map(
          (s) =>
            html`<tr>
              <th scope="row">${s.system}</th>
              <td>
                <ul class="outputs">
                  ${Object.entries(s.newest.outputs).map(
                    ([name, path]) => html`<li><span class="muted">${name}</span> <code>${path}</code></li>`,
                  )}
                </ul>
                <p class="muted">derivation <code>${s.newest.drv}</code></p>
              </td>
              <td>
                ${formatBytes(s.closure.narSize)} in ${s.closure.paths}
                path${s.closure.paths === 1 ? "" : "s"}${s.closure.missing
                  ? html` <span class="mark unbuilt">${s.closure.missing} not in this cache</span>`
                  : ""}
              </td>
              <td>
                ${s.newest.createdAt.replace(/\.\d{3}Z$/, "Z")}${s.records > 1
                  ? html` <span class="muted">(${s.records} records)</span>`
                  : ""}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>`;
  },
};

const graftsSection: AtomSection = {
  id: "grafts",
  title: "Grafts",
  render: (v) => {
    const g = v.selected.grafts;
    if (g === null) return null; // HOOK: PageHooks.grafts not set (grafts not served by this registry).
    if (g.length === 0) return html`<p>No grafts of this version.</p>`;
    return html`<ul class="grafts">
      ${g.map(
        (x) =>
          html`<li>
            <strong>${x.name}</strong> (${x.system}): <code>${x.from}</code> → <code>${x.to}</code>
            <span class="muted">${isoTime(x.createdAt)}</span>
          </li>`,
      )}
    </ul>`;
  },
};

/** The atom page's sections, in order. A feature adds its section here (its data comes through PageHooks). */
export const ATOM_SECTIONS: AtomSection[] = [
  installSection,
  versionsSection,
  manifestSection,
  dependenciesSection,
  dependentsSection,
  buildsSection,
  graftsSection,
];

export function renderAtom(v: AtomView, assets: AssetUrls): string {
  const sections = ATOM_SECTIONS.map((s) => ({ s, body: s.render(v) })).filter((x) => x.body !== null);
  const body = html`<h1>${v.label} <span class="version">${v.selected.version}</span></h1>
    ${v.selected.yanked
      ? html`<p class="mark yanked banner">
          This version is yanked${v.selected.yanked.reason ? html`: ${v.selected.yanked.reason}` : ""}.
        </p>`
      : ""}
    ${v.description ? html`<p class="desc">${v.description}</p>` : html`<p class="muted">No description.</p>`} ${tags(v.tags)}
    <p class="muted">AtomId <code>${v.id}</code> in set <a href="${href("sets", v.set)}">${short(v.set)}</a></p>
    <nav class="toc" aria-label="Sections">
      <ul>
        ${sections.map(({ s }) => html`<li><a href="#${s.id}">${s.title}</a></li>`)}
      </ul>
    </nav>
    ${sections.map(
      ({ s, body: b }) =>
        html`<section id="${s.id}" aria-labelledby="${s.id}-h">
          <h2 id="${s.id}-h">${s.title}</h2>
          ${b}
        </section> `,
    )}`;
  return layout({ title: `${v.label} ${v.selected.version}`, assets }, body);
}

// ── errors ──

export function renderError(status: number, message: string, assets: AssetUrls): string {
  const title = status === 404 ? "Not found" : status === 400 ? "Bad request" : "Error";
  return layout(
    { title, assets },
    html`<h1>${title}</h1>
      <p class="error">${message}</p>
      <p><a href="/">Back to the home page</a></p>`,
  );
}
