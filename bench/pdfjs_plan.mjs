// The byte ranges Mozilla's PDF.js (the box's vendored copy) asks for to show page 1 of a PDF, in the order it
// asks, with the options of the box's viewer (static/documents/viewer.js). bench/hall.py replays them from 300
// phones. Node has no DOM: the few globals the main-thread module touches at load are stubbed; nothing is drawn
// (getOperatorList loads everything page 1 needs: its content, fonts and images, as rendering would).
//
//   node bench/pdfjs_plan.mjs FILE CHUNK PDFJS_DIR  ->  {"pages": n, "steps": [[round, begin, end), ...]}
// round: requests asked for before the answer to the previous round came are one round (sent at once).
import { readFileSync } from "node:fs";

Promise.withResolvers ??= function withResolvers() {  // Node 20 (Debian 12) lacks it; PDF.js uses it
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
};
globalThis.DOMMatrix ??= class DOMMatrix {};
globalThis.Path2D ??= class Path2D {};
globalThis.ImageData ??= class ImageData {};

const [path, chunkArg, dir] = process.argv.slice(2);
const chunk = Number(chunkArg);
const pdfjs = await import(dir + "/pdf.min.mjs");
pdfjs.GlobalWorkerOptions.workerSrc = dir + "/pdf.worker.min.mjs";
const data = new Uint8Array(readFileSync(path));
const steps = [];
let round = 0;
// As viewer.js: the first chunk is fetched before PDF.js starts and handed over as its initial data.
const transport = new pdfjs.PDFDataRangeTransport(data.length, data.subarray(0, chunk), true);
transport.requestDataRange = (begin, end) => {
  steps.push([round, begin, end]);
  setTimeout(() => { round = steps.length ? steps[steps.length - 1][0] + 1 : 0;
                     transport.onDataRange(begin, data.slice(begin, end)); }, 1);
};
const doc = await pdfjs.getDocument({
  range: transport, rangeChunkSize: chunk, disableAutoFetch: true, disableStream: false, isEvalSupported: false,
  useWasm: false, enableXfa: false, verbosity: 0 }).promise;
await (await doc.getPage(1)).getOperatorList();
console.log(JSON.stringify({ pages: doc.numPages, steps }));
