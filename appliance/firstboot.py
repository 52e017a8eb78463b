"""First boot of a fresh image: a one-time setup code, then the setup that makes the box ready.

No default password ever exists. `sitzungsbox firstboot` (sitzungsbox-firstboot.service, before the web)
creates a one-time setup code on the data partition and shows it on the console/HDMI screen and the login
prompt. Whoever sits at the box (or logs in as root) runs `sitzungsbox setup`: enters the code, the Wi-Fi
country code and the clerk password they choose. Then the code is gone, the box is marked as set up,
and the radios restart with the country's channels. `sitzungsbox setup-code` prints the code again.

Pure parts (code format, checks, radio units, networkd files) are separate from the file I/O.
"""

from __future__ import annotations

import getpass
import hmac
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from appliance.captive.keys import KEY_ALPHABET
from appliance.config import Config, to_toml

CODE_FILE = "setup-code"  # in cfg.state_dir, root-only (0600)
DONE_FILE = ".eingerichtet"  # in cfg.state_dir: setup finished
ISSUE_FILE = Path("/run/issue.d/50-sitzungsbox.issue")  # agetty shows it above the login prompt
ISO3166 = Path("/usr/share/zoneinfo/iso3166.tab")
MIN_PASSWORD = 12
# Never accepted, whatever the length rule says: names printed on the box or in the docs.
BANNED = {"sitzungsbox", "sitzungsbox1", "passwort", "password", "admin", "administrator", "raspberry",
          "123456789012", "sitzungsdienst"}


class SetupError(ValueError):
    """A German message for the person at the console."""


# --- pure ---------------------------------------------------------------------------------------------------

def new_code() -> str:
    """Three groups of four from the look-alike-free alphabet (~70 bits): readable off an HDMI screen."""
    return "-".join("".join(secrets.choice(KEY_ALPHABET) for _ in range(4)) for _ in range(3))


def normalise_code(text: str) -> str:
    """People type codes with spaces or without dashes; compare the characters only."""
    return re.sub(r"[\s-]", "", text)


def code_matches(expected: str, given: str) -> bool:
    return bool(given) and hmac.compare_digest(normalise_code(expected).encode(), normalise_code(given).encode())


def known_countries(text: str) -> set[str]:
    """ISO 3166 alpha-2 codes from tzdata's iso3166.tab."""
    return {ln.split("\t", 1)[0] for ln in text.splitlines() if re.match(r"^[A-Z]{2}\t", ln)}


def check_country(code: str, known: set[str] | None = None) -> str:
    """The Wi-Fi regulatory country (hostapd country_code): channels and power allowed there."""
    c = code.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", c):
        raise SetupError("Ländercode: zwei Buchstaben, z. B. DE für Deutschland, AT für Österreich")
    if known and c not in known:
        raise SetupError(f"Ländercode {c} gibt es nicht (ISO 3166, z. B. DE, AT, CH)")
    return c


def check_password(password: str, repeated: str, code: str = "") -> str:
    if password != repeated:
        raise SetupError("Die beiden Passwörter stimmen nicht überein")
    if len(password) < MIN_PASSWORD:
        raise SetupError(f"Das Passwort ist zu kurz: mindestens {MIN_PASSWORD} Zeichen")
    if password.strip() != password or not password.isprintable():
        raise SetupError("Das Passwort darf nicht mit Leerzeichen beginnen oder enden")
    if password.lower() in BANNED or (code and normalise_code(password) == normalise_code(code)):
        raise SetupError("Dieses Passwort ist zu leicht zu erraten – bitte ein eigenes wählen")
    return password


def radio_units(cfg: Config) -> list[str]:
    """One hostapd instance per configured radio (none with external access points only)."""
    return [f"sitzungsbox-hostapd@{r.interface}.service" for r in cfg.radios]


def networkd_files(cfg: Config) -> dict[str, str]:
    """systemd-networkd files for the client bridge, when the clients' interface is not a single radio.

    hostapd adds each radio to the bridge itself (`bridge=`); external access points are plugged into
    ports listed here by the technician. The address is set by sitzungsbox-netconf (ip.batch), so the
    bridge has none here and networkd never runs DHCP on it.
    """
    if [r.interface for r in cfg.radios] == [cfg.interface]:
        return {}
    br = cfg.interface
    return {
        f"20-sitzungsbox-{br}.netdev": f"[NetDev]\nName={br}\nKind=bridge\n\n[Bridge]\nSTP=no\nForwardDelaySec=0\n",
        f"20-sitzungsbox-{br}.network": (f"[Match]\nName={br}\n\n[Network]\nLinkLocalAddressing=no\n"
                                         "ConfigureWithoutCarrier=yes\nIPv6AcceptRA=no\n"),
    }


def issue_text(code: str, address: str) -> str:
    return ("\nSitzungsbox – Ersteinrichtung\n"
            f"  Einrichtungscode: {code}\n"
            "  Als root anmelden und `sitzungsbox setup` ausführen (Code, Ländercode, eigenes Passwort).\n"
            f"  Danach: Sitzungsdienst unter http://{address}/clerk\n\n")


# --- files --------------------------------------------------------------------------------------------------

def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    from appliance.netconf.render import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, mode)


def is_set_up(cfg: Config) -> bool:
    return (cfg.state_dir / DONE_FILE).exists()


def current_code(cfg: Config) -> str | None:
    try:
        return (cfg.state_dir / CODE_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_code(cfg: Config) -> str:
    """The pending code, created once: it stays the same across reboots until the setup used it."""
    code = current_code(cfg)
    if code is None:
        code = new_code()
        _write_private(cfg.state_dir / CODE_FILE, code + "\n")
    return code


def firstboot(cfg: Config, issue_file: Path = ISSUE_FILE, out=None) -> int:
    """`sitzungsbox firstboot`: show the setup code on the console (stdout goes to journal+console)."""
    out = out or sys.stdout
    if is_set_up(cfg):
        issue_file.unlink(missing_ok=True)
        print("Sitzungsbox ist eingerichtet.", file=out)
        return 0
    code = ensure_code(cfg)
    try:
        issue_file.parent.mkdir(parents=True, exist_ok=True)
        issue_file.write_text(issue_text(code, cfg.address))
    except OSError as exc:  # only the login banner; the console line below still shows the code
        print(f"Hinweis für den Anmeldebildschirm nicht geschrieben: {exc}", file=sys.stderr)
    print(f"Sitzungsbox – Ersteinrichtung: Einrichtungscode {code} – als root `sitzungsbox setup` ausführen.",
          file=out, flush=True)
    return 0


def setup_code_cmd(cfg: Config) -> int:
    """`sitzungsbox setup-code`: print the pending code (root: the file is 0600)."""
    if is_set_up(cfg):
        print("Die Box ist bereits eingerichtet; es gibt keinen Einrichtungscode mehr.")
        return 0
    try:
        code = ensure_code(cfg)
    except PermissionError:
        print("Fehler: nur root darf den Einrichtungscode lesen (sudo sitzungsbox setup-code).", file=sys.stderr)
        return 2
    print(f"Einrichtungscode: {code}")
    return 0


def apply_setup(cfg: Config, config_path: Path, code: str, country: str, password: str, repeated: str,
                known: set[str] | None = None) -> Config:
    """Check everything first, then write: a wrong input changes nothing."""
    expected = current_code(cfg)
    if is_set_up(cfg) or expected is None:
        raise SetupError("Die Box ist bereits eingerichtet (neues Passwort: sitzungsbox set-password)")
    if not code_matches(expected, code):
        raise SetupError("Der Einrichtungscode stimmt nicht (er steht auf dem Bildschirm der Box)")
    country = check_country(country, known)
    check_password(password, repeated, expected)
    from appliance.store import open_db
    from appliance.usecases import login

    new_cfg = replace(cfg, country=country).validate()
    # On the image /etc/sitzungsbox/sitzungsbox.toml is a link into the data partition: write the target.
    _write_private(config_path.resolve(), to_toml(new_cfg), 0o644)
    db = open_db(cfg.db_path)
    try:
        login.set_password(db, password, actor="setup")
    finally:
        db.conn.close()
    _write_private(cfg.state_dir / DONE_FILE, "eingerichtet\n", 0o644)
    (cfg.state_dir / CODE_FILE).unlink(missing_ok=True)  # one-time: used up
    try:
        ISSUE_FILE.unlink(missing_ok=True)
    except OSError:  # not on the box (no /run/issue.d of ours): nothing shown there
        pass
    return new_cfg


def _restart_network() -> None:
    """On a booted box: re-render with the new country and restart the radios (no-op elsewhere)."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return
    subprocess.run(["systemctl", "restart", "sitzungsbox-netconf.service"], timeout=60, check=False)
    subprocess.run(["systemctl", "try-restart", "sitzungsbox-hostapd@*.service", "sitzungsbox-dnsmasq.service"],
                   timeout=60, check=False)


def setup_cmd(cfg: Config, config_path: Path, country: str | None, from_stdin: bool = False) -> int:
    """`sitzungsbox setup`: asks for the code, the country (default from --land) and the password twice.

    --stdin: the answers come as lines on standard input (code, country, password, password) for scripts
    and tests; passwords are never taken from the command line (it shows up in `ps`).
    """
    if from_stdin:
        lines = sys.stdin.read().splitlines() + ["", "", "", ""]
        code, land, pw, pw2 = lines[:4]
        land = land or (country or "")
    else:
        code = input("Einrichtungscode (steht auf dem Bildschirm der Box): ")
        land = country or input("Ländercode für das WLAN [DE]: ") or "DE"
        pw = getpass.getpass(f"Passwort für den Sitzungsdienst (mindestens {MIN_PASSWORD} Zeichen): ")
        pw2 = getpass.getpass("Passwort wiederholen: ")
    known = known_countries(ISO3166.read_text()) if ISO3166.exists() else None
    try:
        new_cfg = apply_setup(cfg, config_path, code, land, pw, pw2, known)
    except SetupError as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 2
    _restart_network()
    print(f"Sitzungsbox eingerichtet: WLAN-Land {new_cfg.country}, Passwort für den Sitzungsdienst gesetzt.")
    print(f"Anmeldung: http://{new_cfg.address}/clerk/login  –  Technik-Ansicht: sitzungsbox set-password "
          "--role techniker")
    return 0
