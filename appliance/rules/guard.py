"""Acts that affect the room are guarded: what they would do, in words, and the token that binds a confirmation
to exactly what was shown.

Guarded acts (ACTS): activating a session, renewing its keys, wiping its documents, chat or attendance record.
Before each, the clerk reads what happens to how many (`Impact`, counted by usecases.impact; `words`), and the
confirming POST carries `sign(...)` of that impact: a stray click, an old form replayed, a POST without the
confirmation page or a page whose numbers no longer hold (a device joined, the act was already done, the key
generation moved on) is refused by `check` and the clerk sees the new numbers.

Pure: no Flask, no SQL. The wording takes the translation function (`t`) as an argument, so the web page words
it in the reader's language and the command line in German, from the same catalog entries.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import astuple, dataclass
from enum import Enum

ACTIVATE = "activate"
ROTATE = "rotate"
WIPE_DOCUMENTS = "wipe_documents"  # the non-public documents
WIPE_ALL_DOCUMENTS = "wipe_all_documents"
WIPE_CHAT = "wipe_chat"
WIPE_PRESENCE = "wipe_presence"
ACTS = (ACTIVATE, ROTATE, WIPE_DOCUMENTS, WIPE_ALL_DOCUMENTS, WIPE_CHAT, WIPE_PRESENCE)

MAX_AGE = 15 * 60  # seconds a confirmation page stays valid

T = Callable[..., str]  # i18n.t: key, **values -> text


@dataclass(frozen=True)
class Impact:
    """What one act would do now. Every field is part of what the clerk confirms (`summary`)."""

    act: str
    session_id: int  # the session acted on
    title: str
    active_id: int | None = None  # the live session now (activate: the one that ends)
    active_title: str = ""
    generation: int = 0  # the session's key generation (a rotation moves it on)
    devices: int = 0  # connected stations that lose their connection
    admissions: int = 0  # live firewall admissions revoked
    keys: int = 0  # personal keys replaced (rotate)
    files: int = 0  # documents deleted
    messages: int = 0  # chat messages deleted
    intervals: int = 0  # attendance intervals deleted
    people: int = 0  # members those intervals belong to
    corrections: int = 0  # attendance corrections deleted

    def __post_init__(self) -> None:
        if self.act not in ACTS:
            raise ValueError(f"not a guarded act: {self.act}")

    @property
    def switches(self) -> bool:
        """Activation of a session while another one is live."""
        return self.act == ACTIVATE and self.active_id is not None and self.active_id != self.session_id

    @property
    def affects_room(self) -> bool:
        """Someone in the room loses their connection or their admission."""
        return self.devices > 0 or self.admissions > 0

    def summary(self) -> str:
        return "\x1f".join(str(v) for v in astuple(self))


# --- the confirmation token ------------------------------------------------------------------------------


class Verdict(Enum):
    OK = "ok"
    MISSING = "missing"  # a POST without the confirmation page
    EXPIRED = "expired"  # shown too long ago
    CHANGED = "changed"  # not what was shown: the numbers moved, the act was done, or the form was altered


def _mac(secret: bytes, impact: Impact, issued: int, bound: str) -> str:
    message = f"{bound}\n{issued}\n{impact.summary()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, impact: Impact, issued: int, bound: str) -> str:
    """The token of a confirmation page showing `impact` at time `issued` (unix seconds) to the login `bound`."""
    return f"{issued}.{_mac(secret, impact, issued, bound)}"


def check(secret: bytes, impact: Impact, token: str, bound: str, now: int, max_age: int = MAX_AGE) -> Verdict:
    """Whether `token` confirms `impact` (as counted now) for this login."""
    issued_text, dot, mac = (token or "").partition(".")
    if not dot or not issued_text.isdigit() or not mac:
        return Verdict.MISSING
    issued = int(issued_text)
    if issued > now + 60 or now - issued > max_age:
        return Verdict.EXPIRED
    if not hmac.compare_digest(mac, _mac(secret, impact, issued, bound)):
        return Verdict.CHANGED
    return Verdict.OK


# --- the words -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Texts:
    heading: str
    lines: list[str]  # what happens, to how many
    confirm: str  # the check box
    submit: str  # the button that does it


def _devices(i: Impact, t: T) -> str:
    if i.devices == 0:
        return t("guard.devices.none")
    if i.act == ACTIVATE:
        return t("guard.activate.device") if i.devices == 1 else t("guard.activate.devices", n=i.devices)
    return t("guard.rotate.device") if i.devices == 1 else t("guard.rotate.devices", n=i.devices)


def _admissions(i: Impact, t: T) -> str:
    if i.admissions == 0:
        return t("guard.admissions.none")
    return t("guard.admissions.one") if i.admissions == 1 else t("guard.admissions.many", n=i.admissions)


def words(i: Impact, t: T) -> list[str]:
    """What happens, to how many, sentence by sentence (the same on the page and on the command line)."""
    if i.act == ACTIVATE:
        if i.active_id is None:
            return [t("guard.activate.none_running", title=i.title)]
        if not i.switches:
            return [t("guard.activate.already", title=i.title)]
        return [t("guard.activate.ends", running=i.active_title, title=i.title), _devices(i, t), _admissions(i, t)]
    if i.act == ROTATE:
        lines = [t("guard.rotate.keys", n=i.keys, title=i.title)]
        lines.append(_devices(i, t) if i.active_id == i.session_id else t("guard.rotate.inactive", title=i.title))
        return [*lines, _admissions(i, t), t("guard.rotate.after")]
    if i.act == WIPE_DOCUMENTS:
        if i.files == 0:
            first = t("guard.documents.nonpublic_none", title=i.title)
        elif i.files == 1:
            first = t("guard.documents.nonpublic_one", title=i.title)
        else:
            first = t("guard.documents.nonpublic_many", n=i.files, title=i.title)
        return [first, t("guard.documents.after")]
    if i.act == WIPE_ALL_DOCUMENTS:
        if i.files == 0:
            first = t("guard.documents.all_none", title=i.title)
        elif i.files == 1:
            first = t("guard.documents.all_one", title=i.title)
        else:
            first = t("guard.documents.all_many", n=i.files, title=i.title)
        return [first, t("guard.documents.after")]
    if i.act == WIPE_CHAT:
        if i.messages == 0:
            first = t("guard.chat.none", title=i.title)
        elif i.messages == 1:
            first = t("guard.chat.one", title=i.title)
        else:
            first = t("guard.chat.many", n=i.messages, title=i.title)
        return [first, t("guard.no_disconnect")]
    if i.intervals == 0 and i.corrections == 0:
        first = t("guard.presence.none", title=i.title)
    else:
        first = t("guard.presence.some", title=i.title, intervals=i.intervals, people=i.people,
                  corrections=i.corrections)
    return [first, t("guard.no_disconnect")]


def texts(i: Impact, t: T) -> Texts:
    """The whole confirmation page's text."""
    if i.act == ACTIVATE:
        return Texts(t("guard.activate.heading", title=i.title), words(i, t), t("guard.activate.confirm"),
                     t("guard.activate.submit", title=i.title))
    if i.act == ROTATE:
        return Texts(t("guard.rotate.heading", title=i.title), words(i, t), t("guard.rotate.confirm"),
                     t("guard.rotate.submit"))
    if i.act in (WIPE_DOCUMENTS, WIPE_ALL_DOCUMENTS):
        return Texts(t("guard.documents.heading", title=i.title), words(i, t), t("guard.documents.confirm"),
                     t("guard.documents.submit"))
    if i.act == WIPE_CHAT:
        return Texts(t("guard.chat.heading", title=i.title), words(i, t), t("guard.chat.confirm"),
                     t("guard.chat.submit"))
    return Texts(t("guard.presence.heading", title=i.title), words(i, t), t("guard.presence.confirm"),
                 t("guard.presence.submit"))
