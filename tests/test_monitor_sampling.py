"""How the monitor samples stations (issue 15): one `iw station dump` per radio per tick carries every station's
counters, hostapd's control socket is asked only for what it alone knows (keyid, AUTHORIZED) and only when
something changed. The radio is a FakeHostapd on a real Unix datagram socket, `iw` an IwReplay; both count
what they were asked, so the round trips per tick are counted, not guessed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from appliance.config import Radio
from appliance.monitor import collector as collector_mod
from appliance.monitor.collector import Collector
from appliance.monitor.replay import IwReplay, StatusFakeHostapd, populate
from appliance.monitor.system import SystemReader
from tests.test_monitor_daemon import FIX, Clock

NEW = "02:5b:00:99:00:01"


class Radio1:
    """One radio with n stations (keyids k0001...), a Collector on it and a clock the test moves."""

    def __init__(self, cfg, n: int, runner=None) -> None:
        self.cfg = replace(cfg, radios=(Radio(interface="wlan0", max_stations=max(n, 10) + 10),)).validate()
        self.fake = StatusFakeHostapd(self.cfg.hostapd_ctrl_dir / "wlan0", interface="wlan0")
        self.iw = IwReplay("wlan0")
        self.macs = populate(self.fake, self.iw, n, keyids=[f"k{i:04d}" for i in range(n)])
        self.clock = Clock()
        self.collector = Collector(self.cfg, runner=runner or self.iw, clock=self.clock,
                                   system=SystemReader(proc=FIX / "proc", sys=FIX / "sys", vcgencmd=None))

    def tick(self) -> dict:
        snap = self.collector.sample()
        self.clock.now += 1
        return snap

    def round_trips(self, ticks: int) -> tuple[list[str], list[list[str]]]:
        """(control-socket commands, subprocesses) of the next `ticks` ticks."""
        c0, i0 = len(self.fake.commands_received), len(self.iw.calls)
        for _ in range(ticks):
            self.tick()
        return self.fake.commands_received[c0:], self.iw.calls[i0:]

    def clients(self, snap: dict) -> dict[str, dict]:
        return {c["mac"]: c for c in snap["clients"]}

    def close(self) -> None:
        self.collector.close()
        self.fake.close()


@pytest.fixture
def radio(cfg):
    made: list[Radio1] = []

    def make(n: int, runner=None) -> Radio1:
        made.append(Radio1(cfg, n, runner))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_round_trips_per_tick_do_not_grow_with_the_stations(radio):
    per_tick = {}
    for n in (30, 300):
        r = radio(n)
        first_cmds, _ = r.round_trips(1)  # attach, then the whole table once: hostapd's keyids
        assert sum(c.startswith("STA-") for c in first_cmds) == n + 1  # STA-FIRST + n x STA-NEXT (the last: empty)
        assert len(r.clients(r.tick())) == n
        cmds, calls = r.round_trips(10)
        per_tick[n] = (len(cmds) / 10, len(calls) / 10)
        assert set(cmds) == {"STATUS"}  # no STA-FIRST/STA-NEXT while nothing changes
        assert {tuple(c[-2:]) for c in calls} == {("station", "dump"), ("survey", "dump")}
    assert per_tick[30] == per_tick[300] == (1.0, 2.0)


def test_a_joining_station_shows_up_with_its_keyid_in_the_next_tick(radio):
    r = radio(30)
    r.tick()
    r.tick()
    r.fake.connect(NEW, "member-7")  # AP-STA-CONNECTED ... keyid=member-7
    r.iw.add(NEW, -55)
    snap = r.tick()
    assert r.clients(snap)[NEW]["keyid"] == "member-7"
    assert snap["radios"][0]["clients"] == 31
    cmds, _ = r.round_trips(3)
    assert set(cmds) == {"STATUS"}  # the event said it all: no STA round trip for the new station


def test_a_station_whose_event_was_lost_is_asked_for_once(radio):
    r = radio(30)
    r.tick()
    r.fake.connect(NEW, "member-8", announce=False)  # hostapd dropped the event (full socket buffer)
    r.iw.add(NEW, -60)
    c0 = len(r.fake.commands_received)
    snap = r.tick()
    assert r.clients(snap)[NEW]["keyid"] == "member-8"  # the same tick: the dump showed an unknown station
    assert [c for c in r.fake.commands_received[c0:] if c != "STATUS"] == [f"STA {NEW}"]
    cmds, _ = r.round_trips(3)
    assert set(cmds) == {"STATUS"}


def test_mid_handshake_is_no_client_until_hostapd_authorizes_it(radio):
    r = radio(3)
    r.tick()
    # associated, 4-way handshake not done: hostapd's flags lack AUTHORIZED, the kernel says `authorized: no`
    r.fake.connect(NEW, None, announce=False, flags="[AUTH][ASSOC]")
    r.iw.add(NEW, -60, authorized=False)
    assert NEW not in r.clients(r.tick())
    cmds, _ = r.round_trips(8)
    assert set(cmds) == {"STATUS"}  # asked once (above), not again while the kernel agrees it is not authorized
    r.iw.stations[NEW].authorized = True
    r.fake.connect(NEW, "member-9")  # the handshake completes: AP-STA-CONNECTED ... keyid=member-9
    assert r.clients(r.tick())[NEW]["keyid"] == "member-9"


def test_the_safety_net_walks_the_table_every_minute(radio):
    r = radio(30)
    r.tick()
    # a keyid hostapd changed without any event the monitor saw (e.g. a monitor detached by hostapd)
    r.fake.connect(r.macs[5], "renamed", announce=False)
    walked_at = None
    for s in range(1, int(collector_mod.TABLE_EVERY_S) + 2):
        cmds, _ = r.round_trips(1)
        if "STA-FIRST" in cmds:
            walked_at = s
            break
    assert walked_at is not None and walked_at <= collector_mod.TABLE_EVERY_S
    assert r.clients(r.tick())[r.macs[5]]["keyid"] == "renamed"


def test_counters_and_retries_come_from_the_dump(radio):
    r = radio(4)  # populate: two weak, one retrying 40 %, one brcmfmac
    r.tick()
    snap = r.tick()
    got = r.clients(snap)
    for mac, sta in r.iw.stations.items():
        c = got[mac]
        # the dump's own counters (FakeHostapd's STA blocks hold other, random numbers)
        assert (c["rx_bytes"], c["tx_bytes"]) == (sta.rx_bytes, sta.tx_bytes)
        assert c["tx_retries"] == (None if sta.brcmfmac else sta.tx_retries)
        assert c["rx_bps"] == 5000 and c["tx_bps"] == 20000  # per second, from two dumps
        assert c["inactive_ms"] == 120 and c["connected_s"] == 60
    assert got[r.macs[2]]["retries_pct"] == 40.0 and got[r.macs[0]]["tx_mbps"] == 65.0
    assert got[r.macs[0]]["rx_mbps"] == 130.0 and got[r.macs[0]]["signal"] == -88
    brcm = got[r.macs[3]]
    assert brcm["signal"] is None and brcm["retries_reported"] is False and brcm["retries_pct"] is None
    assert brcm["tx_mbps"] == 72.2


def test_a_station_that_leaves_is_forgotten(radio):
    r = radio(5)
    r.tick()
    r.fake.disconnect(r.macs[1])
    r.iw.remove(r.macs[1])
    snap = r.tick()
    assert r.macs[1] not in r.clients(snap) and snap["radios"][0]["clients"] == 4
    assert r.macs[1] not in r.collector.radios["wlan0"].facts
    # it comes back (same MAC, other key) and its event was lost: asked for again, not taken from old facts
    r.fake.connect(r.macs[1], "other", announce=False)
    r.iw.add(r.macs[1], -50)
    assert r.clients(r.tick())[r.macs[1]]["keyid"] == "other"


def test_without_iw_the_table_is_walked_every_tick(radio):
    def no_iw(argv):
        return None  # `iw` missing, or the radio is no nl80211 device (the virtual venue's bridge)

    r = radio(5, runner=no_iw)
    r.tick()
    cmds, _ = r.round_trips(3)
    assert cmds.count("STA-FIRST") == 3
    snap = r.tick()
    got = r.clients(snap)
    assert set(got) == set(r.macs) and got[r.macs[0]]["keyid"] == "k0000"
    fields = r.fake.stations[r.macs[4]]
    assert got[r.macs[4]]["rx_bytes"] == int(fields["rx_bytes"])  # hostapd's STA block
    assert got[r.macs[4]]["tx_retries"] is None  # hostapd has no retry counters


def test_hostapd_restart_walks_the_table_again(radio):
    r = radio(5)
    r.tick()
    r.fake.close()  # hostapd stops; a new one starts with the same stations but other keys
    r.fake = StatusFakeHostapd(r.cfg.hostapd_ctrl_dir / "wlan0", interface="wlan0")
    for i, mac in enumerate(r.macs):
        r.fake.connect(mac, f"new{i}", announce=False)
    snap = r.tick()  # the old socket fails: reported, not fatal
    assert snap["radios"][0]["reachable"] is False
    r.clock.now += 5  # the collector retries an unreachable radio after 5 s
    snap = r.tick()
    assert snap["radios"][0]["reachable"] is True
    assert {c["keyid"] for c in snap["clients"]} == {f"new{i}" for i in range(5)}


def test_leases_are_filtered_again_when_one_runs_out_or_the_file_changes(radio):
    r = radio(3)
    now = int(r.clock.now)
    r.cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    r.cfg.leases_file.write_text(f"{now + 2} {r.macs[0]} 10.77.1.2 early *\n{now + 3600} {r.macs[1]} 10.77.1.3 b *\n")
    snap = r.tick()
    assert r.clients(snap)[r.macs[0]]["ip"] == "10.77.1.2" and snap["network"]["leases_active"] == 2
    r.tick()
    snap = r.tick()  # now + 2: the first lease ran out, the file did not change
    assert r.clients(snap)[r.macs[0]]["ip"] is None and r.clients(snap)[r.macs[1]]["ip"] == "10.77.1.3"
    assert snap["network"]["leases_active"] == 1
    r.cfg.leases_file.write_text(f"{now + 3600} {r.macs[2]} 10.77.1.4 c *\n")  # dnsmasq rewrote it
    snap = r.tick()
    assert [r.clients(snap)[m]["ip"] for m in r.macs] == [None, None, "10.77.1.4"]
    assert snap["network"]["leases_active"] == 1


# -- seeded from the radio daemon's `stations` table (issue 15) ------------------------------------------------------

def _synced(r: Radio1, db) -> None:
    """The `stations` table as the radio daemon leaves it after attaching (its own sync_stations, from hostapd)."""
    from appliance.radio.ctrl import HostapdCtrl
    from appliance.radio.daemon import sync_stations

    with HostapdCtrl(r.cfg.hostapd_ctrl_dir / "wlan0", local_dir=r.cfg.run_dir) as ctrl:
        sync_stations(db, "wlan0", ctrl.stations())
    r.fake.commands_received.clear()


def _sta(cmds: list[str]) -> list[str]:
    return [c for c in cmds if c.startswith(("STA ", "STA-"))]


def test_the_first_tick_takes_the_facts_from_the_stations_table(radio, db):
    r = radio(300)
    _synced(r, db)
    cmds, _ = r.round_trips(1)
    assert _sta(cmds) == []  # no STA-FIRST + 300 x STA-NEXT: one SELECT
    snap = r.tick()
    got = r.clients(snap)
    assert len(got) == 300 and {got[m]["keyid"] for m in r.macs} == {f"k{i:04d}" for i in range(300)}
    # the safety net a minute later reads the table again, not hostapd's
    cmds, _ = r.round_trips(int(collector_mod.TABLE_EVERY_S) + 1)
    assert set(cmds) == {"STATUS"}


def test_a_station_the_table_lacks_is_asked_for(radio, db):
    r = radio(30)
    _synced(r, db)
    db.execute("DELETE FROM stations WHERE mac = ?", [r.macs[3]])  # the radio daemon has not recorded it (yet)
    cmds, _ = r.round_trips(1)
    assert _sta(cmds) == [f"STA {r.macs[3]}"]
    assert r.clients(r.tick())[r.macs[3]]["keyid"] == "k0003"


def test_a_row_of_an_older_association_is_not_taken(radio, db):
    r = radio(30)
    _synced(r, db)
    # recorded 10 minutes ago while the kernel says this association is 60 s old: a reconnect both listeners lost
    # (or the radio daemon is down) - its keyid may be another now
    db.execute("UPDATE stations SET keyid = 'old', connected_at = '2000-01-01T00:00:00.000000Z' WHERE mac = ?",
               [r.macs[4]])
    cmds, _ = r.round_trips(1)
    assert _sta(cmds) == [f"STA {r.macs[4]}"]
    assert r.clients(r.tick())[r.macs[4]]["keyid"] == "k0004"


def test_without_rows_for_the_radio_the_table_is_walked(radio, db):
    r = radio(5)  # the database is there, the radio daemon is not running: no connected row of wlan0
    cmds, _ = r.round_trips(1)
    assert "STA-FIRST" in cmds and sum(c.startswith("STA-NEXT") for c in cmds) == 5
    assert r.clients(r.tick())[r.macs[0]]["keyid"] == "k0000"


def test_many_stale_rows_walk_the_table_once(radio, db):
    r = radio(30)
    _synced(r, db)
    db.execute("UPDATE stations SET connected_at = '2000-01-01T00:00:00.000000Z'")  # radio daemon long gone
    cmds, _ = r.round_trips(1)
    assert "STA-FIRST" in cmds and not any(c.startswith("STA ") for c in cmds)


def test_the_safety_net_asks_where_the_table_and_the_events_disagree(radio, db):
    r = radio(30)
    _synced(r, db)
    r.tick()
    # hostapd gave mac 5 another keyid; the radio daemon saw it, the monitor's event was lost
    r.fake.connect(r.macs[5], "renamed", announce=False)
    db.execute("UPDATE stations SET keyid = 'renamed' WHERE mac = ?", [r.macs[5]])
    asked = []
    for _ in range(int(collector_mod.TABLE_EVERY_S) + 1):
        asked += _sta(r.round_trips(1)[0])
    assert asked == [f"STA {r.macs[5]}"]
    assert r.clients(r.tick())[r.macs[5]]["keyid"] == "renamed"
