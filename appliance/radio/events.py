"""Pure parsers of hostapd control-socket text: unsolicited events and `STA` blocks.

Formats as hostapd 2.10 prints them (checked against the source and against the recordings in
`appliance/radio/recordings/`):

- Events are `<N>TEXT` with N the wpa_msg level (MSG_INFO = 3 for the AP-STA-* events). Unlike replies
  they carry **no trailing newline** (recorded: `b'<3>AP-STA-CONNECTED 02:00:00:00:00:01'`).
- `AP-STA-CONNECTED <mac>[ ip_addr=<a.b.c.d>][ keyid=<id>]` (src/ap/sta_info.c, ap_sta_set_authorized():
  `AP_STA_CONNECTED "%s%s%s", buf, ip_addr, keyid_buf` with `" keyid=%s"`). keyid only when the station
  used a keyid'd line of wpa_psk_file; an 802.1X or plain-PSK station has none.
- `STA`, `STA-FIRST`, `STA-NEXT <mac>` answer `<mac>\\nkey=value\\n...` (src/ap/ctrl_iface_ap.c,
  hostapd_ctrl_iface_sta_mib()); an empty answer means "no (further) station", `FAIL\\n` an unknown MAC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_LEVEL_RE = re.compile(r"^<(\d+)>")

# hostapd event name -> our kind
_KINDS = {
    "AP-STA-CONNECTED": "connected",
    "AP-STA-DISCONNECTED": "disconnected",
    "AP-STA-POSSIBLE-PSK-MISMATCH": "psk_mismatch",
    "AP-REJECTED-MAX-STA": "rejected_max_sta",
    "AP-ENABLED": "enabled",
    "AP-DISABLED": "disabled",
}


def is_mac(text: str) -> bool:
    return bool(MAC_RE.match(text.lower()))


def normalize_mac(text: str) -> str:
    """hostapd prints MACs lower-case (MACSTR is %02x); we store them the same way."""
    mac = text.strip().lower()
    if not MAC_RE.match(mac):
        raise ValueError(f"ungültige MAC-Adresse: {text!r}")
    return mac


@dataclass(frozen=True)
class Event:
    kind: str  # connected / disconnected / psk_mismatch / rejected_max_sta / enabled / disabled / other
    name: str  # hostapd's own event name, e.g. "AP-STA-CONNECTED"
    mac: str | None = None
    keyid: str | None = None
    level: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""


def is_event(msg: str) -> bool:
    """Unsolicited messages start with `<level>`; replies (OK, PONG, STA blocks) never do."""
    return bool(_LEVEL_RE.match(msg))


def parse_event(msg: str) -> Event | None:
    """Parse one unsolicited message; None for empty text. Unknown events come back as kind "other"."""
    text = msg.strip()
    if not text:
        return None
    level = None
    m = _LEVEL_RE.match(text)
    if m:
        level = int(m.group(1))
        text = text[m.end():]
    parts = text.split()
    if not parts:
        return None
    name = parts[0]
    kind = _KINDS.get(name, "other")
    mac = None
    params: dict[str, str] = {}
    for token in parts[1:]:
        if "=" in token:
            key, _, value = token.partition("=")
            params[key] = value
        elif mac is None and is_mac(token):
            mac = token.lower()
    return Event(kind=kind, name=name, mac=mac, keyid=params.get("keyid") or None, level=level,
                 params=params, raw=msg)


@dataclass(frozen=True)
class Station:
    mac: str
    keyid: str | None = None
    flags: tuple[str, ...] = ()
    signal: int | None = None  # dBm; None when absent or 0
    rx_rate_kbps: int | None = None
    tx_rate_kbps: int | None = None
    inactive_msec: int | None = None
    connected_time: int | None = None  # seconds
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def authorized(self) -> bool:
        return "AUTHORIZED" in self.flags


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.split()[0])
    except (ValueError, IndexError):
        return None


def _rate_kbps(value: str | None) -> int | None:
    # `rx_rate_info=650 mcs 7 shortGI`: the number is in units of 100 kbit/s (hostapd divides the
    # driver's kbit/s by 100), followed by optional MCS/NSS/GI words.
    n = _int(value)
    return None if n is None else n * 100


def parse_flags(value: str) -> tuple[str, ...]:
    """`flags=[AUTH][ASSOC][AUTHORIZED]` -> ("AUTH", "ASSOC", "AUTHORIZED")."""
    return tuple(re.findall(r"\[([^\]]+)\]", value))


def parse_sta(text: str) -> Station | None:
    """Parse one STA block; None for the empty answer (no station) and for `FAIL`."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not is_mac(lines[0].strip()):
        return None
    raw: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep:
            raw[key] = value
    signal = _int(raw.get("signal"))
    if signal == 0:
        # brcmfmac (Pi on-board) reports 0 when it has no RSSI; 0 dBm is not a real reading.
        signal = None
    return Station(
        mac=lines[0].strip().lower(),
        keyid=raw.get("keyid") or None,
        flags=parse_flags(raw.get("flags", "")),
        signal=signal,
        rx_rate_kbps=_rate_kbps(raw.get("rx_rate_info")),
        tx_rate_kbps=_rate_kbps(raw.get("tx_rate_info")),
        inactive_msec=_int(raw.get("inactive_msec")),
        connected_time=_int(raw.get("connected_time")),
        raw=raw,
    )


# --- the recording format shared by recordings/, FakeHostapd.replay and the recorder ---------------
#
#   # comment
#   +<seconds since start> <DIR> <payload with \n and \\ escaped>
#
# DIR: SEND (client -> hostapd command), REPLY (hostapd -> client answer), EVENT (unsolicited).


@dataclass(frozen=True)
class RecordLine:
    at: float
    direction: str  # SEND / REPLY / EVENT
    text: str


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def format_record(line: RecordLine) -> str:
    # keep trailing spaces: hostapd's "AP-ENABLED " really ends in one (wpa_ctrl.h AP_EVENT_ENABLED)
    return f"+{line.at:.3f} {line.direction}" + (f" {escape(line.text)}" if line.text else "")


def parse_recording(text: str) -> list[RecordLine]:
    """Parse a recording; raises ValueError naming the line on malformed input."""
    out: list[RecordLine] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"^\+(\d+(?:\.\d+)?) (SEND|REPLY|EVENT)(?: (.*))?$", line)
        if not m:
            raise ValueError(f"Aufzeichnung Zeile {no}: unlesbar: {line!r}")
        out.append(RecordLine(float(m.group(1)), m.group(2), unescape(m.group(3) or "")))
    return out
