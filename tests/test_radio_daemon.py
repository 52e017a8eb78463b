"""RadioDaemon and reload_keys against FakeHostapd, writing the real SQLite store."""

from __future__ import annotations

from dataclasses import replace

import pytest

from appliance.config import Radio
from appliance.radio.control import RadiosUnreachable, reload_keys
from appliance.radio.daemon import RadioDaemon
from appliance.radio.fake import FakeHostapd


def rows(db, **where):
    return {r["mac"]: r for r in db["stations"].rows_where(
        " AND ".join(f"{k} = ?" for k in where) or None, list(where.values()) or None)}


@pytest.fixture
def psk(tmp_path):
    p = tmp_path / "wpa_psk"
    p.write_text("keyid=ka 00:00:00:00:00:00 aaaaaaaa\nkeyid=kb 00:00:00:00:00:00 bbbbbbbb\n")
    return p


@pytest.fixture
def fake(cfg, psk):
    f = FakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=psk)
    yield f
    f.close()


def start(cfg, **kw) -> RadioDaemon:
    return RadioDaemon(cfg, cfg.db_path, ping_interval=0.2, backoff=(0.05, 0.2), **kw).start()


def test_connect_events_reach_the_db_with_keyid(cfg, db, fake):
    d = start(cfg)
    try:
        assert d.wait_until(lambda d: d.attached["wlan0"])
        fake.connect("02:00:00:00:00:01", "ka")
        fake.connect("02:00:00:00:00:02", None)
        assert d.wait_until(lambda d: d.events_processed >= 2)
        r = rows(db)
        assert r["02:00:00:00:00:01"]["keyid"] == "ka" and r["02:00:00:00:00:01"]["connected"] == 1
        assert r["02:00:00:00:00:01"]["interface"] == "wlan0" and r["02:00:00:00:00:01"]["connected_at"]
        assert r["02:00:00:00:00:02"]["keyid"] is None
        fake.disconnect("02:00:00:00:00:01")
        assert d.wait_until(lambda d: d.events_processed >= 3)
        r = rows(db)
        assert r["02:00:00:00:00:01"]["connected"] == 0 and r["02:00:00:00:00:01"]["disconnected_at"]
    finally:
        d.stop()


def test_sync_on_attach_picks_up_and_retires_stations(cfg, db, fake):
    # left over from a previous run: connected in the table, but hostapd no longer knows it
    db["stations"].insert({"mac": "02:00:00:00:00:99", "interface": "wlan0", "keyid": "ka", "connected": 1,
                           "connected_at": "2020-01-01T00:00:00.000000Z"})
    fake.connect("02:00:00:00:00:01", "ka", connected_time=3600)
    fake.connect("02:00:00:00:00:02", "kb", flags="[AUTH][ASSOC]")  # still in the handshake
    d = start(cfg)
    try:
        assert d.wait_until(lambda d: d.syncs >= 1)
        r = rows(db)
        assert r["02:00:00:00:00:01"]["connected"] == 1 and r["02:00:00:00:00:01"]["keyid"] == "ka"
        assert "02:00:00:00:00:02" not in r  # not AUTHORIZED: not on the network yet
        assert r["02:00:00:00:00:99"]["connected"] == 0 and r["02:00:00:00:00:99"]["disconnected_at"]
    finally:
        d.stop()


def test_daemon_reattaches_after_hostapd_restart(cfg, db, fake, psk):
    d = start(cfg)
    try:
        assert d.wait_until(lambda d: d.syncs >= 1)
        fake.close()
        assert d.wait_until(lambda d: not d.attached["wlan0"])
        # a station joined while we were away and the new hostapd knows it
        fake2 = FakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=psk)
        try:
            fake2.connect("02:00:00:00:00:05", "kb")
            assert d.wait_until(lambda d: d.syncs >= 2 and d.attached["wlan0"])
            assert rows(db)["02:00:00:00:00:05"]["connected"] == 1
            fake2.connect("02:00:00:00:00:06", "ka")
            assert d.wait_until(lambda d: d.events_processed >= 1)
            assert rows(db)["02:00:00:00:00:06"]["keyid"] == "ka"
        finally:
            fake2.close()
    finally:
        d.stop()


def test_daemon_waits_for_a_missing_socket(cfg, db, psk):
    d = start(cfg)
    try:
        assert not d.wait_until(lambda d: d.attached["wlan0"], timeout=0.3)
        f = FakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=psk)
        try:
            assert d.wait_until(lambda d: d.attached["wlan0"])
        finally:
            f.close()
    finally:
        d.stop()


def test_reload_keys_drops_revoked_stations(cfg, db, fake, psk):
    d = start(cfg)
    try:
        assert d.wait_until(lambda d: d.attached["wlan0"])
        fake.connect("02:00:00:00:00:01", "ka")
        fake.connect("02:00:00:00:00:02", "kb")
        fake.connect("02:00:00:00:00:03", "kb")
        assert d.wait_until(lambda d: d.events_processed >= 3)
        psk.write_text("keyid=ka 00:00:00:00:00:00 aaaaaaaa\nkeyid=kc 00:00:00:00:00:00 cccccccc\n")
        dropped = reload_keys(cfg, db, {"kb"})
        assert dropped == ["02:00:00:00:00:02", "02:00:00:00:00:03"]
        assert d.wait_until(lambda d: d.events_processed >= 5)
        assert {m: r["connected"] for m, r in rows(db).items()} == {
            "02:00:00:00:00:01": 1, "02:00:00:00:00:02": 0, "02:00:00:00:00:03": 0}
        assert "RELOAD_WPA_PSK" in fake.commands_received
        assert "DEAUTHENTICATE 02:00:00:00:00:02" in fake.commands_received
    finally:
        d.stop()


def test_reload_keys_reloads_the_others_then_reports_an_unreachable_radio(cfg, db, fake, caplog):
    cfg2 = replace(cfg, radios=(Radio(interface="wlan1"), Radio(interface="wlan0")))
    db["stations"].insert({"mac": "02:00:00:00:00:07", "interface": "wlan0", "keyid": "kx", "connected": 1})
    fake.connect("02:00:00:00:00:07", "kx")
    with pytest.raises(RadiosUnreachable) as err:
        reload_keys(cfg2, db, ["kx"], timeout=0.5)
    assert err.value.interfaces == ["wlan1"] and err.value.dropped == ["02:00:00:00:00:07"]
    assert "wlan1" in caplog.text
    assert fake.stations == {}


def test_two_radios_are_tracked_separately(cfg, db, psk):
    cfg2 = replace(cfg, radios=(Radio(interface="wlan0"), Radio(interface="wlan1", hw_mode="a", channel=36)))
    f0 = FakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=psk)
    f1 = FakeHostapd(cfg.hostapd_ctrl_dir / "wlan1", psk_file=psk)
    d = RadioDaemon(cfg2, cfg.db_path, ping_interval=0.2, backoff=(0.05, 0.2)).start()
    try:
        assert d.wait_until(lambda d: all(d.attached.values()))
        f0.connect("02:00:00:00:00:01", "ka")
        assert d.wait_until(lambda d: d.events_processed >= 1)
        # the phone roams to the 5 GHz radio; the 2.4 GHz disconnect arrives late
        f1.connect("02:00:00:00:00:01", "ka")
        assert d.wait_until(lambda d: d.events_processed >= 2)
        f0.disconnect("02:00:00:00:00:01")
        assert d.wait_until(lambda d: d.events_processed >= 3)
        r = rows(db)["02:00:00:00:00:01"]
        assert (r["interface"], r["connected"]) == ("wlan1", 1)
    finally:
        d.stop()
        f0.close()
        f1.close()
