// Late documents (Tischvorlagen) appear without reloading, and so do the clerk's corrections
// (documents.changed). The page works without this script.
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

  function word(name) { return box.getAttribute("data-" + name) || ""; }
  function space() { return document.createTextNode(" "); }
  function badge(text, cls) {
    var span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    return span;
  }
  function size(bytes) {  // as the server's doc_size filter
    if (bytes >= 1048576) { return word("mb").replace("{n}", (bytes / 1048576).toFixed(1).replace(".", word("mark"))); }
    return word("kb").replace("{n}", String(Math.max(1, Math.round(bytes / 1024))));
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
    // The same entry as templates/documents/_file.html: title, badges, name and size, download; the page
    // gives the words and units in its language (data-* of #doc-notices), the notice the facts.
    var li = document.createElement("li");
    li.className = "doc-file late new";
    li.id = "file-" + n.file_id;
    var link = document.createElement("a");
    link.href = withState(n.view_url);
    link.className = "doc-title";
    link.textContent = n.title;
    li.appendChild(link);
    if (n.late !== false) { li.appendChild(space()); li.appendChild(badge(word("late"), "badge late")); }
    if (n.public === false) { li.appendChild(space()); li.appendChild(badge(word("nonpublic"), "badge")); }
    li.appendChild(space());
    li.appendChild(badge(n.name + (typeof n.size === "number" ? " · " + size(n.size) : ""), "muted small"));
    li.appendChild(space());
    var dl = document.createElement("a");
    dl.href = withState(n.url, {dl: "1"});
    dl.setAttribute("download", "");
    dl.setAttribute("aria-label", word("download") + ": " + n.title);
    dl.textContent = word("download");
    li.appendChild(dl);
    var target = document.querySelector('[data-item="' + (n.item_id || "") + '"] .doc-files') ||
                 document.getElementById("agenda");
    if (target) { target.appendChild(li); }
    var none = document.getElementById("doc-none");
    if (none) { none.hidden = true; }
  }

  document.addEventListener("sitzungsbox:document", function (ev) { add(ev.detail); });

  // A clerk corrected the agenda (renamed, reordered, moved, replaced, deleted, made non-public): the event names
  // nothing, the page asks the server for itself again — that answer passes the same reading policy — and swaps
  // the agenda in place. Several changes in a row cause one fetch.
  var refetching = null;
  function refetch() {
    if (refetching || !window.fetch || !window.DOMParser) { return; }
    refetching = window.setTimeout(function () {
      fetch(window.location.href, {cache: "no-store"}).then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          refetching = null;
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("agenda");
          var old = document.getElementById("agenda");
          if (fresh && old) { old.parentNode.replaceChild(document.importNode(fresh, true), old); }
          var none = document.getElementById("doc-none");
          if (none) { none.hidden = !!(fresh && fresh.children.length); }
          var freshBox = doc.getElementById("doc-notices");
          var latest = freshBox ? parseInt(freshBox.getAttribute("data-since") || "0", 10) : 0;
          if (latest > since) { since = latest; }
        }).catch(function () { refetching = null; });
    }, 300);
  }
  document.addEventListener("sitzungsbox:documents.changed", refetch);

  if (!window.sitzungsboxLive && window.fetch) {
    var url = box.getAttribute("data-poll");  // already carries the state
    var poll = function () {
      fetch(withState(url, {seit: String(since)}), {cache: "no-store"}).then(function (r) { return r.ok ? r.json() : []; })
        .then(function (list) { list.forEach(add); }).catch(function () {});
    };
    window.setInterval(poll, 10000);
  }
}());
