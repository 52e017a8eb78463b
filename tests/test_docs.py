"""The docs keep up with the code: every command-line command is in the README, every unit in the docs."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _commands(parser: argparse.ArgumentParser, prefix: str = "sitzungsbox") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_cli_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [c for c in _commands(build_parser()) if c not in readme]
    assert not missing, f"README.md does not mention: {missing}"


def test_readme_states_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_every_unit_has_its_security_exposure_documented():
    doc = (ROOT / "docs" / "systemd-security.md").read_text()
    units = [p.name for p in (ROOT / "systemd").glob("*.service")]
    # A template unit (name@.service) is documented with an instance (name@wlan0.service).
    assert units and all(u.replace("@.service", "@") in doc for u in units), units
