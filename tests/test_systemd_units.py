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
STUBS = ["usr/bin/sitzungsbox", "usr/sbin/nft", "usr/sbin/ip", "usr/sbin/dnsmasq", "usr/sbin/hostapd", "bin/kill",
         "usr/bin/systemd-tmpfiles"]
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
        "sitzungsbox.target", "sitzungsbox-monitor.service", "sitzungsbox-firstboot.service",
        "sitzungsbox-growdata.service",
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
    assert n["ExecStart"][0] == "/usr/bin/sitzungsbox netconf --wait 60"  # waits for the radio driver
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


# --- Type=notify and the watchdog: the units' promises kept by the processes ----------------------------

NOTIFY_UNITS = ["sitzungsbox-web.service", "sitzungsbox-daemon.service", "sitzungsbox-monitor.service"]


@pytest.mark.parametrize("name", NOTIFY_UNITS)
def test_long_running_services_notify_and_have_a_watchdog(name):
    o = unit_options(name)
    assert o["Type"] == ["notify"] and o["NotifyAccess"] == ["main"] and o["WatchdogSec"] == ["30s"]
    assert o["Restart"] == ["on-failure"]  # a watchdog kill counts as failure: systemd restarts it


def test_helper_is_notify_so_the_web_starts_after_its_socket():
    assert unit_options("sitzungsbox-helper.service")["Type"] == ["notify"]
    assert "sitzungsbox-helper.service" in unit_options("sitzungsbox-web.service")["After"][0]


def test_ordering_radio_before_hostapd_netconf_before_dnsmasq():
    a = unit_options("sitzungsbox-hostapd@.service")
    assert a["BindsTo"] == ["sys-subsystem-net-devices-%i.device"]
    assert "sys-subsystem-net-devices-%i.device" in a["After"]
    d = unit_options("sitzungsbox-dnsmasq.service")
    assert d["Requires"] == ["sitzungsbox-netconf.service"] and d["After"] == ["sitzungsbox-netconf.service"]


def test_only_the_root_units_hold_capabilities():
    for unit in UNITS:
        o = unit_options(unit)
        if o.get("User") == ["sitzungsbox"]:
            caps = " ".join(o.get("CapabilityBoundingSet", []) + o.get("AmbientCapabilities", []))
            # The daemon may get CAP_NET_RAW for its ARP probes (presence); nothing else.
            assert set(caps.split()) <= {"CAP_NET_RAW"}, (unit, caps)


class NotifySink:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, directory: Path) -> None:
        import socket

        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.path.chmod(0o777)  # the web app sends after dropping to an unprivileged user

    def wait_for(self, message: str, timeout: float = 30.0) -> list[str]:
        """Every datagram received until one contains `message` (fails after timeout)."""
        import time

        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                seen.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
            if message in seen[-1]:
                return seen
        raise AssertionError(f"{message!r} not received within {timeout} s; got {seen}")

    def quiet_for(self, message: str, seconds: float) -> bool:
        """True if `message` did not arrive during `seconds` (recv with a deadline, no sleep)."""
        import time

        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if message in self.sock.recv(4096).decode():
                    return False
            except TimeoutError:
                return True
        return True

    def close(self) -> None:
        self.sock.close()


def test_notify_reaches_path_and_abstract_sockets(tmp_path):
    import socket

    from appliance import sdnotify

    sink = NotifySink(tmp_path)
    try:
        assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(sink.path)})
        assert sink.wait_for("READY=1", timeout=2) == ["READY=1"]
    finally:
        sink.close()
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"sbi-notify-test-{tmp_path.name}"
    abstract.bind("\0" + name)
    try:
        assert sdnotify.notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        abstract.settimeout(2)
        assert abstract.recv(100) == b"WATCHDOG=1"
    finally:
        abstract.close()
    assert not sdnotify.notify("READY=1", env={})  # outside systemd: a no-op
    assert not sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})


def test_watchdog_interval_is_half_and_only_for_the_named_pid():
    from appliance.sdnotify import watchdog_interval

    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=43) is None
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "x"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def test_watchdog_pings_only_while_healthy():
    from appliance.sdnotify import Watchdog

    sent: list[str] = []
    health = {"ok": True}

    def check() -> bool:
        if health.get("boom"):
            raise RuntimeError("check crashed")
        return health["ok"]

    w = Watchdog(check, interval=None, send=lambda m: sent.append(m) or True)
    assert w.beat() and sent == ["WATCHDOG=1"]
    health["ok"] = False
    assert not w.beat() and sent == ["WATCHDOG=1"]
    health["boom"] = True
    assert not w.beat() and w.failures == 2 and w.pings == 1
    assert w.start()._thread is None  # no WATCHDOG_USEC: no thread at all


def _service_env(sink: NotifySink) -> dict[str, str]:
    from tests.venue import SAFE_PATH

    # WATCHDOG_USEC 0.4 s: a ping every 0.2 s, so the test sees several within a second.
    return {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": "/", "NOTIFY_SOCKET": str(sink.path),
            "WATCHDOG_USEC": "400000", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def service_dir():
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="sbi-notify-"))
    d.chmod(0o755)  # the web app drops to an unprivileged user and must reach the state dir
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(service_dir: Path, sink: NotifySink, command: str, **cfg_changes) -> subprocess.Popen:
    import sys

    from appliance.config import Config, to_toml

    cfg = Config(state_dir=service_dir / "state", run_dir=service_dir / "run", helper_socket=service_dir / "h.sock",
                 leases_file=service_dir / "state" / "dnsmasq.leases", hostapd_ctrl_dir=service_dir / "hostapd",
                 demo=True, web_bind="127.0.0.1", web_workers=1, **cfg_changes).validate()
    toml = service_dir / "sitzungsbox.toml"
    toml.write_text(to_toml(cfg))
    return subprocess.Popen([sys.executable, "-m", "appliance.cli", "--config", str(toml), command],
                            env=_service_env(sink), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    import os
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_web_notifies_ready_and_pings_only_while_healthz_answers(service_dir):
    """The real `sitzungsbox web` (gunicorn): READY=1, then WATCHDOG=1; with its workers frozen /healthz
    stops answering and the pings stop, so systemd would restart it; thawed, the pings come back."""
    import os
    import signal

    need_binary("pgrep")
    sink = NotifySink(service_dir)
    proc = _start(service_dir, sink, "web", web_port=_free_port())
    try:
        assert any("READY=1" in m for m in sink.wait_for("READY=1"))
        sink.wait_for("WATCHDOG=1")
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True,
                                 timeout=10).stdout.split()
        assert workers, "gunicorn has no workers"
        for pid in workers:
            os.kill(int(pid), signal.SIGSTOP)
        try:
            sink.quiet_for("WATCHDOG=1", 0.5)  # drain a ping already in flight
            assert sink.quiet_for("WATCHDOG=1", 3.0), "pinged although /healthz could not answer"
        finally:
            for pid in workers:
                os.kill(int(pid), signal.SIGCONT)
        sink.wait_for("WATCHDOG=1", timeout=10)
    finally:
        _stop(proc)
        sink.close()


@pytest.mark.parametrize("command", ["daemon", "monitor"])
def test_daemons_notify_ready_and_ping(service_dir, command):
    sink = NotifySink(service_dir)
    proc = _start(service_dir, sink, command)
    try:
        sink.wait_for("READY=1")
        sink.wait_for("WATCHDOG=1")
    finally:
        _stop(proc)
        sink.close()
    assert proc.returncode == 0


def _documented_exposure() -> dict[str, float]:
    import re

    text = (ROOT / "docs/systemd-security.md").read_text()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^\| `(sitzungsbox-[\w@.-]+\.service)` \|[^|]*\| \*\*(\d+\.\d)", text, re.M)}


def test_documented_exposure_levels_match_the_units(root):
    """docs/systemd-security.md lists `systemd-analyze security` per unit; re-measure and compare."""
    import re

    documented = _documented_exposure()
    expected = {u.replace("@.service", "@wlan0.service") for u in UNITS if u.endswith(".service")}
    assert set(documented) == expected
    for unit, level in documented.items():
        proc = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={root}", "--no-pager", unit],
                              cwd=root / "etc/systemd/system", capture_output=True, text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
        assert m, proc.stdout[-500:] + proc.stderr[-500:]
        assert float(m.group(1)) == level, f"{unit}: measured {m.group(1)}, documented {level}"
