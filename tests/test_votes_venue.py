"""Votes in the virtual venue (prefix sbvot; issue 14): members cast over HTTP from their own network namespaces.

Each phone gets its identity as in the hall: the replayed radio says which personal key it joined with, real
DHCP gives it its address, and every cast is curl from inside its own namespace, a form POST to /abstimmung
with the device-bound CSRF token of the start page it was served (no cookie) and a fresh idempotency key per
tap. The chair's acts (open, close) and the clerk's records (a conflict, an attendance correction) are the use
cases, called from the test process on the box's database, as the other venue tests set up what the console
does; the web route's own tests cover those forms.

Clients: 1–4 Anna, Bernd, Carla, Dora vote; 5 Emil is absent (the clerk corrected his attendance: he left the
hall, his phone stayed at his seat), 6 Frieda is conflicted (befangen) on the question, 7 is a guest, 8 Gustav
takes another member's address, 9…(8 + BURST) are the members of the burst. Runs in file order, like a session:
everyone arrives → a vote is opened and four members cast (a retry with the same key counts once) → the guest,
the absent member, the conflicted member and a device naming another member are refused and write nothing →
after the close a vote is refused → the web process is killed with SIGKILL in the middle of a burst of casts
and restarted: every acknowledged cast is counted once, the unanswered ones retry with the same key and are
counted once → a phone that takes another member's IP address is not served or counted as that member, and the
member's own phone is theirs again afterwards.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode

import psutil
import pytest

from appliance.presence import store as presence
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import votes as acts
from tests.conftest import poll
from tests.venue.net import SAFE_PATH, parse_curl_include

pytestmark = pytest.mark.net
BURST = 24
FACTIONS = ("SPD", "CDU", "Grüne", "FDP")
MEMBERS = "Name;Fraktion;Rolle;Stimmrecht;Gremium\n" + "".join(
    f"{name};{faction};Mitglied;ja;Rat\n" for name, faction in [
        ("Anna Schmidt", "SPD"), ("Bernd Müller", "CDU"), ("Carla Weber", "Grüne"), ("Dora Vogel", "FDP"),
        ("Emil Krause", "SPD"), ("Frieda Lang", "CDU"), ("Gustav Roth", "Grüne"),
        *[(f"Ratsmitglied {k:02d}", FACTIONS[k % len(FACTIONS)]) for k in range(1, BURST + 1)]])
WHO = {1: "Anna Schmidt", 2: "Bernd Müller", 3: "Carla Weber", 4: "Dora Vogel", 5: "Emil Krause",
       6: "Frieda Lang", 8: "Gustav Roth", **{8 + k: f"Ratsmitglied {k:02d}" for k in range(1, BURST + 1)}}
VOTERS, ABSENT, CONFLICTED, GUEST, SPOOFER = (1, 2, 3, 4), 5, 6, 7, 8
BURSTERS = tuple(range(9, 9 + BURST))
N_CLIENTS = 8 + BURST
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CHOICES = ("yes", "no", "abstain")
CLERK = "clerk"


@pytest.fixture(scope="module")
def box(venue_factory):
    b = venue_factory("sbvot", N_CLIENTS, members=MEMBERS, title="Ratssitzung mit Abstimmung", nft_table="sbvot")
    b.tokens = {}  # client -> the device-bound CSRF token of its start page
    b.votes = {}  # "first" / "burst" -> vote id
    return b


# -- the box's database, read (and the chair's and clerk's acts) from the test process --------------------


def q(box, sql: str, args=()) -> list[tuple]:
    db = box.db()
    try:
        return [tuple(r) for r in db.execute(sql, list(args)).fetchall()]
    finally:
        db.conn.close()


def members(box) -> dict[str, service.Member]:
    db = box.db()
    try:
        return {m.name: m for m in service.members(db, box.session_id)}
    finally:
        db.conn.close()


def member_of(box, i: int) -> service.Member:
    return members(box)[WHO[i]]


def act(box, fn, *args, **kw):
    db = box.db()
    try:
        return fn(db, Viewer(CLERK, box.session_id), box.session_id, *args, now=time.time(), **kw)
    finally:
        db.conn.close()


def written(box) -> tuple:
    """Everything a cast could write: the votes, their ballots, the cast keys, the log, the votes' push events."""
    return (q(box, "SELECT * FROM votes ORDER BY id"), q(box, "SELECT * FROM vote_ballots ORDER BY id"),
            q(box, "SELECT * FROM vote_cast_keys ORDER BY vote_id, key"), q(box, "SELECT COUNT(*) FROM vote_log"),
            q(box, "SELECT COUNT(*) FROM push_events WHERE topic LIKE 'votes.%'"))


def ballot(box, vote_id: int, member_id: int) -> str | None:
    rows = q(box, "SELECT choice FROM vote_ballots WHERE vote_id = ? AND member_id = ?", [vote_id, member_id])
    return rows[0][0] if rows else None


# -- HTTP from inside a client's namespace ------------------------------------------------------------------


def url(box, path: str) -> str:
    return f"http://{box.cfg.address}{path}"


def cast_form(box, i: int, vote_id: int, member_id: int, choice: str, key: str) -> str:
    return urlencode({"csrf_token": box.tokens[i], "vote_id": vote_id, "member_id": member_id, "choice": choice,
                      "key": key})


def curl_argv(box, i: int, body: str, as_json: bool, timeout: float = 15) -> list[str]:
    argv = ["ip", "netns", "exec", box.venue.client_ns(i), "curl", "-sS", "-i", "--noproxy", "*",
            "--max-time", str(timeout), "--connect-timeout", "3", "-X", "POST",
            "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", body]
    if as_json:
        argv += ["-H", "Accept: application/json"]
    return [*argv, url(box, "/abstimmung")]


def cast(box, i: int, vote_id: int, member_id: int, choice: str, key: str | None = None, as_json: bool = True):
    """One tap on the device of client i: (status, JSON answer or None, body text)."""
    res = subprocess.run(curl_argv(box, i, cast_form(box, i, vote_id, member_id, choice,
                                                      key or secrets.token_hex(8)), as_json),
                         capture_output=True, timeout=25, env={"PATH": SAFE_PATH, "LANG": "C"}, check=False)
    if not res.stdout:
        return 0, None, res.stderr.decode(errors="replace")
    status, headers, body = parse_curl_include(res.stdout)
    answer = json.loads(body) if "json" in headers.get("content-type", "") else None
    return status, answer, body.decode(errors="replace")


def start_cast(box, i: int, vote_id: int, member_id: int, choice: str, key: str) -> subprocess.Popen:
    return subprocess.Popen(curl_argv(box, i, cast_form(box, i, vote_id, member_id, choice, key), True, timeout=20),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PATH": SAFE_PATH, "LANG": "C"})


def finish_cast(p: subprocess.Popen) -> tuple[int, dict | None]:
    """What the phone got: (status, JSON answer); (0, None) when no answer came (connection cut or refused)."""
    out, _err = p.communicate(timeout=30)
    if not out:
        return 0, None
    try:
        status, headers, body = parse_curl_include(out)
    except (ValueError, IndexError):
        return 0, None  # a partial answer is no acknowledgement
    return status, (json.loads(body) if "json" in headers.get("content-type", "") and body else None)


def refused(box, i: int, vote_id: int, member_id: int, status: int, code: str) -> str:
    """Client i's cast is refused with this status and code, in German, and writes nothing; returns the text."""
    before = written(box)
    got, answer, body = cast(box, i, vote_id, member_id, "yes")
    assert got == status, (i, got, body)
    assert answer is not None and answer["ok"] is False and answer["code"] == code, answer
    assert answer["text"], answer
    assert written(box) == before, f"Client {i}: eine abgelehnte Stimme hat etwas geschrieben"
    return answer["text"]


# -- the session -------------------------------------------------------------------------------------------


def test_phones_arrive_members_are_present_and_get_their_device_bound_form_token(box):
    ms = members(box)
    v = box.venue
    for i, name in WHO.items():
        box.fake.connect(v.client_mac(i), ms[name].keyid)  # replayed hostapd: joined with the personal key
    box.fake.connect(v.client_mac(GUEST), "guest")
    for i, name in WHO.items():
        box.wait_station(v.client_mac(i), ms[name].keyid)
    box.wait_station(v.client_mac(GUEST), "guest")
    procs = {i: v.dhcp_start(i) for i in v.indices}  # real DHCP from inside every namespace, all at once
    for i, p in procs.items():
        v.dhcp_wait(i, p)
    for i in WHO:
        assert WHO[i] in v.http(i, box.cfg.portal_url).text  # greeted by name (and let through)
    page = v.http(GUEST, box.cfg.portal_url).text
    tok = TOKEN.search(page).group(1)
    r = v.http(GUEST, url(box, "/portal/continue"), method="POST", data=f"csrf_token={tok}",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in (302, 303)
    for i in v.indices:  # the member's start page (the guest: the chat page's) carries the device's token
        page = v.http(i, url(box, "/chat" if i == GUEST else "/")).text
        box.tokens[i] = TOKEN.search(page).group(1)
    assert len(set(box.tokens.values())) == N_CLIENTS  # bound to the device: one per phone
    # Every member's phone counts as present (the daemon saw the radio); then the clerk records that Emil left
    # the hall with his phone still on the session network, and marks Frieda conflicted on the question.
    member_ids = {ms[n].id for n in WHO.values()}
    poll(lambda: member_ids <= {r[0] for r in q(box, "SELECT member_id FROM presence_intervals WHERE "
                                                     "session_id = ? AND end IS NULL", [box.session_id])},
         15, "alle Mitglieder anwesend")
    db = box.db()
    try:
        presence.correct(db, box.session_id, ms[WHO[ABSENT]].id, "absent", "hat den Saal verlassen",
                         actor="venue", grace=box.cfg.presence_grace)
    finally:
        db.conn.close()
    assert act(box, acts.set_conflicted, None, ms[WHO[CONFLICTED]].id, True)
    present = {r[0] for r in q(box, "SELECT member_id FROM presence_intervals WHERE session_id = ? AND end IS NULL",
                               [box.session_id])}
    assert ms[WHO[ABSENT]].id not in present and ms[WHO[CONFLICTED]].id in present


def test_the_chair_opens_and_members_cast_from_their_own_phones(box):
    out = act(box, acts.open_vote, question="Beschluss über den Haushalt 2027", mode="open")
    assert out, out.text
    vid = box.votes["first"] = out.vote_id
    ms = members(box)
    # Eligible: everyone present with a vote, minus the conflicted member; the absent member has no ballot.
    assert q(box, "SELECT eligible FROM votes WHERE id = ?", [vid])[0][0] == len(WHO) - 2
    assert ballot(box, vid, ms[WHO[ABSENT]].id) is None
    assert not q(box, "SELECT 1 FROM vote_ballots WHERE vote_id = ? AND member_id = ?", [vid, ms[WHO[CONFLICTED]].id])
    # Anna with the plain form (no JavaScript): 303 to her start page's vote block.
    status, _answer, _body = cast(box, 1, vid, ms[WHO[1]].id, "yes", as_json=False)
    assert status == 303
    # Bernd, Carla and Dora with the page's script: 200 and the choice confirmed in German.
    for i, choice in ((2, "no"), (3, "abstain"), (4, "yes")):
        status, answer, body = cast(box, i, vid, ms[WHO[i]].id, choice)
        assert status == 200, body
        assert answer["ok"] is True and answer["choice"] == choice and answer["vote_id"] == vid
        assert answer["text"].startswith("Ihre Stimme:")
    assert {i: ballot(box, vid, ms[WHO[i]].id) for i in VOTERS} == {1: "yes", 2: "no", 3: "abstain", 4: "yes"}
    # A retry of Dora's tap (her phone lost the answer) with the same key: acknowledged again, counted once.
    key = secrets.token_hex(8)
    before = q(box, "SELECT cast_count FROM votes WHERE id = ?", [vid])[0][0]
    for _ in range(2):
        status, answer, _body = cast(box, 4, vid, ms[WHO[4]].id, "no", key=key)
        assert status == 200 and answer["choice"] == "no"
    assert q(box, "SELECT cast_count FROM votes WHERE id = ?", [vid])[0][0] == before == 4
    assert q(box, "SELECT COUNT(*) FROM vote_cast_keys WHERE vote_id = ? AND key = ?", [vid, key]) == [(1,)]
    assert q(box, "SELECT COUNT(*) FROM vote_log WHERE vote_id = ? AND action = 'cast'", [vid]) == [(5,)]


def test_guest_absent_conflicted_and_another_members_id_are_refused_and_write_nothing(box):
    vid, ms = box.votes["first"], members(box)
    # The guest's phone (let through the portal as a guest) names a member: guests never vote.
    refused(box, GUEST, vid, ms[WHO[1]].id, 403, "guest")
    # Emil's phone is on the network, but he is not in the hall: no ballot, no vote.
    text = refused(box, ABSENT, vid, ms[WHO[ABSENT]].id, 409, "absent")
    assert "Emil Krause" in text and "nicht anwesend" in text
    # Frieda is present but befangen on this question.
    assert "befangen" in refused(box, CONFLICTED, vid, ms[WHO[CONFLICTED]].id, 409, "conflicted")
    # Bernd's phone sends Carla's member id: only her own device may cast her vote.
    refused(box, 2, vid, ms[WHO[3]].id, 403, "not_own")
    assert ballot(box, vid, ms[WHO[3]].id) == "abstain"
    # A form without the device's token (another device's) is not even read.
    before = written(box)
    body = urlencode({"csrf_token": box.tokens[1], "vote_id": vid, "member_id": ms[WHO[2]].id, "choice": "yes",
                      "key": secrets.token_hex(8)})
    r = box.venue.http(2, url(box, "/abstimmung"), method="POST", data=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and written(box) == before


def test_after_the_close_a_vote_is_refused(box):
    vid, ms = box.votes["first"], members(box)
    out = act(box, acts.close_vote, vote_id=vid)
    assert out, out.text
    row = q(box, "SELECT state, yes, no, abstain FROM votes WHERE id = ?", [vid])[0]
    assert row == ("closed", 1, 2, 1)  # Anna yes, Bernd no, Carla abstain, Dora changed to no
    text = refused(box, 3, vid, ms[WHO[3]].id, 409, "closed")
    assert text


def _kill_web(box) -> None:
    """SIGKILL the web process and its gunicorn workers at once (no chance to finish anything)."""
    web = box.procs["web"]
    procs = [psutil.Process(web.pid), *psutil.Process(web.pid).children(recursive=True)]
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    web.wait(10)
    psutil.wait_procs(procs, timeout=10)


def _restart_web(box) -> None:
    cli = [sys.executable, "-m", "appliance.cli", "--config", str(box.venue.write_config())]
    box.procs["web"] = box.venue.run_in_box([*cli, "web"], name="web-restarted")
    box.venue.wait_listening(box.cfg.web_port, timeout=30, proc=box.procs["web"])


def test_sigkill_in_a_burst_every_acknowledged_cast_counts_once_and_retries_count_once(box):
    out = act(box, acts.open_vote, question="Antrag auf Vertagung", mode="open")
    assert out, out.text
    vid = box.votes["burst"] = out.vote_id
    ms = members(box)
    voters = (*VOTERS, *BURSTERS)
    plan = {i: (ms[WHO[i]].id, CHOICES[n % 3], secrets.token_hex(12)) for n, i in enumerate(voters)}
    first, second = voters[: len(voters) // 2], voters[len(voters) // 2:]
    # The first half taps at once; as soon as the box has stored half of them, the web process dies.
    running = {i: start_cast(box, i, vid, *plan[i]) for i in first}
    poll(lambda: q(box, "SELECT cast_count FROM votes WHERE id = ?", [vid])[0][0] >= len(first) // 2, 20,
         "die Hälfte der ersten Stimmen gespeichert", every=0.002)
    _kill_web(box)
    running |= {i: start_cast(box, i, vid, *plan[i]) for i in second}  # the second half taps into the outage
    answers = {i: finish_cast(p) for i, p in running.items()}
    acked = {i for i, (status, answer) in answers.items() if status == 200 and answer and answer["ok"]}
    unanswered = set(voters) - acked
    assert all(answers[i][0] in (0, 200) for i in voters), answers  # an answer is an acknowledgement or nothing
    assert acked and unanswered, f"kein Abbruch mitten im Schwall: {len(acked)} bestätigt"
    for i in acked:
        assert answers[i][1]["choice"] == plan[i][1]
    _restart_web(box)
    # Every cast acknowledged before the kill is there, exactly once.
    rows = dict(q(box, "SELECT member_id, choice FROM vote_ballots WHERE vote_id = ?", [vid]))
    for i in acked:
        assert rows[plan[i][0]] == plan[i][1], WHO[i]
    stored_before = {i for i in voters if rows[plan[i][0]] is not None}
    assert acked <= stored_before
    # The phones without an answer tap again with the SAME key (their retry), now answered and counted once.
    retries = {i: start_cast(box, i, vid, *plan[i]) for i in sorted(unanswered)}
    for i, p in retries.items():
        status, answer = finish_cast(p)
        assert status == 200 and answer["ok"] and answer["choice"] == plan[i][1], (WHO[i], status, answer)
    # And a retry of an acknowledged tap after the restart changes nothing either.
    again = sorted(acked)[0]
    status, answer, _b = cast(box, again, vid, *plan[again])
    assert status == 200 and answer["choice"] == plan[again][1]
    rows = dict(q(box, "SELECT member_id, choice FROM vote_ballots WHERE vote_id = ?", [vid]))
    assert all(rows[plan[i][0]] == plan[i][1] for i in voters)
    assert q(box, "SELECT cast_count FROM votes WHERE id = ?", [vid]) == [(len(voters),)]
    assert q(box, "SELECT COUNT(*) FROM vote_log WHERE vote_id = ? AND action = 'cast'", [vid]) == [(len(voters),)]
    assert q(box, "SELECT COUNT(*), COUNT(DISTINCT ballot_id) FROM vote_cast_keys WHERE vote_id = ?",
             [vid]) == [(len(voters), len(voters))]
    out = act(box, acts.close_vote, vote_id=vid)
    assert out, out.text
    want = {c: sum(1 for i in voters if plan[i][1] == c) for c in CHOICES}
    assert q(box, "SELECT yes, no, abstain FROM votes WHERE id = ?", [vid]) == [(want["yes"], want["no"],
                                                                                  want["abstain"])]
    # Nobody else got a vote in: the conflicted, the absent and the spoofing phone's member have empty ballots.
    assert q(box, "SELECT COUNT(*) FROM vote_ballots WHERE vote_id = ? AND choice IS NOT NULL", [vid]) == \
        [(len(voters),)]


def test_a_device_with_another_members_ip_address_is_not_served_or_counted_as_that_member(box):
    """Gustav's phone takes Anna's IP address (its own MAC stays) in a new vote Anna has not cast in yet. Port 80
    reaches the web app from any source (the portal), and the lease of that address names Anna's phone; but the
    box's neighbour entry for it — where the answers go — names Gustav's: the request is nobody's (captive.
    identify), never answered as Anna's page nor cast as Anna's vote. Found by this test (it was a strict xfail
    until identify checked the neighbour entry). Once Gustav's phone lets go of the address, Anna's own phone is
    hers again — after the kernel's neighbour timers, up to about a minute (an open point: the victim of a
    spoofing attempt is locked out that long)."""
    out = act(box, acts.open_vote, question="Antrag zur Geschäftsordnung", mode="open")
    assert out, out.text
    vid, ms = out.vote_id, members(box)
    v = box.venue
    anna_ip, own_ip = v.client_ip(1), v.client_ip(SPOOFER)
    before = written(box)
    res = v.client_exec(SPOOFER, ["ip", "-batch", "-"],
                        input=f"addr flush dev eth0\naddr add {anna_ip}/{box.cfg.prefix} dev eth0\n")
    assert res.returncode == 0, res.stderr
    try:
        page = v.http(SPOOFER, url(box, "/"), timeout=5)
        served_as_anna = page.status == 200 and WHO[1] in page.text
        token = TOKEN.search(page.text).group(1) if served_as_anna else box.tokens[1]
        body = urlencode({"csrf_token": token, "vote_id": vid, "member_id": ms[WHO[1]].id, "choice": "no",
                          "key": secrets.token_hex(8)})
        r = v.http(SPOOFER, url(box, "/abstimmung"), method="POST", data=body, timeout=5,
                   headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        assert not served_as_anna, "Anna's start page was served to Gustav's phone"
        assert r.status not in (200, 303), (r.status, r.text[:300])
        assert written(box) == before and ballot(box, vid, ms[WHO[1]].id) is None
    finally:
        v.client_exec(SPOOFER, ["ip", "-batch", "-"],
                      input=f"addr flush dev eth0\naddr add {own_ip}/{box.cfg.prefix} dev eth0\n")
    # Anna's phone is hers again once the box's neighbour entry for her address is back on her MAC. Until then
    # the box's answers go to Gustav's port and her phone gets none: the kernel keeps the spoofed entry while it is
    # REACHABLE (up to 1.5 × base_reachable_time = 45 s), then probes it (delay 5 s + 3 unicast tries of 1 s) and
    # asks by broadcast, which her phone answers — up to ~56 s; 90 s leaves room for a slow curl per try.
    poll(lambda: WHO[1] in v.http(1, url(box, "/"), timeout=5).text, 90, "Annas Startseite wieder ihre", every=0.2)
    status, answer, _body = cast(box, 1, vid, ms[WHO[1]].id, "yes")
    assert status == 200 and answer["choice"] == "yes" and ballot(box, vid, ms[WHO[1]].id) == "yes"
