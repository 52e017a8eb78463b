// Late documents (Tischvorlagen) appear without reloading. The page works without this script.
// Source 1: the push channel (static/js/live.js, issue 4) fires DOM events "sitzungsbox:document" whose
// detail is a notice (file_id, title, urls) the server only sent to readers entitled to the file. Source 2 (no live.js): ask
// /unterlagen/neu every 10 s — that answer is filtered by the same policy on the server.
(function () {
  "use strict";
  var box = document.getElementById("doc-notices");
  if (!box) { return; }
  var since = parseInt(box.getAttribute("data-since") || "0", 10);
  var seen = {};
  // The page's sticky state (language, demo device; appliance/web/links.py) goes on every URL built here;
  // query parameters are set through URLSearchParams, never by gluing "?" onto a URL.
  var state = new URLSearchParams(document.body.getAttribute("data-link-state") || "");

  function withState(href, extra) {
    var u = new URL(href, window.location.href);
    state.forEach(function (value, key) { if (!u.searchParams.has(key)) { u.searchParams.set(key, value); } });
    Object.keys(extra || {}).forEach(function (key) { u.searchParams.set(key, extra[key]); });
    return u.pathname + u.search + u.hash;
  }

  function add(n) {
    if (!n || typeof n.file_id !== "number" || seen[n.file_id] || document.getElementById("file-" + n.file_id)) {
      return;
    }
    (n.replaces || []).forEach(function (id) {  // a new version of a file: the old one is gone on the server
      var old = document.getElementById("file-" + id);
      if (old && old.parentNode) { old.parentNode.removeChild(old); }
    });
    seen[n.file_id] = true;
    if (n.file_id > since) { since = n.file_id; }
    var p = document.createElement("p");
    var a = document.createElement("a");
    a.href = withState(n.view_url);
    a.textContent = n.text;
    p.appendChild(a);
    box.appendChild(p);
    var li = document.createElement("li");
    li.className = "doc-file late new";
    li.id = "file-" + n.file_id;
    var link = document.createElement("a");
    link.href = withState(n.view_url);
    link.className = "doc-title";
    link.textContent = n.title;
    li.appendChild(link);
    var dl = document.createElement("a");
    dl.href = withState(n.url, {dl: "1"});
    dl.setAttribute("download", "");
    dl.textContent = n.name;
    li.appendChild(dl);
    var target = document.querySelector('[data-item="' + (n.item_id || "") + '"] .doc-files') ||
                 document.getElementById("agenda");
    if (target) { target.appendChild(li); }
    var none = document.getElementById("doc-none");
    if (none) { none.hidden = true; }
  }

  document.addEventListener("sitzungsbox:document", function (ev) { add(ev.detail); });

  if (!window.sitzungsboxLive && window.fetch) {
    var url = box.getAttribute("data-poll");  // already carries the state
    var poll = function () {
      fetch(withState(url, {seit: String(since)}), {cache: "no-store"}).then(function (r) { return r.ok ? r.json() : []; })
        .then(function (list) { list.forEach(add); }).catch(function () {});
    };
    window.setInterval(poll, 10000);
  }
}());
