"""Shared fixtures. Under CI=true a network or browser test that cannot run is a failure, not a skip."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from appliance.config import Config
from appliance.store import open_db

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _file_order(item: pytest.Item) -> tuple:
    return item.location[1], tuple(item.callspec.indices.values()) if hasattr(item, "callspec") else ()


def _shares_a_system(item: pytest.Item) -> bool:
    """A test on a system that outlives it: a module-scoped (or wider) fixture of our own (a booted image, a
    venue, a running helper), or a module marked in_order. pytest's own wide fixtures (tmp_path_factory) do not
    count."""
    if item.get_closest_marker("in_order"):
        return True
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return any(d and d[-1].scope != "function" and d[-1].baseid.startswith("tests") for d in defs)


def pytest_collection_modifyitems(config, items: list[pytest.Item]) -> None:
    """pytest-randomly shuffles the modules and the tests in each (its hook wraps this one, so this runs after it).
    A module whose tests share a system (see _shares_a_system) is a sequence of steps: a member is admitted,
    then downloads; a service is killed, then the power is cut. Its tests keep their file order, in the module's
    shuffled slot; every other module runs shuffled."""
    by_module: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_module.setdefault(item.nodeid.split("::")[0], []).append(i)
    for positions in by_module.values():
        if not any(_shares_a_system(items[i]) for i in positions):
            continue
        ordered = sorted((items[i] for i in positions), key=_file_order)
        for i, item in zip(positions, ordered, strict=True):
            items[i] = item


def pytest_terminal_summary(terminalreporter, config) -> None:
    """The tests run in random order (pytest-randomly). Its seed is in the header, which -q (`make test`) hides:
    it is repeated at the end, next to the failures, so an order that failed can be run again."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"random test order: -p randomly --randomly-seed={seed}")


def poll(fn, timeout: float, what: str, every: float = 0.05):
    """fn()'s first truthy value; AssertionError naming WHAT at the deadline (polling, never a fixed wait)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: nach {timeout} s nicht erreicht")
        time.sleep(every)


def need(condition: bool, reason: str) -> None:
    """Skip loudly outside CI; fail in CI, where every network and browser test must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but this test cannot run: {reason}")
    pytest.skip(f"SKIPPED (would fail under CI=true): {reason}")


def need_root() -> None:
    need(os.geteuid() == 0, "needs root for network namespaces")


def need_binary(*names: str) -> None:
    for name in names:
        need(shutil.which(name) is not None, f"needs {name} (make test installs it as root)")


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return Config(
        state_dir=tmp_path / "state",
        run_dir=tmp_path / "run",
        helper_socket=tmp_path / "run" / "helper.sock",
        leases_file=tmp_path / "state" / "dnsmasq.leases",
        hostapd_ctrl_dir=tmp_path / "hostapd",
    ).validate()


@pytest.fixture
def db(cfg: Config):
    database = open_db(cfg.db_path)
    yield database
    database.conn.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Venue prefix -> the test module that uses it. Namespaces are named by prefix; two modules sharing one would
# tear down each other's venue whenever they run in one session (in any order).
_VENUE_PREFIXES: dict[str, str] = {}


@pytest.fixture(scope="module")
def venue_factory(request):
    """make(prefix, n_clients, **kw) -> tests.venue.Box: the whole appliance in a virtual venue (root).

    kw as for tests.venue.running_box (members, title, seed, before_start, daemon_caps, monitor, Config
    fields). Every venue made is torn down (processes, namespaces, files) at the end of the module, also when
    the setup or a test fails. Each module picks its own prefix.
    """
    need_root()
    need_binary("dnsmasq", "nft", "busybox", "curl", "setpriv")
    from tests.venue import running_box

    module = request.module.__name__
    with contextlib.ExitStack() as stack:
        def make(prefix: str, n_clients: int, **kw):
            owner = _VENUE_PREFIXES.setdefault(prefix, module)
            if owner != module:
                raise AssertionError(f"Venue-Präfix {prefix!r} benutzt schon {owner}: jedes Modul braucht ein eigenes")
            return stack.enter_context(running_box(prefix, n_clients, **kw))

        yield make


def logged_in_clerk(cfg: Config, db, page: str):
    """A clerk's test client, logged in (password set for this test's database only), and the CSRF token of
    `page`, which it opened."""
    import re

    from appliance.helper.client import NullHelper
    from appliance.web import auth
    from appliance.web.app import create_app

    c = create_app(cfg, helper=NullHelper(), testing=True).test_client()
    auth.set_password(db, "pw-for-this-test-1")
    token = re.compile(r'name="csrf_token" value="([^"]+)"')
    tok = token.search(c.get("/clerk/login").get_data(as_text=True)).group(1)
    c.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-this-test-1"})
    return c, token.search(c.get(page).get_data(as_text=True)).group(1)


def wait_js(page, expression: str, arg=None, timeout: float = 10.0):
    """The first truthy value of a JavaScript expression or function in a Playwright page, polled with a deadline.

    Through page.evaluate (the DevTools protocol, which the page's Content-Security-Policy does not govern), not
    page.wait_for_function: its string predicates are evaluated inside the page, and the box's `script-src 'self'`
    (rightly) refuses that eval — whether it does depends on timing, which made tests flaky."""
    return poll(lambda: page.evaluate(expression, arg), timeout, f"page: {expression[:80]}")
