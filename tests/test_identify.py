"""identify(): IP → MAC (lease file, else ARP) → connected station's keyid → member of the active session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.captive import identify as identify_mod
from appliance.captive.identify import LeaseCache, identify
from appliance.sessions import service
from appliance.sessions.roster import MemberRow

ANNA_MAC, GUEST_MAC, OTHER_MAC = "02:5b:00:00:00:01", "02:5b:00:00:00:02", "02:5b:00:00:00:03"


def make_session(db, names=("Anna Schmidt", "Bernd Müller"), active=True, title="12. Sitzung des Rates"):
    s = service.create_session(db, body="Rat der Stadt", title=title, day="2026-11-24", venue="Rathaus")
    service.insert_members(db, s.id, [MemberRow(n, "SPD", "member", True, "Rat") for n in names])
    if active:
        service.set_active(db, s.id)
    return service.get_session(db, s.id), {m.name: m for m in service.members(db, s.id)}


def write_leases(cfg, *pairs):
    """dnsmasq rewrites the file and renames it into place; do the same."""
    tmp = cfg.leases_file.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(f"4102444800 {mac} {ip} * *\n" for mac, ip in pairs))
    os.replace(tmp, cfg.leases_file)


def station(db, mac, keyid, connected=True):
    db.execute("INSERT OR REPLACE INTO stations(mac, interface, keyid, connected, connected_at) "
               "VALUES (?, 'wlan0', ?, ?, '2026-11-24T18:00:00Z')", [mac, keyid, int(connected)])


@pytest.fixture
def no_arp(tmp_path) -> Path:
    path = tmp_path / "arp"
    path.write_text("IP address       HW type     Flags       HW address            Mask     Device\n")
    return path


def test_member_via_keyid(cfg, db, no_arp):
    _, members = make_session(db)
    anna = members["Anna Schmidt"]
    write_leases(cfg, (ANNA_MAC.upper(), "10.77.0.10"))
    station(db, ANNA_MAC, anna.keyid)
    dev = identify(db, cfg, "10.77.0.10", arp_path=no_arp)
    assert dev.kind == "member" and dev.member == anna
    assert dev.mac == ANNA_MAC and dev.ip == "10.77.0.10" and dev.admitted is False


def test_guest_key(cfg, db, no_arp):
    make_session(db)
    write_leases(cfg, (GUEST_MAC, "10.77.0.11"))
    station(db, GUEST_MAC, "guest")
    dev = identify(db, cfg, "10.77.0.11", arp_path=no_arp)
    assert (dev.kind, dev.member, dev.mac) == ("guest", None, GUEST_MAC)


def test_no_station_is_unknown(cfg, db, no_arp):
    make_session(db)
    write_leases(cfg, (OTHER_MAC, "10.77.0.12"))
    dev = identify(db, cfg, "10.77.0.12", arp_path=no_arp)
    assert (dev.kind, dev.member, dev.mac) == ("unknown", None, OTHER_MAC)


def test_unknown_ip_has_no_mac(cfg, db, no_arp):
    make_session(db)
    dev = identify(db, cfg, "10.77.0.99", arp_path=no_arp)
    assert (dev.kind, dev.mac, dev.admitted) == ("unknown", None, False)


def test_member_of_inactive_session_not_greeted(cfg, db, no_arp):
    _, old_members = make_session(db, names=("Anna Schmidt",), title="Alte Sitzung")
    make_session(db, names=("Carla Weber",), title="Neue Sitzung")  # activating this one deactivates the old
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, old_members["Anna Schmidt"].keyid)
    dev = identify(db, cfg, "10.77.0.10", arp_path=no_arp)
    assert dev.kind == "unknown" and dev.member is None


def test_disconnected_station_not_used(cfg, db, no_arp):
    _, members = make_session(db)
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, members["Anna Schmidt"].keyid, connected=False)
    dev = identify(db, cfg, "10.77.0.10", arp_path=no_arp)
    assert dev.kind == "unknown" and dev.member is None


def test_rotated_keyid_not_greeted(cfg, db, no_arp):
    s, members = make_session(db)
    old_keyid = members["Anna Schmidt"].keyid
    service.replace_keys(db, s.id)
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, old_keyid)
    assert identify(db, cfg, "10.77.0.10", arp_path=no_arp).kind == "unknown"


def test_lease_missing_falls_back_to_arp(cfg, db, tmp_path):
    _, members = make_session(db)
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        f"10.77.0.40       0x1         0x2         {ANNA_MAC}     *        wlan0\n"
        "10.77.0.41       0x1         0x0         00:00:00:00:00:00     *        wlan0\n")
    station(db, ANNA_MAC, members["Anna Schmidt"].keyid)
    assert not cfg.leases_file.exists()
    dev = identify(db, cfg, "10.77.0.40", arp_path=arp)
    assert dev.kind == "member" and dev.member.name == "Anna Schmidt"
    assert identify(db, cfg, "10.77.0.41", arp_path=arp).mac is None


def test_same_mac_different_person_after_rejoin(cfg, db, no_arp):
    """The MAC carries no identity: a new keyid on the same MAC is the new person."""
    _, members = make_session(db)
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, members["Anna Schmidt"].keyid)
    assert identify(db, cfg, "10.77.0.10", arp_path=no_arp).member.name == "Anna Schmidt"
    station(db, ANNA_MAC, members["Bernd Müller"].keyid)
    assert identify(db, cfg, "10.77.0.10", arp_path=no_arp).member.name == "Bernd Müller"


def test_lease_file_reread_only_when_changed(cfg, monkeypatch):
    reads = []
    real = identify_mod.Path.read_text
    monkeypatch.setattr(identify_mod.Path, "read_text", lambda self, *a, **k: reads.append(1) or real(self, *a, **k))
    cache = LeaseCache()
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    assert [lease.ip for lease in cache.get(cfg.leases_file)] == ["10.77.0.10"]
    assert cache.lease_for_ip(cfg.leases_file, "10.77.0.10", now=0).mac == ANNA_MAC
    assert len(reads) == 1
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"), (GUEST_MAC, "10.77.0.11"))
    assert [lease.ip for lease in cache.get(cfg.leases_file)] == ["10.77.0.10", "10.77.0.11"]
    assert len(reads) == 2
    cfg.leases_file.unlink()
    assert cache.get(cfg.leases_file) == []


def test_lease_lookup_finds_exactly_that_address_among_many(cfg):
    pairs = [(f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", f"10.77.{i // 250}.{i % 250 + 1}") for i in range(400)]
    write_leases(cfg, *pairs)
    cache = LeaseCache()
    for mac, ip in (pairs[0], pairs[9], pairs[250], pairs[-1]):
        assert cache.lease_for_ip(cfg.leases_file, ip, now=0).mac == mac
    # 10.77.0.1 is a prefix of 10.77.0.10..19: only the exact address matches.
    assert cache.lease_for_ip(cfg.leases_file, "10.77.0.1", now=0).mac == pairs[0][0]
    assert cache.lease_for_ip(cfg.leases_file, "10.77.9.9", now=0) is None


# --- no station keyid: the member from the admission their personal code created ----------------------

def code_admission(db, session, member, mac, ip):
    """What the portal's code step writes (admission.admit_with_code), without a firewall."""
    from appliance.captive import admission
    from appliance.captive.identify import Device
    from appliance.helper.client import NullHelper

    admission.admit_with_code(db, NullHelper(), Device(ip, mac, "unknown", None, False), member, session)


def test_code_admission_names_the_member_for_that_pair_only(cfg, db, no_arp):
    s, members = make_session(db)
    anna = members["Anna Schmidt"]
    write_leases(cfg, (OTHER_MAC, "10.77.0.12"))
    assert identify(db, cfg, "10.77.0.12", arp_path=no_arp).kind == "unknown"
    code_admission(db, s, anna, OTHER_MAC, "10.77.0.12")
    dev = identify(db, cfg, "10.77.0.12", arp_path=no_arp)
    assert (dev.kind, dev.member, dev.admitted, dev.keyid) == ("member", anna, True, None)
    # The same MAC at another address is not her: the MAC alone never names anybody.
    write_leases(cfg, (OTHER_MAC, "10.77.0.13"))
    dev = identify(db, cfg, "10.77.0.13", arp_path=no_arp)
    assert (dev.kind, dev.member, dev.admitted) == ("unknown", None, False)


def test_code_admission_ends_with_revocation_or_session(cfg, db, no_arp):
    s, members = make_session(db)
    write_leases(cfg, (OTHER_MAC, "10.77.0.12"))
    code_admission(db, s, members["Anna Schmidt"], OTHER_MAC, "10.77.0.12")
    db.execute("UPDATE admissions SET revoked_at = 'x'")
    assert identify(db, cfg, "10.77.0.12", arp_path=no_arp).kind == "unknown"
    code_admission(db, s, members["Anna Schmidt"], OTHER_MAC, "10.77.0.12")
    assert identify(db, cfg, "10.77.0.12", arp_path=no_arp).kind == "member"
    make_session(db, names=("Carla Weber",), title="Neue Sitzung")  # the old session is no longer active
    dev = identify(db, cfg, "10.77.0.12", arp_path=no_arp)
    assert dev.kind == "unknown" and dev.member is None


def test_a_station_keyid_wins_over_any_code_admission(cfg, db, no_arp):
    s, members = make_session(db)
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    code_admission(db, s, members["Bernd Müller"], ANNA_MAC, "10.77.0.10")
    station(db, ANNA_MAC, members["Anna Schmidt"].keyid)
    dev = identify(db, cfg, "10.77.0.10", arp_path=no_arp)
    assert dev.member.name == "Anna Schmidt" and dev.keyid == members["Anna Schmidt"].keyid
    station(db, ANNA_MAC, "guest")
    assert identify(db, cfg, "10.77.0.10", arp_path=no_arp).kind == "guest"
