"""The card image (image/mkimage.py): partitioned, filled and checked without loop devices or mounts.

Assembled from a small root tree the test writes itself (Pi firmware files in /boot/firmware, the fstab the
build writes), so it takes seconds and does not need the 1 GB arm64 build. Checked from the outside with the
tools a technician would use: `sfdisk --json` (table), mtools (boot files, config.txt, cmdline.txt), `blkid`
(labels, UUIDs), `debugfs`/`e2fsck` (root and data file systems). Two builds from two separately written
copies of the tree (other atimes, a newer mtime) give the same SHA-256.

If the cached arm64 base (with kernel and raspi-firmware) exists, a second test assembles from it; without it
that test is skipped: the suite does not depend on the 15-minute arm64 build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_binary, need_root

sys.path.insert(0, str(ROOT / "image"))
import build  # noqa: E402
import mkimage  # noqa: E402

EPOCH = 1795478400
KVER = "6.1.0-50-arm64"
FIRMWARE = {"start4.elf": b"\x00start4", "fixup4.dat": b"fixup4", "start.elf": b"start", "fixup.dat": b"fixup",
            "bootcode.bin": b"bootcode", "bcm2711-rpi-4-b.dtb": b"\xd0\x0d\xfe\xed pi4",
            "bcm2712-rpi-5-b.dtb": b"\xd0\x0d\xfe\xed pi5",
            "bcm2837-rpi-3-b.dtb": b"\xd0\x0d\xfe\xed pi3", f"vmlinuz-{KVER}": b"MZ kernel" * 100,
            f"initrd.img-{KVER}": b"initrd" * 1000, "overlays/README": b"overlays",
            # Debian's own versions: replaced (they say root=/dev/mmcblk0p2 rw).
            "config.txt": b"arm_64bit=1\nkernel=vmlinuz-old\n", "cmdline.txt": b"root=/dev/mmcblk0p2 rw\n"}
SIZES = {"boot_mib": 64, "root_mib": 48, "data_mib": 32}


def tools() -> None:
    need_root()
    need_binary("sfdisk", "mkfs.ext4", "mcopy", "mformat", "mtype", "mdir", "debugfs", "dumpe2fs", "e2fsck", "blkid")


def fake_root(dest: Path, newer_fstab: bool = False, atime: int = EPOCH) -> Path:
    """A root tree as build.py leaves it, in miniature."""
    files = {"etc/fstab": build.FSTAB.encode(), "etc/hostname": b"sitzungsbox\n", "etc/shadow": b"root:*:1::::::\n",
             "usr/bin/tool": b"#!/bin/sh\necho ok\n", "opt/sitzungsbox/owned": b"app\n",
             **{f"boot/firmware/{k}": v for k, v in FIRMWARE.items()}}
    for rel, data in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (dest / "var/lib/sitzungsbox").mkdir(parents=True)
    (dest / "usr/bin/tool").chmod(0o755)
    (dest / "usr/bin/alias").symlink_to("tool")
    (dest / "etc/shadow").chmod(0o640)
    os.chown(dest / "etc/shadow", 0, 42)
    os.chown(dest / "opt/sitzungsbox/owned", 999, 999)
    # Like the cached base: every time is SOURCE_DATE_EPOCH (tar --clamp-mtime) — except what we vary.
    for dirpath, dirnames, filenames in os.walk(dest, topdown=False):
        for name in [*filenames, *dirnames, ""]:
            os.utime(os.path.join(dirpath, name), (atime, EPOCH), follow_symlinks=False)
    if newer_fstab:  # as build.py writes it: mtime = now
        os.utime(dest / "etc/fstab", (time.time(), time.time()))
    return dest


def table(img: Path) -> dict:
    return json.loads(subprocess.run(["sfdisk", "--json", str(img)], capture_output=True, text=True, check=True,
                                     timeout=30).stdout)["partitiontable"]


def offset(img: Path, n: int) -> int:
    return table(img)["partitions"][n - 1]["start"] * 512


def blkid(img: Path, n: int) -> dict[str, str]:
    out = subprocess.run(["blkid", "-p", "-O", str(offset(img, n)), "-o", "export", str(img)], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def debugfs(img: Path, n: int, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, f"{img}?offset={offset(img, n)}"], capture_output=True,
                          text=True, check=True, timeout=30).stdout


def mtype(img: Path, name: str) -> bytes:
    return subprocess.run(["mtype", "-i", f"{img}@@{offset(img, 1)}", f"::/{name}"], capture_output=True, check=True,
                          timeout=30, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout


@pytest.fixture(scope="module")
def images():
    tools()
    work = Path(tempfile.mkdtemp(prefix="sbi-disk-", dir="/var/tmp"))
    try:
        a = mkimage.assemble(fake_root(work / "a" / "rootfs"), work / "a" / "sitzungsbox.img", EPOCH, **SIZES)
        b = mkimage.assemble(fake_root(work / "b" / "rootfs", newer_fstab=True, atime=EPOCH + 4711),
                             work / "b" / "sitzungsbox.img", EPOCH, **SIZES)
        yield work, a, b
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_partition_table(images):
    _work, a, _b = images
    img, ids = a["image"], a["ids"]
    t = table(img)
    assert t["label"] == "dos" and t["id"] == f"0x{ids.disk_id}" and t["sectorsize"] == 512
    parts = [(p["start"], p["size"], p["type"]) for p in t["partitions"]]
    mib = 2048
    assert parts == [(1 * mib, 64 * mib, "c"), (65 * mib, 48 * mib, "83"), (113 * mib, 32 * mib, "83")]
    assert img.stat().st_size == 145 * 1024 * 1024
    # Sparse: only what the file systems use takes space before the card is written.
    assert img.stat().st_blocks * 512 < img.stat().st_size // 2


def test_boot_partition_holds_firmware_kernel_and_our_config(images):
    _work, a, _b = images
    img, ids = a["image"], a["ids"]
    for name, data in FIRMWARE.items():
        if name not in ("config.txt", "cmdline.txt"):
            assert mtype(img, name) == data, name
    config = mtype(img, "config.txt").decode()
    assert "arm_64bit=1" in config.splitlines() and "upstream_kernel=1" in config.splitlines()
    assert f"kernel=vmlinuz-{KVER}" in config.splitlines() and f"initramfs initrd.img-{KVER}" in config.splitlines()
    cmdline = mtype(img, "cmdline.txt").decode()
    assert cmdline.count("\n") == 1 and cmdline.endswith("\n")  # the firmware reads one line
    args = cmdline.split()
    assert f"root=PARTUUID={ids.disk_id}-02" in args and "ro" in args and "rw" not in args
    assert "net.ifnames=0" in args and "rootwait" in args
    assert [a for a in args if a.startswith("console=")][-1] == "console=tty0"  # /dev/console = HDMI
    fat = blkid(img, 1)
    # The label the image's fstab mounts at /boot/firmware (FAT stores upper case).
    assert fat["TYPE"] == "vfat" and fat["VERSION"] == "FAT32" and fat["LABEL"] == "SBX-BOOT"
    assert "LABEL=SBX-BOOT  /boot/firmware" in build.FSTAB
    listing = subprocess.run(["mdir", "-i", f"{img}@@{offset(img, 1)}", "-b", "::/"], capture_output=True,
                             text=True, check=True, timeout=30, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
    assert "::/overlays/" in listing


def test_root_file_system(images):
    _work, a, _b = images
    img, ids = a["image"], a["ids"]
    root = blkid(img, 2)
    assert root["TYPE"] == "ext4" and root["LABEL"] == "sbx-root" and root["UUID"] == ids.root_uuid
    assert debugfs(img, 2, "cat /etc/fstab") == build.FSTAB
    shadow = debugfs(img, 2, "stat /etc/shadow")
    assert "Mode:  0640" in shadow and "User:     0   Group:    42" in shadow
    assert "User:   999   Group:   999" in debugfs(img, 2, "stat /opt/sitzungsbox/owned")
    assert 'Fast link dest: "tool"' in debugfs(img, 2, "stat /usr/bin/alias")
    assert "Mode:  0755" in debugfs(img, 2, "stat /usr/bin/tool")
    # Every time is SOURCE_DATE_EPOCH (also the fstab written "now" and the atimes of the second tree).
    for path in ("/etc/fstab", "/", "/usr/bin/tool"):
        st = debugfs(img, 2, f"stat {path}")
        for field in ("ctime", "atime", "mtime", "crtime"):
            assert f"{field}: 0x{EPOCH:08x}:" in st, (path, field, st)
    # The boot partition's files are not hidden under its mount point; the mount points exist.
    names = debugfs(img, 2, "ls -p /boot/firmware").split("\n")
    assert [n for n in names if n.strip() and "/./" not in n and "/../" not in n] == []
    assert "Type: directory" in debugfs(img, 2, "stat /var/lib/sitzungsbox")


def test_data_partition_and_file_systems_are_clean(images):
    _work, a, _b = images
    img, ids = a["image"], a["ids"]
    data = blkid(img, 3)
    assert data["TYPE"] == "ext4" and data["LABEL"] == "sbx-data" and data["UUID"] == ids.data_uuid
    assert "LABEL=sbx-data  /var/lib/sitzungsbox" in build.FSTAB
    assert "lost+found" in debugfs(img, 3, "ls /")
    assert "has_journal" in subprocess.run(["dumpe2fs", "-h", f"{img}?offset={offset(img, 3)}"], capture_output=True,
                                           text=True, check=True, timeout=30).stdout
    for n in (2, 3):
        res = subprocess.run(["e2fsck", "-fn", f"{img}?offset={offset(img, n)}"], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr


def test_reproducible_with_checksum_file(images):
    _work, a, b = images
    assert a["sha256"] == b["sha256"]
    digest = hashlib.sha256(a["image"].read_bytes()).hexdigest()
    assert digest == a["sha256"]
    assert Path(f"{a['image']}.sha256").read_text() == f"{digest}  sitzungsbox.img\n"
    res = subprocess.run(["sha256sum", "-c", "sitzungsbox.img.sha256"], cwd=a["image"].parent, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and ": OK" in res.stdout
    # No work files left next to the image.
    assert sorted(p.name for p in a["image"].parent.iterdir()) == ["rootfs", "sitzungsbox.img",
                                                                   "sitzungsbox.img.sha256"]


def test_clear_errors_and_nothing_left_behind(tmp_path):
    tools()
    root = fake_root(tmp_path / "rootfs")
    (root / "boot/firmware/start4.elf").unlink()
    with pytest.raises(mkimage.ImageError, match="Pi-Firmware fehlt.*start4.elf"):
        mkimage.assemble(root, tmp_path / "x.img", EPOCH, **SIZES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]
    with pytest.raises(mkimage.ImageError, match="Großbuchstaben"):
        mkimage.fstab_labels(build.FSTAB.replace("SBX-BOOT", "sbx-boot"))
    with pytest.raises(mkimage.ImageError, match="/var/lib/sitzungsbox"):
        mkimage.fstab_labels("LABEL=a / ext4 ro 0 1\nLABEL=B /boot/firmware vfat ro 0 2\n")


def test_ids_layout_and_texts_are_pure():
    ids = mkimage.derive_ids(EPOCH)
    assert ids == mkimage.derive_ids(EPOCH) and ids != mkimage.derive_ids(EPOCH + 1)
    assert ids != mkimage.derive_ids(EPOCH, seed="stadt-a")
    assert len(ids.disk_id) == 8 and ids.partuuid(2) == f"{ids.disk_id}-02"
    assert len({ids.root_uuid, ids.data_uuid, ids.root_hash_seed, ids.data_hash_seed}) == 4
    lay = mkimage.plan_layout(256, 1000, 1024)
    assert lay.boot == (1, 256) and lay.root == (257, 1000) and lay.data == (1257, 1024) and lay.total_mib == 2281
    with pytest.raises(mkimage.ImageError):
        mkimage.plan_layout(32, 100, 100)
    script = mkimage.sfdisk_script(lay, ids)
    assert f"label-id: 0x{ids.disk_id}" in script and "start=2048, size=524288, type=c" in script
    assert mkimage.fstab_labels(build.FSTAB) == mkimage.Labels(boot="SBX-BOOT", root="sbx-root", data="sbx-data")
    assert mkimage.auto_root_mib(800 * 1024 * 1024) == 1016
    res = subprocess.run([str(ROOT / "image/build.sh"), "--help"], capture_output=True, text=True, timeout=60)
    assert "--img" in res.stdout and "--data-size" in res.stdout


def _cached_arm64_base() -> Path | None:
    tarball = build.cached_root("arm64")
    return tarball if tarball.exists() else None


def test_image_from_the_cached_arm64_base():
    """The real Debian arm64 root (kernel, initrd, raspi-firmware) as the card image, in ~15 s."""
    tools()
    tarball = _cached_arm64_base()
    if tarball is None:
        pytest.skip("kein gecachtes arm64-Basisabbild (image/build.sh --arch arm64 baut es, ~15 min)")
    work = Path(tempfile.mkdtemp(prefix="sbi-disk-arm64-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        build.tar_extract(tarball, rootfs)
        (rootfs / "etc/fstab").write_text(build.FSTAB)
        made = mkimage.assemble(rootfs, work / "sitzungsbox.img", EPOCH, data_mib=64)
        img = made["image"]
        ver = sorted((p.name for p in (rootfs / "usr/lib/modules").iterdir()), key=build._version_key)[-1]
        kernel = f"vmlinuz-{ver}"
        assert made["kernel"] == kernel
        assert mtype(img, kernel) == (rootfs / f"usr/lib/modules/{ver}/vmlinuz").read_bytes()
        assert mtype(img, "start4.elf") == (rootfs / "usr/lib/raspi-firmware/start4.elf").read_bytes()
        dtbs = rootfs / f"usr/lib/modules/{ver}/dtb/broadcom"
        # The Pi 4 and the Pi 5 (both steppings, the D0 under both names) from the kernel's own trees.
        for name, src in build.PI_DTBS.items():
            assert mtype(img, name) == (dtbs / src).read_bytes(), name
        assert f"kernel={kernel}" in mtype(img, "config.txt").decode()
        assert debugfs(img, 2, "cat /etc/fstab") == build.FSTAB
        dash = subprocess.run(["debugfs", "-R", "cat /usr/bin/dash", f"{img}?offset={offset(img, 2)}"],
                              capture_output=True, check=True, timeout=30).stdout
        assert dash[:4] == b"\x7fELF" and int.from_bytes(dash[18:20], "little") == 0xB7  # aarch64
        res = subprocess.run(["e2fsck", "-fn", f"{img}?offset={offset(img, 2)}"], capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
