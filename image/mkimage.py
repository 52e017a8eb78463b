"""Assemble the flashable card image from a built root file system (see image/README.md).

    image/mkimage.py ROOTFS OUT.img [--boot-size MiB] [--root-size MiB] [--data-size MiB] [--id-seed TEXT]
    image/build.sh --arch arm64 --out DIR --img OUT.img        (build, then assemble)

Without loop devices or mounts (a CI container may have neither): every partition is made as its own file,
then copied into a sparse image with `dd conv=notrunc`:
1. an MBR written by `sfdisk` (the Pi's boot ROM reads MBR on every model; GPT only with newer EEPROMs),
2. FAT32 boot partition by mtools: ROOTFS/boot/firmware (firmware, kernel, initrd, device trees that
   Debian's raspi-firmware put there) with our own config.txt and cmdline.txt (root=PARTUUID=…-02 ro),
3. ext4 root by `mkfs.ext4 -d ROOTFS` (boot/firmware left empty: the boot partition is mounted there),
4. empty ext4 data partition.
The labels come from ROOTFS/etc/fstab (written by build.py), so the partitions match what the system mounts.

Reproducible: the disk id, UUIDs, hash seeds and the FAT serial are derived from SOURCE_DATE_EPOCH (default:
image.conf) and --id-seed; all times in both file systems are SOURCE_DATE_EPOCH (mtools honours it; for
e2fsprogs 1.47.0, which copies the source's ctime/atime, they are set afterwards with debugfs). The same root
tree gives a byte-identical image; OUT.img.sha256 is written next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
SECTOR = 512
TOOLS = {"sfdisk": "fdisk", "mformat": "mtools", "mcopy": "mtools", "mmd": "mtools", "mkfs.ext4": "e2fsprogs",
         "debugfs": "e2fsprogs", "dumpe2fs": "e2fsprogs", "dd": "coreutils"}
# What a Pi 4 needs from the firmware (without these it shows only the rainbow screen; the Pi 5's firmware is
# in its EEPROM) and the device trees of both boards (build.py's populate_boot puts them there).
REQUIRED_FIRMWARE = ("start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb")
# Written by us, not copied: the firmware's own versions point at /dev/mmcblk0p2 rw.
GENERATED = ("config.txt", "cmdline.txt")


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Ids:
    disk_id: str  # MBR disk identifier, 8 hex digits; PARTUUID of partition n is f"{disk_id}-{n:02x}"
    root_uuid: str
    data_uuid: str
    root_hash_seed: str
    data_hash_seed: str
    fat_serial: str  # 8 hex digits

    def partuuid(self, n: int) -> str:
        return f"{self.disk_id}-{n:02x}"


@dataclass(frozen=True)
class Layout:
    """Start and size of each partition in MiB (everything 1 MiB aligned, first partition at 1 MiB)."""

    boot: tuple[int, int]
    root: tuple[int, int]
    data: tuple[int, int]

    @property
    def total_mib(self) -> int:
        return self.data[0] + self.data[1]


@dataclass(frozen=True)
class Labels:
    boot: str
    root: str
    data: str


def derive_ids(epoch: int, seed: str = "sitzungsbox") -> Ids:
    """Pure: the same epoch and seed give the same ids on every build machine."""
    def h(what: str) -> bytes:
        return hashlib.sha256(f"{seed}:{epoch}:{what}".encode()).digest()

    def u(what: str) -> str:
        return str(uuid.UUID(bytes=h(what)[:16], version=4))

    disk = h("disk")[:4].hex()
    if disk == "00000000":  # 0 means "no id" to the kernel: PARTUUID would not exist
        disk = "00000001"
    return Ids(disk_id=disk, root_uuid=u("root"), data_uuid=u("data"), root_hash_seed=u("root-hash"),
               data_hash_seed=u("data-hash"), fat_serial=h("fat")[:4].hex())


def plan_layout(boot_mib: int, root_mib: int, data_mib: int) -> Layout:
    if boot_mib < 64:
        raise ImageError("Startpartition: mindestens 64 MiB (FAT32)")
    if root_mib < 16 or data_mib < 16:
        raise ImageError("Root- und Datenpartition: mindestens 16 MiB")
    boot = (1, boot_mib)
    root = (boot[0] + boot[1], root_mib)
    data = (root[0] + root[1], data_mib)
    return Layout(boot, root, data)


def sfdisk_script(layout: Layout, ids: Ids) -> str:
    """Pure: the partition table (MBR: 0x0c FAT32 LBA for the firmware, 0x83 Linux for root and data)."""
    per = MIB // SECTOR
    lines = ["label: dos", f"label-id: 0x{ids.disk_id}", "unit: sectors", f"sector-size: {SECTOR}", ""]
    for (start, size), ptype in ((layout.boot, "c"), (layout.root, "83"), (layout.data, "83")):
        lines.append(f"start={start * per}, size={size * per}, type={ptype}")
    return "\n".join(lines) + "\n"


def fstab_labels(fstab: str) -> Labels:
    """Pure: the labels the system mounts (/, the data and the boot partition) from the image's /etc/fstab."""
    found: dict[str, str] = {}
    for line in fstab.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[0].startswith("LABEL="):
            found[fields[1]] = fields[0].removeprefix("LABEL=")
    want = {"/": "root", "/var/lib/sitzungsbox": "data", "/boot/firmware": "boot"}
    missing = [mp for mp in want if mp not in found]
    if missing:
        raise ImageError(f"/etc/fstab des Abbilds nennt kein LABEL= für {', '.join(missing)}")
    labels = Labels(**{name: found[mp] for mp, name in want.items()})
    # FAT stores the label in upper case (mtools, Windows): a lower-case fstab entry would never match.
    if len(labels.boot) > 11 or labels.boot != labels.boot.upper():
        raise ImageError(f"FAT-Bezeichnung {labels.boot!r}: höchstens 11 Zeichen, nur Großbuchstaben")
    for lab in (labels.root, labels.data):
        if not lab or len(lab) > 16:
            raise ImageError(f"ext4-Bezeichnung {lab!r}: 1–16 Zeichen")
    return labels


def _version_key(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in name.replace("-", ".").split(".")]


def find_kernel(firmware: Path) -> tuple[str, str]:
    """The newest vmlinuz-*/initrd.img-* pair in boot/firmware (raspi-firmware copies them there)."""
    kernels = sorted((p.name for p in firmware.glob("vmlinuz-*")), key=_version_key)
    if not kernels:
        raise ImageError(f"kein Kernel (vmlinuz-*) in {firmware}: mit Kernel bauen (ohne --without-kernel, arm64)")
    kernel = kernels[-1]
    initrd = "initrd.img-" + kernel.removeprefix("vmlinuz-")
    if not (firmware / initrd).is_file():
        raise ImageError(f"{initrd} fehlt in {firmware}")
    return kernel, initrd


def config_txt(kernel: str, initrd: str) -> str:
    """Pure: the firmware's configuration, as Debian's raspi-firmware writes it, for a fixed kernel."""
    return ("# Sitzungsbox (image/mkimage.py). The firmware reads this; Linux mounts the partition read-only.\n"
            "# Switch the CPU into ARMv8 (aarch64) mode\n"
            "arm_64bit=1\n"
            "enable_uart=1\n"
            "# Device trees of the Debian kernel (bcm2711-rpi-4-b.dtb, bcm2712-rpi-5-b.dtb …), not the firmware's\n"
            "upstream_kernel=1\n"
            f"kernel={kernel}\n"
            f"initramfs {initrd}\n")


def cmdline_txt(ids: Ids) -> str:
    """Pure: one line. Serial consoles of the Pi 4 (mini UART, ttyS1) and the Pi 5 (debug UART, ttyAMA10); a
    board without one ignores it. The last console= is /dev/console: HDMI (tty0) shows the first-boot setup
    code. net.ifnames=0 keeps the radio's name wlan0 (sitzungsbox-hostapd@wlan0)."""
    return (f"console=ttyS1,115200 console=ttyAMA10,115200 console=tty0 root=PARTUUID={ids.partuuid(2)} "
            "rootfstype=ext4 ro rootwait fsck.repair=yes net.ifnames=0 cma=64M\n")


def tree_bytes(root: Path, skip: Path | None = None) -> int:
    """Bytes a tree needs in ext4 (4 KiB blocks), from file sizes only, so the same tree gives the same size."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip:
            dirnames[:] = []
            continue
        total += 4096
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += -(-st.st_size // 4096) * 4096
    return total


def auto_root_mib(payload: int) -> int:
    """Pure: payload + 15 % (inode tables, metadata, small-file slack) + 96 MiB (journal); nothing reserved
    for root: the root is never written in operation."""
    return -(-(int(payload * 1.15) + 96 * MIB) // MIB)


def run(argv: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if res.returncode != 0:
        raise ImageError(f"{' '.join(argv[:4])} … rc={res.returncode}: {(res.stdout + res.stderr)[-1500:]}")
    return res


def check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise ImageError(f"es fehlen Werkzeuge: apt-get install {' '.join(missing)}")


# --- file systems (each on its own file) -------------------------------------------------------------------

def make_boot(part: Path, mib: int, start_mib: int, firmware: Path, label: str, ids: Ids, env: dict) -> None:
    with open(part, "wb") as fh:
        fh.truncate(mib * MIB)
    sectors = mib * MIB // SECTOR
    # -H: hidden sectors = the partition's offset; the firmware's FAT driver reads the BPB as on a real card.
    run(["mformat", "-i", str(part), "-F", "-v", label, "-N", ids.fat_serial, "-T", str(sectors), "-h", "64",
         "-s", "32", "-H", str(start_mib * MIB // SECTOR), "::"], env=env)
    # Directories and files one by one in sorted order (mcopy -s would follow readdir order).
    for dirpath, dirnames, filenames in os.walk(firmware):
        dirnames.sort()
        rel = Path(dirpath).relative_to(firmware)
        if rel != Path("."):
            run(["mmd", "-i", str(part), f"::/{rel.as_posix()}"], env=env)
        files = [os.path.join(dirpath, n) for n in sorted(filenames)
                 if not (rel == Path(".") and n in GENERATED) and not os.path.islink(os.path.join(dirpath, n))]
        if files:
            dest = "::/" if rel == Path(".") else f"::/{rel.as_posix()}/"
            run(["mcopy", "-i", str(part), "-Q", "-D", "o", *files, dest], env=env)


def put_text(part: Path, name: str, text: str, work: Path, env: dict) -> None:
    src = work / name
    src.write_text(text)
    run(["mcopy", "-i", str(part), "-Q", "-D", "o", str(src), f"::/{name}"], env=env)


def mkfs_ext4(part: Path, mib: int, label: str, fs_uuid: str, hash_seed: str, env: dict,
              tree: Path | None = None, reserved: int = 5) -> None:
    with open(part, "wb") as fh:
        fh.truncate(mib * MIB)
    argv = ["mkfs.ext4", "-q", "-F", "-T", "default", "-L", label, "-U", fs_uuid, "-m", str(reserved),
            "-E", f"root_owner=0:0,hash_seed={hash_seed}"]
    if tree is not None:
        argv += ["-d", str(tree)]
    run([*argv, str(part)], timeout=1800, env=env)


def used_inodes(part: Path, env: dict) -> list[int]:
    """Inodes in use, read from the group descriptors' free-inode ranges (dumpe2fs), reserved ones but the
    root directory left out."""
    out = run(["dumpe2fs", str(part)], env=env).stdout
    per_group = count = 0
    free: set[int] = set()
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Inodes per group:"):
            per_group = int(s.split(":")[1])
        elif s.startswith("Inode count:"):
            count = int(s.split(":")[1])
        elif s.startswith("Free inodes:") and s.removeprefix("Free inodes:").strip():
            for rng in s.removeprefix("Free inodes:").split(","):
                a, _, b = rng.strip().partition("-")
                free.update(range(int(a), int(b or a) + 1))
    if not per_group or not count:
        raise ImageError("dumpe2fs: keine Inode-Angaben")
    return [2, *(i for i in range(11, count + 1) if i not in free)]


def normalise_times(part: Path, tree: Path, epoch: int, env: dict, work: Path) -> None:
    """mkfs.ext4 -d (1.47.0) copies each file's ctime and atime, which no build controls: set them (and any
    mtime newer than SOURCE_DATE_EPOCH, like tar --clamp-mtime) to SOURCE_DATE_EPOCH."""
    cmds = [f"sif <{ino}> {field} @{epoch}" for ino in used_inodes(part, env) for field in ("ctime", "atime")]
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = os.path.join(dirpath, name)
            if os.lstat(path).st_mtime > epoch:
                rel = "/" + os.path.relpath(path, tree)
                if any(c in rel for c in '"\n\\'):
                    raise ImageError(f"Dateiname nicht abbildbar: {rel!r}")
                cmds.append(f'sif "{rel}" mtime @{epoch}')
    if os.lstat(tree).st_mtime > epoch:
        cmds.append(f"sif / mtime @{epoch}")
    script = work / "times.debugfs"
    script.write_text("\n".join(cmds) + "\n")
    res = run(["debugfs", "-w", "-f", str(script), str(part)], timeout=1800, env=env)
    errors = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("debugfs ")]
    if errors:
        raise ImageError("debugfs: " + "; ".join(errors[:5]))


def staged_root(rootfs: Path, work: Path) -> Path:
    """The root tree without the boot partition's files (they would lie hidden under its mount point):
    a hard-linked copy, so nothing is copied and ROOTFS stays untouched."""
    firmware = rootfs / "boot/firmware"
    if not firmware.is_dir() or not any(firmware.iterdir()):
        return rootfs
    stage = work / "root"
    run(["cp", "-al", "--", str(rootfs), str(stage)], timeout=600)
    shutil.rmtree(stage / "boot/firmware")
    (stage / "boot/firmware").mkdir()
    os.utime(stage / "boot/firmware", (os.lstat(firmware).st_atime, os.lstat(firmware).st_mtime))
    os.utime(stage / "boot", (os.lstat(rootfs / "boot").st_atime, os.lstat(rootfs / "boot").st_mtime))
    return stage


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def default_epoch() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    for line in (HERE / "image.conf").read_text().splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "source_date_epoch":
            return int(v.strip())
    raise ImageError("SOURCE_DATE_EPOCH fehlt (weder Umgebung noch image.conf)")


def assemble(rootfs: Path, out: Path, epoch: int | None = None, boot_mib: int = 256, root_mib: int | None = None,
             data_mib: int = 1024, seed: str = "sitzungsbox") -> dict:
    """Build OUT (sparse) and OUT.sha256 from ROOTFS; returns what was made (ids, layout, labels, sha256)."""
    check_tools()
    epoch = default_epoch() if epoch is None else epoch
    rootfs, out = rootfs.resolve(), out.resolve()
    firmware = rootfs / "boot/firmware"
    fstab = rootfs / "etc/fstab"
    if not fstab.is_file():
        raise ImageError(f"{fstab} fehlt: ist {rootfs} ein mit image/build.sh gebautes Root-Dateisystem?")
    labels = fstab_labels(fstab.read_text())
    missing = [f for f in REQUIRED_FIRMWARE if not (firmware / f).is_file()]
    if missing:
        raise ImageError(f"Pi-Firmware fehlt in {firmware}: {', '.join(missing)} (Paket raspi-firmware, arm64)")
    kernel, initrd = find_kernel(firmware)
    ids = derive_ids(epoch, seed)
    if root_mib is None:
        root_mib = auto_root_mib(tree_bytes(rootfs, skip=firmware))
    layout = plan_layout(boot_mib, root_mib, data_mib)
    # Fixed times for mtools and e2fsprogs (E2FSPROGS_FAKE_TIME: creation/write times of the file system).
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "E2FSPROGS_FAKE_TIME": str(epoch), "LC_ALL": "C",
           "MTOOLS_SKIP_CHECK": "1"}
    env.pop("MTOOLSRC", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Work files next to the output: the partitions are as big as the image (and rootfs must be on the same
    # file system for the hard-linked copy; cp -al fails loudly otherwise).
    work = Path(tempfile.mkdtemp(prefix=".mkimage-", dir=rootfs.parent))
    try:
        boot, root, data = work / "boot.part", work / "root.part", work / "data.part"
        make_boot(boot, layout.boot[1], layout.boot[0], firmware, labels.boot, ids, env)
        put_text(boot, "config.txt", config_txt(kernel, initrd), work, env)
        put_text(boot, "cmdline.txt", cmdline_txt(ids), work, env)
        tree = staged_root(rootfs, work)
        # -m 0: the root is read-only in operation, reserved blocks would be wasted.
        mkfs_ext4(root, layout.root[1], labels.root, ids.root_uuid, ids.root_hash_seed, env, tree=tree, reserved=0)
        normalise_times(root, tree, epoch, env, work)
        mkfs_ext4(data, layout.data[1], labels.data, ids.data_uuid, ids.data_hash_seed, env)
        tmp = out.with_name(out.name + ".part")
        with open(tmp, "wb") as fh:
            fh.truncate(layout.total_mib * MIB)
        run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(tmp)], input=sfdisk_script(layout, ids), env=env)
        for part, (start, _size) in ((boot, layout.boot), (root, layout.root), (data, layout.data)):
            # conv=sparse: the zero blocks stay holes, the image takes only what the file systems use.
            run(["dd", f"if={part}", f"of={tmp}", "bs=1M", f"seek={start}", "conv=notrunc,sparse", "status=none"],
                timeout=1800)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        out.with_name(out.name + ".part").unlink(missing_ok=True)
    digest = sha256_file(out)
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    return {"image": out, "sha256": digest, "ids": ids, "layout": layout, "labels": labels, "kernel": kernel,
            "initrd": initrd}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="image/mkimage.py", description="Sitzungsbox-Kartenabbild (.img) zusammensetzen")
    p.add_argument("rootfs", type=Path, help="Root-Dateisystem von image/build.sh (DIR/rootfs)")
    p.add_argument("out", type=Path, help="Abbild, z. B. sitzungsbox.img (daneben sitzungsbox.img.sha256)")
    p.add_argument("--boot-size", type=int, default=256, metavar="MiB")
    p.add_argument("--root-size", type=int, default=None, metavar="MiB", help="Standard: aus der Größe des Baums")
    p.add_argument("--data-size", type=int, default=1024, metavar="MiB")
    p.add_argument("--id-seed", default="sitzungsbox", help="Grundlage der UUIDs (mit SOURCE_DATE_EPOCH)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        # mkfs.ext4 -d reads every file of the root, root-only ones (/etc/shadow) too.
        print("Das Abbild wird als root zusammengesetzt (Eigentümer im Root-Dateisystem).", file=sys.stderr)
        return 2
    try:
        made = assemble(args.rootfs, args.out, None, args.boot_size, args.root_size, args.data_size, args.id_seed)
    except (ImageError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 1
    lay = made["layout"]
    print(f"{made['image']}: {lay.total_mib} MiB (Start {lay.boot[1]}, Root {lay.root[1]}, Daten {lay.data[1]} MiB), "
          f"root=PARTUUID={made['ids'].partuuid(2)}, sha256 {made['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
