"""HostapdCtrl against FakeHostapd: both ends on real Unix datagram sockets."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.radio.ctrl import HostapdCtrl, RadioError
from appliance.radio.events import parse_event, parse_recording
from appliance.radio.fake import FakeHostapd, demo_replay
from tests.conftest import need_binary

REC = Path(__file__).resolve().parent.parent / "appliance" / "radio" / "recordings"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sock_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hostapd"
    d.mkdir()
    return d


@pytest.fixture
def fake(sock_dir: Path):
    psk = sock_dir.parent / "wpa_psk"
    psk.write_text("keyid=ka 00:00:00:00:00:00 passphrase-a\nkeyid=kb 00:00:00:00:00:00 passphrase-b\n"
                   "keyid=guest 00:00:00:00:00:00 guestpass\n")
    f = FakeHostapd(sock_dir / "wlan0", psk_file=psk)
    yield f
    f.close()


def client(fake: FakeHostapd, tmp_path: Path, **kw) -> HostapdCtrl:
    return HostapdCtrl(fake.socket_path, local_dir=tmp_path / "cli", **kw)


def test_ping_attach_and_connect_event(fake, tmp_path):
    with client(fake, tmp_path) as ctrl:
        assert ctrl.ping()
        ctrl.attach()
        fake.connect("02:00:00:00:00:0A", "ka")
        ev = ctrl.next_event(timeout=2)
        assert (ev.kind, ev.mac, ev.keyid) == ("connected", "02:00:00:00:00:0a", "ka")
        fake.disconnect("02:00:00:00:00:0a")
        assert ctrl.next_event(timeout=2).kind == "disconnected"
    assert fake.commands_received[:2] == ["PING", "ATTACH"]


def test_events_only_reach_attached_clients(fake, tmp_path):
    with client(fake, tmp_path) as quiet, client(fake, tmp_path) as listener:
        listener.attach()
        fake.connect("02:00:00:00:00:0b", "kb")
        assert listener.next_event(timeout=2).mac == "02:00:00:00:00:0b"
        assert quiet.next_event(timeout=0.2) is None
        listener.detach()
        fake.disconnect("02:00:00:00:00:0b")
        assert listener.next_event(timeout=0.2) is None


def test_stations_iterates_sta_first_next(fake, tmp_path):
    with client(fake, tmp_path) as ctrl:
        assert ctrl.stations() == []
        fake.connect("02:00:00:00:00:01", "ka", signal=0)
        fake.connect("02:00:00:00:00:02", "kb", signal=-61, rx_rate_info="1300 mcs 15")
        fake.connect("02:00:00:00:00:03", None)
        stas = ctrl.stations()
        assert [(s.mac, s.keyid) for s in stas] == [
            ("02:00:00:00:00:01", "ka"), ("02:00:00:00:00:02", "kb"), ("02:00:00:00:00:03", None)]
        assert stas[0].signal is None and stas[1].signal == -61 and stas[1].rx_rate_kbps == 130_000
        assert all(s.authorized for s in stas)
        assert ctrl.station("02:00:00:00:00:02").keyid == "kb"
        assert ctrl.station("02:00:00:00:00:99") is None  # FAIL
    nexts = [c for c in fake.commands_received if c.startswith("STA-NEXT")]
    assert nexts[-3:] == [f"STA-NEXT 02:00:00:00:00:0{i}" for i in (1, 2, 3)]


def test_reload_drops_revoked_keyids_and_keeps_the_event(fake, tmp_path):
    fake.connect("02:00:00:00:00:01", "ka")
    fake.connect("02:00:00:00:00:02", "kb")
    fake.connect("02:00:00:00:00:03", "guest")
    fake.psk_file.write_text("keyid=ka 00:00:00:00:00:00 passphrase-a\nkeyid=guest 00:00:00:00:00:00 g2\n")
    with client(fake, tmp_path) as ctrl:
        ctrl.attach()
        ctrl.reload_wpa_psk()  # the fake, like hostapd, sends the DISCONNECTED event before OK
        ev = ctrl.next_event(timeout=0)  # already queued while waiting for the OK
        assert (ev.kind, ev.mac) == ("disconnected", "02:00:00:00:00:02")
        assert [s.mac for s in ctrl.stations()] == ["02:00:00:00:00:01", "02:00:00:00:00:03"]


def test_deauthenticate_validates_before_sending(fake, tmp_path):
    fake.connect("02:00:00:00:00:01", "ka")
    with client(fake, tmp_path) as ctrl:
        ctrl.attach()
        with pytest.raises(RadioError, match="ungültige MAC"):
            ctrl.deauthenticate("02:00:00:00:00:01 ; PING")
        assert not any(c.startswith("DEAUTH") for c in fake.commands_received)
        ctrl.deauthenticate("02:00:00:00:00:01")
        assert ctrl.next_event(timeout=2).kind == "disconnected"
        assert ctrl.stations() == []
        ctrl.deauthenticate("02:00:00:00:00:42")  # unknown MAC: OK, as real hostapd answers


def test_events_interleaved_with_replies_are_not_lost(fake, tmp_path):
    with client(fake, tmp_path) as ctrl:
        ctrl.attach()
        for i in range(1, 6):
            fake.connect(f"02:00:00:00:00:{i:02x}", "ka")
            assert ctrl.ping()  # the event lands before PONG and must not be taken as the reply
        assert len(ctrl.stations()) == 5
        got = []
        while (ev := ctrl.next_event(timeout=0.5)) is not None:
            got.append(ev.mac)
        assert got == [f"02:00:00:00:00:{i:02x}" for i in range(1, 6)]


def test_fail_and_unknown_command(fake, tmp_path):
    with client(fake, tmp_path) as ctrl:
        with pytest.raises(RadioError, match="DETACH abgelehnt: FAIL"):
            ctrl.detach()  # not attached
        assert ctrl.command("BOGUS") == "UNKNOWN COMMAND\n"


def test_timeout_and_missing_socket_give_radio_error(tmp_path):
    with pytest.raises(RadioError, match="fehlt"):
        HostapdCtrl(tmp_path / "nope", timeout=0.2).open()
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never answers
    mute.bind(str(tmp_path / "mute"))
    try:
        with HostapdCtrl(tmp_path / "mute", timeout=0.2) as ctrl:
            with pytest.raises(RadioError, match="keine Antwort auf PING"):
                ctrl.command("PING")
            assert ctrl.ping() is False
    finally:
        mute.close()


def test_dead_hostapd_gives_radio_error(fake, tmp_path):
    ctrl = client(fake, tmp_path, timeout=0.3).open()
    try:
        assert ctrl.ping()
        fake.close()
        assert ctrl.ping() is False
    finally:
        ctrl.close()


def test_local_socket_unlinked_on_close(fake, tmp_path):
    with client(fake, tmp_path) as ctrl:
        ctrl.attach()
        local = ctrl._local
        assert local is not None and local.exists()
    assert not local.exists()
    deadline = time.monotonic() + 2  # close() sends DETACH without waiting for the answer
    while fake.commands_received[-1] != "DETACH" and time.monotonic() < deadline:
        select.select([], [], [], 0.01)
    assert fake.commands_received[-1] == "DETACH"


def test_long_local_dir_falls_back_to_tmp(fake, tmp_path):
    with HostapdCtrl(fake.socket_path, local_dir=tmp_path / ("x" * 120)) as ctrl:
        assert ctrl.ping()


def test_replay_of_real_recording_reaches_client_in_order(fake, tmp_path):
    recorded = [x.text for x in parse_recording((REC / "wired-8021x.txt").read_text()) if x.direction == "EVENT"]
    with client(fake, tmp_path) as ctrl:
        ctrl.attach()
        assert fake.replay(REC / "wired-8021x.txt", speed=0) == len(recorded)
        got = []
        while (ev := ctrl.next_event(timeout=0.5)) is not None:
            got.append(ev.raw)
        assert got == recorded
        assert ctrl.stations() == []  # the recording ends with the station gone


def test_replay_keyid_session_builds_station_table(fake, tmp_path):
    fake.replay(REC / "keyid-session.txt", speed=0)
    with client(fake, tmp_path) as ctrl:
        stas = {s.mac: s for s in ctrl.stations()}
    assert set(stas) == {"02:00:00:00:00:0c", "ce:44:19:02:b7:3a"}
    assert stas["ce:44:19:02:b7:3a"].keyid == "guest" and stas["ce:44:19:02:b7:3a"].signal == -80
    assert stas["02:00:00:00:00:0c"].keyid is None


def test_demo_replay_is_plausible_and_deterministic():
    keyids = [f"m{i:03d}" for i in range(62)]
    lines = list(demo_replay(keyids, macs={"m000": "02:00:00:00:00:aa"}, guests=2, leavers=3, seed=7))
    assert lines == list(demo_replay(keyids, macs={"m000": "02:00:00:00:00:aa"}, guests=2, leavers=3, seed=7))
    assert [x.at for x in lines] == sorted(x.at for x in lines)
    evs = [parse_event(x.text) for x in lines]
    connected = [e for e in evs if e.kind == "connected"]
    assert {e.keyid for e in connected} == set(keyids) | {"guest"}
    assert sum(e.keyid == "guest" for e in connected) == 2
    assert any(e.mac == "02:00:00:00:00:aa" and e.keyid == "m000" for e in connected)
    left = [e for e in evs if e.kind == "disconnected"]
    assert len(left) == 3
    first_seen = {e.mac: n for n, e in reversed(list(enumerate(evs))) if e.kind == "connected"}
    assert all(first_seen[e.mac] < evs.index(e) for e in left)
    assert max(x.at for x in lines if "AP-STA-CONNECTED" in x.text) <= 900 + 120


def test_fake_main_runs_until_sigterm(tmp_path):
    path = tmp_path / "hostapd" / "wlan0"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from appliance.radio.fake import main; "
         f"sys.exit(main(__import__('pathlib').Path({str(path)!r}), replay=__import__('pathlib').Path("
         f"{str(REC / 'keyid-session.txt')!r}), speed=0))"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == f"virtuelles Funkmodul (Demo) auf {path}"
        with HostapdCtrl(path, local_dir=tmp_path) as ctrl:
            assert ctrl.ping()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_real_hostapd_cli_understands_the_fake(fake):
    """Debian's own hostapd_cli (wpa_ctrl.c) as a client: the fake must satisfy it as hostapd does."""
    need_binary("hostapd_cli")
    fake.connect("02:00:00:00:00:01", "ka")
    fake.connect("02:00:00:00:00:02", "kb")
    base = ["hostapd_cli", "-p", str(fake.socket_path.parent), "-i", fake.socket_path.name]
    assert subprocess.run([*base, "ping"], capture_output=True, text=True, timeout=5).stdout.strip() == "PONG"
    out = subprocess.run([*base, "all_sta"], capture_output=True, text=True, timeout=5).stdout
    assert "02:00:00:00:00:01" in out and "keyid=ka" in out and "keyid=kb" in out
    assert subprocess.run([*base, "deauthenticate", "02:00:00:00:00:02"], capture_output=True, text=True,
                          timeout=5).stdout.strip() == "OK"
    assert list(fake.stations) == ["02:00:00:00:00:01"]
