/* The speech timer on the chair's console (issue 13): counts down between the server's renderings. The server
   writes the speech's start (data-started), its limit with extensions (data-limit, 0: none), the warning time
   (data-warn) and its own clock at rendering (data-now), so a phone whose clock is off still counts right; the
   remaining time rendered by the server is what a page without JS shows. live-reload.js replaces the element
   when the list changes: each new element takes its own offset. Warning and overrun are words and a class (not
   colour alone). */
(function () {
  "use strict";
  function clock(seconds) {
    var whole = Math.round(Math.abs(seconds));
    var s = whole % 60;
    return (seconds < 0 ? "-" : "") + Math.floor(whole / 60) + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    var el = document.getElementById("speech-timer");
    if (!el) { return; }
    var nowClient = Date.now() / 1000;
    if (el.sbOffset === undefined) { el.sbOffset = parseFloat(el.getAttribute("data-now")) - nowClient; }
    var elapsed = Math.max(0, nowClient + el.sbOffset - parseFloat(el.getAttribute("data-started")));
    var limit = parseInt(el.getAttribute("data-limit"), 10) || 0;
    var warn = parseInt(el.getAttribute("data-warn"), 10) || 0;
    var clockEl = el.querySelector(".timer-clock"), stateEl = el.querySelector(".timer-state");
    if (!limit) {
      clockEl.textContent = clock(elapsed);
      return;
    }
    var remaining = limit - elapsed;
    var over = remaining < 0, warning = !over && remaining <= warn;
    clockEl.textContent = clock(remaining);
    el.classList.toggle("timer-over", over);
    el.classList.toggle("timer-warn", warning);
    stateEl.textContent = over ? el.getAttribute("data-text-over") : (warning ? el.getAttribute("data-text-warn") : "");
  }
  tick();
  setInterval(tick, 250);
})();
