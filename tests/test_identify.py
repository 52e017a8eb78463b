"""identify(): IP → MAC (lease file, else ARP) → connected station's keyid → member of the active session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.captive import identify as identify_mod
from appliance.captive.identify import LeaseCache, identify
from appliance.rules import device as rule
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


# --- the rule itself (appliance.rules.device), as a table --------------------------------------------------



@dataclass(frozen=True)
class P:
    id: int
    keyid: str


ANNA, BERND = P(1, "ka"), P(2, "kb")
ACTIVE = rule.Roster.of(7, [ANNA, BERND])
MAC, IP = "02:aa:00:00:00:01", "10.77.0.50"


def adm(member_id, mac=MAC, ip=IP, session=7, revoked=False):
    return rule.Admission(mac, ip, session, member_id, revoked)


RULE_TABLE = [
    # (case, mac, ip, station, admissions, roster) -> (kind, member, admitted, by)
    ("keyid names the member", MAC, IP, rule.Station("ka"), [], ACTIVE, ("member", ANNA, False, "keyid")),
    ("keyid without any IP", MAC, None, rule.Station("kb"), [], ACTIVE, ("member", BERND, False, "keyid")),
    ("keyid, admitted pair", MAC, IP, rule.Station("ka"), [adm(None)], ACTIVE, ("member", ANNA, True, "keyid")),
    ("keyid wins over another's code", MAC, IP, rule.Station("ka"), [adm(2)], ACTIVE,
     ("member", ANNA, True, "keyid")),
    ("guest key wins over a code", MAC, IP, rule.Station("guest"), [adm(1)], ACTIVE,
     ("guest", None, True, "guest-key")),
    ("stale keyid (rotated / other session)", MAC, IP, rule.Station("old"), [adm(1)], ACTIVE,
     ("unknown", None, True, "stale-keyid")),
    ("keyid but no active session", MAC, IP, rule.Station("ka"), [], None, ("unknown", None, False, "stale-keyid")),
    ("disconnected station: its keyid no longer counts", MAC, IP, rule.Station("ka", connected=False), [],
     ACTIVE, ("unknown", None, False, "nothing")),
    ("code admission for exactly this pair", MAC, IP, None, [adm(1)], ACTIVE, ("member", ANNA, True, "code")),
    ("code admission, MAC in other case", MAC.upper(), IP, None, [adm(1)], ACTIVE, ("member", ANNA, True, "code")),
    ("station without keyid falls back to the code", MAC, IP, rule.Station(None), [adm(2)], ACTIVE,
     ("member", BERND, True, "code")),
    ("same MAC, other IP: nobody", MAC, "10.77.0.51", None, [adm(1)], ACTIVE, ("unknown", None, False, "nothing")),
    ("MAC known, IP unknown: nobody", MAC, None, None, [adm(1)], ACTIVE, ("unknown", None, False, "nothing")),
    ("same IP, other MAC (randomised): nobody", "02:aa:00:00:00:99", IP, None, [adm(1)], ACTIVE,
     ("unknown", None, False, "nothing")),
    ("revoked admission", MAC, IP, None, [adm(1, revoked=True)], ACTIVE, ("unknown", None, False, "nothing")),
    ("admission of another session", MAC, IP, None, [adm(1, session=6)], ACTIVE, ("unknown", None, False, "nothing")),
    ("member no longer on the active list", MAC, IP, None, [adm(3)], ACTIVE, ("unknown", None, True, "nothing")),
    ("guest admission", MAC, IP, None, [adm(None)], ACTIVE, ("unknown", None, True, "nothing")),
    ("no session at all", MAC, IP, None, [adm(1)], None, ("unknown", None, False, "nothing")),
    ("no MAC", None, IP, rule.Station("ka"), [adm(1)], ACTIVE, ("unknown", None, False, "no-mac")),
    ("nothing known", MAC, IP, None, [], ACTIVE, ("unknown", None, False, "nothing")),
]


@pytest.mark.parametrize(("case", "mac", "ip", "sta", "adms", "roster", "want"), RULE_TABLE,
                         ids=[r[0] for r in RULE_TABLE])
def test_device_rule(case, mac, ip, sta, adms, roster, want):
    who = rule.resolve(mac, ip, sta, adms, roster)
    assert (who.kind, who.member, who.admitted, who.by) == want
    assert who.member_id == (want[1].id if want[1] else None)


def test_rule_module_is_pure():
    import ast
    import inspect

    for mod in (rule, __import__("appliance.rules.roles", fromlist=["x"])):
        tree = ast.parse(inspect.getsource(mod))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {x for x in names if x.split(".")[0] in ("flask", "sqlite3", "sqlite_utils", "socket")}


def test_admission_left_over_from_another_session_admits_nobody(cfg, db, no_arp):
    old, members = make_session(db, names=("Anna Schmidt",), title="Alte Sitzung")
    write_leases(cfg, (OTHER_MAC, "10.77.0.12"))
    code_admission(db, old, members["Anna Schmidt"], OTHER_MAC, "10.77.0.12")
    assert identify(db, cfg, "10.77.0.12", arp_path=no_arp).admitted
    make_session(db, names=("Carla Weber",), title="Neue Sitzung")  # the old row is still live (no resync)
    dev = identify(db, cfg, "10.77.0.12", arp_path=no_arp)
    assert (dev.kind, dev.member, dev.admitted) == ("unknown", None, False)


def test_records_answer_like_identify(cfg, db, no_arp):
    """The bulk adapter (presence, monitor) gives the portal's answer for every device."""
    s, members = make_session(db)
    anna, bernd = members["Anna Schmidt"], members["Bernd Müller"]
    station(db, ANNA_MAC, anna.keyid)
    station(db, GUEST_MAC, "guest")
    code_admission(db, s, bernd, OTHER_MAC, "10.77.0.12")
    pairs = [(ANNA_MAC, "10.77.0.10"), (GUEST_MAC, "10.77.0.11"), (OTHER_MAC, "10.77.0.12"),
             (OTHER_MAC, "10.77.0.13")]
    records = identify_mod.Records(db)
    for mac, ip in pairs:
        write_leases(cfg, (mac, ip))
        dev = identify(db, cfg, ip, arp_path=no_arp)
        who = records.resolve(mac, ip)
        assert (who.kind, who.member, who.admitted, who.keyid) == (dev.kind, dev.member, dev.admitted, dev.keyid)
    assert [records.resolve(m, i).kind for m, i in pairs] == ["member", "guest", "member", "unknown"]


def test_a_device_using_another_devices_leased_address_is_nobody(cfg, db, tmp_path):
    """Gustav's phone takes Anna's leased address: the box's answers go to Gustav's MAC (its neighbour entry),
    the lease names Anna's device. The request is nobody's, never Anna's; when the entry agrees, it is Anna."""
    _, members = make_session(db)
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, members["Anna Schmidt"].keyid)
    arp = tmp_path / "arp"
    header = "IP address       HW type     Flags       HW address            Mask     Device\n"
    arp.write_text(header + "10.77.0.10       0x1         0x2         02:5c:00:00:00:77     *        wlan0\n"
                            "10.77.0.100      0x1         0x2         " + ANNA_MAC + "     *        wlan0\n")
    dev = identify(db, cfg, "10.77.0.10", arp_path=arp)
    assert dev.mac is None and dev.kind == "unknown" and dev.member is None
    arp.write_text(header + f"10.77.0.10       0x1         0x2         {ANNA_MAC.upper()}     *        wlan0\n")
    assert identify(db, cfg, "10.77.0.10", arp_path=arp).member.name == "Anna Schmidt"
    arp.write_text(header + "10.77.0.10       0x1         0x0         00:00:00:00:00:00     *        wlan0\n")
    assert identify(db, cfg, "10.77.0.10", arp_path=arp).member.name == "Anna Schmidt"  # not resolved yet


def test_the_active_session_is_read_with_the_device(cfg, db, no_arp):
    """identify reads the active session's id in the same statement as the device's rows (the viewer takes it from
    there, one snapshot); a Device built by hand says it did not read one."""
    s, members = make_session(db)
    anna = members["Anna Schmidt"]
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, anna.keyid)
    dev = identify(db, cfg, "10.77.0.10", arp_path=no_arp)
    assert dev.session_read and dev.session_id == s.id
    unknown = identify(db, cfg, "10.77.0.99", arp_path=no_arp)  # no lease, no neighbour entry: no MAC
    assert unknown.mac is None and unknown.session_read and unknown.session_id == s.id
    db.execute("UPDATE sessions SET active = 0")
    assert identify(db, cfg, "10.77.0.10", arp_path=no_arp).session_id is None
    assert identify_mod.Device("10.77.0.10", ANNA_MAC, "member", anna, True).session_read is False


def test_admissions_of_another_ip_or_session_or_revoked_do_not_count(cfg, db, no_arp):
    """The one statement of resolve keeps the rule's inputs exact: only a live admission of exactly (MAC, IP)."""
    s, members = make_session(db)
    anna = members["Anna Schmidt"]
    write_leases(cfg, (ANNA_MAC, "10.77.0.10"))
    station(db, ANNA_MAC, anna.keyid)
    with db.conn:
        db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                   "VALUES (?, ?, '10.77.0.11', ?, 'member', '2026-11-24T18:00:00Z')", [s.id, ANNA_MAC, anna.id])
        db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at, revoked_at) "
                   "VALUES (?, ?, '10.77.0.10', ?, 'member', '2026-11-24T18:00:00Z', '2026-11-24T18:01:00Z')",
                   [s.id, ANNA_MAC, anna.id])
    dev = identify(db, cfg, "10.77.0.10", arp_path=no_arp)
    assert dev.kind == "member" and dev.member == anna and dev.admitted is False
    with db.conn:
        db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                   "VALUES (?, ?, '10.77.0.10', ?, 'member', '2026-11-24T18:02:00Z')", [s.id, ANNA_MAC, anna.id])
    assert identify(db, cfg, "10.77.0.10", arp_path=no_arp).admitted is True
