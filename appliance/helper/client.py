"""Client side of the helper protocol, used by the web app; NullHelper for demo mode without root."""

from __future__ import annotations

import socket
from pathlib import Path

from appliance.helper.protocol import MAX_LINE, encode_request, parse_response


class HelperError(RuntimeError):
    """The helper refused or could not apply a request; the message is German and shown to the clerk."""


class HelperClient:
    def __init__(self, socket_path: Path | str, timeout: float = 2) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def admit(self, mac: str, ip: str) -> None:
        self._call("admit", mac, ip)

    def revoke(self, mac: str, ip: str) -> None:
        self._call("revoke", mac, ip)

    def _call(self, op: str, mac: str, ip: str) -> None:
        # One connection per request: the helper is local and the web worker stays free of shared state.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.socket_path)
                s.sendall(encode_request(op, mac, ip))
                line = s.makefile("rb").readline(MAX_LINE * 4)
        except (OSError, TimeoutError) as exc:
            raise HelperError(f"Helfer nicht erreichbar ({self.socket_path}): {exc}") from exc
        if not line:
            raise HelperError("Helfer hat die Verbindung ohne Antwort beendet")
        error = parse_response(line)
        if error is not None:
            raise HelperError(error)


class NullHelper:
    """Same API as HelperClient; records calls and changes nothing (demo mode, tests)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.admitted: set[tuple[str, str]] = set()

    def admit(self, mac: str, ip: str) -> None:
        self.calls.append(("admit", mac, ip))
        self.admitted.add((mac, ip))

    def revoke(self, mac: str, ip: str) -> None:
        self.calls.append(("revoke", mac, ip))
        self.admitted.discard((mac, ip))


def for_config(cfg) -> HelperClient | NullHelper:
    """The firewall helper every interface uses: the real one, or NullHelper on a demo box without root. The
    one place that chooses (tests monkeypatch it to record the calls)."""
    return NullHelper() if cfg.demo else HelperClient(cfg.helper_socket)
