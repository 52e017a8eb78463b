"""Grow the data partition to the end of the card at first boot (sitzungsbox-growdata.service).

The image's data partition is small (image/mkimage.py --data-size) so the image stays small to download and
write; on a 32 GB card the rest would lie unused. Before the data partition is mounted, this moves its end
to the end of the card (sfdisk, 1 MiB aligned), tells the kernel the new size (resizepart: BLKPG, in place),
checks the file system (e2fsck -f, which resize2fs requires) and grows it (resize2fs). Not systemd-growfs: it
would also run in the CI's container boot, where the "partition" is a directory of the host.

All of it under an exclusive BSD lock on the whole card, which udev honours: without it udev re-probed the
partition while resize2fs rewrote it, the by-label link vanished for a moment, and systemd failed the data
partition's mount (seen booting the card in QEMU's Pi 4).
Runs on every boot and changes nothing once the partition reaches the end: no flag file is needed, and a
box whose card was cloned onto a bigger one grows again.

    python -m appliance.growdata /dev/disk/by-label/sbx-data      (root; what the unit runs)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ALIGN = 2048  # sectors of 512 bytes: 1 MiB, as mkimage lays out the partitions
MIN_GAIN = 16 * ALIGN  # less than 16 MiB to gain: not worth touching the partition table
MBR_MAX = 2**32 - 1  # sectors an MBR entry can hold (2 TiB)


class GrowError(RuntimeError):
    pass


@dataclass(frozen=True)
class Plan:
    partno: int
    start: int
    size: int
    new_size: int

    @property
    def gain_mib(self) -> int:
        return (self.new_size - self.size) // ALIGN

    def sfdisk_line(self) -> str:
        return f"start={self.start}, size={self.new_size}\n"


def plan_grow(table: dict, partno: int, disk_sectors: int) -> Plan | None:
    """Pure: how to grow partition PARTNO of `sfdisk --json`'s TABLE on a disk of DISK_SECTORS, or None.

    Only the last partition on the disk is grown (nothing may lie behind it); its new end is the last whole
    MiB of the disk (and within what an MBR entry can address)."""
    if table.get("unit", "sectors") != "sectors" or int(table.get("sectorsize", 512)) != 512:
        raise GrowError("Partitionstabelle nicht in 512-Byte-Sektoren")
    parts = table.get("partitions", [])
    mine = [p for p in parts if _partno(p["node"]) == partno]
    if not mine:
        raise GrowError(f"Partition {partno} nicht in der Tabelle")
    part = mine[0]
    start, size = int(part["start"]), int(part["size"])
    if any(int(p["start"]) > start for p in parts if p is not part):
        return None  # not the last one: growing it would run into the next
    end = disk_sectors // ALIGN * ALIGN
    if table.get("label") == "gpt":
        end = min(end, (disk_sectors - 34) // ALIGN * ALIGN)  # the backup table lives in the last 33 sectors
    elif table.get("label") == "dos":
        end = min(end, (start + MBR_MAX) // ALIGN * ALIGN)
    else:
        raise GrowError(f"unbekannte Partitionstabelle: {table.get('label')!r}")
    new_size = end - start
    if new_size - size < MIN_GAIN:
        return None
    return Plan(partno, start, size, new_size)


def _partno(node: str) -> int:
    digits = ""
    for ch in reversed(node):
        if not ch.isdigit():
            break
        digits = ch + digits
    return int(digits) if digits else -1


# --- the disk -----------------------------------------------------------------------------------------------

def _run(argv: list[str], stdin: str | None = None) -> str:
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=600, check=False)
    if res.returncode != 0:
        raise GrowError(f"{argv[0]}: {(res.stderr or res.stdout).strip()[-500:]}")
    return res.stdout


def read_table(disk: Path) -> dict:
    return json.loads(_run(["sfdisk", "--json", str(disk)]))["partitiontable"]


def apply(disk: Path, plan: Plan, tell_kernel: bool = True) -> None:
    """Write the new end (start kept, type kept), then give the kernel the new size of that one partition
    (resized in place: the partition never disappears, so neither do its device units)."""
    _run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", str(plan.partno), str(disk)],
         stdin=plan.sfdisk_line())
    if tell_kernel:
        _run(["resizepart", str(disk), str(plan.partno), str(plan.new_size)])


@contextlib.contextmanager
def locked(disk: Path) -> Iterator[None]:
    """udev leaves a block device (and its partitions) alone while someone holds an exclusive flock on it."""
    fd = os.open(disk, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def locate(device: Path, sys_block: Path = Path("/sys/class/block")) -> tuple[Path, int, int]:
    """A partition's disk, number and the disk's size in 512-byte sectors, from sysfs."""
    name = os.path.basename(os.path.realpath(device))
    part = sys_block / name
    try:
        partno = int((part / "partition").read_text())
    except FileNotFoundError as exc:
        raise GrowError(f"{device} ist keine Partition") from exc
    disk_name = Path(os.path.realpath(part)).parent.name
    sectors = int((sys_block / disk_name / "size").read_text())  # always 512-byte units in sysfs
    return Path("/dev") / disk_name, partno, sectors


def is_mounted(device: Path, mounts: Path = Path("/proc/self/mounts")) -> bool:
    real = os.path.realpath(device)
    return any(os.path.realpath(line.split()[0]) == real for line in mounts.read_text().splitlines() if line)


def grow_fs(partition: Path) -> None:
    """ext4 to the partition's new size. Unmounted, resize2fs wants a fresh check first (e2fsck exit codes 0
    and 1 mean clean or fixed); mounted, it grows online."""
    if not is_mounted(partition):
        res = subprocess.run(["e2fsck", "-f", "-p", str(partition)], capture_output=True, text=True, timeout=600,
                             check=False)
        if res.returncode not in (0, 1):
            raise GrowError(f"e2fsck: {(res.stdout + res.stderr).strip()[-500:]}")
    _run(["resize2fs", str(partition)])


def grow(device: Path) -> Plan | None:
    disk, partno, sectors = locate(device)
    with locked(disk):
        plan = plan_grow(read_table(disk), partno, sectors)
        if plan is not None:
            apply(disk, plan)
            grow_fs(device)
    return plan


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("Aufruf: python -m appliance.growdata GERÄT (z. B. /dev/disk/by-label/sbx-data)", file=sys.stderr)
        return 2
    try:
        plan = grow(Path(args[0]))
    except (GrowError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        # The box still works with the small partition: say why, do not stop the boot.
        print(f"Datenpartition nicht vergrößert: {exc}", file=sys.stderr)
        return 1
    if plan is None:
        print("Datenpartition reicht bis zum Ende der Karte.")
    else:
        print(f"Datenpartition vergrößert: {plan.size // ALIGN} → {plan.new_size // ALIGN} MiB "
              f"(+{plan.gain_mib} MiB), Dateisystem mitgewachsen.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
