// The device's own store of viewer copies fetched before the session (issue 16; documents/prefetch.js writes,
// documents/viewer.js reads). IndexedDB, because the box serves plain http:// (captive portal, no certificate):
// service workers and the Cache API need a secure context, and the viewer's bytes of a non-public file are
// `no-store`, so the HTTP cache keeps nothing. One record per viewer copy, keyed by file id and ETag (the ETag
// names the bytes: a new version or copy gets a new key, and the old record is deleted with the next list).
// Every function resolves to null/false/[] when IndexedDB is missing or refuses (private windows, full disks):
// the viewer then fetches ranges as before.

const NAME = "sitzungsbox-unterlagen";
const STORE = "viewer-copies";
let opened = null;

export function available() {
  try {
    return typeof indexedDB !== "undefined" && indexedDB !== null;
  } catch (e) {
    return false;
  }
}

export function key(fileId, etag) {
  return `${fileId} ${etag}`;
}

function open() {
  if (!available()) return Promise.resolve(null);
  if (!opened) {
    opened = new Promise((resolve) => {
      let req;
      try {
        req = indexedDB.open(NAME, 1);
      } catch (e) {
        resolve(null);
        return;
      }
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    });
  }
  return opened;
}

function run(mode, work) {
  return open().then((db) => new Promise((resolve) => {
    if (!db) {
      resolve(null);
      return;
    }
    let tx;
    try {
      tx = db.transaction(STORE, mode);
    } catch (e) {
      resolve(null);
      return;
    }
    const req = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req ? req.result : true);
    tx.onerror = () => resolve(null);
    tx.onabort = () => resolve(null);
  }));
}

// The stored copy of this file with exactly this ETag and length, as a Uint8Array; else null.
export async function get(fileId, etag, length) {
  if (!fileId || !etag) return null;
  const rec = await run("readonly", (s) => s.get(key(fileId, etag)));
  if (!rec || !rec.bytes || rec.bytes.byteLength !== length || rec.etag !== etag) return null;
  return new Uint8Array(rec.bytes);
}

export function put(fileId, etag, bytes) {
  return run("readwrite", (s) => s.put({ id: fileId, etag, length: bytes.byteLength, bytes, at: Date.now() },
                                       key(fileId, etag))).then((ok) => ok !== null);
}

export async function keys() {
  return (await run("readonly", (s) => s.getAllKeys())) || [];
}

export function remove(keysToGo) {
  if (!keysToGo.length) return Promise.resolve(true);
  return run("readwrite", (s) => {
    for (const k of keysToGo) s.delete(k);
    return null;
  });
}

export function clear() {
  return run("readwrite", (s) => s.clear());
}
