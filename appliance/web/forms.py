"""Form fields as a tampered or broken form sends them: a field that is missing or not what the form offers is a
400 with a German message naming the field (worded by the error handler in app.py), never a 500.

A browser always sends what the page's form holds; these refusals meet hand-made requests, old pages after an
update, and fuzzers.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest, HTTPException

MAX_ID = 2**63 - 1  # SQLite's INTEGER; a larger number is no row's id (and would overflow the driver)


class FieldError(BadRequest):
    """A missing or malformed form field; `field` is its name as in the form."""

    def __init__(self, field: str) -> None:
        super().__init__(description="field")
        self.field = field


def required(name: str) -> str:
    """The field's text; FieldError if it is missing or blank."""
    value = request.form.get(name)
    if value is None or not value.strip():
        raise FieldError(name)
    return value


def is_row_id(text: str) -> bool:
    """Decimal ASCII digits of a number SQLite can hold (str.isdigit alone lets "１２" and 40 nines through)."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_ID


def row_id(name: str) -> int:
    """The field as a row id; FieldError if missing, not a number or out of range."""
    raw = request.form.get(name, "").strip()
    if not is_row_id(raw):
        raise FieldError(name)
    return int(raw)


def peek(name: str) -> str | None:
    """The field, or None when the body cannot be read (too large, malformed): for what every page reads
    besides the view (the language), so the error page about that body can still be drawn."""
    try:
        return request.form.get(name)
    except HTTPException:
        return None
