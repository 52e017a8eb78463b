"""Talk to nftables through Debian's libnftables (the library the `nft` tool is built on), in-process.

Spawning `nft` costs ~10 ms of CPU per admission; when 200 phones arrive at once that queue is what the
last phone waits for. The library call takes microseconds. `nft` stays the fallback where the library
is missing. Only the helper uses this, with commands built from already validated values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading


class NftError(RuntimeError):
    pass


class LibNft:
    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(name, use_errno=True)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_int
        for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise NftError("nft_ctx_new fehlgeschlagen")
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()  # a context is not thread-safe

    def run(self, command: str) -> str:
        with self._lock:
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, command.encode())
            out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
            err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        if rc != 0:
            first = next((line for line in err.splitlines() if line.strip()), f"Rückgabewert {rc}")
            raise NftError(first)
        return out

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None


def load() -> LibNft | None:
    try:
        return LibNft()
    except (OSError, AttributeError, NftError):
        return None
