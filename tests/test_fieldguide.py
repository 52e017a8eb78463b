"""Every command in the field guide (docs/feldhandbuch.md) is run by a test or documented in the README.

Commands are the lines of its ```sh blocks. Each must be (a) a line of the README's code blocks (the README's
commands are checked against the CLI by tests/test_docs.py), or (b) listed below with the test that runs it,
and that test file must really contain the invocation. `sitzungsbox …` lines must also parse with the CLI.
"""

from __future__ import annotations

import re
import shlex

import pytest

from appliance.cli import build_parser
from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "feldhandbuch.md"

# command in the guide -> (test file, text in that file that runs it)
EXERCISED = {
    "sitzungsbox setup-code": ("tests/test_image_firstboot.py", 'run_cli(path, "setup-code")'),
    "sitzungsbox setup": ("tests/test_image_firstboot.py", 'run_cli(path, "setup", "--stdin"'),
    # The test runs it with --without-kernel (the kernel's initramfs under qemu takes ~10 min more).
    "image/build.sh --arch arm64 --out /var/tmp/sitzungsbox-arm64": ("tests/test_image_build.py", '"--arch", "arm64"'),
    "systemctl status sitzungsbox.target": ("tests/test_image_boot.py", '"systemctl", "status", "sitzungsbox.target"'),
    "journalctl -u sitzungsbox-web.service": ("tests/test_image_boot.py",
                                              '"journalctl", "-u", "sitzungsbox-web.service"'),
    "sitzungsbox netconf --check": ("tests/test_image_boot.py", '"sitzungsbox", "netconf", "--check"'),
}


def code_blocks(text: str, langs: tuple[str, ...]) -> list[str]:
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S) if m.group(1) in langs]


def commands(block: str) -> list[str]:
    out = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\s+", " ", line))
    return out


def guide_commands() -> list[str]:
    return [c for b in code_blocks(GUIDE.read_text(), ("sh",)) for c in commands(b)]


def readme_commands() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    return {c for b in code_blocks(readme, ("sh", "")) for c in commands(b)}


def test_guide_has_commands_for_clerks_and_technicians():
    cmds = guide_commands()
    assert len(cmds) >= 10
    text = GUIDE.read_text()
    for heading in ("Teil A – Sitzungsdienst", "Was drucken", "Checkliste", "zeigt das Portal nicht",
                    "Teil B – Technik", "mt7612u", "mt7921au", "Powerbank", "Technik-Ansicht"):
        assert heading in text, heading


@pytest.mark.parametrize("cmd", guide_commands())
def test_every_guide_command_is_exercised_or_in_the_readme(cmd):
    if cmd.startswith("sitzungsbox "):
        build_parser().parse_args(shlex.split(cmd)[1:])  # SystemExit on a command the CLI does not know
    if cmd in readme_commands():
        return
    assert cmd in EXERCISED, f"Befehl im Feldhandbuch ohne Test und nicht in der README: {cmd}"
    test_file, marker = EXERCISED[cmd]
    assert marker in (ROOT / test_file).read_text(), f"{test_file} führt {cmd!r} nicht aus"


def test_negative_control_an_unknown_command_is_caught():
    assert "sitzungsbox zaubern" not in readme_commands() and "sitzungsbox zaubern" not in EXERCISED
    with pytest.raises(SystemExit):
        build_parser().parse_args(["zaubern"])


def test_no_stale_entries():
    assert set(EXERCISED) <= set(guide_commands())
