"""One staff login for every role: the throttle as a rule (a table), the throttle in SQLite under threads and
processes, roles kept apart, hashes compatible with what werkzeug wrote, and a third role in a few lines.

No sleeps: every throttle call gets its clock (`now`) from the test."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
from flask import Blueprint

from appliance import passwords
from appliance.rules.login import CLERK, TECHNICIAN, THROTTLE, ThrottlePolicy
from appliance.store import open_db
from appliance.usecases import login
from tests.conftest import ROOT

PW = "right-Pass-word-1"


# --- the rule -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failures,now,wait", [
    ([], 0, 0),
    ([0, 0, 0, 0], 0, 0),  # four: not yet
    ([0, 0, 0, 0, 0], 0, 60),  # the fifth: a minute
    ([0, 0, 0, 0, 0], 59.5, 1),  # rounded up, never 0 while waiting
    ([0, 0, 0, 0, 0], 60, 0),
    ([0, 0, 0, 0, 0, 60], 60, 120),  # each further failure doubles the wait …
    ([0, 0, 0, 0, 0, 60, 180], 180, 240),
    ([0] * 5 + [1] * 40, 1, 900),  # … up to the cap
    ([0, 0, 0, 0, 0], 900, 0),  # expired: forgotten
    ([0, 0, 0, 0, 1000], 1000, 0),  # old ones do not count any more
])
def test_throttle_policy_table(failures, now, wait):
    assert THROTTLE.wait_seconds(failures, now) == wait


def test_throttle_policy_is_the_clerks_old_one():
    assert (THROTTLE.limit, THROTTLE.window, THROTTLE.base_wait, THROTTLE.max_wait) == (5, 900, 60, 900)
    small = ThrottlePolicy(limit=3, base_wait=10, max_wait=40)
    assert small.wait_seconds([0, 0, 0], 0) == 10 and small.wait_seconds([0, 0, 0, 10], 10) == 20
    assert small.wait_seconds([0, 0, 0, 10, 10, 10, 10, 10, 10], 10) == 40  # capped
    assert len(small.recent([0.0] * 500, 1)) == small.keep  # bounded per address


# --- the store ------------------------------------------------------------------------------------------------


def fail(db, ip="192.0.2.7", role=CLERK, now=1000.0):
    return login.attempt(db, role, ip, "wrong", now)


def test_limit_then_wait_even_for_the_right_password(db):
    login.set_password(db, PW)
    results = [fail(db) for _ in range(5)]
    assert [r.checked for r in results] == [True] * 5 and [r.wait for r in results] == [0, 0, 0, 0, 60]
    right = login.attempt(db, CLERK, "192.0.2.7", PW, 1000.0)
    assert not right.ok and not right.checked and right.wait == 60
    later = login.attempt(db, CLERK, "192.0.2.7", PW, 1061.0)
    assert later.ok and later.sid and login.session_valid(db, later.sid, CLERK)
    actions = [r[0] for r in db.execute("SELECT action FROM audit WHERE actor = 'clerk@192.0.2.7' ORDER BY id")]
    assert actions == ["login.failed"] * 5 + ["login"]  # the throttled try is not checked, not logged


def test_per_address_and_per_role(db):
    login.set_password(db, PW)
    login.set_password(db, PW + "-tech", role=TECHNICIAN)
    for _ in range(5):
        fail(db)
    assert fail(db).wait and not fail(db).checked
    assert login.attempt(db, CLERK, "192.0.2.8", PW, 1000.0).ok  # another address
    assert login.attempt(db, TECHNICIAN, "192.0.2.7", PW + "-tech", 1000.0).ok  # another role
    assert not login.attempt(db, TECHNICIAN, "192.0.2.7", PW, 1000.0).ok  # the clerk's password is not its


def test_success_resets_and_failures_expire(db):
    login.set_password(db, PW)
    for _ in range(4):
        fail(db)
    assert login.attempt(db, CLERK, "192.0.2.7", PW, 1000.0).ok
    assert [fail(db).wait for _ in range(4)] == [0, 0, 0, 0]  # counting from zero again
    assert fail(db).wait == 60
    assert fail(db, now=1000.0 + THROTTLE.horizon).wait == 0  # old failures forgotten
    # Rows of addresses whose failures no longer count are deleted on the next write (bounded table).
    fail(db, ip="192.0.2.99", now=10_000.0)
    assert [r[0] for r in db.execute("SELECT ip FROM login_throttle")] == ["192.0.2.99"]


def test_threads_never_get_past_the_limit(cfg, db):
    login.set_password(db, PW)
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(12)

    def guess(i: int) -> None:
        own = open_db(cfg.db_path, migrate=False)  # one connection per request, as the web pool gives
        barrier.wait()
        r = login.attempt(own, CLERK, "192.0.2.7", f"wrong{i}", 1000.0)
        own.conn.close()
        with lock:
            results.append(r)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 12
    assert sum(r.checked for r in results) == THROTTLE.limit
    assert all(r.wait for r in results if not r.checked)


PROCESS = """
import sys, threading
from appliance.rules.login import CLERK
from appliance.store import open_db
from appliance.usecases import login
checked = []
def guess(i):
    db = open_db(sys.argv[1], migrate=False)
    checked.append(login.attempt(db, CLERK, "192.0.2.7", f"wrong{i}", 1000.0).checked)
    db.conn.close()
threads = [threading.Thread(target=guess, args=(i,)) for i in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print("checked", sum(checked), len(checked))
"""


def test_two_processes_never_get_past_the_limit(cfg, db):
    """What gunicorn's workers do: each process its own memory, one database. The old throttle lived in each
    worker's memory; two workers gave a guesser twice the tries."""
    login.set_password(db, PW)
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS, str(cfg.db_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    counts = [tuple(map(int, re.search(r"checked (\d+) (\d+)", out).groups())) for out, _ in outs]
    assert [n for _, n in counts] == [6, 6]
    assert sum(c for c, _ in counts) == THROTTLE.limit


# --- passwords ------------------------------------------------------------------------------------------------


def test_hashes_are_werkzeugs_format_both_ways():
    from werkzeug.security import check_password_hash, generate_password_hash

    old = generate_password_hash(PW, method="scrypt")  # what boxes stored so far
    assert passwords.check_password(old, PW) and not passwords.check_password(old, PW + "x")
    new = passwords.hash_password(PW)
    assert new.startswith("scrypt:32768:8:1$") and check_password_hash(new, PW)
    for junk in ("", "plain", "pbkdf2:sha256:1$salt$00", "scrypt:1048577:8:1$s$00", "scrypt:x$s$00"):
        assert not passwords.check_password(junk, PW)


def test_set_password_cmd_per_role(cfg, capsys, db):
    from appliance.web import auth

    assert auth.set_password_cmd(cfg, role="techniker") == 0
    out = capsys.readouterr().out
    tech = re.search(r"^\s{4}(\S+)$", out, re.M).group(1)
    assert "Technik-Ansicht" in out and "/technik/login" in out and "Technik-Anmeldungen" in out
    assert login.check_password(db, tech, TECHNICIAN) and not login.has_password(db, CLERK)
    assert db.execute("SELECT detail FROM audit WHERE action = 'password.set'").fetchone()[0] == "role=techniker"


# --- a third role is a few lines --------------------------------------------------------------------------------


def test_a_further_role_needs_only_its_description(cfg, db):
    from appliance.web import auth
    from appliance.web.app import create_app

    chair = replace(CLERK, name="vorsitz", password_key="password:vorsitz", session_prefix="chair_session:",  # noqa: S106
                    cookie_key="chair", actor="vorsitz", blueprint="vorsitz", area="/vorsitz/", home="vorsitz.home",
                    default=False)
    bp = Blueprint("vorsitz", __name__, url_prefix="/vorsitz")
    auth.register(bp, chair)
    bp.add_url_rule("/", "home", auth.required(chair)(lambda: "Vorsitz"))
    app = create_app(cfg, testing=True)
    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/vorsitz/").headers["Location"].startswith("/vorsitz/login")
    page = client.get("/vorsitz/login").text
    assert "sitzungsbox set-password --role vorsitz" in page and 'type="password"' not in page
    login.set_password(db, PW, role=chair)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/vorsitz/login").text).group(1)
    resp = client.post("/vorsitz/login", data={"csrf_token": token, "password": PW})
    assert resp.status_code == 302 and client.get("/vorsitz/").text == "Vorsitz"
    assert client.get("/clerk/sessions").status_code == 302  # the chair is no clerk
    assert db.execute("SELECT actor, action FROM audit ORDER BY id DESC LIMIT 1").fetchone() == ("vorsitz@127.0.0.1",
                                                                                                 "login")
