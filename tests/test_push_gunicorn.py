"""The push channel through the real gunicorn server (serve.py's path, two gevent workers): several streams
across both workers, events published by another process, resume with Last-Event-ID and ?last_id=.

The hubs' safety-net poll is SAFETY here: every event must come by the publisher's wake (appliance.push.wake),
across processes and users (this test runs as root, the workers as nobody)."""

from __future__ import annotations

import time

import pytest

from appliance.push import publish
from appliance.push.sseclient import SSEClient
from tests.conftest import need_root

SAFETY = 5.0


@pytest.fixture(scope="module")
def web():
    need_root()  # the web app drops to nobody, as on the box
    from bench.chat import WebServer

    server = WebServer.prepare(6, push_heartbeat=1.0, push_poll=SAFETY).start()
    try:
        yield server
    finally:
        server.close()


def test_streams_on_both_workers_receive_every_event_in_order_and_resume(web):
    from bench.chat import guest_ip

    db = web.db()
    try:
        start = publish(db, web.session_id, "t.start", {})
        clients = [SSEClient("127.0.0.1", web.port, f"/events?as={guest_ip(i)}&last_id={start}").connect()
                   for i in range(6)]
        assert all(c.status == 200 for c in clients)
        first = [publish(db, web.session_id, "t.x", {"n": n}) for n in range(5)]
        for c in clients:
            assert [c.next().id for _ in first] == first
        # Client 0 drops; events go on; it comes back with Last-Event-ID and gets exactly what it missed.
        clients[0].close()
        missed = [publish(db, web.session_id, "t.x", {"n": n}) for n in range(5, 9)]
        back = SSEClient("127.0.0.1", web.port, f"/events?as={guest_ip(0)}&last_id={start}",
                         last_id=first[-1]).connect()
        assert [back.next().id for _ in missed] == missed
        again = publish(db, web.session_id, "t.x", {"n": 9})
        assert back.next().id == again
        for c in clients[1:]:
            assert [c.next().id for _ in range(5)] == [*missed, again]
        # Streams were spread over both workers, each fed by its own one poller.
        assert len(web.workers()) == 2
        hb = SSEClient("127.0.0.1", web.port, f"/events?as={guest_ip(1)}&last_id={again}").connect()
        assert hb.next(comments=True).comment  # the connect comment
        assert hb.next(comments=True).comment  # a heartbeat within ~1 s
        for c in [*clients[1:], back, hb]:
            c.close()
    finally:
        db.conn.close()


def test_both_workers_are_woken_well_before_their_safety_net(web):
    from bench.chat import guest_ip

    db = web.db()
    clients = []
    try:
        start = publish(db, web.session_id, "t.start", {})
        clients = [SSEClient("127.0.0.1", web.port, f"/events?as={guest_ip(i)}&last_id={start}").connect()
                   for i in range(6)]
        for n in range(3):
            sent = time.monotonic()
            eid = publish(db, web.session_id, "t.x", {"n": n})
            assert [c.next().id for c in clients] == [eid] * 6
            assert time.monotonic() - sent < SAFETY / 10, "found by the safety-net poll, not woken"
        names = sorted(p.name for p in (web.cfg.state_dir / "sitzungsbox.db-wake").iterdir())
        # One socket per worker whose hub runs (a worker that got no stream has none yet), named by its pid.
        pids = {str(p.pid) for p in web.workers()}
        assert names and {n.split("-")[0] for n in names} <= pids and all(n.endswith(".sock") for n in names)
    finally:
        for c in clients:
            c.close()
        db.conn.close()


def test_unknown_device_gets_403(web):
    c = SSEClient("127.0.0.1", web.port, "/events?as=10.77.9.9").connect()
    assert c.status == 403
    c.close()
