/* Sitzungsbox push channel: ONE EventSource per tab; every event becomes a DOM CustomEvent
   "sitzungsbox:<topic>" on document (detail = payload plus id), so each feature's script just listens.
   The page says where its stream starts (#push-start data-push-last), so nothing published between rendering
   and connecting is lost, and gives the stream's URL (data-push-url, built by the server with the page's
   language and demo device: appliance/web/links.py); the browser resumes with Last-Event-ID after a drop. JS only enhances: every
   page works without it. */
(function () {
  "use strict";
  if (!window.EventSource || window.sitzungsboxLive) { return; }
  var body = document.body;
  var start = document.getElementById("push-start");
  var last = start && start.getAttribute("data-push-last");
  var url = start && start.getAttribute("data-push-url");
  if (!url) { return; }
  var lastId = last ? parseInt(last, 10) : 0;
  var source = new EventSource(url);
  window.sitzungsboxLive = { source: source, lastId: function () { return lastId; } };
  source.onmessage = function (msg) {
    var data;
    try { data = JSON.parse(msg.data); } catch (e) { return; }
    var id = parseInt(msg.lastEventId, 10);
    if (id && id <= lastId) { return; }  // never twice, even across a reconnect
    if (id) { lastId = id; }
    var detail = Object.assign({}, data.payload || {}, { id: id });
    document.dispatchEvent(new CustomEvent("sitzungsbox:" + data.topic, { detail: detail }));
  };
  source.onopen = function () {
    document.dispatchEvent(new CustomEvent("sitzungsbox:open", { detail: { id: lastId } }));
    if (body) { body.setAttribute("data-live", "open"); }
  };
  source.onerror = function () {
    if (body) { body.setAttribute("data-live", source.readyState === 2 ? "closed" : "reconnecting"); }
  };
})();
