"""`sitzungsbox demo` (what `make run` starts): the whole box on embedded defaults, no root needed.

A 62-member council with six factions, a local SQLite database under ./var/demo, and a *virtual radio*:
a FakeHostapd speaking hostapd's real control protocol replays members arriving and leaving, so the
radio daemon, presence and the pages stay alive. Nothing touches the network or the firewall
(NullHelper); everything says "Demo".
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from appliance import config as config_mod
from appliance.config import Config, Radio

DEMO_CSV = Path(__file__).parent / "sessions" / "demo" / "council.csv"


def _free_port(preferred: int) -> int:
    for port in (preferred, *range(preferred + 1, preferred + 50)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(base: Config, root: Path) -> Config:
    return replace(
        base,
        demo=True,
        state_dir=root,
        run_dir=root / "run",
        hostapd_ctrl_dir=root / "hostapd",
        leases_file=root / "dnsmasq.leases",
        helper_socket=root / "run" / "helper.sock",
        web_bind="127.0.0.1",
        web_port=_free_port(8080),
        radios=(Radio(interface="wlan0"),),
    ).validate()


def prepare(cfg: Config) -> tuple[int, str | None]:
    """Fresh database with the demo session; returns (session id, clerk password or None)."""
    from appliance.netconf.render import write_all
    from appliance.sessions import roster, service
    from appliance.store import open_db
    from appliance.web import auth

    db = open_db(cfg.db_path)
    session = service.create_session(db, body="Rat der Stadt", title="12. Sitzung des Rates (Demo)",
                                     day=time.strftime("%Y-%m-%d"), venue="Kulturzentrum, Großer Saal",
                                     ssid=cfg.ssid, actor="demo")
    service.insert_members(db, session.id, roster.parse_members(DEMO_CSV.read_bytes()))
    service.set_active(db, session.id)
    password = auth.ensure_password(db)
    write_all(cfg, db)
    db.conn.close()
    return session.id, password


def technician_password(cfg: Config) -> str | None:
    """A fresh technician password for the demo's fresh database (shown once, like the clerk's); None if
    one is set already. No default password, ever."""
    from appliance.rules.login import TECHNICIAN
    from appliance.store import open_db
    from appliance.usecases import login

    db = open_db(cfg.db_path)
    try:
        return login.ensure_password(db, TECHNICIAN)
    finally:
        db.conn.close()


class Arrivals(threading.Thread):
    """Replays a session in hostapd's recorded protocol format (radio.fake.demo_replay): members arrive
    over the quarter hour before the start (some with a tablet too), a guest joins, two leave later.
    `speed` 15 plays the quarter hour in a minute. Each connected device also gets a dnsmasq-style lease,
    so the portal can be viewed as that device (`/portal?as=<ip>`, demo only)."""

    def __init__(self, cfg: Config, fake, stop: threading.Event, speed: float = 15.0):
        super().__init__(daemon=True, name="demo-arrivals")
        self.cfg, self.fake, self.stop_event, self.speed = cfg, fake, stop, speed

    def run(self) -> None:
        from appliance.sessions import service
        from appliance.store import open_db

        db = open_db(self.cfg.db_path)
        session = service.active_session(db)
        keyids = [m.keyid for m in service.members(db, session.id)] if session else []
        try:
            self._play(db, session, keyids)
        finally:
            db.conn.close()

    def _play(self, db, session, keyids: list[str]) -> None:
        from appliance.captive import admission
        from appliance.captive.identify import Device
        from appliance.helper.client import NullHelper
        from appliance.radio.events import parse_event
        from appliance.radio.fake import demo_replay
        from appliance.sessions import service

        helper = NullHelper()
        next_ip = ipaddress.IPv4Address(self.cfg.dhcp_start)
        leases: dict[str, str] = {}
        expiry = int(time.time()) + 4 * 3600
        start = time.monotonic()
        for line in demo_replay(keyids, guests=2, seed=7):
            if self.stop_event.wait(max(0.0, start + line.at / self.speed - time.monotonic())):
                return
            self.fake.replay([line], speed=0)
            event = parse_event(line.text)
            if event is not None and event.kind == "connected" and event.mac not in leases:
                leases[event.mac] = f"{expiry} {event.mac} {next_ip} * *"
                next_ip += 1
                tmp = self.cfg.leases_file.with_suffix(".tmp")
                tmp.write_text("\n".join(leases.values()) + "\n")
                os.replace(tmp, self.cfg.leases_file)
                # The member's phone shows the portal, which admits it (no firewall in the demo: NullHelper);
                # presence, attendance and the dashboard then name the member.
                member = service.member_by_keyid(db, event.keyid) if event.keyid else None
                if member is not None and session is not None:
                    device = Device(str(next_ip - 1), event.mac, "member", member, False)
                    admission.admit(db, helper, device, session)


def _wait_http(url: str, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own loopback URL
                return resp.status == 200
        except OSError:
            time.sleep(0.1)
    return False


def main(base: Config, root: Path | None = None) -> int:
    from appliance.monitor.replay import StatusFakeHostapd, start_demo_monitor
    from appliance.radio.daemon import RadioDaemon

    root = (root or Path.cwd() / "var" / "demo").resolve()
    if root.exists():
        shutil.rmtree(root)  # the demo starts fresh each time; it holds no real data
    (root / "run").mkdir(parents=True)
    (root / "hostapd").mkdir(parents=True)
    cfg = demo_config(base, root)
    session_id, password = prepare(cfg)
    tech_password = technician_password(cfg)
    cfg_file = root / "sitzungsbox.toml"
    cfg_file.write_text(config_mod.to_toml(cfg))

    # With hostapd's STATUS answer, so the technicians' dashboard shows the radio's channel.
    fake = StatusFakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=cfg.psk_file, interface="wlan0")
    if os.geteuid() == 0:
        # The web app drops to an unprivileged user; let it write the demo's state and reach the radio.
        try:
            uid, gid = pwd.getpwnam(cfg.web_user)[2:4]
        except KeyError:
            uid, gid = pwd.getpwnam("nobody")[2:4]
        for path in [root, *root.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
    stop = threading.Event()
    radio = RadioDaemon(cfg, cfg.db_path)
    radio.start()
    # Presence from the radio, leases and admissions, as the daemon runs it; no ARP probes in the demo.
    from appliance.presence.sources import PresenceDaemon
    presence = PresenceDaemon(cfg, prober=None).start()
    arrivals = Arrivals(cfg, fake, stop)
    # Its own session: Ctrl+C reaches the demo only, which then stops the web app cleanly.
    web = subprocess.Popen([sys.executable, "-m", "appliance.cli", "--config", str(cfg_file), "web"],
                           start_new_session=True)
    base_url = f"http://127.0.0.1:{cfg.web_port}"
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    monitor: threading.Thread | None = None
    try:
        if not _wait_http(f"{base_url}/healthz", web, time.monotonic() + 30):
            print("Die Web-Anwendung ist nicht gestartet – siehe Meldungen oben.", file=sys.stderr)
            return 1
        arrivals.start()
        monitor = start_demo_monitor(cfg, fake, stop)  # the technicians' dashboard (/technik)
        bar = "=" * 72
        print(f"\n{bar}\n  Sitzungsbox – DEMO (virtuelles Funkmodul, keine Firewall, kein WLAN)\n{bar}")
        print(f"  Sitzung {session_id}: 62 Ratsmitglieder in 6 Fraktionen kommen nach und nach an.")
        print(f"  Startseite:       {base_url}/")
        print(f"  Sitzungsdienst:   {base_url}/clerk")
        if password:
            print(f"  Passwort (wird nur jetzt angezeigt): {password}")
        print(f"  Technik-Ansicht:  {base_url}/technik/")
        if tech_password:
            print(f"  Technik-Passwort (nur jetzt sichtbar): {tech_password}")
        else:
            print("  Technik-Passwort setzen: sitzungsbox set-password --role techniker")
        print(f"  Daten: {root}\n  Beenden mit Strg+C.\n{bar}\n", flush=True)
        # The daemon's housekeeping tick: a vote's countdown closes it even when no page asks (no retention:
        # the demo's data is fresh each start).
        from appliance.daemon import Housekeeping
        house = Housekeeping(cfg, retention=False)
        while not stop.is_set() and web.poll() is None:
            house.tick()
            stop.wait(0.5)
        house.close()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        web.terminate()
        try:
            web.wait(10)
        except subprocess.TimeoutExpired:
            web.kill()
        presence.stop()
        radio.stop()
        if monitor is not None:
            monitor.join(5)  # `stop` is set: it ends after its current sample
        fake.close()
    return 0
