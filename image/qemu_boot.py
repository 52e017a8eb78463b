"""Boot a Sitzungsbox card image in QEMU's Raspberry Pi 4 (`qemu-system-aarch64 -M raspi4b`, QEMU >= 9.0).

    image/qemu_boot.py sitzungsbox.img [--timeout 900] [--log FILE]

Done as the Pi's firmware does it, from the card itself: config.txt names the kernel and the initramfs,
cmdline.txt the command line, bcm2711-rpi-4-b.dtb the board; all are read off the FAT partition with mtools.
Where this differs from a real Pi 4, it is because QEMU's model lacks the hardware, not the image:
- Device-tree nodes QEMU does not model are disabled in a copy of the tree (the Pi's firmware edits the
  tree before the kernel runs, too): see QEMU_MISSING. QEMU itself disables PCIe (so USB), GENET Ethernet,
  the RNG and the thermal sensor: the emulated box has no network.
- No screen: one serial port is the only console on the command line, so /dev/console (systemd's status
  lines, the first-boot setup code) is that port, which stands in for HDMI here. It is the PL011 (the Pi's
  Bluetooth UART, freed by disabling the Bluetooth node), because QEMU's mini UART can hang the boot.
- The card is a qcow2 overlay on the image: QEMU wants an SD card whose size is a power of two, and the
  image itself stays untouched. cache=writethrough: a card keeps what it acknowledged, and the power-cut
  check relies on that; with QEMU's default the overlay's own tables stay in QEMU's memory (the SD
  protocol has no flush to push them out) and a killed QEMU loses writes no real card would.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

QEMU = "qemu-system-aarch64"
BOARD_DTB = "bcm2711-rpi-4-b.dtb"
# compatible strings of device-tree nodes QEMU 10's raspi4b does not model; the kernel would take a
# synchronous external abort probing them (found one by one, each a panic at boot).
QEMU_MISSING = (
    "brcm,bcm2711-l2-intc",  # HDMI's interrupt controller (the tree also says brcm,l2-intc)
    "brcm,brcmstb-i2c",  # HDMI DDC I²C
    "brcm,bcm2711-hdmi-i2c",
    "brcm,brcm2711-dvp",  # HDMI's clock gates (read by clk_disable_unused)
    "brcm,bcm43438-bt",  # the Bluetooth chip on the PL011: frees that UART for the console (see emulator_cmdline)
)
# Properties QEMU's model cannot satisfy. QEMU puts the SD card on the SoC's second SD controller (on a real
# Pi 4 the Wi-Fi's SDIO; the card sits on emmc2), and that controller waits for the Wi-Fi's power sequence,
# which waits for the firmware's reset controller, which QEMU does not provide: the root would never appear.
# On the card the tree stays as it is.
QEMU_DROP = {"brcm,bcm2835-sdhci": ("mmc-pwrseq",)}
TOOLS = {QEMU: "qemu-system-arm (bookworm-backports)", "qemu-img": "qemu-utils", "mcopy": "mtools",
         "sfdisk": "fdisk", "dtc": "device-tree-compiler", "fdtput": "device-tree-compiler"}


class QemuError(RuntimeError):
    pass


# --- pure ---------------------------------------------------------------------------------------------------

def parse_config_txt(text: str, board: str = "pi4") -> dict[str, str]:
    """The kernel and initramfs the firmware of BOARD loads: lines under [all] and [BOARD], later ones win."""
    out: dict[str, str] = {}
    section = "all"
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section not in ("all", board):
            continue
        if line.startswith("initramfs "):
            out["initramfs"] = line.split()[1]
        elif "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def emulator_cmdline(cmdline: str, serial: str = "ttyAMA0,115200") -> str:
    """The card's command line with one serial console (it becomes /dev/console: QEMU has no screen). The
    PL011, not the mini UART (ttyS1) the card names: QEMU's mini UART sometimes storms with interrupts when
    /dev/console is opened, and the boot hangs in request_irq (seen in about half the boots)."""
    args = [a for a in cmdline.split() if not a.startswith("console=")]
    # The journal on that console too: with no screen and no login, the units' own lines are what one reads.
    return " ".join([f"console={serial}", *args, "systemd.journald.forward_to_console=1"])


def nodes_with_compatible(dts: str, compatibles: tuple[str, ...]) -> list[str]:
    """Paths of the nodes in a decompiled tree (dtc -O dts) whose compatible names one of COMPATIBLES."""
    stack: list[str] = []
    found: list[str] = []
    for line in dts.splitlines():
        opened = re.match(r"\s*([\w@,.+-]+|/) \{", line)
        if opened:
            stack.append(opened.group(1))
            continue
        if re.match(r"\s*\};", line):
            if stack:
                stack.pop()
            continue
        m = re.match(r'\s*compatible = (.*);', line)
        if m and stack:
            names = re.findall(r'"([^"]*)"', m.group(1).replace("\\0", '" "'))
            if any(c in names for c in compatibles):
                path = "/" + "/".join(stack[1:])
                if path not in found:
                    found.append(path)
    return found


def sd_size(nbytes: int) -> int:
    """QEMU's SD card: a power of two, at least the image."""
    size = 1
    while size < nbytes:
        size <<= 1
    return size


# --- the card -----------------------------------------------------------------------------------------------

def run(argv: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, **kw)
    if res.returncode != 0:
        err = (res.stdout + res.stderr).decode(errors="replace") if isinstance(res.stdout, bytes) else res.stderr
        raise QemuError(f"{' '.join(argv[:3])} … rc={res.returncode}: {err[-1500:]}")
    return res


def check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise QemuError(f"es fehlen: {', '.join(missing)}")
    machines = run([QEMU, "-M", "help"], text=True).stdout
    if not re.search(r"^raspi4b\s", machines, re.M):
        raise QemuError(f"{QEMU} kennt keinen raspi4b (QEMU >= 9.0 nötig: qemu-system-arm aus bookworm-backports)")


def has_raspi4b() -> bool:
    try:
        check_tools()
    except (QemuError, OSError, subprocess.TimeoutExpired):
        return False
    return True


def boot_partition_offset(img: Path) -> int:
    table = json.loads(run(["sfdisk", "--json", str(img)], text=True).stdout)["partitiontable"]
    return table["partitions"][0]["start"] * 512


def read_boot_files(img: Path, work: Path) -> dict[str, Path]:
    """config.txt, cmdline.txt and what config.txt names (kernel, initramfs), plus the Pi 4's tree."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    part = f"{img}@@{boot_partition_offset(img)}"

    def get(name: str) -> Path:
        dest = work / name
        run(["mcopy", "-i", part, "-n", f"::/{name}", str(dest)], env=env, timeout=300)
        return dest

    config = parse_config_txt(get("config.txt").read_text())
    if "kernel" not in config or "initramfs" not in config:
        raise QemuError("config.txt nennt keinen kernel= oder initramfs")
    return {"config": work / "config.txt", "cmdline": get("cmdline.txt"), "kernel": get(config["kernel"]),
            "initrd": get(config["initramfs"]), "dtb": get(BOARD_DTB)}


def emulator_dtb(dtb: Path, dest: Path) -> list[str]:
    """A copy of the board's tree with QEMU_MISSING disabled and QEMU_DROP removed; returns what changed."""
    shutil.copyfile(dtb, dest)
    dts = run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)], text=True).stdout
    changed = []
    for path in nodes_with_compatible(dts, QEMU_MISSING):
        run(["fdtput", "-t", "s", str(dest), path, "status", "disabled"])
        changed.append(path)
    for compatible, props in QEMU_DROP.items():
        for path in nodes_with_compatible(dts, (compatible,)):
            for prop in props:
                res = subprocess.run(["fdtput", "-d", str(dest), path, prop], capture_output=True, timeout=30,
                                     check=False)
                if res.returncode == 0:
                    changed.append(f"{path}:{prop}")
    return changed


def make_overlay(img: Path, dest: Path) -> Path:
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(img.resolve()), "-F", "raw", str(dest),
         str(sd_size(img.stat().st_size))])
    return dest


class QemuBox:
    """One emulated Pi 4 booting the card (an overlay on it); the serial console is collected line by line."""

    def __init__(self, img: Path, work: Path, memory: str = "2G", log: Path | None = None) -> None:
        check_tools()
        self.work = work
        self.files = read_boot_files(img, work)
        self.disabled = emulator_dtb(self.files["dtb"], work / "emulator.dtb")
        self.card = make_overlay(img, work / "card.qcow2")
        self.cmdline = emulator_cmdline(self.files["cmdline"].read_text().strip())
        self.memory = memory
        self.log = log  # every console line as it comes (for a boot that hangs, the log says where)
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def argv(self) -> list[str]:
        # Serial 0 is the PL011 (ttyAMA0, the console here), serial 1 the mini UART.
        return [QEMU, "-M", "raspi4b", "-m", self.memory, "-kernel", str(self.files["kernel"]),
                "-initrd", str(self.files["initrd"]), "-dtb", str(self.work / "emulator.dtb"),
                "-append", self.cmdline, "-drive", f"file={self.card},if=sd,format=qcow2,cache=writethrough",
                "-display", "none", "-monitor", "none", "-serial", "stdio", "-serial", "null", "-no-reboot"]

    def start(self) -> None:
        with self._cond:
            self.lines = []
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        log = open(self.log, "a", encoding="utf-8") if self.log else None  # noqa: SIM115 - closed below
        try:
            for raw in proc.stdout:
                line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode(errors="replace")).rstrip("\r\n")
                if log:
                    log.write(line + "\n")
                    log.flush()
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        finally:
            if log:
                log.close()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first console line matching PATTERN; QemuError with the console's tail at the deadline."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if m := rx.search(line):
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None and seen == len(self.lines)):
                    tail = "\n".join(self.lines[-40:])
                    raise QemuError(f"nicht gesehen: {pattern!r}\n--- Konsole (Ende) ---\n{tail}")
                self._cond.wait(min(left, 1.0))

    def console(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def power_cut(self) -> None:
        """Pull the plug: SIGKILL, nothing is flushed or shut down."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="image/qemu_boot.py", description="Kartenabbild im QEMU-Raspberry-Pi-4 starten")
    p.add_argument("image", type=Path)
    p.add_argument("--timeout", type=float, default=900, help="Sekunden bis zur Anmeldeaufforderung")
    p.add_argument("--log", type=Path, help="die serielle Konsole hierhin schreiben")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sbx-qemu-", dir="/var/tmp"))
    box = None
    try:
        if args.log:
            args.log.write_text("")
        box = QemuBox(args.image, work, log=args.log)
        box.start()
        box.wait_for(r"^\S+ login: ", args.timeout)
        print(f"Anmeldeaufforderung erreicht; für QEMU geändert: {', '.join(box.disabled)}")
        return 0
    except (QemuError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 1
    finally:
        if box is not None:
            box.power_cut()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
