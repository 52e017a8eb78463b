"""The card image boots in QEMU's Raspberry Pi 4 (image/qemu_boot.py, `make image-boot`).

What a Pi 4 does with the card, short of its firmware: Debian's kernel, initramfs and device tree off the FAT
partition, the root found by PARTUUID and mounted read-only, the data partition grown to the (bigger) SD
card and mounted with data=journal, the units started, the first-boot setup code on the console. Then the
plug is pulled and the box boots again: same code (it lives on the data partition), nothing to grow.

The image: $SBX_IMAGE, which `make image-boot` sets after building the card (`make image`; ~20 min the first
time, ~1 min from the cache). Without it the boot is skipped, loudly: two emulated boots take ~15 min, too
long for `make test` (the pure parts above always run).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_root

sys.path.insert(0, str(ROOT / "image"))
import qemu_boot  # noqa: E402

MIB = 1024 * 1024
CODE = r"Einrichtungscode:? ([0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4})"


# --- pure -----------------------------------------------------------------------------------------------------

def test_config_txt_is_read_as_the_pi4_firmware_reads_it():
    text = ("# c\narm_64bit=1\nkernel=vmlinuz-7.3.4+deb13-arm64\ninitramfs initrd.img-7.3.4+deb13-arm64 followkernel\n"
            "[pi5]\nkernel=kernel_2712.img\n[pi4]\ndtoverlay=x # comment\n[all]\nenable_uart=1\n")
    cfg = qemu_boot.parse_config_txt(text)
    assert cfg["kernel"] == "vmlinuz-7.3.4+deb13-arm64"  # [pi5] is not the Pi 4's
    assert cfg["initramfs"] == "initrd.img-7.3.4+deb13-arm64" and cfg["dtoverlay"] == "x"
    assert qemu_boot.parse_config_txt(text, board="pi5")["kernel"] == "kernel_2712.img"


def test_emulator_cmdline_has_only_the_serial_console():
    card = ("console=ttyS1,115200 console=ttyAMA10,115200 console=tty0 root=PARTUUID=ab-02 rootfstype=ext4 ro "
            "rootwait net.ifnames=0")
    out = qemu_boot.emulator_cmdline(card).split()
    assert [a for a in out if a.startswith("console=")] == ["console=ttyAMA0,115200"]
    assert out[1:-1] == card.split()[3:]  # everything else as on the card
    assert out[-1] == "systemd.journald.forward_to_console=1"


def test_nodes_are_found_by_compatible_with_their_full_path():
    dts = """/dts-v1/;
/ {
	compatible = "raspberrypi,4-model-b\\0brcm,bcm2711";
	soc {
		interrupt-controller@7ef00100 {
			compatible = "brcm,bcm2711-l2-intc\\0brcm,l2-intc";
		};
		i2c@7ef04500 {
			compatible = "brcm,brcmstb-i2c";
			status = "okay";
		};
		serial@7e201000 {
			compatible = "arm,pl011\\0arm,primecell";
		};
	};
};
"""
    assert qemu_boot.nodes_with_compatible(dts, qemu_boot.QEMU_MISSING) == [
        "/soc/interrupt-controller@7ef00100", "/soc/i2c@7ef04500"]
    assert qemu_boot.nodes_with_compatible(dts, ("arm,primecell",)) == ["/soc/serial@7e201000"]
    assert qemu_boot.nodes_with_compatible(dts, ("brcm,l2",)) == []  # whole names, not substrings


def test_sd_size_is_the_next_power_of_two():
    assert qemu_boot.sd_size(2 * 1024**3) == 2 * 1024**3
    assert qemu_boot.sd_size(2 * 1024**3 + 1) == 4 * 1024**3
    assert qemu_boot.sd_size(2605 * MIB) == 4096 * MIB


# --- the boot -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def card():
    given = os.environ.get("SBX_IMAGE")
    if not given:
        pytest.skip("QEMU-Start des Kartenabbilds nur mit `make image-boot` (baut das Abbild, dann zwei Starts "
                    "unter Emulation, ~15 min: zu lang für `make test`)")
    need_root()
    if not qemu_boot.has_raspi4b():
        pytest.skip("QEMU >= 9.0 mit raspi4b, qemu-img und fdtput fehlen: `make deps-qemu` (bookworm-backports)")
    return Path(given)


@pytest.mark.timeout(3600)
def test_card_boots_in_a_pi4_grows_its_data_and_survives_a_power_cut(card, tmp_path):
    box = qemu_boot.QemuBox(card, tmp_path)
    kernel = qemu_boot.parse_config_txt(box.files["config"].read_text())["kernel"]
    version = kernel.removeprefix("vmlinuz-")
    # The device tree is the card's own, with only what QEMU lacks switched off.
    assert set(box.disabled) >= {"/soc/interrupt-controller@7ef00100"}
    try:
        box.start()
        code = box.wait_for(CODE, 1200).group(1)
        for unit in ("helper", "web", "daemon", "monitor"):
            box.wait_for(rf"Started sitzungsbox-{unit}\.service", 600)
        box.wait_for(r"Die Schnittstelle wlan0 ist nach", 600)
        first = box.console()
    finally:
        box.power_cut()  # the plug, mid-operation: no shutdown, nothing flushed
    assert f"Linux version {version} " in first
    assert "Machine model: Raspberry Pi 4 Model B" in first
    # Root by PARTUUID from cmdline.txt, read-only; data partition read-write with journalled data.
    assert re.search(r"EXT4-fs \(mmcblk\dp2\): mounted filesystem [0-9a-f-]+ ro ", first), first[-3000:]
    assert re.search(r"EXT4-fs \(mmcblk\dp3\): mounted filesystem [0-9a-f-]+ r/w with journalled data mode", first)
    # The data partition reaches the end of the (power-of-two) SD card, and was grown before it was mounted.
    grown = re.search(r"Datenpartition vergrößert: (\d+) → (\d+) MiB", first)
    assert grown, first[-3000:]
    sd_mib = qemu_boot.sd_size(card.stat().st_size) // MIB
    data_start_mib = card.stat().st_size // MIB - int(grown.group(1))
    assert int(grown.group(2)) == sd_mib - data_start_mib
    assert first.index("Datenpartition vergrößert") < first.index("Mounted var-lib-sitzungsbox.mount")
    # The services start after the data partition, the helper before the web (its socket).
    mounted = first.index("Mounted var-lib-sitzungsbox.mount")
    for unit in ("sitzungsbox-helper", "sitzungsbox-web", "sitzungsbox-daemon", "sitzungsbox-monitor"):
        started = re.search(rf"Started {unit}\.service", first)
        assert started and started.start() > mounted, unit
    assert first.index("Started sitzungsbox-helper.service") < first.index("Started sitzungsbox-web.service")
    # QEMU's Pi 4 has no radio (its SD controller carries the card): netconf waits for wlan0, then says so.
    assert "Die Schnittstelle wlan0 ist nach 60 s nicht da" in first

    box.start()  # the same card after the power cut
    try:
        again = box.wait_for(CODE, 1200).group(1)
        box.wait_for(r"Started sitzungsbox-web\.service", 600)
        second = box.console()
    finally:
        box.power_cut()
    assert again == code  # kept on the data partition through the power cut
    assert "Datenpartition reicht bis zum Ende der Karte." in second
    assert "Started sitzungsbox-web.service" in second
