/* Technicians' dashboard: live without reloading the page (appliance/web/dashboard.py says why a poll and not
   the push channel). Every few seconds (#live data-poll-interval) the page fetches its live parts (#live
   data-poll: the server-built URL of the same view with the same search, filter, sort and device) and swaps
   each [data-live-part] whose HTML changed. The search form is no part, so what is typed, the caret and the
   focus stay; a focused link or summary inside a swapped part gets its focus back, <details> keep the state
   the technician gave them, graphs (data-live-mode="img") only get their new URL. Paused while the tab is
   hidden and by the button (WCAG 2.2.2); changed alert counts are announced (role=status). Without
   JavaScript the page works as is: "Aktualisieren" reloads it with its query. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  var url = live.getAttribute("data-poll");
  var every = Math.max(1, parseInt(live.getAttribute("data-poll-interval"), 10) || 2) * 1000;
  var toggle = document.getElementById("live-toggle");
  var note = document.getElementById("live-note");
  var announce = document.getElementById("alert-announce");
  var paused = false, timer = null, inflight = false, stopped = false;
  var last = {};  // part name -> the HTML last received (the user's open/closed <details> do not count)

  document.querySelectorAll("[data-live-part]").forEach(function (el) {
    last[el.getAttribute("data-live-part")] = el.innerHTML;
  });

  function say(text) { if (note && note.textContent !== text) { note.textContent = text; } }
  function countsText() { var c = document.getElementById("alert-counts"); return c ? c.textContent.trim() : ""; }

  function swapImages(mine, fresh) {
    var olds = mine.querySelectorAll("img[id]"), news = fresh.querySelectorAll("img[id]");
    if (olds.length !== news.length) { return false; }
    for (var i = 0; i < news.length; i++) {
      if (olds[i].id !== news[i].id) { return false; }
    }
    for (var j = 0; j < news.length; j++) {
      var src = news[j].getAttribute("src");
      if (olds[j].getAttribute("src") !== src) { olds[j].setAttribute("src", src); }
      olds[j].setAttribute("alt", news[j].getAttribute("alt") || "");
    }
    return true;
  }

  function swap(mine, fresh) {
    var active = document.activeElement;
    var focusId = active && active !== document.body && mine.contains(active) ? active.id : null;
    if (mine.getAttribute("data-live-mode") === "img" && swapImages(mine, fresh)) { return; }
    var state = {};
    mine.querySelectorAll("details[id]").forEach(function (d) { state[d.id] = d.open; });
    mine.innerHTML = fresh.innerHTML;
    mine.querySelectorAll("details[id]").forEach(function (d) {
      if (Object.prototype.hasOwnProperty.call(state, d.id)) { d.open = state[d.id]; }
    });
    if (focusId) {
      var again = document.getElementById(focusId);
      if (again) { again.focus({ preventScroll: true }); }
    }
  }

  function apply(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var before = countsText();
    doc.querySelectorAll("[data-live-part]").forEach(function (fresh) {
      var name = fresh.getAttribute("data-live-part");
      var mine = document.querySelector('[data-live-part="' + name + '"]');
      if (!mine || last[name] === fresh.innerHTML) { return; }
      last[name] = fresh.innerHTML;
      swap(mine, fresh);
    });
    var after = countsText();
    if (announce && after !== before) { announce.textContent = after; }
    document.body.setAttribute("data-live-updated", String(Date.now()));
  }

  function schedule(ms) {
    window.clearTimeout(timer);
    timer = null;
    if (!paused && !stopped && !document.hidden) { timer = window.setTimeout(poll, ms); }
  }

  function poll() {
    if (inflight || paused || stopped) { return; }
    inflight = true;
    window.fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) {  // the login ran out
          stopped = true; say(note && note.getAttribute("data-expired")); return null;
        }
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.text();
      })
      .then(function (html) {
        inflight = false;
        if (html === null) { return; }
        say("");
        apply(html);
        schedule(every);
      })
      .catch(function () {
        inflight = false;
        say(note && note.getAttribute("data-offline"));
        schedule(every * 2);
      });
  }

  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.textContent = toggle.getAttribute(paused ? "data-resume" : "data-pause");
      say(paused ? note && note.getAttribute("data-paused") : "");
      if (paused) { schedule(0); } else { poll(); }
    });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { schedule(0); } else { poll(); }
  });
  schedule(every);
})();
