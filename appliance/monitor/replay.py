"""A replayed radio for the monitor: the tests, the demo dashboard and bench/monitor use it.

- `StatusFakeHostapd`: appliance.radio.fake.FakeHostapd plus a `STATUS` answer (shape of a recorded
  hostapd 2.10 STATUS on 2.4 GHz channel 6).
- `IwReplay`: stands in for the `iw` binary. Each `station dump` advances every station's counters as a
  real driver's would between two calls (packets, retries at the station's retry rate), each
  `survey dump` the channel's active/busy times at `busy_pct`; `reset()` restarts the counters at 0 (a
  driver reload). A station block has every line of the recorded mac80211 dump
  (tests/fixtures/monitoring/iw-station-dump_netdata_station_dump.txt, 28 lines: the parse costs what a real
  dump's does); stations marked brcmfmac print the lines of iw-station-dump_brcmfmac.txt: no retry lines, no
  MCS and `signal: 0 dBm`, as that driver does. `calls` lists every argv it was run with (the subprocesses
  the monitor started).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from appliance.radio.fake import FakeHostapd

STATUS_24 = """state=ENABLED
phy=phy0
freq=2437
num_sta_non_erp=0
channel=6
secondary_channel=0
ieee80211n=1
ieee80211ac=0
beacon_int=100
dtim_period=2
bss[0]={iface}
bssid[0]=02:5b:00:00:00:01
ssid[0]=Sitzung
num_sta[0]={n}
"""


class StatusFakeHostapd(FakeHostapd):
    def __init__(self, *args, interface: str = "wlan0", **kwargs) -> None:
        self.interface = interface
        super().__init__(*args, **kwargs)

    def handle(self, cmd: str, addr: str) -> str:
        if cmd.strip() == "STATUS":
            with self._lock:
                self.commands_received.append(cmd)
                n = len(self._stations)
            return STATUS_24.format(iface=self.interface, n=n)
        return super().handle(cmd, addr)


# the recorded mac80211 block (netdata's station dump, first station) with our counters filled in
_MAC80211 = ("Station {mac} (on {ifname})\n\tinactive time:\t120 ms\n\trx bytes:\t{rx_bytes}\n"
             "\trx packets:\t{rx_packets}\n\ttx bytes:\t{tx_bytes}\n\ttx packets:\t{tx_packets}\n"
             "\ttx retries:\t{tx_retries}\n\ttx failed:\t0\n\trx drop misc:\t0\n"
             "\tsignal:  \t{signal} [{signal}, {signal}] dBm\n\tsignal avg:\t{signal} [{signal}, {signal}] dBm\n"
             "\ttx bitrate:\t65.0 MBit/s MCS 7\n\ttx duration:\t0 us\n\trx bitrate:\t130.0 MBit/s MCS 15\n"
             "\trx duration:\t0 us\n\tauthorized:\t{authorized}\n\tauthenticated:\tyes\n\tassociated:\tyes\n"
             "\tpreamble:\tshort\n\tWMM/WME:\tyes\n\tMFP:\t\tno\n\tTDLS peer:\tno\n\tDTIM period:\t2\n"
             "\tbeacon interval:100\n\tshort slot time:yes\n\tconnected time:\t60 seconds\n"
             "\tassociated at [boottime]:\t12650.576s\n\tassociated at:\t1720705279930 ms\n"
             "\tcurrent time:\t1720706075344 ms\n")
# the constructed brcmfmac block (tests/fixtures/monitoring/iw-station-dump_brcmfmac.txt)
_BRCMFMAC = ("Station {mac} (on {ifname})\n\tinactive time:\t120 ms\n\trx bytes:\t{rx_bytes}\n"
             "\trx packets:\t{rx_packets}\n\ttx bytes:\t{tx_bytes}\n\ttx packets:\t{tx_packets}\n"
             "\tsignal:  \t0 dBm\n\ttx bitrate:\t72.2 MBit/s\n\trx bitrate:\t65.0 MBit/s\n"
             "\tauthorized:\t{authorized}\n\tauthenticated:\tyes\n\tassociated:\tyes\n\tWMM/WME:\tyes\n"
             "\tMFP:\t\tno\n\tTDLS peer:\tno\n\tconnected time:\t60 seconds\n")


def _printf(template: str, order: tuple[str, ...]) -> str:
    """The template as a printf-style one whose fields come in `order` (checked): `%` with a tuple renders a block
    ~3x quicker than str.format with names, and bench/monitor counts the replay's CPU as the monitor's. Same text
    (tests/test_monitor_parsers.py holds the two against each other)."""
    out, found, pos = template.replace("%", "%%"), [], 0
    while (start := out.find("{", pos)) != -1:
        end = out.index("}", start)
        found.append(out[start + 1:end])
        spec = "%s" if found[-1] in ("mac", "ifname", "authorized") else "%d"
        out, pos = out[:start] + spec + out[end + 1:], start + len(spec)
    assert tuple(found) == order, found
    return out


_COUNTERS = ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
_MAC80211_PRINTF = _printf(_MAC80211, ("mac", "ifname", *_COUNTERS, "tx_retries", *["signal"] * 6, "authorized"))
_BRCMFMAC_PRINTF = _printf(_BRCMFMAC, ("mac", "ifname", *_COUNTERS, "authorized"))


@dataclass
class _Sta:
    mac: str
    signal: int
    retry_pct: float
    brcmfmac: bool
    authorized: bool = True
    tx_packets: int = 0
    tx_retries: int = 0
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0


class IwReplay:
    def __init__(self, interface: str = "wlan0", busy_pct: float = 30.0, scan: str = "") -> None:
        self.interface = interface
        self.busy_pct = busy_pct
        self.scan = scan
        self.stations: dict[str, _Sta] = {}
        self.active_ms = 1_000_000
        self.busy_ms = int(self.active_ms * busy_pct / 100)
        self.calls: list[list[str]] = []

    def add(self, mac: str, signal: int, retry_pct: float = 2.0, brcmfmac: bool = False,
            authorized: bool = True) -> None:
        self.stations[mac] = _Sta(mac, signal, retry_pct, brcmfmac, authorized)

    def remove(self, mac: str) -> None:
        self.stations.pop(mac, None)

    def reset(self) -> None:
        for s in self.stations.values():
            s.tx_packets = s.tx_retries = s.rx_packets = s.rx_bytes = s.tx_bytes = 0
        self.active_ms = self.busy_ms = 0

    def __call__(self, argv: list[str]) -> str | None:
        self.calls.append(argv)
        if argv[-2:] == ["station", "dump"]:
            return self._station_dump()
        if argv[-2:] == ["survey", "dump"]:
            self.active_ms += 1000
            self.busy_ms += int(10 * self.busy_pct)
            return (f"Survey data from {self.interface}\n\tfrequency:\t\t\t2437 MHz [in use]\n"
                    f"\tnoise:\t\t\t\t-92 dBm\n\tchannel active time:\t\t{self.active_ms} ms\n"
                    f"\tchannel busy time:\t\t{self.busy_ms} ms\n")
        if argv[-2:] == ["scan", "dump"]:
            return self.scan
        return None

    def _station_dump(self) -> str:
        out = []
        ifname = self.interface
        for s in self.stations.values():
            s.tx_packets += 100
            s.tx_retries += int(s.retry_pct)
            s.rx_packets += 40
            s.rx_bytes += 5000
            s.tx_bytes += 20000
            authorized = "yes" if s.authorized else "no"
            if s.brcmfmac:
                out.append(_BRCMFMAC_PRINTF % (s.mac, ifname, s.rx_bytes, s.rx_packets, s.tx_bytes, s.tx_packets,
                                               authorized))
            else:
                sig = s.signal
                out.append(_MAC80211_PRINTF % (s.mac, ifname, s.rx_bytes, s.rx_packets, s.tx_bytes, s.tx_packets,
                                               s.tx_retries, sig, sig, sig, sig, sig, sig, authorized))
        return "".join(out)


def mac_of(i: int) -> str:
    return f"02:5b:00:{(i >> 16) & 0xff:02x}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


def populate(fake: FakeHostapd, iw: IwReplay, n: int, keyids: list[str | None] | None = None, seed: int = 5,
             weak: int = 2, brcmfmac: int = 1, retrying: int = 1) -> list[str]:
    """n stations with plausible signals; the first `weak` are weak (-88 dBm), then `retrying` with 40 %
    retries, then `brcmfmac` ones without retries and signal 0. Returns the MACs in order."""
    rng = random.Random(seed)
    macs = []
    for i in range(n):
        mac = mac_of(i + 1)
        keyid = keyids[i] if keyids and i < len(keyids) else None
        if i < weak:
            signal, retry, brcm = -88, 5.0, False
        elif i < weak + retrying:
            signal, retry, brcm = -70, 40.0, False
        elif i < weak + retrying + brcmfmac:
            signal, retry, brcm = 0, 0.0, True
        else:
            signal, retry, brcm = rng.randint(-66, -40), 2.0, False
        fields = {"signal": signal, "connected_time": 60, "inactive_msec": rng.randint(0, 3000)}
        fake.connect(mac, keyid, **fields)
        iw.add(mac, signal, retry, brcm)
        macs.append(mac)
    return macs


class FollowingIw(IwReplay):
    """IwReplay whose stations follow a FakeHostapd's table (the demo: members arrive and leave over time).

    Each `station dump` first adds the fake's new stations, with the signal the fake reports and a retry
    rate drawn once per device (a few devices retry a lot, as phones at the back of a hall do), and drops
    the ones that left."""

    def __init__(self, fake: FakeHostapd, interface: str = "wlan0", busy_pct: float = 35.0, seed: int = 11) -> None:
        super().__init__(interface, busy_pct)
        self.fake = fake
        self._rng = random.Random(seed)

    def __call__(self, argv: list[str]) -> str | None:
        if argv[-2:] == ["station", "dump"]:
            table = self.fake.stations
            for mac in [m for m in self.stations if m not in table]:
                self.remove(mac)
            for mac, fields in table.items():
                if mac not in self.stations:
                    try:
                        signal = int(fields.get("signal", "-60"))
                    except ValueError:
                        signal = -60
                    self.add(mac, signal, 30.0 if self._rng.random() < 0.1 else 2.0)
        return super().__call__(argv)


def start_demo_monitor(cfg, fake: FakeHostapd, stop) -> threading.Thread:
    """The demo's monitor: the real Monitor and Collector against the demo's FakeHostapd, a FollowingIw for
    `iw` and the machine's own /proc (no vcgencmd: a PC is no Pi). Runs in its own thread until `stop`;
    the database connection is opened in that thread (SQLite connections stay in their thread)."""
    from appliance.monitor.collector import Collector
    from appliance.monitor.daemon import Monitor
    from appliance.monitor.system import SystemReader

    def run() -> None:
        mon = Monitor(cfg, Collector(cfg, runner=FollowingIw(fake, cfg.radios[0].interface),
                                     system=SystemReader(vcgencmd=None)))
        try:
            mon.run(stop)
        finally:
            mon.close()

    thread = threading.Thread(target=run, name="demo-monitor", daemon=True)
    thread.start()
    return thread
