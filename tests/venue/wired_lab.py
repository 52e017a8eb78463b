"""A real hostapd without a radio: `driver=wired` on a veth pair in two network namespaces (root only).

The kernel here has no cfg80211, so hostapd cannot run nl80211. With `driver=wired`, IEEE 802.1X and
its internal EAP server, a `wpa_supplicant -D wired` peer (EAP-MD5) authenticates and hostapd emits the
same control-socket protocol (ATTACH, AP-STA-CONNECTED, STA-FIRST ...). Used by
tests/test_radio_real_hostapd.py and to record recordings/wired-8021x.txt:

    python -m tests.venue.wired_lab record appliance/radio/recordings/wired-8021x.txt

Namespaces are named `<prefix>-ap` and `<prefix>-sta`; nothing is created in the root namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance.radio.ctrl import HostapdCtrl, RadioError
from appliance.radio.events import RecordLine, format_record

STA_MAC = "02:00:00:00:00:01"
AP_IF = "veth-ap"
STA_IF = "veth-sta"


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=10)


class WiredLab:
    def __init__(self, prefix: str = "sbxb-lab", workdir: Path | None = None, sta_mac: str = STA_MAC) -> None:
        self.ap_ns = f"{prefix}-ap"
        self.sta_ns = f"{prefix}-sta"
        self.sta_mac = sta_mac
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sbxb-"))
        self.ctrl_dir = self.workdir / "ctrl"
        self.ctrl_path = self.ctrl_dir / AP_IF
        self.hostapd: subprocess.Popen | None = None
        self.supplicant: subprocess.Popen | None = None

    def start(self, deadline_s: float = 5.0) -> WiredLab:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.close_namespaces()
        _run("ip", "netns", "add", self.ap_ns)
        _run("ip", "netns", "add", self.sta_ns)
        # Create the pair inside the AP namespace and move the peer straight on: the host sees nothing.
        _run("ip", "-n", self.ap_ns, "link", "add", AP_IF, "type", "veth", "peer", "name", STA_IF,
             "netns", self.sta_ns, "address", self.sta_mac)
        _run("ip", "-n", self.ap_ns, "link", "set", AP_IF, "up")
        _run("ip", "-n", self.sta_ns, "link", "set", STA_IF, "up")
        (self.workdir / "eap_users").write_text('"alice" MD5 "secret"\n')
        conf = self.workdir / "hostapd.conf"
        conf.write_text(
            f"interface={AP_IF}\ndriver=wired\nctrl_interface={self.ctrl_dir}\n"
            f"ieee8021x=1\neap_server=1\neap_user_file={self.workdir / 'eap_users'}\nuse_pae_group_addr=1\n"
        )
        (self.workdir / "supplicant.conf").write_text(
            "ap_scan=0\nnetwork={\n key_mgmt=IEEE8021X\n eap=MD5\n identity=\"alice\"\n"
            " password=\"secret\"\n eapol_flags=0\n}\n"
        )
        # `ip netns exec` execs, so the Popen pid is hostapd's own.
        self.hostapd = subprocess.Popen(["ip", "netns", "exec", self.ap_ns, "hostapd", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.ctrl_path.exists():
                with HostapdCtrl(self.ctrl_path, timeout=0.5) as ctrl:
                    if ctrl.ping():
                        return self
            if self.hostapd.poll() is not None:
                break
            time.sleep(0.05)
        self.close()
        raise RadioError("hostapd (driver=wired) ist nicht angelaufen")

    def start_supplicant(self) -> None:
        self.supplicant = subprocess.Popen(
            ["ip", "netns", "exec", self.sta_ns, "wpa_supplicant", "-D", "wired", "-i", STA_IF,
             "-c", str(self.workdir / "supplicant.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_supplicant(self) -> None:
        _stop(self.supplicant)
        self.supplicant = None

    def close_namespaces(self) -> None:
        for ns in (self.ap_ns, self.sta_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def close(self) -> None:
        self.stop_supplicant()
        _stop(self.hostapd)
        self.hostapd = None
        self.close_namespaces()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> WiredLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=3)


def _wait_event(ctrl: HostapdCtrl, name: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        ev = ctrl.next_event(left)
        if ev is not None and ev.name == name:
            return True
    return False


def record(out: Path) -> int:
    """Drive a real hostapd through connect, listing, deauth, reload and disconnect; save the traffic."""
    t0 = time.monotonic()
    lines: list[RecordLine] = []

    def tap(direction: str, text: str) -> None:
        lines.append(RecordLine(time.monotonic() - t0, direction, text))

    with WiredLab(prefix=f"sbxb-{os.getpid()}") as lab, \
            HostapdCtrl(lab.ctrl_path, timeout=2.0, tap=tap) as ctrl:
        ctrl.ping()
        ctrl.attach()
        ctrl.stations()  # empty table: STA-FIRST answers an empty datagram
        lab.start_supplicant()
        if not _wait_event(ctrl, "AP-STA-CONNECTED", 15):
            print("kein AP-STA-CONNECTED", file=sys.stderr)
            return 1
        ctrl.stations()
        ctrl.station(lab.sta_mac)
        ctrl.command("STA 02:00:00:00:00:99")  # unknown MAC: FAIL
        ctrl.command("BOGUS")  # UNKNOWN COMMAND
        ctrl.ping()
        ctrl.deauthenticate(lab.sta_mac)  # event before OK
        _wait_event(ctrl, "AP-STA-DISCONNECTED", 3)
        # A wired supplicant never hears the deauth, so it does not re-authenticate: restart it.
        lab.stop_supplicant()
        lab.start_supplicant()
        _wait_event(ctrl, "AP-STA-CONNECTED", 15)
        ctrl.reload_wpa_psk()  # 802.1X stations have no PSK: 2.10 kicks them (event before OK)
        _wait_event(ctrl, "AP-STA-DISCONNECTED", 3)
        lab.stop_supplicant()
        lab.start_supplicant()
        _wait_event(ctrl, "AP-STA-CONNECTED", 15)
        lab.stop_supplicant()  # EAPOL-Logoff
        _wait_event(ctrl, "AP-STA-DISCONNECTED", 10)
        ctrl.stations()
        ctrl.detach()
    header = [
        "# Real hostapd 2.10 (Debian 2.10-12) control-socket traffic, recorded by",
        "#   python -m tests.venue.wired_lab record <this file>",
        "# hostapd driver=wired on a veth pair in two network namespaces, ieee8021x=1, eap_server=1,",
        "# eap_user_file with \"alice\" MD5; peer: wpa_supplicant -D wired, key_mgmt=IEEE8021X eap=MD5,",
        f"# MAC {STA_MAC}. Seen through appliance.radio.ctrl.HostapdCtrl (tap): SEND = our command,",
        "# REPLY = hostapd's answer, EVENT = unsolicited message. Payload: \\n and \\\\ escaped.",
        "# Times: seconds since the recording started. No keyid= here: 802.1X stations have no PSK.",
        "# Note DEAUTHENTICATE and RELOAD_WPA_PSK: the AP-STA-DISCONNECTED event arrives before the OK.",
        "# The supplicant is restarted after each kick (a wired peer never hears a deauth).",
    ]
    out.write_text("\n".join(header + [format_record(line) for line in lines]) + "\n")
    print(f"{len(lines)} Nachrichten aufgezeichnet in {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        sys.exit(record(Path(sys.argv[2])))
    print("Aufruf: python -m tests.venue.wired_lab record <datei>", file=sys.stderr)
    sys.exit(2)
