"""First boot grows the data partition to the end of the card (appliance/growdata.py).

The plan is pure. sfdisk moves the end on an image file; the file system grows (e2fsck -f, resize2fs) on a
loop device over the moved partition's bytes; sysfs lookup on a tree shaped like the Pi's. This CI kernel
has no MBR partition support (no loop0p3), so resizepart's step runs only on the card: tests/test_image_qemu.py
boots the image in QEMU's Pi 4 with a bigger SD card and sees the partition and file system grow.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import growdata
from tests.conftest import ROOT, need, need_binary, need_root

sys.path.insert(0, str(ROOT / "image"))
import mkimage  # noqa: E402

MIB = 2048  # sectors


def table(parts: list[tuple[int, int]], label: str = "dos") -> dict:
    return {"label": label, "unit": "sectors", "sectorsize": 512,
            "partitions": [{"node": f"/dev/mmcblk0p{i}", "start": s, "size": n, "type": "83"}
                           for i, (s, n) in enumerate(parts, 1)]}


CARD = [(1 * MIB, 256 * MIB), (257 * MIB, 1100 * MIB), (1357 * MIB, 1024 * MIB)]


def test_plan_grows_the_last_partition_to_the_last_whole_mib():
    disk = 29_000 * MIB + 777  # a card's size is rarely a whole MiB
    plan = growdata.plan_grow(table(CARD), 3, disk)
    assert plan is not None
    assert plan.start == 1357 * MIB and plan.size == 1024 * MIB
    assert plan.new_size == (29_000 - 1357) * MIB and (plan.start + plan.new_size) % MIB == 0
    assert plan.start + plan.new_size <= disk
    assert plan.gain_mib == 29_000 - 1357 - 1024
    assert plan.sfdisk_line() == f"start={1357 * MIB}, size={(29_000 - 1357) * MIB}\n"


def test_plan_leaves_alone_what_must_not_or_need_not_grow():
    full = (1357 + 1024) * MIB
    assert growdata.plan_grow(table(CARD), 3, full) is None  # already to the end
    assert growdata.plan_grow(table(CARD), 3, full + 8 * MIB) is None  # under 16 MiB to gain
    assert growdata.plan_grow(table(CARD), 2, 29_000 * MIB) is None  # not the last partition
    # Partition order in the table is not disk order: the last on disk is what counts.
    shuffled = table([CARD[2], CARD[0], CARD[1]])
    assert growdata.plan_grow(shuffled, 1, 29_000 * MIB) is not None
    assert growdata.plan_grow(shuffled, 3, 29_000 * MIB) is None


def test_plan_respects_gpt_backup_and_mbr_limit():
    gpt = growdata.plan_grow(table(CARD, "gpt"), 3, 29_000 * MIB)
    assert gpt is not None and gpt.start + gpt.new_size <= 29_000 * MIB - 34
    huge = 3 * 2**32  # a 6 TiB disk: an MBR entry ends at 2 TiB
    dos = growdata.plan_grow(table(CARD), 3, huge)
    assert dos is not None and dos.new_size <= growdata.MBR_MAX
    with pytest.raises(growdata.GrowError, match="Partition 4"):
        growdata.plan_grow(table(CARD), 4, huge)
    with pytest.raises(growdata.GrowError, match="unbekannte"):
        growdata.plan_grow(table(CARD, "sun"), 3, huge)


def _card_file(path: Path, total_mib: int) -> Path:
    """A card with mkimage's MBR layout (small sizes), the file then made bigger like a bigger card."""
    need_binary("sfdisk")
    layout = mkimage.plan_layout(64, 32, 16)
    ids = mkimage.derive_ids(1795478400)
    with open(path, "wb") as fh:
        fh.truncate(layout.total_mib * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(path)],
                   input=mkimage.sfdisk_script(layout, ids), text=True, check=True, timeout=30)
    with open(path, "r+b") as fh:
        fh.truncate(total_mib * 1024 * 1024)
    return path


def test_apply_on_an_image_file_moves_only_the_end(tmp_path):
    card = _card_file(tmp_path / "card.img", 400)
    before = growdata.read_table(card)
    plan = growdata.plan_grow(before, 3, card.stat().st_size // 512)
    assert plan is not None
    growdata.apply(card, plan, tell_kernel=False)
    after = growdata.read_table(card)
    assert after["id"] == before["id"]  # the disk id, so every PARTUUID (root=PARTUUID=…-02) stays
    assert after["partitions"][:2] == before["partitions"][:2]
    p3 = after["partitions"][2]
    assert p3["start"] == before["partitions"][2]["start"] and p3["type"] == "83"
    assert p3["start"] + p3["size"] == 400 * MIB
    assert growdata.plan_grow(after, 3, card.stat().st_size // 512) is None


def test_card_is_locked_while_it_grows(tmp_path):
    """udev skips a device someone holds an exclusive flock on: nobody else gets the lock meanwhile."""
    import fcntl
    import os

    card = tmp_path / "card.img"
    card.write_bytes(b"\0" * 4096)

    def can_lock() -> bool:
        fd = os.open(card, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with growdata.locked(card):
        assert not can_lock()
    assert can_lock()


def test_locate_finds_disk_number_and_size_in_sysfs(tmp_path):
    """What the kernel shows for the Pi's card: /sys/class/block/mmcblk0p3 -> …/mmcblk0/mmcblk0p3."""
    blk = tmp_path / "sys/class/block"
    card = tmp_path / "sys/devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:1234/block/mmcblk0"
    (card / "mmcblk0p3").mkdir(parents=True)
    (card / "size").write_text("62333952\n")
    (card / "mmcblk0p3/partition").write_text("3\n")
    blk.mkdir(parents=True)
    (blk / "mmcblk0").symlink_to(card)
    (blk / "mmcblk0p3").symlink_to(card / "mmcblk0p3")
    node = tmp_path / "dev/disk/by-label/sbx-data"
    node.parent.mkdir(parents=True)
    (tmp_path / "dev/mmcblk0p3").touch()
    node.symlink_to("../../mmcblk0p3")
    assert growdata.locate(node, sys_block=blk) == (Path("/dev/mmcblk0"), 3, 62333952)
    (card / "mmcblk0p3/partition").unlink()
    with pytest.raises(growdata.GrowError, match="keine Partition"):
        growdata.locate(node, sys_block=blk)


@pytest.fixture
def grown_card(tmp_path):
    """A card file whose data partition (16 MiB ext4) was moved to the end; the partition's bytes on a loop
    device, as the kernel would show them after resizepart (this CI kernel has no MBR support, so no loop0p3)."""
    need_root()
    need_binary("losetup", "mkfs.ext4", "resize2fs", "e2fsck", "dumpe2fs")
    card = _card_file(tmp_path / "card.img", 320)
    p3 = growdata.read_table(card)["partitions"][2]
    fs = tmp_path / "data.part"
    with open(fs, "wb") as fh:
        fh.truncate(p3["size"] * 512)
    subprocess.run(["mkfs.ext4", "-q", "-L", "sbx-data", str(fs)], check=True, timeout=60)
    subprocess.run(["dd", f"if={fs}", f"of={card}", "bs=1M", f"seek={p3['start'] // MIB}", "conv=notrunc",
                    "status=none"], check=True, timeout=60)
    plan = growdata.plan_grow(growdata.read_table(card), 3, card.stat().st_size // 512)
    growdata.apply(card, plan, tell_kernel=False)
    res = subprocess.run(["losetup", "--find", "--show", "--offset", str(plan.start * 512), "--sizelimit",
                          str(plan.new_size * 512), str(card)], capture_output=True, text=True, timeout=30)
    need(res.returncode == 0, f"keine Loop-Geräte: {res.stderr.strip()}")
    dev = Path(res.stdout.strip())
    try:
        yield dev, plan
    finally:
        subprocess.run(["losetup", "-d", str(dev)], timeout=30, check=False)


def _fs_bytes(part: Path) -> int:
    out = subprocess.run(["dumpe2fs", "-h", str(part)], capture_output=True, text=True, check=True, timeout=30).stdout
    count = int(re.search(r"^Block count:\s+(\d+)", out, re.M).group(1))
    size = int(re.search(r"^Block size:\s+(\d+)", out, re.M).group(1))
    return count * size


def test_file_system_grows_to_the_moved_partition(grown_card):
    dev, plan = grown_card
    assert plan.gain_mib == 320 - 97 - 16 and _fs_bytes(dev) == 16 * 1024 * 1024
    # Not mounted: the path the boot takes (e2fsck -f, then resize2fs).
    assert not growdata.is_mounted(dev)
    growdata.grow_fs(dev)
    assert _fs_bytes(dev) == plan.new_size * 512 == 223 * 1024 * 1024
    assert subprocess.run(["e2fsck", "-fn", str(dev)], capture_output=True, timeout=60).returncode == 0
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(dev)], capture_output=True, text=True,
                           timeout=30).stdout.strip()
    assert label == "sbx-data"  # the same file system, grown (not a new one)


def test_errors_are_said_and_the_boot_goes_on(tmp_path, capsys):
    assert growdata.main([str(tmp_path / "nope")]) == 1
    assert "Datenpartition nicht vergrößert" in capsys.readouterr().err
    assert growdata.main([]) == 2
