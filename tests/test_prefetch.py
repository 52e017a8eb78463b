# ruff: noqa: F811 - the fixtures of tests/test_documents.py, imported
"""Fetching documents onto a device before the session (issue 16): the rule (rules.prefetch) as tables, the list
a device asks for (`/unterlagen/vorab`) and the marked fetches on the viewer-data route (`?vorab=1`): allowed
before the chair moves the room to an item, 409 with the German reason after, never a file the read policy
withholds, bytes counted as traffic kind `prefetch` and paced like whole files. The browser side:
tests/test_prefetch_browser.py."""

from __future__ import annotations

import pytest

from appliance.documents import httpfile, service, traffic
from appliance.rules import prefetch as rule
from appliance.rules.viewer import Viewer
from appliance.sessions import service as sessions
from appliance.usecases import speakers as acts
from tests.test_documents import PDF, PDF2, app_as, member_viewer, setup  # noqa: F401 - fixtures


@pytest.mark.parametrize(("active", "current", "allowed", "code"), [
    (True, None, True, rule.ALLOWED),  # members arrive: fetch ahead
    (True, 7, False, rule.STARTED),  # the chair is on an item: the session has started
    (False, None, False, rule.NO_SESSION),
    (False, 7, False, rule.NO_SESSION),
])
def test_rule(active, current, allowed, code):
    d = rule.may_prefetch(session_active=active, current_item_id=current)
    assert (bool(d), d.allowed, d.code) == (allowed, allowed, code)
    assert d.code == rule.ALLOWED or d.code in rule.REASONS


@pytest.mark.parametrize(("current", "expected"), [
    (None, ["s1", "a1", "a2", "b1"]),  # the agenda's order: the session's own documents, then item by item
    (20, ["b1", "s1", "a1", "a2"]),  # the current item's first
    (10, ["a1", "a2", "s1", "b1"]),
    (99, ["s1", "a1", "a2", "b1"]),  # an item without files
])
def test_order(current, expected):
    entries = [(None, ["s1"]), (10, ["a1", "a2"]), (20, ["b1"]), (30, [])]
    assert rule.order(entries, current) == expected


def test_prefetch_kind_is_counted_and_paced():
    assert "prefetch" in traffic.KINDS and traffic.kind_of("prefetch", 200) == "prefetch"
    assert traffic.should_pace("prefetch", True, 4096) and not traffic.should_pace("prefetch", False, 4096)


def _listing(client) -> dict:
    r = client.get("/unterlagen/vorab")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    return r.get_json()


def _flush(client) -> None:
    meter = client.application.extensions.get("sb_doc_traffic")
    if meter is not None:
        meter.flush()


def test_list_and_fetch_before_the_start_then_409(setup, app_as, db):
    sid, ids = setup["s"].id, setup["ids"]
    anna = member_viewer(setup["people"]["Anna Schmidt"], sid)
    c = app_as(anna)
    got = _listing(c)
    assert got["allowed"] is True and got["reason"] == "" and got["session_id"] == sid
    # Anna reads all three: the agenda's order (item 1's two files, then item 2's)
    assert [f["id"] for f in got["files"]] == [ids["haushalt.pdf"], ids["anlage-np.pdf"], ids["vermerk.pdf"]]
    for f in got["files"]:
        row = service.get_file(db, f["id"])
        sha = service.viewer_copy(row)
        assert f["etag"] == httpfile.etag(sha)
        assert f["length"] == setup["blobs"].path(sha).stat().st_size
        assert f["url"] == f"/unterlagen/{f['id']}/pdf?vorab=1"
    assert got["bytes"] == sum(f["length"] for f in got["files"])

    # The fetch: the whole viewer copy, counted as prefetch (not as a viewer read), logged for the clerk.
    r = c.get(got["files"][2]["url"])
    assert r.status_code == 200 and r.data == PDF2 and r.headers["ETag"] == got["files"][2]["etag"]
    assert "private, no-store" in r.headers["Cache-Control"]
    _flush(c)
    use = traffic.usage(db, sid)
    assert use.by_kind["prefetch"] == len(PDF2) and use.by_kind["viewer"] == 0
    assert use.opens == {}  # not an open of the viewer: the clerk's saving is not inflated
    assert [r["via"] for r in service.downloads(db, sid)] == ["prefetch"]  # a non-public file went to Anna's device
    from tests.test_traffic import clerk_client

    clerk_page = clerk_client(app_as, db, sid)[0].get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True)
    assert '<tr id="traffic-prefetch"><td>vorab geladen (vor Sitzungsbeginn)</td>' in clerk_page
    c = app_as(anna)

    # The chair moves the room to item 1: the session has started.
    clerk = Viewer("clerk", sid)
    item = service.get_file(db, ids["vermerk.pdf"]).item_id
    assert acts.set_current_item(db, clerk, sid, item)
    got = _listing(c)
    assert got["allowed"] is False and got["code"] == rule.STARTED
    assert got["reason"].startswith("Die Sitzung hat begonnen")
    assert got["files"][0]["id"] == ids["vermerk.pdf"]  # the current item's first (what a device holds stays)
    r = c.get(f"/unterlagen/{ids['haushalt.pdf']}/pdf?vorab=1")
    assert r.status_code == 409 and r.get_json()["reason"].startswith("Die Sitzung hat begonnen")
    assert r.headers["Cache-Control"] == "no-store"
    assert c.head(f"/unterlagen/{ids['haushalt.pdf']}/pdf?vorab=1").status_code == 409
    # The viewer itself goes on, ranges as always.
    r = c.get(f"/unterlagen/{ids['haushalt.pdf']}/pdf", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206
    _flush(c)
    assert traffic.usage(db, sid).by_kind["prefetch"] == len(PDF2)  # nothing more

    # A break: no item current, fetching ahead is allowed again.
    assert acts.set_current_item(db, clerk, sid, None)
    assert _listing(c)["allowed"] is True
    assert c.get(f"/unterlagen/{ids['haushalt.pdf']}/pdf?vorab=1").data == PDF


@pytest.mark.parametrize("who", ["guest", "Otto Ausschuss", "Gerd Gast"])
def test_the_read_policy_decides_the_list(setup, app_as, who):
    """A guest's device and members not entitled to the non-public part get no non-public file in the list and
    cannot fetch one ahead (404, as for any file they may not read)."""
    sid, ids = setup["s"].id, setup["ids"]
    viewer = (Viewer("guest", sid, None, True, "10.77.0.30") if who == "guest"
              else member_viewer(setup["people"][who], sid))
    c = app_as(viewer)
    got = _listing(c)
    assert got["allowed"] is True
    assert [f["id"] for f in got["files"]] == [ids["haushalt.pdf"]]
    for name in ("anlage-np.pdf", "vermerk.pdf"):
        assert c.get(f"/unterlagen/{ids[name]}/pdf?vorab=1").status_code == 404
    assert c.get(f"/unterlagen/{ids['haushalt.pdf']}/pdf?vorab=1").data == PDF


def test_no_active_session(setup, app_as, db):
    sid, ids = setup["s"].id, setup["ids"]
    anna = member_viewer(setup["people"]["Anna Schmidt"], sid)
    c = app_as(anna)
    db.execute("UPDATE sessions SET active = 0 WHERE id = ?", [sid])  # the clerk ended it; the device still asks
    assert sessions.active_session(db) is None
    r = c.get(f"/unterlagen/{ids['haushalt.pdf']}/pdf?vorab=1")
    assert r.status_code == 409 and r.get_json()["code"] == rule.NO_SESSION
    assert r.get_json()["reason"].startswith("Keine aktive Sitzung")
    assert _listing(c)["allowed"] is False


def test_the_viewer_page_names_the_copy(setup, app_as, db):
    """viewer.js finds a stored copy by file id, ETag and length: the page carries all three."""
    sid, ids = setup["s"].id, setup["ids"]
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    page = c.get(f"/unterlagen/ansehen/{ids['vermerk.pdf']}").get_data(as_text=True)
    sha = service.viewer_copy(service.get_file(db, ids["vermerk.pdf"]))
    assert f'data-file-id="{ids["vermerk.pdf"]}"' in page
    assert f'data-etag="{httpfile.etag(sha).replace(chr(34), "&#34;")}"' in page
    assert f'data-pdf-length="{len(PDF2)}"' in page


def test_the_agenda_page_has_the_hidden_control(setup, app_as):
    sid = setup["s"].id
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    page = c.get("/unterlagen").get_data(as_text=True)
    assert 'id="prefetch" hidden' in page and "Unterlagen vorab auf dieses Gerät laden" in page
    assert 'data-list-url="/unterlagen/vorab"' in page
    assert "Auf diesem Gerät: {done} von {total} Dateien, {size}." in page
    en = c.get("/unterlagen?lang=en").get_data(as_text=True)
    assert "Load the documents onto this device in advance" in en and 'data-list-url="/unterlagen/vorab?lang=en"' in en
