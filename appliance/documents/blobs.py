"""Content-addressed file storage: <root>/<sha256[:2]>/<sha256>. Written atomically (temporary file, fsync,
rename), so a crash leaves either the whole file or nothing; the same bytes are stored once."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.documents import DocumentError

CHUNK = 1 << 20
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(DocumentError):
    pass


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    new: bool  # False: the same bytes were already there (dedupe)
    path: Path | None = None  # where the bytes now are (read by the document checks before a row is written)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not SHA_RE.match(sha256):
            raise ValueError("kein SHA-256")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_chunks(self, chunks: Iterable[bytes], max_size: int | None = None, *,
                   expect: dict[str, str] | None = None) -> Stored:
        """Store a stream. max_size: refuse (TooLarge) as soon as more arrives. expect: {'sha512'|'sha1':
        hex} checksums the bytes must have (OParl); on mismatch nothing is stored."""
        tmpdir = self.root / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        fd, tmpname = tempfile.mkstemp(dir=tmpdir, prefix="up-")
        tmp = Path(tmpname)
        digest = hashlib.sha256()
        extra = {name: hashlib.new(name) for name in (expect or {})}
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise TooLarge(f"Die Datei ist größer als {max_size // (1024 * 1024)} MB.")
                    digest.update(chunk)
                    for h in extra.values():
                        h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            for name, h in extra.items():
                if h.hexdigest().lower() != (expect or {})[name].strip().lower():
                    raise DocumentError(f"Prüfsumme ({name}) stimmt nicht: die Datei ist beschädigt oder verändert.")
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.exists():
                tmp.unlink()
                return Stored(sha, size, new=False, path=final)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o640)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return Stored(sha, size, new=True, path=final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_file(self, fh: BinaryIO, max_size: int | None = None, **kw) -> Stored:
        return self.put_chunks(iter(lambda: fh.read(CHUNK), b""), max_size, **kw)

    def put_bytes(self, data: bytes, max_size: int | None = None) -> Stored:
        return self.put_chunks([data], max_size)

    def adopt(self, path: Path) -> Stored:
        """A finished file under <root>/tmp (the viewer's copy): hashed, synced and renamed into its
        place – no second write. The same bytes already there: the file goes, the stored one stays."""
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
            os.fsync(fh.fileno())
            size = fh.tell()
        sha = h.hexdigest()
        final = self.path(sha)
        if final.exists():
            Path(path).unlink(missing_ok=True)
            return Stored(sha, size, new=False, path=final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o640)
        os.replace(path, final)
        _fsync_dir(final.parent)
        return Stored(sha, size, new=True, path=final)

    def remove(self, sha256: str) -> int:
        p = self.path(sha256)
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            return 0
        return size

    def all(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    if SHA_RE.match(f.name):
                        yield f.name

    def verify(self, sha256: str) -> bool:
        h = hashlib.sha256()
        with open(self.path(sha256), "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
        return h.hexdigest() == sha256

    def gc(self, referenced: set[str], min_age: float = 3600) -> int:
        """Delete blobs nobody references and stale temporary files; returns bytes freed. Younger ones may
        belong to an upload whose row is not written yet."""
        cutoff = time.time() - min_age
        freed = sum(self.remove(sha) for sha in list(self.all())
                    if sha not in referenced and self.path(sha).stat().st_mtime < cutoff)
        tmpdir = self.root / "tmp"
        if tmpdir.is_dir():
            for f in tmpdir.iterdir():
                st = f.stat()
                if st.st_mtime < cutoff:
                    freed += st.st_size
                    f.unlink(missing_ok=True)
        return freed
