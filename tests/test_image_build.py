"""The image definition: pure parts (cache key, pins, binfmt registration) and the arm64 build through
qemu-user with binfmt_misc, which must leave the host's binfmt_misc exactly as it was.

The native build and boot are in tests/test_image_boot.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, need_binary, need_root

sys.path.insert(0, str(ROOT / "image"))
import binfmt  # noqa: E402
import build  # noqa: E402


def test_cache_key_follows_the_package_list():
    conf = build.read_conf()
    pkgs = build.package_list("arm64")
    assert "linux-image-arm64" in pkgs and "raspi-firmware" in pkgs and "dnsmasq-base" in pkgs
    assert "linux-image-arm64" not in build.package_list("amd64")
    key = build.cache_key("arm64", conf, pkgs)
    assert key == build.cache_key("arm64", conf, list(reversed(pkgs)))  # order does not matter
    assert key != build.cache_key("arm64", conf, [*pkgs, "vim"])
    assert key != build.cache_key("amd64", conf, pkgs)
    assert conf["suite"] == "bookworm" and "non-free-firmware" in conf["components"]
    assert int(conf["source_date_epoch"]) > 0


def test_requirements_are_pinned_to_what_the_tests_ran_with():
    pins = {}
    for line in (ROOT / "image/requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"nicht gepinnt: {line}"
            pins[name] = version
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name
    # Every runtime dependency of the app is pinned (netifaces comes from Debian, see requirements.txt).
    from packaging.requirements import Requirement

    for req in importlib.metadata.requires("sitzungsbox") or []:
        r = Requirement(req)
        if r.marker is None or r.marker.evaluate({"extra": ""}):
            assert r.name.lower() in pins or r.name == "netifaces", r.name
    assert "python3-netifaces" in build.package_list("amd64")


def test_binfmt_registration_line():
    line = binfmt.registration("sbi-qemu-arm64", "arm64", "/usr/bin/qemu-aarch64-static")
    assert line.startswith(":sbi-qemu-arm64:M::\\x7fELF\\x02") and line.endswith(":/usr/bin/qemu-aarch64-static:F")
    assert "\\xb7\\x00" in line  # EM_AARCH64


def _binfmt_state() -> tuple[bool, list[str]]:
    mounted = os.path.ismount(binfmt.BINFMT)
    return mounted, sorted(p.name for p in binfmt.BINFMT.iterdir()) if mounted else []


def _elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    return int.from_bytes(head[18:20], "little")


@pytest.fixture(scope="module")
def arm64_build():
    need_root()
    need_binary("debootstrap", "systemd-nspawn")
    need(Path(build.QEMU["arm64"]).exists(), "needs qemu-user-static")
    work = Path(tempfile.mkdtemp(prefix="sbi-arm64-", dir="/var/tmp"))
    before = _binfmt_state()
    try:
        # Without the kernel: its initramfs is built twice under qemu (~10 min); `image/build.sh --arch arm64`
        # (see image/README.md) builds the full Pi root with it.
        res = subprocess.run([str(ROOT / "image/build.sh"), "--arch", "arm64", "--out", str(work), "--without-kernel"],
                             capture_output=True, text=True, timeout=1800)
        yield work, res, before
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_arm64_root_file_system_builds_through_qemu_user(arm64_build):
    work, res, _before = arm64_build
    assert res.returncode == 0, res.stderr[-3000:]
    rootfs = work / "rootfs"
    assert _elf_machine(rootfs / "usr/bin/dash") == 0xB7  # EM_AARCH64: really an arm64 system
    sbom = (work / "sbom.txt").read_text()
    for pkg in ("systemd\t", "dnsmasq-base\t", "hostapd\t", "python3-netifaces\t"):
        assert pkg in sbom, pkg
    assert "\tarm64\n" in sbom and "gevent==" in sbom and "sitzungsbox==0.1.0" in sbom
    # The venv's compiled wheels are the aarch64 ones.
    greenlet = next((rootfs / "opt/sitzungsbox/lib/python3.11/site-packages/greenlet").glob("_greenlet*.so"))
    assert _elf_machine(greenlet) == 0xB7
    assert (rootfs / "etc/systemd/system/sitzungsbox.target.wants/sitzungsbox-hostapd@wlan0.service").is_symlink()
    assert "data=journal" in (rootfs / "etc/fstab").read_text()


def test_arm64_build_leaves_binfmt_misc_as_it_was(arm64_build):
    _work, _res, before = arm64_build
    assert _binfmt_state() == before
