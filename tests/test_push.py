"""The push hub: publish contract, audiences, resume without gaps or duplicates, heartbeat, one poller."""

from __future__ import annotations

import dataclasses

import pytest

from appliance.push import Audiences, publish, visible
from appliance.push import hub as hub_mod
from appliance.push.audience import EXT, AudienceError, check
from appliance.push.events import since
from appliance.push.sseclient import parse_block
from appliance.rules.viewer import Viewer
from tests.live_support import ANNA_IP, BERND_IP, GUEST_IP, call, populate


@pytest.fixture
def live(cfg, db, monkeypatch):
    from appliance.helper.client import NullHelper
    from appliance.web.app import create_app

    s, ms = populate(cfg, db)
    app = create_app(dataclasses.replace(cfg, push_heartbeat=0.3), helper=NullHelper(), testing=True)
    yield app, s, ms
    hub_mod.stop_all()


def read_events(resp, n: int) -> list:
    """The next n data events of a streamed test-client response (heartbeats skipped)."""
    out, buf = [], ""
    it = resp.response if hasattr(resp.response, "__next__") else iter(resp.response)
    while len(out) < n:
        chunk = next(it)
        buf += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            ev = parse_block(block)
            if ev is not None and not ev.comment:
                out.append(ev)
    return out


def test_publish_returns_increasing_ids_and_validates(db, cfg):
    a = publish(db, 1, "chat.message", {"text": "Hallo"})
    b = publish(db, 1, "presence.changed", {"n": 2}, audience="clerks")
    assert b > a > 0
    assert [e.id for e in since(db, 0)] == [a, b]
    for bad in ("nobody", "member:x", "unknownprefix:1", ""):
        with pytest.raises(ValueError):
            publish(db, 1, "x", {}, audience=bad)
    with pytest.raises(ValueError):
        publish(db, 1, "bad topic!", {})
    with pytest.raises(ValueError):
        publish(db, 1, "x", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_audiences(db):
    from appliance.sessions.service import Member

    anna = Member(1, 1, "Anna", "SPD", "member", True, "Rat", "k1", "p")
    member = Viewer("member", 1, anna, True)
    guest = Viewer("guest", 1, None, True)
    clerk = Viewer("clerk", 1)
    nobody = Viewer("anonymous", 1)
    table = {
        "all": (True, True, True, False),
        "members": (True, False, True, False),
        "clerks": (False, False, True, False),
        "member:1": (True, False, False, False),
        "member:2": (False, False, False, False),
    }
    for aud, expected in table.items():
        got = tuple(visible(v, aud, db) for v in (member, guest, clerk, nobody))
        assert got == expected, aud
    seen = []
    audiences = Audiences(features=("tdoc", "tboom"))
    audiences.register("tdoc", lambda v, value, d: seen.append(value) or (v.is_member and value == "7"))
    assert audiences.visible(member, "tdoc:7", db) and not audiences.visible(guest, "tdoc:7", db)
    assert seen == ["7", "7"] and not visible(member, "tdoc:7", db)  # without the app's checks: nobody
    audiences.register("tboom", lambda v, value, d: 1 / 0)
    assert not audiences.visible(clerk, "tboom:1", db)  # a failing check never leaks
    with pytest.raises(AudienceError):
        check("faction:SPD")  # faction rooms are chat audiences: "chat:faction:SPD"
    for taken in ("all", "member", "unlisted"):
        with pytest.raises(AudienceError):
            audiences.register(taken, lambda *a: True)
    with pytest.raises(AudienceError):
        audiences.register("tdoc", lambda *a: True)  # once per app


def test_audience_checks_belong_to_the_app_and_publish_needs_no_app(cfg, db):
    from appliance.web.app import create_app

    one, two = (create_app(cfg, testing=True).extensions[EXT] for _ in range(2))
    assert one is not two and one.features == two.features == {"chat", "doc"}
    # Any process may publish a feature's audience: the known prefixes are static, nothing needs registering.
    script = ("from appliance.store import open_db; from appliance.push import publish; import sys; "
              f"db = open_db({str(cfg.db_path)!r}); publish(db, 1, 'chat.message', {{}}, audience='chat:all'); "
              "publish(db, 1, 'docs.new', {}, audience='doc:3'); "
              "assert 'appliance.chat.store' not in sys.modules and 'flask' not in sys.modules")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [e.audience for e in since(db, 0)] == ["chat:all", "doc:3"]


def test_anonymous_gets_403_not_a_stream(live):
    app, _s, _ms = live
    resp = call(app, "/events", "10.77.0.99")
    assert resp.status_code == 403 and "freigeschaltete" in resp.get_data(as_text=True)


def test_stream_resumes_exactly_and_filters_by_audience_and_session(live, db):
    app, s, ms = live
    ids = [publish(db, s.id, "chat.message", {"n": i}) for i in range(3)]
    private = publish(db, s.id, "chat.dm", {"n": "dm"}, audience=f"member:{ms['Bernd'].id}")
    publish(db, s.id + 100, "chat.message", {"n": "other session"})
    clerks_only = publish(db, s.id, "presence.changed", {"n": "clerks"}, audience="clerks")
    # Anna missed everything after ids[0]: she gets ids[1], ids[2] — not Bernd's DM, the clerks' event or
    # another session's event — and then live ones, in order.
    resp = call(app, f"/events?last_id={ids[0]}", ANNA_IP, buffered=False)
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    first = read_events(resp, 2)
    assert [e.id for e in first] == ids[1:]
    assert first[0].json() == {"topic": "chat.message", "payload": {"n": 1}}
    live_id = publish(db, s.id, "chat.message", {"n": "live"})
    (ev,) = read_events(resp, 1)
    assert ev.id == live_id and ev.id > clerks_only > private
    resp.close()
    # Last-Event-ID (the browser's own resume) wins over the page's ?last_id=.
    resp = call(app, f"/events?last_id={ids[0]}", BERND_IP, buffered=False, headers={"Last-Event-ID": str(ids[2])})
    got = read_events(resp, 2)
    assert [e.id for e in got] == [private, live_id]
    resp.close()


def test_live_events_after_backlog_without_duplicates(live, db):
    app, s, _ms = live
    start = publish(db, s.id, "t.x", {"n": 0})
    resp = call(app, f"/events?last_id={start}", GUEST_IP, buffered=False)
    expected = [publish(db, s.id, "t.x", {"n": i}) for i in range(1, 30)]
    got = read_events(resp, len(expected))
    assert [e.id for e in got] == expected
    resp.close()


def test_heartbeat_comment_on_idle_stream(live):
    app, _s, _ms = live
    resp = call(app, "/events?last_id=0", ANNA_IP, buffered=False)
    it = iter(resp.response)
    assert b"retry:" in _b(next(it))
    assert _b(next(it)) == b": hb\n\n"  # after push_heartbeat (0.3 s here) of silence
    resp.close()


def _b(chunk) -> bytes:
    return chunk if isinstance(chunk, bytes) else chunk.encode()


def test_one_poller_per_process_serves_every_stream(live, db):
    app, s, _ms = live
    hub_mod.stop_all()  # pollers other tests' apps left in this process (random order) are not this app's
    streams = [call(app, "/events?last_id=0", ip, buffered=False) for ip in (ANNA_IP, BERND_IP, GUEST_IP) * 4]
    for r in streams:
        next(iter(r.response))
    hub = hub_mod.get_hub(app.config["SB"].db_path)
    assert hub.count == 12 and len(hub_mod._HUBS) == 1
    eid = publish(db, s.id, "t.x", {})
    for r in streams:
        assert read_events(r, 1)[0].id == eid
        r.close()
    assert hub.count == 0  # closed streams unsubscribe


def test_pages_of_admitted_devices_load_live_js_with_a_start_id(live, db):
    app, s, _ms = live
    eid = publish(db, s.id, "t.x", {})
    html = call(app, "/", ANNA_IP).get_data(as_text=True)
    assert 'src="/static/js/live.js"' in html and f'data-push-last="{eid}"' in html
    portal = call(app, "/portal", "10.77.0.99").get_data(as_text=True)
    assert "live.js" not in portal


def test_a_stream_remembers_only_audiences_its_viewer_alone_decides():
    """hub.Subscriber.may_see: built-in and per-id audiences are decided by the stream's fixed viewer (asked once);
    a feature's audience (a chat room, a document) may change with the database and is asked on every event."""
    from appliance.push.audience import is_pure

    asked: list[str] = []
    allowed = {"chat:all": True}

    def check(viewer, audience, db):
        asked.append(audience)
        return visible(viewer, audience, db) if is_pure(audience) else allowed.get(audience, False)

    clerk = hub_mod.Subscriber(Viewer("clerk", 1), 1, check)
    for _ in range(3):
        assert clerk.may_see("clerks", None) and clerk.may_see("all", None)
        assert not clerk.may_see("member:7", None) and not clerk.may_see("display:2", None)
        assert clerk.may_see("chat:all", None)
    assert asked.count("clerks") == 1 and asked.count("member:7") == 1 and asked.count("chat:all") == 3
    allowed["chat:all"] = False  # e.g. the room was closed: the next event is asked again and denied
    assert not clerk.may_see("chat:all", None)
    assert [is_pure(a) for a in ("all", "members", "clerks", "member:3", "display:1", "chat:all", "doc:5")] == \
        [True, True, True, True, True, False, False]


def test_the_hub_routes_each_pure_audience_to_exactly_the_streams_that_see_it(cfg, db):
    """Hub.dispatch_new keeps, per (session, built-in or per-id audience), the streams that see it (their answers
    are fixed): each event reaches exactly those; a stream that comes or goes changes the routes at once; a
    feature's audience is asked on every event."""
    s, ms = populate(cfg, db)
    hub = hub_mod.Hub(cfg.db_path)
    hub._db = db
    hub.last = 0
    anna = Viewer("member", s.id, ms["Anna"], True)
    clerk = hub.subscribe(Viewer("clerk", s.id), s.id)
    member = hub.subscribe(anna, s.id)
    other_session = hub.subscribe(Viewer("clerk", s.id + 1), s.id + 1)

    def got(sub) -> list[str]:
        out = []
        while not sub.queue.empty():
            out.append(sub.queue.get_nowait().topic)
        return out

    publish(db, s.id, "t.a", {}, audience="clerks")
    publish(db, s.id, "t.b", {}, audience=f"member:{ms['Anna'].id}")
    publish(db, s.id, "t.c", {}, audience="all")
    hub.dispatch_new()
    assert got(clerk) == ["t.a", "t.c"] and got(member) == ["t.b", "t.c"] and got(other_session) == []
    late = hub.subscribe(Viewer("clerk", s.id), s.id)  # after the routes were made: gets the next event
    hub.unsubscribe(member)
    publish(db, s.id, "t.d", {}, audience="clerks")
    publish(db, s.id, "t.e", {}, audience="all")
    hub.dispatch_new()
    assert got(clerk) == ["t.d", "t.e"] and got(late) == ["t.d", "t.e"] and got(member) == []
    allowed = {"chat:x": False}
    featured = hub.subscribe(anna, s.id, visible=lambda v, a, d: allowed.get(a, visible(v, a, d)))
    publish(db, s.id, "t.f", {}, audience="chat:x")
    hub.dispatch_new()
    allowed["chat:x"] = True
    publish(db, s.id, "t.g", {}, audience="chat:x")
    hub.dispatch_new()
    assert got(featured) == ["t.g"]
