"""A smaller copy of a big PDF for the hall (issue 16): Debian's Ghostscript (`gs`, package ghostscript)
rewrites it with `-dPDFSETTINGS=/ebook` (images down to 150 dpi, fonts subset). A thin adapter: one
subprocess with an argv list, a timeout, no shell; the caller decides whether the result is worth keeping."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from appliance.documents import DocumentError


def ghostscript(src: Path, dst: Path, *, timeout: float) -> int:
    """Write the optimised copy of `src` to `dst`; returns its size. DocumentError (German) when gs is missing,
    fails or takes too long (then `dst` is gone)."""
    gs = shutil.which("gs")
    if gs is None:
        raise DocumentError("Ghostscript fehlt (Paket ghostscript): keine optimierte Kopie möglich.")
    argv = [gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-dPDFSETTINGS=/ebook",
            "-dCompatibilityLevel=1.5", "-dDetectDuplicateImages=true", f"-sOutputFile={dst}", str(src)]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        dst.unlink(missing_ok=True)
        raise DocumentError(f"Ghostscript brauchte länger als {int(timeout)} s: keine optimierte Kopie.") from None
    if done.returncode != 0 or not dst.is_file() or dst.stat().st_size == 0:
        dst.unlink(missing_ok=True)
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"Code {done.returncode}"]
        raise DocumentError(f"Ghostscript konnte die Datei nicht umschreiben: {why[0][:200]}")
    return dst.stat().st_size
