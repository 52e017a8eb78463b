/* The chair's vote panel (issue 14): a countdown the chair started counts down in the browser, and when it ran
   out the console is fetched once — the read of the vote closes it (usecases.votes.state: close_due), and the
   close's push event then brings the result to every page. Without JavaScript the chair reloads the page. */
(function () {
  "use strict";
  var fired = {};
  setInterval(function () {
    var el = document.querySelector("[data-vote-deadline]");
    if (!el) { return; }
    var deadline = parseFloat(el.getAttribute("data-vote-deadline"));
    var now = parseFloat(el.getAttribute("data-server-now"));
    if (isNaN(deadline)) { return; }
    if (!el.hasAttribute("data-offset")) {  // the server's clock minus this browser's, when it was rendered
      el.setAttribute("data-offset", String(isNaN(now) ? 0 : now * 1000 - Date.now()));
    }
    var left = Math.max(0, Math.ceil(deadline - (Date.now() + parseFloat(el.getAttribute("data-offset"))) / 1000));
    var text = el.textContent.replace(/[0-9]+/, String(left));
    if (el.textContent !== text) { el.textContent = text; }
    if (left <= 0 && !fired[deadline]) {
      fired[deadline] = true;
      setTimeout(function () { var live = document.getElementById("vote-panel-live"); if (live) { fetch(live.getAttribute("data-live-url"), { credentials: "same-origin" }); } }, 300);
    }
  }, 250);
})();
