"""The layers of docs/STYLE ("Layers"), checked on the source: interfaces, use cases, rules, adapters and store.

Imports point down the list only. Rules and use cases import no Flask; rules do no I/O. Blueprints are registered
in create_app and nothing hangs itself on another module's blueprint, so there is no import cycle between views.
The imports are read with ast (every import in a module, also those inside functions; only imports under
`if TYPE_CHECKING:` are left out, since they never run).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "appliance"

# The layers, top to bottom. A module belongs to the first layer with a matching entry (a module or package).
INTERFACES = ("appliance.web", "appliance.cli", "appliance.chat.views", "appliance.presence.views",
              "appliance.documents.cli", "appliance.firstboot", "appliance.demo", "appliance.speakers_cli",
              "appliance.votes_cli")
USECASES = ("appliance.usecases",)
RULES = ("appliance.rules", "appliance.documents.policy", "appliance.chat.rules", "appliance.presence.engine")
ADAPTERS_AND_STORE = ("appliance.store", "appliance.helper", "appliance.radio", "appliance.netconf",
                      "appliance.netinfo", "appliance.documents.blobs", "appliance.push", "appliance.outside")
LAYERS = (("interfaces", INTERFACES), ("use cases", USECASES), ("rules", RULES),
          ("adapters and store", ADAPTERS_AND_STORE))

# Modules that must not know the web even though they are not (yet) in the rules layer: who is this device is a
# rule that still reads the store itself.
NO_WEB_EXTRA = ("appliance.captive.identify",)

WEB = ("flask", "werkzeug", "appliance.web")
IO = ("sqlite3", "sqlite_utils", "socket", "subprocess")


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _inside(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_of(name: str) -> int | None:
    for index, (_label, members) in enumerate(LAYERS):
        if _inside(name, members):
            return index
    return None


def _type_checking_only(tree: ast.Module) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


@cache
def imports(name: str, module_level_only: bool = False) -> frozenset[str]:
    """Every module NAME imports (for `from a import b` both a and a.b when a.b is a module of ours)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_only(tree)
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES)
    return frozenset(found)


def _pure_by_docstring() -> list[str]:
    out = []
    for name, path in MODULES.items():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if re.search(r"\bpure\b", doc, re.I):
            out.append(name)
    return out


RULE_MODULES = sorted(n for n in MODULES if _inside(n, RULES))
USECASE_MODULES = sorted(n for n in MODULES if _inside(n, USECASES))
NO_WEB = sorted(set(RULE_MODULES) | set(USECASE_MODULES) | set(_pure_by_docstring())
                | {n for n in MODULES if _inside(n, NO_WEB_EXTRA)})


def test_the_layers_name_real_modules():
    for _label, members in LAYERS:
        for entry in members:
            assert any(_inside(n, (entry,)) for n in MODULES), f"{entry}: no such module (layer list out of date)"
    for name in ("appliance.documents.policy", "appliance.chat.rules", "appliance.presence.engine",
                 "appliance.captive.identify", "appliance.rules.viewer"):
        assert name in NO_WEB


@pytest.mark.parametrize("name", NO_WEB)
def test_rules_use_cases_and_pure_modules_import_no_flask(name):
    bad = sorted(m for m in imports(name) if _inside(m, WEB))
    assert not bad, f"{name} imports the web layer: {bad}"


@pytest.mark.parametrize("name", RULE_MODULES)
def test_rules_do_no_io(name):
    bad = sorted(m for m in imports(name) if _inside(m, IO))
    assert not bad, f"{name} is a rule but imports {bad}"


def test_imports_point_down_the_list_only():
    wrong = []
    for name in MODULES:
        mine = layer_of(name)
        if mine is None:
            continue
        for target in imports(name):
            theirs = layer_of(target)
            if theirs is not None and theirs < mine:
                wrong.append(f"{name} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules():
    """Module-level imports only (a function-level import runs later). A package importing its own submodules
    in __init__ is not a cycle that matters; anything else is."""
    graph = {n: {m for m in imports(n, module_level_only=True) if m in MODULES and m != n} for n in MODULES}
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    real = [c for c in cycles if not any(all(_inside(m, (pkg,)) for m in c) for pkg in c)]
    assert not real, f"import cycles: {real}"


@pytest.mark.parametrize("name", ["appliance.chat.views", "appliance.presence.views", "appliance.web.live",
                                  "appliance.web.auth", "appliance.documents.policy", "appliance.rules.viewer"])
def test_each_module_imports_alone(name):
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


# --- blueprints: registered in create_app, endpoints that templates and views name exist -----------------------


@pytest.fixture
def app(cfg):
    from appliance.web.app import create_app

    return create_app(cfg, testing=True)


def test_chat_and_presence_have_their_own_blueprints(app):
    endpoints = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints["/events"] == "live.events"
    assert endpoints["/chat"] == "chat.chat_page" and endpoints["/clerk/chat"] == "chat.chat_clerk"
    assert endpoints["/clerk/attendance"] == "presence.attendance"
    assert endpoints["/presence/count"] == "presence.count"
    assert [e for e in app.view_functions if e.startswith("live.")] == ["live.events"]


# url_for and the helpers of appliance/web/links.py that every internal URL goes through.
URL_FOR = re.compile(r"""\b(?:url_for|link|bare|redirect_to|set_here)\(\s*(['"])([\w.]+)\1""")


def test_every_url_for_names_an_endpoint(app):
    named: dict[str, set[str]] = {}
    for path in [*PACKAGE.rglob("*.html"), *PACKAGE.rglob("*.py")]:
        for match in URL_FOR.finditer(path.read_text()):
            named.setdefault(match.group(2), set()).add(str(path.relative_to(ROOT)))
    assert "chat.chat_page" in named and "presence.attendance" in named  # the scan sees templates
    missing = {e: sorted(where) for e, where in named.items() if not e.startswith(".") and e not in app.view_functions}
    assert not missing, missing


def test_pages_that_link_across_blueprints_render(cfg, db):
    """The templates' url_for calls run: the clerk's session page links attendance and chat moderation, those
    pages link each other, the member's start page links the chat; both login pages render from one template."""
    from appliance.helper.client import NullHelper
    from appliance.push import hub as hub_mod
    from appliance.web import auth
    from appliance.web.app import create_app
    from tests.live_support import ANNA_IP, call, populate

    s, _ms = populate(cfg, db)
    auth.set_password(db, "layers-test-password-1", actor="test")
    app = create_app(cfg, helper=NullHelper(), testing=True)
    try:
        clerk = app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"', clerk.get("/clerk/login").text).group(1)
        assert clerk.post("/clerk/login", data={"csrf_token": token, "password": "layers-test-password-1"}
                          ).status_code == 302
        for path in (f"/clerk/sessions/{s.id}", "/clerk/attendance", "/clerk/chat", "/chat", "/clerk/chat/print",
                     "/clerk/attendance/print"):
            resp = clerk.get(path)
            assert resp.status_code == 200, (path, resp.status_code)
        assert 'href="/clerk/attendance"' in clerk.get(f"/clerk/sessions/{s.id}").text
        assert 'href="/clerk/presence/wipe"' in clerk.get("/clerk/chat").text
        assert 'action="/clerk/presence/wipe"' in clerk.get("/clerk/presence/wipe").text  # its confirmation page
        member = call(app, "/", ANNA_IP)
        assert member.status_code == 200 and 'href="/chat"' in member.text
        assert call(app, "/chat", ANNA_IP).status_code == 200
        for path in ("/clerk/login", "/technik/login"):
            assert app.test_client().get(path).status_code == 200
    finally:
        hub_mod.stop_all()
