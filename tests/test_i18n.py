"""UI text lives in the gettext catalogs, complete in German and English, and nowhere else.

Each check is a function that returns the problems it finds; the negative controls at the end show that a
missing English entry, a placeholder typo or a literal word in a template fails the check.
"""

from __future__ import annotations

import ast
import re
import shutil
import string
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

from appliance.documents import pdfcheck, traffic
from appliance.monitor import alerts, view
from appliance.rules import display as display_rules
from appliance.rules import login as login_rules
from appliance.rules import prefetch as prefetch_rules
from appliance.rules import speakers as speakers_rules
from appliance.rules import votes as votes_rules
from appliance.sessions import roster
from appliance.usecases import speakers as speakers_acts
from appliance.usecases import votes as votes_acts
from appliance.web import i18n

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "appliance"
TEMPLATES = PACKAGE / "web" / "templates"
JINJA = Environment(autoescape=True)  # only its lexer is used; Flask's delimiters are Jinja's defaults

# Keys built at run time (t('role.' ~ m.role), f"error.{code}"), by prefix: the members the code can produce.
DYNAMIC = {
    "role.": set(roster.ROLES.values()),  # clerk pages and cards
    "att.": {"present", "left", "absent"},  # presence.store: a member's status
    "att.corrected_": {"present", "absent", "auto"},  # presence.views.correction_text: the clerk's correction
    "chat.room.": {"all", "announce"},  # chat.views.room_label, the chat export's rooms
    "tech.class.": set(view.CLASSES),  # dashboard: signal and load classes
    "tech.sev.": set(alerts.SEVERITIES),  # dashboard: alert severities
    "tech.kind.": set(alerts.KINDS),  # dashboard: one line per alert kind
    "tech.value.": set(alerts.KINDS),  # dashboard: an alert's value, by kind
    "docs.state.": {"running", "done", "failed"},  # document_imports.state
    "docs.kind.": {"item", "consultation", "paper", "file", "json"},  # oparl_import.CODES: an import's counts
    "docs.pdf.kind.": set(pdfcheck.KINDS),  # doc_files.pdf_active: what the PDF check found
    "docs.traffic.": set(traffic.KINDS),  # doc_traffic.kind: the clerk's bytes on the radio
    "docs.prefetch.reason.": set(prefetch_rules.REASONS),  # web.documents: why a device may not fetch ahead now
    "saal.": set(display_rules.REFUSED),  # web.saal: why a room screen shows nothing
    "saal.kind.": set(display_rules.KINDS),  # the room screen: what a speaker asked for
    "speakers.kind.": set(speakers_rules.KINDS),  # the speakers pages: a request's kind
    "speakers.step.": set(speakers_acts.STEP_ACTIONS),  # the minutes' procedural steps (audit actions)
    "speakers.ask.": set(speakers_rules.KINDS),  # the member's buttons, one per kind
    "speakers.rule.": set(speakers_rules.PROCEDURE_FIELDS),  # the console's rules-of-procedure form
    "votes.choice.": set(votes_rules.CHOICES),  # web.votes: the choices' names (the vote_choice filter)
    "votes.mode.": set(votes_acts.MODES),  # the vote panel and the room screen: open / named
    "votes.rule.": set(votes_rules.RULES),  # the vote panel: the majority rules
    "votes.base.": set(votes_rules.BASES),  # the vote panel: a custom majority's base
    # the error handler (app.py); other codes: Werkzeug's text
    "error.": {"csrf", "400", "403", "404", "405", "413", "429", "500", "503"},
}
# Keys handed over in a variable: the session field that carries them -> the keys stored in it.
INDIRECT = {"login_note": {"login.expired", "logout.done"}}
# t(role.<field>) in the one login template: the fields of appliance.rules.login.Role that name keys.
ROLE_KEY_FIELDS = {"title_key", "no_password_key"}
# t(variable) calls, by file and variable name: where their keys are accounted for.
HIDDEN = {
    ("auth.py", "note"): "a key from session['login_note'], see INDIRECT",
    ("dashboard.py", "note"): "a key from session['login_note'], see INDIRECT",
    ("app.py", "key"): "the error handler: 'error.csrf' or f'error.{code}', see DYNAMIC",
}

# What a template may show outside t(): unit symbols (the same in both languages) and shell commands that
# are typed exactly as shown. Letters anywhere else are UI text and belong in the catalogs.
UNITS = {"ms", "s", "min", "h", "Mbit", "kbit", "dBm", "MHz", "C"}
COMMANDS: set[str] = set()  # the login page takes its command from the role (rules.login.Role.command)
TEXT_ATTRS = {"title", "aria-label", "placeholder", "alt"}
# String literals inside {{ }} / {% %} may be endpoints, file names, CSS classes, states ('static',
# 'js/chat.js', 'descending'): lower-case identifiers. Anything else with letters is text, except these.
EXPR_LITERALS = {"T"}  # r.at.replace('T', ' '): the ISO date separator
IDENTIFIER = re.compile(r"[a-z0-9_./:-]*")
MARK = "\ue000"  # stands for a {{ expression }} in the skeleton of a template
ATTRIBUTE_BLOCKS = {"body_class"}  # blocks that base.html fills into an attribute (class="..."), not text
WORD = re.compile(r"[^\W\d_]+")


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


# --- which keys the code uses --------------------------------------------------------------------------

def _is_t(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "t"
    return (isinstance(func, ast.Attribute) and func.attr == "t" and isinstance(func.value, ast.Name)
            and func.value.id == "i18n")


def _is_text(func: ast.expr) -> bool:
    """i18n.text(lang, key): t() with the language given (appliance.web.fastpath)."""
    return (isinstance(func, ast.Attribute) and func.attr == "text" and isinstance(func.value, ast.Name)
            and func.value.id == "i18n")


def python_keys(paths) -> tuple[set[str], set[str], list[str]]:
    """(keys, dynamic prefixes, problems) of every t() / i18n.t() / i18n.text() call in these files."""
    keys, prefixes, problems = set(), set(), []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            if _is_t(node.func):
                arg = node.args[0] if node.args else None
            elif _is_text(node.func):
                arg = node.args[1] if len(node.args) > 1 else None
            else:
                continue
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                keys.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                prefixes.add(arg.values[0].value)
            elif isinstance(arg, ast.Name) and (path.name, arg.id) in HIDDEN:
                pass
            else:
                problems.append(f"{path.name}:{node.lineno}: t() with a key this test cannot see: "
                                f"{ast.unparse(arg) if arg else '(none)'}")
    return keys, prefixes, problems


def session_field_values(paths, field: str) -> set[str]:
    """Every string literal stored in session[field]."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(target := node.targets[0], ast.Subscript)
                    and isinstance(target.value, ast.Name) and target.value.id == "session"
                    and isinstance(target.slice, ast.Constant) and target.slice.value == field
                    and isinstance(node.value, ast.Constant)):
                found.add(node.value.value)
    return found


def template_keys(source: str) -> tuple[set[str], set[str], list[str]]:
    """(keys, dynamic prefixes, problems) of every t(...) in one template."""
    keys, prefixes, problems = set(), set(), []
    tokens = list(JINJA.lexer.tokenize(source))
    for i, tok in enumerate(tokens):
        if not (tok.type == "name" and tok.value == "t" and tokens[i + 1].type == "lparen"
                and tokens[i - 1].type != "dot"):
            continue
        arg, after = tokens[i + 2], tokens[i + 3]
        if arg.type == "string" and after.type in ("rparen", "comma"):
            keys.add(arg.value)
        elif (arg.type == "name" and arg.value == "role" and after.type == "dot"
              and tokens[i + 4].value in ROLE_KEY_FIELDS and tokens[i + 5].type in ("rparen", "comma")):
            keys |= {getattr(r, tokens[i + 4].value) for r in login_rules.ROLES.values()}
        elif arg.type == "string" and after.type in ("tilde", "add"):
            prefixes.add(arg.value)
        else:
            problems.append(f"line {tok.lineno}: t() with a key this test cannot see")
    return keys, prefixes, problems


def used_keys() -> tuple[set[str], list[str]]:
    """Every key the code can ask for, and the calls this test cannot account for."""
    sources = sorted(PACKAGE.rglob("*.py"))
    keys, prefixes, problems = python_keys(sources)
    for path in _templates():
        k, p, probs = template_keys(path.read_text())
        keys |= k
        prefixes |= p
        problems += [f"{path.relative_to(TEMPLATES)} {msg}" for msg in probs]
    for prefix in sorted(prefixes):
        if prefix not in DYNAMIC:
            problems.append(f"key built at run time from {prefix!r}: add its members to DYNAMIC")
    for prefix, members in DYNAMIC.items():
        keys |= {prefix + m for m in members}
    for field, members in INDIRECT.items():
        stored = session_field_values(sources, field)
        if stored != members:
            problems.append(f"session[{field!r}] holds {sorted(stored)}; INDIRECT says {sorted(members)}")
        keys |= members
    return keys, problems


# --- what the catalogs hold ----------------------------------------------------------------------------

def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def catalog_problems(catalogs: dict[str, dict[str, str]], used: set[str]) -> list[str]:
    """Missing or empty entries for used keys, keys only one language has, unused keys, placeholder
    mismatches. catalogs: lang -> key -> text, as i18n.read_catalogs returns them."""
    problems = []
    source = catalogs[i18n.SOURCE]
    for lang in i18n.LANGS:
        cat = catalogs.get(lang, {})
        problems += [f"{lang}: {key} is used but has no text" for key in sorted(used) if not cat.get(key)]
        problems += [f"{lang}: {key} is not in {i18n.SOURCE}" for key in sorted(set(cat) - set(source))]
        if lang != i18n.SOURCE:
            problems += [f"{lang}: {key} missing (it is in {i18n.SOURCE})" for key in sorted(set(source) - set(cat))]
            problems += [f"{lang}: {key} has placeholders {sorted(placeholders(cat[key]))}, "
                         f"{i18n.SOURCE} has {sorted(placeholders(source[key]))}"
                         for key in sorted(set(source) & set(cat))
                         if placeholders(cat[key]) != placeholders(source[key])]
    problems += [f"{key} is in the catalogs but nothing uses it" for key in sorted(set(source) - used)]
    return problems


# --- literal text in templates -------------------------------------------------------------------------

def skeleton(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The template's markup with each {{ expression }} replaced by MARK and every {% tag %} and comment
    left out; and the string literals inside expressions and tags that are not a t() key."""
    out, literals = [], []
    tokens = list(JINJA.lexer.tokenize(source))
    inside = in_attribute = False
    for i, tok in enumerate(tokens):
        if tok.type == "name" and tokens[i - 1].type == "block_begin" and tok.value in ("block", "endblock"):
            in_attribute = tok.value == "block" and tokens[i + 1].value in ATTRIBUTE_BLOCKS
        if tok.type == "data":
            if not in_attribute:
                out.append(tok.value)
        elif tok.type == "variable_begin":
            out.append(MARK)
            inside = True
        elif tok.type in ("variable_end", "block_end"):
            inside = False
        elif tok.type == "block_begin":
            inside = True
        elif inside and tok.type == "string":
            is_key = tokens[i - 1].type == "lparen" and tokens[i - 2].type == "name" and tokens[i - 2].value == "t"
            if not is_key:
                literals.append((tok.lineno, tok.value))
    return "".join(out), literals


def _words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.replace(MARK, " ")) if w not in UNITS]


class _TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._raw: str | None = None  # inside <script> or <style>

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._raw = tag
        kind = dict(attrs).get("type", "")
        for name, value in attrs:
            shown = name in TEXT_ATTRS or (name == "value" and tag == "input" and kind in ("submit", "button", "reset"))
            if shown and value and _words(value):
                self.found.append(f'{tag} {name}="{value.replace(MARK, "{{…}}")}"')

    def handle_endtag(self, tag):
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data):
        if self._raw is None and _words(data) and data.strip() not in COMMANDS:
            self.found.append(data.strip().replace(MARK, "{{…}}"))


def literal_text(source: str) -> list[str]:
    """UI text in a template that does not come from t(): text nodes, shown attributes, string literals."""
    markup, literals = skeleton(source)
    finder = _TextFinder()
    finder.feed(markup)
    finder.close()
    found = finder.found
    found += [f"line {line}: literal {value!r}" for line, value in literals
              if WORD.search(value) and not IDENTIFIER.fullmatch(value) and value not in EXPR_LITERALS]
    return found


# --- German text in the views ------------------------------------------------------------------------

# The web layer's modules; serve.py starts the process and speaks to the administrator, not to a browser.
VIEWS = [p for p in sorted((PACKAGE / "web").glob("*.py")) if p.name != "serve.py"] + sorted(PACKAGE.glob("*/views.py"))
GERMAN = re.compile(r"[äöüÄÖÜß]|\b(der|die|das|und|nicht|ist|eine?|keine?|[Bb]itte|Sie|fehlt|gibt|oder|mit|von|zu|"
                    r"wird|wurde|[Uu]ngültige?)\b")


def german_literals(source: str) -> list[str]:
    """String literals that look German, outside docstrings, print() (the CLI), log calls and argparse."""
    tree = ast.parse(source)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if name in ("print", "add_argument", "add_parser") or owner in ("log", "logger", "logging"):
                skip |= {id(sub) for sub in ast.walk(node)}
    return [f"line {node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and GERMAN.search(node.value)]


# --- the tests ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    return i18n.read_catalogs()


def test_every_key_the_code_uses_can_be_found():
    keys, problems = used_keys()
    assert not problems, "\n".join(problems)
    assert len(keys) > 300  # the scan found the calls (a broken scan would find nothing and pass)


def test_catalogs_are_complete_consistent_and_without_unused_keys(catalogs):
    keys, _ = used_keys()
    problems = catalog_problems(catalogs, keys)
    assert not problems, "\n".join(problems)


def test_templates_show_no_text_outside_t():
    found = {str(p.relative_to(TEMPLATES)): literal_text(p.read_text()) for p in _templates()}
    problems = [f"{name}: {text!r}" for name, texts in found.items() for text in texts]
    assert not problems, "\n".join(problems)


def test_views_build_no_german_text():
    found = [f"{p.relative_to(ROOT)} {hit}" for p in VIEWS for hit in german_literals(p.read_text())]
    assert len(VIEWS) > 8 and not found, "\n".join(found)


def test_catalogs_are_valid_gettext():
    for lang in i18n.LANGS:
        path = i18n.catalog_path(lang)
        with open(path, "rb") as f:
            catalog = read_po(f, abort_invalid=True)
        assert catalog.locale_identifier == lang
        assert catalog.charset.lower() == "utf-8"
        assert not [m.id for m in catalog if m.id and m.fuzzy], f"{lang}: fuzzy entries are not used at run time"
        if shutil.which("msgfmt"):  # Debian's gettext, when installed; not required
            run = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(path)], capture_output=True,
                                 text=True, timeout=30)
            assert run.returncode == 0, run.stderr


def test_english_catalog_shows_the_translator_the_german_text():
    with open(i18n.catalog_path("en"), "rb") as f:
        english = read_po(f, abort_invalid=True)
    german = i18n.read_catalogs()["de"]
    for m in english:
        if m.id:
            assert " ".join(m.auto_comments) == " ".join(german[m.id].split()), m.id


def test_t_looks_up_the_language_and_falls_back_to_german(tmp_path):
    from flask import Flask, g

    with Flask(__name__).test_request_context():
        g.lang = "en"
        assert i18n.t("portal.welcome", name="Anna") == "Welcome, Anna"
        g.lang = "de"
        assert i18n.t("portal.welcome", name="Anna") == "Willkommen, Anna"
        assert i18n.t("no.such.key") == "no.such.key"
    assert i18n.has("error.404") and not i18n.has("error.418")


# --- negative controls: the checks above fail when they should ----------------------------------------

def test_a_missing_english_entry_fails(catalogs, tmp_path):
    keys, _ = used_keys()
    # in memory
    broken = {lang: dict(texts) for lang, texts in catalogs.items()}
    del broken["en"]["portal.welcome"]
    assert "en: portal.welcome is used but has no text" in catalog_problems(broken, keys)
    # and through the file: an English entry left empty is missing, not silently German
    for lang in i18n.LANGS:
        target = i18n.catalog_path(lang, tmp_path)
        target.parent.mkdir(parents=True)
        text = i18n.catalog_path(lang).read_text(encoding="utf-8")
        if lang == "en":
            text = text.replace('msgid "portal.welcome"\nmsgstr "Welcome, {name}"', 'msgid "portal.welcome"\nmsgstr ""')
        target.write_text(text, encoding="utf-8")
    assert "en: portal.welcome is used but has no text" in catalog_problems(i18n.read_catalogs(tmp_path), keys)


def test_placeholder_mismatch_unused_key_and_missing_key_fail(catalogs):
    keys, _ = used_keys()
    broken = {lang: dict(texts) for lang, texts in catalogs.items()}
    broken["en"]["portal.welcome"] = "Welcome, {nmae}"
    broken["de"]["nothing.uses.this"] = broken["en"]["nothing.uses.this"] = "x"
    problems = catalog_problems(broken, keys | {"new.key"})
    assert "en: portal.welcome has placeholders ['nmae'], de has ['name']" in problems
    assert "nothing.uses.this is in the catalogs but nothing uses it" in problems
    assert "de: new.key is used but has no text" in problems and "en: new.key is used but has no text" in problems


def test_key_scan_sees_static_dynamic_and_hidden_keys(tmp_path):
    source = tmp_path / "view.py"
    source.write_text('i18n.t("a.b", n=1)\ni18n.t(f"role.{r}")\nt("c")\ni18n.t(key)\n')
    keys, prefixes, problems = python_keys([source])
    assert keys == {"a.b", "c"} and prefixes == {"role."} and len(problems) == 1
    keys, prefixes, problems = template_keys("{{ t('x.y', n=2) }}{{ t('role.' ~ r) }}{{ t(k) }}{{ f.t('no') }}")
    assert keys == {"x.y"} and prefixes == {"role."} and len(problems) == 1


def test_german_text_in_a_view_is_found():
    source = '''\"\"\"Ansichten für die Sitzung.\"\"\"
def view():
    \"\"\"Zeigt die Seite.\"\"\"
    log.info("Gerät %s freigegeben", mac)
    print("Neues Passwort für den Sitzungsdienst:")
    flash("Ungültige Eingabe.", "error")
    raise ValueError("Mitglied gehört nicht zur Sitzung")
    return i18n.t("form.invalid")
'''
    assert [hit.split(":")[0] for hit in german_literals(source)] == ["line 6", "line 7"]


@pytest.mark.parametrize("template", [
    "<p>Speichern</p>",
    "<h1>{{ t('a') }} und mehr</h1>",
    '<a href="#" title="Hilfe">{{ t("a") }}</a>',
    '<nav aria-label="Navigation"></nav>',
    '<input type="search" placeholder="Suche {{ x }}">',
    '<img src="x.png" alt="Logo">',
    '<input type="submit" value="Senden">',
    "{% if x %}<td>Fraktion</td>{% endif %}",
    "{{ n.ssid or '(verborgen)' }}",
    "{{ 'Keine Daten' if x }}",
])
def test_literal_text_in_a_template_is_found(template):
    assert literal_text(template)


@pytest.mark.parametrize("template", [
    "<p>{{ t('a') }}</p>{# Kommentar auf Deutsch #}",
    '<a title="{{ t(\'a\') }}" aria-label="{{ t(\'b\') }}: {{ m.name }}">{{ x }}</a>',
    "<td>{{ v }} ms</td><td>{{ r }} Mbit/s</td><td>{{ c }} °C</td><td>&nbsp;–&nbsp;·</td>",
    "<style>body{font-family:sans-serif}</style><script>var a = 'x';</script>",
    "<pre><code>{{ role.command }}</code></pre>",
    "{{ url_for('static', filename='js/chat.js') }}{{ 'descending' if d else 'ascending' }}",
    '<input type="hidden" name="room" value="announce">',
])
def test_text_from_t_units_and_code_pass(template):
    assert literal_text(template) == []
