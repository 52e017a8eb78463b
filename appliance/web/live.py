"""The push channel, presence and room chat (issue 4)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("live", __name__)
