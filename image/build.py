"""Build the Sitzungsbox root file system from Debian bookworm packages (see image/README.md).

    image/build.sh --arch amd64|arm64 --out DIR [--cache DIR] [--external-ap] [--no-app]

Steps, each a plain tool with an argv list and a timeout:
1. base: `debootstrap --variant=minbase` with packages.txt; for a foreign arch `--foreign`, then the second
   stage under qemu-user (binfmt_misc, see binfmt.py). The result is cached as a tarball under
   /var/cache/sitzungsbox-image keyed by arch, suite, mirror and the package list, so a repeated build
   unpacks it in seconds; an empty cache builds it from scratch.
   board (arm64, the Pi): packages-arm64.txt and the kernel from image.conf's kernel_suite, installed with
   apt inside the base (pinned: only linux-* from that suite), then kernel, initrd and the Pi 4/5 device
   trees put into /boot/firmware. Cached the same way, keyed by the base's key and the board's lists.
2. app: a virtual environment in /opt/sitzungsbox from the project's wheel and the wheels of requirements.txt
   (the runtime part of uv.lock with hashes; downloaded for the target platform, hash-checked, cached), linked
   as /usr/bin/sitzungsbox.
3. system: the units, sysusers.d, tmpfiles.d, sysctl.d, the first-boot unit, fstab for the read-only root
   and the data partition, volatile journal, hostname; units enabled; Debian's own hostapd/dnsmasq masked.
4. SBOM (Debian packages and Python wheels with versions) in DIR/sbom.txt.

Reproducibility: SOURCE_DATE_EPOCH (default: the snapshot date in image.conf) sets every mtime we write and
the tarball's; package versions are recorded in the SBOM and the cache key.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CACHE = Path("/var/cache/sitzungsbox-image")
NATIVE = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
PIP_PLATFORMS = {
    "amd64": ["manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
              "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux_2_12_x86_64", "manylinux1_x86_64",
              "manylinux_2_5_x86_64"],
    "arm64": ["manylinux_2_36_aarch64", "manylinux_2_28_aarch64", "manylinux_2_24_aarch64", "manylinux_2_17_aarch64",
              "manylinux2014_aarch64"],
}
QEMU = {"arm64": "/usr/bin/qemu-aarch64-static"}


class BuildError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[image] {msg}", file=sys.stderr, flush=True)


def read_conf(path: Path = HERE / "image.conf") -> dict[str, str]:
    conf = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            conf[k.strip()] = v.strip()
    return conf


def _list_file(f: Path) -> list[str]:
    if not f.exists():
        return []
    return [ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def package_list(arch: str, with_kernel: bool = True) -> list[str]:
    """Every Debian package the image names (base and board), the kernel packages included."""
    pkgs = _list_file(HERE / "packages.txt")
    if with_kernel:
        pkgs += board_packages(arch)
        pkgs += kernel_packages(arch, read_conf())
    return pkgs


def board_packages(arch: str) -> list[str]:
    """The board layer's bookworm packages (packages-<arch>.txt; none for amd64)."""
    return _list_file(HERE / f"packages-{arch}.txt")


def kernel_packages(arch: str, conf: dict[str, str]) -> list[str]:
    """Kernel packages taken from conf['kernel_suite']: only for an arch with a board layer."""
    if not board_packages(arch):
        return []
    return conf.get("kernel_packages", "").split()


# Only the kernel comes from kernel_suite: apt would otherwise take anything newer from it.
KERNEL_PIN = r"""# Sitzungsbox (image/build.py): from {suite} only the kernel, everything else from {base}.
Package: *
Pin: release n={suite}
Pin-Priority: -1

Package: /^linux-(base|image|binary|modules)(-|$)/
Pin: release n={suite}
Pin-Priority: 990
"""


def kernel_pin(conf: dict[str, str]) -> str:
    """Pure: the apt preferences that let only linux-* come from kernel_suite."""
    return KERNEL_PIN.format(suite=conf["kernel_suite"], base=conf["suite"])


def apt_sources(conf: dict[str, str]) -> str:
    """Pure: the base suite with the configured components, plus kernel_suite (main only)."""
    comps = conf["components"].replace(",", " ")
    lines = [f"deb {conf['mirror']} {conf['suite']} {comps}"]
    if conf.get("kernel_suite"):
        lines.append(f"deb {conf['mirror']} {conf['kernel_suite']} main")
    return "\n".join(lines) + "\n"


# Firmware name → file in the kernel's broadcom/ device-tree directory. The Pi 4 family and the Pi 5; the
# D0-stepping Pi 5 (2 GB, 16 GB and later boards) is asked for under Raspberry Pi's name "bcm2712d0-…",
# Linux calls it "bcm2712-d-…": both names are put on the card.
PI_DTBS = {
    "bcm2711-rpi-4-b.dtb": "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb": "bcm2711-rpi-400.dtb",
    "bcm2711-rpi-cm4-io.dtb": "bcm2711-rpi-cm4-io.dtb",
    "bcm2712-rpi-5-b.dtb": "bcm2712-rpi-5-b.dtb",
    "bcm2712-d-rpi-5-b.dtb": "bcm2712-d-rpi-5-b.dtb",
    "bcm2712d0-rpi-5-b.dtb": "bcm2712-d-rpi-5-b.dtb",
}
REQUIRED_DTBS = ("bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb")


def cache_key(arch: str, conf: dict[str, str], pkgs: list[str]) -> str:
    """Pure: what the base tarball depends on. Any change to the package list is a new key (a new base)."""
    text = "\n".join([arch, conf["suite"], conf["mirror"], conf["components"], conf.get("variant", "minbase"),
                      *sorted(pkgs)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(argv: list[str], timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if res.returncode != 0:
        raise BuildError(f"{' '.join(argv[:5])} … rc={res.returncode}: {(res.stdout + res.stderr)[-1500:]}")
    return res


def in_root(rootfs: Path, argv: list[str], timeout: float = 900, network: bool = False) -> subprocess.CompletedProcess:
    """Run a command inside the root with /proc and /dev, without booting it (systemd-nspawn). No network,
    except for apt's downloads (network=True: the host's network and a copy of its resolv.conf, which is
    taken out again so the image never carries the build machine's resolver)."""
    env_args = ["--setenv=DEBIAN_FRONTEND=noninteractive", "--setenv=LC_ALL=C.UTF-8",
                "--setenv=PIP_DISABLE_PIP_VERSION_CHECK=1"]
    net = ["--resolv-conf=replace-host"] if network else ["--private-network"]
    resolv = rootfs / "etc/resolv.conf"
    saved = _save(resolv) if network else None
    try:
        return run(["systemd-nspawn", "-q", "--register=no", "--keep-unit", *net, "--as-pid2", *env_args,
                    "-D", str(rootfs), *argv], timeout=timeout)
    finally:
        if network:
            _restore(resolv, saved)


def _save(path: Path) -> tuple[str, str | bytes] | None:
    if path.is_symlink():
        return ("link", os.readlink(path))
    if path.exists():
        return ("file", path.read_bytes())
    return None


def _restore(path: Path, saved: tuple[str, str | bytes] | None) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    if saved is None:
        return
    kind, value = saved
    if kind == "link":
        path.symlink_to(value)
    else:
        path.write_bytes(value)  # type: ignore[arg-type]


def tar_create(src: Path, dest: Path, epoch: int) -> None:
    tmp = dest.with_suffix(".part")
    run(["tar", "--numeric-owner", "--xattrs", "--sort=name", f"--mtime=@{epoch}", "--clamp-mtime",
         "-C", str(src), "-cf", str(tmp), "."], timeout=600)
    os.replace(tmp, dest)


def tar_extract(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    run(["tar", "--numeric-owner", "--xattrs", "-xpf", str(src), "-C", str(dest)], timeout=600)


# --- 1. base ------------------------------------------------------------------------------------------------

def build_base(arch: str, rootfs: Path, cache: Path, conf: dict[str, str], epoch: int) -> str:
    pkgs = package_list(arch, with_kernel=False)
    key = cache_key(arch, conf, pkgs)
    # "-nokernel": the board layer goes on top (the name also keeps existing caches valid).
    flavour = f"{arch}-nokernel" if board_packages(arch) else arch
    tarball = cache / f"base-{flavour}-{conf['suite']}-{key}.tar"
    if tarball.exists():
        log(f"Basis aus dem Cache: {tarball.name}")
        tar_extract(tarball, rootfs)
        return key
    debs = cache / f"debs-{arch}"
    debs.mkdir(parents=True, exist_ok=True)
    foreign = arch != NATIVE
    argv = ["debootstrap", f"--variant={conf.get('variant', 'minbase')}", f"--arch={arch}",
            f"--components={conf['components']}", f"--include={','.join(pkgs)}", f"--cache-dir={debs}"]
    if foreign:
        argv.append("--foreign")
    log(f"debootstrap {arch} ({len(pkgs)} Pakete{', fremde Architektur' if foreign else ''}) …")
    t0 = time.monotonic()
    run([*argv, conf["suite"], str(rootfs), conf["mirror"]], timeout=1800)
    if foreign:
        from binfmt import qemu_binfmt  # noqa: PLC0415 - only needed for foreign builds

        with qemu_binfmt(arch, QEMU[arch]):
            # The F flag opened the interpreter at registration: nothing needs to be copied into the root.
            run(["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"], timeout=3600)
    log(f"debootstrap fertig in {time.monotonic() - t0:.0f} s")
    # apt's downloaded packages are not part of the image.
    for p in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        p.unlink()
    tar_create(rootfs, tarball, epoch)
    _prune(cache, f"base-{flavour}-{conf['suite']}-*.tar", keep=tarball)
    return key


def board_key(base_key: str, arch: str, conf: dict[str, str]) -> str:
    """Pure: what the board tarball depends on (the base and the board's packages and kernel source)."""
    text = "\n".join([base_key, arch, conf["mirror"], conf.get("kernel_suite", ""),
                      *sorted(board_packages(arch)), "--", *sorted(kernel_packages(arch, conf))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_board(arch: str, rootfs: Path, cache: Path, conf: dict[str, str], epoch: int, base_key: str) -> str:
    """The Pi layer: firmware packages from the base suite, the kernel from kernel_suite, boot files in place."""
    key = board_key(base_key, arch, conf)
    tarball = cache / f"board-{arch}-{conf['suite']}-{key}.tar"
    if tarball.exists():
        log(f"Kernel und Pi-Firmware aus dem Cache: {tarball.name}")
        shutil.rmtree(rootfs)
        tar_extract(tarball, rootfs)
        return key
    pkgs = board_packages(arch) + kernel_packages(arch, conf)
    bridge_kernel_hooks(rootfs)
    apt = rootfs / "etc/apt"
    (apt / "sources.list").write_text(apt_sources(conf))
    (apt / "preferences.d").mkdir(parents=True, exist_ok=True)
    (apt / "preferences.d/sitzungsbox-kernel.pref").write_text(kernel_pin(conf))
    log(f"Kernel ({conf.get('kernel_suite')}) und Pi-Firmware: {' '.join(pkgs)} …")
    t0 = time.monotonic()
    in_root(rootfs, ["apt-get", "-q", "update"], timeout=600, network=True)
    in_root(rootfs, ["apt-get", "-q", "-y", "--no-install-recommends", "install", *pkgs], timeout=3600,
            network=True)
    in_root(rootfs, ["apt-get", "clean"])
    for lists in (rootfs / "var/lib/apt/lists").glob("*_dists_*"):
        lists.unlink()
    populate_boot(rootfs)
    log(f"Kernel installiert in {time.monotonic() - t0:.0f} s")
    tar_create(rootfs, tarball, epoch)
    _prune(cache, f"board-{arch}-{conf['suite']}-*.tar", keep=tarball)
    return key


def cached_root(arch: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The cache tarball a full build of ARCH starts from (base, or base + board): may not exist yet."""
    conf = read_conf()
    key = cache_key(arch, conf, package_list(arch, with_kernel=False))
    if not board_packages(arch):
        return cache / f"base-{arch}-{conf['suite']}-{key}.tar"
    return cache / f"board-{arch}-{conf['suite']}-{board_key(key, arch, conf)}.tar"


# trixie's linux-base (which its kernel pre-depends on) also keeps kernel hooks in /usr/share/kernel/*.d and
# hands both directories to run-parts; bookworm's run-parts (debianutils 5.7) takes exactly one and the
# kernel's postinst fails ("run-parts: missing operand"). So those files are not unpacked, and the one that
# matters is done here: 00-legacy-boot, which puts /boot/vmlinuz-<version> in place for initramfs-tools
# and raspi-firmware. (The other, touch-reboot-required, means nothing in an image build.)
DPKG_EXCLUDE = ("# Sitzungsbox (image/build.py): bookworm's run-parts takes one hook directory, /etc/kernel/*.d.\n"
                "path-exclude=/usr/share/kernel/*\n")
LEGACY_BOOT_HOOK = """#!/bin/sh
# Sitzungsbox (image/build.py): what trixie's /usr/share/kernel/postinst.d/00-legacy-boot does.
set -eu
version=$1
image=${2:-/boot/vmlinuz-$1}
set -- ${DEB_MAINT_PARAMS:-unknown}
if [ "$1" = configure ] && [ -e "/usr/lib/modules/$version/vmlinuz" ]; then
  cp -p "/usr/lib/modules/$version/vmlinuz" "$image"
  cp -p "/usr/lib/modules/$version/config" "$(dirname "$image")/config-$version"
fi
"""


def bridge_kernel_hooks(rootfs: Path) -> None:
    cfg = rootfs / "etc/dpkg/dpkg.cfg.d"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "sitzungsbox-kernel-hooks").write_text(DPKG_EXCLUDE)
    hook = rootfs / "etc/kernel/postinst.d/00-sitzungsbox-legacy-boot"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(LEGACY_BOOT_HOOK)
    hook.chmod(0o755)


def _version_key(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in name.replace("-", ".").replace("+", ".").split(".")]


def populate_boot(rootfs: Path) -> dict[str, str]:
    """Put the newest kernel, its initrd and the Pi 4/5 device trees into /boot/firmware (what the Pi's
    firmware reads). raspi-firmware's own hook looks for the trees where kernels before 6.16 kept them, and
    older kernels' files are removed so the card holds one kernel. Returns firmware name → source."""
    modules = rootfs / "usr/lib/modules"
    versions = sorted((p.name for p in modules.iterdir() if (p / "modules.order").exists()), key=_version_key)
    if not versions:
        raise BuildError("kein Kernel in /usr/lib/modules")
    ver = versions[-1]
    kernel = next((p for p in (rootfs / f"boot/vmlinuz-{ver}", modules / ver / "vmlinuz") if p.is_file()), None)
    initrd = rootfs / f"boot/initrd.img-{ver}"
    if kernel is None or not initrd.is_file():
        raise BuildError(f"Kernel {ver}: vmlinuz oder initrd.img fehlt")
    dtb_dirs = [modules / ver / "dtb/broadcom", rootfs / f"usr/lib/linux-image-{ver}/broadcom"]
    dtb_dir = next((d for d in dtb_dirs if d.is_dir()), None)
    if dtb_dir is None:
        raise BuildError(f"Kernel {ver}: keine Broadcom-Gerätebäume")
    fw = rootfs / "boot/firmware"
    fw.mkdir(parents=True, exist_ok=True)
    for old in [*fw.glob("vmlinuz-*"), *fw.glob("initrd.img-*"), *fw.glob("bcm27*.dtb")]:
        old.unlink()
    placed = {f"vmlinuz-{ver}": str(kernel.relative_to(rootfs)), f"initrd.img-{ver}": str(initrd.relative_to(rootfs))}
    shutil.copyfile(kernel, fw / f"vmlinuz-{ver}")
    shutil.copyfile(initrd, fw / f"initrd.img-{ver}")
    for name, src in PI_DTBS.items():
        if (dtb_dir / src).is_file():
            shutil.copyfile(dtb_dir / src, fw / name)
            placed[name] = str((dtb_dir / src).relative_to(rootfs))
    missing = [d for d in REQUIRED_DTBS if d not in placed]
    if missing:
        raise BuildError(f"Kernel {ver}: Gerätebaum fehlt: {', '.join(missing)}")
    return placed


def _prune(cache: Path, pattern: str, keep: Path) -> None:
    """A changed package list or pin makes the old cache entry useless: keep the cache to one per arch."""
    for old in cache.glob(pattern):
        if old != keep:
            shutil.rmtree(old) if old.is_dir() else old.unlink()


# --- 2. app -------------------------------------------------------------------------------------------------

def download_argv(arch: str, req: Path, dest: Path) -> list[str]:
    """Pure: pip's download of requirements.txt's wheels for the target platform. requirements.txt is the runtime
    part of uv.lock with its hashes (image/requirements.py): pip checks every wheel against them."""
    plat = [a for p in PIP_PLATFORMS[arch] for a in ("--platform", p)]
    return [sys.executable, "-m", "pip", "download", "-q", "--require-hashes", "--only-binary=:all:", *plat,
            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none",
            "-d", str(dest), "-r", str(req)]


def install_argvs(wheels: str, req: str) -> list[list[str]]:
    """Pure: the venv's installs inside the root, offline. First the locked wheels, hash-checked; then the project's
    own wheel (no hash: built just now), whose dependencies are all there by then (netifaces from Debian)."""
    pip = ["/opt/sitzungsbox/bin/python", "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels]
    return [[*pip, "--require-hashes", "-r", req], [*pip, "sitzungsbox"]]


def wheelhouse(arch: str, cache: Path) -> Path:
    """Pinned wheels for the target platform (cached by requirements.txt) plus the project's own wheel."""
    req = HERE / "requirements.txt"
    key = hashlib.sha256(req.read_bytes()).hexdigest()[:16]
    deps = cache / f"wheels-{arch}-{key}"
    if not deps.exists():
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix="wheels-"))
        run(download_argv(arch, req, tmp), timeout=600)
        os.replace(tmp, deps)
        _prune(cache, f"wheels-{arch}-*", keep=deps)
    out = Path(tempfile.mkdtemp(prefix="sbi-wheels-"))
    for whl in deps.glob("*.whl"):
        shutil.copy(whl, out)
    # The project itself: a pure-Python wheel, built from a copy (an in-tree build would leave build/ and
    # *.egg-info in the checkout). Build isolation fetches setuptools/wheel through pip like any dependency.
    src = Path(tempfile.mkdtemp(prefix="sbi-src-"))
    try:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, src / name)
        shutil.copytree(ROOT / "appliance", src / "appliance",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)], timeout=300)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return out


def install_app(rootfs: Path, arch: str, cache: Path) -> None:
    wheels = wheelhouse(arch, cache)
    # Not /tmp: systemd-nspawn mounts a fresh tmpfs there.
    dest = rootfs / "var/tmp/wheels"
    try:
        shutil.copytree(wheels, dest)
        shutil.copy(HERE / "requirements.txt", dest / "requirements.txt")
        # --system-site-packages: only for Debian's python3-netifaces (see requirements.txt).
        in_root(rootfs, ["python3", "-m", "venv", "--system-site-packages", "/opt/sitzungsbox"])
        for argv in install_argvs("/var/tmp/wheels", "/var/tmp/wheels/requirements.txt"):
            in_root(rootfs, argv, timeout=900)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(wheels, ignore_errors=True)
    link = rootfs / "usr/bin/sitzungsbox"
    link.unlink(missing_ok=True)
    link.symlink_to("/opt/sitzungsbox/bin/sitzungsbox")


# --- 3. system ----------------------------------------------------------------------------------------------

# The labels are what image/mkimage.py gives the partitions (it reads them from here; FAT labels are upper case).
FSTAB = """# Sitzungsbox: read-only root, data on its own partition (SQLite, documents, keys, configuration).
# data=journal: file data goes through the journal too, so a power cut never leaves a half-written block.
# nofail: without the data partition the box still boots to a console (its services wait for the partition:
# RequiresMountsFor=). 90 s: udev names the partitions late on a slow card (in QEMU's Pi 4 after 10 s).
# (In a container, systemd-fstab-generator skips device entries: the CI boot binds a directory instead.)
LABEL=sbx-root  /                     ext4  ro,noatime                                 0 1
LABEL=sbx-data  /var/lib/sitzungsbox  ext4  rw,noatime,data=journal,nofail,x-systemd.device-timeout=90s  0 2
LABEL=SBX-BOOT  /boot/firmware        vfat  ro,noatime,nofail,x-systemd.device-timeout=90s             0 2
tmpfs           /tmp                  tmpfs nosuid,nodev,size=64m                      0 0
tmpfs           /var/tmp              tmpfs nosuid,nodev,size=16m                      0 0
"""
JOURNALD = ("[Journal]\n# Read-only root: the journal lives in RAM (journalctl still works until power-off).\n"
            "Storage=volatile\n")
CONFIG_LINK = Path("/var/lib/sitzungsbox/etc/sitzungsbox.toml")


def install_system(rootfs: Path, external_ap: bool) -> list[str]:
    lib = rootfs / "usr/lib/systemd/system"
    lib.mkdir(parents=True, exist_ok=True)
    units = sorted(p for p in (ROOT / "systemd").iterdir() if p.suffix in (".service", ".target"))
    for unit in units:
        shutil.copy(unit, lib / unit.name)
    for sub in ("sysusers.d", "tmpfiles.d", "sysctl.d"):
        dest = rootfs / "usr/lib" / sub
        dest.mkdir(parents=True, exist_ok=True)
        for f in (ROOT / "systemd" / sub).iterdir():
            shutil.copy(f, dest / f.name)
    # The user exists in the image (a read-only root cannot add it at boot); same uid on every box.
    run(["systemd-sysusers", f"--root={rootfs}"], timeout=60)
    etc = rootfs / "etc"
    (etc / "fstab").write_text(FSTAB)
    # Mount points of the data and boot partitions must exist in the read-only root. So must logind's
    # StateDirectory: systemd would create it at each start and fails on the read-only root (logind then
    # restarts in a loop; seen booting the card in QEMU).
    for mp in ("var/lib/sitzungsbox", "boot/firmware", "var/lib/systemd/linger"):
        (rootfs / mp).mkdir(parents=True, exist_ok=True)
    (etc / "hostname").write_text("sitzungsbox\n")
    (etc / "systemd/journald.conf.d").mkdir(parents=True, exist_ok=True)
    (etc / "systemd/journald.conf.d/50-sitzungsbox.conf").write_text(JOURNALD)
    # Configuration lives on the data partition (first-boot setup writes the Wi-Fi country there).
    (etc / "sitzungsbox").mkdir(exist_ok=True)
    cfg_link = etc / "sitzungsbox/sitzungsbox.toml"
    cfg_link.unlink(missing_ok=True)
    cfg_link.symlink_to(CONFIG_LINK)
    # In a container (CI boot) there are no partitions to remount; on the Pi the labels exist.
    dropin = etc / "systemd/system/systemd-remount-fs.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "50-sitzungsbox.conf").write_text("[Unit]\nConditionVirtualization=!container\n")
    # machine-id empty: systemd creates one per box at boot (on a tmpfs over the read-only file).
    (etc / "machine-id").write_text("")
    enable = ["sitzungsbox.target", "sitzungsbox-firstboot.service", "sitzungsbox-growdata.service"]
    if not external_ap:
        enable.append("sitzungsbox-hostapd@wlan0.service")
    run(["systemctl", f"--root={rootfs}", "enable", *enable], timeout=60)
    # Debian's own services would fight ours for the radio and ports 53/67; timesyncd has no network here.
    run(["systemctl", f"--root={rootfs}", "mask", "hostapd.service", "wpa_supplicant.service", "dnsmasq.service",
         "systemd-timesyncd.service"], timeout=60)
    run(["systemctl", f"--root={rootfs}", "set-default", "multi-user.target"], timeout=60)
    return enable


def write_sbom(rootfs: Path, out: Path) -> Path:
    debs = in_root(rootfs, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\n"]).stdout
    py = ""
    if (rootfs / "opt/sitzungsbox/bin/pip").exists():
        py = in_root(rootfs, ["/opt/sitzungsbox/bin/pip", "list", "--format=freeze", "--local"]).stdout
    sbom = out / "sbom.txt"
    sbom.write_text("# Debian packages (name, version, arch)\n" + "".join(sorted(debs.splitlines(True)))
                    + "# Python packages in /opt/sitzungsbox\n" + py)
    return sbom


def build(arch: str, out: Path, cache: Path = DEFAULT_CACHE, external_ap: bool = False,
          with_app: bool = True, with_kernel: bool = True) -> Path:
    conf = read_conf()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or conf["source_date_epoch"])
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    for tool in ("debootstrap", "systemd-nspawn", "tar"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} fehlt (apt-get install debootstrap systemd-container)")
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rootfs = out / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    t0 = time.monotonic()
    key = build_base(arch, rootfs, cache, conf, epoch)
    if with_kernel and board_packages(arch):
        if arch != NATIVE:
            from binfmt import qemu_binfmt  # noqa: PLC0415 - only needed for foreign builds

            with qemu_binfmt(arch, QEMU[arch]):
                key = build_board(arch, rootfs, cache, conf, epoch, key)
        else:
            key = build_board(arch, rootfs, cache, conf, epoch, key)
    if arch != NATIVE:
        # Commands inside a foreign root need qemu-user: the rest is done with the same binfmt registration.
        from binfmt import qemu_binfmt

        with qemu_binfmt(arch, QEMU[arch]):
            _finish(rootfs, arch, cache, external_ap, with_app, out)
    else:
        _finish(rootfs, arch, cache, external_ap, with_app, out)
    (out / "build-info.txt").write_text(f"arch={arch}\nsuite={conf['suite']}\nbase_key={key}\n"
                                        f"source_date_epoch={epoch}\n")
    log(f"fertig in {time.monotonic() - t0:.0f} s: {rootfs}")
    return rootfs


def _finish(rootfs: Path, arch: str, cache: Path, external_ap: bool, with_app: bool, out: Path) -> None:
    if with_app:
        install_app(rootfs, arch, cache)
    install_system(rootfs, external_ap)
    write_sbom(rootfs, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="image/build.sh", description="Sitzungsbox-Abbild (Root-Dateisystem) bauen")
    p.add_argument("--arch", default=NATIVE, choices=("amd64", "arm64"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--external-ap", action="store_true", help="keine eigenen Funkmodule (externe Access Points)")
    p.add_argument("--no-app", action="store_true", help="ohne die Anwendung (nur Basis und Dienste)")
    # The arm64 kernel's initramfs is built twice under qemu (~10 min): the CI check of the build path skips it.
    p.add_argument("--without-kernel", action="store_true",
                   help="ohne Kernel und Pi-Firmware (packages-<arch>.txt): nur zur Prüfung des Baupfads")
    # The card image (image/mkimage.py): needs the arm64 root with kernel and Pi firmware.
    p.add_argument("--img", type=Path, help="danach das Kartenabbild (.img, daneben .img.sha256) schreiben")
    p.add_argument("--data-size", type=int, default=1024, metavar="MiB", help="Datenpartition im Abbild")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("Das Abbild wird als root gebaut (debootstrap, chroot).", file=sys.stderr)
        return 2
    # A stopped build must still unregister qemu from binfmt_misc (the finally blocks run on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rootfs = build(args.arch, args.out, args.cache, args.external_ap, not args.no_app, not args.without_kernel)
        if args.img:
            from mkimage import ImageError, assemble  # noqa: PLC0415 - only with --img

            try:
                made = assemble(rootfs, args.img, data_mib=args.data_size)
            except ImageError as exc:
                raise BuildError(str(exc)) from exc
            log(f"Abbild: {made['image']} (sha256 {made['sha256']})")
    except (BuildError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
