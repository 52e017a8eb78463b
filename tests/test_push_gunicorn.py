"""The push channel through the real gunicorn server (serve.py's path, two gevent workers): several streams
across both workers, events published by another process, resume with Last-Event-ID and ?last_id=."""

from __future__ import annotations

import pytest

from appliance.push import publish
from appliance.push.sseclient import SSEClient
from tests.conftest import need_root


@pytest.fixture(scope="module")
def web():
    need_root()  # the web app drops to nobody, as on the box
    from bench.chat import WebServer

    server = WebServer.prepare(6, push_heartbeat=1.0).start()
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


def test_unknown_device_gets_403(web):
    c = SSEClient("127.0.0.1", web.port, "/events?as=10.77.9.9").connect()
    assert c.status == 403
    c.close()
