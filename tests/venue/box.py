"""The whole appliance inside a virtual venue, and `running_box`: the one setup every venue user shares.

`running_box` is what the venue tests (through the `venue_factory` fixture in tests/conftest.py), bench/ and
`make venue` (python -m tests.venue) start: a throwaway state directory, a Config for it, an active session
with members, the venue's namespaces and every part of the box; and whatever happens, it tears all of that
down again (processes by PID, namespaces, files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config
from tests.venue.net import Venue, VenueError


@dataclass
class Box:
    """The real appliance running in a venue's box namespace: rendered dnsmasq + nftables, the helper (root),
    the daemon and the web app (unprivileged), and a FakeHostapd replaying hostapd protocol as the radio
    (None with radios = (): external access points)."""

    venue: Venue
    cfg: Config
    fakes: list  # one FakeHostapd per radio of cfg.radios
    procs: dict[str, subprocess.Popen]
    session_id: int = 0  # the active session running_box made
    seeded: object = None  # what running_box's seed() returned

    @property
    def fake(self):
        """The first radio (the only one in most venues)."""
        return self.fakes[0] if self.fakes else None

    def db(self):
        from appliance.store import open_db

        return open_db(self.cfg.db_path, migrate=False)

    def wait_station(self, mac: str, keyid: str | None, connected: bool = True, timeout: float = 10) -> None:
        """Poll until the daemon has recorded what the radio reported."""
        deadline = time.monotonic() + timeout
        while True:
            db = self.db()
            try:
                row = db.execute("SELECT keyid, connected FROM stations WHERE mac = ?", [mac]).fetchone()
            finally:
                db.conn.close()
            if row is not None and bool(row[1]) == connected and (not connected or row[0] == keyid):
                return
            if time.monotonic() > deadline:
                raise VenueError(f"Station {mac} nach {timeout} s nicht im Zustand connected={connected}: {row}")
            time.sleep(0.02)

    def close(self) -> None:
        for f in self.fakes:
            f.close()


def chown_tree(path: Path, uid: int, gid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)


def start_appliance(venue: Venue, timeout: float = 30, daemon_caps: tuple[str, ...] = (),
                    monitor: bool = False) -> Box:
    """Render the active session's network files and start every part of the box, as on the device.

    daemon_caps: ambient capabilities of the daemon, as its unit grants them (e.g. net_raw for ARP probes).
    monitor: also run `sitzungsbox monitor` (technicians' dashboard), unprivileged, in the box namespace.

    The caller prepares cfg (tmp state dirs, web_user) and the database with an active session; running_box
    does both.
    """
    from appliance.netconf.render import DNSMASQ, NFTABLES, write_all
    from appliance.radio.fake import FakeHostapd
    from appliance.store import open_db

    cfg = venue.cfg
    pw = pwd.getpwnam(cfg.web_user)
    db = open_db(cfg.db_path)
    try:
        write_all(cfg, db, ctrl_group=0)
    finally:
        db.conn.close()
    venue.load_nft((cfg.netconf_dir / NFTABLES).read_text())
    procs = {"dnsmasq": venue.start_dnsmasq((cfg.netconf_dir / DNSMASQ).read_text())}
    cfg.hostapd_ctrl_dir.mkdir(parents=True, exist_ok=True)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    fakes = [FakeHostapd(cfg.hostapd_ctrl_dir / r.interface, psk_file=cfg.psk_file) for r in cfg.radios]
    try:
        for r in cfg.radios:
            # hostapd's ctrl_interface_group does this on the box; here the socket is the fake's.
            os.chown(cfg.hostapd_ctrl_dir / r.interface, pw.pw_uid, pw.pw_gid)
        # The unprivileged processes own the state (database, keys) and their runtime dir, as tmpfiles.d does.
        chown_tree(cfg.state_dir, pw.pw_uid, pw.pw_gid)
        os.chown(cfg.netconf_dir, 0, pw.pw_gid)
        chown_tree(cfg.run_dir, pw.pw_uid, pw.pw_gid)
        procs["helper"] = venue.start_helper()
        toml = str(venue.write_config())
        cli = [sys.executable, "-m", "appliance.cli", "--config", toml]
        procs["daemon"] = venue.run_in_box([*cli, "daemon"], user=cfg.web_user, name="daemon", caps=daemon_caps)
        # Started as root on purpose: the web app must drop its privileges by itself.
        procs["web"] = venue.run_in_box([*cli, "web"], name="web")
        venue.wait_listening(cfg.web_port, timeout=timeout, proc=procs["web"])
        if monitor:
            # As its unit runs it: the web user, no capabilities; /proc/net is the box namespace's.
            procs["monitor"] = venue.run_in_box([*cli, "monitor"], user=cfg.web_user, name="monitor")
        deadline = time.monotonic() + timeout
        # Without radios (external APs) there is nothing to attach to: the daemon just has to stay up.
        while not all("ATTACH" in f.commands_received for f in fakes):
            if procs["daemon"].poll() is not None or time.monotonic() > deadline:
                raise VenueError(f"Dienst hat sich nicht am Funkmodul angemeldet: {venue._log_tail('daemon')}")
            time.sleep(0.02)
        if procs["daemon"].poll() is not None:
            raise VenueError(f"Dienst beendet: {venue._log_tail('daemon')}")
    except BaseException:
        for f in fakes:
            f.close()
        raise
    return Box(venue, cfg, fakes, procs)


def venue_config(work: Path, base: Config | None = None, **changes) -> Config:
    """A Config whose state, runtime dirs, lease file and radio sockets all lie under `work`."""
    dirs = {"state_dir": work / "state", "run_dir": work / "run", "helper_socket": work / "run" / "helper.sock",
            "leases_file": work / "state" / "dnsmasq.leases", "hostapd_ctrl_dir": work / "hostapd"}
    return dataclasses.replace(base or Config(), **{**dirs, **changes}).validate()


@contextlib.contextmanager
def running_box(prefix: str, n_clients: int, *, members: str | bytes = "", title: str = "Sitzung im Saal",
                day: str = "2026-12-01", seed: Callable | None = None,
                before_start: Callable[[Venue], None] | None = None, links_up: bool = True,
                random_macs: bool = False, daemon_caps: tuple[str, ...] = (), monitor: bool = False,
                base: Config | None = None, keep: bool = False, **cfg_changes) -> Iterator[Box]:
    """The whole appliance in a fresh venue of n_clients; torn down however the block ends.

    prefix: the venue's namespace prefix (<prefix>box, <prefix>c1 …); every user picks its own, so two of them
    never touch each other's namespaces. members: the roster (CSV) of the active session `title`.
    seed(db, session_id, cfg): anything else a test needs in the database before the box starts (passwords,
    documents); its result is box.seeded. before_start(venue): after the namespaces exist, before the box
    starts (e.g. an uplink). cfg_changes: Config fields on top of `base` (default: Config()); web_user
    defaults to nobody. keep: leave the work directory (logs, database) for a post-mortem.
    """
    from appliance.sessions import roster, service
    from appliance.store import open_db

    # Not pytest's tmp_path: that is root-only (0700), and the web app and daemon run as nobody.
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-venue-"))
    try:
        work.chmod(0o755)
        cfg = venue_config(work, base, **{"web_user": "nobody", **cfg_changes})
        db = open_db(cfg.db_path)
        try:
            session = service.create_session(db, body="Rat der Stadt", title=title, day=day, ssid=cfg.ssid,
                                             actor="venue")
            if members:
                service.insert_members(db, session.id, roster.parse_members(members))
            service.set_active(db, session.id)
            seeded = seed(db, session.id, cfg) if seed is not None else None
        finally:
            db.conn.close()
        with Venue(work / "v", n_clients, prefix=prefix, cfg=cfg, links_up=links_up,
                   random_macs=random_macs) as venue:
            if before_start is not None:
                before_start(venue)
            box = start_appliance(venue, daemon_caps=daemon_caps, monitor=monitor)
            box.session_id, box.seeded = session.id, seeded
            try:
                yield box
            finally:
                box.close()
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
