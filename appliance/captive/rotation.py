"""Key rotation: the one place that runs the whole pipeline, in the order that leaves no gap.

1. sessions.service.rotate_keys   new keys and keyids in the database (one transaction)
2. netconf.render.write_psk       wpa_psk rewritten from the database (no root needed)
3. radio.control.reload_keys      every radio: RELOAD_WPA_PSK, DEAUTHENTICATE stations with a revoked keyid
4. admission.revoke_session_devices  the helper drops their firewall admissions

Steps 2-4 live in modules other processes also use; they are imported inside rotate() so the web
process loads them only when a clerk actually rotates. A failing step is reported, never swallowed:
the database already holds the new keys, so the clerk must know that the radios may still accept
the old ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from appliance.config import Config
from appliance.sessions import service
from appliance.store.db import audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationResult:
    session_id: int
    generation: int
    revoked_keyids: tuple[str, ...]
    files_written: int = 0
    devices_disconnected: int = 0
    admissions_revoked: int = 0
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.errors

    def message(self) -> str:
        """What the clerk reads after rotating (German; the card sheet must be printed again)."""
        devices = self.devices_disconnected
        text = (f"Alle Schlüssel erneuert. {devices} {'Gerät wurde' if devices == 1 else 'Geräte wurden'} "
                "getrennt. Bitte neue Karten drucken.")
        if self.errors:
            text += " Achtung: " + " ".join(self.errors)
        return text


def _count(value: Any) -> int:
    """The other modules may answer with a count or with the affected items."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return len(list(value))
    return 0


def connected_with(db: sqlite_utils.Database, keyids: Sequence[str]) -> int:
    """Stations currently associated with one of these keyids: they will be disconnected."""
    if not keyids:
        return 0
    marks = ",".join("?" for _ in keyids)
    row = db.execute(f"SELECT COUNT(*) FROM stations WHERE connected = 1 AND keyid IN ({marks})",  # noqa: S608
                     list(keyids)).fetchone()
    return int(row[0])


def push_keys(cfg: Config, db: sqlite_utils.Database, revoked: Sequence[str] = ()) -> tuple[int, int | None, list[str]]:
    """Steps 2 and 3: write the files and reload the radios. Returns (files, deauthenticated or None, errors)."""
    errors: list[str] = []
    files = 0
    deauth: int | None = None
    try:
        from appliance.netconf import render
        render.write_psk(cfg, db)
        files = 1
    except Exception as exc:  # report any failure to the clerk, keep going
        log.exception("netconf write_psk failed")
        errors.append(f"Die Netzkonfiguration konnte nicht geschrieben werden ({type(exc).__name__}); "
                      "das Funkmodul kennt die neuen Schlüssel noch nicht.")
        return files, deauth, errors
    try:
        from appliance.radio import control
        result = control.reload_keys(cfg, db, list(revoked))
        deauth = None if result is None else _count(result)
    except control.RadiosUnreachable as exc:
        deauth = len(exc.dropped)
        errors.append(f"Funkmodul {', '.join(exc.interfaces)} nicht erreichbar: dort gelten die alten Schlüssel "
                      "weiter, bis es neu startet.")
    except Exception as exc:
        log.exception("radio reload_keys failed")
        errors.append(f"Das Funkmodul konnte die Schlüssel nicht neu laden ({type(exc).__name__}).")
    return files, deauth, errors


def rotate(cfg: Config, db: sqlite_utils.Database, helper: Any, actor: str,
           session_id: int | None = None) -> RotationResult:
    """Rotate the keys of `session_id` (default: the active session). SessionError if there is none."""
    if session_id is None:
        active = service.active_session(db)
        if active is None:
            raise service.SessionError("Es ist keine Sitzung aktiv.")
        session_id = active.id
    before = service.get_session(db, session_id)
    old_keyids = [m.keyid for m in service.members(db, session_id)]
    # Counted before the radios drop them: the fallback when reload_keys reports no number.
    about_to_drop = connected_with(db, [*old_keyids, "guest"])
    revoked = service.rotate_keys(db, session_id, actor=actor)
    files, deauth, errors = push_keys(cfg, db, revoked)
    admissions = 0
    try:
        from appliance.captive import admission
        admissions = _count(admission.revoke_session_devices(db, helper, session_id))
    except Exception as exc:
        log.exception("revoke_session_devices failed")
        errors.append(f"Freigaben in der Firewall konnten nicht entzogen werden ({type(exc).__name__}).")
    result = RotationResult(
        session_id=session_id,
        generation=before.key_generation + 1,
        revoked_keyids=tuple(revoked),
        files_written=files,
        devices_disconnected=deauth if deauth is not None else about_to_drop,
        admissions_revoked=admissions,
        errors=tuple(errors),
    )
    audit(db, actor, "keys.rotate.pipeline",
          f"session={session_id} files={files} disconnected={result.devices_disconnected} "
          f"admissions={admissions} errors={len(errors)}")
    return result


def switch_session(cfg: Config, db: sqlite_utils.Database, helper: Any, session_id: int,
                   actor: str) -> list[str]:
    """Make `session_id` the live session: its keys replace the previous session's on every radio.

    The SSID is the box's, so this is a key reload, not a radio restart: the previous session's
    stations are dropped, its firewall admissions revoked, and nobody else notices. Returns errors.
    """
    previous = service.active_session(db)
    service.activate(db, session_id, actor=actor)
    revoked: list[str] = []
    if previous is not None and previous.id != session_id:
        revoked = [m.keyid for m in service.members(db, previous.id)] + ["guest"]
    _files, _deauth, errors = push_keys(cfg, db, revoked)
    if revoked:
        try:
            from appliance.captive import admission
            admission.revoke_session_devices(db, helper, previous.id)
        except Exception as exc:
            log.exception("revoke_session_devices failed")
            errors.append(f"Freigaben der vorigen Sitzung konnten nicht entzogen werden ({type(exc).__name__}).")
    return errors
