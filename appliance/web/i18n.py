"""German UI text with English available. Each view module registers its own strings.

The language comes from `?lang=` or the browser's Accept-Language: no cookie needed, so it works in
captive-portal mini-browsers that keep nothing.
"""

from __future__ import annotations

from flask import g, request

LANGS = ("de", "en")
MESSAGES: dict[str, dict[str, str]] = {"de": {}, "en": {}}


def register(entries: dict[str, tuple[str, str]]) -> None:
    """entries: key -> (German, English)."""
    for key, (de, en) in entries.items():
        MESSAGES["de"][key] = de
        MESSAGES["en"][key] = en


def pick_language() -> str:
    asked = request.args.get("lang") or request.form.get("lang")
    if asked in LANGS:
        return asked
    best = request.accept_languages.best_match(LANGS)
    return best or "de"


def t(key: str, **values: object) -> str:
    lang = getattr(g, "lang", "de")
    text = MESSAGES.get(lang, {}).get(key) or MESSAGES["de"].get(key) or key
    return text.format(**values) if values else text


register({
    "app.name": ("Sitzungsbox", "Sitzungsbox"),
    "nav.skip": ("Zum Inhalt springen", "Skip to content"),
    "nav.lang_other": ("English", "Deutsch"),
    "error.title": ("Fehler", "Error"),
    "error.csrf": (
        "Das Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet. Bitte laden Sie die Seite neu.",
        "The form has expired or was not sent from this page. Please reload the page.",
    ),
    "error.404": ("Diese Seite gibt es nicht.", "This page does not exist."),
    "error.403": ("Dafür fehlt Ihnen die Berechtigung.", "You are not allowed to do this."),
    "error.413": ("Die Datei ist zu groß.", "The file is too large."),
    "error.500": (
        "Ein interner Fehler ist aufgetreten. Es wurde nichts verändert.",
        "An internal error occurred. Nothing was changed.",
    ),
})
