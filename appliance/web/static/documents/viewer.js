// The in-page PDF viewer (issue 16): Mozilla's PDF.js, served by the box (static/vendor/pdfjs), shows one page
// on a canvas and fetches only the byte ranges that page needs from the viewer-data route
// (/unterlagen/<id>/pdf, documents.viewer_data). On the hall's shared radio the first page of a 20 MB file
// costs a few hundred kB instead of the whole file.
//
// Every request is a Range request: the first range (0-64 kB) is fetched here, which also tells the file's
// length (Content-Range) and that ranges work; PDF.js then asks this page's PDFDataRangeTransport for the
// ranges it lacks. (Given a plain `url`, PDF.js first GETs the whole file and, with streaming on, keeps
// reading it to the end in the background: the whole file for everyone, just what this viewer avoids.)
// No eval (isEvalSupported: false) and no WebAssembly (the CSP allows neither): JBIG2 and JPEG 2000 decode in
// PDF.js's plain-JS fallbacks, vendored beside it. Without this script (or when it fails) the page keeps
// what it has without it: the download link.
// Before any range request the viewer looks in this device's own store (documents/store.js, filled before the
// session by documents/prefetch.js): a copy with the page's ETag and length opens from there, no byte on the radio.

import * as store from "./store.js";

const CHUNK = 16384; // rangeChunkSize: smaller chunks waste less of a page's last chunk (bench/hall: ~95 kB against ~140 kB at 64 kB)
const root = document.getElementById("pdf-viewer");
if (root) start(root).catch((err) => fail(err));

function $(id) {
  return document.getElementById(id);
}

function fail(err) {
  console.warn("PDF viewer:", err);
  const status = $("pdf-status");
  if (!status) return;
  root.hidden = false;
  for (const el of root.querySelectorAll(".pdf-bar, .pdf-page")) el.hidden = true;
  status.textContent = status.dataset.failed;
}

async function fetchRange(url, begin, end, signal) {
  const resp = await fetch(url, { headers: { Range: `bytes=${begin}-${end - 1}` }, signal,
                                  credentials: "same-origin" });
  if (resp.status !== 206 && !(resp.status === 200 && begin === 0)) {
    throw new Error(`range ${begin}-${end}: HTTP ${resp.status}`);
  }
  const total = resp.status === 206 ? Number((resp.headers.get("Content-Range") || "").split("/")[1]) : null;
  return { status: resp.status, total, bytes: new Uint8Array(await resp.arrayBuffer()) };
}

async function start(root) {
  const url = root.dataset.pdfUrl;
  const base = new URL("../vendor/pdfjs/", import.meta.url).href;
  const status = $("pdf-status");
  status.textContent = status.dataset.loading;
  root.hidden = false; // the canvas takes the width it has
  // PDF.js's first question is the file's end (startxref, the xref stream): the page knows the length, so the
  // last chunk goes out with the first one instead of a round trip later – the same bytes, one wait less.
  const length = Number(root.dataset.pdfLength) || 0;
  const options = {
    rangeChunkSize: CHUNK, disableAutoFetch: true, disableStream: false, isEvalSupported: false,
    useWasm: false, wasmUrl: base + "wasm/", standardFontDataUrl: base + "standard_fonts/", enableXfa: false,
  };
  // A store that never answers (a blocked database) must not keep the page from the box: a second at most.
  const stored = length ? await Promise.race([
    store.get(Number(root.dataset.fileId), root.dataset.etag, length).catch(() => null),
    new Promise((resolve) => setTimeout(() => resolve(null), 1000))]) : null;
  if (stored) { // fetched onto this device before the session: the same bytes (ETag and length), no request
    const pdfjs = await import(base + "pdf.min.mjs");
    pdfjs.GlobalWorkerOptions.workerSrc = base + "pdf.worker.min.mjs";
    root.dataset.source = "device";
    const doc = await pdfjs.getDocument({ ...options, data: stored }).promise;
    new Viewer(root, doc, pdfjs).show(1);
    return;
  }
  root.dataset.source = "box";
  const tailAt = length > 2 * CHUNK ? Math.floor((length - 1) / CHUNK) * CHUNK : 0;
  let tail = tailAt ? fetchRange(url, tailAt, length).catch(() => null) : null;
  const [pdfjs, first] = await Promise.all([import(base + "pdf.min.mjs"), fetchRange(url, 0, CHUNK)]);
  if (first.total !== length) tail = null; // replaced since the page was made: ask PDF.js's way
  pdfjs.GlobalWorkerOptions.workerSrc = base + "pdf.worker.min.mjs";
  if (first.status === 200 || !(first.total > first.bytes.length)) {
    options.data = first.bytes; // a small file came whole (or a server ignored Range)
  } else {
    const aborter = new AbortController();
    const transport = new pdfjs.PDFDataRangeTransport(first.total, first.bytes, true);
    transport.requestDataRange = (begin, end) => {
      const early = begin === tailAt && end === length ? tail : null;
      if (early) tail = null;
      (early || Promise.resolve(null)).then((r) => (r && r.status === 206 && r.bytes.length === end - begin
        ? r : fetchRange(url, begin, end, aborter.signal))).then(
        (r) => transport.onDataRange(begin, r.bytes),
        (err) => { if (!aborter.signal.aborted) fail(err); });
    };
    transport.abort = () => aborter.abort();
    options.range = transport;
  }
  const doc = await pdfjs.getDocument(options).promise;
  new Viewer(root, doc, pdfjs).show(1);
}

class Viewer {
  constructor(root, doc, pdfjs) {
    this.root = root;
    this.doc = doc;
    this.pdfjs = pdfjs;
    this.page = 1;
    this.zoom = 1; // 1: the page's width is the screen's
    this.task = null;
    this.canvas = $("pdf-canvas");
    this.input = $("pdf-page");
    this.status = $("pdf-status");
    this.input.max = String(doc.numPages);
    $("pdf-count").textContent = root.dataset.ofPages.replace("{pages}", doc.numPages);
    $("pdf-prev").addEventListener("click", () => this.show(this.page - 1));
    $("pdf-next").addEventListener("click", () => this.show(this.page + 1));
    $("pdf-zoom-in").addEventListener("click", () => this.setZoom(this.zoom * 1.25));
    $("pdf-zoom-out").addEventListener("click", () => this.setZoom(this.zoom / 1.25));
    $("pdf-fit").addEventListener("click", () => this.setZoom(1));
    this.input.addEventListener("change", () => this.show(Number(this.input.value)));
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.show(Number(this.input.value));
      }
    });
    $("pdf-scroll").addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 }[e.key];
      if (step) {
        e.preventDefault();
        this.show(this.page + step);
      } else if (e.key === "Home" || e.key === "End") {
        e.preventDefault();
        this.show(e.key === "Home" ? 1 : this.doc.numPages);
      }
    });
    let width = root.clientWidth;
    window.addEventListener("resize", () => {
      if (root.clientWidth !== width) {
        width = root.clientWidth;
        this.show(this.page);
      }
    });
  }

  setZoom(zoom) {
    this.zoom = Math.min(4, Math.max(0.5, zoom));
    this.show(this.page);
  }

  async show(n) {
    if (!Number.isInteger(n)) n = this.page;
    n = Math.min(this.doc.numPages, Math.max(1, n));
    this.page = n;
    this.input.value = String(n);
    $("pdf-prev").disabled = n <= 1;
    $("pdf-next").disabled = n >= this.doc.numPages;
    if (this.task) this.task.cancel();
    this.status.textContent = this.status.dataset.loading;
    try {
      const page = await this.doc.getPage(n);
      if (n !== this.page) return; // another page was asked for meanwhile
      const width = Math.max(200, $("pdf-scroll").clientWidth - 2);
      const scale = (width / page.getViewport({ scale: 1 }).width) * this.zoom;
      const ratio = Math.min(window.devicePixelRatio || 1, 2);
      const viewport = page.getViewport({ scale: scale * ratio });
      // Drawn off screen, then copied in one step: the member never sees a half-drawn page.
      const off = document.createElement("canvas");
      off.width = Math.floor(viewport.width);
      off.height = Math.floor(viewport.height);
      this.task = page.render({ canvas: off, canvasContext: off.getContext("2d"), viewport });
      await this.task.promise;
      if (n !== this.page) return;
      this.canvas.width = off.width;
      this.canvas.height = off.height;
      this.canvas.style.width = `${Math.floor(off.width / ratio)}px`;
      this.canvas.style.height = `${Math.floor(off.height / ratio)}px`;
      this.canvas.getContext("2d").drawImage(off, 0, 0);
      const label = this.root.dataset.pageOf.replace("{page}", n).replace("{pages}", this.doc.numPages);
      this.canvas.setAttribute("aria-label", label);
      this.canvas.dataset.page = String(n); // the page drawn (tests wait for it)
      this.status.textContent = label;
    } catch (err) {
      if (err instanceof this.pdfjs.RenderingCancelledException) return;
      fail(err);
    }
  }
}
