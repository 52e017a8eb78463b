"""A minimal blocking server-sent-events client (stdlib only) for tests, the venue and bench/.

Browsers use EventSource; this mirrors what it does: keep the last id, send Last-Event-ID on reconnect.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class SSE:
    id: int | None
    data: str
    comment: bool = False

    def json(self) -> dict:
        return json.loads(self.data)


def parse_block(block: str) -> SSE | None:
    """One event block (lines up to a blank line). Pure; follows the WHATWG parsing rules we use."""
    ev_id: int | None = None
    data: list[str] = []
    comment = False
    for line in block.split("\n"):
        if not line:
            continue
        if line.startswith(":"):
            comment = True
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id" and value.isdigit():
            ev_id = int(value)
        elif name == "data":
            data.append(value)
    if data:
        return SSE(ev_id, "\n".join(data))
    return SSE(None, "", True) if comment else None


class SSEClient:
    """Connect, read events one by one. `last_id` is updated as events arrive (for resume)."""

    def __init__(self, host: str, port: int, path: str = "/events", last_id: int | None = None,
                 timeout: float = 10.0, use_header: bool = True) -> None:
        self.host, self.port, self.path, self.timeout = host, port, path, timeout
        self.last_id = last_id
        self.use_header = use_header
        self.sock: socket.socket | None = None
        self.buf = b""
        self.status = 0

    def connect(self) -> SSEClient:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        headers = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}", "Accept: text/event-stream",
                   "Cache-Control: no-cache"]
        if self.last_id is not None and self.use_header:
            headers.append(f"Last-Event-ID: {self.last_id}")
        self.sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.raw = b""
        return self

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            assert self.sock is not None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Verbindung geschlossen")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _body_until(self, marker: bytes) -> bytes:
        """Body bytes up to marker, undoing chunked transfer encoding on the way."""
        while marker not in self.raw:
            if self.chunked:
                size_line = self._read_until(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    raise ConnectionError("Strom beendet")
                while len(self.buf) < size + 2:
                    assert self.sock is not None
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("Verbindung geschlossen")
                    self.buf += chunk
                self.raw += self.buf[:size]
                self.buf = self.buf[size + 2:]
            else:
                if self.buf:
                    self.raw += self.buf
                    self.buf = b""
                    continue
                assert self.sock is not None
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("Verbindung geschlossen")
                self.raw += chunk
        block, _, self.raw = self.raw.partition(marker)
        return block

    def next(self, comments: bool = False) -> SSE:
        """The next event (comments such as heartbeats skipped unless asked for)."""
        while True:
            ev = parse_block(self._body_until(b"\n\n").decode())
            if ev is None:
                continue
            if ev.comment and not comments:
                continue
            if ev.id is not None:
                self.last_id = ev.id
            return ev

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
