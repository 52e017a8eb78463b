"""image/requirements.txt: the runtime part of uv.lock, with its hashes, for the image's venv.

    python image/requirements.py            write image/requirements.txt from uv.lock (`make lock` runs it)
    python image/requirements.py --check    exit 1 if it differs from what uv.lock gives

uv.lock is the one lock of every Python dependency (runtime and the test extra, Linux x86_64 and aarch64);
this file is only derived from it, so the image installs exactly the versions the tests ran with. The pure
parts (reading the lock, the runtime closure for a target, wheel tags) are tested in tests/test_image_build.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOCK = ROOT / "uv.lock"
REQUIREMENTS = HERE / "requirements.txt"
PROJECT = "sitzungsbox"
# netifaces comes from Debian (python3-netifaces): PyPI has no wheel of it for Python 3.11, and compiling it in the
# image would need a compiler there (under qemu for arm64).
FROM_DEBIAN = ("netifaces",)
UV_EXPORT = ["export", "--frozen", "--no-emit-project", *(a for p in FROM_DEBIAN for a in ("--no-emit-package", p)),
             "--no-header", "--format", "requirements.txt"]
HEADER = f"""\
# Python packages of the appliance's virtual environment (/opt/sitzungsbox): the runtime part of uv.lock with
# its hashes, written by `make lock` (image/requirements.py); do not edit. Not here: {", ".join(FROM_DEBIAN)}, which
# comes from Debian (python3-netifaces; PyPI has no wheel of it for Python 3.11).
"""


def uv_binary() -> str:
    """The uv of this venv (the test extra pins it), else one on PATH."""
    here = Path(sys.executable).parent / "uv"
    found = str(here) if here.exists() else shutil.which("uv")
    if found is None:
        raise FileNotFoundError("uv fehlt (make test installiert es in .venv)")
    return found


def render(export: str) -> str:
    """Pure: the file's text from `uv export`'s output."""
    return HEADER + export


def from_lock() -> str:
    res = subprocess.run([uv_binary(), *UV_EXPORT], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return render(res.stdout)


def read_lock(path: Path = LOCK) -> dict[str, dict]:
    """Pure: uv.lock's packages by (normalised) name."""
    with path.open("rb") as fh:
        return {p["name"]: p for p in tomllib.load(fh)["package"]}


def parse_requirements(text: str) -> dict[str, tuple[str, set[str]]]:
    """Pure: name -> (pinned version, hashes) of a hashed requirements file (`name==v ; marker \\` lines)."""
    pins: dict[str, tuple[str, set[str]]] = {}
    name = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line:
            continue
        if line.startswith("--hash="):
            pins[name][1].add(line.removeprefix("--hash="))
            continue
        spec = line.split(";", 1)[0].strip()
        name, sep, version = spec.partition("==")
        if not sep:
            raise ValueError(f"nicht gepinnt: {raw}")
        name = name.strip().lower()
        pins[name] = (version.strip(), set())
    return pins


def runtime_closure(lock: dict[str, dict], environment: dict[str, str], root: str = PROJECT) -> set[str]:
    """Pure: every package the project needs at run time in that environment (markers evaluated there;
    optional dependencies only where a dependency names the extra). The project itself is not included."""
    from packaging.markers import Marker  # not at the top: `make lock` runs this file in a venv that may have only uv
    def deps(entries: list[dict]) -> list[dict]:
        return [d for d in entries if "marker" not in d or Marker(d["marker"]).evaluate(environment)]

    seen: set[str] = set()
    todo = deps(lock[root].get("dependencies", []))
    while todo:
        dep = todo.pop()
        pkg = lock[dep["name"]]
        for extra in dep.get("extra", []):
            todo += deps(pkg.get("optional-dependencies", {}).get(extra, []))
        if dep["name"] in seen:
            continue
        seen.add(dep["name"])
        todo += deps(pkg.get("dependencies", []))
    return seen


def main(argv: list[str]) -> int:
    text = from_lock()
    if "--check" in argv:
        if REQUIREMENTS.read_text() != text:
            print(f"{REQUIREMENTS} passt nicht zu uv.lock: make lock", file=sys.stderr)
            return 1
        return 0
    REQUIREMENTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
