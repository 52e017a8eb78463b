// „Unterlagen vorab auf dieses Gerät laden“ (issue 16): before the session, while members arrive and the radio is
// idle, a device that opted in fetches the viewer's copies of the documents its member may read, one at a time
// at the lowest priority, into IndexedDB (documents/store.js); in the session documents/viewer.js opens them from
// there: no bytes on the radio. The box decides (rules.prefetch): only before the chair moves the room to an
// agenda item, only files the read policy gives this viewer. It answers 409 once the session has started; the
// push event `agenda.current` with an item stops this device at once (a fetch under way may finish, no new one
// starts). The choice is kept in localStorage. Without JavaScript or IndexedDB the section stays hidden.

import * as store from "./store.js";

const OPT = "sitzungsbox.vorab";
const box = document.getElementById("prefetch");
if (box && store.available() && window.fetch && window.localStorage) setup(box);

function setup(box) {
  const toggle = document.getElementById("prefetch-on");
  const status = document.getElementById("prefetch-status");
  const word = (name) => box.dataset[name] || "";
  let generation = 0; // a new run or a stop makes every older run end before its next fetch
  let running = false;
  let again = false;

  function size(bytes) { // as the server's doc_size filter
    if (bytes >= 1048576) return word("mb").replace("{n}", (bytes / 1048576).toFixed(1).replace(".", word("mark")));
    return word("kb").replace("{n}", String(Math.max(1, Math.round(bytes / 1024))));
  }

  function say(list, have, extra) {
    const files = list ? list.files : [];
    const got = files.filter((f) => have.has(store.key(f.id, f.etag)));
    const text = word("progress").replace("{done}", got.length).replace("{total}", files.length)
      .replace("{size}", size(got.reduce((n, f) => n + f.length, 0)));
    status.textContent = [text, ...extra.filter(Boolean)].join(" ");
    box.dataset.stored = String(got.length); // for tests and styles: how many of the list are here
  }

  async function fetchList() {
    const resp = await fetch(box.dataset.listUrl, { credentials: "same-origin", cache: "no-store" });
    if (!resp.ok) throw new Error(`list: HTTP ${resp.status}`);
    return resp.json();
  }

  async function budget() {
    try {
      const est = await navigator.storage.estimate();
      if (typeof est.quota === "number") return Math.max(0, est.quota - (est.usage || 0));
    } catch (e) { /* no estimate: the store refuses what does not fit */ }
    return Infinity;
  }

  async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    const mine = ++generation;
    const live = () => mine === generation && toggle.checked;
    box.dataset.state = "running";
    let list = null;
    let have = new Set();
    let note = "";
    let skipped = 0;
    try {
      list = await fetchList();
      // Keep only what the box lists now: a replaced version, a file no longer readable, another session's.
      const wanted = new Set(list.files.map((f) => store.key(f.id, f.etag)));
      const stored = await store.keys();
      await store.remove(stored.filter((k) => !wanted.has(k)));
      have = new Set(stored.filter((k) => wanted.has(k)));
      if (!list.allowed) {
        note = list.reason;
        box.dataset.state = "refused";
        return;
      }
      let left = await budget();
      for (const f of list.files) {
        if (!live()) break;
        const k = store.key(f.id, f.etag);
        if (have.has(k)) continue;
        if (f.length > left) { // does not fit: skip it, a smaller one may
          skipped += 1;
          continue;
        }
        say(list, have, [word("running")]);
        const resp = await fetch(f.url, { priority: "low", credentials: "same-origin", cache: "no-store" });
        if (resp.status === 409) { // the session has started: the box says so
          note = (await resp.json().catch(() => ({}))).reason || word("started");
          box.dataset.state = "refused";
          return;
        }
        if (!resp.ok) throw new Error(`${f.url}: HTTP ${resp.status}`);
        const bytes = await resp.arrayBuffer();
        if (bytes.byteLength !== f.length || resp.headers.get("ETag") !== f.etag) continue; // changed meanwhile
        if (await store.put(f.id, f.etag, bytes)) {
          have.add(k);
          left -= f.length;
        } else {
          skipped += 1;
        }
      }
      box.dataset.state = live() ? "done" : "stopped";
      note = live() ? word("done") : (toggle.checked ? word("started") : word("stopped"));
    } catch (err) {
      console.warn("prefetch:", err);
      box.dataset.state = "failed";
      note = word("failed");
    } finally {
      say(list, have, [note, skipped ? word("skipped").replace("{n}", skipped) : ""]);
      running = false;
      if (again && toggle.checked) {
        again = false;
        run();
      }
    }
  }

  function stop() {
    generation += 1; // the run in progress finishes its fetch and starts no other
    again = false;
  }

  box.hidden = false;
  toggle.checked = localStorage.getItem(OPT) === "1";
  toggle.addEventListener("change", () => {
    localStorage.setItem(OPT, toggle.checked ? "1" : "0");
    if (toggle.checked) run();
    else stop();
  });
  document.getElementById("prefetch-delete").addEventListener("click", async () => {
    stop();
    toggle.checked = false;
    localStorage.setItem(OPT, "0");
    await store.clear();
    box.dataset.stored = "0";
    box.dataset.state = "deleted";
    status.textContent = word("deleted");
  });
  // The chair moved the room to an item: the session has started, stop now. Back to no item (a break): ask again.
  document.addEventListener("sitzungsbox:agenda.current", (ev) => {
    if (ev.detail && ev.detail.item_id) stop();
    else if (toggle.checked) run();
  });
  // New or corrected documents: fetch what is new (the list says whether that is allowed).
  for (const topic of ["sitzungsbox:document", "sitzungsbox:documents.changed"]) {
    document.addEventListener(topic, () => { if (toggle.checked) run(); });
  }
  if (toggle.checked) run();
  else {
    // Show what this device already holds, without fetching anything.
    Promise.all([fetchList(), store.keys()]).then(([list, keys]) => say(list, new Set(keys), []))
      .catch(() => {});
  }
}
