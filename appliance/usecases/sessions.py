"""The acts on sessions a clerk performs, from the web page or the command line alike.

activate_session  make a session the live one: its keys replace the previous session's on every radio
import_members    add the people of a member list (CSV); their keys reach the radios if the session is live
rotate_keys       new keys and codes for everyone; old cards stop working, their devices are dropped

Each act runs in the order that leaves no gap:

1. the database part and its one audit entry in ONE transaction (sessions.service row writes);
2. netconf.render.write_psk        wpa_psk rewritten from the database (no root needed);
3. radio.control.reload_keys       every radio: RELOAD_WPA_PSK, DEAUTHENTICATE stations with a revoked keyid;
4. admission.revoke_session_devices the helper drops the firewall admissions of the revoked session.

The audit entry belongs to step 1 and commits with it: an entry written after the radio steps could be
lost to a crash after the commit, leaving new keys nobody recorded. The outcome of steps 2-4 is what the
clerk reads (German, in the returned result) and what the log keeps; step 4 records the admissions it
closed itself (admission.revoke_session), in the transaction that closes them, because only then is it
true. A failing step 2-4 is reported, never swallowed: the database already holds the new state, so the
clerk must know that a radio may still accept the old keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from appliance.captive.keys import GUEST_KEYID
from appliance.config import Config
from appliance.sessions import roster, service
from appliance.store.db import audit
from appliance.store.transaction import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActResult:
    """What an act did. `errors` are the steps after the commit that failed (German, for the clerk)."""

    session_id: int
    text: str
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.errors

    def message(self) -> str:
        return self.text + ("" if self.ok else " Achtung: " + " ".join(self.errors))

    def lines(self) -> list[str]:
        """For the command line: the result, then one line per failed step."""
        return [self.text, *(f"Achtung: {e}" for e in self.errors)]


@dataclass(frozen=True)
class ImportResult(ActResult):
    count: int = 0


@dataclass(frozen=True)
class RotationResult(ActResult):
    generation: int = 0
    revoked_keyids: tuple[str, ...] = ()
    files_written: int = 0
    devices_disconnected: int = 0
    admissions_revoked: int = 0


def rotation_text(devices: int) -> str:
    """What the clerk reads after rotating (German; the card sheet must be printed again)."""
    return (f"Alle Schlüssel erneuert. {devices} {'Gerät wurde' if devices == 1 else 'Geräte wurden'} "
            "getrennt. Bitte neue Karten drucken.")


# --- the acts -----------------------------------------------------------------------------------


def activate_session(cfg: Config, db: sqlite_utils.Database, helper: Any, session_id: int,
                     actor: str) -> ActResult:
    """Make `session_id` the live session. SessionError (nothing changed) if there is no such session.

    The SSID is the box's, so this is a key reload, not a radio restart: the previous session's stations
    are dropped, its firewall admissions revoked, and nobody else notices. Exactly one session is active
    before and after: both flags change in the one transaction with the audit entry.
    """
    with transaction(db):
        previous = service.set_active(db, session_id)
        switched = previous is not None and previous.id != session_id
        audit(db, actor, "session.activate",
              f"session={session_id}" + (f" previous={previous.id}" if switched else ""))
        revoked = ([m.keyid for m in service.members(db, previous.id)] + [GUEST_KEYID]) if switched else []
    _files, _deauth, errors = _push_keys(cfg, db, revoked)
    if switched:
        _admissions, error = _revoke_admissions(db, helper, previous.id,
                                                "Freigaben der vorigen Sitzung konnten nicht entzogen werden")
        errors += error
    return ActResult(session_id, f"Sitzung {session_id} ist jetzt aktiv.", tuple(errors))


def import_members(cfg: Config, db: sqlite_utils.Database, helper: Any, session_id: int, data: bytes,
                   actor: str) -> ImportResult:
    """Add the people of a member list (CSV bytes). RosterError (with every problem) or SessionError when the
    list cannot be taken: then nobody is added. New keys of the live session reach the radios now, not at
    the next boot; nobody loses a key, so nothing is revoked (helper: unused, kept for one signature)."""
    session = service.get_session(db, session_id)
    rows = roster.parse_members(data, default_body=session.body)
    with transaction(db):
        count = service.insert_members(db, session_id, rows)
        audit(db, actor, "members.import", f"session={session_id} count={count}")
        live = service.get_session(db, session_id).active
    errors = _push_keys(cfg, db)[2] if live else []
    return ImportResult(session_id, f"{count} Personen importiert. Jede hat einen eigenen Schlüssel.",
                        tuple(errors), count=count)


def rotate_keys(cfg: Config, db: sqlite_utils.Database, helper: Any, session_id: int | None,
                actor: str) -> RotationResult:
    """New keys, keyids and codes for everyone of `session_id` (None: the active session) and a new guest key.
    SessionError (nothing changed) if there is no such session or none is active."""
    with transaction(db):
        if session_id is None:
            active = service.active_session(db)
            if active is None:
                raise service.SessionError("Es ist keine Sitzung aktiv.")
            session_id = active.id
        before = service.get_session(db, session_id)
        # Counted before the radios drop them: the fallback when reload_keys reports no number.
        about_to_drop = _connected_with(db, [*(m.keyid for m in service.members(db, session_id)), GUEST_KEYID])
        revoked = service.replace_keys(db, session_id)
        generation = before.key_generation + 1
        audit(db, actor, "keys.rotate", f"session={session_id} generation={generation} keys={len(revoked)}")
    if before.active:
        files, deauth, errors = _push_keys(cfg, db, revoked)
    else:  # the radios carry the live session's keys only: nothing of this session is on the air
        files, deauth, errors = 0, 0, []
    admissions, error = _revoke_admissions(db, helper, session_id,
                                           "Freigaben in der Firewall konnten nicht entzogen werden")
    errors += error
    devices = deauth if deauth is not None else about_to_drop
    if errors:
        log.error("Schlüssel von Sitzung %s erneuert, aber: %s", session_id, " ".join(errors))
    return RotationResult(session_id, rotation_text(devices), tuple(errors), generation=generation,
                          revoked_keyids=tuple(revoked), files_written=files, devices_disconnected=devices,
                          admissions_revoked=admissions)


# --- the radios and the firewall, after the commit ------------------------------------------------


def _count(value: Any) -> int:
    """The adapters may answer with a count or with the affected items."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return len(list(value))
    return 0


def _connected_with(db: sqlite_utils.Database, keyids: Sequence[str]) -> int:
    """Stations currently associated with one of these keyids: they will be disconnected."""
    if not keyids:
        return 0
    marks = ",".join("?" for _ in keyids)
    row = db.execute(f"SELECT COUNT(*) FROM stations WHERE connected = 1 AND keyid IN ({marks})",  # noqa: S608
                     list(keyids)).fetchone()
    return int(row[0])


def _push_keys(cfg: Config, db: sqlite_utils.Database,
               revoked: Sequence[str] = ()) -> tuple[int, int | None, list[str]]:
    """Steps 2 and 3: write the key file and reload the radios. Returns (files, deauthenticated or None,
    errors). Imported here: the web process loads the radio adapters only when a clerk acts."""
    from appliance.netconf import render
    from appliance.radio import control

    errors: list[str] = []
    try:
        render.write_psk(cfg, db)
    except Exception as exc:  # any failure goes to the clerk; the radios must not reload a stale file
        log.exception("netconf write_psk failed")
        errors.append(f"Die Netzkonfiguration konnte nicht geschrieben werden ({type(exc).__name__}); "
                      "das Funkmodul kennt die neuen Schlüssel noch nicht.")
        return 0, None, errors
    deauth: int | None = None
    try:
        result = control.reload_keys(cfg, db, list(revoked))
        deauth = None if result is None else _count(result)
    except control.RadiosUnreachable as exc:
        deauth = len(exc.dropped)
        errors.append(f"Funkmodul {', '.join(exc.interfaces)} nicht erreichbar: dort gelten die alten Schlüssel "
                      "weiter, bis es neu startet.")
    except Exception as exc:
        log.exception("radio reload_keys failed")
        errors.append(f"Das Funkmodul konnte die Schlüssel nicht neu laden ({type(exc).__name__}).")
    return 1, deauth, errors


def _revoke_admissions(db: sqlite_utils.Database, helper: Any, session_id: int,
                       failure: str) -> tuple[int, list[str]]:
    """Step 4: the helper drops the session's admissions (each closed row is audited by admission)."""
    from appliance.captive import admission

    try:
        return _count(admission.revoke_session_devices(db, helper, session_id)), []
    except Exception as exc:
        log.exception("revoke_session_devices failed")
        return 0, [f"{failure} ({type(exc).__name__})."]
