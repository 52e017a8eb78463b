"""Every write of several statements is all or nothing (issue 10).

One case per `with transaction(…)` block in appliance/ (the use cases, and the row writes under them on their
own): a setup that makes the block do all its writes, and the act. For each case:
- `test_writes`: the act, run once and recorded (TEMP triggers calling back into Python), does exactly the
  writes the case declares ('table OP' in order of first occurrence; 'table OP #k' for one in the act's k-th
  transaction, e.g. the firewall's admissions closed after an activation commits), and none of them outside a
  transaction unless declared `after_commit` (push events published after the commit, by design).
- `test_all_or_nothing[<case>-<table>-<OP>[-k]]`: the *last* row-level write of that kind (in that
  transaction) is made to fail with RAISE(ABORT) from a TEMP trigger, so every write before it has already
  run; its transaction must leave the database exactly as it was when that transaction began (for a
  one-transaction act: as before the act), the act must report the failure (unless the case says it catches
  failures from that transaction on: radio and firewall steps after the commit are reported in the result),
  and no blob may appear or vanish. Failing each written table in turn includes the audit INSERT that ends
  most acts, i.e. the case where all the other statements succeeded.
- `test_every_transaction_has_a_case`: every `with transaction(` in appliance/ (by ast: the enclosing
  function's qualified name, and its number within that function) is covered by a case; a new one without a
  case fails with its name.
"""

from __future__ import annotations

import ast
import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from appliance.captive import admission
from appliance.captive.identify import Device
from appliance.chat import store as chat
from appliance.chat.rules import Settings
from appliance.config import Config
from appliance.documents import bulk, jobs, traffic
from appliance.documents import service as docs
from appliance.helper.client import HelperError, NullHelper
from appliance.monitor import timeseries
from appliance.monitor.daemon import Monitor
from appliance.presence import store as presence
from appliance.presence.engine import Obs
from appliance.radio import daemon as radio
from appliance.radio.events import Event, Station
from appliance.radio.fake import FakeHostapd
from appliance.rules.login import CLERK, TECHNICIAN, Role
from appliance.sessions import roster, service
from appliance.store import open_db
from appliance.usecases import displays as display_acts
from appliance.usecases import documents as doc_acts
from appliance.usecases import login as logins
from appliance.usecases import portal as portal_acts
from appliance.usecases import presence as presence_acts
from appliance.usecases import sessions as session_acts
from appliance.usecases import speakers as speaker_acts
from appliance.usecases import votes as vote_acts
from appliance.web.viewer import Viewer
from tests import pdf_samples
from tests.atomic_support import diff, dump, fail_on, recording

APPLIANCE = Path(__file__).resolve().parent.parent / "appliance"
FIX = Path(__file__).parent / "fixtures" / "monitoring"
PDF = pdf_samples.pdf(b"% test")


# --- building blocks for the setups -------------------------------------------------------------------


def roster_csv(n: int, prefix: str = "Mitglied") -> str:
    return "Name;Rolle\n" + "".join(f"{prefix} {i:03d};Mitglied\n" for i in range(n))


def roster_rows(n: int, prefix: str = "Mitglied") -> list[roster.MemberRow]:
    return roster.parse_members(roster_csv(n, prefix))


def council(db, members: int = 3, active: bool = True, day: str = "2026-12-01") -> service.Session:
    s = service.create_session(db, body="Rat", title="Sitzung", day=day)
    if members:
        service.insert_members(db, s.id, roster_rows(members))
    if active:
        service.set_active(db, s.id)
    return service.get_session(db, s.id)


def member_viewer(db, s: service.Session) -> Viewer:
    m = service.members(db, s.id)[0]
    return Viewer("member", s.id, m, True, "10.77.1.5", "02:00:00:00:00:05")


def store_file(cfg: Config, db, s: service.Session, name: str = "vorlage.pdf", *, item: int | None = None,
               public: bool = True, data: bytes = PDF, late: bool = False) -> int:
    stored = docs.blobs_for(cfg.state_dir).put_bytes(data)
    return docs.add_file(db, s.id, name=name, stored=stored, mime="application/pdf", item_id=item, public=public,
                         late=late)


_RADIOS: dict[Path, FakeHostapd] = {}  # the `fake_radio` fixture's replayed hostapd, by control directory


@pytest.fixture
def fake_radio(cfg: Config):
    """A replayed radio (FakeHostapd) on the wlan0 control socket of cfg (and of the twin, which shares the
    directory): the acts' steps after the commit reload its keys and drop its stations for real."""
    fake = FakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=cfg.psk_file)
    _RADIOS[cfg.hostapd_ctrl_dir] = fake
    yield fake
    del _RADIOS[cfg.hostapd_ctrl_dir]
    fake.close()


class RefusingHelper(NullHelper):
    def admit(self, mac: str, ip: str) -> None:
        raise HelperError("refused (test)")


class FakeCollector:
    """The monitor's collector replaced by one recorded sample (the monitor's own tests cover sampling)."""

    def __init__(self, snap: dict) -> None:
        self.snap = snap

    def sample(self) -> dict:
        return dict(self.snap)

    def close(self) -> None:
        pass


# --- the cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    sites: tuple[str, ...]  # 'path/in/appliance.py:Qual.name#k': the k-th `with transaction(` in that function
    setup: Callable[[Config, Any], Any]
    act: Callable[[Config, Any, Any], Any]
    writes: tuple[str, ...]  # 'table OP' in order of first occurrence; 'table OP #k' in the act's k-th transaction
    after_commit: tuple[str, ...] = ()  # writes made outside a transaction on purpose (push after commit)
    # From this transaction of the act on, a failure is caught by design (reported in the act's result):
    # radios and firewall come after the commit of the act's own rows; their failure must not undo them.
    swallows_from: int | None = None
    raises: type[BaseException] | None = None  # what the act raises even without an injected failure
    check: Callable[[Config, Any, Any], None] | None = None  # more to assert after the act (test_writes)
    radio: bool = False  # a replayed hostapd (fixture fake_radio) on wlan0 for the steps after the commit


def _admit_setup(cfg, db):
    old = council(db, members=1, active=False, day="2026-11-01")
    s = council(db, members=2)
    m = service.members(db, s.id)[0]
    device = Device("10.77.1.9", "02:00:00:00:00:09", "member", m, False)
    # still live from an earlier session: admit closes it and opens the new one
    db.execute("INSERT INTO admissions(session_id, mac, ip, kind, admitted_at) VALUES (?, ?, ?, 'guest', ?)",
               [old.id, device.mac, device.ip, "2026-11-01T10:00:00.000000Z"])
    return s, device


def _admit_with_code_setup(cfg, db):
    s = council(db, members=2)
    m = service.members(db, s.id)[0]
    guest = Device("10.77.1.7", "02:00:00:00:00:07", "guest", None, False)
    admission.admit(db, NullHelper(), guest, s)
    return s, guest, m


def _revoke_setup(cfg, db):
    s = council(db, members=2)
    for i, m in enumerate(service.members(db, s.id)):
        admission.admit(db, NullHelper(), Device(f"10.77.1.{i + 20}", f"02:00:00:00:01:{i:02x}", "member", m, False),
                        s)
    return s


def _live_with_admissions(cfg, db, day: str = "2026-12-01") -> service.Session:
    """The live session with two members, each with a phone on the radio and admitted (the radio and the
    firewall to update after the commit)."""
    s = council(db, members=2, day=day)
    phones = []
    for i, m in enumerate(service.members(db, s.id)):
        mac = f"02:00:00:00:02:{i:02x}"
        _RADIOS[cfg.hostapd_ctrl_dir].connect(mac, keyid=m.keyid)
        phones.append(Station(mac, m.keyid, ("AUTHORIZED",)))
        admission.admit(db, NullHelper(), Device(f"10.77.1.{i + 40}", mac, "member", m, False), s)
    radio.sync_stations(db, "wlan0", phones)
    return s


def _radio_dropped_the_phones(cfg, db, st) -> None:
    fake = _RADIOS[cfg.hostapd_ctrl_dir]
    assert "RELOAD_WPA_PSK" in fake.commands_received
    assert fake.stations == {}, "the phones with revoked keys are still on the radio"


def _switch_setup(cfg, db):
    _live_with_admissions(cfg, db)
    return council(db, members=2, active=False, day="2026-12-02")


def _late_setup(cfg, db):
    return council(db, members=1)


def _presence_wipe_setup(cfg, db):
    s, m = _presence_setup(cfg, db)
    presence.correct(db, s.id, m.id, "present", "Karte vergessen", "clerk", grace=60)
    presence.record(db, s.id, m.id, Obs(time.time(), "connect", "02:00:00:00:00:01", "hostapd"), grace=60)
    return s


def _code_setup(cfg, db):
    s = council(db, members=2)
    m = service.members(db, s.id)[0]
    return m.code, Device("10.77.1.8", "02:00:00:00:00:08", "unknown", None, False)


def _expired_login(db, role: Role = CLERK) -> None:
    db.execute("INSERT INTO settings(key, value) VALUES (?, '2000-01-01T00:00:00Z')", [role.session_prefix + "old"])


def _password_setup(cfg, db, role: Role = CLERK) -> str:
    logins.set_password(db, "alt-alt-alt-alt", role=role)
    return logins.start_session(db, role)


def _attempt_setup(cfg, db):
    """A clerk password, a session of this browser (replaced by the login), an expired one, and another
    address's failures too old to count."""
    sid = _password_setup(cfg, db)
    _expired_login(db)
    db.execute("INSERT INTO login_throttle(role, ip, failures, last_at) VALUES (?, '10.77.0.99', '[1.0]', 1.0)",
               [CLERK.name])
    return time.time(), sid


def _login_view_setup(cfg, db):
    from appliance.web.app import create_app

    return create_app(cfg, helper=NullHelper(), testing=True), _attempt_setup(cfg, db)[1]


def _login_view(cfg, db, st):
    """The login form posted with the right password by a browser that had a session (the view function
    itself: no CSRF hook in front)."""
    from flask import g, session

    from appliance.web import auth

    app, sid = st
    with app.test_request_context("/clerk/login", method="POST", environ_base={"REMOTE_ADDR": "10.77.0.2"},
                                  data={"password": "alt-alt-alt-alt"}):
        g.db = db
        session[CLERK.cookie_key] = sid
        auth._login(CLERK)
        assert session[CLERK.cookie_key] != sid


def _presence_setup(cfg, db):
    s = council(db, members=2)
    return s, service.members(db, s.id)[0]


def _tick_setup(cfg, db):
    s, m = _presence_setup(cfg, db)
    t = time.time() - 3600
    presence.record(db, s.id, m.id, Obs(t, "connect", "02:00:00:00:00:01", "hostapd"), grace=60)
    presence.record(db, s.id, m.id, Obs(t + 10, "disconnect", "02:00:00:00:00:01", "hostapd"), grace=60)
    return s, m


def _chat_setup(cfg, db):
    s = council(db, members=2)
    viewer = member_viewer(db, s)
    msg, _ = chat.post(db, viewer, "all", "c1-0000000000", "Guten Morgen")
    return s, viewer, msg


def _chat_wipe_setup(cfg, db):
    s, viewer, msg = _chat_setup(cfg, db)
    chat.set_settings(db, s.id, Settings(direct_messages=True), "clerk")
    chat.mute(db, s.id, "device:02:00:00:00:00:33", "clerk")
    return s


def _retention_setup(cfg, db):
    old = council(db, members=2, active=False, day="2020-01-01")
    m = service.members(db, old.id)[0]
    presence.record(db, old.id, m.id, Obs(time.time(), "connect", "02:00:00:00:00:01", "hostapd"), grace=60)
    presence.correct(db, old.id, m.id, "present", "Karte vergessen", "clerk", grace=60)
    viewer = Viewer("member", old.id, m, True, "10.77.1.5", "02:00:00:00:00:05")
    chat.post(db, viewer, "all", "c1-0000000000", "alt")
    chat.mute(db, old.id, "device:02:00:00:00:00:33", "clerk")
    chat.set_settings(db, old.id, Settings(guests_chat=True), "clerk")
    # its votes: a closed named vote (ballots with names, faction counts), a conflict, a paper election, the log
    clerk = Viewer("clerk", old.id)
    db.execute("UPDATE members SET voting = 1 WHERE session_id = ?", [old.id])  # the roster CSV gave none
    m2 = service.members(db, old.id)[1]
    db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) VALUES (?, ?, ?, 'wifi')",
               [old.id, m2.id, time.time()])
    _ok(vote_acts.set_conflicted(db, clerk, old.id, None, m.id, True, now=VT - 10))
    vid = vote_acts.open_vote(db, clerk, old.id, question="Zustimmen?", mode="named", now=VT).vote_id
    _ok(vote_acts.cast(db, Viewer("member", old.id, m2, True), old.id, vid, m2.id, "yes", _ballot_key(1), now=VT))
    _ok(vote_acts.close_vote(db, clerk, old.id, now=VT + 5))
    _ok(vote_acts.record_paper(db, clerk, old.id, "election", title="Wahl", now=VT + 9, counts={m2.name: 2}, no=0))
    council(db, members=1)  # the active one stays
    long_ago = "2020-01-02T10:00:00.000000Z"
    db.execute("INSERT INTO stations(mac, interface, keyid, connected, connected_at, disconnected_at) "
               "VALUES ('02:00:00:00:00:b1', 'wlan0', 'k1', 0, ?, ?)", [long_ago, long_ago])
    db.execute("INSERT INTO monitor_points(series, res, ts, value) VALUES ('cpu', 1, 1577959200, 1.0)")
    db.execute("INSERT INTO monitor_alerts(kind, subject, severity, message, value, started_at, ended_at) "
               "VALUES ('temp', 'soc', 'warning', 'heiß', 80, 1577959200, 1577959300)")
    db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
               "VALUES (?, '02:00:00:00:00:b1', '10.77.1.5', ?, 'member', ?)", [old.id, m.id, long_ago])
    db.execute("INSERT INTO audit(at, actor, action, detail) VALUES (?, 'portal', 'admission.admit', "
               "'mac=02:00:00:00:00:b1 ip=10.77.1.5')", [long_ago])
    return None


def _stations_setup(cfg, db):
    radio.sync_stations(db, "wlan0", [Station("02:00:00:00:00:a1", "k1", ("AUTHORIZED",)),
                                      Station("02:00:00:00:00:a2", "k2", ("AUTHORIZED",))])
    return None


def _monitor_setup(cfg, db):
    from appliance.monitor.collector import Collector
    from appliance.monitor.system import SystemReader

    cfg = replace(cfg, radios=()).validate()
    now = float(int(time.time()))
    snap = Collector(cfg, system=SystemReader(proc=FIX / "proc", sys=FIX / "sys", vcgencmd=None),
                     clock=lambda: now).sample()
    old = int(now) - 2 * 86400
    db.conn.executemany("INSERT INTO monitor_points (series, res, ts, value) VALUES (?, ?, ?, ?)",
                        [("cpu", timeseries.SECOND, old, 1.0), ("cpu", timeseries.MINUTE, old, 1.0)])
    db.execute("INSERT INTO monitor_alerts (kind, subject, severity, message, value, started_at) "
               "VALUES ('temp', 'soc', 'warning', 'heiß', 80, ?)", [now - 600])
    mon = Monitor(cfg, FakeCollector(snap), clock=lambda: now)
    mon.db.conn.close()
    return mon


def _monitor_act(cfg, db, mon):
    mon.db = db
    return mon.tick()


def _docs_setup(cfg, db):
    s = council(db, members=1)
    item = docs.add_item(db, s.id, "Haushalt", number="3")
    secret = docs.add_item(db, s.id, "Personalsache", number="NÖ 4", public=False)
    store_file(cfg, db, s, "einladung.pdf")
    store_file(cfg, db, s, "haushalt.pdf", item=item, data=PDF + b"%1\n")
    store_file(cfg, db, s, "personal.pdf", item=secret, data=PDF + b"%2\n")
    db.execute("INSERT INTO doc_imports(session_id, source, state, started_at, updated_at) "
               "VALUES (?, 'https://oparl.example/m/1', 'done', '2026-12-01', '2026-12-01')", [s.id])
    return s


def _bulk_entries() -> list[bulk.Entry]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("einladung.pdf", PDF + b"%e\n")
        zf.writestr("TOP 1 Haushalt/plan.pdf", PDF + b"%p\n")
        zf.writestr("TOP 2 Schule/antrag.pdf", PDF + b"%a\n")
    buf.seek(0)
    return bulk.zip_entries(zipfile.ZipFile(buf), [])


def _replace_setup(cfg, db):
    """A file v.pdf, and the new bytes of its next version (stored, no row yet)."""
    s = council(db, members=0)
    store_file(cfg, db, s, "v.pdf")
    return s, docs.blobs_for(cfg.state_dir).put_bytes(PDF + b"%v2\n")


def _oparl_setup(cfg, db):
    s = council(db, members=0, active=False)
    return jobs.begin(db, s.id, "https://oparl.example/m/1")


def _oparl_folder_setup(cfg, db):
    """A folder of saved OParl JSON: one meeting, one agenda item, no files (a file's blob is stored before its
    row by design of the resumable import; add_file has its own case)."""
    s = council(db, members=0, active=False)
    folder = cfg.state_dir.parent / "oparl-stick"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meeting.json").write_text(json.dumps({
        "id": "https://oparl.example/m/1", "type": "https://schema.oparl.org/1.1/Meeting", "name": "Rat",
        "agendaItem": [{"id": "https://oparl.example/ai/1", "number": "1", "name": "Haushalt", "public": True}]}))
    return s, folder


def _download_setup(cfg, db):
    s = council(db, members=1)
    fid = store_file(cfg, db, s, "personal.pdf", public=False)
    return member_viewer(db, s), docs.get_file(db, fid)


def _edit_setup(cfg, db):
    """_docs_setup, a second file under "Haushalt" and the member's read of haushalt.pdf (doc_reads)."""
    s = _docs_setup(cfg, db)
    item, secret = (i.id for i in docs.items(db, s.id))
    store_file(cfg, db, s, "anlage.pdf", item=item, data=PDF + b"%3\n")
    by_name = {f.name: f.id for f in docs.files(db, s.id)}
    docs.log_download(db, member_viewer(db, s), docs.get_file(db, by_name["haushalt.pdf"]), "file")
    return s, item, secret, by_name


def _optimise_setup(cfg, db):
    """A 'scanned' PDF that Ghostscript makes much smaller (issue 16)."""
    return store_file(cfg, db, council(db, members=0), "scan.pdf", data=pdf_samples.scan(600))


def _speakers_setup(cfg, db):
    """Running the session: three members and an agenda item, the first member chairs; the third speaks, the
    first and second wait, the first asked for an intervention to the speech; the list was closed and reopened."""
    s = council(db, members=3)
    item = docs.add_item(db, s.id, "Haushalt", number="5")
    clerk = Viewer("clerk", s.id)
    a, b, c = (Viewer("member", s.id, m, True) for m in service.members(db, s.id))
    speaker_acts.set_chair(db, clerk, s.id, a.member.id)
    speaker_acts.set_current_item(db, clerk, s.id, item)
    speaker_acts.request(db, c, s.id, now=1000.0)
    speaker_acts.call_next(db, clerk, s.id, now=1001.0)
    ra = speaker_acts.request(db, a, s.id, now=1002.0).request_id
    rb = speaker_acts.request(db, b, s.id, now=1003.0).request_id
    ri = speaker_acts.request(db, a, s.id, "intervention", now=1004.0).request_id
    speaker_acts.close_list(db, clerk, s.id)
    speaker_acts.reopen_list(db, clerk, s.id)
    return s, item, clerk, a, b, c, ra, rb, ri


def _session_done_setup(cfg, db):
    """_speakers_setup, and the session voted: two members present, a named vote closed (names kept), one member
    conflicted, a paper election recorded — what the clerk wipes after the minutes."""
    st = _speakers_setup(cfg, db)
    s, item, clerk, a, b, c = st[:6]
    db.execute("UPDATE members SET voting = 1 WHERE session_id = ?", [s.id])  # the roster CSV gave none
    for v in (a, b):
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [s.id, v.member.id, VT - 60])
    _ok(vote_acts.set_conflicted(db, clerk, s.id, item, c.member.id, True, now=VT - 10))
    vid = vote_acts.open_vote(db, a, s.id, question="Zustimmen?", mode="named", now=VT).vote_id
    for i, v in enumerate((a, b)):
        _ok(vote_acts.cast(db, v, s.id, vid, v.member.id, "yes", _ballot_key(i), now=VT + 1))
    _ok(vote_acts.close_vote(db, a, s.id, now=VT + 5))
    _ok(vote_acts.record_paper(db, clerk, s.id, "dhondt", title="Sitze", now=VT + 9, counts={"A": 3, "B": 1},
                               seats=2))
    return st


def _sp(fn):
    """A speakers act on the setup above: fn(db, s, item, clerk, a, b, c, ra, rb, ri)."""
    return lambda cfg, db, st: fn(db, *st)


def _ok(out) -> None:
    assert out.ok, out.text  # a refusal would write nothing and prove nothing


# --- votes (issue 14) ---------------------------------------------------------------------------------------

VT = 1_800_000_000.0  # the votes' clock


@dataclass(frozen=True)
class VoteRoom:
    s: service.Session
    item: int
    clerk: Viewer
    chair: Viewer
    m: dict  # first name -> Viewer of that member's own device


def _vote_room(cfg, db) -> VoteRoom:
    """Rat: Anna, Bernd (SPD), Carla (CDU, chairs), Dirk (CDU), Fritz (Grüne, absent) vote; Dora (Grüne) is a
    deputy. All but Fritz are in the room; the room is on TOP 5."""
    s = service.create_session(db, body="Rat", title="Sitzung", day="2026-12-07")
    service.insert_members(db, s.id, [
        roster.MemberRow("Anna Schmidt", "SPD", "member", True, "Rat"),
        roster.MemberRow("Bernd Müller", "SPD", "member", True, "Rat"),
        roster.MemberRow("Carla Weber", "CDU", "member", True, "Rat"),
        roster.MemberRow("Dirk Berg", "CDU", "member", True, "Rat"),
        roster.MemberRow("Fritz Alt", "Grüne", "member", True, "Rat"),
        roster.MemberRow("Dora Klein", "Grüne", "deputy", False, "Rat")])
    service.set_active(db, s.id)
    s = service.get_session(db, s.id)
    ms = {m.name.split()[0]: m for m in service.members(db, s.id)}
    item = docs.add_item(db, s.id, "Haushalt 2027", number="5")
    clerk = Viewer("clerk", s.id)
    _ok(speaker_acts.set_chair(db, clerk, s.id, ms["Carla"].id))
    _ok(speaker_acts.set_current_item(db, clerk, s.id, item))
    for name in ("Anna", "Bernd", "Carla", "Dirk", "Dora"):
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [s.id, ms[name].id, VT - 600])
    m = {n: Viewer("member", s.id, mm, True, f"10.77.1.{60 + i}") for i, (n, mm) in enumerate(ms.items())}
    return VoteRoom(s, item, clerk, m["Carla"], m)


def _ballot_key(n: int) -> str:
    return f"k{n:015d}"


def _vote_ready(cfg, db) -> VoteRoom:
    """The room before a vote: Dora stands in for the absent Fritz, Dirk is conflicted on TOP 5."""
    r = _vote_room(cfg, db)
    _ok(vote_acts.set_deputy(db, r.clerk, r.s.id, r.m["Dora"].member.id, r.m["Fritz"].member.id, now=VT - 60))
    _ok(vote_acts.set_conflicted(db, r.clerk, r.s.id, r.item, r.m["Dirk"].member.id, True, now=VT - 50))
    return r


def _casting(cfg, db, mode: str = "open") -> tuple[VoteRoom, int]:
    """A vote running on TOP 5 (_vote_ready): Anna and Bernd voted from their phones (with idempotency keys),
    the clerk entered Carla's vote by hand; Dora has not voted yet."""
    r = _vote_ready(cfg, db)
    out = vote_acts.open_vote(db, r.chair, r.s.id, question="Dem Haushalt zustimmen?", mode=mode, now=VT)
    _ok(out)
    for i, (name, choice) in enumerate((("Anna", "yes"), ("Bernd", "no"))):
        _ok(vote_acts.cast(db, r.m[name], r.s.id, out.vote_id, r.m[name].member.id, choice, _ballot_key(i),
                           now=VT + 1 + i))
    _ok(vote_acts.enter_by_hand(db, r.clerk, r.s.id, out.vote_id, r.m["Carla"].member.id, "abstain", now=VT + 4))
    return r, out.vote_id


def _closed(cfg, db) -> tuple[VoteRoom, int]:
    r, vid = _casting(cfg, db)
    _ok(vote_acts.close_vote(db, r.chair, r.s.id, now=VT + 10))
    return r, vid


def _due(cfg, db) -> tuple[VoteRoom, int]:
    r, vid = _casting(cfg, db)
    _ok(vote_acts.set_countdown(db, r.chair, r.s.id, 5, now=VT + 5))
    return r, vid


def _votes_wipe_setup(cfg, db) -> VoteRoom:
    """A session after the votes: a closed named vote, a cancelled open one, a paper election; deputies,
    conflicts and the log."""
    r, _vid = _casting(cfg, db, mode="named")
    _ok(vote_acts.close_vote(db, r.chair, r.s.id, now=VT + 10))
    _ok(vote_acts.open_vote(db, r.chair, r.s.id, question="Vertagen?", now=VT + 20))
    _ok(vote_acts.cast(db, r.m["Anna"], r.s.id, _open_id(db, r), r.m["Anna"].member.id, "yes",
                       _ballot_key(9), now=VT + 21))
    _ok(vote_acts.cancel_vote(db, r.chair, r.s.id, now=VT + 22, reason="Störung"))
    _ok(vote_acts.record_paper(db, r.clerk, r.s.id, "election", title="Wahl der Schriftführung", now=VT + 30,
                               counts={"Anna Schmidt": 3, "Bernd Müller": 1}, no=0))
    return r


def _arrived(cfg, db) -> tuple[VoteRoom, int]:
    """An open vote with nobody standing in for the absent Fritz; Anna voted; then Fritz arrives: he may vote,
    and his first cast creates his ballot."""
    r = _vote_room(cfg, db)
    vid = vote_acts.open_vote(db, r.chair, r.s.id, question="Dem Haushalt zustimmen?", now=VT).vote_id
    _ok(vote_acts.cast(db, r.m["Anna"], r.s.id, vid, r.m["Anna"].member.id, "yes", _ballot_key(1), now=VT + 1))
    db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) VALUES (?, ?, ?, 'wifi')",
               [r.s.id, r.m["Fritz"].member.id, VT + 5])
    return r, vid


def _closed_by_countdown(db, st, closed: list[int]) -> None:
    assert closed == [st[1]], closed  # the due vote closed, by the tick's act


def _open_id(db, r: VoteRoom) -> int:
    return int(db.execute("SELECT id FROM votes WHERE session_id = ? AND state = 'open'", [r.s.id]).fetchone()[0])


def _v(fn):
    """A votes act on a setup returning (VoteRoom, vote_id): fn(db, r, vote_id); a refusal fails the case."""
    return lambda cfg, db, st: _ok(fn(db, *st))


CASES = [
    # sessions, members, keys
    Case("create_session", ("sessions/service.py:create_session#1",), lambda cfg, db: None,
         lambda cfg, db, st: service.create_session(db, body="Rat", title="Neu", day="2026-12-02"),
         ("sessions INSERT", "audit INSERT")),
    Case("activate_session", ("usecases/sessions.py:activate_session#1", "sessions/service.py:set_active#1"),
         _switch_setup, lambda cfg, db, s: session_acts.activate_session(cfg, db, NullHelper(), s.id, "clerk"),
         ("sessions UPDATE", "audit INSERT", "admissions UPDATE #2", "audit INSERT #2"), swallows_from=2,
         check=_radio_dropped_the_phones, radio=True),
    Case("set_active", ("sessions/service.py:set_active#1",), _switch_setup,
         lambda cfg, db, s: service.set_active(db, s.id),
         ("sessions UPDATE",), radio=True),
    Case("import_members", ("usecases/sessions.py:import_members#1", "sessions/service.py:insert_members#1"),
         lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: session_acts.import_members(cfg, db, NullHelper(), s.id, roster_csv(250).encode(),
                                                        "clerk"),
         ("members INSERT", "audit INSERT")),
    Case("insert_members", ("sessions/service.py:insert_members#1",), lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: service.insert_members(db, s.id, roster_rows(250)),
         ("members INSERT",)),
    Case("rotate_keys", ("usecases/sessions.py:rotate_keys#1", "sessions/service.py:replace_keys#1"),
         lambda cfg, db: _live_with_admissions(cfg, db),
         lambda cfg, db, s: session_acts.rotate_keys(cfg, db, NullHelper(), s.id, "clerk"),
         ("members UPDATE", "sessions UPDATE", "audit INSERT", "admissions UPDATE #2", "audit INSERT #2"),
         swallows_from=2, check=_radio_dropped_the_phones, radio=True),
    Case("replace_keys", ("sessions/service.py:replace_keys#1",), lambda cfg, db: council(db, members=5),
         lambda cfg, db, s: service.replace_keys(db, s.id),
         ("members UPDATE", "sessions UPDATE")),
    # admission
    Case("admit", ("captive/admission.py:admit#1",), _admit_setup,
         lambda cfg, db, st: admission.admit(db, NullHelper(), st[1], st[0]),
         ("admissions UPDATE", "admissions INSERT", "audit INSERT")),
    Case("admit_refused", ("captive/admission.py:admit#2",), _admit_setup,
         lambda cfg, db, st: admission.admit(db, RefusingHelper(), st[1], st[0]),
         ("admissions UPDATE", "admissions INSERT", "audit INSERT", "admissions DELETE #2", "audit INSERT #2"),
         raises=HelperError),
    Case("admit_with_code", ("captive/admission.py:admit_with_code#1",), _admit_with_code_setup,
         lambda cfg, db, st: admission.admit_with_code(db, NullHelper(), st[1], st[2], st[0]),
         ("admissions UPDATE", "admissions INSERT", "audit INSERT")),
    Case("enter_personal_code", ("captive/admission.py:admit#1",), _code_setup,
         lambda cfg, db, st: portal_acts.enter_personal_code(cfg, db, NullHelper(), st[1], st[0]),
         ("admissions INSERT", "audit INSERT")),
    Case("revoke_session_devices", ("captive/admission.py:_revoke_rows#1",), _revoke_setup,
         lambda cfg, db, s: admission.revoke_session_devices(db, NullHelper(), s.id),
         ("admissions UPDATE", "audit INSERT")),
    # clerk and technician logins
    Case("set_password", ("usecases/login.py:set_password#1",), _password_setup,
         lambda cfg, db, st: logins.set_password(db, "neu-neu-neu-neu"),
         ("settings INSERT", "settings DELETE", "audit INSERT")),
    Case("set_technician_password", ("usecases/login.py:set_password#1",),
         lambda cfg, db: _password_setup(cfg, db, TECHNICIAN),
         lambda cfg, db, st: logins.set_password(db, "neu-neu-neu-neu", role=TECHNICIAN),
         ("settings INSERT", "settings DELETE", "audit INSERT")),
    Case("ensure_password", ("usecases/login.py:ensure_password#1",), lambda cfg, db: None,
         lambda cfg, db, st: logins.ensure_password(db),
         ("settings INSERT", "audit INSERT")),
    Case("start_session", ("usecases/login.py:start_session#1",), lambda cfg, db: _expired_login(db),
         lambda cfg, db, st: logins.start_session(db),
         ("settings DELETE", "settings INSERT")),
    Case("end_session", ("usecases/login.py:end_session#1",), lambda cfg, db: logins.start_session(db),
         lambda cfg, db, sid: logins.end_session(db, sid),
         ("settings DELETE",)),
    Case("login", ("usecases/login.py:attempt#1", "usecases/login.py:attempt#2"), _attempt_setup,
         lambda cfg, db, st: logins.attempt(db, CLERK, "10.77.0.2", "alt-alt-alt-alt", st[0], replaces=st[1]),
         ("login_throttle INSERT", "login_throttle DELETE", "login_throttle DELETE #2", "settings DELETE #2",
          "settings INSERT #2", "audit INSERT #2")),
    Case("login_view", ("usecases/login.py:attempt#2",), _login_view_setup, _login_view,
         ("login_throttle INSERT", "login_throttle DELETE", "login_throttle DELETE #2", "settings DELETE #2",
          "settings INSERT #2", "audit INSERT #2")),
    Case("login_failed", ("usecases/login.py:attempt#1", "usecases/login.py:attempt#2"), _attempt_setup,
         lambda cfg, db, st: logins.attempt(db, CLERK, "10.77.0.2", "falsch", st[0], replaces=st[1]),
         ("login_throttle INSERT", "login_throttle DELETE", "audit INSERT #2")),
    # the room screen's display links (issue 13)
    Case("create_display", ("usecases/displays.py:create_display#1",), lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: display_acts.create_display(cfg, db, s.id, "clerk", "Beamer"),
         ("displays INSERT", "audit INSERT")),
    Case("revoke_display", ("usecases/displays.py:revoke_display#1",),
         lambda cfg, db: display_acts.create_display(cfg, db, council(db, members=0).id, "clerk")[0],
         lambda cfg, db, d: display_acts.revoke_display(cfg, db, d.id, "clerk"),
         ("displays UPDATE", "audit INSERT", "push_events INSERT")),
    # presence
    Case("presence_record", ("presence/store.py:record#1",), _presence_setup,
         lambda cfg, db, st: presence.record(db, st[0].id, st[1].id,
                                             Obs(time.time(), "connect", "02:00:00:00:00:01", "hostapd"), grace=60),
         ("presence_devices INSERT", "presence_intervals INSERT", "push_events INSERT"),
         after_commit=("push_events INSERT",)),
    Case("presence_tick", ("presence/store.py:tick_session#1",), _tick_setup,
         lambda cfg, db, st: presence.tick_session(db, st[0].id, grace=60),
         ("presence_devices DELETE", "presence_intervals UPDATE", "push_events INSERT"),
         after_commit=("push_events INSERT",)),
    Case("presence_correct", ("presence/store.py:correct#1",), _presence_setup,
         lambda cfg, db, st: presence.correct(db, st[0].id, st[1].id, "present", "Karte vergessen", "clerk",
                                              grace=60),
         ("presence_corrections INSERT", "presence_state INSERT", "presence_intervals INSERT",
          "push_events INSERT")),
    Case("wipe_presence", ("usecases/presence.py:wipe_presence#1", "presence/store.py:wipe#1"),
         _presence_wipe_setup, lambda cfg, db, s: presence_acts.wipe_presence(cfg, db, s.id, "clerk"),
         ("presence_devices DELETE", "presence_state DELETE", "presence_intervals DELETE",
          "presence_corrections DELETE", "push_events DELETE", "audit INSERT")),
    Case("presence_store_wipe", ("presence/store.py:wipe#1",), _presence_wipe_setup,
         lambda cfg, db, s: presence.wipe(db, s.id),
         ("presence_devices DELETE", "presence_state DELETE", "presence_intervals DELETE",
          "presence_corrections DELETE")),
    # chat
    Case("chat_settings", ("chat/store.py:set_settings#1",), lambda cfg, db: council(db),
         lambda cfg, db, s: chat.set_settings(db, s.id, Settings(direct_messages=True), "clerk"),
         ("chat_settings INSERT", "audit INSERT")),
    Case("chat_post", ("chat/store.py:post#1",), _chat_setup,
         lambda cfg, db, st: chat.post(db, st[1], "all", "c2-0000000000", "Zweite Nachricht"),
         ("chat_messages INSERT", "push_events INSERT"), after_commit=("push_events INSERT",)),
    Case("chat_mark_read", ("chat/store.py:mark_read#1",), _chat_setup,
         lambda cfg, db, st: chat.mark_read(db, st[1], "all", st[2].id),
         ("chat_reads INSERT",)),
    Case("chat_hide", ("chat/store.py:hide#1",), _chat_setup,
         lambda cfg, db, st: chat.hide(db, st[0].id, st[2].id, "clerk"),
         ("chat_messages UPDATE", "audit INSERT", "push_events INSERT")),
    Case("chat_mute", ("chat/store.py:mute#1",), _chat_setup,
         lambda cfg, db, st: chat.mute(db, st[0].id, f"member:{st[1].member.id}", "clerk"),
         ("chat_mutes INSERT", "audit INSERT")),
    Case("chat_wipe", ("chat/store.py:wipe#1",), _chat_wipe_setup,
         lambda cfg, db, s: chat.wipe(db, s.id, "clerk"),
         ("chat_messages DELETE", "chat_mutes DELETE", "chat_settings DELETE", "push_events DELETE",
          "audit INSERT")),
    Case("retention_purge", ("retention.py:purge#1", "usecases/votes.py:wipe#1"), _retention_setup,
         lambda cfg, db, st: retention_purge(db),
         ("presence_devices DELETE", "presence_state DELETE", "presence_intervals DELETE",
          "presence_corrections DELETE", "chat_messages DELETE", "chat_mutes DELETE", "chat_settings DELETE",
          "push_events DELETE", "admissions DELETE", "vote_log_purge INSERT", "vote_log DELETE", "vote_paper DELETE",
          "vote_conflicts DELETE", "votes DELETE", "vote_faction_counts DELETE", "vote_ballots DELETE",
          "vote_log_purge DELETE", "members UPDATE", "stations DELETE", "monitor_points DELETE",
          "monitor_alerts DELETE", "audit UPDATE", "audit INSERT")),
    # radio and monitor daemons
    Case("sync_stations", ("radio/daemon.py:sync_stations#1",), _stations_setup,
         lambda cfg, db, st: radio.sync_stations(db, "wlan0", [Station("02:00:00:00:00:a1", "k1", ("AUTHORIZED",)),
                                                               Station("02:00:00:00:00:a3", "k3", ("AUTHORIZED",))]),
         ("stations INSERT", "stations UPDATE")),
    Case("station_connected", ("radio/daemon.py:apply_event#1",), lambda cfg, db: None,
         lambda cfg, db, st: radio.apply_event(db, "wlan0", Event("connected", "AP-STA-CONNECTED",
                                                                  "02:00:00:00:00:a1", "k1")),
         ("stations INSERT",)),
    Case("station_disconnected", ("radio/daemon.py:apply_event#2",), _stations_setup,
         lambda cfg, db, st: radio.apply_event(db, "wlan0", Event("disconnected", "AP-STA-DISCONNECTED",
                                                                  "02:00:00:00:00:a1")),
         ("stations UPDATE",)),
    Case("monitor_tick", ("monitor/daemon.py:Monitor.tick#1",), _monitor_setup, _monitor_act,
         ("monitor_state INSERT", "monitor_points INSERT", "monitor_alerts UPDATE", "monitor_points DELETE")),
    # documents
    Case("add_item", ("documents/service.py:add_item#1",), lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: docs.add_item(db, s.id, "Haushalt", number="3"),
         ("doc_items INSERT", "audit INSERT")),
    Case("add_file", ("documents/service.py:put_file#1",),
         lambda cfg, db: (council(db, members=0), docs.blobs_for(cfg.state_dir).put_bytes(PDF)),
         lambda cfg, db, st: docs.add_file(db, st[0].id, name="v.pdf", stored=st[1], mime="application/pdf"),
         ("doc_files INSERT", "audit INSERT")),
    Case("replace_file", ("documents/service.py:put_file#1",), _replace_setup,
         lambda cfg, db, st: docs.put_file(db, st[0].id, name="v.pdf", stored=st[1], mime="application/pdf"),
         ("doc_files INSERT", "doc_files DELETE", "audit INSERT")),
    Case("wipe_documents", ("usecases/documents.py:wipe_documents#1", "documents/service.py:delete_rows#1"),
         _docs_setup, lambda cfg, db, s: doc_acts.wipe_documents(cfg, db, s.id, "clerk", nonpublic_only=False),
         ("doc_files DELETE", "doc_items DELETE", "doc_imports DELETE", "audit INSERT")),
    Case("wipe_documents_nonpublic", ("usecases/documents.py:wipe_documents#1",), _docs_setup,
         lambda cfg, db, s: doc_acts.wipe_documents(cfg, db, s.id, "clerk", nonpublic_only=True),
         ("doc_files DELETE", "doc_items DELETE", "audit INSERT")),
    Case("delete_rows", ("documents/service.py:delete_rows#1",), _docs_setup,
         lambda cfg, db, s: docs.delete_rows(db, s.id, nonpublic_only=False),
         ("doc_files DELETE", "doc_items DELETE", "doc_imports DELETE")),
    Case("log_download", ("documents/service.py:log_download#1",), _download_setup,
         lambda cfg, db, st: docs.log_download(db, st[0], st[1], "web"),
         ("doc_reads INSERT", "doc_downloads INSERT")),
    Case("doc_traffic", ("documents/traffic.py:write#1",), lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: traffic.write(db, {(s.id, 1, "whole"): [10, 1, 1], (s.id, 0, "zip"): [5, 0, 0]}),
         ("doc_traffic INSERT",)),
    Case("optimise_file", ("usecases/documents.py:optimise_file#1",), _optimise_setup,
         lambda cfg, db, fid: doc_acts.optimise_file(cfg, db, fid, "clerk"), ("doc_files UPDATE", "audit INSERT")),
    # correcting single items and files (issue 12)
    Case("edit_item", ("usecases/documents.py:edit_item#1",), _edit_setup,
         lambda cfg, db, st: doc_acts.edit_item(db, st[1], "clerk", title="Haushalt 2027", number="3a",
                                                public=False),
         ("doc_items UPDATE", "audit INSERT", "push_events INSERT")),
    Case("edit_file", ("usecases/documents.py:edit_file#1",), _edit_setup,
         lambda cfg, db, st: doc_acts.edit_file(db, st[3]["anlage.pdf"], "clerk", title="Anlage 1", public=False),
         ("doc_files UPDATE", "audit INSERT", "push_events INSERT")),
    Case("move_file", ("usecases/documents.py:move_file#1",), _edit_setup,
         lambda cfg, db, st: doc_acts.move_file(db, st[3]["haushalt.pdf"], st[2], "clerk"),
         ("doc_files UPDATE", "audit INSERT", "push_events INSERT")),
    Case("reorder", ("usecases/documents.py:reorder#1",), _edit_setup,
         lambda cfg, db, st: doc_acts.reorder(db, "clerk", file_id=st[3]["anlage.pdf"], step=-1),
         ("doc_files UPDATE", "audit INSERT", "push_events INSERT")),
    Case("delete_file", ("usecases/documents.py:delete_file#1",), _edit_setup,
         lambda cfg, db, st: doc_acts.delete_file(cfg, db, st[3]["haushalt.pdf"], "clerk"),
         ("doc_reads DELETE", "doc_files DELETE", "audit INSERT", "push_events INSERT")),
    Case("delete_item", ("usecases/documents.py:delete_item#1",), _edit_setup,
         lambda cfg, db, st: doc_acts.delete_item(cfg, db, st[1], "clerk", with_files=True),
         ("doc_reads DELETE", "doc_files DELETE", "doc_items DELETE", "audit INSERT", "push_events INSERT")),
    Case("replace_file_act", ("usecases/documents.py:replace_file#1", "documents/service.py:put_file#1"),
         _edit_setup,
         lambda cfg, db, st: doc_acts.replace_file(cfg, db, st[3]["haushalt.pdf"], "Haushalt neu.pdf",
                                                   io.BytesIO(PDF + b"%neu\n"), "clerk"),
         ("doc_files INSERT", "doc_files DELETE", "doc_reads UPDATE", "audit INSERT", "push_events INSERT")),
    Case("bulk_import", ("documents/bulk.py:write_rows#1", "documents/service.py:add_item#1",
                         "documents/service.py:put_file#1"),
         lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: bulk.import_entries(db, docs.blobs_for(cfg.state_dir), s.id, _bulk_entries()),
         ("doc_files INSERT", "audit INSERT", "doc_items INSERT")),
    Case("import_job_begin", ("documents/jobs.py:begin#1",), lambda cfg, db: council(db, members=0),
         lambda cfg, db, s: jobs.begin(db, s.id, "https://oparl.example/m/1"),
         ("doc_imports INSERT",)),
    Case("import_job_progress", ("documents/jobs.py:_set#1",), _oparl_setup,
         lambda cfg, db, import_id: jobs.progress(db, import_id, done=3, problems=["x"]),
         ("doc_imports UPDATE",)),
    Case("import_oparl", ("usecases/documents.py:import_oparl#1", "documents/jobs.py:begin#1",
                          "documents/jobs.py:_set#1", "documents/service.py:add_item#1"), _oparl_folder_setup,
         lambda cfg, db, st: doc_acts.import_oparl(cfg, db, st[0].id, str(st[1]), "cli"),
         # the job (1), the item with its audit entry (2), the job's total (3), its summary with the act's audit
         # entry (4); a failure in 2–4 marks the job failed in a further transaction and is raised
         ("doc_imports INSERT", "doc_items INSERT #2", "audit INSERT #2", "doc_imports UPDATE #3",
          "doc_imports UPDATE #4", "audit INSERT #4")),
    Case("announce_late_document", ("usecases/documents.py:announce_late_document#1", "documents/bulk.py:write_rows#1"),
         _late_setup, lambda cfg, db, s: doc_acts.announce_late_document(cfg, db, s.id, _bulk_entries(), "clerk"),
         ("doc_files INSERT", "audit INSERT", "doc_items INSERT", "push_events INSERT")),
    # running the session: the chair, the current item, the speakers list (issue 13)
    Case("speakers_set_chair", ("usecases/speakers.py:set_chair#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, *r: _ok(speaker_acts.set_chair(db, clerk, s.id, b.member.id))),
         ("speakers_session INSERT", "speakers_session UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_set_current_item", ("usecases/speakers.py:set_current_item#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, *r: _ok(speaker_acts.set_current_item(db, a, s.id, None))),
         ("speakers_session INSERT", "speakers_session UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_set_announcement", ("usecases/speakers.py:set_announcement#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, *r: _ok(speaker_acts.set_announcement(db, a, s.id, "Pause"))),
         ("speakers_session INSERT", "speakers_session UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_set_procedure", ("usecases/speakers.py:set_procedure#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, *r: _ok(speaker_acts.set_procedure(db, clerk, s.id, {"first_seconds": 240},
                                                                           item_id=item))),
         ("speakers_procedure INSERT", "audit INSERT", "push_events INSERT")),
    Case("speakers_request", ("usecases/speakers.py:request#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, *r: _ok(speaker_acts.request(db, b, s.id, "point_of_order",
                                                                              now=1010.0))),
         ("speakers_requests INSERT", "audit INSERT", "push_events INSERT")),
    Case("speakers_add_by_hand", ("usecases/speakers.py:add_by_hand#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, *r: _ok(speaker_acts.add_by_hand(db, a, s.id, c.member.id,
                                                                                  "point_of_order", now=1010.0))),
         ("speakers_requests INSERT", "audit INSERT", "push_events INSERT")),
    Case("speakers_withdraw", ("usecases/speakers.py:withdraw#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, ra, rb, ri: _ok(speaker_acts.withdraw(db, b, s.id, rb))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_remove", ("usecases/speakers.py:remove#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, ra, rb, ri: _ok(speaker_acts.remove(db, clerk, s.id, rb))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_decide_intervention", ("usecases/speakers.py:decide_intervention#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, ra, rb, ri: _ok(speaker_acts.decide_intervention(db, a, s.id, ri,
                                                                                                  True))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_move", ("usecases/speakers.py:move#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, b, c, ra, rb, ri: _ok(speaker_acts.move(db, a, s.id, rb, to=1))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_call_next", ("usecases/speakers.py:call_next#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, *r: _ok(speaker_acts.call_next(db, a, s.id, now=1100.0))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_end_speech", ("usecases/speakers.py:end_speech#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, *r: _ok(speaker_acts.end_speech(db, a, s.id, now=1100.0))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_extend", ("usecases/speakers.py:extend#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, *r: _ok(speaker_acts.extend(db, a, s.id, 60))),
         ("speakers_requests UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_close_list", ("usecases/speakers.py:set_closed#1",), _speakers_setup,
         _sp(lambda db, s, item, clerk, a, *r: _ok(speaker_acts.close_list(db, a, s.id))),
         ("speakers_lists INSERT", "speakers_lists UPDATE", "audit INSERT", "push_events INSERT")),
    Case("speakers_wipe", ("usecases/speakers.py:wipe#1", "usecases/votes.py:wipe#1"), _session_done_setup,
         _sp(lambda db, s, *r: speaker_acts.wipe(db, s.id, "clerk")),
         # deleting the requests sets the interventions' for_request to NULL first (ON DELETE SET NULL); the
         # session's votes go in the same transaction (usecases.votes.wipe, nested)
         ("speakers_requests DELETE", "speakers_requests UPDATE", "speakers_lists DELETE", "speakers_session DELETE",
          "vote_log_purge INSERT", "vote_log DELETE", "vote_paper DELETE", "vote_conflicts DELETE", "votes DELETE",
          "vote_faction_counts DELETE", "vote_ballots DELETE", "vote_log_purge DELETE", "push_events DELETE",
          "audit INSERT")),
    # votes (issue 14): each act writes its rows, one vote_log entry and (most) a push event in one transaction
    Case("votes_open", ("usecases/votes.py:open_vote#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.open_vote(db, r.chair, r.s.id, question="Dem Haushalt zustimmen?",
                                                    mode="named", now=VT)),
         ("votes INSERT", "vote_ballots INSERT", "vote_log INSERT", "push_events INSERT")),
    Case("votes_countdown", ("usecases/votes.py:set_countdown#1",), _casting,
         _v(lambda db, r, vid: vote_acts.set_countdown(db, r.chair, r.s.id, 30, now=VT + 5)),
         ("votes UPDATE", "vote_log INSERT", "push_events INSERT")),
    Case("votes_close", ("usecases/votes.py:close_vote#1",), _casting,
         _v(lambda db, r, vid: vote_acts.close_vote(db, r.chair, r.s.id, now=VT + 10)),
         # an open vote: the member-vote link goes with the count (vote_ballots UPDATE)
         ("votes UPDATE", "vote_faction_counts INSERT", "vote_cast_keys DELETE", "vote_ballots UPDATE",
          "vote_log INSERT", "push_events INSERT")),
    Case("votes_close_named", ("usecases/votes.py:close_vote#1",), lambda cfg, db: _casting(cfg, db, "named"),
         _v(lambda db, r, vid: vote_acts.close_vote(db, r.chair, r.s.id, now=VT + 10)),
         # a named vote keeps the names: no vote_ballots UPDATE
         ("votes UPDATE", "vote_faction_counts INSERT", "vote_cast_keys DELETE", "vote_log INSERT",
          "push_events INSERT")),
    Case("votes_close_due", ("usecases/votes.py:close_due#1",), _due,
         lambda cfg, db, st: _closed_by_countdown(db, st, vote_acts.close_due(db, VT + 10)),
         ("votes UPDATE", "vote_faction_counts INSERT", "vote_cast_keys DELETE", "vote_ballots UPDATE",
          "vote_log INSERT", "push_events INSERT")),
    Case("votes_cancel", ("usecases/votes.py:cancel_vote#1",), _casting,
         _v(lambda db, r, vid: vote_acts.cancel_vote(db, r.chair, r.s.id, now=VT + 10, reason="Störung")),
         ("votes UPDATE", "vote_cast_keys DELETE", "vote_ballots UPDATE", "vote_log INSERT", "push_events INSERT")),
    Case("votes_repeat", ("usecases/votes.py:repeat_vote#1", "usecases/votes.py:open_vote#1"), _closed,
         _v(lambda db, r, vid: vote_acts.repeat_vote(db, r.chair, r.s.id, vid, now=VT + 20)),
         ("votes INSERT", "vote_ballots INSERT", "vote_log INSERT", "push_events INSERT")),
    Case("votes_cast", ("usecases/votes.py:cast#1",), _casting,
         _v(lambda db, r, vid: vote_acts.cast(db, r.m["Dora"], r.s.id, vid, r.m["Dora"].member.id, "yes",
                                              _ballot_key(7), now=VT + 6)),
         ("vote_ballots UPDATE", "vote_cast_keys INSERT", "vote_log INSERT", "votes UPDATE", "push_events INSERT")),
    Case("votes_cast_arrival", ("usecases/votes.py:cast#1",), _arrived,
         _v(lambda db, r, vid: vote_acts.cast(db, r.m["Fritz"], r.s.id, vid, r.m["Fritz"].member.id, "no",
                                              _ballot_key(8), now=VT + 6)),
         # an arrival's first cast creates the ballot and raises the eligible count
         ("vote_ballots INSERT", "votes UPDATE", "vote_ballots UPDATE", "vote_cast_keys INSERT", "vote_log INSERT",
          "push_events INSERT")),
    Case("votes_change", ("usecases/votes.py:cast#1",), _casting,
         _v(lambda db, r, vid: vote_acts.cast(db, r.m["Bernd"], r.s.id, vid, r.m["Bernd"].member.id, "yes",
                                              _ballot_key(6), now=VT + 6)),
         # a changed vote: no new count, no progress event
         ("vote_ballots UPDATE", "vote_cast_keys INSERT", "vote_log INSERT")),
    Case("votes_enter_by_hand", ("usecases/votes.py:enter_by_hand#1",), _casting,
         _v(lambda db, r, vid: vote_acts.enter_by_hand(db, r.clerk, r.s.id, vid, r.m["Dora"].member.id, "no",
                                                       now=VT + 6)),
         ("vote_ballots UPDATE", "vote_log INSERT", "votes UPDATE", "push_events INSERT")),
    Case("votes_set_deputy", ("usecases/votes.py:set_deputy#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.set_deputy(db, r.clerk, r.s.id, r.m["Dora"].member.id,
                                                     r.m["Anna"].member.id, now=VT)),
         # Dora moves from Fritz to Anna: the upsert's INSERT turns into an UPDATE
         ("vote_deputies INSERT", "vote_deputies UPDATE", "vote_log INSERT")),
    Case("votes_clear_deputy", ("usecases/votes.py:set_deputy#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.set_deputy(db, r.clerk, r.s.id, r.m["Dora"].member.id, None, now=VT)),
         ("vote_deputies DELETE", "vote_log INSERT")),
    Case("votes_set_conflicted", ("usecases/votes.py:set_conflicted#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.set_conflicted(db, r.chair, r.s.id, r.item, r.m["Anna"].member.id, True,
                                                         now=VT)),
         ("vote_conflicts INSERT", "vote_log INSERT")),
    Case("votes_clear_conflicted", ("usecases/votes.py:set_conflicted#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.set_conflicted(db, r.clerk, r.s.id, r.item, r.m["Dirk"].member.id,
                                                         False, now=VT)),
         ("vote_conflicts DELETE", "vote_log INSERT")),
    Case("votes_set_may_change", ("usecases/votes.py:set_may_change#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.set_may_change(db, r.clerk, "", False, session_id=r.s.id, now=VT)),
         ("vote_settings INSERT", "vote_log INSERT")),
    Case("votes_record_paper", ("usecases/votes.py:record_paper#1",), _vote_ready,
         lambda cfg, db, r: _ok(vote_acts.record_paper(db, r.clerk, r.s.id, "hare_niemeyer", now=VT,
                                                       title="Sitze im Hauptausschuss", seats=5,
                                                       counts={"SPD": 2, "CDU": 2, "Grüne": 1})),
         ("vote_paper INSERT", "vote_log INSERT")),
    Case("votes_wipe", ("usecases/votes.py:wipe#1",), _votes_wipe_setup,
         lambda cfg, db, r: vote_acts.wipe(db, r.s.id, "clerk"),
         # ballots and faction counts go with their votes (ON DELETE CASCADE); the purge row only while the log goes
         ("vote_log_purge INSERT", "vote_log DELETE", "vote_paper DELETE", "vote_conflicts DELETE",
          "vote_deputies DELETE", "votes DELETE", "vote_faction_counts DELETE", "vote_ballots DELETE",
          "vote_log_purge DELETE")),
]


def retention_purge(db) -> list[int]:
    from appliance import retention

    return retention.purge(db, days=30, today=date(2026, 12, 1))


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def _run(case: Case, cfg: Config, db, st) -> BaseException | None:
    try:
        case.act(cfg, db, st)
    except Exception as exc:  # noqa: BLE001 - returned to the test to judge
        return exc
    return None


def _chain(exc: BaseException | None) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_writes(case: Case, cfg: Config, db, request) -> None:
    """The act does the declared writes, and each inside a transaction unless declared after_commit."""
    if case.radio:
        request.getfixturevalue("fake_radio")
    st = case.setup(cfg, db)
    with recording(db) as rec:
        err = _run(case, cfg, db, st)
    if case.raises is None:
        assert err is None, f"{case.name} failed without an injected failure: {err!r}"
    else:
        assert isinstance(err, case.raises), err
    assert tuple(rec.labels()) == case.writes
    outside = rec.outside()
    assert outside == sorted(case.after_commit), (
        f"{case.name} writes outside a transaction: {outside} (not all or nothing with the rest of the act)")
    if case.check is not None:
        case.check(cfg, db, st)


def _failures() -> list:
    return [pytest.param(c, w, id=f"{c.name}-{w.replace(' #', '-').replace(' ', '-')}")
            for c in CASES for w in c.writes if w not in c.after_commit]


@pytest.mark.parametrize(("case", "write"), _failures())
def test_all_or_nothing(case: Case, write: str, cfg: Config, tmp_path: Path, request) -> None:
    """The last write of this kind fails: its transaction leaves the database as it was when it began."""
    if case.radio:
        request.getfixturevalue("fake_radio")
    table, op = write.split()[:2]
    # A twin built the same way learns how many such writes the act makes and in which of its transactions.
    twin_cfg = replace(cfg, state_dir=tmp_path / "twin", run_dir=tmp_path / "twin-run",
                       helper_socket=tmp_path / "twin-run" / "h.sock",
                       leases_file=tmp_path / "twin" / "dnsmasq.leases").validate()
    twin = open_db(twin_cfg.db_path)
    try:
        st = case.setup(twin_cfg, twin)
        with recording(twin) as rec:
            _run(case, twin_cfg, twin, st)
    finally:
        twin.conn.close()
    count, txn = rec.target(write)
    assert txn > 0, f"{case.name}: {write} runs outside any transaction"

    db = open_db(cfg.db_path)
    try:
        st = case.setup(cfg, db)
        blobs_before = sorted(docs.blobs_for(cfg.state_dir).all())
        before = dump(db)
        with recording(db, writes=False) as failing, fail_on(db, table, op, at=count):
            err = _run(case, cfg, db, st)
        assert len(failing.snapshots) >= txn, "the act stopped before the transaction under test"
        at_begin = failing.snapshots[txn - 1]
        after = failing.snapshots[txn] if len(failing.snapshots) > txn else dump(db)
        if txn == 1:
            assert at_begin == before, "the act wrote outside a transaction before its first one"
        assert diff(at_begin, after) == {}, f"{case.name}: a failed {write} left a part of its transaction"
        injected = any("injected" in str(e) for e in _chain(err))
        if case.swallows_from is None or txn < case.swallows_from:
            assert injected, f"{case.name} did not report the failed {write}: {err!r}"
        assert injected or err is None or isinstance(err, case.raises or ()), err
        assert not db.conn.in_transaction
        # neither a row without its file nor, after a failed act, a new blob without its row or a blob removed
        assert sorted(docs.blobs_for(cfg.state_dir).all()) == blobs_before
    finally:
        db.conn.close()


def transaction_sites() -> set[str]:
    """'path:Qual.name#k' of every `with transaction(...)` block in appliance/ (k: its number in the function)."""
    sites: set[str] = set()
    for path in sorted(APPLIANCE.rglob("*.py")):
        if path.parent.name == "store" and path.name == "transaction.py":
            continue
        rel = path.relative_to(APPLIANCE).as_posix()

        def visit(node: ast.AST, qual: list[str], counter: dict[str, int], rel: str = rel) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    visit(child, [*qual, child.name], counter)
                    continue
                if isinstance(child, ast.With | ast.AsyncWith):
                    for item in child.items:
                        call = item.context_expr
                        if isinstance(call, ast.Call) and (getattr(call.func, "id", None) == "transaction"
                                                           or getattr(call.func, "attr", None) == "transaction"):
                            name = ".".join(qual) or "<module>"
                            counter[name] = counter.get(name, 0) + 1
                            sites.add(f"{rel}:{name}#{counter[name]}")
                visit(child, qual, counter)

        visit(ast.parse(path.read_text(), str(path)), [], {})
    return sites


def test_every_transaction_has_a_case() -> None:
    found = transaction_sites()
    covered = {s for c in CASES for s in c.sites}
    missing = sorted(found - covered)
    assert not missing, ("transaction blocks without a case in tests/test_atomic_writes.py CASES "
                         f"(add one that makes its second statement fail): {missing}")
    stale = sorted(covered - found)
    assert not stale, f"cases name transaction blocks that no longer exist: {stale}"


def test_dump_sees_every_table(db) -> None:
    """The dump compares the whole database: every table but SQLite's own, rows sorted."""
    names = set(dump(db))
    assert {"sessions", "members", "audit", "admissions", "doc_files", "push_events", "settings"} <= names
    assert not any(n.startswith("sqlite_") for n in names)


def test_fail_on_leaves_nothing_behind(cfg, db) -> None:
    s = council(db, members=0, active=False)
    with fail_on(db, "audit", "INSERT"), pytest.raises(sqlite3.IntegrityError, match="injected"):
        session_acts.activate_session(cfg, db, NullHelper(), s.id, "clerk")
    assert db.execute("SELECT name FROM sqlite_temp_master").fetchall() == []
    session_acts.activate_session(cfg, db, NullHelper(), s.id, "clerk")  # the trigger is gone
    assert service.active_session(db).id == s.id
