"""Documents on a shared radio (issue 16): bytes counted per session, file and kind; the pacing of bulk
downloads (pure maths and decision as tables, one coarse check through the app)."""

from __future__ import annotations

import io
import zipfile

import pytest

from appliance.documents import service, traffic
from tests import pdf_samples
from tests.test_documents import app_as, member_viewer, setup  # noqa: F401 - fixtures

BIG = pdf_samples.sized(3_000_000)


def rows(db, sid):
    return {(f, k): (b, r, o) for f, k, b, r, o in db.execute(
        "SELECT file_id, kind, bytes, requests, opens FROM doc_traffic WHERE session_id = ?", [sid]).fetchall()}


def flush(client) -> None:
    client.application.extensions["sb_doc_traffic"].flush()


@pytest.mark.parametrize(("route", "status", "kind"), [
    ("download", 200, "whole"), ("download", 206, "range"), ("viewer", 206, "viewer"), ("viewer", 200, "viewer")])
def test_kind_of(route, status, kind):
    assert traffic.kind_of(route, status) == kind


@pytest.mark.parametrize(("kind", "running", "rate", "paced"), [
    ("whole", True, 4096, True), ("zip", True, 4096, True), ("range", True, 4096, False),
    ("viewer", True, 4096, False), ("whole", False, 4096, False), ("zip", True, 0, False)])
def test_pacing_decision(kind, running, rate, paced):
    assert traffic.should_pace(kind, running, rate) is paced


def test_token_bucket_maths():
    b = traffic.Bucket(rate=1000, burst=500, tokens=500, at=0.0)
    assert b.reserve(500, 0.0) == 0.0  # the burst goes at once
    assert b.reserve(1000, 0.0) == pytest.approx(1.0)  # then one second per 1000 bytes
    assert b.reserve(1000, 0.0) == pytest.approx(2.0)  # queued behind the first: FIFO
    assert b.reserve(0, 3.0) == 0.0  # debt paid off
    assert b.reserve(100, 100.0) == 0.0 and b.tokens == 400  # idle time saves up no more than the burst


def test_pacer_holds_the_rate_with_a_fake_clock():
    now = [0.0]
    pacer = traffic.Pacer(1024, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    for _ in range(100):
        pacer.pace(64 * 1024)  # 6.25 MiB at 1 MiB/s, the first 256 KiB from the burst
    assert now[0] == pytest.approx((100 * 64 - 256) / 1024)


def test_saving():
    assert traffic.saving(10_000_000, 3, 2_000_000) == 28_000_000
    assert traffic.saving(1000, 1, 5000) == 0


def test_whole_range_and_zip_counted_exactly(setup, app_as, db):  # noqa: F811
    sid, ids = setup["s"].id, setup["ids"]
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    fid = ids["vermerk.pdf"]
    size = service.get_file(db, fid).size
    etag = f'"{service.get_file(db, fid).sha256[:32]}"'
    url = f"/unterlagen/datei/{fid}/v.pdf"
    for headers, status, n in (({}, 200, size), ({"Range": "bytes=0-99"}, 206, 100),
                               ({"Range": "bytes=1000-1999"}, 206, 1000), ({"If-None-Match": etag}, 304, 0)):
        with c.get(url, headers=headers) as r:  # a server closes every body: that is when it is counted
            assert (r.status_code, len(r.data)) == (status, n)
    with c.head(url) as r:
        assert r.status_code == 200
    with c.get("/unterlagen/alle.zip") as r:
        z = r.data
    flush(c)
    got = rows(db, sid)
    assert got[(fid, "whole")] == (size, 1, 1)
    assert got[(fid, "range")] == (1100, 2, 1)  # the one from byte 0 counts as an open
    zip_rows = {f: v for (f, k), v in got.items() if k == "zip"}
    assert sum(b for b, _, _ in zip_rows.values()) == len(z)  # every byte of the archive, once
    assert zip_rows[fid][0] > size and zip_rows[0][1] == 0  # file plus its header; the directory is no request
    assert len(zipfile.ZipFile(io.BytesIO(z)).namelist()) == 3


def test_disconnect_counts_what_was_sent(setup, app_as, db, cfg):  # noqa: F811
    sid = setup["s"].id
    n, kind, stored = service.store_upload(setup["blobs"], "scan.pdf", io.BytesIO(BIG))
    fid = service.add_file(db, sid, name=n, stored=stored, mime=kind.mime)
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    for headers in ({}, {"Range": f"bytes=0-{len(BIG) - 2}"}):
        r = c.get(f"/unterlagen/datei/{fid}/scan.pdf", headers=headers, buffered=False)
        it = iter(r.response)
        first = next(it)
        second = next(it)  # the server asked for more: the first chunk went out
        r.close()  # the phone went away
        assert 0 < len(first) + len(second) < len(BIG)
    flush(c)
    got = rows(db, sid)
    assert got[(fid, "whole")][0] == 64 * 1024  # paced whole file: 64 KiB chunks, the second never confirmed
    assert got[(fid, "range")][0] == 2 * (1 << 20)  # the file wrapper's 1 MiB reads handed to the server


def test_meter_flushes_in_batches(cfg, db, setup):  # noqa: F811
    now = [0.0]
    sid = setup["s"].id
    m = traffic.Meter(cfg.db_path, flush_s=5, flush_n=3, clock=lambda: now[0])
    m.add(sid, 1, "viewer", 10, opened=True)
    m.add(sid, 1, "viewer", 20)
    assert rows(db, sid) == {}  # in memory until the batch is full or old enough
    m.add(sid, 2, "whole", 5)
    assert rows(db, sid) == {(1, "viewer"): (30, 2, 1), (2, "whole"): (5, 1, 0)}
    m.add(sid, 2, "whole", 5)
    now[0] = 6.0
    m.add(sid, 2, "whole", 5)
    assert rows(db, sid)[(2, "whole")] == (15, 3, 0)
    with pytest.raises(ValueError):
        m.add(sid, 1, "bogus", 1)


def test_paced_whole_download_is_slower_than_a_range(setup, app_as, db, cfg):  # noqa: F811
    """Coarse: a 3 MB whole file at 1 MiB/s takes well over a second; a range of it does not wait at all."""
    import time
    sid = setup["s"].id
    n, kind, stored = service.store_upload(setup["blobs"], "scan.pdf", io.BytesIO(BIG))
    fid = service.add_file(db, sid, name=n, stored=stored, mime=kind.mime)
    c = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    c.application.extensions["sb_doc_pacer"] = traffic.Pacer(1024)
    c.application.config["SB"] = __import__("dataclasses").replace(cfg, docs_bulk_pace_kib=1024)
    t0 = time.monotonic()
    with c.get(f"/unterlagen/datei/{fid}/scan.pdf", headers={"Range": "bytes=0-2999999"}) as r:
        assert r.status_code == 206
    t_range = time.monotonic() - t0
    t0 = time.monotonic()
    assert len(c.get(f"/unterlagen/datei/{fid}/scan.pdf").data) == len(BIG)
    t_whole = time.monotonic() - t0
    assert t_whole >= 2.0  # (3 MB - 256 KiB burst) / 1 MiB/s = 2.6 s, whatever the machine
    assert t_range < t_whole / 2


def clerk_client(use, db, sid):
    import re

    from appliance.web import auth
    c = use(None)
    auth.set_password(db, "pw-for-this-test-1")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/clerk/login").get_data(as_text=True)).group(1)
    c.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-this-test-1"})
    page = c.get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True)
    return c, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_clerk_page_shows_bytes_saving_and_the_hall_warning(setup, app_as, db, cfg):  # noqa: F811
    import dataclasses
    sid, ids = setup["s"].id, setup["ids"]
    fid = ids["vermerk.pdf"]
    size = service.get_file(db, fid).size
    anna = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    for rng in ("bytes=0-9999", "bytes=10000-19999", "bytes=0-9999"):  # two opens by the viewer
        with anna.get(f"/unterlagen/datei/{fid}/v.pdf", headers={"Range": rng}) as r:
            assert r.status_code == 206
    with anna.get(f"/unterlagen/datei/{fid}/v.pdf") as r:
        assert len(r.data) == size
    c, _ = clerk_client(app_as, db, sid)
    c.application.config["SB"] = dataclasses.replace(cfg, docs_hall_warn_mb=1)  # vermerk.pdf: 200 kB
    page = c.get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True)
    assert 'id="traffic-range"' in page and f'id="traffic-file-{fid}"' in page
    saved = 2 * size - 30_000
    assert "Ersparnis durch die Ansicht: " in page
    assert traffic.usage(db, sid).by_kind == {"viewer": 0, "range": 30_000, "whole": size, "zip": 0,
                                                 "prefetch": 0}
    assert traffic.saving(size, traffic.usage(db, sid).opens[fid], 30_000) == saved
    assert "Dateigröße × Öffnungen" in page
    assert 'id="hall-warn-' not in page  # 200 kB is fine under 1 MB
    big = service.add_file(db, sid, name="scan.pdf", stored=setup["blobs"].put_bytes(BIG), mime="application/pdf")
    page = c.get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True)
    assert f'id="hall-warn-{big}"' in page and "Zu groß für den Saal" in page
    assert f'id="optimise-{big}"' in page and "Optimierte Kopie speichern" in page
    en = c.get(f"/clerk/sessions/{sid}/unterlagen?lang=en").get_data(as_text=True)
    assert "Saved by the viewer" in en and "Too large for the hall" in en


@pytest.mark.skipif(__import__("shutil").which("gs") is None, reason="ghostscript not installed")
def test_optimised_copy_is_smaller_and_the_original_untouched(setup, app_as, db, cfg):  # noqa: F811
    import dataclasses
    import hashlib

    from appliance.usecases import documents as doc_acts
    sid = setup["s"].id
    data = pdf_samples.scan()
    stored = setup["blobs"].put_bytes(data)
    fid = service.add_file(db, sid, name="scan.pdf", stored=stored, mime="application/pdf")
    c, tok = clerk_client(app_as, db, sid)
    c.application.config["SB"] = dataclasses.replace(cfg, docs_hall_warn_mb=1)
    r = c.post(f"/clerk/sessions/{sid}/unterlagen/datei/{fid}/optimieren", data={"csrf_token": tok})
    assert r.status_code == 302
    f = service.get_file(db, fid)
    copy = service.optimised_copy(f)
    assert copy and copy != f.sha256 and f.sha256 == hashlib.sha256(data).hexdigest()
    assert setup["blobs"].path(f.sha256).read_bytes() == data  # the original stays
    small = setup["blobs"].path(copy).read_bytes()
    assert small.startswith(b"%PDF") and len(small) < len(data) / 3
    assert service.check(db, setup["blobs"]) == []  # the copy is referenced, not an orphan
    page = c.get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True)
    assert f'id="optimised-{fid}"' in page and f'id="optimise-{fid}"' not in page
    anna = app_as(member_viewer(setup["people"]["Anna Schmidt"], sid))
    with anna.get(f"/unterlagen/datei/{fid}/scan.pdf") as r:
        assert r.data == data  # downloads serve the original
    # Already small: Ghostscript's copy is not smaller, nothing is kept.
    small_id = service.add_file(db, sid, name="klein.pdf", stored=setup["blobs"].put_bytes(small),
                                mime="application/pdf")
    before = set(setup["blobs"].all())
    done = doc_acts.optimise_file(cfg, db, small_id, "clerk")
    assert not done.kept and service.optimised_copy(service.get_file(db, small_id)) is None
    assert set(setup["blobs"].all()) == before
    # Deleting the file takes its copy along (once klein.pdf, the same bytes, is gone too).
    doc_acts.delete_file(cfg, db, fid, "clerk")
    assert setup["blobs"].has(copy) and not setup["blobs"].has(f.sha256)
    doc_acts.delete_file(cfg, db, small_id, "clerk")
    assert not setup["blobs"].has(copy) and service.check(db, setup["blobs"]) == []


@pytest.mark.skipif(__import__("shutil").which("gs") is None, reason="ghostscript not installed")
def test_optimised_copy_has_its_page_dictionaries_together(setup, db, cfg):  # noqa: F811
    """What the hall's copy must give the viewer: page dictionaries together (Ghostscript writes them so; had it
    not, the same qpdf step as at import packs them, documents/viewcopy.py)."""
    from appliance.usecases import documents as doc_acts
    from tests.test_viewcopy import _chunks_with_page_dicts
    data = pdf_samples.scan(pages=6)
    fid = service.add_file(db, setup["s"].id, name="bilder.pdf", stored=setup["blobs"].put_bytes(data),
                           mime="application/pdf")
    assert doc_acts.optimise_file(cfg, db, fid, "clerk").kept
    copy = setup["blobs"].path(service.optimised_copy(service.get_file(db, fid)))
    assert _chunks_with_page_dicts(copy) == 1 and copy.stat().st_size < len(data) / 3
