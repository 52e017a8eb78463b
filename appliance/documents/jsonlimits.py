"""JSON from outside (saved OParl answers in a folder) read with limits: its size and its nesting depth, each
refused in German naming the limit and the file. Pure: bytes in, objects or DocumentError out.

Python's json module has no depth limit of its own: it recurses until the interpreter's recursion limit and
then raises RecursionError (not ValueError), which callers that expect "invalid JSON" do not catch.
"""

from __future__ import annotations

import json
from typing import Any

from appliance.documents import DocumentError

MAX_BYTES = 8 * 1024 * 1024  # an OParl meeting with its agenda is some 100 KB; a list page a few MB
MAX_DEPTH = 64  # OParl objects nest about 6 deep (meeting → agenda item → consultation → paper → file)


def check_size(size: int, name: str) -> None:
    if size > MAX_BYTES:
        raise DocumentError(f"{name}: zu groß ({size / 2**20:.0f} MB; höchstens {MAX_BYTES // 2**20} MB).")


def depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of lists and objects (a scalar: 0), counted without recursion; stops past `limit`."""
    deepest = 0
    stack = [(obj, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(data: bytes, name: str) -> Any:
    """The JSON value of `data` (UTF-8, a BOM allowed); DocumentError naming `name` and the limit otherwise."""
    check_size(len(data), name)
    too_deep = f"{name}: zu tief verschachtelt (höchstens {MAX_DEPTH} Ebenen)."
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except RecursionError:
        raise DocumentError(too_deep) from None
    except UnicodeDecodeError:
        raise DocumentError(f"{name}: kein gültiges JSON (nicht UTF-8).") from None
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{name}: kein gültiges JSON (Zeile {exc.lineno}, Spalte {exc.colno}).") from None
    if depth(obj) > MAX_DEPTH:
        raise DocumentError(too_deep)
    return obj
