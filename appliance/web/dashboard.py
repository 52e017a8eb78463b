"""The technicians' dashboard (issue 5)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__)
