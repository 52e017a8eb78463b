"""Is this PDF readable, and does it carry active content? Checked where documents enter the box (issue 11).

`check(path_or_bytes) -> PdfCheck`:
- refused (`ok=False`, a German `problem` naming what is wrong): a file a PDF reader cannot open: cut off (no
  `%%EOF` near the end: a truncated upload or copy), a cross-reference table or page tree that cannot be read,
  encrypted with a password we do not have, no pages at all;
- flagged (`ok=True`, `active_content` names): JavaScript (`/JS`, `/S /JavaScript` in an OpenAction, an `/AA`
  trigger, a link, a form field or the document's `/Names /JavaScript` tree), `/Launch` (start a program),
  `/SubmitForm` and `/ImportData` (send or load data), embedded files (`/EmbeddedFiles`, `/EF`, file-attachment
  annotations, `/GoToE`) and `/RichMedia` (Flash, video players). The file is kept and marked for the clerk.

Library: pypdf, not hand parsing and not pikepdf. pypdf is pure Python and maintained: a hostile file meets
memory-safe code (no C++ parser in the box's web process), one `py3-none-any` wheel installs on the Pi's
aarch64/cp311 and everywhere else, and its non-strict mode opens what real readers open (it rebuilds a broken
cross-reference table by scanning, decodes `#xx` escapes in names, so `/J#61vaScript` is `/JavaScript`).
pikepdf (qpdf) is faster and stricter but a binary wheel of a C++ library – more to trust with hostile input,
more to build for the image. What pypdf cannot do without an extra library: open AES-encrypted files (even
with an empty user password); those are kept and flagged `unchecked`, not refused.

The scan does not follow the document's structure (which a hostile file can bend), it reads every object
the cross-reference table lists (also those in object streams) and looks at every dictionary in it; content and
image streams are never decoded. Parsing every object is slow in pure Python, so a pre-filter runs first: only
if one of the names (also `#xx`-escaped: decoded, then compared) occurs in the raw bytes or in an object stream
pypdf decoded does the full scan run. Bounded: at most MAX_OBJECTS objects (beyond: flagged `unchecked`).

Where it runs: `check_files(paths)` starts ONE child process for a batch of files (an upload, a ZIP, a folder)
with this file as its script: a per-file time limit (SIGALRM in the child), an address-space limit and a wall
clock limit in the parent. The web process runs on one gevent worker: a CPU-bound parse inside it would stall
every member's page and push stream; a child cannot (gevent's patched subprocess waits cooperatively), and the
web process never imports pypdf. So the check is synchronous for the clerk who uploads (the answer says at once
what was refused or flagged) and costs the other readers nothing. Measured (tests/test_pdfcheck.py) on a
generated 20 MB, 500-page PDF with 5,000 link annotations: ~0.1 s for the check, ~0.25 s with the child's start
(x86 server core); a Raspberry Pi 4 is ~4–5× slower: ~1–1.2 s per upload batch, independent of how many members
are connected. Without the pre-filter, parsing every object of a 22 MB file with 15,000 annotations took 2.3 s
here (~10 s on a Pi).

This file imports only the standard library and pypdf, so the child runs it with `python -I` by path.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
BROKEN = "Die PDF-Datei ist beschädigt oder unvollständig und lässt sich nicht öffnen."
MAX_OBJECTS = 300_000
TAIL = 1024  # Acrobat looks for %%EOF within the last 1024 bytes (PDF Reference 1.7, appendix H); so do we
FILE_SECONDS = 20.0  # one file in the child
START_SECONDS = 10.0  # the child's start on a busy Pi
MEMORY = 1 << 30  # address space of the child

# The names stored in doc_files.pdf_active and shown to the clerk (web: docs.pdf.kind.<name>).
JAVASCRIPT, LAUNCH, SUBMITFORM, IMPORTDATA, EMBEDDED, RICHMEDIA = (
    "javascript", "launch", "submitform", "importdata", "embedded", "richmedia")
UNCHECKED = "unchecked"  # the check did not finish (time, memory, unsupported encryption): not known to be clean
KINDS = (JAVASCRIPT, LAUNCH, SUBMITFORM, IMPORTDATA, EMBEDDED, RICHMEDIA, UNCHECKED)
LABELS = {JAVASCRIPT: "JavaScript", LAUNCH: "Programmstart (Launch)", SUBMITFORM: "Formularversand (SubmitForm)",
          IMPORTDATA: "Datenimport (ImportData)", EMBEDDED: "eingebettete Dateien", RICHMEDIA: "Multimedia (RichMedia)",
          UNCHECKED: "nicht vollständig prüfbar"}  # German, for the command line; the web has docs.pdf.kind.*
_ACTIONS = {"/JavaScript": JAVASCRIPT, "/Launch": LAUNCH, "/SubmitForm": SUBMITFORM, "/ImportData": IMPORTDATA,
            "/GoToE": EMBEDDED, "/RichMediaExecute": RICHMEDIA}
_NAMES = (b"JS", b"JavaScript", b"Launch", b"SubmitForm", b"ImportData", b"EmbeddedFile", b"EmbeddedFiles", b"EF",
          b"GoToE", b"FileAttachment", b"RichMedia", b"RichMediaExecute", b"RichMediaContent", b"RichMediaSettings")
_TOKEN = rb"[^\s/\[\]<>(){}%]"  # a character of a name (PDF 1.7, 7.3.5): anything but white space and delimiters
_CANDIDATE = re.compile(rb"/(?:" + b"|".join(_NAMES) + rb")(?!" + _TOKEN + rb")")
_ESCAPED = re.compile(rb"/" + _TOKEN + rb"*#[0-9A-Fa-f]{2}" + _TOKEN + rb"*")
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_SUBTYPES = {"/RichMedia": RICHMEDIA, "/FileAttachment": EMBEDDED}


@dataclass(frozen=True)
class PdfCheck:
    ok: bool
    problem: str | None = None
    active_content: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"ok": self.ok, "problem": self.problem, "active": list(self.active_content)}

    @classmethod
    def from_json(cls, d: dict) -> PdfCheck:
        active = tuple(a for a in d.get("active", ()) if a in KINDS)
        return cls(bool(d.get("ok")), d.get("problem") or None, active)


def refused(detail: str) -> PdfCheck:
    return PdfCheck(False, f"{BROKEN[:-1]} ({detail}).")


def _has_eof(fh) -> bool:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - TAIL))
    return b"%%EOF" in fh.read(TAIL)


def _name(d, key: str) -> str | None:
    """A name value, also behind a reference (`/S 7 0 R`: a reader follows it, so do we)."""
    v = dict.get(d, key)
    if v is not None and hasattr(v, "get_object"):
        v = v.get_object()
    return v if isinstance(v, str) else None


def _scan_dict(d, found: set[str]) -> None:
    if "/JS" in d:
        found.add(JAVASCRIPT)
    s = _name(d, "/S")
    if s in _ACTIONS:
        found.add(_ACTIONS[s])
    sub = _name(d, "/Subtype")
    if sub in _SUBTYPES:
        found.add(_SUBTYPES[sub])
    if "/EmbeddedFiles" in d or "/EF" in d or _name(d, "/Type") == "/EmbeddedFile":
        found.add(EMBEDDED)
    if "/RichMediaContent" in d or "/RichMediaSettings" in d:
        found.add(RICHMEDIA)


def _scan(obj, found: set[str]) -> None:
    """Every dictionary inside one object (direct children only: references are objects of their own)."""
    from pypdf.generic import ArrayObject, DictionaryObject

    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, DictionaryObject):
            _scan_dict(o, found)
            stack.extend(v for v in o.values() if isinstance(v, DictionaryObject | ArrayObject))
        elif isinstance(o, ArrayObject):
            stack.extend(v for v in o if isinstance(v, DictionaryObject | ArrayObject))


def _suspect(data: bytes) -> bool:
    """One of the names, plainly or #xx-escaped (decoded and compared, so random bytes in an image stream that
    look like an escaped name do not count)."""
    if _CANDIDATE.search(data):
        return True
    return any(_HEX.sub(lambda h: bytes([int(h.group(1), 16)]), m.group())[1:] in _NAMES
               for m in _ESCAPED.finditer(data))


def _candidates(fh, reader) -> bool:
    """Could any object hold active content? The names in the raw bytes and in the object streams (decoded by
    pypdf); #xx escapes are decoded, so `/J#61vaScript` cannot hide. Only a pre-filter: parsing every
    object costs ~0.15 ms each here (16,000 objects: 2.3 s), this costs a regex over the bytes."""
    fh.seek(0)
    tail = b""
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        if _suspect(tail + chunk):
            return True
        tail = chunk[-64:]
    for stm in sorted({stm for stm, _idx in reader.xref_objStm.values()}):
        try:
            data = reader.get_object(stm).get_data()
        except Exception:  # noqa: BLE001 - whatever pypdf raises: the full scan decides
            return True
        if _suspect(data):
            return True
    return False


def _object_ids(reader) -> Iterable[tuple[int, int]]:
    for gen, table in reader.xref.items():
        for num in table:
            yield num, gen
    for num in reader.xref_objStm:
        yield num, 0


def check(source: Path | str | bytes, *, max_objects: int = MAX_OBJECTS) -> PdfCheck:
    """In this process: for the child, tests and the command line. Never raises on a bad file."""
    import io

    fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115 - closed below
    try:
        return _check(fh, max_objects)
    finally:
        fh.close()


@functools.cache
def _broken() -> tuple[type[BaseException], ...]:
    """What pypdf raises on a malformed file: its own PyPdfError, and the low-level failures it does not wrap."""
    import struct
    import zlib

    from pypdf.errors import PyPdfError

    return (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, AssertionError,
            struct.error, zlib.error, UnicodeError, OverflowError)


def _check(fh, max_objects: int) -> PdfCheck:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError
    from pypdf.generic import IndirectObject

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair warnings are for us, not the log
    if not fh.read(1024).lstrip(b"\0\t\n\r ").startswith(b"%PDF-"):
        return refused("kein PDF-Kopf")
    if not _has_eof(fh):
        return refused("das Dateiende „%%EOF“ fehlt – die Datei ist abgeschnitten")
    fh.seek(0)
    try:
        reader = PdfReader(fh, strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    return PdfCheck(False, "Die PDF-Datei ist mit einem Passwort geschützt und lässt sich ohne "
                                           "Passwort nicht öffnen. Bitte ohne Passwortschutz speichern.")
            except DependencyError:
                return PdfCheck(True, None, (UNCHECKED,))  # AES: needs a crypto library pypdf does not bring
        pages = len(reader.pages)
    except FileNotDecryptedError:
        return PdfCheck(False, "Die PDF-Datei ist verschlüsselt und lässt sich nicht öffnen.")
    except NotImplementedError:  # a security handler other than the standard one (certificates): no reader of ours
        return PdfCheck(False, "Die PDF-Datei ist mit einem Verfahren verschlüsselt, das sich hier nicht öffnen "
                               "lässt (z. B. mit Zertifikat). Bitte ohne Verschlüsselung speichern.")
    except (DependencyError, LimitReachedError):
        return PdfCheck(True, None, (UNCHECKED,))  # pypdf's own limits: not known to be broken, nor clean
    except _broken() as exc:
        return refused(f"Querverweistabelle oder Seitenbaum nicht lesbar: {str(exc)[:120] or type(exc).__name__}")
    if pages == 0:
        return PdfCheck(False, "Die PDF-Datei enthält keine Seiten.")
    if not _candidates(fh, reader):
        return PdfCheck(True)
    found: set[str] = set()
    for n, (num, gen) in enumerate(_object_ids(reader)):
        if n >= max_objects:
            found.add(UNCHECKED)
            break
        try:
            obj = reader.get_object(IndirectObject(num, gen, reader))
        except (DependencyError, LimitReachedError, NotImplementedError):
            found.add(UNCHECKED)
            continue
        except _broken():
            continue  # a broken object: readers skip it too
        _scan(obj, found)
    return PdfCheck(True, None, tuple(k for k in KINDS if k in found))


# --- the child process --------------------------------------------------------------------------


def check_files(paths: Sequence[Path], *, file_seconds: float = FILE_SECONDS,
                memory: int = MEMORY) -> list[PdfCheck]:
    """Check a batch in one child process (see the module text). A file the child did not finish (time,
    memory, crash) is `unchecked`: kept and flagged, never silently passed."""
    if not paths:
        return []
    argv = [sys.executable, "-I", str(Path(__file__).resolve()), f"--seconds={file_seconds}",
            f"--memory={memory}", *(str(p) for p in paths)]
    timeout = START_SECONDS + file_seconds * len(paths)
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"})
        out = proc.stdout
        if proc.returncode != 0:
            log.warning("PDF check: child exited %s: %s", proc.returncode,
                        proc.stderr[-500:].decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as exc:
        out = exc.output or b""
        log.warning("PDF check: child stopped after %.0f s", timeout)
    results: list[PdfCheck] = []
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            results.append(PdfCheck.from_json(json.loads(line)))
        except (ValueError, AttributeError):
            break
    results = results[:len(paths)]
    return results + [PdfCheck(True, None, (UNCHECKED,))] * (len(paths) - len(results))


def _child(argv: list[str]) -> int:
    import resource
    import signal

    seconds, memory, paths = FILE_SECONDS, MEMORY, []
    for a in argv:
        if a.startswith("--seconds="):
            seconds = float(a.split("=", 1)[1])
        elif a.startswith("--memory="):
            memory = int(a.split("=", 1)[1])
        else:
            paths.append(a)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    class _Late(BaseException):  # not an Exception: pypdf's own `except Exception` repairs must not swallow it
        pass

    def _alarm(_sig, _frame):
        raise _Late

    signal.signal(signal.SIGALRM, _alarm)
    for p in paths:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            result = check(Path(p))
        except (_Late, MemoryError):
            result = PdfCheck(True, None, (UNCHECKED,))
        except OSError:
            result = refused("nicht lesbar")
        except Exception as exc:  # noqa: BLE001 - one odd file must not cost the batch its other results
            print(f"{p}: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
            result = PdfCheck(True, None, (UNCHECKED,))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
