"""The one confirmation pattern of the clerk's guarded acts (rules.guard): activate a session, renew its keys,
wipe its documents, chat or attendance record.

The button on the clerk's page is a link (GET) to the act's own URL, which shows `page()`: what happens to
how many, in the reader's language, a check box and the button that does it. The form carries a token
(rules.guard.sign) of exactly the numbers shown, bound to this clerk's login. The view's POST asks
`refusal()` first: without the ticked box or with a token that no longer matches what the act would do now,
the same page comes back (422) with the reason and the new numbers, and nothing is done.
"""

from __future__ import annotations

import time

from flask import current_app, render_template, request

from appliance.rules import guard
from appliance.web import csrf, i18n

CONFIRM_FIELD = "confirm_token"


def _secret() -> bytes:
    key = current_app.secret_key
    return key.encode() if isinstance(key, str) else key


def token(impact: guard.Impact) -> str:
    return guard.sign(_secret(), impact, int(time.time()), csrf.session_token())


def refusal(impact: guard.Impact) -> str | None:
    """Why this POST does not confirm `impact` (the reader's language), or None: go ahead."""
    verdict = guard.check(_secret(), impact, request.form.get(CONFIRM_FIELD, ""), csrf.session_token(),
                          int(time.time()))
    if verdict is guard.Verdict.MISSING:
        return i18n.t("guard.refused.missing")
    if verdict is guard.Verdict.EXPIRED:
        return i18n.t("guard.refused.expired")
    if verdict is guard.Verdict.CHANGED:
        return i18n.t("guard.refused.changed")
    if request.form.get("confirm") != "yes":
        return i18n.t("guard.refused.unticked")
    return None


def confirmed(impact: guard.Impact, *, action: str, back: str, fields: dict[str, str] | None = None):
    """None when this request is a POST that confirms `impact`: the view goes ahead with the act. Otherwise the
    answer to send: the confirmation page (GET), or the same page refused with its reason (POST, 422).
    `action`: the URL the form posts to (the act's own), `back`: where nothing happens, `fields`: hidden inputs
    the act needs besides the token (e.g. which documents)."""
    error = refusal(impact) if request.method == "POST" else None
    if request.method == "POST" and error is None:
        return None
    return page(impact, action=action, back=back, fields=fields, error=error)


def page(impact: guard.Impact, *, action: str, back: str, fields: dict[str, str] | None = None,
         error: str | None = None):
    """The confirmation page (see `confirmed`)."""
    return render_template("clerk/confirm.html", texts=guard.texts(impact, i18n.t), impact=impact,
                           token=token(impact), action=action, back=back, fields=sorted((fields or {}).items()),
                           error=error), (422 if error else 200)
