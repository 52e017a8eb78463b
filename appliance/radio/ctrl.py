"""HostapdCtrl: the one narrow interface to a radio (hostapd's control socket).

Protocol (hostapd/ctrl_iface.c, src/common/wpa_ctrl.c): a Unix *datagram* socket at
`<ctrl_interface>/<iface>`. The client binds a socket of its own (wpa_ctrl uses /tmp/wpa_ctrl_<pid>-<n>),
connects to hostapd's path and sends one command per datagram; every reply is one datagram.

Real quirks this class handles (all seen in recordings/wired-8021x.txt):
- After `ATTACH`, events arrive on the same socket as replies. hostapd emits the events a command
  causes *before* the reply: `RELOAD_WPA_PSK` answered `<3>AP-STA-DISCONNECTED ...` first, then `OK`.
  A naive client takes the event as the answer and is off by one for ever after. We set every `<N>`
  message aside as an event while waiting for a reply.
- `STA-FIRST` / `STA-NEXT` answer an empty datagram when there is no (further) station.
- Replies can exceed 4 KiB (an 802.1X STA block is ~2 KiB, nl80211 ones grow with capabilities).

One instance belongs to one thread.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import select
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from appliance.radio.events import Event, Station, is_event, normalize_mac, parse_event, parse_sta

log = logging.getLogger(__name__)

RECV_SIZE = 65536
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes including the NUL
_counter = itertools.count(1)

Tap = Callable[[str, str], None]  # (direction SEND/REPLY/EVENT, text) - used by the recorder


class RadioError(Exception):
    """The radio (hostapd) cannot be reached or refused a command."""


class HostapdCtrl:
    def __init__(self, path: Path | str, local_dir: Path | str | None = None, timeout: float = 2.0,
                 tap: Tap | None = None) -> None:
        self.path = Path(path)
        self.local_dir = Path(local_dir) if local_dir else None
        self.timeout = timeout
        self.tap = tap
        self._sock: socket.socket | None = None
        self._local: Path | None = None
        self._events: collections.deque[Event] = collections.deque()
        self.attached = False

    # --- lifecycle -------------------------------------------------------------------------------
    def _local_path(self) -> Path:
        name = f"sbx_ctrl_{os.getpid()}-{next(_counter)}"
        if self.local_dir is not None:
            candidate = self.local_dir / name
            if len(os.fsencode(candidate)) <= _SUN_PATH_MAX:
                self.local_dir.mkdir(parents=True, exist_ok=True)
                return candidate
        return Path(tempfile.gettempdir()) / name

    def open(self) -> HostapdCtrl:
        if self._sock is not None:
            return self
        if not self.path.exists():
            raise RadioError(f"Funkmodul nicht erreichbar: Steuer-Socket {self.path} fehlt (läuft hostapd?)")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        local = self._local_path()
        try:
            local.unlink(missing_ok=True)
            sock.bind(str(local))
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            local.unlink(missing_ok=True)
            raise RadioError(f"Funkmodul {self.path}: Verbindung fehlgeschlagen: {exc}") from exc
        self._sock, self._local = sock, local
        return self

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self.attached:
                try:  # polite, so hostapd stops sending to a dead socket; never block on it
                    sock.send(b"DETACH")
                except OSError:
                    pass
            sock.close()
        self.attached = False
        if self._local is not None:
            self._local.unlink(missing_ok=True)
            self._local = None

    def __enter__(self) -> HostapdCtrl:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- raw I/O ---------------------------------------------------------------------------------
    def _recv(self, timeout: float) -> str | None:
        assert self._sock is not None
        ready, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        if not ready:
            return None
        try:
            data = self._sock.recv(RECV_SIZE)
        except OSError as exc:
            raise RadioError(f"Funkmodul {self.path}: Empfang fehlgeschlagen: {exc}") from exc
        return data.decode("utf-8", errors="replace")

    def _queue_event(self, msg: str) -> None:
        if self.tap:
            self.tap("EVENT", msg)
        ev = parse_event(msg)
        if ev is not None:
            self._events.append(ev)

    def _drain(self) -> None:
        """Before a command: keep waiting events, drop stale replies of commands that timed out."""
        while (msg := self._recv(0)) is not None:
            if is_event(msg):
                self._queue_event(msg)
            else:
                log.debug("verspätete Antwort verworfen: %r", msg[:80])

    def command(self, cmd: str, timeout: float | None = None) -> str:
        """Send one command and return hostapd's reply text (may be empty, `FAIL`, `UNKNOWN COMMAND`)."""
        if self._sock is None:
            self.open()
        assert self._sock is not None
        self._drain()
        if self.tap:
            self.tap("SEND", cmd)
        try:
            self._sock.send(cmd.encode())
        except OSError as exc:
            # ECONNREFUSED / ENOENT: hostapd went away (restart) - the socket path is stale.
            raise RadioError(f"Funkmodul {self.path}: Senden von {cmd.split()[0]} fehlgeschlagen: {exc}") from exc
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self._recv(deadline - time.monotonic())
            if msg is None:
                raise RadioError(f"Funkmodul {self.path}: keine Antwort auf {cmd.split()[0]} "
                                 f"innerhalb von {self.timeout:g} s")
            if is_event(msg):
                self._queue_event(msg)
                continue
            if self.tap:
                self.tap("REPLY", msg)
            return msg

    def _expect_ok(self, cmd: str) -> None:
        reply = self.command(cmd)
        if reply.strip() != "OK":
            raise RadioError(f"Funkmodul {self.path}: {cmd.split()[0]} abgelehnt: {reply.strip() or '(leer)'}")

    # --- commands --------------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return self.command("PING").strip() == "PONG"
        except RadioError:
            return False

    def attach(self) -> None:
        self._expect_ok("ATTACH")
        self.attached = True

    def detach(self) -> None:
        self._expect_ok("DETACH")
        self.attached = False

    def next_event(self, timeout: float = 0.0) -> Event | None:
        """The next unsolicited event (queued ones first), or None after `timeout` seconds."""
        if self._events:
            return self._events.popleft()
        if self._sock is None:
            raise RadioError(f"Funkmodul {self.path}: nicht verbunden")
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(deadline - time.monotonic())
            if msg is None:
                return None
            if is_event(msg):
                self._queue_event(msg)
                if self._events:
                    return self._events.popleft()
            # a non-event here is a late reply to a command that timed out: ignore it

    def station(self, mac: str) -> Station | None:
        return parse_sta(self.command(f"STA {normalize_mac(mac)}"))

    def stations(self) -> list[Station]:
        """All stations hostapd knows, as hostapd_cli all_sta lists them (STA-FIRST, STA-NEXT ...)."""
        out: list[Station] = []
        seen: set[str] = set()
        sta = parse_sta(self.command("STA-FIRST"))
        while sta is not None and sta.mac not in seen:  # `seen` guards against a looping table
            out.append(sta)
            seen.add(sta.mac)
            sta = parse_sta(self.command(f"STA-NEXT {sta.mac}"))
        return out

    def reload_wpa_psk(self) -> None:
        self._expect_ok("RELOAD_WPA_PSK")

    def deauthenticate(self, mac: str) -> None:
        try:
            mac = normalize_mac(mac)
        except ValueError as exc:
            raise RadioError(str(exc)) from exc
        self._expect_ok(f"DEAUTHENTICATE {mac}")
