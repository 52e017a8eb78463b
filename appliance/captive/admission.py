"""The one place that decides and records who is let through the firewall.

A row in `admissions` (mac, ip, revoked_at NULL) is a *live* admission and mirrors one element
`mac . ip` of the nftables set the helper maintains. The row is written first (the partial unique
index makes concurrent admits of the same pair safe) and removed again when the helper refuses, so
the table never claims more than the firewall was asked to allow. Each row change commits together with its
audit entry; the helper is never called while the write lock is held.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlite_utils

from appliance.helper.client import HelperError
from appliance.store.db import audit, now
from appliance.store.transaction import transaction

if TYPE_CHECKING:
    from appliance.captive.identify import Device
    from appliance.sessions.service import Session

log = logging.getLogger(__name__)


def _duplicate(exc: sqlite3.IntegrityError) -> bool:
    """The partial unique index admissions_live refused a second live row: someone else was quicker. Any
    other integrity error (a failed audit insert, a foreign key) is a real failure and must travel on."""
    return "UNIQUE constraint failed: admissions" in str(exc)


def is_admitted(db: sqlite_utils.Database, mac: str, ip: str) -> bool:
    row = db.execute("SELECT 1 FROM admissions WHERE mac = ? AND ip = ? AND revoked_at IS NULL",
                     [mac.lower(), ip]).fetchone()
    return row is not None


def admit(db: sqlite_utils.Database, helper: Any, device: Device, session: Session,
          action: str = "admission.admit") -> None:
    """Let `device` through for `session`. Idempotent; HelperError propagates and leaves no row."""
    if device.mac is None:
        raise ValueError("Gerät ohne bekannte MAC-Adresse kann nicht freigegeben werden")
    if device.kind == "member" and (device.member is None or device.member.session_id != session.id):
        raise ValueError("Mitglied gehört nicht zur aktiven Sitzung")
    mac = device.mac.lower()
    kind = "member" if device.kind == "member" else "guest"
    member_id = device.member.id if device.member else None
    try:
        with transaction(db):
            live = db.execute("SELECT id, session_id FROM admissions WHERE mac = ? AND ip = ? AND revoked_at IS NULL",
                              [mac, device.ip]).fetchone()
            if live is not None and live[1] == session.id:
                return
            if live is not None:  # left over from an earlier session: closed; the helper is asked again below
                db.execute("UPDATE admissions SET revoked_at = ? WHERE id = ?", [now(), live[0]])
            row_id = db.execute(
                "INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) VALUES (?, ?, ?, ?, ?, ?)",
                [session.id, mac, device.ip, member_id, kind, now()],
            ).lastrowid
            detail = f"session={session.id} admission={row_id} kind={kind}"
            audit(db, "portal", action, detail + (f" member={member_id}" if action == "admission.code" else ""))
    except sqlite3.IntegrityError as exc:
        if _duplicate(exc):
            return  # a concurrent request admitted the same pair a moment ago
        raise
    # The helper is asked after the commit, never while holding the write lock: a slow helper must not stall
    # every other writer of a live session. When it refuses, the row and its audit entry go again together.
    try:
        helper.admit(mac, device.ip)
    except Exception:
        with transaction(db):
            db.execute("DELETE FROM admissions WHERE id = ?", [row_id])
            audit(db, "portal", "admission.refused", detail)
        raise


def admit_with_code(db: sqlite_utils.Database, helper: Any, device: Device, member: Any, session: Session) -> None:
    """Let `device` through as `member`, whose personal code it just gave (the portal checked the code).

    A device that was already let through as a guest keeps its firewall element (same MAC and IP): its
    guest row is closed and a member row opened in one transaction, so the presence daemon, which reads
    new member rows, sees the member from now on. The code itself is never stored or logged.
    """
    from appliance.captive.identify import Device

    if member.session_id != session.id:
        raise ValueError("Mitglied gehört nicht zur aktiven Sitzung")
    if device.mac is None:
        raise ValueError("Gerät ohne bekannte MAC-Adresse kann nicht freigegeben werden")
    mac = device.mac.lower()
    live = db.execute("SELECT id, session_id, member_id FROM admissions WHERE mac = ? AND ip = ? "
                      "AND revoked_at IS NULL", [mac, device.ip]).fetchone()
    if live is not None and live[1] == session.id:
        if live[2] == member.id:
            return
        stamp = now()
        try:
            with transaction(db):
                db.execute("UPDATE admissions SET revoked_at = ? WHERE id = ?", [stamp, live[0]])
                row_id = db.execute(
                    "INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                    "VALUES (?, ?, ?, ?, 'member', ?)", [session.id, mac, device.ip, member.id, stamp]).lastrowid
                audit(db, "portal", "admission.code",
                      f"session={session.id} admission={row_id} member={member.id}")
        except sqlite3.IntegrityError as exc:
            if _duplicate(exc):
                return  # a concurrent request did the same a moment ago
            raise
        return
    admit(db, helper, Device(device.ip, mac, "member", member, False), session, action="admission.code")


def _revoke_rows(db: sqlite_utils.Database, helper: Any, rows: list[tuple[int, str, str]],
                 audit_entry: tuple[str, str] | None = None) -> int:
    """Revoke each (id, mac, ip); a row the helper could not revoke stays live so a retry catches it.

    The rows the helper dropped are closed together with the audit entry (action, detail), in one transaction
    after the helper calls: a crash before it leaves them live, and revoking again is harmless."""
    done, failed = [], []
    for row_id, mac, ip in rows:
        try:
            helper.revoke(mac, ip)
        except HelperError as exc:
            log.warning("revoke admission %s failed: %s", row_id, exc)
            failed.append(str(exc))
            continue
        done.append(row_id)
    if done:
        stamp = now()
        with transaction(db):
            db.conn.executemany("UPDATE admissions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                           [(stamp, row_id) for row_id in done])
            if audit_entry is not None:
                audit(db, "system", audit_entry[0], audit_entry[1].format(count=len(done)))
    if failed:
        raise HelperError(f"{len(failed)} Freigabe(n) konnten nicht entzogen werden ({len(done)} entzogen): "
                          f"{failed[0]}")
    return len(done)


def revoke_session_devices(db: sqlite_utils.Database, helper: Any, session_id: int) -> int:
    """All live admissions of a session (key rotation). Returns how many were revoked."""
    rows = db.execute("SELECT id, mac, ip FROM admissions WHERE session_id = ? AND revoked_at IS NULL",
                      [session_id]).fetchall()
    return _revoke_rows(db, helper, [tuple(r) for r in rows],
                        ("admission.revoke_session", f"session={session_id} count={{count}}"))


def revoke_macs(db: sqlite_utils.Database, helper: Any, macs: Iterable[str]) -> int:
    """All live admissions of these MACs (e.g. stations deauthenticated by the radio)."""
    wanted = sorted({m.lower() for m in macs})
    if not wanted:
        return 0
    marks = ",".join("?" for _ in wanted)
    rows = db.execute(
        f"SELECT id, mac, ip FROM admissions WHERE revoked_at IS NULL AND mac IN ({marks})",  # noqa: S608
        wanted).fetchall()
    return _revoke_rows(db, helper, [tuple(r) for r in rows])


def resync(db: sqlite_utils.Database, helper: Any) -> int:
    """Re-admit every live admission of the active session (a fresh nft ruleset starts empty).

    Live rows of sessions that are no longer active are closed instead: they must not come back.
    Returns how many pairs were re-admitted; raises HelperError only when every attempt failed.
    """
    stamp = now()
    db.execute(
        "UPDATE admissions SET revoked_at = ? WHERE revoked_at IS NULL "
        "AND session_id NOT IN (SELECT id FROM sessions WHERE active = 1)", [stamp])
    rows = db.execute("SELECT mac, ip FROM admissions WHERE revoked_at IS NULL ORDER BY id").fetchall()
    done, last_error = 0, None
    for mac, ip in rows:
        try:
            helper.admit(mac, ip)
            done += 1
        except HelperError as exc:
            last_error = exc
            log.warning("resync admit failed: %s", exc)
    if rows and done == 0 and last_error is not None:
        raise last_error
    return done
