"""Box health from /proc and /sys: pure parsers plus one reader whose roots are injectable (tests point
them at recorded trees; the venue test at /proc/<pid>/net of a process in the box namespace).

Raspberry Pi throttling: `vcgencmd get_throttled` prints `throttled=0x50005`; newer kernels expose the same
number (hex, without 0x) at /sys/devices/platform/soc/soc:firmware/get_throttled. Bits 0-3 are *now*
(under-voltage, ARM frequency capped, throttled, soft temperature limit), bits 16-19 the same *since boot*.
Temperature: /sys/class/thermal/thermal_zone0/temp in millidegrees Celsius.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

THROTTLE_BITS = {0: "undervoltage", 1: "freq_capped", 2: "throttled", 3: "soft_temp_limit"}
SYSFS_THROTTLED = "devices/platform/soc/soc:firmware/get_throttled"


@dataclass(frozen=True)
class CpuTimes:
    total: int
    idle: int  # idle + iowait


def parse_proc_stat(text: str) -> CpuTimes | None:
    for line in text.splitlines():
        if line.startswith("cpu "):
            nums = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal (guest times are already in user/nice)
            total = sum(nums[:8])
            idle = nums[3] + (nums[4] if len(nums) > 4 else 0)
            return CpuTimes(total, idle)
    return None


def cpu_percent(prev: CpuTimes | None, cur: CpuTimes | None) -> float | None:
    if prev is None or cur is None:
        return None
    d_total, d_idle = cur.total - prev.total, cur.idle - prev.idle
    if d_total <= 0 or d_idle < 0:
        return None  # counters went backwards (not expected for /proc/stat, but never report nonsense)
    return round(100.0 * (d_total - d_idle) / d_total, 1)


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def parse_meminfo(text: str) -> dict[str, int]:
    """kB values by name (MemTotal, MemAvailable, ...)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


@dataclass(frozen=True)
class IfCounters:
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


def parse_net_dev(text: str) -> dict[str, IfCounters]:
    """/proc/net/dev: two header lines, then `iface: rx_bytes rx_packets ... (8 rx) tx_bytes tx_packets ...`."""
    out: dict[str, IfCounters] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        nums = rest.split()
        if len(nums) < 10:
            continue
        out[name.strip()] = IfCounters(int(nums[0]), int(nums[8]), int(nums[1]), int(nums[9]))
    return out


def parse_millidegrees(text: str) -> float | None:
    try:
        return round(int(text.strip()) / 1000, 1)
    except ValueError:
        return None


@dataclass(frozen=True)
class Throttled:
    raw: int
    now: tuple[str, ...] = ()
    since_boot: tuple[str, ...] = ()

    @property
    def undervoltage_now(self) -> bool:
        return "undervoltage" in self.now


def parse_throttled(text: str) -> Throttled | None:
    """`throttled=0x50005` (vcgencmd) or `50005` (sysfs, hex without prefix)."""
    m = re.search(r"(?:throttled=)?(0x)?([0-9a-fA-F]+)\s*$", text.strip())
    if not m:
        return None
    value = int(m.group(2), 16)
    now = tuple(name for bit, name in THROTTLE_BITS.items() if value & (1 << bit))
    boot = tuple(name for bit, name in THROTTLE_BITS.items() if value & (1 << (bit + 16)))
    return Throttled(value, now, boot)


@dataclass
class SystemReader:
    """Reads the box; every path is relative to an injectable root."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    proc_net: Path | None = None  # default proc/net; /proc/<pid>/net reads another network namespace
    vcgencmd: str | None = "vcgencmd"
    _prev_cpu: CpuTimes | None = field(default=None, repr=False)

    def _read(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    def cpu_percent(self) -> float | None:
        cur = parse_proc_stat(self._read(self.proc / "stat") or "")
        pct = cpu_percent(self._prev_cpu, cur)
        self._prev_cpu = cur
        return pct

    def loadavg(self) -> tuple[float, float, float] | None:
        return parse_loadavg(self._read(self.proc / "loadavg") or "")

    def memory(self) -> tuple[int, int] | None:
        """(total kB, available kB)."""
        info = parse_meminfo(self._read(self.proc / "meminfo") or "")
        if "MemTotal" not in info:
            return None
        return info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))

    def net_dev(self) -> dict[str, IfCounters]:
        return parse_net_dev(self._read((self.proc_net or self.proc / "net") / "dev") or "")

    def temperature(self) -> float | None:
        return parse_millidegrees(self._read(self.sys / "class/thermal/thermal_zone0/temp") or "")

    def throttled(self) -> Throttled | None:
        text = self._read(self.sys / SYSFS_THROTTLED)
        if text is None and self.vcgencmd:
            text = run_text([self.vcgencmd, "get_throttled"])
        return parse_throttled(text) if text else None

    def operstate(self, iface: str) -> str | None:
        text = self._read(self.sys / "class/net" / iface / "operstate")
        return text.strip() if text else None

    def processes(self) -> set[str]:
        """Names (comm) of running processes: is dnsmasq / hostapd up?"""
        names: set[str] = set()
        try:
            entries = os.listdir(self.proc)
        except OSError:
            return names
        for pid in entries:
            if pid.isdigit():
                text = self._read(self.proc / pid / "comm")
                if text:
                    names.add(text.strip())
        return names


def disk_usage(path: Path) -> tuple[int, int] | None:
    """(total bytes, used bytes) of the file system holding `path`."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return total, total - free


def run_text(argv: list[str], timeout: float = 2.0) -> str | None:
    """A read-only command's stdout; None when missing, failing or too slow (the monitor never blocks)."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None
