"""gunicorn's access log without secrets: paths only (serve.ACCESS_LOG_FORMAT), and the room screen's display
token cut out of its path (`/saal/<token>` is logged as `/saal/…`: the link is the screen's only key).

Named in serve.gunicorn_options by its import path, so gunicorn loads it in the worker after the privilege drop.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

SECRET_PATH = re.compile(r"^/saal/[^/?#\s]+")


def redact(path: str | None) -> str:
    """A request path as it may be logged."""
    return SECRET_PATH.sub("/saal/…", path or "")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201 - gunicorn's signature
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = redact(atoms.get("U"))
        atoms["r"] = _request_line(atoms.get("r", ""))  # not in our format; redacted should anyone add it
        return atoms


def _request_line(line: str) -> str:
    method, _, rest = line.partition(" ")
    return f"{method} {redact(rest)}" if rest else line
