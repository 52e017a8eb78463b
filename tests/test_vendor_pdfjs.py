"""PDF.js is served by the box (no CDN): the committed copy under static/vendor/pdfjs is exactly the locked npm
package's chosen files (image/vendor_pdfjs.py), with its licence and version."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENDORED = ROOT / "appliance/web/static/vendor/pdfjs"


def _script():
    spec = importlib.util.spec_from_file_location("vendor_pdfjs", ROOT / "image/vendor_pdfjs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_version_is_pinned_and_named_with_the_licence():
    vendor = _script()
    wanted = json.loads((ROOT / "package.json").read_text())["dependencies"]["pdfjs-dist"]
    assert wanted[0].isdigit(), "pin an exact version, no range"
    assert vendor.locked_version() == wanted
    assert (VENDORED / "VERSION").read_text() == f"pdfjs-dist {wanted} (legacy build)\n"
    assert "Apache License" in (VENDORED / "LICENSE").read_text()
    for lic in ("standard_fonts/LICENSE_FOXIT", "standard_fonts/LICENSE_LIBERATION", "wasm/LICENSE_JBIG2",
                "wasm/LICENSE_OPENJPEG"):
        assert (VENDORED / lic).stat().st_size > 0


def test_no_more_files_than_chosen():
    vendor = _script()
    committed = {p.relative_to(VENDORED).as_posix() for p in VENDORED.rglob("*") if p.is_file()}
    assert {"pdf.min.mjs", "pdf.worker.min.mjs", "LICENSE", "VERSION"} <= committed
    assert set(vendor.FILES) <= committed
    assert not {n for n in committed if n.endswith((".map", ".wasm")) or n.startswith(("cmaps/", "iccs/"))}


def test_committed_copy_equals_the_locked_package(tmp_path):
    source = ROOT / "node_modules/pdfjs-dist"
    if not source.is_dir():
        pytest.skip("node_modules/pdfjs-dist missing (npm ci): the copy cannot be compared")
    vendor = _script()
    names = vendor.vendor(source, tmp_path / "pdfjs", vendor.locked_version())
    committed = {p.relative_to(VENDORED).as_posix() for p in VENDORED.rglob("*") if p.is_file()}
    assert committed == set(names)
    for name in names:
        assert (VENDORED / name).read_bytes() == (tmp_path / "pdfjs" / name).read_bytes(), name
