// The registry's pages, progressively enhanced: every page works without this file. With it, the search box shows
// results as you type (the /search page's own JSON answer, rendered with DOM text nodes only, never as markup),
// install lines get a copy button, and a running job's page follows its log.
"use strict";

(function () {
  var main = document.getElementById("main");
  var live = main ? main.getAttribute("data-live") : null;

  // Bidi and control characters are shown as U+XXXX marks, as the server renders them (html.ts).
  var CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
  function text(s) {
    var out = document.createDocumentFragment();
    var rest = String(s);
    var m;
    while ((m = CONTROL.exec(rest))) {
      if (m.index) out.appendChild(document.createTextNode(rest.slice(0, m.index)));
      var mark = document.createElement("span");
      mark.className = "ctl";
      mark.textContent = "U+" + m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
      out.appendChild(mark);
      rest = rest.slice(m.index + 1);
    }
    if (rest) out.appendChild(document.createTextNode(rest));
    return out;
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      e.appendChild(typeof c === "string" ? text(c) : c);
    });
    return e;
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  // ── search as you type ──
  var input = document.getElementById("q");
  var results = document.getElementById("results");
  if (input && results && live === "search") {
    var timer = null;
    var asked = 0;
    var render = function (view) {
      results.hidden = false;
      results.replaceChildren();
      var what = view.q ? "for \u201c" + view.q + "\u201d" : "(every atom)";
      if (view.results.length === 0) {
        results.appendChild(el("p", { class: "count" }, ["No atom matches " + what + "."]));
        return;
      }
      var count = view.more || view.page > 1 ? "Page " + view.page + " of the results " : view.results.length + (view.results.length === 1 ? " result " : " results ");
      results.appendChild(el("p", { class: "count" }, [count + what]));
      var list = el("ol", { class: "hits" });
      view.results.forEach(function (h) {
        var item = el("li", { class: "hit" }, [el("a", { class: "label", href: "/atoms/" + encodeURIComponent(h.id) }, [h.label])]);
        if (h.versions.length) item.appendChild(el("span", { class: "version" }, [" " + h.versions[0]]));
        item.appendChild(document.createTextNode(" "));
        item.appendChild(el("span", { class: "set" }, ["in set ", el("a", { href: "/sets/" + encodeURIComponent(h.set), title: h.set }, [h.set.slice(0, 12)])]));
        if (h.description) item.appendChild(el("p", { class: "desc" }, [h.description]));
        if (h.tags.length) {
          item.appendChild(
            el(
              "ul",
              { class: "tags", "aria-label": "Tags" },
              h.tags.map(function (t) {
                return el("li", {}, [t]);
              }),
            ),
          );
        }
        list.appendChild(item);
      });
      results.appendChild(list);
      if (view.more) {
        results.appendChild(el("nav", { class: "pager", "aria-label": "Pages" }, [el("a", { rel: "next", href: "/search?q=" + encodeURIComponent(view.q) + "&page=2" }, ["Next page"])]));
      }
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        var n = ++asked;
        var url = "/search?q=" + encodeURIComponent(q);
        getJson(url)
          .then(function (view) {
            if (n !== asked) return; // an older answer arriving late
            render(view);
            history.replaceState(null, "", url);
          })
          .catch(function () {
            /* the form still works: Enter submits it */
          });
      }, 120);
    });
  }

  // ── copy buttons on install lines ──
  Array.prototype.forEach.call(document.querySelectorAll("pre[data-copy]"), function (pre) {
    if (!navigator.clipboard) return;
    var label = pre.getAttribute("aria-labelledby");
    var button = el("button", { type: "button", "aria-describedby": label || "" }, ["Copy"]);
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(pre.textContent).then(function () {
        button.textContent = "Copied";
        setTimeout(function () {
          button.textContent = "Copy";
        }, 1500);
      });
    });
    pre.parentNode.appendChild(button);
  });

  // ── a running job's log ──
  if (live === "job") {
    var state = document.querySelector("[data-field=state]");
    var log = document.querySelector("[data-field=log] code");
    var follow = function () {
      getJson(location.pathname)
        .then(function (job) {
          if (state) state.textContent = job.state;
          if (log) log.textContent = job.log;
          if (job.state === "running" || job.state === "queued") setTimeout(follow, 2000);
        })
        .catch(function () {
          setTimeout(follow, 5000);
        });
    };
    setTimeout(follow, 2000);
  }
})();
