"""Push without polling (issue 15): publishers in any process wake the hubs after COMMIT; the poll is a safety net.

Latencies are asserted against the hub's safety-net interval (SAFETY, made long here), never as tight absolute
times: an event that arrives well before it was woken, not found by the poll. Publishers in another process
report the CLOCK_MONOTONIC time of their COMMIT (one clock for every process on Linux).
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.push import hub as hub_mod
from appliance.push import publish, wake
from appliance.store import open_db, transaction
from appliance.store.transaction import after_commit

SAFETY = 5.0  # the hubs' safety-net poll in these tests
FAST = SAFETY / 10  # "woken": well under the safety net
ROOT = Path(__file__).resolve().parent.parent

# A publisher in its own process, driven line by line over stdin: `auto` publishes outside a transaction,
# `hold` publishes two events inside transaction(db) and waits for the next line before it commits, `rollback`
# publishes inside one that fails. After each COMMIT (or rollback) it prints its monotonic time.
PUBLISHER = r"""
import sys, time
from appliance.store import open_db, transaction
from appliance.push import publish
db = open_db(sys.argv[1], migrate=False)
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()[0]
    if cmd == "auto":
        publish(db, 1, "t.auto", {})
    elif cmd == "hold":
        with transaction(db):
            publish(db, 1, "t.held", {"n": 1})
            publish(db, 1, "t.held", {"n": 2})
            print("open", flush=True)
            sys.stdin.readline()
    elif cmd == "rollback":
        try:
            with transaction(db):
                publish(db, 1, "t.undone", {})
                raise RuntimeError
        except RuntimeError:
            pass
    print(time.monotonic(), flush=True)
"""


class Publisher:
    def __init__(self, db_path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(db_path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.line() == "ready"

    def line(self) -> str:
        out = self.proc.stdout.readline().strip()
        assert out, f"publisher ended (rc={self.proc.poll()})"
        return out

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def do(self, cmd: str) -> float:
        """Run a command; the monotonic time of its COMMIT."""
        self.send(cmd)
        return float(self.line())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture
def hub(db, cfg):
    hub_mod.stop_all()  # hubs other tests' apps left in this process
    h = hub_mod.get_hub(cfg.db_path, SAFETY)
    yield h
    hub_mod.stop_all()


def everyone(viewer, audience, db) -> bool:
    return True


def received(sub, n: int, timeout: float = 3 * SAFETY) -> tuple[list, float]:
    """The next n events of a subscriber and the monotonic time the last one came."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        got.append(sub.queue.get(timeout=max(0.0, deadline - time.monotonic())))
    return got, time.monotonic()


def test_after_commit_runs_once_after_the_outermost_commit_and_never_after_a_rollback(db):
    ran: list[str] = []
    after_commit(db, "k", lambda: ran.append("now"))
    assert ran == ["now"]  # no transaction: at once
    with transaction(db):
        db.execute("INSERT INTO push_events(session_id, topic, audience, payload, at) VALUES (1, 't', 'all', '{}', '')")
        after_commit(db, "k", lambda: ran.append("outer"))
        with transaction(db):
            after_commit(db, "k", lambda: ran.append("inner"))  # same key: once
            after_commit(db, "k2", lambda: ran.append("other"))
        assert ran == ["now"]  # nested blocks commit with the outer one
    assert ran == ["now", "outer", "other"]
    with pytest.raises(RuntimeError), transaction(db):
        after_commit(db, "k", lambda: ran.append("rolled back"))
        raise RuntimeError
    with transaction(db):
        after_commit(db, "k", lambda: 1 / 0)  # a failing follow-up does not undo or fail the committed act
        after_commit(db, "k3", lambda: ran.append("still"))
    assert ran == ["now", "outer", "other", "still"]
    db.conn.execute("BEGIN")  # a transaction this helper did not open: at once (the hub re-checks shortly)
    after_commit(db, "k", lambda: ran.append("foreign"))
    db.conn.execute("COMMIT")
    assert ran[-1] == "foreign"


def test_an_event_published_by_another_process_wakes_the_hub_well_before_its_safety_net(hub, cfg):
    sub = hub.subscribe(None, 1, everyone)
    assert hub.listener is not None and hub.listener.directory == wake.directory_for(cfg.db_path)
    pub = Publisher(cfg.db_path)
    try:
        for _ in range(3):
            committed = pub.do("auto")
            (ev,), at = received(sub, 1)
            assert ev.topic == "t.auto"
            assert at - committed < FAST, f"{at - committed:.3f} s: found by the poll, not woken"
    finally:
        pub.close()
    assert hub.wakes >= 3


def test_events_published_inside_a_transaction_arrive_after_its_commit_and_a_rollback_wakes_nobody(hub, cfg, db):
    sub = hub.subscribe(None, 1, everyone)
    spy = wake.Listener(wake.directory_for(cfg.db_path))  # a second listener sees every wake sent
    assert spy.open()
    pub = Publisher(cfg.db_path)
    try:
        pub.send("hold")
        assert pub.line() == "open"
        # Both rows are written but not committed: no wake may have been sent (it would find nothing).
        assert not spy.wait(0) and sub.queue.empty()
        committed = pub.do("go")
        got, at = received(sub, 2)
        assert [e.payload for e in got] == ['{"n":1}', '{"n":2}'] and at - committed < FAST
        assert spy.wait(FAST)  # one wake for the whole transaction ...
        assert not spy.wait(0)  # ... not one per event
        pub.do("rollback")
        assert not spy.wait(0)
        after = publish(db, 1, "t.after", {})  # nothing lost, nothing undone delivered, order kept
        (ev,), _ = received(sub, 1)
        assert ev.id == after and ev.topic == "t.after" and sub.queue.empty()
    finally:
        pub.close()
        spy.close()


def test_a_wake_before_a_foreign_commit_still_delivers_at_once(hub, db):
    """A transaction appliance.store did not open (a bare BEGIN): the wake goes out before the COMMIT, and the
    hub's short re-checks after an empty wake find the rows."""
    sub = hub.subscribe(None, 1, everyone)
    polls = hub.polls
    db.conn.execute("BEGIN IMMEDIATE")
    publish(db, 1, "t.foreign", {})
    deadline = time.monotonic() + FAST
    while hub.polls == polls:  # the hub woke and read nothing yet visible
        assert time.monotonic() < deadline, "no wake"
        hub.stopped.wait(0.005)
    db.conn.execute("COMMIT")
    committed = time.monotonic()
    (ev,), at = received(sub, 1)
    assert ev.topic == "t.foreign" and at - committed < FAST


def test_an_idle_hub_reads_the_database_only_at_its_safety_net(db, cfg):
    """Over a quiet window the hub reads push_events once per push_poll (the default), not every 50 ms."""
    from appliance.config import Config

    poll = Config().push_poll
    assert poll >= 1.0
    hub_mod.stop_all()
    hub = hub_mod.get_hub(cfg.db_path, poll)
    try:
        statements: list[str] = []
        hub._db.conn.set_trace_callback(statements.append)
        sub = hub.subscribe(None, 1, everyone)
        polls, start = hub.polls, time.monotonic()
        with pytest.raises(queue.Empty):
            sub.queue.get(timeout=2 * poll)  # the window: nothing may arrive
        window = time.monotonic() - start
        reads = hub.polls - polls
        assert reads <= window / poll + 1, reads  # 3 here; the old 50 ms poll made 40
        assert len(statements) <= reads
        assert all("push_events" in s for s in statements)
    finally:
        hub_mod.stop_all()


def test_dead_full_and_foreign_sockets_never_break_a_publisher(hub, cfg, db):
    sub = hub.subscribe(None, 1, everyone)
    directory = wake.directory_for(cfg.db_path)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # what a killed worker leaves: a socket nobody reads
    dead.bind(str(directory / "999999-dead.sock"))
    dead.close()
    full = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # a hub that hangs: its queue fills up
    full.bind(str(directory / "999998-full.sock"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            while True:
                s.sendto(b"!", str(directory / "999998-full.sock"))
    (directory / "notes.txt").write_text("not a socket")
    os.mkfifo(directory / "fifo.sock")  # a name that looks like one and is not
    try:
        start = time.monotonic()
        eid = publish(db, 1, "t.x", {})
        assert time.monotonic() - start < FAST  # never waits on a full socket
        (ev,), at = received(sub, 1)
        assert ev.id == eid and at - start < FAST
        names = sorted(p.name for p in directory.iterdir())
        assert "999999-dead.sock" not in names  # cleaned by the publisher
        assert "999998-full.sock" in names and hub.listener.name in names
    finally:
        full.close()


def test_a_hub_in_a_deep_directory_binds_through_its_directory_descriptor(tmp_path):
    deep = tmp_path.joinpath(*["verzeichnis-mit-langem-namen"] * 5)
    deep.mkdir(parents=True)
    db = open_db(deep / "sitzungsbox.db")
    assert len(str(wake.directory_for(deep / "sitzungsbox.db"))) > 108
    hub_mod.stop_all()
    hub = hub_mod.get_hub(deep / "sitzungsbox.db", SAFETY)
    try:
        assert hub.listener is not None and hub.listener.address.startswith("/proc/self/fd/")
        sub = hub.subscribe(None, 1, everyone)
        pub = Publisher(deep / "sitzungsbox.db")
        try:
            committed = pub.do("auto")
            (ev,), at = received(sub, 1)
            assert at - committed < FAST
        finally:
            pub.close()
    finally:
        hub_mod.stop_all()
        db.conn.close()
    assert not list(wake.directory_for(deep / "sitzungsbox.db").glob("*.sock"))  # a stopped hub removes its own


def test_a_hub_without_a_socket_still_hears_its_own_process(db, cfg, monkeypatch):
    """Its directory not writable (say): the hub polls at the safety net, and publishes in its own process
    still wake it at once."""
    monkeypatch.setattr(wake.Listener, "open", lambda self: False)
    hub_mod.stop_all()
    hub = hub_mod.get_hub(cfg.db_path, SAFETY)
    try:
        assert hub.listener is None
        sub = hub.subscribe(None, 1, everyone)
        start = time.monotonic()
        publish(db, 1, "t.x", {})
        (_ev,), at = received(sub, 1)
        assert at - start < FAST
    finally:
        hub_mod.stop_all()


HUB_PROCESS = r"""
import sys
from appliance.push import hub
h = hub.get_hub(sys.argv[1], 5.0)
print(h.listener.name, flush=True)
sys.stdin.readline()
"""


def test_a_worker_that_exits_takes_its_socket_and_a_killed_ones_goes_with_the_next_publish_or_hub(db, cfg):
    directory = wake.directory_for(cfg.db_path)

    def worker() -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen([sys.executable, "-c", HUB_PROCESS, str(cfg.db_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        name = proc.stdout.readline().strip()
        assert name and (directory / name).exists(), proc.poll()
        return proc, name

    graceful, name = worker()
    graceful.communicate("\n", timeout=30)  # a normal exit (gunicorn's graceful stop ends in sys.exit)
    assert graceful.returncode == 0 and not (directory / name).exists()
    killed, name = worker()
    killed.kill()
    killed.wait(30)
    assert (directory / name).exists()
    publish(db, 1, "t.x", {})
    assert not (directory / name).exists()
    killed, name = worker()  # killed at a stop (its streams outlived the graceful timeout); the next hub to
    killed.kill()  # start clears it
    killed.wait(30)
    hub_mod.stop_all()
    try:
        hub = hub_mod.get_hub(cfg.db_path, SAFETY)
        assert [p.name for p in directory.iterdir()] == [hub.listener.name]
    finally:
        hub_mod.stop_all()


def test_a_socket_that_fails_is_given_up_not_spun_on(db, cfg, monkeypatch):
    class Broken:
        def settimeout(self, timeout: float) -> None:
            pass

        def recv(self, size: int) -> bytes:
            raise OSError(9, "kaputt")

        def close(self) -> None:
            pass

    opened = wake.Listener.open

    def open_broken(self) -> bool:
        ok = opened(self)
        self.sock.close()
        self.sock = Broken()
        return ok

    monkeypatch.setattr(wake.Listener, "open", open_broken)
    hub_mod.stop_all()
    hub = hub_mod.get_hub(cfg.db_path, SAFETY)
    try:
        deadline = time.monotonic() + FAST
        while hub.listening:
            assert time.monotonic() < deadline, "the failing socket is still in use"
            hub.stopped.wait(0.01)
        sub = hub.subscribe(None, 1, everyone)
        start = time.monotonic()
        publish(db, 1, "t.x", {})
        (_ev,), at = received(sub, 1)
        assert at - start < FAST and hub.polls <= 3  # woken in-process; no read per failed wait
        assert not list(wake.directory_for(cfg.db_path).glob("*.sock"))
    finally:
        hub_mod.stop_all()
