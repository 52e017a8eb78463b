"""The viewer's copy of a PDF (issue 16): the same document rewritten so that a reader on a shared radio sees page
one after a few dozen kilobytes instead of after the whole file.

`prepare_files(paths, out_dir) -> list[Outcome]`, one per file, in the order given:
- the original's page dictionaries lie together already (`together`: all within one span of at most
  max(64 KiB, 1 KiB per page), object streams counted at their stream's offset): `already`, no copy – the
  viewer reads the original;
- else `qpdf --object-streams=generate --deterministic-id in out` packs every small object, the page dictionaries
  among them, into object streams, and the copy must have the original's number of pages with its dictionaries
  together: `copy` is a new file in out_dir (the caller stores it as a blob of its own). `--deterministic-id`: the
  same original gives the same copy byte for byte, so a re-import finds its copy again (content-addressed) instead
  of storing a new one each time. qpdf's exit 3 (warnings: it repaired something, e.g. a wrong stream length or
  cross-reference offset) still gives a usable copy – as every reader repairs those silently, and so does
  pdfcheck; the warnings are logged;
- qpdf cannot read or write it (exit 2), it runs out of time or memory, or the copy fails the check: `problem`
  (German, with qpdf's own reason). The caller reports it to the clerk ("… ließ sich nicht für die schnelle
  Ansicht aufbereiten: …") and the viewer reads the original. Refusing a file stays pdfcheck's decision alone
  (a reader cannot open it): a file pypdf opens but qpdf cannot rewrite (e.g. the catalog's /Pages is a page,
  not a page tree) is still a file every reader shows, so it is kept, reported, and served as it came.

Why not linearized ("fast web view"), as issue 16 first asked: measured, it does not help the viewer the box
serves. PDF.js uses the linearization dictionary for page one only; before it shows anything it also reads the
LAST page to check the page count, and on the flat page tree every linearizer writes (qpdf flattens the tree) it
fetches each kid of /Pages in turn to find it. A linearized file keeps each page dictionary in its own page's
part (PDF 1.7 Annex F), so those are spread over the whole file: on a 300-page, 20 MB file they lie in 300
different 64 kB range chunks, and PDF.js read ~97 % of the file before page one (tests/test_viewer_browser.py;
`test_what_linearization_does_to_the_page_dictionaries` shows the spread). Packed into object streams, the same
dictionaries lie in one chunk and page one costs ~0.5–1 % of the file. Readers that use linearization's hint
tables (Acrobat) are not what members open on the box; a download is the original, as published.

The original is never touched: its bytes (and with them the SHA-256 stored for it and the sha512/sha1 checksums
OParl published) stay what downloads and the ZIP serve.

Tool: Debian's qpdf command, not the pikepdf wheel. pikepdf would bring its own qpdf build inside a binary wheel
(one more C++ library to pin per architecture, outside Debian's security updates) and, imported into the web
process, put a C++ parser of hostile input into the worker every member's page runs in. The command runs in a
child, like pdfcheck: `prepare_files` starts ONE child process per batch with this file as its script; the
child sets an address-space limit (inherited by every qpdf it starts) and gives each qpdf a time limit; the
parent keeps a wall clock over the whole child and kills its process group when it is over. The web worker only
waits (gevent's subprocess waits cooperatively). Encrypted files (openable without a password, else pdfcheck
refuses them) get a copy with a random /ID: qpdf cannot derive a deterministic one under encryption.

This file imports only the standard library, so the child runs it with `python -I` by path.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
QPDF = "qpdf"
FILE_SECONDS = 60.0  # one qpdf run (512 MB files exist: a double budget with scans)
START_SECONDS = 10.0
MEMORY = 1 << 30  # address space of the child and every qpdf it starts
SENTENCE = ("„{what}“ ließ sich nicht für die schnelle Ansicht aufbereiten: {why} – die Ansicht zeigt die Datei wie "
            "geliefert (lädt langsamer).")  # = the web's docs.clerk.unprepared
CHUNK = 65536  # PDF.js's range chunk in the box's viewer (static/documents/viewer.js)
ARGS = ("--object-streams=generate",)  # how the copy is written (see the module text)


@dataclass(frozen=True)
class Outcome:
    already: bool = False  # the original's page dictionaries lie together: no copy needed
    copy: Path | None = None  # the viewer's copy (in out_dir); None: the viewer reads the original
    problem: str | None = None  # German: why there is no copy (the clerk is told)

    def to_json(self) -> dict:
        return {"already": self.already, "copy": str(self.copy) if self.copy else None, "problem": self.problem}

    @classmethod
    def from_json(cls, d: dict) -> Outcome:
        copy = d.get("copy")
        return cls(bool(d.get("already")), Path(copy) if copy else None, d.get("problem") or None)


def sentence(what: str, problem: str) -> str:
    """What the clerk reads (import result, flash, command line)."""
    return SENTENCE.format(what=what, why=problem.rstrip("."))


def qpdf_reason(stderr: str, path: str) -> str:
    """qpdf's last error line without its program name and our temporary path (pure; recorded lines in tests)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    line = lines[-1] if lines else (stderr.strip().splitlines() or ["unbekannter Fehler"])[-1]
    for prefix in ("qpdf: ", f"{path}: ", f"{path} "):
        if line.startswith(prefix):
            line = line[len(prefix):]
    return f"qpdf meldet „{line.replace(path, 'Datei')[:200]}“"


# --- the child process --------------------------------------------------------------------------


def _run(argv: list[str], seconds: float) -> tuple[int | None, str, str]:
    """(exit code or None on timeout, stdout, stderr) of one qpdf run."""
    try:
        p = subprocess.run(argv, capture_output=True, timeout=seconds, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", ""
    except OSError as exc:
        return 127, "", f"qpdf: {exc.strerror or exc}"
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def page_places(show_pages: str, show_xref: str) -> list[int]:
    """Where each page dictionary lies (byte offset; inside an object stream: the stream's offset), from qpdf's
    `--show-pages` and `--show-xref` output (pure; tests feed recorded output)."""
    offsets: dict[int, int] = {}
    in_stream: dict[int, int] = {}
    for line in show_xref.splitlines():
        head, _, rest = line.partition(": ")
        num = head.split("/")[0]
        if not num.isdigit():
            continue
        if rest.startswith("uncompressed; offset = "):
            offsets[int(num)] = int(rest.rsplit("= ", 1)[1])
        elif rest.startswith("compressed; stream = "):
            in_stream[int(num)] = int(rest.split("stream = ", 1)[1].split(",")[0])
    places = []
    for line in show_pages.splitlines():
        if line.startswith("page ") and line.rstrip().endswith(" R"):
            num = int(line.split(": ", 1)[1].split()[0])
            at = offsets.get(in_stream.get(num, num))
            if at is not None:
                places.append(at)
    return places


def together(places: list[int]) -> bool:
    """Do the page dictionaries lie close enough that PDF.js reads them in a chunk or two? (see the module text)"""
    return bool(places) and max(places) - min(places) <= max(CHUNK, 1024 * len(places))


def pages_and_places(path: str, *, qpdf: str = QPDF, seconds: float = FILE_SECONDS
                     ) -> tuple[int, list[int]] | tuple[None, str]:
    """(number of pages, where their dictionaries lie) of a file, or (None, German reason) when qpdf cannot tell."""
    rc, pages, err = _run([qpdf, "--show-pages", path], seconds)
    if rc in (0, 3):
        rc, xref, err = _run([qpdf, "--show-xref", path], seconds)
    if rc is None:
        return None, f"nach {seconds:g} s abgebrochen (Zeitgrenze)".replace(".", ",")
    if rc == 127:
        return None, "qpdf fehlt auf der Box (apt install qpdf)"
    if rc not in (0, 3):
        return None, qpdf_reason(err, path)
    count = sum(1 for ln in pages.splitlines() if ln.startswith("page "))
    if not count:
        return None, "qpdf findet darin keine Seiten (Seitenbaum beschädigt)"
    return count, page_places(pages, xref)


def one(path: str, out: str, *, qpdf: str = QPDF, seconds: float = FILE_SECONDS) -> Outcome:
    """In this process (the child, tests): the viewer's copy of one file into `out`."""
    count, places = pages_and_places(path, qpdf=qpdf, seconds=seconds)
    if count is None:
        return Outcome(problem=str(places))
    if len(places) == count and together(places):
        return Outcome(already=True)
    rc, _out, err = _run([qpdf, *ARGS, "--deterministic-id", path, out], seconds)
    if rc == 2 and "deterministic" in err:  # encrypted: qpdf cannot derive the /ID; a random one then
        rc, _out, err = _run([qpdf, *ARGS, path, out], seconds)
    if rc is None:
        problem = f"nach {seconds:g} s abgebrochen (Zeitgrenze)".replace(".", ",")
    elif rc == 127:
        problem = "qpdf fehlt auf der Box (apt install qpdf)"
    elif rc not in (0, 3):
        problem = ("Speichergrenze erreicht" if "bad_alloc" in err or "memory" in err.lower()
                   else qpdf_reason(err, path))
    elif not _good_copy(count, *pages_and_places(out, qpdf=qpdf, seconds=seconds)):
        problem = "die aufbereitete Fassung besteht die Prüfung nicht"
    else:
        if rc == 3:
            print(f"{path}: qpdf warnings: {err[-300:]}", file=sys.stderr)
        return Outcome(copy=Path(out))
    Path(out).unlink(missing_ok=True)
    return Outcome(problem=problem)


def _good_copy(count: int, copy_count: int | None, places: list[int] | str) -> bool:
    """The copy has every page of the original, and its page dictionaries lie together."""
    return copy_count == count and isinstance(places, list) and len(places) == count and together(places)


def _child(argv: list[str]) -> int:
    import resource

    seconds, memory, qpdf, out_dir, paths = FILE_SECONDS, MEMORY, QPDF, ".", []
    for a in argv:
        if a.startswith("--seconds="):
            seconds = float(a.split("=", 1)[1])
        elif a.startswith("--memory="):
            memory = int(a.split("=", 1)[1])
        elif a.startswith("--qpdf="):
            qpdf = a.split("=", 1)[1]
        elif a.startswith("--out="):
            out_dir = a.split("=", 1)[1]
        else:
            paths.append(a)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    for p in paths:
        fd, out = tempfile.mkstemp(dir=out_dir, prefix="view-", suffix=".pdf")
        os.close(fd)
        try:
            result = one(p, out, qpdf=qpdf, seconds=seconds)
        except Exception as exc:  # noqa: BLE001 - one odd file must not cost the batch its other results
            Path(out).unlink(missing_ok=True)
            result = Outcome(problem=f"unerwarteter Fehler ({type(exc).__name__})")
        if result.copy is None:
            Path(out).unlink(missing_ok=True)
        print(json.dumps(result.to_json()), flush=True)
    return 0


# --- the parent ---------------------------------------------------------------------------------


def prepare_files(paths: Sequence[Path], out_dir: Path, *, qpdf: str = QPDF, file_seconds: float = FILE_SECONDS,
                    memory: int = MEMORY) -> list[Outcome]:
    """The viewer's copies of a batch, in one child process (see the module text). The caller owns the copies in out_dir
    (stores them as blobs, or deletes them). A file the child did not finish has a `problem`."""
    if not paths:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-I", str(Path(__file__).resolve()), f"--seconds={file_seconds}", f"--memory={memory}",
            f"--qpdf={qpdf}", f"--out={out_dir}", *(str(p) for p in paths)]
    timeout = START_SECONDS + 3 * file_seconds * len(paths)  # check, viewcopy, check the copy
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True,  # its qpdf runs die with it
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"})
    try:
        out, err = proc.communicate(timeout=timeout)
        if err:
            log.warning("viewcopy: %s", err[-500:].decode("utf-8", "replace"))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _err = proc.communicate()
        log.warning("viewcopy: child stopped after %.0f s", timeout)
    results: list[Outcome] = []
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            results.append(Outcome.from_json(json.loads(line)))
        except (ValueError, AttributeError):
            break
    results = results[:len(paths)]
    late = Outcome(problem="die Aufbereitung wurde nicht fertig (Zeit- oder Speichergrenze)")
    return results + [late] * (len(paths) - len(results))


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
