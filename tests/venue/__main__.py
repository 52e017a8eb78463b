"""`make venue` (root): the whole appliance with 3 client namespaces until Ctrl-C.

    python -m tests.venue [--config FILE]     (from the checkout, as root)

The demo council is loaded; client 1 joins with the first member's personal key (as hostapd would report it),
client 2 with the guest key, client 3 stays unknown. Everything else is real.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from appliance import config as config_mod
from tests.venue.box import running_box
from tests.venue.net import VenueError

PREFIX = "sbx"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.venue",
                                description="virtueller Sitzungssaal in Netzwerk-Namespaces (root)")
    p.add_argument("--config", type=Path, help="Konfigurationsdatei (Standard wie bei `sitzungsbox`)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("Der virtuelle Sitzungssaal braucht root (Netzwerk-Namespaces).", file=sys.stderr)
        return 1
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"Konfigurationsfehler: {exc}", file=sys.stderr)
        return 2
    from appliance.demo import DEMO_CSV
    from appliance.sessions import service
    from appliance.web import auth

    def seed(db, session_id, _cfg):
        return auth.ensure_password(db), service.members(db, session_id)[0]

    # Handlers, not a blocked signal mask: a mask would be inherited by every process the venue starts,
    # and gunicorn would then never see the SIGTERM that stops it.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with running_box(PREFIX, 3, members=DEMO_CSV.read_bytes(), title="Virtueller Sitzungssaal",
                         day=time.strftime("%Y-%m-%d"), seed=seed, base=cfg, demo=False,
                         web_user=cfg.web_user if _user_exists(cfg.web_user) else "nobody") as box:
            venue, vcfg = box.venue, box.cfg
            password, first = box.seeded
            if box.fake is not None:
                box.fake.connect(venue.client_mac(1), first.keyid)
                box.fake.connect(venue.client_mac(2), "guest")
            for i in venue.indices:
                lease = venue.dhcp(i)
                print(f"  {venue.client_ns(i)}: {venue.client_mac(i)} → {lease.ip} (DNS {', '.join(lease.dns)})")
            c1, c3 = venue.client_ns(1), venue.client_ns(3)
            print(f"""
Virtueller Sitzungssaal läuft (Arbeitsverzeichnis {venue.workdir.parent}).
  {c1} ist mit dem Schlüssel von {first.name} verbunden, {venue.client_ns(2)} mit dem Gastschlüssel.
  Portal:    ip netns exec {c1} curl -s http://{vcfg.address}/portal        (begrüßt {first.name})
  Probe:     ip netns exec {c1} curl -i http://captive.apple.com/hotspot-detect.html
             ip netns exec {c3} curl -i http://connectivitycheck.gstatic.com/generate_204   (gefangen: 302)
  DNS:       ip netns exec {c3} busybox nslookup {vcfg.hostname}
  Freigaben: ip netns exec {venue.box_ns} nft list set inet {vcfg.nft_table} admitted
  Sitzungsdienst: http://{vcfg.address}/clerk  Passwort (nur jetzt sichtbar): {password}
Beenden mit Strg-C.""", flush=True)
            stop.wait()
            print("Baue ab …", flush=True)
        return 0
    except (VenueError, OSError, subprocess.SubprocessError) as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
