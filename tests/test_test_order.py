"""conftest's test order: under pytest-randomly a module of steps on one shared system keeps its file order."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import pytest_collection_modifyitems

TMP = {"tmp_path_factory": [SimpleNamespace(scope="session", baseid="")]}  # pytest's own: does not count
BOX = {"box": [SimpleNamespace(scope="module", baseid="tests/c.py")], **TMP}  # a venue, a booted image


class Item:
    def __init__(self, module: str, line: int, in_order: bool = False, param: int | None = None,
                 fixtures: dict | None = None) -> None:
        self.nodeid = f"tests/{module}.py::t{line}" + (f"[{param}]" if param is not None else "")
        self.location = (f"tests/{module}.py", line, f"t{line}")
        if param is not None:
            self.callspec = SimpleNamespace(indices={"x": param})
        self._fixtureinfo = SimpleNamespace(name2fixturedefs=fixtures or TMP)
        self._in_order = in_order

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "in_order" and self._in_order else None


def test_shared_system_modules_keep_file_order_in_their_shuffled_slot() -> None:
    # As pytest-randomly left them: modules b, a, c, each shuffled inside. a is marked in_order; in c one test
    # uses a module-scoped fixture; b has only tmp_path-like fixtures and stays shuffled.
    items = [Item("b", 9), Item("b", 3), Item("a", 20, True), Item("a", 5, True, param=1),
             Item("a", 5, True, param=0), Item("a", 12, True), Item("c", 30, fixtures=BOX), Item("c", 2)]
    pytest_collection_modifyitems(None, items)
    assert [i.nodeid for i in items] == ["tests/b.py::t9", "tests/b.py::t3", "tests/a.py::t5[0]", "tests/a.py::t5[1]",
                                         "tests/a.py::t12", "tests/a.py::t20", "tests/c.py::t2", "tests/c.py::t30"]
