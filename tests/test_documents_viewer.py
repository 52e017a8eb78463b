"""The viewer-data route (issue 16): the bytes the in-page PDF viewer fetches range by range, under the same read
policy as downloads; and the viewer page, which without JavaScript is just the download link."""

from __future__ import annotations

import re

from appliance.documents import service
from appliance.rules.viewer import Viewer
from tests.test_documents import PDF, PDF2, app_as, member_viewer, setup  # noqa: F401 - fixtures

VIEWER_DATA = "/unterlagen/{}/pdf"


def viewer_bytes(setup, db, name: str) -> bytes:  # noqa: F811 - setup is the fixture's value
    """What the viewer reads: the copy named at import (documents/viewcopy.py; a one-page PDF is its own)."""
    f = service.get_file(db, setup["ids"][name])
    assert f.view_sha256
    return setup["blobs"].path(service.viewer_copy(f)).read_bytes()


def test_viewer_data_answers_ranges_head_and_bad_ranges(setup, app_as, db):  # noqa: F811
    sid, ids = setup["s"].id, setup["ids"]
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    url = VIEWER_DATA.format(ids["vermerk.pdf"])
    PDF2 = viewer_bytes(setup, db, "vermerk.pdf")  # noqa: N806 - the bytes the viewer reads, not the original
    head = c.head(url)
    assert head.status_code == 200 and head.headers["Accept-Ranges"] == "bytes"
    assert int(head.headers["Content-Length"]) == len(PDF2) and head.data == b""
    assert "Content-Disposition" not in head.headers and head.mimetype == "application/pdf"
    part = c.get(url, headers={"Range": "bytes=0-65535"})
    assert part.status_code == 206 and part.data == PDF2[:65536]
    assert part.headers["Content-Range"] == f"bytes 0-65535/{len(PDF2)}"
    assert part.headers["Content-Length"] == "65536" and "Content-Disposition" not in part.headers
    tail = c.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.data == PDF2[-100:]
    for bad in (f"bytes={len(PDF2)}-", "bytes=500-100", "bytes=-0"):
        r = c.get(url, headers={"Range": bad})
        assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(PDF2)}", bad
    whole = c.get(url)
    assert whole.status_code == 200 and whole.data == PDF2
    assert c.get(url, headers={"If-None-Match": whole.headers["ETag"]}).status_code == 304
    # A reading is logged once (the range at 0 and the whole GET), not per range; HEAD and later ranges are not.
    assert [(r["who"], r["via"]) for r in service.downloads(db, sid)] == [("Anna Schmidt", "viewer")] * 2


def test_viewer_data_follows_the_read_policy(setup, app_as, db):  # noqa: F811
    sid, ids = setup["s"].id, setup["ids"]
    guest = app_as(Viewer("guest", sid, None, True, "10.77.0.30"))
    for name in ("vermerk.pdf", "anlage-np.pdf"):  # a non-public item, a non-public file
        for call in (guest.get, guest.head):
            r = call(VIEWER_DATA.format(ids[name]), headers={"Range": "bytes=0-99"})
            assert r.status_code == 404 and PDF2[:50] not in r.data
    assert guest.get(VIEWER_DATA.format(ids["haushalt.pdf"])).data == viewer_bytes(setup, db, "haushalt.pdf")
    assert guest.get(VIEWER_DATA.format(99999)).status_code == 404
    anon = app_as(Viewer("anonymous", sid, None, False, "10.77.0.40"))
    r = anon.get(VIEWER_DATA.format(ids["haushalt.pdf"]))
    assert r.status_code == 302 and r.headers["Location"].endswith("/portal")


def test_viewer_data_serves_the_copy_service_names(setup, app_as, monkeypatch):  # noqa: F811
    sid, ids = setup["s"].id, setup["ids"]
    other = setup["blobs"].put_bytes(PDF2[::-1])
    monkeypatch.setattr(service, "viewer_copy", lambda f: other.sha256)
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    r = c.get(VIEWER_DATA.format(ids["haushalt.pdf"]), headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.data == PDF2[::-1][:10]
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(PDF2)}"


def test_viewer_page_keeps_the_plain_download_without_javascript(setup, app_as):  # noqa: F811
    sid, ids = setup["s"].id, setup["ids"]
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    html = c.get(f"/unterlagen/ansehen/{ids['vermerk.pdf']}").get_data(as_text=True)
    assert re.search(r'<a href="/unterlagen/datei/\d+/vermerk.pdf\?dl=1" download id="doc-download"', html)
    assert f'data-pdf-url="/unterlagen/{ids["vermerk.pdf"]}/pdf"' in html
    assert '<script type="module" src="/static/documents/viewer.js"></script>' in html
    assert "<iframe" not in html and 'target="_blank"' not in html
    # the viewer's controls are hidden until the script shows them; without it only the download is there
    assert re.search(r'<div class="pdf-viewer" id="pdf-viewer" hidden', html)
