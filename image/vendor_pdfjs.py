"""Copy Mozilla's PDF.js from node_modules into the package: the viewer's files, served by the box itself.

The copy is committed (appliance/web/static/vendor/pdfjs/), so building the image and `pip install` need no npm;
`npm ci` then `python image/vendor_pdfjs.py` renews it after the version in package.json / package-lock.json
changed, and tests/test_vendor_pdfjs.py checks that the committed files are exactly the locked package's.

Which files, and why:
- the *legacy* build (legacy/build/pdf.min.mjs, pdf.worker.min.mjs): the modern build calls the newest built-ins
  natively (Map.prototype.getOrInsertComputed, iterator helpers), which only this year's browsers have;
  captive-portal mini-browsers are the system WebView of phones members keep for years (an iPhone that stops at
  an older iOS keeps its WebKit). The legacy build polyfills those (core-js) and still needs Promise.withResolvers,
  module workers and private class fields: Android WebView/Chrome 119+, iOS/Safari 17.4+, Firefox 121+. Older
  ones get the viewer's notice and the download link (tests/test_viewer_browser.py). It costs ~120 kB more.
- LICENSE (Apache-2.0) and a VERSION file naming the package and version.
- standard_fonts/ (with LICENSE_FOXIT, LICENSE_LIBERATION): the 14 standard PDF fonts for files that do not embed
  them (common in council software's output; Symbol and ZapfDingbats checkboxes have no system substitute on
  phones). Fetched by the viewer only when a file needs them.
- wasm/*_nowasm_fallback.js (+ their licences): JBIG2/CCITT (scans) and JPEG 2000 decoders as plain JS. PDF.js
  decodes these through WebAssembly or, without it, these files; the box's CSP has no 'wasm-unsafe-eval', so
  the viewer runs with useWasm: false and needs them for scanned documents.
- not copied: cmaps/ (only for non-embedded CJK fonts), iccs/ and qcms (ICC colour: PDF.js falls back to the
  alternate colour space), quickjs (PDF scripting, never enabled), the modern build, source maps, types, web/.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pdfjs-dist"
TARGET = ROOT / "appliance/web/static/vendor/pdfjs"

# target name -> path inside the npm package
FILES = {
    "pdf.min.mjs": "legacy/build/pdf.min.mjs",
    "pdf.worker.min.mjs": "legacy/build/pdf.worker.min.mjs",
    "LICENSE": "LICENSE",
    "wasm/jbig2_nowasm_fallback.js": "wasm/jbig2_nowasm_fallback.js",
    "wasm/openjpeg_nowasm_fallback.js": "wasm/openjpeg_nowasm_fallback.js",
    "wasm/LICENSE_JBIG2": "wasm/LICENSE_JBIG2",
    "wasm/LICENSE_PDFJS_JBIG2": "wasm/LICENSE_PDFJS_JBIG2",
    "wasm/LICENSE_OPENJPEG": "wasm/LICENSE_OPENJPEG",
    "wasm/LICENSE_PDFJS_OPENJPEG": "wasm/LICENSE_PDFJS_OPENJPEG",
}
FONT_DIR = "standard_fonts"


def locked_version(root: Path = ROOT) -> str:
    """The version package-lock.json pins (the one `npm ci` installs)."""
    lock = json.loads((root / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{PACKAGE}"]["version"]


def files(source: Path) -> dict[str, Path]:
    """Target name -> source file inside an installed package directory."""
    out = {name: source / rel for name, rel in FILES.items()}
    for font in sorted((source / FONT_DIR).iterdir()):
        out[f"{FONT_DIR}/{font.name}"] = font
    return out


def vendor(source: Path, target: Path, version: str) -> list[str]:
    """Replace target with the chosen files of the installed package at source; returns the names written."""
    installed = json.loads((source / "package.json").read_text())["version"]
    if installed != version:
        raise SystemExit(f"{source} has {PACKAGE} {installed}, package-lock.json pins {version}: run npm ci")
    if target.exists():
        shutil.rmtree(target)
    names = []
    for name, src in files(source).items():
        dst = target / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        names.append(name)
    (target / "VERSION").write_text(f"{PACKAGE} {version} (legacy build)\n")
    return [*names, "VERSION"]


def main() -> None:
    source = ROOT / "node_modules" / PACKAGE
    if not source.is_dir():
        raise SystemExit(f"{source} missing: run npm ci first")
    names = vendor(source, TARGET, locked_version())
    print(f"{len(names)} files -> {TARGET.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
