"""Pure parsers of `iw` output (iw 5.x/6.x text, the only stable interface without netlink bindings).

All three commands are read-only nl80211 GET/DUMP requests, allowed to an unprivileged user:
- `iw dev <if> station dump`: per-station counters. Quirks of real drivers:
  * brcmfmac (Raspberry Pi on-board) fills neither `tx retries` nor `tx failed` nor an MCS, and may
    report `signal: 0 dBm` when it has no RSSI: retries come back as None ("n/a"), never a fake 0, and a
    0 dBm signal as None;
  * `tx bitrate: (unknown)` when the driver has no rate yet (seen in the recorded mt76 dump);
  * HE rates read `17.2 MBit/s HE-MCS 1 HE-NSS 1 ...`, legacy ones `1.0 MBit/s` without MCS;
  * indentation is a tab on most builds and spaces on some (the recorded dump mixes both).
- `iw dev <if> survey dump`: one block per frequency; only the `[in use]` one is our channel. Its
  `channel active/busy time` counters are cumulative since the driver started, so busy % is
  Δbusy/Δactive between two dumps; they restart at 0 when the driver resets the survey (or reloads).
- `iw dev <if> scan dump`: the *cached* results of the last scan. We never run `iw scan` (it needs
  CAP_NET_ADMIN and takes the radio off channel for seconds, which drops frames during a session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from operator import itemgetter

from appliance.monitor.hostapd import int_or_none as _int  # a word where iw prints a number: None

_NUM_RE = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~3x (300 a second)
class IwStation:
    """What the monitor takes from one station's block: the fields it uses, nothing more (the parse runs for every
    station every second; rx packets, tx failed, signal avg and the MCS are not shown anywhere, so not read)."""
    mac: str
    interface: str
    inactive_ms: int | None = None
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    tx_packets: int | None = None
    tx_retries: int | None = None  # None: the driver does not report retries (brcmfmac)
    signal: int | None = None  # dBm; None when absent or 0 (brcmfmac)
    tx_bitrate_mbps: float | None = None
    rx_bitrate_mbps: float | None = None
    connected_s: int | None = None
    authorized: bool | None = None


def _first_int(value: str) -> int | None:
    m = _NUM_RE.search(value)
    if not m:
        return None
    try:
        return int(float(m.group(0)))
    except ValueError:
        return None


# Per station block, ONE findall of the C regex engine picks the lines we use as (key, value) pairs and dict()
# makes them a mapping: no Python code runs for the ~18 other lines (rx packets, tx failed, rx drop misc, signal
# avg, tx duration, preamble, DTIM period, associated at, ...) and none per line. The keys are written as a trie
# (`rx b(?:ytes|itrate)`): the engine tries alternatives one after the other at every line, so shared prefixes
# are tested once. Values are taken as iw prints them: counters as their leading integer (`58264 ms`,
# `796 seconds`, `-44 [-51, -44] dBm`), bitrates as `<n>.<n> MBit/s` (iw's "%d.%d"; the MCS after it is not
# used), flags as a word. A value of another shape (`tx bitrate: (unknown)`) matches nothing: the field stays
# None.
_STA_FIELD_RE = re.compile(
    r"\n[ \t]+(inactive time|rx b(?:ytes|itrate)|tx (?:b(?:ytes|itrate)|packets|retries)|signal|authorized"
    r"|connected time):[ \t]*(-?\d+(?:\.\d+ MBit/s)?|[a-z]+)")
_STA_HEAD_RE = re.compile(r"([0-9a-fA-F:]{17}) \(on ([^)\s]+)\)")


def _mbps(value: str | None) -> float | None:
    return float(value[:-7]) if value is not None and value.endswith(" MBit/s") else None


# The fast path of a block: all seven counters present and numeric, the three other fields present (mac80211
# drivers print all of them). Both getters and map(int) run in C: no Python call per field.
_STA_INTS = itemgetter("inactive time", "rx bytes", "tx bytes", "tx packets", "tx retries", "signal",
                       "connected time")
_STA_REST = itemgetter("tx bitrate", "rx bitrate", "authorized")


def parse_station_dump(text: str) -> list[IwStation]:
    """Every station of one interface: the monitor's per-tick source of per-station counters (one `iw` call for
    all stations instead of one hostapd round trip per station), so it runs once a second over ~30 lines for
    each of up to 300 stations and is written for that (see _STA_FIELD_RE): one findall and one dict per station,
    its values taken out in C; a block that lacks a field (brcmfmac: no retries) or holds a word where a number
    belongs takes the field-by-field way."""
    out: list[IwStation] = []
    find, head_of = _STA_FIELD_RE.findall, _STA_HEAD_RE.match
    for block in ("\n" + text).split("\nStation ")[1:]:  # `Station <mac> (on <if>)` starts a block at column 0
        head = head_of(block)
        if head is None:
            continue
        f = dict(find(block))
        try:
            inactive, rx_bytes, tx_bytes, tx_packets, tx_retries, signal, connected = map(int, _STA_INTS(f))
            tx_rate, rx_rate, authorized = _STA_REST(f)
            out.append(IwStation(head[1].lower(), head[2], inactive, rx_bytes, tx_bytes, tx_packets, tx_retries,
                                 signal or None,  # 0 dBm: "no reading" (brcmfmac), never a real signal
                                 float(tx_rate[:-7]) if tx_rate[-1] == "s" else None,  # `<n>.<n> MBit/s`, else a
                                 float(rx_rate[:-7]) if rx_rate[-1] == "s" else None,  # number without unit: None
                                 connected, authorized == "yes"))
        except (KeyError, ValueError):
            get = f.get
            authorized = get("authorized")
            out.append(IwStation(
                head[1].lower(), head[2], _int(get("inactive time")), _int(get("rx bytes")), _int(get("tx bytes")),
                _int(get("tx packets")), _int(get("tx retries")), _int(get("signal")) or None,
                _mbps(get("tx bitrate")), _mbps(get("rx bitrate")), _int(get("connected time")),
                None if authorized is None else authorized == "yes"))
    return out


@dataclass(frozen=True)
class Survey:
    frequency: int
    in_use: bool
    noise: int | None = None
    active_ms: int | None = None
    busy_ms: int | None = None
    rx_ms: int | None = None
    tx_ms: int | None = None


def parse_survey_dump(text: str) -> list[Survey]:
    out: list[Survey] = []
    cur: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "frequency":
            if cur is not None:
                out.append(Survey(**cur))
            cur = {"frequency": _first_int(value) or 0, "in_use": "[in use]" in value}
        elif cur is None:
            continue
        elif key == "noise":
            cur["noise"] = _first_int(value)
        elif key == "channel active time":
            cur["active_ms"] = _first_int(value)
        elif key == "channel busy time":
            cur["busy_ms"] = _first_int(value)
        elif key == "channel receive time":
            cur["rx_ms"] = _first_int(value)
        elif key == "channel transmit time":
            cur["tx_ms"] = _first_int(value)
    if cur is not None:
        out.append(Survey(**cur))
    return out


def in_use(surveys: list[Survey]) -> Survey | None:
    return next((s for s in surveys if s.in_use), None)


def busy_percent(prev: Survey | None, cur: Survey | None) -> float | None:
    """Δbusy/Δactive of the in-use channel. Without a previous dump (or after the driver reset its
    counters: they went down, or the channel changed) the cumulative ratio since the reset is used."""
    if cur is None or cur.active_ms is None or cur.busy_ms is None:
        return None
    if (prev is not None and prev.active_ms is not None and prev.busy_ms is not None
            and prev.frequency == cur.frequency and cur.active_ms >= prev.active_ms and cur.busy_ms >= prev.busy_ms):
        d_active, d_busy = cur.active_ms - prev.active_ms, cur.busy_ms - prev.busy_ms
    else:
        d_active, d_busy = cur.active_ms, cur.busy_ms
    if d_active <= 0:
        return None
    return round(min(100.0, 100.0 * d_busy / d_active), 1)


@dataclass(frozen=True)
class Bss:
    bssid: str
    frequency: int | None = None
    channel: int | None = None
    signal: float | None = None
    ssid: str = ""
    last_seen_ms: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def freq_to_channel(freq: int | None) -> int | None:
    if freq is None:
        return None
    if freq == 2484:
        return 14
    if 2412 <= freq <= 2472:
        return (freq - 2407) // 5
    if 5000 <= freq <= 5900:
        return (freq - 5000) // 5
    if 5955 <= freq <= 7115:  # 6 GHz
        return (freq - 5950) // 5
    return None


def parse_scan_dump(text: str) -> list[Bss]:
    out: list[Bss] = []
    cur: dict | None = None

    def flush() -> None:
        if cur is not None:
            if cur.get("channel") is None:
                cur["channel"] = freq_to_channel(cur.get("frequency"))
            out.append(Bss(**cur))

    for raw in text.splitlines():
        # `BSS aa:bb:..(on wlan0)` - the recorded dump masks part of the address as `xx`
        m = re.match(r"^BSS ([0-9a-fA-Fx:]{17})", raw)
        if m:
            flush()
            cur = {"bssid": m.group(1).lower()}
            continue
        if cur is None:
            continue
        line = raw.strip()
        key, _, value = line.partition(":")
        if key == "freq":
            cur["frequency"] = _first_int(value)
        elif key == "signal":
            n = _NUM_RE.search(value)
            cur["signal"] = float(n.group(0)) if n else None
        elif key == "SSID":
            cur["ssid"] = value.strip()
        elif key == "last seen" and "ms ago" in value:
            cur["last_seen_ms"] = _first_int(value)
        elif key in ("DS Parameter set", "* primary channel") and cur.get("channel") is None:
            # `DS Parameter set: channel 6` (2.4 GHz) / HT operation `* primary channel: 1`
            cur["channel"] = _first_int(value)
    flush()
    return out


def neighbours_on_channel(bsses: list[Bss], channel: int | None, own: set[str] | None = None) -> list[Bss]:
    """Other networks on our primary channel, strongest first (our own BSSIDs excluded)."""
    if channel is None:
        return []
    own = own or set()
    found = [b for b in bsses if b.channel == channel and b.bssid not in own]
    return sorted(found, key=lambda b: -(b.signal if b.signal is not None else -200))


@dataclass(frozen=True)
class IwInfo:
    interface: str
    channel: int | None = None
    frequency: int | None = None
    width_mhz: int | None = None
    ssid: str = ""
    txpower_dbm: float | None = None


def parse_iw_info(text: str) -> list[IwInfo]:
    """`iw dev` / `iw dev <if> info`: interfaces with channel and width."""
    out: list[IwInfo] = []
    cur: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Interface "):
            if cur is not None:
                out.append(IwInfo(**cur))
            cur = {"interface": line.split()[1]}
        elif cur is None:
            continue
        elif line.startswith("ssid "):
            cur["ssid"] = line[5:]  # SSIDs may contain spaces (recorded: `ssid My AP 1`)
        elif line.startswith("channel "):
            m = re.match(r"channel (\d+) \((\d+) MHz\)(?:, width: (\d+) MHz)?", line)
            if m:
                cur["channel"], cur["frequency"] = int(m.group(1)), int(m.group(2))
                cur["width_mhz"] = int(m.group(3)) if m.group(3) else None
        elif line.startswith("txpower "):
            n = _NUM_RE.search(line)
            cur["txpower_dbm"] = float(n.group(0)) if n else None
    if cur is not None:
        out.append(IwInfo(**cur))
    return out
