"""Box configuration: embedded defaults, overridden by one TOML file.

Nothing reads configuration at import time; callers load a Config and pass it on.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PATH = Path("/etc/sitzungsbox/sitzungsbox.toml")
IFACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Radio:
    """One hostapd instance. All radios share the session's SSID and keys."""

    interface: str = "wlan0"
    hw_mode: str = "g"  # g = 2.4 GHz, a = 5 GHz
    channel: int = 6
    # brcmfmac (Pi on-board) copes with ~8-10 stations; USB mac80211 adapters with far more.
    max_stations: int = 10
    driver: str = "nl80211"
    # When several radios are bridged the clients' interface is the bridge.
    bridge: str = ""


@dataclass(frozen=True)
class Config:
    # Where the box keeps its database, documents and rendered network files.
    state_dir: Path = Path("/var/lib/sitzungsbox")
    run_dir: Path = Path("/run/sitzungsbox")
    box_name: str = "Sitzungsbox"
    hostname: str = "sitzungsbox"  # DNS short name and mDNS name (<hostname>.local)
    # The interface the clients are on (a radio, or the bridge of radios and external APs).
    interface: str = "wlan0"
    address: str = "10.77.0.1"
    # A /16 for 300 devices on purpose: dnsmasq does not reserve offered addresses and starts each client's
    # search at a hash of its MAC, so when a hall joins at once, clients whose hashes meet are offered the same
    # address; all but one get a NAK and wait ~3 s. The chance falls with the pool size (birthday problem:
    # 200 phones in 497 addresses ~40 clashes, in 4000 ~5, in 65000 ~0.3). Measured in bench/onboarding.
    prefix: int = 16
    dhcp_start: str = "10.77.0.10"
    dhcp_end: str = "10.77.255.250"
    lease_time: str = "4h"
    country: str = "DE"
    # One network name for every session: switching sessions only swaps keys (RELOAD_WPA_PSK, no root,
    # nobody dropped), and a new card overwrites the phone's saved network instead of piling up old ones.
    ssid: str = "Sitzung"
    # RFC 8908 needs HTTPS with a publicly trusted certificate; off unless the box has one.
    captive_api_url: str = ""
    uplink: str = ""  # interface towards the internet; empty: none
    internet_passthrough: bool = False
    web_bind: str = "0.0.0.0"
    web_port: int = 8080
    web_user: str = "sitzungsbox"
    # gevent workers: each holds many idle connections; two use two cores when a hall joins at once
    # (bench/onboarding). State shared between them lives in SQLite, never in a worker's memory.
    web_workers: int = 2
    helper_socket: Path = Path("/run/sitzungsbox/helper.sock")
    hostapd_ctrl_dir: Path = Path("/run/hostapd")
    leases_file: Path = Path("/var/lib/sitzungsbox/dnsmasq.leases")
    nft_table: str = "sitzungsbox"
    radios: tuple[Radio, ...] = (Radio(),)
    # Demo mode: no radio, no firewall; a replayed hostapd keeps the box alive.
    demo: bool = False
    # Technicians' dashboard (appliance/monitor): sample period and alert thresholds. Integers only (TOML
    # round trip). Signal classes from DOMAIN.md: good >= -67 dBm, fair to -75, poor to -85, bad below.
    monitor_interval_ms: int = 1000
    monitor_signal_good_dbm: int = -67
    monitor_signal_fair_dbm: int = -75
    monitor_signal_poor_dbm: int = -85
    monitor_weak_signal_dbm: int = -75  # alert below this (poor and bad links)
    monitor_retries_pct: int = 20  # alert: share of retried frames in the last interval
    monitor_busy_poor_pct: int = 50  # channel busy (Δbusy/Δactive) poor from here ...
    monitor_busy_bad_pct: int = 70  # ... and bad (alert) from here
    monitor_radio_near_pct: int = 80  # alert: clients at this share of a radio's max_stations
    monitor_dhcp_pct: int = 90  # alert: DHCP pool use
    monitor_hot_c: int = 80  # alert: SoC temperature (the Pi firmware soft-throttles at 80 °C)
    monitor_disk_pct: int = 90  # alert: state file system use
    monitor_alert_after_s: int = 5  # a condition must hold this long before it becomes an alert
    # Presence (issue 4): how long a member's quiet or disconnected device still counts as present (sleeping
    # phones drop off the Wi-Fi for minutes), and how often the daemon looks for changes.
    # Presence and chat are personal data: deleted this many days after their session (clerks can wipe sooner).
    retention_days: int = 30
    presence_grace: float = 600.0
    presence_interval: float = 0.5
    # Times shown to people and written into the minutes (attendance page, print, CSV): the council's local
    # time, whatever the system clock's zone is (images often run in UTC). An IANA name (tzdata).
    timezone: str = "Europe/Berlin"
    # Push channel: a heartbeat comment keeps idle streams alive through proxies and detects gone clients.
    # Publishers wake each web worker's hub at once (appliance.push.wake); push_poll is only its safety net:
    # with no wake it reads the database this often (the longest an event waits if a wake is lost).
    push_heartbeat: float = 15.0
    push_poll: float = 1.0
    # Room chat: at most chat_rate_count messages per participant within chat_rate_window seconds.
    chat_rate_count: int = 5
    chat_rate_window: float = 10.0
    # OParl import (appliance/outside.py): servers in private networks (RFC 1918, fc00::/7, 100.64.0.0/10),
    # and a loopback address the clerk writes literally, may be fetched from. Off: only public addresses.
    oparl_private_sources: bool = False
    # Documents on a shared radio (issue 16; bench/pacing). While a session runs, whole files and ZIPs are paced
    # to this many KiB/s per web worker (viewer ranges never are), so the viewers' small requests keep their
    # share of the radio's ~30 MB/s; 0: no pacing. A file above docs_hall_warn_mb gets the clerk's warning
    # (file size only: a scan's size, not its page count, is what the radio pays) and Ghostscript's copy.
    docs_bulk_pace_kib: int = 4096
    docs_hall_warn_mb: int = 30
    docs_optimise_timeout_s: int = 300

    @property
    def db_path(self) -> Path:
        return self.state_dir / "sitzungsbox.db"

    @property
    def netconf_dir(self) -> Path:
        return self.state_dir / "netconf"

    @property
    def psk_file(self) -> Path:
        """Personal keys for hostapd. Its own directory, writable by the web user: key rotation rewrites it
        without root, and a key file cannot make any daemon run code (unlike dnsmasq.conf)."""
        return self.state_dir / "keys" / "wpa_psk"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Interface(f"{self.address}/{self.prefix}").network

    @property
    def portal_url(self) -> str:
        """The URL phones are sent to; port 80 is redirected to the web port by nftables."""
        return f"http://{self.address}/portal"

    def validate(self) -> Config:
        net = self.network
        for name in ("dhcp_start", "dhcp_end"):
            ip = ipaddress.IPv4Address(getattr(self, name))
            if ip not in net:
                raise ConfigError(f"{name} {ip} liegt nicht im Netz {net}")
        if ipaddress.IPv4Address(self.dhcp_start) > ipaddress.IPv4Address(self.dhcp_end):
            raise ConfigError("dhcp_start liegt hinter dhcp_end")
        for iface in [self.interface, *(r.interface for r in self.radios)]:
            if not IFACE_RE.match(iface):
                raise ConfigError(f"ungültiger Schnittstellenname: {iface!r}")
        if not re.fullmatch(r"[A-Z]{2}", self.country):
            raise ConfigError(f"Ländercode muss zwei Großbuchstaben haben: {self.country!r}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", self.ssid):
            raise ConfigError("ssid: nur A-Z, a-z, 0-9, _ und - (höchstens 32 Zeichen)")
        if not 1 <= self.web_workers <= 16:
            raise ConfigError("web_workers muss zwischen 1 und 16 liegen")
        if not 100 <= self.monitor_interval_ms <= 60_000:
            raise ConfigError("monitor_interval_ms muss zwischen 100 und 60000 liegen")
        if not (0 > self.monitor_signal_good_dbm > self.monitor_signal_fair_dbm > self.monitor_signal_poor_dbm):
            raise ConfigError("Signalschwellen: gut > mittel > schwach, alle unter 0 dBm")
        for name in ("monitor_retries_pct", "monitor_busy_poor_pct", "monitor_busy_bad_pct", "monitor_radio_near_pct",
                     "monitor_dhcp_pct", "monitor_disk_pct"):
            if not 1 <= getattr(self, name) <= 100:
                raise ConfigError(f"{name} muss zwischen 1 und 100 liegen")
        if self.monitor_busy_poor_pct > self.monitor_busy_bad_pct:
            raise ConfigError("monitor_busy_poor_pct liegt über monitor_busy_bad_pct")
        if not 1 <= self.retention_days <= 3650:
            raise ConfigError("retention_days muss zwischen 1 und 3650 liegen")
        if not 0 < self.presence_grace <= 86400 or not 0 < self.presence_interval <= 60:
            raise ConfigError("presence_grace (0..86400 s) oder presence_interval (0..60 s) ungültig")
        try:
            ZoneInfo(self.timezone)
        except (TypeError, ValueError, ZoneInfoNotFoundError) as exc:
            raise ConfigError(f"unbekannte Zeitzone: {self.timezone!r}") from exc
        if not 0 < self.push_heartbeat <= 300 or not 0 < self.push_poll <= 5:
            raise ConfigError("push_heartbeat (0..300 s) oder push_poll (0..5 s) ungültig")
        if not 1 <= self.chat_rate_count <= 1000 or not 0 < self.chat_rate_window <= 3600:
            raise ConfigError("chat_rate_count (1..1000) oder chat_rate_window (0..3600 s) ungültig")
        if not isinstance(self.oparl_private_sources, bool):
            raise ConfigError("oparl_private_sources muss true oder false sein")
        if not 0 <= self.docs_bulk_pace_kib <= 1_048_576:
            raise ConfigError("docs_bulk_pace_kib muss zwischen 0 (aus) und 1048576 liegen")
        if not 1 <= self.docs_hall_warn_mb <= 4096 or not 10 <= self.docs_optimise_timeout_s <= 3600:
            raise ConfigError("docs_hall_warn_mb (1..4096) oder docs_optimise_timeout_s (10..3600) ungültig")
        if not re.fullmatch(r"[a-z0-9-]{1,63}", self.hostname):
            raise ConfigError(f"ungültiger Hostname: {self.hostname!r}")
        return self


_PATH_FIELDS = {f.name for f in fields(Config) if f.type in ("Path", Path)}


def from_mapping(data: dict, base: Config | None = None) -> Config:
    """Build a Config from a (TOML) mapping; unknown keys are an error, not silently ignored."""
    base = base or Config()
    known = {f.name for f in fields(Config)}
    changes: dict = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unbekannte Einstellung: {key}")
        if key == "radios":
            radio_keys = {f.name for f in fields(Radio)}
            radios = []
            for r in value:
                bad = set(r) - radio_keys
                if bad:
                    raise ConfigError(f"unbekannte Funk-Einstellung: {', '.join(sorted(bad))}")
                radios.append(Radio(**r))
            value = tuple(radios)
        elif key in _PATH_FIELDS:
            value = Path(value)
        changes[key] = value
    cfg = replace(base, **changes)
    # Derived paths follow state_dir unless set explicitly.
    if "state_dir" in data and "leases_file" not in data:
        cfg = replace(cfg, leases_file=cfg.state_dir / "dnsmasq.leases")
    if "run_dir" in data and "helper_socket" not in data:
        cfg = replace(cfg, helper_socket=cfg.run_dir / "helper.sock")
    return cfg.validate()


def load(path: Path | None = None) -> Config:
    """Load the config file named by the argument, $SITZUNGSBOX_CONFIG or the default path.

    A missing default file means embedded defaults; a missing named file is an error.
    """
    named = path or (Path(os.environ["SITZUNGSBOX_CONFIG"]) if os.environ.get("SITZUNGSBOX_CONFIG") else None)
    target = named or DEFAULT_PATH
    if not target.exists():
        if named:
            raise ConfigError(f"Konfigurationsdatei fehlt: {target}")
        return Config().validate()
    with open(target, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{target}: kein gültiges TOML ({exc})") from exc
    return from_mapping(data)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def to_toml(cfg: Config) -> str:
    """Serialise a Config so that child processes (web, helper, daemon) run with exactly the same one."""
    lines: list[str] = []
    for f in fields(Config):
        if f.name == "radios":
            continue
        lines.append(f"{f.name} = {_toml_value(getattr(cfg, f.name))}")
    if not cfg.radios:  # external access points only: say so, or the reader falls back to the default radio
        lines.append("radios = []")
    for radio in cfg.radios:
        lines.append("\n[[radios]]")
        lines.extend(f"{rf.name} = {_toml_value(getattr(radio, rf.name))}" for rf in fields(Radio))
    return "\n".join(lines) + "\n"
