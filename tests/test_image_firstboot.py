"""First boot: one-time setup code, Wi-Fi country, a password chosen then (never a default)."""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from appliance import firstboot as fb
from appliance.config import Config, Radio, from_mapping
from appliance.store import open_db
from appliance.web import auth
from tests.conftest import ROOT

GOOD = "Ratssaal-Herbst-2026"


def run_cli(cfg_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance.cli", "--config", str(cfg_path), *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture
def box(cfg: Config, tmp_path: Path) -> tuple[Config, Path]:
    path = tmp_path / "sitzungsbox.toml"
    from appliance.config import to_toml

    path.write_text(to_toml(cfg))
    return cfg, path


def test_code_format_and_matching():
    code = fb.new_code()
    assert len(code) == 14 and code.count("-") == 2
    assert all(c in fb.KEY_ALPHABET for c in code.replace("-", ""))
    assert fb.code_matches(code, code.replace("-", " ")) and fb.code_matches(code, code.replace("-", ""))
    assert not fb.code_matches(code, "") and not fb.code_matches(code, code[:-1] + "x")
    assert len({fb.new_code() for _ in range(50)}) == 50


def test_country_and_password_checks_in_german():
    known = fb.known_countries(fb.ISO3166.read_text()) if fb.ISO3166.exists() else {"DE", "AT"}
    assert fb.check_country(" de ", known) == "DE"
    with pytest.raises(fb.SetupError, match="zwei Buchstaben"):
        fb.check_country("Deutschland", known)
    with pytest.raises(fb.SetupError, match="gibt es nicht"):
        fb.check_country("XX", known)
    assert fb.check_password(GOOD, GOOD) == GOOD
    for pw, pw2, msg in [(GOOD, GOOD + "x", "nicht überein"), ("kurz", "kurz", "zu kurz"),
                         ("sitzungsdienst", "sitzungsdienst", "zu leicht"), (" " + GOOD, " " + GOOD, "Leerzeichen")]:
        with pytest.raises(fb.SetupError, match=msg):
            fb.check_password(pw, pw2)


def test_firstboot_shows_the_same_code_until_setup(box, tmp_path):
    cfg, _path = box
    issue = tmp_path / "issue.d" / "50-sitzungsbox.issue"
    out = io.StringIO()
    assert fb.firstboot(cfg, issue_file=issue, out=out) == 0
    code = fb.current_code(cfg)
    assert code and code in out.getvalue() and code in issue.read_text()
    assert (cfg.state_dir / fb.CODE_FILE).stat().st_mode & 0o777 == 0o600
    fb.firstboot(cfg, issue_file=issue, out=io.StringIO())
    assert fb.current_code(cfg) == code  # a reboot keeps the code


def test_setup_via_cli_sets_country_and_password_and_uses_up_the_code(box):
    cfg, path = box
    code = fb.ensure_code(cfg)
    printed = run_cli(path, "setup-code")
    assert printed.returncode == 0 and code in printed.stdout
    # A wrong code changes nothing.
    bad = run_cli(path, "setup", "--stdin", stdin=f"AAAA-BBBB-CCCC\nAT\n{GOOD}\n{GOOD}\n")
    assert bad.returncode == 2 and "Einrichtungscode stimmt nicht" in bad.stderr
    assert fb.current_code(cfg) == code and not fb.is_set_up(cfg)
    db = open_db(cfg.db_path)
    assert not auth.has_password(db)  # never a default password
    db.conn.close()
    ok = run_cli(path, "setup", "--stdin", stdin=f"{code}\nat\n{GOOD}\n{GOOD}\n")
    assert ok.returncode == 0, ok.stderr
    assert "WLAN-Land AT" in ok.stdout and GOOD not in ok.stdout + ok.stderr  # the secret is never echoed
    assert from_mapping(tomllib.loads(path.read_text())).country == "AT"
    db = open_db(cfg.db_path)
    try:
        assert auth.check_password(db, GOOD)
    finally:
        db.conn.close()
    assert fb.is_set_up(cfg) and fb.current_code(cfg) is None
    again = run_cli(path, "setup", "--stdin", stdin=f"{code}\nDE\n{GOOD}\n{GOOD}\n")
    assert again.returncode == 2 and "bereits eingerichtet" in again.stderr
    assert "bereits eingerichtet" in run_cli(path, "setup-code").stdout


def test_radio_units_and_bridge_files():
    one = Config()
    assert fb.radio_units(one) == ["sitzungsbox-hostapd@wlan0.service"] and fb.networkd_files(one) == {}
    two = Config(interface="br0", radios=(Radio(interface="wlan0", bridge="br0"),
                                          Radio(interface="wlan1", hw_mode="a", channel=36, bridge="br0")))
    assert fb.radio_units(two) == ["sitzungsbox-hostapd@wlan0.service", "sitzungsbox-hostapd@wlan1.service"]
    files = fb.networkd_files(two)
    assert "Kind=bridge" in files["20-sitzungsbox-br0.netdev"] and "Name=br0" in files["20-sitzungsbox-br0.network"]
    ext = Config(interface="br0", radios=())
    assert fb.radio_units(ext) == [] and "20-sitzungsbox-br0.netdev" in fb.networkd_files(ext)
