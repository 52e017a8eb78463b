"""The product package holds the product only: the harnesses (the virtual venue and the wired hostapd lab in
tests/venue/, bench/) stay out of the wheel, and so out of the card image (image/build.py installs that wheel),
and nothing in appliance/ imports them (STYLE.md, "Harnesses")."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parent.parent
HARNESSES = ("tests", "bench")
# A venue's namespace prefix where it is made: venue_factory("sbd", …), Venue(…, prefix="sbib", …).
VENUE_PREFIX = re.compile(r'venue_factory\(\s*"([a-z0-9-]+)"|\b(?:Venue|running_box)\([^)]*\bprefix="([a-z0-9-]+)"')


def _wheel_packages() -> list[str]:
    """The packages setuptools puts into the wheel, found with pyproject.toml's own `packages.find` settings
    (namespaces on, setuptools' default); the same discovery pip runs when image/build.py builds the wheel."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return find_namespace_packages(where=str(ROOT), include=find["include"], exclude=find.get("exclude", ()))


def test_the_wheel_holds_the_appliance_and_no_harness():
    packages = _wheel_packages()
    assert "appliance" in packages and "appliance.radio" in packages
    assert not [p for p in packages if p.split(".")[0] != "appliance"], packages
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "appliance").rglob("*.py")}
    assert "appliance.radio.fake" in modules  # the demo's virtual radio is a product feature
    assert not {"appliance.venue", "appliance.radio.wired_lab"} & modules


def test_no_product_module_imports_a_harness():
    offenders = []
    for path in sorted((ROOT / "appliance").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in HARNESSES]
    assert not offenders


def test_every_venue_user_has_its_own_namespace_prefix():
    """Namespaces are named by prefix; two test modules sharing one would tear down each other's venue."""
    owners: dict[str, set[str]] = {}
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]:
        if path.name == Path(__file__).name:
            continue
        for prefix in VENUE_PREFIX.findall(path.read_text()):
            owners.setdefault("".join(prefix), set()).add(str(path.relative_to(ROOT)))
    assert owners and all(len(files) == 1 for files in owners.values()), owners
