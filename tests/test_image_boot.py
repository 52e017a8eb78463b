"""The image, built and booted: `image/build.sh` makes a native root file system from Debian bookworm
packages, and `systemd-nspawn --boot` runs it read-only inside the virtual venue's box namespace, with a
host directory as the data partition.

Shown: the units start in their order, the portal answers a client namespace's probe, a killed service is
restarted by systemd, first boot shows the setup code, and the data survive a simulated power cut (every
process of the box killed at once mid-import; after a restart SQLite's integrity check passes and no document
is half-written). The base root file system is cached under /var/cache/sitzungsbox-image (keyed by the
package list); with an empty cache debootstrap runs (about 2–3 minutes on 2 cores).

What nspawn cannot show: a real power cut also loses the page cache. The data partition's `data=journal`
and SQLite's WAL with fsync cover that on the device; here the kill leaves the host's page cache intact.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from appliance.config import Config, to_toml
from appliance.sessions import roster, service
from appliance.store import open_db
from appliance.web import auth
from tests import pdf_samples
from tests.conftest import ROOT, need_binary, need_root, poll

MEMBERS = """Name;Fraktion;Rolle;Stimmrecht
Anna Becker;SPD;Mitglied;ja
Bernd Dahl;CDU;Mitglied;ja
"""
UNITS = ["sitzungsbox-netconf.service", "sitzungsbox-helper.service", "sitzungsbox-dnsmasq.service",
         "sitzungsbox-web.service", "sitzungsbox-daemon.service", "sitzungsbox-monitor.service"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Container:
    """One boot of the image with systemd-nspawn; commands run inside with nsenter."""

    def __init__(self, rootfs: Path, data: Path, netns: str, log: Path) -> None:
        self.rootfs, self.data, self.netns, self.log = rootfs, data, netns, log
        self.proc: subprocess.Popen | None = None
        self.leader = 0

    def boot(self, timeout: float = 120) -> None:
        argv = ["systemd-nspawn", "-D", str(self.rootfs), "--boot", "--register=no", "--keep-unit", "--read-only",
                "--machine=sbi-image", f"--network-namespace-path=/run/netns/{self.netns}",
                f"--bind={self.data}:/var/lib/sitzungsbox", "--console=passive",
                # nspawn keeps CAP_NET_ADMIN only with its own private network; this netns is ours (the venue's).
                "--capability=CAP_NET_ADMIN,CAP_NET_RAW"]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.leader = poll(self._find_leader, 30, "PID 1 des Containers")
        # systemd's own socket appears a moment after PID 1 starts (until then systemctl says "offline": PID 1
        # may still be nspawn's stub before it execs init); then --wait blocks until boot is done.
        res = poll(lambda: (r := self.run(["systemctl", "is-system-running", "--wait"], timeout=timeout)).stdout
                   .strip() not in ("", "offline") and r, timeout, "systemd im Container erreichbar")
        assert res.stdout.strip() in ("running", "degraded"), res.stdout + res.stderr + self.failed()

    def _find_leader(self) -> int:
        """The host PID of the container's init: a descendant of nspawn whose PID in its namespace is 1."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn beendet: {self.log.read_text(errors='replace')[-1500:]}")
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
            if pid != self.proc.pid and nspid and nspid[-1] == "1":
                return pid
            todo += [int(c) for c in children]
        return 0

    def run(self, argv: list[str], timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--target={self.leader}", "--mount", "--uts", "--ipc", "--net", "--pid",
                               "--", "/usr/bin/env", "-i", f"PATH={PATH}", "LANG=C.UTF-8", *argv],
                              capture_output=True, text=True, timeout=timeout, input=input)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(["systemctl", "show", unit, *(f"--property={p}" for p in props)]).stdout
        return dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)

    def failed(self) -> str:
        return self.run(["systemctl", "--failed", "--no-legend", "--no-pager"]).stdout

    def power_cut(self) -> None:
        """SIGKILL the container's init: the kernel kills every process in its PID namespace at once."""
        assert self.proc is not None
        os.kill(self.leader, signal.SIGKILL)
        self.proc.wait(30)

    def poweroff(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.run(["systemctl", "poweroff", "--no-block"])
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def image_root() -> Path:
    need_root()
    need_binary("debootstrap", "systemd-nspawn", "nsenter", "dnsmasq", "busybox", "curl")
    work = Path(tempfile.mkdtemp(prefix="sbi-image-", dir="/var/tmp"))
    try:
        res = subprocess.run([str(ROOT / "image/build.sh"), "--out", str(work), "--external-ap"],
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _uid_in(rootfs: Path, user: str) -> tuple[int, int]:
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise AssertionError(f"{user} fehlt im Abbild")


def _seed_data(data: Path, uid: int, gid: int) -> Config:
    """The data partition as the clerk leaves it: configuration, an active session with members."""
    cfg = Config(radios=(), web_workers=1)  # external APs: the venue's bridge `wlan0` is the clients' net
    (data / "etc").mkdir(parents=True)
    (data / "etc/sitzungsbox.toml").write_text(to_toml(cfg))
    db = open_db(data / "sitzungsbox.db")
    s = service.create_session(db, body="Rat der Stadt", title="Sitzung im Bild", day="2026-12-01", ssid=cfg.ssid)
    service.insert_members(db, s.id, roster.parse_members(MEMBERS))
    service.set_active(db, s.id)
    auth.set_password(db, "bild-test-passwort-1")
    db.conn.close()
    for p in [data, *data.rglob("*")]:
        if p.parent.name != "etc" and p.name != "etc":
            os.chown(p, uid, gid)
    return cfg


@pytest.fixture(scope="module")
def booted(image_root):
    from tests.venue import Venue

    rootfs = image_root / "rootfs"
    data = image_root / "data"
    data.mkdir(mode=0o755)
    uid, gid = _uid_in(rootfs, "sitzungsbox")
    cfg = _seed_data(data, uid, gid)
    venue = Venue(image_root / "venue", 1, prefix="sbib", cfg=cfg)
    box = Container(rootfs, data, venue.box_ns, image_root / "nspawn.log")
    try:
        venue.up()
        box.boot()
        yield box, venue, cfg
    finally:
        box.poweroff()
        venue.down()


def test_build_records_sbom_and_layout(image_root):
    sbom = (image_root / "sbom.txt").read_text()
    for pkg in ("systemd\t", "dnsmasq-base\t", "nftables\t", "hostapd\t", "python3-netifaces\t"):
        assert pkg in sbom, pkg
    assert "gunicorn==" in sbom and "sitzungsbox==0.1.0" in sbom
    rootfs = image_root / "rootfs"
    fstab = (rootfs / "etc/fstab").read_text()
    assert " /  " in fstab.replace("\t", " ") and "ro,noatime" in fstab
    assert "/var/lib/sitzungsbox" in fstab and "data=journal" in fstab
    assert os.readlink(rootfs / "etc/sitzungsbox/sitzungsbox.toml") == "/var/lib/sitzungsbox/etc/sitzungsbox.toml"
    assert os.readlink(rootfs / "usr/bin/sitzungsbox") == "/opt/sitzungsbox/bin/sitzungsbox"
    # The product only: the test harnesses (virtual venue, wired hostapd lab) are not on the card.
    site = rootfs / "opt/sitzungsbox/lib/python3.11/site-packages"
    assert (site / "appliance/radio/fake.py").exists()
    harnesses = ("tests", "bench", "appliance/venue.py", "appliance/radio/wired_lab.py")
    assert not [p for p in harnesses if (site / p).exists()]
    assert (rootfs / "etc/systemd/system/multi-user.target.wants/sitzungsbox.target").is_symlink()
    assert os.readlink(rootfs / "etc/systemd/system/hostapd.service") == "/dev/null"  # masked
    assert not list((rootfs / "etc/systemd/system").rglob("sitzungsbox-hostapd@*"))  # --external-ap
    assert "sitzungsbox:" in (rootfs / "etc/passwd").read_text()


def test_units_start_in_order(booted):
    box, _venue, _cfg = booted
    t = {u: box.show(u, "ActiveState", "ActiveEnterTimestampMonotonic", "InactiveExitTimestampMonotonic")
         for u in UNITS}
    assert {u: v["ActiveState"] for u, v in t.items()} == dict.fromkeys(UNITS, "active"), box.failed()

    def started(u: str) -> int:
        return int(t[u]["InactiveExitTimestampMonotonic"])

    def ready(u: str) -> int:
        return int(t[u]["ActiveEnterTimestampMonotonic"])

    assert ready("sitzungsbox-netconf.service") <= started("sitzungsbox-dnsmasq.service")
    assert ready("sitzungsbox-helper.service") <= started("sitzungsbox-web.service")  # helper READY=1 first
    status = box.run(["systemctl", "status", "sitzungsbox.target", "--no-pager"])
    assert status.returncode == 0 and "active" in status.stdout
    journal = box.run(["journalctl", "-u", "sitzungsbox-web.service", "--no-pager"])
    assert "Starting sitzungsbox-web.service" in journal.stdout, journal.stdout + journal.stderr
    check = box.run(["sitzungsbox", "netconf", "--check"], timeout=120)
    assert check.returncode == 0 and "Prüfung nftables: in Ordnung" in check.stdout, check.stdout + check.stderr
    # Nothing else failed on the read-only root either (logind once did: its state directory).
    failed = box.run(["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager"]).stdout
    assert failed.strip() == "", failed


def test_web_runs_unprivileged_under_its_watchdog(booted):
    box, _venue, _cfg = booted
    web = box.show("sitzungsbox-web.service", "MainPID", "WatchdogUSec", "Type", "NRestarts")
    assert web["Type"] == "notify" and web["WatchdogUSec"] == "30s"
    user = box.run(["ps", "-o", "user=", "-p", web["MainPID"]]).stdout.strip()
    assert user == "sitzungsbox"


def test_firstboot_shows_the_setup_code(booted):
    box, _venue, _cfg = booted
    code = box.run(["sitzungsbox", "setup-code"])
    assert code.returncode == 0 and code.stdout.startswith("Einrichtungscode: ")
    shown = box.run(["journalctl", "-u", "sitzungsbox-firstboot.service", "--no-pager"]).stdout
    assert code.stdout.split(": ", 1)[1].strip() in shown
    assert code.stdout.split(": ", 1)[1].strip() in box.run(["cat", "/run/issue.d/50-sitzungsbox.issue"]).stdout


def test_portal_answers_a_client_namespace(booted):
    _box, venue, cfg = booted
    lease = venue.dhcp(1)
    assert lease.router == cfg.address
    probe = poll(lambda: (r := venue.http(1, "http://connectivitycheck.gstatic.com/generate_204")).status and r,
                  20, "Antwort auf die Probe")
    assert probe.status == 302 and probe.headers["location"].endswith("/portal")
    assert venue.http(1, f"http://{cfg.address}/portal").status == 200


def test_killed_service_is_restarted_by_systemd(booted):
    box, venue, cfg = booted
    before = box.show("sitzungsbox-web.service", "MainPID", "NRestarts")
    assert box.run(["kill", "-9", before["MainPID"]]).returncode == 0

    def restarted() -> bool:
        now = box.show("sitzungsbox-web.service", "MainPID", "NRestarts", "ActiveState")
        return (now["ActiveState"] == "active" and int(now["NRestarts"]) > int(before["NRestarts"])
                and now["MainPID"] not in ("0", before["MainPID"]))

    poll(restarted, 30, "Neustart von sitzungsbox-web")
    poll(lambda: venue.http(1, f"http://{cfg.address}/portal").status == 200, 30, "Portal nach dem Neustart")


def test_data_survive_a_power_cut(booted, image_root):
    box, venue, cfg = booted
    data = box.data
    incoming = data / "incoming"
    incoming.mkdir()
    for i in range(40):  # 40 × 2 MiB: the import takes long enough to be cut in the middle
        (incoming / f"Vorlage-{i:02d}.pdf").write_bytes(pdf_samples.sized(2 << 20))
    importer = subprocess.Popen(["nsenter", f"--target={box.leader}", "--mount", "--pid", "--",
                                 "/usr/bin/env", "-i", f"PATH={PATH}", "sitzungsbox", "import", "1",
                                 "/var/lib/sitzungsbox/incoming"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    blobs = data / "documents"
    poll(lambda: blobs.is_dir() and any(blobs.glob("??/*")) or importer.poll() is not None, 60, "Import läuft")
    mid_import = importer.poll() is None
    box.power_cut()  # everything in the box dies at once, mid-import
    importer.wait(30)
    assert mid_import, "der Import war schon fertig: kein Schnitt mitten im Schreiben"
    # Host side, with the box off: the database is intact, every stored file is whole (named by its SHA-256).
    conn = sqlite3.connect(data / "sitzungsbox.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        n_docs = conn.execute("SELECT count(*) FROM doc_files").fetchone()[0]
    finally:
        conn.close()
    # All or nothing: one transaction for the whole import. Usually the cut comes before its commit (0); on a
    # loaded machine the commit can land between the last file and the cut (40). Never a part.
    assert n_docs in (0, 40), n_docs
    import hashlib
    # Stored documents are <sha[:2]>/<sha>; a cut write leaves at most a temporary file in documents/tmp,
    # which is never served (the store renames a file into place only once it is complete and synced).
    stored = [f for f in blobs.glob("??/*") if f.is_file()]
    assert stored, "kein einziges Dokument war schon abgelegt: der Schnitt kam zu früh"
    for f in stored:
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.name, f"halb geschriebene Datei {f}"
    # Power back on: the box boots ready, the session is still active, the documents check passes.
    box.boot()
    check = box.run(["sitzungsbox", "documents", "check"], timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    sessions = box.run(["sitzungsbox", "session", "list"]).stdout
    assert "*" in sessions and "Sitzung im Bild" in sessions
    poll(lambda: venue.http(1, f"http://{cfg.address}/portal").status == 200, 30, "Portal nach dem Stromausfall")
    assert pwd.getpwnam("root")  # (host untouched: the image's users live in its own /etc/passwd)


def test_hostapd_never_starts_without_its_radio(booted):
    """A radio that is not there (USB adapter not plugged in): hostapd for it is never started. On the Pi udev
    starts it when the adapter appears (BindsTo= the device); in a container device units are unsupported,
    so the start job fails at once with 'dependency' instead of waiting."""
    box, _venue, _cfg = booted
    unit = "sitzungsbox-hostapd@wlan9.service"
    res = box.run(["systemctl", "start", unit])
    assert res.returncode != 0
    state = box.show(unit, "ActiveState", "ExecMainPID", "Result")
    assert state["ActiveState"] == "inactive" and state["ExecMainPID"] == "0", state  # hostapd never ran
    journal = box.run(["journalctl", "-u", unit, "--no-pager"]).stdout
    assert "Dependency failed" in journal, journal
