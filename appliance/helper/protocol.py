"""The helper's wire protocol: one JSON object per line over a Unix stream socket.

Request:  {"op": "admit"|"revoke", "mac": "aa:bb:cc:dd:ee:ff", "ip": "10.77.0.23"}
Response: {"ok": true} or {"ok": false, "error": "..."}

Nothing else exists: the client never sends rule text, set names or anything that reaches a shell.
Everything here is pure so the validation table can be tested without a socket.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

MAX_LINE = 256
OPS = ("admit", "revoke")
_KEYS = {"op", "mac", "ip"}
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class ProtocolError(ValueError):
    """A request that is refused; the message goes back to the client verbatim (German, terse)."""


@dataclass(frozen=True)
class Request:
    op: str
    mac: str  # lowercase, colon-separated, unicast
    ip: str  # dotted quad inside the client network


def normalise_mac(value: object) -> str:
    if not isinstance(value, str):
        raise ProtocolError("mac muss eine Zeichenkette sein")
    mac = value.strip().lower()
    if not _MAC_RE.match(mac):
        raise ProtocolError("ungültige MAC-Adresse")
    octets = bytes.fromhex(mac.replace(":", ""))
    # The I/G bit of the first octet marks group addresses; broadcast ff:..:ff is one of them.
    if octets[0] & 0x01:
        raise ProtocolError("MAC-Adresse ist keine Unicast-Adresse")
    if octets == bytes(6):
        raise ProtocolError("MAC-Adresse 00:00:00:00:00:00 ist nicht erlaubt")
    return mac


def check_ip(value: object, network: ipaddress.IPv4Network,
             box_address: ipaddress.IPv4Address | None = None) -> str:
    if not isinstance(value, str):
        raise ProtocolError("ip muss eine Zeichenkette sein")
    try:
        # ipaddress rejects leading zeros and anything that is not a dotted quad.
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise ProtocolError("ungültige IPv4-Adresse") from None
    if ip not in network:
        raise ProtocolError(f"IP-Adresse liegt nicht im Netz {network}")
    if ip in (network.network_address, network.broadcast_address):
        raise ProtocolError("Netz- oder Broadcast-Adresse ist nicht erlaubt")
    if box_address is not None and ip == box_address:
        raise ProtocolError("die Adresse der Box ist nicht erlaubt")
    return str(ip)


def parse_request(line: bytes, network: ipaddress.IPv4Network,
                  box_address: ipaddress.IPv4Address | str | None = None) -> Request:
    """Validate one request line (with or without its trailing newline) or raise ProtocolError."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise ProtocolError(f"Anfrage länger als {MAX_LINE} Bytes")
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("Anfrage ist kein JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("Anfrage muss ein JSON-Objekt sein")
    if set(data) != _KEYS:
        raise ProtocolError("Anfrage braucht genau die Felder op, mac, ip")
    op = data["op"]
    if op not in OPS:
        raise ProtocolError("unbekannte Operation")
    box = ipaddress.IPv4Address(box_address) if isinstance(box_address, str) else box_address
    return Request(op=op, mac=normalise_mac(data["mac"]), ip=check_ip(data["ip"], network, box))


def encode_request(op: str, mac: str, ip: str) -> bytes:
    return json.dumps({"op": op, "mac": mac, "ip": ip}, separators=(",", ":")).encode() + b"\n"


def encode_response(error: str | None = None) -> bytes:
    body: dict = {"ok": True} if error is None else {"ok": False, "error": error}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def parse_response(line: bytes) -> str | None:
    """None for success, else the server's error message. A garbled answer is an error too."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "unlesbare Antwort vom Helfer"
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        return "unlesbare Antwort vom Helfer"
    if data["ok"]:
        return None
    return str(data.get("error") or "unbekannter Fehler")
