"""The portal act a member performs: enter the personal code from the card.

Behind external access points no radio of ours reports the keyid that names a phone; the member types the
code printed on the card instead (captive.codes). Wrong codes are counted per device (IP and MAC, in the
worker's memory: codes.Throttle) and logged without the code; a valid code of the active session admits this
(MAC, IP) as that member (captive.admission.admit_with_code: the admission row and its audit entry commit
together, the firewall helper is asked after the commit).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlite_utils

from appliance.captive import admission, codes
from appliance.helper.client import HelperError
from appliance.sessions import service

if TYPE_CHECKING:
    from appliance.captive.identify import Device

log = logging.getLogger(__name__)

# What happened; the portal view words it (its language) and picks the HTTP status.
ADMITTED = "admitted"
NOT_FOR_DEVICE = "not_for_device"  # no session, or a device named by its Wi-Fi key: it never uses a code
WAIT = "wait"  # too many wrong codes: `seconds` to wait
EMPTY = "empty"
MALFORMED = "malformed"  # cannot be anybody's code: not counted as a try
WRONG = "wrong"
HELPER_FAILED = "helper_failed"  # the code was right, the firewall refused: try again in a minute


@dataclass(frozen=True)
class CodeOutcome:
    status: str
    seconds: int = 0
    member: service.Member | None = None
    error: str = ""  # German, for the log and the clerk; never shown with the code

    @property
    def ok(self) -> bool:
        return self.status == ADMITTED


def may_use_code(device: Device) -> bool:
    """Only a device no radio of ours knows (no station keyid) and not yet a member gets the code field: a
    phone on a personal or the guest Wi-Fi key is named by that key alone."""
    return device.mac is not None and device.keyid is None and device.kind == "unknown"


_PROCESS_THROTTLE = codes.Throttle()


def enter_personal_code(cfg: Any, db: sqlite_utils.Database, helper: Any, device: Device, typed_code: str, *,
                        throttle: codes.Throttle | None = None) -> CodeOutcome:
    """A member's personal code typed on `device`. cfg: unused, kept so every act has the same shape.

    throttle: the wrong-code counter to use; the web app passes its own (one per app). Without one, the
    process's counter is used: never none, so no caller can switch the throttling off by forgetting it.
    """
    throttle = _PROCESS_THROTTLE if throttle is None else throttle
    session = service.active_session(db)
    if session is None or not may_use_code(device):
        return CodeOutcome(NOT_FOR_DEVICE)
    handles = (f"ip:{device.ip}", f"mac:{device.mac}")
    wait = throttle.wait(handles)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        log.warning("Persönlicher Code: Gerät %s muss noch %d s warten", device.ip, seconds)
        return CodeOutcome(WAIT, seconds=seconds)
    if not typed_code.strip():
        return CodeOutcome(EMPTY)
    if codes.normalise(typed_code) is None:
        return CodeOutcome(MALFORMED)
    member = service.member_by_code(db, session.id, typed_code)
    if member is None:
        misses = throttle.failed(handles)
        log.warning("Persönlicher Code falsch von Gerät %s (%d. Fehlversuch)", device.ip, misses)
        return CodeOutcome(WRONG)
    throttle.succeeded(handles)
    try:
        admission.admit_with_code(db, helper, device, member, session)
    except HelperError as exc:
        log.warning("admission failed: %s", exc)
        return CodeOutcome(HELPER_FAILED, member=member, error=str(exc))
    log.info("Persönlicher Code: Gerät %s als Mitglied %d freigeschaltet", device.ip, member.id)
    return CodeOutcome(ADMITTED, member=member)
