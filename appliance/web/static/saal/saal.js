/* The room screen (/saal/<token>): live without a reload, the countdown without an event per second.
   - The push stream of this display (data-push-url: /saal/<token>/events, built by the server) brings every
     event the hall may see; on each one the page fetches itself again and swaps #saal-live (the HTML stays
     the one truth, see appliance/web/saal.py). "display.revoked" ends the stream: the page reloads and shows
     why (410).
   - The countdown: #saal-timer carries data-started (unix seconds) and data-limit (seconds); #saal-live
     carries the server's clock when it was rendered (data-server-now), so a projector whose own clock is wrong
     still counts right. Math.ceil, as rules.display.remaining.
   - Every data-safety seconds the page is fetched anyway (an event missed while the stream was down); a page
     that is waiting for its session (data-waiting) is fetched every data-refresh seconds and reloads once the
     session is active. Any answer but 200 (410: revoked) reloads the page.
   Without JavaScript the page has a <noscript> meta refresh. */
(function () {
  "use strict";
  var root = document.getElementById("saal");
  if (!root) { return; }
  var offset = 0;  // server clock minus this browser's clock, in ms
  var pending = null;
  var source = null;

  function readClock(el) {
    var now = parseFloat(el && el.getAttribute("data-server-now"));
    if (!isNaN(now)) { offset = now * 1000 - Date.now(); }
  }

  function clock(left) {
    var s = Math.abs(left);
    var sec = s % 60;
    return (left < 0 ? "-" : "") + Math.floor(s / 60) + ":" + (sec < 10 ? "0" : "") + sec;
  }

  var voteDue = {};
  function voteDeadline() {
    // A vote's countdown (issue 14): once it ran out the screen fetches itself; that read closes the vote.
    var v = document.getElementById("saal-vote");
    var deadline = parseFloat(v && v.getAttribute("data-vote-deadline"));
    if (isNaN(deadline)) { return; }
    var shown = document.getElementById("saal-vote-deadline");
    var left = Math.max(0, Math.ceil(deadline - (Date.now() + offset) / 1000));
    if (shown) {
      var text = shown.textContent.replace(/[0-9]+/, String(left));
      if (shown.textContent !== text) { shown.textContent = text; }
    }
    if (voteDue[deadline] || left > 0) { return; }
    voteDue[deadline] = true;
    setTimeout(refresh, 200);
  }

  function tick() {
    voteDeadline();
    var t = document.getElementById("saal-timer");
    var live = document.getElementById("saal-live");
    if (!t || !live) { return; }
    var started = parseFloat(t.getAttribute("data-started"));
    var limit = parseFloat(t.getAttribute("data-limit"));
    var warn = parseFloat(live.getAttribute("data-warn")) || 0;
    if (isNaN(started) || isNaN(limit)) { return; }
    var left = Math.ceil(started + limit - (Date.now() + offset) / 1000);
    var text = clock(left);
    if (t.textContent !== text) { t.textContent = text; }
    t.classList.toggle("timer-over", left < 0);
    t.classList.toggle("timer-warn", left >= 0 && left <= warn);
  }

  // One fetch at a time: events during it (a burst of votes.progress, one per cast) ask for one more after it.
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "omit", cache: "no-store" }).then(function (r) {
      if (r.status !== 200) { window.location.reload(); return null; }
      return r.text();
    }).then(function (html) {
      if (html === null) { return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("saal-live");
      var mine = document.getElementById("saal-live");
      var freshRoot = doc.getElementById("saal");
      if (!fresh || !mine || !freshRoot ||
          freshRoot.hasAttribute("data-waiting") !== root.hasAttribute("data-waiting")) {
        window.location.reload();  // the session began or ended: the whole page, with its stream
        return;
      }
      ["data-server-now", "data-warn"].forEach(function (name) {
        mine.setAttribute(name, fresh.getAttribute(name) || "");
      });
      mine.innerHTML = fresh.innerHTML;
      readClock(mine);
      tick();
      root.setAttribute("data-refreshed", String((parseInt(root.getAttribute("data-refreshed"), 10) || 0) + 1));
    }).catch(function () { /* the box is briefly unreachable: the next event or the safety fetch tries again */ })
      .then(function () { busy = false; if (again) { again = false; soon(); } });
  }

  function soon() {
    if (pending) { return; }
    pending = setTimeout(function () { pending = null; refresh(); }, 50);
  }

  readClock(document.getElementById("saal-live"));
  tick();
  setInterval(tick, 250);

  var url = root.getAttribute("data-push-url");
  if (url && window.EventSource) {
    source = new EventSource(url);
    var received = 0;
    source.onmessage = function (msg) {
      var data;
      received += 1;
      root.setAttribute("data-events", String(received));  // for the tests: what reached this screen
      try { data = JSON.parse(msg.data); } catch (e) { return; }
      root.setAttribute("data-last-topic", String(data.topic));
      if (data.topic === "display.revoked") {
        source.close();
        window.location.reload();
        return;
      }
      soon();
    };
    source.onopen = function () { root.setAttribute("data-live", "open"); };
    source.onerror = function () {
      root.setAttribute("data-live", source.readyState === 2 ? "closed" : "reconnecting");
      if (source.readyState === 2) { soon(); }  // refused (410/404): the fetch reloads into the answer
    };
  }
  var every = root.hasAttribute("data-waiting") ? root.getAttribute("data-refresh") : root.getAttribute("data-safety");
  every = parseInt(every, 10);
  if (every > 0) { setInterval(refresh, every * 1000); }
})();
