"""qemu-user through binfmt_misc for a foreign-architecture build, registered only for the build and removed after.

We never change a registration we did not make: if the host already has an enabled qemu entry for the
arch we use it; otherwise we register our own entry (name `sbi-qemu-<arch>`, flag F = the kernel opens the
interpreter now, so it works inside the chroot without copying qemu there) and remove it on exit. If
binfmt_misc was not mounted we mount it and unmount it again, leaving the host as we found it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

BINFMT = Path("/proc/sys/fs/binfmt_misc")
# ELF header of an aarch64 executable, and the mask (as in Debian's qemu-user-static binfmt entry).
MAGIC = {"arm64": (r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
                   r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff")}
HOST_ENTRY = {"arm64": "qemu-aarch64"}


def registration(name: str, arch: str, interpreter: str) -> str:
    """Pure: the line written to binfmt_misc/register."""
    magic, mask = MAGIC[arch]
    return f":{name}:M::{magic}:{mask}:{interpreter}:F"


def _enabled(entry: Path) -> bool:
    try:
        return entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def qemu_binfmt(arch: str, interpreter: str) -> Iterator[str]:
    if not Path(interpreter).exists():
        raise RuntimeError(f"{interpreter} fehlt (apt-get install qemu-user-static)")
    mounted_here = False
    if not os.path.ismount(BINFMT):
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True, timeout=30)
        mounted_here = True
    ours = BINFMT / f"sbi-qemu-{arch}"
    try:
        if _enabled(BINFMT / HOST_ENTRY[arch]):
            yield HOST_ENTRY[arch]
            return
        if not ours.exists():
            (BINFMT / "register").write_text(registration(ours.name, arch, interpreter))
        yield ours.name
    finally:
        if ours.exists():
            ours.write_text("-1")  # remove our entry
        if mounted_here:
            subprocess.run(["umount", str(BINFMT)], check=False, timeout=30)
