"""`make run`: the demo comes up on loopback, prints the clerk password once, and the replayed radio
makes members arrive whom the portal greets by name."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from appliance.demo import DEMO_CSV
from appliance.sessions import roster

ROOT = Path(__file__).resolve().parent.parent
# The role column of the clerk's member table (German).
ROLE_LABELS = {"member": "Mitglied", "deputy": "Stellvertretung", "administration": "Verwaltung", "guest": "Gast"}


class _MemberTable(HTMLParser):
    """The (name, role) cells of each person's row in the clerk's `<table class="members">`."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, ...]] = []
        self._depth = 0  # > 0 inside the members table
        self._cells: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            if self._depth or "members" in (dict(attrs).get("class") or "").split():
                self._depth += 1
        elif self._depth and tag == "tr":
            self._cells = []
        elif self._cells is not None and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self._depth:
            self._depth -= 1
        elif tag == "td" and self._cell is not None:
            self._cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._cells is not None:
            if self._cells:  # header and faction rows have no <td>
                self.rows.append(tuple(self._cells[:2]))
            self._cells = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def member_rows(html: str) -> list[tuple[str, ...]]:
    parser = _MemberTable()
    parser.feed(html)
    return parser.rows


def _poll(predicate, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"demo ended early while waiting for {what}")
        try:
            proc.wait(0.1)  # a bounded wait instead of a sleep
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError(f"timed out waiting for {what}")


def test_demo_serves_portal_and_clerk_pages():
    work = Path(tempfile.mkdtemp(prefix="sbx-demo-"))
    work.chmod(0o755)  # run as root, the web app drops to an unprivileged user that must reach ./var/demo
    log = work / "out.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "demo"], cwd=work, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                start_new_session=True)
    try:
        banner = _poll(lambda: "Beenden" in log.read_text() and log.read_text(), 60, "the banner", proc)
        base = re.search(r"Startseite:\s+(http://127\.0\.0\.1:\d+)/", banner).group(1)
        password = re.search(r"Passwort \(wird nur jetzt angezeigt\): (\S+)", banner).group(1)
        assert "DEMO" in banner
        leases = work / "var" / "demo" / "dnsmasq.leases"
        first_ip = _poll(lambda: leases.exists() and leases.read_text().split()[2:3], 60, "an arrival", proc)[0]
        page = urllib.request.urlopen(f"{base}/portal?as={first_ip}", timeout=5).read().decode()
        assert "Willkommen, " in page
        # The clerk logs in with the printed password and sees the 62-member demo council.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = opener.open(f"{base}/clerk/login", timeout=5).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode({"csrf_token": token, "password": password, "next": "/clerk/"}).encode()
        sessions = opener.open(f"{base}/clerk/login", data, timeout=5).read().decode()
        assert "12. Sitzung des Rates (Demo)" in sessions
        session_page = opener.open(f"{base}/clerk/sessions/1", timeout=5).read().decode()
        # Exactly the council's people, each once, with their role: the 62 members and the others of the CSV
        # (a plain count of "Mitglied" would also count the headings' "Mitglieder").
        expected = [(r.name, ROLE_LABELS[r.role]) for r in roster.parse_members(DEMO_CSV.read_bytes())]
        listed = member_rows(session_page)
        assert sorted(listed) == sorted(expected)
        assert sum(role == "Mitglied" for _, role in listed) == 62
        # The replayed arrivals reach the attendance list: the first member who arrived counts as present.
        csv_url = f"{base}/clerk/attendance.csv"
        _poll(lambda: ";anwesend;" in opener.open(csv_url, timeout=5).read().decode(), 30, "presence", proc)
        # The technician logs in with the password printed for that role; the demo's monitor samples the
        # replayed radio, so the dashboard lists the arrived devices.
        tech_password = re.search(r"Technik-Passwort \(nur jetzt sichtbar\): (\S+)", banner).group(1)
        assert tech_password != password
        tech = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = tech.open(f"{base}/technik/login", timeout=5).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode({"csrf_token": token, "password": tech_password}).encode()
        assert "Anmeldung Technik" not in tech.open(f"{base}/technik/login", data, timeout=5).read().decode()
        rows = _poll(lambda: re.findall(r'<tr class="sig-\w+"[^>]* data-mac=',
                                        tech.open(f"{base}/technik/", timeout=5).read().decode()),
                     30, "a client row on the technicians' dashboard", proc)
        assert len(rows) >= 1
        # The passwords are printed once, never written to the log files or the database in clear text.
        db_text = (work / "var" / "demo" / "sitzungsbox.db").read_bytes().decode(errors="replace")
        assert password not in db_text and tech_password not in db_text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 0, log.read_text()[-2000:] if log.exists() else ""
