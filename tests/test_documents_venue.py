"""Documents in the virtual venue (prefix sbd): the real appliance in network namespaces. An admitted member
downloads files and the checksums match; a guest is refused every non-public file by page, direct URL and ZIP;
a Tischvorlage reaches the connected member's live stream and not the guest's."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from appliance.documents import service as docs
from appliance.sessions import service
from tests import pdf_samples

pytestmark = pytest.mark.net
MEMBERS = "Name;Fraktion;Rolle;Stimmrecht;Gremium\nAnna Schmidt;SPD;Mitglied;ja;Rat der Stadt\n"
PUBLIC = pdf_samples.sized(300_000)
SECRET = pdf_samples.sized(200_000)
SECRET2 = pdf_samples.sized(1600)
LATE = pdf_samples.sized(5600)
CLERK_PASSWORD = "venue-clerk-password-1"  # this test's throwaway database only
# The clerk's laptop on the session network: log in, upload a non-public Tischvorlage with the real form.
CLERK_UPLOAD = r"""
import http.cookiejar, re, sys, urllib.parse, urllib.request, uuid
base, password, sid, path = sys.argv[1:5]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def token(url):
    return re.search(r'name="csrf_token" value="([^"]+)"', opener.open(base + url).read().decode()).group(1)
login = urllib.parse.urlencode({"csrf_token": token("/clerk/login"), "password": password, "next": "/clerk/"})
opener.open(base + "/clerk/login", login.encode())
page = f"/clerk/sessions/{sid}/unterlagen"
fields = {"csrf_token": token(page), "item": "", "nonpublic": "1", "late": "1"}
b = uuid.uuid4().hex
body = b"".join(f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                for k, v in fields.items())
body += (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"tischvorlage.pdf\"\r\n"
         f"Content-Type: application/pdf\r\n\r\n").encode() + open(path, "rb").read() + f"\r\n--{b}--\r\n".encode()
req = urllib.request.Request(base + page + "/hochladen", body, {"Content-Type": f"multipart/form-data; boundary={b}"})
print(opener.open(req).status)
"""


def seed(db, sid: int, cfg) -> dict[str, int]:
    from appliance.web import auth

    auth.set_password(db, CLERK_PASSWORD)
    blobs = docs.blobs_for(cfg.state_dir)
    pub = docs.add_item(db, sid, "Haushalt", number="1")
    np_ = docs.add_item(db, sid, "Grundstücksgeschäft Kaiserstraße", number="2", public=False)
    return {
        "public": docs.add_file(db, sid, name="haushalt.pdf", stored=blobs.put_bytes(PUBLIC), mime="application/pdf",
                                item_id=pub),
        "secret": docs.add_file(db, sid, name="kaufvertrag.pdf", stored=blobs.put_bytes(SECRET),
                                mime="application/pdf", item_id=np_),
        "secret2": docs.add_file(db, sid, name="gutachten.pdf", stored=blobs.put_bytes(SECRET2),
                                 mime="application/pdf", item_id=pub, public=False, title="Wertgutachten"),
    }


@pytest.fixture(scope="module")
def box(venue_factory):
    # Clients: 1 a member, 2 a guest, 3 the clerk's laptop.
    b = venue_factory("sbd", 3, members=MEMBERS, title="Sitzung", seed=seed, nft_table="sbdocs")
    b.ids = b.seeded
    return b


def url(box, path: str) -> str:
    return f"http://{box.cfg.address}{path}"


def test_member_and_guest_are_admitted(box):
    db = box.db()
    try:
        anna = service.members(db, box.session_id)[0]
    finally:
        db.conn.close()
    v = box.venue
    for i in v.indices:
        v.dhcp(i)
    box.fake.connect(v.client_mac(1), anna.keyid)
    box.fake.connect(v.client_mac(2), "guest")
    box.wait_station(v.client_mac(1), anna.keyid)
    box.wait_station(v.client_mac(2), "guest")
    assert "Anna Schmidt" in v.http(1, box.cfg.portal_url).text
    page = v.http(2, box.cfg.portal_url).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    r = v.http(2, url(box, "/portal/continue"), method="POST", data=f"csrf_token={token}",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in (302, 303)


def test_member_downloads_every_file_and_checksums_match(box):
    v = box.venue
    page = v.http(1, url(box, "/unterlagen")).text
    assert "Grundstücksgeschäft Kaiserstraße" in page and "Wertgutachten" in page
    for key, data in (("public", PUBLIC), ("secret", SECRET), ("secret2", SECRET2)):
        r = v.http(1, url(box, f"/unterlagen/datei/{box.ids[key]}/x.pdf"), timeout=10)
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == hashlib.sha256(data).hexdigest(), key
    r = v.http(1, url(box, f"/unterlagen/datei/{box.ids['secret']}/x.pdf"), headers={"Range": "bytes=1000-1999"})
    assert r.status == 206 and r.body == SECRET[1000:2000]
    z = zipfile.ZipFile(io.BytesIO(v.http(1, url(box, "/unterlagen/alle.zip"), timeout=10).body))
    assert sorted(hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()) == sorted(
        hashlib.sha256(d).hexdigest() for d in (PUBLIC, SECRET, SECRET2))
    db = box.db()
    try:
        assert {r["who"] for r in docs.downloads(db, box.session_id)} == {"Anna Schmidt"}
    finally:
        db.conn.close()


def test_guest_is_refused_every_nonpublic_file(box):
    v = box.venue
    page = v.http(2, url(box, "/unterlagen")).text
    assert "Haushalt" in page
    assert "Grundstück" not in page and "Wertgutachten" not in page and "kaufvertrag" not in page
    for key in ("secret", "secret2"):
        for path in (f"/unterlagen/datei/{box.ids[key]}/x.pdf", f"/unterlagen/ansehen/{box.ids[key]}"):
            r = v.http(2, url(box, path))
            assert r.status == 404 and SECRET not in r.body, path
    z = zipfile.ZipFile(io.BytesIO(v.http(2, url(box, "/unterlagen/alle.zip"), timeout=10).body))
    assert [n.rsplit("/", 1)[1] for n in z.namelist()] == ["haushalt.pdf"]
    assert "Wertgutachten" not in v.http(2, url(box, "/unterlagen?q=gutachten")).text.split("</h2>", 2)[-1]


def test_tischvorlage_uploaded_by_the_clerk_reaches_the_connected_member_only(box):
    from appliance.push import events as push_events

    v = box.venue
    db = box.db()
    try:
        start = push_events.last_id(db)  # streams resume from here: nothing published meanwhile is missed
    finally:
        db.conn.close()
    streams = {i: subprocess.Popen(["ip", "netns", "exec", v.client_ns(i), "curl", "-sN", "--max-time", "15",
                                    url(box, f"/events?last_id={start}")], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL) for i in (1, 2)}
    try:
        late_pdf = box.cfg.state_dir.parent / "tischvorlage.pdf"
        late_pdf.write_bytes(LATE)
        argv = [sys.executable, "-c", CLERK_UPLOAD, url(box, ""), CLERK_PASSWORD, str(box.session_id), str(late_pdf)]
        r = v.client_exec(3, argv, timeout=30, env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        assert r.returncode == 0 and r.stdout.strip() == "200", r.stderr
        out = streams[1].stdout.read1(65536) if streams[1].stdout else b""
        deadline = time.monotonic() + 10
        while b"tischvorlage" not in out.lower() and time.monotonic() < deadline:
            out += streams[1].stdout.read1(65536)
        assert b"tischvorlage" in out.lower()
        late = int(re.search(rb'"file_id": ?(\d+)', out).group(1))
        r = v.http(1, url(box, f"/unterlagen/datei/{late}/t.pdf"))
        assert r.status == 200 and r.body == LATE
    finally:
        for p in streams.values():
            p.kill()
        guest_out = streams[2].communicate()[0]
    assert b"tischvorlage" not in guest_out.lower()
