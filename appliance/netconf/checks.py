"""Static checks of the rendered files with the real tools: `nft -c`, `dnsmasq --test`, hostapd's own parser.

Each check runs a subprocess with a timeout and returns a CheckResult; nothing here changes the host.
`nft -c` and hostapd run inside a throwaway network namespace when we are root:
- `nft -c` validates against the kernel (netlink transaction that is never committed). In an empty
  namespace even a mistake in this code (a missing -c) could only ever touch that namespace's ruleset.
- hostapd has no "parse only" switch: it parses, then initialises the driver. In a fresh namespace no
  radio and no interface exists, so it can never bring up an AP or grab a live radio; its ctrl_interface
  is pointed into a temporary directory so it cannot clobber the running instance's socket either.
"""

from __future__ import annotations

import grp
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

NETNS_PREFIX = "sbxa-check-"
TIMEOUT = 15.0
_counter = itertools.count()

# hostapd 2.10: "Line 8: unknown configuration item 'x'", "3 errors found in configuration file '...'".
_HOSTAPD_LINE_RE = re.compile(r"^Line \d+: .*$", re.M)
_HOSTAPD_ERRORS_RE = re.compile(r"\d+ errors? found in configuration file")
# Failures that come only after a successful parse: no radio/driver in the throwaway namespace.
_HOSTAPD_DRIVER_RE = re.compile(
    r"nl80211: 'nl80211' generic netlink not found|Failed to initialize driver|Could not read interface|"
    r"nl80211 driver initialization failed|No such device|interface state UNINITIALIZED->DISABLED"
)
_PSK_LINE_RE = re.compile(r"^(?:keyid=[A-Za-z0-9_-]{1,32} )?(?:[0-9a-f]{2}:){5}[0-9a-f]{2} [\x21-\x7e]{8,63}$")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # German one-liner for the clerk / log
    output: str = ""  # the tool's own output (never contains passphrases: we do not check wpa_psk with tools)
    errors: list[str] = field(default_factory=list)
    skipped: bool = False  # the tool or the privileges are missing: not checked, not passed


def _is_root() -> bool:
    return os.geteuid() == 0


@contextmanager
def throwaway_netns() -> Iterator[str | None]:
    """A fresh, empty network namespace for the duration of the block; None when not root."""
    if not _is_root() or shutil.which("ip") is None:
        yield None
        return
    name = f"{NETNS_PREFIX}{os.getpid()}-{next(_counter)}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=TIMEOUT)  # leftover of a crash
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=TIMEOUT)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=TIMEOUT)


def _in_ns(ns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv] if ns else argv


def _missing(name: str, tool: str) -> CheckResult:
    return CheckResult(name, False, f"{tool} ist nicht installiert – nicht geprüft", skipped=True)


def check_nft(text: str) -> CheckResult:
    name = "nftables"
    if shutil.which("nft") is None:
        return _missing(name, "nft")
    if not _is_root():
        return CheckResult(name, False, "nft -c braucht root (CAP_NET_ADMIN) – nicht geprüft", skipped=True)
    with throwaway_netns() as ns:
        try:
            proc = subprocess.run(_in_ns(ns, ["nft", "-c", "-f", "-"]), input=text, capture_output=True,
                                  text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return CheckResult(name, False, "nft -c antwortet nicht (Zeitüberschreitung)")
    output = (proc.stdout + proc.stderr).strip()
    errors = [ln for ln in output.splitlines() if "Error:" in ln]
    if proc.returncode == 0:
        return CheckResult(name, True, "Regelwerk ist gültig (nft -c)", output)
    return CheckResult(name, False, f"Regelwerk fehlerhaft: {errors[0] if errors else output[:200]}", output,
                       errors or [output])


def check_dnsmasq(path: Path) -> CheckResult:
    name = "dnsmasq"
    if shutil.which("dnsmasq") is None:
        return _missing(name, "dnsmasq")
    try:
        proc = subprocess.run(["dnsmasq", "--test", "-C", str(path)], capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return CheckResult(name, False, "dnsmasq --test antwortet nicht (Zeitüberschreitung)")
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0 and "syntax check OK" in output:
        return CheckResult(name, True, "dnsmasq-Konfiguration ist gültig", output)
    return CheckResult(name, False, f"dnsmasq-Konfiguration fehlerhaft: {output[:200]}", output, [output])


def classify_hostapd_output(returncode: int | None, output: str) -> tuple[bool, list[str]]:
    """Pure: did hostapd accept the configuration? (ok, config errors).

    A valid file parses and then fails only at the driver (no nl80211, no interface in the namespace);
    a bad one reports `Line N: ...` and `N errors found in configuration file`.
    """
    errors = _HOSTAPD_LINE_RE.findall(output)
    errors += [m.group(0) for m in _HOSTAPD_ERRORS_RE.finditer(output)]
    if errors:
        return False, errors
    if returncode is None:  # still running at the timeout: it got past the parser (and was stopped)
        return True, []
    if returncode == 0 or _HOSTAPD_DRIVER_RE.search(output):
        return True, []
    return False, [output.strip()[:300] or f"hostapd endete mit Code {returncode}"]


def _missing_group(conf_text: str) -> str | None:
    m = re.search(r"^ctrl_interface_group=(.+)$", conf_text, re.M)
    if not m or m.group(1).strip().isdigit():
        return None
    try:
        grp.getgrnam(m.group(1).strip())
    except KeyError:
        return m.group(1).strip()
    return None


def check_hostapd(path: Path) -> CheckResult:
    name = f"hostapd ({Path(path).name})"
    if shutil.which("hostapd") is None:
        return _missing(name, "hostapd")
    with tempfile.TemporaryDirectory(prefix="sbxa-hostapd-") as tmp:
        # Same line numbers as the original; only the control socket directory moves into tmp.
        text = Path(path).read_text()
        text = re.sub(r"^ctrl_interface=.*$", f"ctrl_interface={tmp}/ctrl", text, flags=re.M)
        conf = Path(tmp) / Path(path).name
        conf.write_text(text)
        with throwaway_netns() as ns:
            proc = subprocess.Popen(_in_ns(ns, ["hostapd", str(conf)]), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                output, _ = proc.communicate(timeout=TIMEOUT)
                rc: int | None = proc.returncode
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
                rc = None
    output = output.replace(str(conf), str(path)).strip()
    ok, errors = classify_hostapd_output(rc, output)
    group = _missing_group(text)
    if not ok and group:
        # hostapd reports an unknown ctrl_interface_group only at debug level: name it here.
        errors.insert(0, f"Gruppe „{group}“ (ctrl_interface_group) gibt es auf diesem System nicht")
    if ok:
        return CheckResult(name, True, "hostapd-Konfiguration wird angenommen", output)
    return CheckResult(name, False, f"hostapd-Konfiguration fehlerhaft: {errors[0]}", output, errors)


def check_wpa_psk(path: Path) -> CheckResult:
    """Our own check of the key file (hostapd reads it only after the driver is up, so its parse
    cannot cover it). Messages name line numbers, never the secrets."""
    name = "wpa_psk"
    errors = []
    keyids: set[str] = set()
    count = 0
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        count += 1
        if not _PSK_LINE_RE.match(line):
            errors.append(f"Zeile {lineno}: kein gültiger Eintrag (keyid=… MAC Schlüssel mit 8–63 Zeichen)")
            continue
        if line.startswith("keyid="):
            keyid = line.split(" ", 1)[0][len("keyid="):]
            if keyid in keyids:
                errors.append(f"Zeile {lineno}: keyid {keyid} doppelt")
            keyids.add(keyid)
    if count == 0:
        errors.append("keine Schlüssel: hostapd startet so nicht")
    if errors:
        return CheckResult(name, False, f"Schlüsseldatei fehlerhaft: {errors[0]}", errors=errors)
    return CheckResult(name, True, f"Schlüsseldatei gültig ({count} Schlüssel)")


def check_ip_batch(path: Path, interface: str) -> CheckResult:
    """iproute2 has no dry run: apply the batch in a throwaway namespace to a bridge (the kernel may lack dummy) of the
    same name (root only), so a typo fails here and not at boot."""
    name = "ip"
    if shutil.which("ip") is None:
        return _missing(name, "ip")
    if not _is_root():
        return CheckResult(name, False, "ip -batch braucht root – nicht geprüft", skipped=True)
    with throwaway_netns() as ns:
        assert ns is not None
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "add", interface, "type", "bridge"],
                       capture_output=True, timeout=TIMEOUT)
        try:
            proc = subprocess.run(["ip", "netns", "exec", ns, "ip", "-batch", str(path)], capture_output=True,
                                  text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return CheckResult(name, False, "ip -batch antwortet nicht (Zeitüberschreitung)")
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return CheckResult(name, True, "Adressbefehle sind gültig", output)
    return CheckResult(name, False, f"Adressbefehle fehlerhaft: {output[:200]}", output, [output])
