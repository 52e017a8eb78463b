"""Session documents for members and clerks (issue 3)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("documents", __name__)
