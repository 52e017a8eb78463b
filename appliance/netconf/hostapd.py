"""hostapd configuration and the shared wpa_psk file for the active session.

One personal WPA2 passphrase per member, each tagged `keyid=<opaque id>`: hostapd reports the keyid in
`AP-STA-CONNECTED`, which is how the box knows who joined without any login. All radios of a session
read the same `wpa_psk_file`, so a phone roams between 2.4 and 5 GHz with one key.

The wpa_psk text holds every member's secret: it is written with mode 0640 and never logged.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from appliance.captive.keys import GUEST_KEYID
from appliance.config import Config, Radio

ANY_STATION = "00:00:00:00:00:00"  # wpa_psk_file: this MAC matches every station
LOCKED_KEYID = "locked"
# hostapd splits the line at spaces: a keyid must not contain one; the passphrase runs to the end of line.
_KEYID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PASSPHRASE_RE = re.compile(r"^[\x21-\x7e]{8,63}$")  # printable ASCII without blanks, WPA2 length 8..63


class SessionLike(Protocol):
    ssid: str
    guest_key: str


class MemberLike(Protocol):
    keyid: str
    passphrase: str


def _psk_line(keyid: str, passphrase: str) -> str:
    if not _KEYID_RE.match(keyid):
        raise ValueError(f"ungültige keyid für hostapd: {keyid!r}")
    if not _PASSPHRASE_RE.match(passphrase):
        # The passphrase itself stays out of the message: it is a secret.
        raise ValueError(f"ungültiger WPA2-Schlüssel für keyid {keyid} (8 bis 63 druckbare Zeichen ohne Leerzeichen)")
    return f"keyid={keyid} {ANY_STATION} {passphrase}"


def render_wpa_psk(session: SessionLike | None, members: Iterable[MemberLike]) -> str:
    """hostapd's wpa_psk_file: one line per member plus the guest key.

    Without an active session the file holds one random key that nobody knows (hostapd refuses a
    WPA-PSK BSS without any PSK), so the radio stays up but nobody can join.
    """
    header = ["# Sitzungsbox: persönliche WLAN-Schlüssel. Geheim – nicht weitergeben, nicht protokollieren."]
    if session is None:
        return "\n".join([*header, "# Keine aktive Sitzung: gesperrt.",
                          _psk_line(LOCKED_KEYID, secrets.token_urlsafe(24)[:32])]) + "\n"
    lines = [_psk_line(m.keyid, m.passphrase) for m in members]
    if len({m.split(" ", 1)[0] for m in lines}) != len(lines):
        raise ValueError("doppelte keyid in der Mitgliederliste")
    lines.append(_psk_line(GUEST_KEYID, session.guest_key))
    return "\n".join([*header, *lines]) + "\n"


def locked_ssid(cfg: Config) -> str:
    """SSID broadcast while no session is active (cfg.ssid is validated to [A-Za-z0-9_-])."""
    return cfg.ssid


def render_hostapd_conf(cfg: Config, radio: Radio, session: SessionLike | None, psk_path: Path,
                        ctrl_group: str | int = "sitzungsbox") -> str:
    """One hostapd instance (one radio). Option names as in hostapd 2.10's hostapd.conf."""
    ssid = session.ssid if session is not None else locked_ssid(cfg)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", ssid):
        raise ValueError(f"ungültige SSID: {ssid!r}")
    if radio.hw_mode not in ("a", "g"):
        raise ValueError(f"hw_mode muss 'a' (5 GHz) oder 'g' (2,4 GHz) sein, nicht {radio.hw_mode!r}")
    lines = [
        "# Sitzungsbox: erzeugt von `sitzungsbox netconf` – Änderungen werden überschrieben.",
        f"interface={radio.interface}",
        f"driver={radio.driver}",
    ]
    if radio.bridge:
        lines += ["# Radios and external APs share one client bridge: one DHCP/DNS/firewall for all.",
                  f"bridge={radio.bridge}"]
    lines += [
        # The daemon and the web app (group sitzungsbox) read events and station lists here.
        f"ctrl_interface={cfg.hostapd_ctrl_dir}",
        f"ctrl_interface_group={ctrl_group}",
        f"ssid={ssid}",
        "ignore_broadcast_ssid=0",
        f"hw_mode={radio.hw_mode}",
        f"channel={radio.channel}",
        # Regulatory domain: channels and power allowed in the country; 802.11d announces it to clients.
        f"country_code={cfg.country}",
        "ieee80211d=1",
        # WMM is required for 802.11n/ac rates; without it clients fall back to 54 Mbit/s.
        "wmm_enabled=1",
        "ieee80211n=1",
    ]
    if radio.hw_mode == "a":
        # 5 GHz: 802.11ac. No 802.11h/DFS: pick a non-DFS channel (36-48) so no radar wait blocks the start.
        lines.append("ieee80211ac=1")
    lines += [
        # Open System authentication only (shared-key is WEP's).
        "auth_algs=1",
        # WPA2-PSK with CCMP: WPA3-SAE per-user passwords need identifiers phones rarely support.
        "wpa=2",
        "wpa_key_mgmt=WPA-PSK",
        "rsn_pairwise=CCMP",
        # One line per member, `keyid=` names the member in AP-STA-CONNECTED; shared by all radios.
        f"wpa_psk_file={psk_path}",
        # Clients never talk to each other on this radio (the bridge table isolates across radios).
        "ap_isolate=1",
        # More stations than the chip copes with hurt everyone: refuse them (AP-REJECTED-MAX-STA).
        f"max_num_sta={radio.max_stations}",
    ]
    return "\n".join(lines) + "\n"
