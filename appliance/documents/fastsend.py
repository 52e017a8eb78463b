"""Zero-copy file sending under gunicorn's gevent worker.

gunicorn hands a file response to `sock.sendfile()`; gevent's socket implements that as a Python loop of
8 KB read()+send() (it gives up on os.sendfile for non-blocking sockets), which costs a 20 MB PDF 2,560
syscall pairs and a copy through user space per reader. This puts os.sendfile back, waiting for the socket
the gevent way when the kernel's buffer is full: the same thing gunicorn's gevent worker itself once did
(`patch_sendfile`). Measured in bench/downloads. Installed only when the socket module is gevent's.
"""

from __future__ import annotations

import os
import socket

_installed = False


def _gevent_sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
    from gevent.socket import wait_write

    try:
        fileno = file.fileno()
    except (AttributeError, OSError):
        return self._sendfile_use_send(file, offset, count)
    sockno = self.fileno()
    timeout = self.gettimeout()
    total = 0
    try:
        while count is None or total < count:
            want = (count - total) if count is not None else 1 << 30
            try:
                sent = os.sendfile(sockno, fileno, offset + total, min(want, 1 << 30))
            except BlockingIOError:
                wait_write(sockno, timeout=timeout)
                continue
            if sent == 0:
                break
            total += sent
    finally:
        note = getattr(file, "note_sent", None)  # the download's byte count (documents.traffic), also when cut off
        if note is not None:
            note(total)
    return total


def install() -> bool:
    """Patch gevent's socket class if this process runs on gevent's monkey-patched sockets."""
    global _installed
    if _installed:
        return True
    try:
        from gevent import socket as gsocket
    except ImportError:
        return False
    if socket.socket is not gsocket.socket or not hasattr(os, "sendfile"):
        return False
    gsocket.socket.sendfile = _gevent_sendfile
    _installed = True
    return True
