"""The image definition: pure parts (cache key, pins, binfmt registration) and the arm64 build through
qemu-user with binfmt_misc, which must leave the host's binfmt_misc exactly as it was.

The native build and boot are in tests/test_image_boot.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.conftest import ROOT, need, need_binary, need_root

sys.path.insert(0, str(ROOT / "image"))
import binfmt  # noqa: E402
import build  # noqa: E402
import requirements  # noqa: E402


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


def test_kernel_comes_from_kernel_suite_and_nothing_else_does():
    conf = build.read_conf()
    assert conf["kernel_suite"] == "trixie-backports" and build.kernel_packages("arm64", conf) == ["linux-image-arm64"]
    assert build.kernel_packages("amd64", conf) == []  # the native (container) image has no board layer
    pin = build.kernel_pin(conf)
    # Everything from kernel_suite is refused (-1) except the kernel's own packages (990 beats bookworm's 500).
    blocks = [b for b in pin.split("\n\n") if "Pin:" in b]
    assert [("Package: *" in b, b.split("Pin-Priority: ")[1].strip()) for b in blocks] == [(True, "-1"),
                                                                                          (False, "990")]
    import re

    rx = re.compile(blocks[1].split("Package: /")[1].split("/")[0])
    for name in ("linux-image-arm64", "linux-image-7.3.4+deb13-arm64", "linux-base", "linux-base-7.3.4+deb13-arm64",
                 "linux-binary-7.3.4+deb13-arm64", "linux-modules-arm64"):
        assert rx.search(name), name
    for name in ("linux-libc-dev", "libc6", "systemd", "linux-perf", "linuxlogo"):
        assert not rx.search(name), name
    assert build.apt_sources(conf) == ("deb http://deb.debian.org/debian bookworm main non-free-firmware\n"
                                       "deb http://deb.debian.org/debian trixie-backports main\n")


def test_board_cache_key_and_name():
    conf = build.read_conf()
    key = build.board_key("b" * 16, "arm64", conf)
    assert key != build.board_key("c" * 16, "arm64", conf)  # a new base is a new board
    assert key != build.board_key("b" * 16, "arm64", {**conf, "kernel_suite": "bookworm-backports"})
    assert build.cached_root("arm64").name.startswith("board-arm64-bookworm-")
    assert build.cached_root("amd64").name.startswith("base-amd64-bookworm-")


def test_boot_files_for_pi4_and_pi5(tmp_path):
    """populate_boot on a tree laid out as Linux 7.3's packages lay it out (dtbs under /usr/lib/modules)."""
    ver = "7.3.4+deb13-arm64"
    mods = tmp_path / "usr/lib/modules" / ver
    (mods / "dtb/broadcom").mkdir(parents=True)
    (mods / "modules.order").write_text("")
    (mods / "vmlinuz").write_bytes(b"ARMd kernel")
    (tmp_path / "boot").mkdir()
    (tmp_path / f"boot/initrd.img-{ver}").write_bytes(b"initrd")
    for name in ("bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2712-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb",
                 "bcm2837-rpi-3-b.dtb"):
        (mods / "dtb/broadcom" / name).write_bytes(name.encode())
    fw = tmp_path / "boot/firmware"
    fw.mkdir()
    (fw / "vmlinuz-6.1.0-50-arm64").write_bytes(b"old")  # an older kernel's files leave the card
    (fw / "bcm2711-rpi-4-b.dtb").write_bytes(b"old")
    placed = build.populate_boot(tmp_path)
    assert (fw / f"vmlinuz-{ver}").read_bytes() == b"ARMd kernel" and not (fw / "vmlinuz-6.1.0-50-arm64").exists()
    assert (fw / f"initrd.img-{ver}").read_bytes() == b"initrd"
    assert (fw / "bcm2711-rpi-4-b.dtb").read_bytes() == b"bcm2711-rpi-4-b.dtb"
    # The D0 Pi 5 under Raspberry Pi's name too; the Pi 3's tree is not put on (not a supported board).
    assert (fw / "bcm2712d0-rpi-5-b.dtb").read_bytes() == b"bcm2712-d-rpi-5-b.dtb"
    assert not (fw / "bcm2837-rpi-3-b.dtb").exists() and "bcm2711-rpi-cm4-io.dtb" not in placed
    (mods / "dtb/broadcom/bcm2712-rpi-5-b.dtb").unlink()
    with pytest.raises(build.BuildError, match="bcm2712-rpi-5-b.dtb"):
        build.populate_boot(tmp_path)


# The image's target: what pip downloads for (build.PIP_PLATFORMS, CPython 3.11) evaluates markers as this.
ARM64_311 = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64", "os_name": "posix",
             "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
             "platform_python_implementation": "CPython", "extra": ""}


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def _files(pkg: dict) -> list[dict]:
    return [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]


def test_lock_satisfies_pyproject_and_has_hashes():
    """uv.lock, not the installed venv, is the truth: every requirement of pyproject.toml (runtime and the test
    extra) is locked at a version its specifier admits, and every locked file has a hash."""
    lock = requirements.read_lock()
    for req in _pyproject_requirements():
        name = canonicalize_name(req.name)
        assert name in lock, f"{name} fehlt in uv.lock (make lock)"
        assert req.specifier.contains(lock[name]["version"], prereleases=True), (str(req), lock[name]["version"])
    for name, pkg in lock.items():
        if name == requirements.PROJECT:
            assert pkg["source"] == {"editable": "."}
            continue
        assert "registry" in pkg["source"], name  # from PyPI, no URL or path dependencies
        files = _files(pkg)
        assert files and all(f["hash"].startswith("sha256:") for f in files), name


def test_uv_bootstrapped_by_make_is_the_locked_uv():
    make_pin = next(ln.split(":=")[1].strip() for ln in (ROOT / "Makefile").read_text().splitlines()
                    if ln.startswith("UV_VERSION :="))
    assert [str(r.specifier) for r in _pyproject_requirements() if r.name == "uv"] == [f"=={make_pin}"]
    assert requirements.read_lock()["uv"]["version"] == make_pin


def test_lock_is_current():
    """pyproject.toml and uv.lock agree (`uv lock --check`, offline: no resolving, no network)."""
    res = subprocess.run([requirements.uv_binary(), "lock", "--check", "--offline", "--python", sys.executable],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    assert res.returncode == 0, res.stderr


def test_image_requirements_are_the_runtime_part_of_the_lock():
    text = (ROOT / "image/requirements.txt").read_text()
    assert text == requirements.from_lock(), "image/requirements.txt ist nicht aus uv.lock abgeleitet: make lock"
    lock = requirements.read_lock()
    pins = requirements.parse_requirements(text)
    # Exactly what the app needs at run time on the Pi, from the lock: netifaces from Debian, nothing of the tests.
    runtime = requirements.runtime_closure(lock, ARM64_311)
    assert set(pins) == runtime - set(requirements.FROM_DEBIAN)
    assert "netifaces" in runtime and not {"pytest", "ruff", "uv", "playwright"} & set(pins)
    assert "python3-netifaces" in build.package_list("amd64")
    plats = build.PIP_PLATFORMS["arm64"]
    tags = {*cpython_tags((3, 11), ["cp311", "abi3", "none"], plats), *compatible_tags((3, 11), "cp311", plats)}
    for name, (version, hashes) in pins.items():
        pkg = lock[name]
        assert version == pkg["version"], name
        assert hashes and hashes <= {f["hash"] for f in _files(pkg)}, name
        # pip downloads --only-binary for the Pi: a wheel for aarch64 and CPython 3.11 must be locked.
        wheels = [w["url"].rsplit("/", 1)[1] for w in pkg.get("wheels", [])]
        assert any(parse_wheel_filename(w)[3] & tags for w in wheels), f"kein Wheel für arm64/cp311: {name}"


def test_image_downloads_and_installs_with_hashes_checked():
    argv = build.download_argv("arm64", ROOT / "image/requirements.txt", Path("/x"))
    assert "--require-hashes" in argv and "--only-binary=:all:" in argv
    assert argv[argv.index("-r") + 1] == str(ROOT / "image/requirements.txt")
    locked, project = build.install_argvs("/w", "/w/requirements.txt")
    assert "--require-hashes" in locked and locked[-2:] == ["-r", "/w/requirements.txt"] and "--no-index" in locked
    assert project[-1] == "sitzungsbox" and "--no-index" in project


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
