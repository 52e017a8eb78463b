"""Our client and daemon against a real hostapd 2.10 (driver=wired, 802.1X) in namespaces sbxb-*."""

from __future__ import annotations

import os
import subprocess
import time

from appliance.config import Config, Radio
from appliance.radio.ctrl import HostapdCtrl
from appliance.radio.daemon import RadioDaemon
from appliance.store import open_db
from tests.conftest import need_binary, need_root
from tests.venue.wired_lab import AP_IF, STA_MAC, WiredLab


def wait_event(ctrl: HostapdCtrl, name: str, timeout: float):
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        ev = ctrl.next_event(left)
        if ev is not None and ev.name == name:
            return ev
    return None


def test_real_hostapd_connect_listing_ping_deauth_and_daemon(tmp_path):
    need_root()
    need_binary("hostapd", "wpa_supplicant", "ip")
    lab = WiredLab(prefix=f"sbxb-{os.getpid()}", workdir=tmp_path / "lab")
    hostapd = None
    try:
        lab.start()
        hostapd = lab.hostapd
        with HostapdCtrl(lab.ctrl_path, local_dir=tmp_path, timeout=2.0) as ctrl:
            assert ctrl.ping()
            ctrl.attach()
            assert ctrl.stations() == []
            lab.start_supplicant()
            ev = wait_event(ctrl, "AP-STA-CONNECTED", 10)
            assert ev is not None and (ev.kind, ev.mac, ev.keyid, ev.level) == ("connected", STA_MAC, None, 3)
            stas = ctrl.stations()
            assert [s.mac for s in stas] == [STA_MAC] and "AUTHORIZED" in stas[0].flags
            assert ctrl.ping()
            # DEAUTHENTICATE: hostapd sends the event before OK; both must come through
            ctrl.deauthenticate(STA_MAC)
            assert wait_event(ctrl, "AP-STA-DISCONNECTED", 2) is not None
            # real quirk: the entry lingers with empty flags and timeout_next=REMOVE
            assert not any(s.authorized for s in ctrl.stations())

        # The daemon on the same real socket: a fresh authentication lands in the stations table.
        cfg = Config(state_dir=tmp_path / "state", run_dir=tmp_path / "run", hostapd_ctrl_dir=lab.ctrl_dir,
                     radios=(Radio(interface=AP_IF, driver="wired"),)).validate()
        db = open_db(cfg.db_path)
        daemon = RadioDaemon(cfg, cfg.db_path, ping_interval=0.5).start()
        try:
            assert daemon.wait_until(lambda d: d.syncs >= 1, timeout=3)
            lab.stop_supplicant()  # a wired peer never hears the deauth: start it again
            lab.start_supplicant()
            assert daemon.wait_until(lambda d: d.events_processed >= 1, timeout=10)
            row = db["stations"].get(STA_MAC)
            assert (row["interface"], row["connected"], row["keyid"]) == (AP_IF, 1, None)
        finally:
            daemon.stop()
            db.conn.close()
    finally:
        lab.close()
    assert hostapd is not None and hostapd.poll() is not None
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    assert lab.ap_ns not in names and lab.sta_ns not in names
