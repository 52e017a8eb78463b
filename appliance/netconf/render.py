"""Render every network file for the active session and write them atomically into cfg.netconf_dir.

`sitzungsbox netconf [--check]` runs as root at boot and on every session change / key rotation;
systemd then loads nftables.nft and (re)starts dnsmasq and hostapd, or the radio control reloads keys.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from appliance.config import Config
from appliance.netconf import checks
from appliance.netconf.dnsmasq import render_dnsmasq_conf
from appliance.netconf.hostapd import MemberLike, SessionLike, render_hostapd_conf, render_wpa_psk
from appliance.netconf.nftables import render_ruleset

WPA_PSK = "wpa_psk"
DNSMASQ = "dnsmasq.conf"
NFTABLES = "nftables.nft"
IP_BATCH = "ip.batch"  # `ip -batch`: the box address on the client interface (sitzungsbox-netconf.service)
SECRET_MODE = 0o640  # hostapd (root) reads it; never world-readable
PUBLIC_MODE = 0o644


def hostapd_name(interface: str) -> str:
    return f"hostapd-{interface}.conf"


def config_warnings(cfg: Config) -> list[str]:
    """Pure: configurations that render fine but would leave clients stranded."""
    warnings = []
    if len(cfg.radios) > 1:
        for radio in cfg.radios:
            if radio.interface != cfg.interface and radio.bridge != cfg.interface:
                warnings.append(f"Funkmodul {radio.interface} hängt nicht an der Brücke {cfg.interface}: "
                                "Geräte dort bekommen keine Adresse")
    if len({r.interface for r in cfg.radios}) != len(cfg.radios):
        warnings.append("zwei Funkmodule mit derselben Schnittstelle")
    if cfg.internet_passthrough and not cfg.uplink:
        warnings.append("internet_passthrough ist an, aber kein uplink gesetzt: kein Internet")
    return warnings


def render_all(cfg: Config, session: SessionLike | None, members: Iterable[MemberLike],
               ctrl_group: str | int = "sitzungsbox") -> dict[str, str]:
    psk_path = cfg.psk_file
    files = {hostapd_name(r.interface): render_hostapd_conf(cfg, r, session, psk_path, ctrl_group)
             for r in cfg.radios}
    files[WPA_PSK] = render_wpa_psk(session, members)
    # No pid file: systemd runs dnsmasq in the foreground (-k) and tracks the process itself.
    files[DNSMASQ] = render_dnsmasq_conf(cfg, pid_file="")
    files[NFTABLES] = render_ruleset(cfg)
    files[IP_BATCH] = render_ip_batch(cfg)
    return files


def render_ip_batch(cfg: Config) -> str:
    """Commands for `ip -batch`: idempotent (`replace`), so the unit can run again on every session change."""
    return (f"link set dev {cfg.interface} up\n"
            f"address replace {cfg.address}/{cfg.prefix} dev {cfg.interface}\n")


def write_atomic(path: Path, text: str, mode: int) -> None:
    """tmp file in the same directory, fsync, rename over: readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # before any secret is written
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def write_all(cfg: Config, db: sqlite_utils.Database, ctrl_group: str | int = "sitzungsbox") -> list[Path]:
    from appliance.sessions import service

    session = service.active_session(db)
    members = service.members(db, session.id) if session else []
    files = render_all(cfg, session, members, ctrl_group)
    out = cfg.netconf_dir
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        if name == WPA_PSK:
            cfg.psk_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cfg.psk_file, text, SECRET_MODE)
            written.append(cfg.psk_file)
            continue
        path = out / name
        write_atomic(path, text, PUBLIC_MODE)
        written.append(path)
    # A radio removed from the configuration leaves no stale hostapd file behind.
    for stale in out.glob("hostapd-*.conf"):
        if stale.name not in files:
            stale.unlink()
    return written


def write_psk(cfg: Config, db: sqlite_utils.Database) -> Path:
    """Only the key file, for key rotation from the unprivileged web app; hostapd re-reads it on
    RELOAD_WPA_PSK, nothing else needs to restart."""
    from appliance.sessions import service

    session = service.active_session(db)
    members = service.members(db, session.id) if session else []
    cfg.psk_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cfg.psk_file, render_wpa_psk(session, members), SECRET_MODE)
    return cfg.psk_file


def run_checks(cfg: Config, paths: Iterable[Path]) -> list[checks.CheckResult]:
    results = []
    for path in paths:
        if path.name == NFTABLES:
            results.append(checks.check_nft(path.read_text()))
        elif path.name == DNSMASQ:
            results.append(checks.check_dnsmasq(path))
        elif path.name == IP_BATCH:
            results.append(checks.check_ip_batch(path, cfg.interface))
        elif path.name == WPA_PSK:
            results.append(checks.check_wpa_psk(path))
        elif path.name.startswith("hostapd-"):
            results.append(checks.check_hostapd(path))
    return results


def interface_exists(name: str) -> bool:
    """In this process's network namespace (an ioctl, not /sys/class/net, which a container may not remount)."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def wait_for_interface(name: str, timeout: float, exists=interface_exists) -> bool:
    """At boot the radio's interface appears when its driver has loaded its firmware (brcmfmac: seconds),
    a bridge when systemd-networkd has made it: wait for it (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not exists(name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def main(cfg: Config, check: bool = False, ctrl_group: str | int = "sitzungsbox", wait: float = 0) -> int:
    """`sitzungsbox netconf [--check] [--wait S]`: 0 written (and checks passed), 1 a check failed, 2 not written."""
    from appliance.sessions import service
    from appliance.store import open_db

    if wait > 0 and not wait_for_interface(cfg.interface, wait):
        print(f"Fehler: Die Schnittstelle {cfg.interface} ist nach {wait:g} s nicht da – Funkmodul oder Treiber "
              "prüfen (`ip link`; Technik-Ansicht). Ohne sie kann sich niemand verbinden.", file=sys.stderr)
        return 2

    db = open_db(cfg.db_path)
    try:
        session = service.active_session(db)
        n_members = len(service.members(db, session.id)) if session else 0
        paths = write_all(cfg, db, ctrl_group)
    except (OSError, ValueError) as exc:
        print(f"Fehler: Netzkonfiguration nicht geschrieben: {exc}", file=sys.stderr)
        return 2
    finally:
        db.conn.close()
    if session:
        print(f"Netzkonfiguration für Sitzung {session.id} „{session.title}“ geschrieben: WLAN {session.ssid}, "
              f"{n_members} persönliche Schlüssel und ein Gastschlüssel, {len(cfg.radios)} Funkmodul(e).")
    else:
        print("Keine aktive Sitzung: WLAN gesperrt (niemand kann sich verbinden).")
    print(f"{len(paths)} Dateien in {cfg.netconf_dir}")
    for warning in config_warnings(cfg):
        print(f"Warnung: {warning}", file=sys.stderr)
    if not check:
        return 0
    failed = False
    for result in run_checks(cfg, paths):
        mark = "übersprungen" if result.skipped else ("in Ordnung" if result.ok else "FEHLER")
        print(f"Prüfung {result.name}: {mark} – {result.detail}")
        failed |= not result.ok and not result.skipped
    return 1 if failed else 0
