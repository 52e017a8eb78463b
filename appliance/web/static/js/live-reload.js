/* Pages that show server-rendered state (the clerk's attendance list, a member's own status) refresh that part when the push channel says
   it changed, and every data-live-every seconds (a quiet phone's "zuletzt gesehen vor N min" grows without an
   event): the same URL is fetched again, so the HTML stays the one truth and works without JS. The quorum
   status (#quorum) is swapped with it. data-live-reload names one push topic or several (space-separated). */
(function () {
  "use strict";
  if (window.sitzungsboxLiveReload) { return; }  // included by several parts of one page: listen once
  window.sitzungsboxLiveReload = true;
  // The first part that includes this may stand before the others: wait for the whole page.
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
  function start() { document.querySelectorAll("[data-live-reload]").forEach(function (el) {
    var pending = null, busy = false, again = false;
    function refresh() {
      // One fetch at a time: events during it ask for one more after it (a loaded box is not asked twice).
      if (busy) { again = true; return; }
      busy = true;
      // data-live-url: the page's own GET URL where the address bar may show a form's POST URL (a refused act)
      fetch(el.getAttribute("data-live-url") || window.location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(el.id);
          if (fresh) { el.innerHTML = fresh.innerHTML; }
          var q = doc.getElementById("quorum"), mine = document.getElementById("quorum");
          if (q && mine) { mine.className = q.className; mine.innerHTML = q.innerHTML; }
        })
        .catch(function () {})
        .then(function () { busy = false; if (again) { again = false; later(); } });
    }
    // data-live-delay (ms): how long to gather events before one refetch; data-live-jitter (ms): a random extra
    // wait, so that 300 phones with the same page open do not all ask in the same instant (the chair's console
    // and the room screen, which must be quick, use neither)
    var delay = parseInt(el.getAttribute("data-live-delay"), 10) || 200;
    var jitter = parseInt(el.getAttribute("data-live-jitter"), 10) || 0;
    function later() {
      if (pending) { return; }
      pending = setTimeout(function () { pending = null; refresh(); }, delay + Math.random() * jitter);
    }
    // One topic or several, separated by spaces ("speakers.changed agenda.current").
    el.getAttribute("data-live-reload").split(/\s+/).forEach(function (topic) {
      if (topic) { document.addEventListener("sitzungsbox:" + topic, later); }
    });
    var every = parseInt(el.getAttribute("data-live-every"), 10);
    if (every > 0) { setInterval(refresh, every * 1000); }
  }); }
})();
