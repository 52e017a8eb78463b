"""What the hostile tests share: a logged-in staff browser, the page's message, the real command line, and a
snapshot of everything a refused input must leave untouched."""

from __future__ import annotations

import html
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def alert_text(page: str) -> str:
    """The text of the page's message (role="alert"), tags removed, entities decoded."""
    found = re.search(r'<(div|p)\b[^>]*role="alert"[^>]*>(.*?)</\1>', page, re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", found.group(2)).split())) if found else ""


class Staff:
    """A logged-in browser of one role that can log in again when a request (a logout) ended its session."""

    def __init__(self, app, area: str, password: str) -> None:
        self.client, self.area, self.password = app.test_client(), area, password
        self.login()

    def login(self) -> None:
        page = self.client.get(f"{self.area}login")
        if page.status_code == 302:  # still logged in (the logout was refused)
            return
        r = self.client.post(f"{self.area}login", data={"csrf_token": _token(page.text), "password": self.password})
        assert r.status_code == 302, r.text

    def token(self) -> str:
        with self.client.session_transaction() as sess:
            return sess.setdefault("csrf", secrets.token_urlsafe(32))


def run_cli(config: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command line, `python -m appliance.cli --config CONFIG ARGS`, stdin closed."""
    return subprocess.run([sys.executable, "-m", "appliance.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd or config.parent,
                          stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"})


def assert_cli_refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    """One German line "Fehler: …" with every word, exit status 2, no traceback."""
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("Fehler: "), proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], (word, lines[0][:1000])


TABLES = ("sessions", "members", "doc_items", "doc_files", "chat_messages", "chat_mutes", "presence_corrections",
          "push_events")


def snapshot(db, state_dir: Path) -> dict:
    """Row counts of the tables people fill, and the stored blobs: what a refusal must leave as it was."""
    counts = {}
    for table in TABLES:
        if db[table].exists():
            counts[table] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
    blobs = sorted(str(p.relative_to(state_dir)) for p in (state_dir / "documents").rglob("*") if p.is_file()) \
        if (state_dir / "documents").exists() else []
    return {"rows": counts, "blobs": blobs}
