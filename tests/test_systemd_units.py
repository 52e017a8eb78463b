"""systemd units, sysusers.d and tmpfiles.d checked by systemd's own tools (systemd 252).

`systemd-analyze verify` checks that ExecStart binaries exist, and it looks them up on the host. So the
units are verified inside a throwaway root: <tmp>/etc/systemd/system holds our units, the host's
/usr/lib/systemd/system is copied beside them (sysinit.target & co. must resolve), and stub
executables stand in for /usr/bin/sitzungsbox, nft, ip, dnsmasq, hostapd. The host is never touched.
Unknown keys are only warnings (rc 0), so "no output" is part of the assertion.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, need_binary, need_root

UNITS_DIR = ROOT / "systemd"
UNITS = sorted(p.name for p in UNITS_DIR.iterdir() if p.suffix in (".service", ".target"))
# Verify the template through an instance.
TO_VERIFY = [u.replace("@.service", "@wlan0.service") for u in UNITS]
STUBS = ["usr/bin/sitzungsbox", "usr/sbin/nft", "usr/sbin/ip", "usr/sbin/dnsmasq", "usr/sbin/hostapd", "bin/kill"]
HOST_UNITS = Path("/usr/lib/systemd/system")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    need_binary("systemd-analyze")
    need(HOST_UNITS.is_dir(), f"{HOST_UNITS} missing")
    r = tmp_path / "root"
    (r / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree(HOST_UNITS, r / "usr/lib/systemd/system", symlinks=True)
    for unit in UNITS:
        shutil.copy(UNITS_DIR / unit, r / "etc/systemd/system" / unit)
    for stub in STUBS:
        path = r / stub
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    return r


def verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", *units],
        cwd=root / "etc/systemd/system", capture_output=True, text=True, timeout=120,
    )


def test_expected_units_exist():
    assert set(UNITS) == {
        "sitzungsbox-web.service", "sitzungsbox-helper.service", "sitzungsbox-daemon.service",
        "sitzungsbox-netconf.service", "sitzungsbox-dnsmasq.service", "sitzungsbox-hostapd@.service",
        "sitzungsbox.target", "sitzungsbox-monitor.service",
    }


def test_all_units_verify_clean(root):
    proc = verify(root, *TO_VERIFY)
    assert proc.returncode == 0, proc.stderr
    ours = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "sitzungsbox" in ln]
    assert ours == [], ours


def test_verify_catches_a_typo(root):
    """Negative control: the same check must notice a broken unit."""
    unit = root / "etc/systemd/system/sitzungsbox-typo.service"
    unit.write_text((UNITS_DIR / "sitzungsbox-web.service").read_text().replace("Restart=", "Restartt=", 1))
    proc = verify(root, unit.name)
    assert "Unknown key 'Restartt'" in proc.stderr


def test_verify_catches_a_missing_binary(root):
    (root / "usr/bin/sitzungsbox").unlink()
    proc = verify(root, "sitzungsbox-web.service")
    assert proc.returncode != 0
    assert "/usr/bin/sitzungsbox is not executable" in proc.stderr


def unit_options(name: str) -> dict[str, list[str]]:
    opts: dict[str, list[str]] = {}
    for line in (UNITS_DIR / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            opts.setdefault(key, []).append(value)
    return opts


def test_web_is_unprivileged_and_hardened():
    o = unit_options("sitzungsbox-web.service")
    assert o["User"] == ["sitzungsbox"] and o["ExecStart"] == ["/usr/bin/sitzungsbox web"]
    assert o["CapabilityBoundingSet"] == [""] and o["NoNewPrivileges"] == ["yes"]
    assert o["ProtectSystem"] == ["strict"] and o["ReadWritePaths"] == ["/var/lib/sitzungsbox"]
    assert o["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"] and o["Restart"] == ["on-failure"]


def test_helper_only_net_admin_and_hostapd_ordering():
    h = unit_options("sitzungsbox-helper.service")
    assert h["CapabilityBoundingSet"] == ["CAP_NET_ADMIN"] and "User" not in h
    assert h["RuntimeDirectory"] == ["sitzungsbox"] and h["Group"] == ["sitzungsbox"]
    a = unit_options("sitzungsbox-hostapd@.service")
    assert "sys-subsystem-net-devices-%i.device" in a["BindsTo"]
    assert "sitzungsbox-netconf.service" in a["After"]
    assert a["ExecStart"] == ["/usr/sbin/hostapd /var/lib/sitzungsbox/netconf/hostapd-%i.conf"]
    n = unit_options("sitzungsbox-netconf.service")
    assert n["Type"] == ["oneshot"] and n["RemainAfterExit"] == ["yes"]
    assert n["ExecStart"][0] == "/usr/bin/sitzungsbox netconf"
    assert n["ExecStart"][1] == "/usr/sbin/nft -f /var/lib/sitzungsbox/netconf/nftables.nft"


def test_sysusers_and_tmpfiles_apply_to_a_throwaway_root(root):
    need_root()  # tmpfiles chowns inside the throwaway root
    need_binary("systemd-sysusers", "systemd-tmpfiles")
    subprocess.run(["systemd-sysusers", f"--root={root}", str(UNITS_DIR / "sysusers.d/sitzungsbox.conf")],
                   check=True, capture_output=True, timeout=60)
    passwd = (root / "etc/passwd").read_text()
    assert any(ln.startswith("sitzungsbox:") and ln.endswith(":/usr/sbin/nologin") for ln in passwd.splitlines())
    assert "sitzungsbox:" in (root / "etc/group").read_text()
    proc = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create",
                           str(UNITS_DIR / "tmpfiles.d/sitzungsbox.conf")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    state = root / "var/lib/sitzungsbox"
    uid = int(next(ln for ln in passwd.splitlines() if ln.startswith("sitzungsbox:")).split(":")[2])
    assert state.stat().st_uid == uid and oct(state.stat().st_mode & 0o777) == "0o750"
    netconf = state / "netconf"
    assert netconf.stat().st_uid == 0 and netconf.stat().st_gid == uid  # root writes, the group reads
