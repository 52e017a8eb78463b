"""Pure parsers of hostapd control-socket answers the monitor needs beyond appliance.radio.events.

- `STATUS` (hostapd_ctrl_iface_status()): `key=value` lines; per-BSS keys are indexed (`bss[0]=wlan0`,
  `ssid[0]=...`, `num_sta[0]=5`). Quirks: `ssid[N]` is printed with printf_encode, so non-ASCII bytes
  arrive as `\\xf0\\x9f...` escapes (recorded: an emoji SSID); `cac_time_left_seconds=N/A`;
  `chan_util_avg` only exists with `bss_load_update_period` set; `vht_oper_chwidth` 0 means 20/40 MHz
  (then `secondary_channel` decides), 1 = 80, 2 = 160, 3 = 80+80.
- `STA-FIRST`/`STA-NEXT` blocks are parsed by events.parse_sta (which already maps brcmfmac's `signal=0`
  to None); here they become counters. `rx_rate_info`/`tx_rate_info` are in 100 kbit/s. hostapd prints
  no retry counters at all: those come from `iw station dump`, where the driver has them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.radio.events import Station


@dataclass(frozen=True)
class RadioStatus:
    state: str | None = None  # ENABLED, DISABLED, COUNTRY_UPDATE, ...
    channel: int | None = None
    frequency: int | None = None
    width_mhz: int | None = None
    num_sta: int | None = None
    ssid: str = ""
    bssid: str | None = None
    chan_util_pct: float | None = None  # hostapd's own BSS-load average (0..255 scaled), when enabled


def _decode_printf(text: str) -> str:
    """Undo hostapd's printf_encode (\\xNN, \\\\, \\", \\e, \\n, \\r, \\t) and decode as UTF-8."""
    out = bytearray()
    i = 0
    simple = {"\\": b"\\", '"': b'"', "e": b"\x1b", "n": b"\n", "r": b"\r", "t": b"\t"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            if nxt in simple:
                out += simple[nxt]
                i += 2
                continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def int_or_none(value: str | None) -> int | None:
    """A field's integer; None when it is missing or not a number (unknown, never a made-up 0). The monitor's
    parsers of hostapd's and iw's text share it."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_status(text: str) -> RadioStatus:
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            kv[key.strip()] = value.strip()
    chwidth = int_or_none(kv.get("vht_oper_chwidth") or kv.get("he_oper_chwidth"))
    width = None
    if chwidth in (1, 3):
        width = 80
    elif chwidth == 2:
        width = 160
    elif kv.get("secondary_channel") is not None:
        width = 40 if kv.get("secondary_channel") not in ("0", "") else 20
    util = int_or_none(kv.get("chan_util_avg"))
    return RadioStatus(
        state=kv.get("state"),
        channel=int_or_none(kv.get("channel")),
        frequency=int_or_none(kv.get("freq")),
        width_mhz=width,
        num_sta=int_or_none(kv.get("num_sta[0]")),
        ssid=_decode_printf(kv.get("ssid[0]", "")),
        bssid=kv.get("bssid[0]"),
        # chan_util_avg is the 802.11 BSS Load value: busy fraction scaled to 0..255
        chan_util_pct=round(100 * util / 255, 1) if util is not None else None,
    )


@dataclass(frozen=True)
class StaCounters:
    rx_bytes: int | None
    tx_bytes: int | None
    rx_packets: int | None
    tx_packets: int | None
    tx_bitrate_mbps: float | None
    rx_bitrate_mbps: float | None


def sta_counters(sta: Station) -> StaCounters:
    raw = sta.raw
    return StaCounters(
        rx_bytes=int_or_none(raw.get("rx_bytes")), tx_bytes=int_or_none(raw.get("tx_bytes")),
        rx_packets=int_or_none(raw.get("rx_packets")), tx_packets=int_or_none(raw.get("tx_packets")),
        tx_bitrate_mbps=sta.tx_rate_kbps / 1000 if sta.tx_rate_kbps else None,
        rx_bitrate_mbps=sta.rx_rate_kbps / 1000 if sta.rx_rate_kbps else None,
    )
