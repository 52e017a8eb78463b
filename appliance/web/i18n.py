"""UI text: German, with English complete, kept in gettext catalogs that a translator can work on.

The catalogs are `translations/<lang>/LC_MESSAGES/messages.po` next to this module, in *monolingual* (keyed)
gettext form: each msgid is a key such as `clerk.nav.sessions`, each msgstr the text in that language.
German is the source language (in Weblate, the German file is the monolingual base file); the English
file carries the German text above each entry as a translator comment (`#.`). Placeholders are
`str.format` fields (`Willkommen, {name}`) and stay as they are in every language. Views and templates
call `t(key, **values)`; there is nothing to register.

Why the `.po` files are read with Babel at start-up rather than compiled `.mo` files read with stdlib
`gettext`:
- one source of truth: the file a translator edits is the file that runs. There is no compile step for
  the build or the image to forget (setuptools does not compile catalogs) and no committed binary that can
  drift from its `.po`;
- what `t()` needs is a plain dict per language with German as the fallback; `gettext` would answer a
  missing entry with its msgid, which here is the key, not German text;
- the cost is paid once per process: reading both catalogs takes about 20 ms (Babel is imported then,
  not when this module is imported). `create_app` loads them, so a broken catalog stops the start, not a
  request.

`t()` is on the captive portal's hot path (a hall of 200 phones joins at once): two dict lookups, no file
access. The language comes from `?lang=` or the browser's Accept-Language: no cookie needed, so it works
in captive-portal mini-browsers that keep nothing.
"""

from __future__ import annotations

from pathlib import Path

from flask import g, request

LANGS = ("de", "en")
SOURCE = "de"
CATALOG_DIR = Path(__file__).parent / "translations"

_messages: dict[str, dict[str, str]] | None = None  # lang -> key -> text, read once per process by load()


def catalog_path(lang: str, directory: Path = CATALOG_DIR) -> Path:
    return directory / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(path: Path) -> dict[str, str]:
    """key -> text of one catalog. Raises on a malformed file; leaves out fuzzy and untranslated entries,
    as gettext does."""
    from babel.messages.pofile import read_po

    with open(path, "rb") as f:
        catalog = read_po(f, abort_invalid=True)
    return {m.id: m.string for m in catalog
            if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy}


def read_catalogs(directory: Path = CATALOG_DIR) -> dict[str, dict[str, str]]:
    return {lang: read_catalog(catalog_path(lang, directory)) for lang in LANGS}


def load() -> dict[str, dict[str, str]]:
    """The shipped catalogs, read on the first call of the process; every later call returns the same."""
    global _messages
    if _messages is None:
        _messages = read_catalogs()
    return _messages


def has(key: str) -> bool:
    """Whether the catalogs know this key (German, the source language, has every key)."""
    return key in load()[SOURCE]


def pick_language() -> str:
    asked = request.args.get("lang") or request.form.get("lang")
    if asked in LANGS:
        return asked
    best = request.accept_languages.best_match(LANGS)
    return best or "de"


def t(key: str, **values: object) -> str:
    return text(getattr(g, "lang", SOURCE), key, **values)


def text(lang: str, key: str, **values: object) -> str:
    """t() in a language given (appliance.web.fastpath answers outside a request context)."""
    messages = _messages or load()
    found = messages.get(lang, {}).get(key) or messages[SOURCE].get(key) or key
    return found.format(**values) if values else found
