"""OS connectivity probes: every row of docs/connectivity-probes.md is recognised and answered byte for byte,
by the pure module and through the web app (captured → 302 to the portal, admitted → the online answer)."""

from __future__ import annotations

import os
import re
import sys
import types
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from appliance.captive import probes
from appliance.sessions import service
from appliance.sessions.roster import MemberRow

TABLE = Path(__file__).resolve().parent.parent / "docs" / "connectivity-probes.md"
COLUMNS = ["system", "host", "path", "status", "content type", "body", "headers", "client checks", "source"]
NONE = "—"


@dataclass(frozen=True)
class Row:
    system: str
    host: str
    path: str
    status: int
    content_type: str
    body: str
    headers: dict[str, str]
    checks: str
    source: str

    def __str__(self) -> str:  # pytest ids
        return f"{self.system}: http://{self.host}{self.path}"


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "|": "|", '"': '"'}


def unescape(cell: str) -> str:
    """A table cell's value: `—` is empty; a code span is unescaped (\\n, \\r, \\t, \\\\, \\|)."""
    cell = cell.strip()
    if cell == NONE:
        return ""
    if not (len(cell) >= 2 and cell.startswith("`") and cell.endswith("`")):
        raise ValueError(f"expected `code` or {NONE}: {cell!r}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], cell[1:-1])


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table line; `\\|` inside a cell is not a separator."""
    inner = line.strip()
    assert inner.startswith("|") and inner.endswith("|"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner[1:-1])]


def load_table(text: str) -> list[Row]:
    """The probe table: the Markdown table whose header row is exactly COLUMNS."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and split_row(line) == COLUMNS)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = split_row(line)
        assert len(cells) == len(COLUMNS), f"{len(cells)} cells: {line}"
        system, host, path, status, ctype, body, headers, checks, source = cells
        header_lines = [h for h in unescape(headers).split("\n") if h] if headers != NONE else []
        rows.append(Row(
            system=system, host=host, path=path, status=int(status), content_type=ctype,
            body=unescape(body), headers=dict(h.split(": ", 1) for h in header_lines),
            checks=checks, source=source,
        ))
    return rows


ROWS = load_table(TABLE.read_text(encoding="utf-8"))


def test_table_covers_the_common_probes():
    assert len(ROWS) >= 20
    assert len({(r.host, r.path) for r in ROWS}) == len(ROWS), "one row per probe URL"
    systems = " ".join(r.system for r in ROWS)
    for name in ("Android", "Xiaomi", "iOS", "Windows", "Chrome", "Firefox", "GNOME", "Ubuntu", "Fedora",
                 "Arch", "Debian", "openSUSE", "Kindle"):
        assert name in systems, name
    for row in ROWS:
        assert row.source and row.checks, row
        assert row.path.startswith("/"), row


def check_pure(row: Row) -> None:
    probe = probes.classify(row.host, row.path)
    assert probe is not None, f"not recognised: {row}"
    assert probes.online_response(probe) == (row.status, row.content_type, row.body), row
    assert probes.online_headers(probe) == row.headers, row


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_row_is_recognised_and_answered_exactly(row):
    check_pure(row)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_host_case_port_dot_and_query_do_not_matter(row):
    host = f"{row.host.upper()}.:80"
    assert probes.classify(host, row.path + "?ipv4") == probes.classify(row.host, row.path)


def mutated_row(host: str, old: str, new: str) -> Row:
    """HOST's row from a copy of the table in which OLD is replaced by NEW on that row's line."""
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    (i,) = [i for i, line in enumerate(lines) if f"| {host} |" in line]
    assert lines[i].count(old) == 1, (host, old)
    lines[i] = lines[i].replace(old, new)
    return next(r for r in load_table("\n".join(lines)) if r.host == host)


def test_negative_control_a_wrong_body_in_a_copied_table_fails():
    bad = mutated_row("nmcheck.gnome.org", "`NetworkManager is online\\n`", "`NetworkManager is offline\\n`")
    assert bad.body == "NetworkManager is offline\n"
    with pytest.raises(AssertionError):
        check_pure(bad)
    # and a missing status header is caught as well
    ubuntu = next(r for r in ROWS if r.host == "connectivity-check.ubuntu.com")
    with pytest.raises(AssertionError):
        check_pure(replace(ubuntu, headers={}))


def test_unescape():
    assert unescape("`a\\nb\\\\c\\|d`") == "a\nb\\c|d"
    assert unescape(NONE) == ""
    with pytest.raises(ValueError):
        unescape("plain")


# Recognised too, though not rows of their own (older releases, or vendors whose source could not be read:
# the generate_204 path rule answers them with the same 204).
@pytest.mark.parametrize(("host", "path", "name"), [
    ("clients3.google.com", "/generate_204", "204"),
    ("clients1.google.com", "/generate_204", "204"),
    ("connectivitycheck.android.com", "/generate_204", "204"),
    ("connectivitycheck.platform.hicloud.com", "/generate_204", "204"),
    ("captive.apple.com", "/", "apple_success"),
    ("www.appleiphonecell.com", "/abcd/efgh.html", "apple_success"),
    ("detectportal.firefox.com", "/success.txt?ipv6", "ff_success"),
    ("www.msftconnecttest.com", "/redirect", "ms_redirect"),
])
def test_further_probe_urls(host, path, name):
    assert probes.classify(host, path).name == name


@pytest.mark.parametrize(("host", "path"), [
    ("www.apple.com", "/"),
    ("www.google.com", "/search"),
    ("example.org", "/hotspot-detect.html.bak"),
    ("www.msftconnecttest.com", "/"),
    ("detectportal.firefox.com", "/"),
    ("www.msftncsi.com", "/connecttest.txt"),
    # real sites that resolve to the box too: only the probe file is a probe
    ("fedoraproject.org", "/"),
    ("fedoraproject.org", "/static/logo.png"),
    ("www.fedoraproject.org", "/static/hotspot.txt"),
    ("spectrum.s3.amazonaws.com", "/"),
    ("spectrum.s3.amazonaws.com", "/kindle-wifi/other.html"),
    ("ping.archlinux.org", "/"),
    ("archlinux.org", "/nm-check.txt"),
    ("network-test.debian.org", "/"),
    ("www.debian.org", "/nm"),
    ("nmcheck.gnome.org", "/"),
    ("connectivity-check.ubuntu.com", "/ubuntu/"),
    ("ubuntu.com", "/"),
    ("www.opensuse.org", "/"),
    ("example.org", "/check_network_status.txt"),
    ("example.org", "/nm-check.txt"),
    ("example.org", "/static/hotspot.txt"),
])
def test_other_urls_are_no_probe(host, path):
    assert probes.classify(host, path) is None


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


MEMBER, OTHER = "10.77.0.10", "10.77.0.11"
PORTAL = "http://10.77.0.1/portal"


def get(client, host, path, ip, method="GET"):
    # NetworkManager sends Connection: close; nothing else in the request matters to the answer.
    return client.open(path, method=method, base_url=f"http://{host}", environ_base={"REMOTE_ADDR": ip},
                       headers={"Connection": "close"})


def admit_member(client) -> None:
    assert get(client, "10.77.0.1", "/portal", MEMBER).status_code == 200  # member admitted on load


def check_online(resp, row: Row) -> None:
    assert resp.status_code == row.status, row
    assert resp.get_data() == row.body.encode("utf-8"), row
    if row.body:
        assert resp.mimetype == row.content_type, row
    for name, value in row.headers.items():
        assert resp.headers.get(name) == value, (row, name)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_probe_captive_then_online(app, row):
    client = app.test_client()
    captive = get(client, row.host, row.path, MEMBER)
    assert (captive.status_code, captive.headers["Location"]) == (302, PORTAL), row
    admit_member(client)
    check_online(get(client, row.host, row.path, MEMBER), row)
    other = get(client, row.host, row.path, OTHER)  # another device stays captured
    assert (other.status_code, other.headers["Location"]) == (302, PORTAL), row


def test_negative_control_through_the_app(app):
    client = app.test_client()
    admit_member(client)
    bad = mutated_row("connectivity-check.ubuntu.com", "| `X-NetworkManager-Status: online` |",
                      "| `X-NetworkManager-Status: offline` |")
    assert bad.headers == {"X-NetworkManager-Status": "offline"}
    with pytest.raises(AssertionError):
        check_online(get(client, bad.host, bad.path, MEMBER), bad)
    fedora = next(r for r in ROWS if r.host == "fedoraproject.org")
    with pytest.raises(AssertionError):
        check_online(get(client, fedora.host, fedora.path, MEMBER), replace(fedora, body="OK\n"))


def test_captive_redirect_for_every_method_and_path(app):
    client = app.test_client()
    for method in ("GET", "POST", "HEAD", "PUT"):
        for path in ("/", "/generate_204", "/some/page?x=1"):
            resp = get(client, "example.org", path, OTHER, method=method)
            assert (resp.status_code, resp.headers["Location"]) == (302, PORTAL), (method, path)


def test_admitted_foreign_urls_go_to_the_box(app):
    client = app.test_client()
    admit_member(client)
    for host, path in (("example.org", "/"), ("www.msftconnecttest.com", "/redirect"), ("fedoraproject.org", "/")):
        resp = get(client, host, path, MEMBER)
        assert (resp.status_code, resp.headers["Location"]) == (302, "http://10.77.0.1/"), (host, path)
