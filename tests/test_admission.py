"""admission: the one place that records admissions and asks the helper; rows mirror the nft set."""

from __future__ import annotations

import pytest

from appliance.captive import admission
from appliance.captive.identify import Device
from appliance.helper.client import HelperError
from appliance.sessions import service
from appliance.sessions.roster import MemberRow


class FakeHelper:
    """Records calls and the resulting set, like the nft set `admitted`; can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.admitted: set[tuple[str, str]] = set()
        self.fail: bool = False

    def admit(self, mac: str, ip: str) -> None:
        self.calls.append(("admit", mac, ip))
        if self.fail:
            raise HelperError("Helfer nicht erreichbar (Test)")
        self.admitted.add((mac, ip))

    def revoke(self, mac: str, ip: str) -> None:
        self.calls.append(("revoke", mac, ip))
        if self.fail:
            raise HelperError("Helfer nicht erreichbar (Test)")
        self.admitted.discard((mac, ip))


def make_session(db, names=("Anna Schmidt",), active=True):
    s = service.create_session(db, body="Rat der Stadt", title="12. Sitzung", day="2026-11-24")
    service.insert_members(db, s.id, [MemberRow(n, "SPD", "member", True, "Rat") for n in names])
    if active:
        service.set_active(db, s.id)
    return service.get_session(db, s.id), service.members(db, s.id)


def live(db):
    return db.execute("SELECT mac, ip, kind, member_id FROM admissions WHERE revoked_at IS NULL ORDER BY id").fetchall()


@pytest.fixture
def helper():
    return FakeHelper()


def test_admit_member_records_and_calls_helper(db, helper):
    s, (anna,) = make_session(db)
    dev = Device("10.77.0.10", "02:5B:00:00:00:01", "member", anna, False)
    admission.admit(db, helper, dev, s)
    assert live(db) == [("02:5b:00:00:00:01", "10.77.0.10", "member", anna.id)]
    assert helper.admitted == {("02:5b:00:00:00:01", "10.77.0.10")}
    assert admission.is_admitted(db, "02:5b:00:00:00:01", "10.77.0.10")
    assert not admission.is_admitted(db, "02:5b:00:00:00:01", "10.77.0.11")  # the pair, not the MAC alone


def test_admit_is_idempotent(db, helper):
    s, _ = make_session(db)
    dev = Device("10.77.0.11", "02:5b:00:00:00:02", "guest", None, False)
    admission.admit(db, helper, dev, s)
    admission.admit(db, helper, dev, s)
    assert live(db) == [("02:5b:00:00:00:02", "10.77.0.11", "guest", None)]
    assert helper.calls == [("admit", "02:5b:00:00:00:02", "10.77.0.11")]


def test_unknown_is_recorded_as_guest(db, helper):
    s, _ = make_session(db)
    admission.admit(db, helper, Device("10.77.0.12", "02:5b:00:00:00:03", "unknown", None, False), s)
    assert live(db)[0][2] == "guest"


def test_helper_failure_leaves_no_row(db, helper):
    s, _ = make_session(db)
    helper.fail = True
    dev = Device("10.77.0.11", "02:5b:00:00:00:02", "guest", None, False)
    with pytest.raises(HelperError):
        admission.admit(db, helper, dev, s)
    assert db.execute("SELECT COUNT(*) FROM admissions").fetchone()[0] == 0
    assert not admission.is_admitted(db, dev.mac, dev.ip)
    helper.fail = False
    admission.admit(db, helper, dev, s)  # a retry works
    assert admission.is_admitted(db, dev.mac, dev.ip)


def test_device_without_mac_or_foreign_member_refused(db, helper):
    s, _ = make_session(db)
    other, (bernd,) = make_session(db, names=("Bernd Müller",), active=False)
    with pytest.raises(ValueError):
        admission.admit(db, helper, Device("10.77.0.10", None, "unknown", None, False), s)
    with pytest.raises(ValueError):
        admission.admit(db, helper, Device("10.77.0.10", "02:5b:00:00:00:09", "member", bernd, False), s)
    assert helper.calls == [] and live(db) == []


def admit_three(db, helper, s):
    for n in range(3):
        admission.admit(db, helper, Device(f"10.77.0.{20 + n}", f"02:5b:00:00:00:2{n}", "guest", None, False), s)


def test_revoke_session_devices_calls_helper_for_each(db, helper):
    s, _ = make_session(db)
    admit_three(db, helper, s)
    helper.calls.clear()
    assert admission.revoke_session_devices(db, helper, s.id) == 3
    assert sorted(helper.calls) == [("revoke", f"02:5b:00:00:00:2{n}", f"10.77.0.{20 + n}") for n in range(3)]
    assert live(db) == [] and helper.admitted == set()
    assert admission.revoke_session_devices(db, helper, s.id) == 0


def test_revoke_failure_keeps_rows_live_for_retry(db, helper):
    s, _ = make_session(db)
    admit_three(db, helper, s)
    helper.fail = True
    with pytest.raises(HelperError):
        admission.revoke_session_devices(db, helper, s.id)
    assert len(live(db)) == 3
    helper.fail = False
    assert admission.revoke_session_devices(db, helper, s.id) == 3


def test_revoke_macs(db, helper):
    s, _ = make_session(db)
    admit_three(db, helper, s)
    assert admission.revoke_macs(db, helper, ["02:5B:00:00:00:20", "02:5b:00:00:00:99"]) == 1
    assert [row[0] for row in live(db)] == ["02:5b:00:00:00:21", "02:5b:00:00:00:22"]
    assert admission.revoke_macs(db, helper, []) == 0


def test_resync_readmits_live_rows_of_active_session(db, helper):
    s, _ = make_session(db)
    admit_three(db, helper, s)
    admission.revoke_macs(db, helper, ["02:5b:00:00:00:22"])
    fresh = FakeHelper()  # a restarted helper: empty set
    assert admission.resync(db, fresh) == 2
    assert fresh.admitted == {("02:5b:00:00:00:20", "10.77.0.20"), ("02:5b:00:00:00:21", "10.77.0.21")}


def test_resync_closes_rows_of_inactive_sessions(db, helper):
    s, _ = make_session(db)
    admit_three(db, helper, s)
    make_session(db, names=("Carla Weber",))  # another session becomes active
    fresh = FakeHelper()
    assert admission.resync(db, fresh) == 0
    assert fresh.calls == [] and live(db) == []


def test_resync_raises_when_helper_down(db, helper):
    s, _ = make_session(db)
    admit_three(db, helper, s)
    down = FakeHelper()
    down.fail = True
    with pytest.raises(HelperError):
        admission.resync(db, down)
    assert len(live(db)) == 3  # nothing is forgotten: the next resync retries
    assert admission.resync(db, FakeHelper()) == 3
