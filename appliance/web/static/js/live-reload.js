/* Pages that show server-rendered state (the attendance list) refresh that part when the push channel says
   it changed: the fragment is fetched again, so the HTML stays the one truth and works without JS. */
(function () {
  "use strict";
  document.querySelectorAll("[data-live-reload]").forEach(function (el) {
    var pending = null;
    document.addEventListener("sitzungsbox:" + el.getAttribute("data-live-reload"), function () {
      if (pending) { return; }
      pending = setTimeout(function () {
        pending = null;
        fetch(window.location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); })
          .then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.getElementById(el.id);
            if (fresh) { el.innerHTML = fresh.innerHTML; }
            var q = doc.getElementById("quorum"), mine = document.getElementById("quorum");
            if (q && mine) { mine.className = q.className; mine.innerHTML = q.innerHTML; }
          });
      }, 200);
    });
  });
})();
