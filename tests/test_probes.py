"""OS connectivity probes: which URL is which probe, the exact online bodies, and how the box answers."""

from __future__ import annotations

import os
import sys
import types

import pytest

from appliance.captive import probes
from appliance.sessions import service
from appliance.sessions.roster import MemberRow

APPLE = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX = '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'

# (host, path) → (status, content type, body) the real service sends when online.
PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204", (204, "text/plain", "")),
    ("www.google.com", "/gen_204", (204, "text/plain", "")),
    ("play.googleapis.com", "/generate_204", (204, "text/plain", "")),
    ("clients3.google.com", "/generate_204", (204, "text/plain", "")),
    ("clients1.google.com", "/generate_204", (204, "text/plain", "")),
    ("www.gstatic.com", "/generate_204", (204, "text/plain", "")),
    ("connectivitycheck.android.com", "/generate_204", (204, "text/plain", "")),
    ("captive.apple.com", "/hotspot-detect.html", (200, "text/html", APPLE)),
    ("captive.apple.com", "/", (200, "text/html", APPLE)),
    ("www.apple.com", "/library/test/success.html", (200, "text/html", APPLE)),
    ("www.msftconnecttest.com", "/connecttest.txt", (200, "text/plain", "Microsoft Connect Test")),
    ("www.msftncsi.com", "/ncsi.txt", (200, "text/plain", "Microsoft NCSI")),
    ("detectportal.firefox.com", "/canonical.html", (200, "text/html", FIREFOX)),
    ("detectportal.firefox.com", "/success.txt", (200, "text/plain", "success\n")),
]


@pytest.mark.parametrize(("host", "path", "answer"), PROBES)
def test_classify_and_online_response(host, path, answer):
    probe = probes.classify(host, path)
    assert probe is not None
    assert probes.online_response(probe) == answer


@pytest.mark.parametrize(("host", "path"), [
    ("CAPTIVE.Apple.COM:80", "/hotspot-detect.html"),
    ("captive.apple.com.", "/hotspot-detect.html"),
    ("DetectPortal.Firefox.com:8080", "/success.txt?ipv4"),
    ("WWW.MSFTCONNECTTEST.COM", "/connecttest.txt"),
])
def test_host_case_and_port_ignored(host, path):
    assert probes.classify(host, path) is not None


@pytest.mark.parametrize(("host", "path"), [
    ("www.apple.com", "/"),
    ("www.google.com", "/search"),
    ("example.org", "/hotspot-detect.html.bak"),
    ("www.msftconnecttest.com", "/"),
    ("detectportal.firefox.com", "/"),
    ("www.msftncsi.com", "/connecttest.txt"),
])
def test_other_urls_are_no_probe(host, path):
    assert probes.classify(host, path) is None


def test_windows_redirect_is_classified():
    assert probes.classify("www.msftconnecttest.com", "/redirect").name == "ms_redirect"


# --- through the web app: captive → 302 to the portal; admitted → exact online answer ---------------


class FakeHelper:
    def __init__(self) -> None:
        self.admitted: set[tuple[str, str]] = set()

    def admit(self, mac: str, ip: str) -> None:
        self.admitted.add((mac, ip))

    def revoke(self, mac: str, ip: str) -> None:
        self.admitted.discard((mac, ip))


@pytest.fixture
def app(cfg, db, monkeypatch):
    try:
        import appliance.web.clerk  # noqa: F401
    except ImportError:  # written in parallel; the portal does not need it
        from flask import Blueprint
        monkeypatch.setitem(sys.modules, "appliance.web.clerk", types.SimpleNamespace(bp=Blueprint("clerk", "x")))
    from appliance.web.app import create_app
    s = service.create_session(db, body="Rat der Stadt", title="12. Sitzung", day="2026-11-24")
    service.insert_members(db, s.id, [MemberRow("Anna Schmidt", "SPD", "member", True, "Rat")])
    service.set_active(db, s.id)
    anna = service.members(db, s.id)[0]
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.leases_file.with_suffix(".tmp")
    tmp.write_text("0 02:5b:00:00:00:01 10.77.0.10 * *\n0 02:5b:00:00:00:02 10.77.0.11 * *\n")
    os.replace(tmp, cfg.leases_file)
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)",
               ["02:5b:00:00:00:01", anna.keyid])
    return create_app(cfg, helper=FakeHelper(), testing=True)


def get(client, host, path, ip, method="GET"):
    return client.open(path, method=method, base_url=f"http://{host}", environ_base={"REMOTE_ADDR": ip})


@pytest.mark.parametrize(("host", "path", "answer"), PROBES)
def test_probe_captive_then_online(app, host, path, answer):
    client = app.test_client()
    captive = get(client, host, path, "10.77.0.10")
    assert captive.status_code == 302 and captive.headers["Location"] == "http://10.77.0.1/portal"
    assert get(client, "10.77.0.1", "/portal", "10.77.0.10").status_code == 200  # member admitted on load
    online = get(client, host, path, "10.77.0.10")
    status, content_type, body = answer
    assert online.status_code == status
    assert online.get_data(as_text=True) == body
    if status == 200:
        assert online.mimetype == content_type
    other = get(client, host, path, "10.77.0.11")  # another device stays captured
    assert other.status_code == 302 and other.headers["Location"] == "http://10.77.0.1/portal"


def test_captive_redirect_for_every_method_and_path(app):
    client = app.test_client()
    for method in ("GET", "POST", "HEAD", "PUT"):
        for path in ("/", "/generate_204", "/some/page?x=1"):
            resp = get(client, "example.org", path, "10.77.0.11", method=method)
            assert (resp.status_code, resp.headers["Location"]) == (302, "http://10.77.0.1/portal"), (method, path)


def test_admitted_foreign_urls_go_to_the_box(app):
    client = app.test_client()
    get(client, "10.77.0.1", "/portal", "10.77.0.10")
    for host, path in (("example.org", "/"), ("www.msftconnecttest.com", "/redirect")):
        resp = get(client, host, path, "10.77.0.10")
        assert (resp.status_code, resp.headers["Location"]) == (302, "http://10.77.0.1/")
