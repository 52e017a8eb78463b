/* Sitzungsbox room chat, an enhancement of the plain form pages (everything works without it):
   - new messages arrive through the one push channel (live.js → "sitzungsbox:chat.message");
   - the form posts in the background;
   - what is written while offline waits in a localStorage outbox and is sent when back — once and in
     order: the client id generated here makes a resend the same message on the server.
   Text is only ever set with textContent (never innerHTML): no markup from messages reaches the page. */
(function () {
  "use strict";
  var KEY = "sitzungsbox-chat-outbox";
  var form = document.getElementById("chat-form");
  var log = document.getElementById("chat-log");
  var room = log ? log.getAttribute("data-room") : null;
  var status = document.getElementById("chat-status");
  var banner = document.getElementById("announce-banner");
  var sending = false;
  var timer = null;

  function load() { try { return JSON.parse(window.localStorage.getItem(KEY) || "[]"); } catch (e) { return []; } }
  function save(q) { try { window.localStorage.setItem(KEY, JSON.stringify(q)); } catch (e) { /* private mode */ } }
  function newId() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function say(text) { if (status) { status.textContent = text || ""; } }

  function build(li, p, pending) {
    while (li.firstChild) { li.removeChild(li.firstChild); }
    var who = document.createElement("span"); who.className = "chat-who"; who.textContent = p.author || "";
    var t = document.createElement("time");
    if (p.at) { t.setAttribute("datetime", p.at); }
    t.textContent = pending ? (status ? status.getAttribute("data-pending") : "…") : (p.time || "");
    var body = document.createElement("p"); body.className = "chat-body"; body.textContent = p.body;
    li.appendChild(who); li.appendChild(document.createTextNode(" ")); li.appendChild(t); li.appendChild(body);
  }

  function render(p) {  // a confirmed message (from the server or the push channel)
    if (!log || p.room !== room || log.querySelector('[data-msg="' + p.msg + '"]')) { return; }
    var li = p.client_id ? log.querySelector('[data-client="' + p.client_id + '"]') : null;
    if (li) { log.removeChild(li); } else { li = document.createElement("li"); }
    li.id = "m-" + p.msg;
    li.setAttribute("data-msg", String(p.msg));
    li.setAttribute("data-client", p.client_id || "");
    li.className = "chat-msg chat-" + (p.author_kind || "member");
    build(li, p, false);
    // Server order: after every confirmed message with a lower id, before the pending ones.
    var next = null, items = log.children;
    for (var i = 0; i < items.length; i++) {
      var id = parseInt(items[i].getAttribute("data-msg") || "0", 10);
      if (!id || id > p.msg) { next = items[i]; break; }
    }
    log.insertBefore(li, next);
    var empty = document.getElementById("chat-empty");
    if (empty) { empty.hidden = true; }
  }

  function showPending(item) {
    if (!log || item.room !== room || log.querySelector('[data-client="' + item.client_id + '"]')) { return; }
    var li = document.createElement("li");
    li.className = "chat-msg chat-pending";
    li.setAttribute("data-client", item.client_id);
    build(li, { body: item.body, author: "" }, true);
    log.appendChild(li);
  }

  function later(ms) { if (!timer) { timer = window.setTimeout(function () { timer = null; flush(); }, ms); } }

  function freshToken(item) {  // the device token is bound to the IP: after a reconnect ask the page again
    return window.fetch(window.location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); })
      .then(function (html) {
        var m = /name="csrf_token" value="([^"]+)"/.exec(html);
        if (m) { item.token = m[1]; if (form) { form.elements.csrf_token.value = m[1]; } }
        return !!m;
      });
  }

  function flush() {
    if (sending) { return; }
    var q = load();
    if (!q.length) { say(""); return; }
    sending = true;
    var item = q[0];
    var data = new URLSearchParams();
    data.set("csrf_token", item.token); data.set("room", item.room);
    data.set("client_id", item.client_id); data.set("body", item.body);
    window.fetch(item.action, { method: "POST", body: data, credentials: "same-origin",
                                headers: { "X-Sitzungsbox-Chat": "1" } })
      .then(function (r) {
        var json = (r.headers.get("Content-Type") || "").indexOf("json") >= 0;
        return (json ? r.json() : Promise.resolve(null)).then(function (body) { return { r: r, body: body }; });
      })
      .then(function (res) {
        var r = res.r, body = res.body;
        if (r.ok && body && body.ok) {
          drop(item); render(body.message); sending = false; flush(); return;
        }
        if (r.status === 429) { say(body && body.error); sending = false; later(3000); return; }
        if (r.status === 400 && !body && !item.retried) {  // CSRF token no longer fits this device's address
          item.retried = true; replace(item);
          return freshToken(item).then(function () { replace(item); sending = false; flush(); });
        }
        if (r.status >= 500) { sending = false; say(status && status.getAttribute("data-offline")); later(3000); return; }
        // Refused for good (muted, too long, no access): tell and do not block the ones after it.
        say(body && body.error ? body.error : "Fehler " + r.status);
        var li = log && log.querySelector('[data-client="' + item.client_id + '"]');
        if (li) { li.className += " chat-failed"; }
        drop(item); sending = false; flush();
      })
      .catch(function () {
        sending = false; say(status && status.getAttribute("data-offline")); later(3000);
      });
  }
  function drop(item) { save(load().filter(function (x) { return x.client_id !== item.client_id; })); }
  function replace(item) { save(load().map(function (x) { return x.client_id === item.client_id ? item : x; })); }

  if (form) {
    form.addEventListener("submit", function (ev) {
      var text = form.elements.body.value;
      if (!text.trim() || !window.fetch || !window.URLSearchParams) { return; }  // plain POST then
      ev.preventDefault();
      var item = { client_id: form.elements.client_id.value || newId(), room: form.getAttribute("data-room"),
                   body: text, token: form.elements.csrf_token.value, action: form.getAttribute("action") };
      var q = load(); q.push(item); save(q);
      form.elements.client_id.value = newId();  // the next message is a new one
      form.elements.body.value = "";
      showPending(item);
      flush();
    });
  }
  // Messages that arrive while this room is open and visible are read: the box keeps that (no cookies), so
  // the start page and the room list do not count them as new later.
  var readForm = document.getElementById("chat-read");
  var readTimer = null;
  function markRead() {
    if (!readForm || !log || !window.fetch || !window.URLSearchParams || document.visibilityState === "hidden") {
      return;
    }
    if (readTimer) { window.clearTimeout(readTimer); }
    readTimer = window.setTimeout(function () {
      readTimer = null;
      var last = 0;
      Array.prototype.forEach.call(log.querySelectorAll("[data-msg]"), function (li) {
        last = Math.max(last, parseInt(li.getAttribute("data-msg"), 10) || 0);
      });
      if (!last) { return; }
      var data = new URLSearchParams();
      data.set("csrf_token", readForm.elements.csrf_token.value);
      data.set("room", readForm.elements.room.value);
      data.set("last_id", String(last));
      window.fetch(readForm.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" })
        .catch(function () { /* the next page load marks it */ });
    }, 1000);
  }
  document.addEventListener("visibilitychange", markRead);
  document.addEventListener("sitzungsbox:chat.message", function (ev) {
    var p = ev.detail;
    if (p.room === "announce" && banner) {
      document.getElementById("announce-text").textContent = p.body;
      banner.hidden = false;
    }
    render(p);
    if (p.room === room) { markRead(); }
  });
  document.addEventListener("sitzungsbox:chat.hidden", function (ev) {
    var li = log && log.querySelector('[data-msg="' + ev.detail.msg + '"]');
    if (li && ev.detail.hidden) { li.parentNode.removeChild(li); }
  });
  document.addEventListener("sitzungsbox:open", function () { flush(); });
  window.addEventListener("online", function () { flush(); });
  load().forEach(showPending);
  flush();
  window.sitzungsboxChat = { flush: flush, outbox: load };
})();
