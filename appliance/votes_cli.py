"""`sitzungsbox votes …`: the clerk's votes from the box's console (issue 14).

Every command is the same act as on the clerk's votes page or the chair's console (appliance.usecases.votes), done
as the clerk (`Viewer("clerk", N)`, audit actor `cli`): same rows, same vote-log entry, same push event, so open
pages and the room screen follow. Open, close, cancel and repeat are the chair's acts, which a clerk may do. A
refusal is one German line `Fehler: …` on stderr, exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.config import Config

clock = time.time  # the acts' `now` (tests put a fixed clock here)
MODES = {"offen": "open", "namentlich": "named"}
RULES = {"einfach": "simple", "zwei-drittel": "two_thirds", "gesetzlich": "statutory", "eigene": "custom"}
BASES = {"abgegeben": "cast", "gesetzlich": "statutory"}
CHOICES = {"ja": "yes", "nein": "no", "enthaltung": "abstain"}
KINDS = {"mehrheit": "majority", "wahl": "election", "stichwahl": "runoff", "hare-niemeyer": "hare_niemeyer",
         "dhondt": "dhondt"}
STATES = {"open": "läuft", "closed": "geschlossen", "cancelled": "abgebrochen"}


def _id(text: str) -> int:
    """A number of a member, item or vote as typed; refused in German when it can name nothing."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"keine ganze Zahl: {text!r}") from None
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"keine gültige Nummer: {text[:30]}")
    return value


def _count(text: str) -> int:
    """A count of votes or seats; the act refuses one out of range in German."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"keine ganze Zahl: {text!r}") from None


def _name_count(text: str) -> tuple[str, int]:
    """NAME=ZAHL: a candidate or list with its votes."""
    name, sep, number = text.rpartition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"bitte als NAME=ZAHL angeben: {text[:60]!r}")
    return name, _count(number)


def _fraction(text: str) -> tuple[int, int]:
    num, sep, den = text.partition("/")
    if not sep:
        raise argparse.ArgumentTypeError(f"bitte als Bruch angeben, z. B. 3/4: {text[:30]!r}")
    return _count(num), _count(den)


def _rule_options(p: Any) -> None:
    p.add_argument("--regel", choices=tuple(RULES), default="einfach",
                   help="Mehrheitsregel (eigene: mit --bruch und --bezug)")
    p.add_argument("--bruch", type=_fraction, metavar="Z/N", help="eigene Mehrheit, z. B. 3/4")
    p.add_argument("--bezug", choices=tuple(BASES), default="abgegeben",
                   help="Bezugsgröße der eigenen Mehrheit: abgegebene Stimmen oder gesetzliche Mitgliederzahl")
    p.add_argument("--mehr-als", dest="strict", action="store_true",
                   help="eigene Mehrheit: mehr als der Bruch (statt mindestens)")


def add_parsers(sub: Any) -> None:
    vp = sub.add_parser("votes", help="Abstimmungen: Stellvertretung, Befangenheit, Handeingabe, Stimmzettel, "
                                      "Protokoll")
    acts = vp.add_subparsers(dest="action", required=True, metavar="AKTION")
    ls = acts.add_parser("list", help="die Abstimmungen und Stimmzettel der Sitzung; wer noch nicht abgestimmt hat")
    ls.add_argument("session", type=int)
    dp = acts.add_parser("deputy", help="eintragen, wen eine Stellvertretung vertritt (ohne MITGLIED-ID: niemanden)")
    dp.add_argument("session", type=int)
    dp.add_argument("deputy", type=_id, metavar="STELLVERTRETUNG-ID")
    dp.add_argument("member", type=_id, nargs="?", metavar="MITGLIED-ID")
    co = acts.add_parser("conflict", help="ein Mitglied bei einem Tagesordnungspunkt als befangen vermerken")
    co.add_argument("session", type=int)
    co.add_argument("item", type=_id, metavar="PUNKT-ID", help="0: Abstimmungen ohne Tagesordnungspunkt")
    co.add_argument("member", type=_id, metavar="MITGLIED-ID")
    co.add_argument("--aufheben", dest="clear", action="store_true", help="die Befangenheit wieder aufheben")
    mc = acts.add_parser("may-change", help="Geschäftsordnung des Gremiums: Stimmen bis zum Schluss änderbar?")
    mc.add_argument("session", type=int)
    mc.add_argument("allowed", choices=("ja", "nein"))
    ha = acts.add_parser("hand", help="die Stimme eines Mitglieds von Hand eintragen (Gerät ausgefallen)")
    ha.add_argument("session", type=int)
    ha.add_argument("member", type=_id, metavar="MITGLIED-ID")
    ha.add_argument("choice", choices=tuple(CHOICES))
    ha.add_argument("--abstimmung", dest="vote", type=_id, metavar="ID", help="Standard: die laufende Abstimmung")
    pa = acts.add_parser("paper", help="Stimmzettel auswerten: Mehrheit, Wahl, Stichwahl, Sitzverteilung")
    pa.add_argument("session", type=int)
    pa.add_argument("kind", choices=tuple(KINDS))
    pa.add_argument("--titel", dest="title", required=True, help="Gegenstand der Abstimmung oder Wahl")
    pa.add_argument("--punkt", dest="item", type=_id, metavar="ID",
                    help="Tagesordnungspunkt (Standard: der aktuelle; 0: keiner)")
    pa.add_argument("--ja", dest="yes", type=_count, default=0, metavar="N", help="mehrheit: Ja-Stimmen")
    pa.add_argument("--nein", dest="no", type=_count, default=0, metavar="N", help="mehrheit, wahl: Nein-Stimmen")
    pa.add_argument("--enthaltung", dest="abstain", type=_count, default=0, metavar="N",
                    help="mehrheit: Enthaltungen")
    _rule_options(pa)
    pa.add_argument("--stimmen", dest="counts", type=_name_count, action="append", default=[], metavar="NAME=N",
                    help="wahl, stichwahl: Stimmen je Person; Sitzverteilung: Stimmen je Liste (mehrfach)")
    pa.add_argument("--sitze", dest="seats", type=_count, default=0, metavar="N", help="Sitzverteilung: Sitze")
    op = acts.add_parser("open", help="eine Abstimmung eröffnen (Akt des Vorsitzes)")
    op.add_argument("session", type=int)
    op.add_argument("--frage", dest="question", required=True, help="die Frage, über die abgestimmt wird")
    op.add_argument("--art", dest="mode", choices=tuple(MODES), default="offen")
    op.add_argument("--punkt", dest="item", type=_id, metavar="ID",
                    help="Tagesordnungspunkt (Standard: der aktuelle; 0: keiner)")
    _rule_options(op)
    cl = acts.add_parser("close", help="die laufende Abstimmung schließen und auszählen")
    cl.add_argument("session", type=int)
    ca = acts.add_parser("cancel", help="die laufende Abstimmung abbrechen (ohne Ergebnis)")
    ca.add_argument("session", type=int)
    ca.add_argument("--grund", dest="reason", default="", help="Grund für das Protokoll")
    rp = acts.add_parser("repeat", help="eine geschlossene oder abgebrochene Abstimmung wiederholen")
    rp.add_argument("session", type=int)
    rp.add_argument("vote", type=_id, metavar="ABSTIMMUNG-ID")
    mi = acts.add_parser("minutes", help="das Abstimmungsprotokoll (Text, CSV oder JSON)")
    mi.add_argument("session", type=int)
    mi.add_argument("--format", dest="fmt", choices=("text", "csv", "json"), default="text")


def _custom(args: argparse.Namespace) -> Any:
    from appliance.rules import votes as vr

    if RULES[args.regel] != "custom" or args.bruch is None:
        return None
    return vr.Custom(args.bruch[0], args.bruch[1], BASES[args.bezug], args.strict)


def _clock(ts: float | None, tz: str) -> str:
    return "–" if ts is None else datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%H:%M:%S")


def _result(v: Any) -> str:
    if v.state == "closed":
        return f"Ja {v.yes}, Nein {v.no}, Enthaltungen {v.abstain}: {'angenommen' if v.accepted else 'abgelehnt'}"
    if v.state == "cancelled":
        return f"abgebrochen{': ' + v.cancel_reason if v.cancel_reason else ''}"
    return f"läuft, {v.cast} von {v.eligible} haben abgestimmt"


def minutes_text(m: Any, tz: str) -> list[str]:
    """The minutes as lines: what the print page shows, per vote and per paper ballot."""
    from appliance.rules import votes as vr
    from appliance.usecases import votes as acts

    out: list[str] = []
    for v in m.votes:
        out.append(f"Abstimmung {v.id}{': ' + v.item_title if v.item_title else ''}")
        out.append(f"  Frage: {v.question}")
        out.append(f"  Art: {acts.MODE_NAMES[v.mode]}; eröffnet {_clock(v.opened_at, tz)}, geschlossen "
                   f"{_clock(v.closed_at, tz)}; {STATES[v.state]}"
                   + (f"; Versuch {v.attempt}, Wiederholung von {v.repeat_of}" if v.repeat_of else ""))
        out.append(f"  {v.eligible} stimmberechtigt, {v.present} anwesend, {v.conflicted} befangen"
                   + (f" ({', '.join(v.conflicted_names)})" if v.conflicted_names else ""))
        out.append(f"  Gesetzliche Mitgliederzahl {v.statutory}, beschlussfähig ab {v.quorum_needed}: "
                   f"{'beschlussfähig' if v.quorate else 'nicht beschlussfähig'}")
        out.append(f"  Mehrheitsregel: {v.rule_words}")
        if v.state == "cancelled":
            out.append(f"  Abgebrochen: {v.cancel_reason or 'ohne Begründung'}")
        if v.state == "closed":
            out.append(f"  Ja {v.yes}, Nein {v.no}, Enthaltungen {v.abstain}; von Hand eingetragen: {v.by_hand or 0}")
            for f in v.factions:
                out.append(f"    {f.faction or '(ohne Fraktion)'}: {f.eligible} stimmberechtigt, Ja {f.yes}, "
                           f"Nein {f.no}, Enthaltung {f.abstain}")
            out.append(f"  Ergebnis: {'angenommen' if v.accepted else 'abgelehnt'} – {v.result_text}")
            for n in v.named:
                choice = vr.CHOICE_NAMES.get(n.choice or "", "nicht abgestimmt")
                out.append(f"    {n.name} ({n.faction or '–'}): {choice}"
                           + (" (vom Sitzungsdienst eingetragen)" if n.by_clerk else ""))
    for p in m.papers:
        out.append(f"Stimmzettel S{p.id}: {p.kind_name}: {p.title}{' (' + p.item_title + ')' if p.item_title else ''}, "
                   f"eingetragen {_clock(p.recorded_at, tz)}")
        out += [f"  {line}" for line in p.steps]
    if not out:
        out.append("Keine Abstimmungen in dieser Sitzung.")
    return out


def main(cfg: Config, args: argparse.Namespace) -> int:
    from appliance.cli import fail
    from appliance.rules.viewer import Viewer
    from appliance.sessions import service
    from appliance.store import open_db
    from appliance.usecases import votes as acts

    db = open_db(cfg.db_path)
    try:
        sid = args.session
        try:
            s = service.get_session(db, sid)
        except service.SessionError as exc:
            return fail(str(exc))
        clerk, now, a = Viewer("clerk", sid), clock(), args.action
        kw = {"actor": "cli"}
        if a == "list":
            st = acts.state(db, sid, now=now)
            for v in acts.votes(db, sid):
                print(f"[{v.id}] {v.item_title or 'ohne TOP'} · {v.question} · {acts.MODE_NAMES[v.mode]} · "
                      f"{_result(v)}")
            for p in acts.papers(db, sid):
                print(f"[S{p.id}] {p.kind_name}: {p.title} · {p.steps[-1]}")
            if st is not None and st.current is not None and st.current.state == "open":
                names = [n for _m, n in acts.waiting(db, sid, st.current.id)]
                print(f"Noch nicht abgestimmt ({len(names)}): {', '.join(names) or 'niemand'}")
            return 0
        if a == "minutes":
            m = acts.minutes(db, sid)
            if args.fmt == "csv":
                sys.stdout.write(acts.minutes_csv(m, cfg.timezone))
            elif args.fmt == "json":
                sys.stdout.write(acts.minutes_json(m) + "\n")
            else:
                print("\n".join(minutes_text(m, cfg.timezone)))
            return 0
        if a == "deputy":
            out = acts.set_deputy(db, clerk, sid, args.deputy, args.member, now=now, **kw)
        elif a == "conflict":
            out = acts.set_conflicted(db, clerk, sid, args.item, args.member, not args.clear, now=now, **kw)
        elif a == "may-change":
            out = acts.set_may_change(db, clerk, s.body, args.allowed == "ja", session_id=sid, now=now, **kw)
        elif a == "hand":
            vote = args.vote
            if vote is None:
                st = acts.state(db, sid, now=now)
                if st is None or st.current is None or st.current.state != "open":
                    return fail(acts.TEXTS["not_open"])
                vote = st.current.id
            out = acts.enter_by_hand(db, clerk, sid, vote, args.member, CHOICES[args.choice], now=now, **kw)
        elif a == "paper":
            if len({n for n, _c in args.counts}) != len(args.counts):
                return fail("Jeder Name darf bei --stimmen nur einmal vorkommen.")
            out = acts.record_paper(db, clerk, sid, KINDS[args.kind], title=args.title, now=now,
                                    counts=dict(args.counts), yes=args.yes, no=args.no, abstain=args.abstain,
                                    rule=RULES[args.regel], params=_custom(args), seats=args.seats,
                                    item_id=args.item, **kw)
        elif a == "open":
            out = acts.open_vote(db, clerk, sid, question=args.question, now=now, mode=MODES[args.mode],
                                 rule=RULES[args.regel], params=_custom(args), item_id=args.item, **kw)
        elif a == "close":
            out = acts.close_vote(db, clerk, sid, now=now, **kw)
        elif a == "cancel":
            out = acts.cancel_vote(db, clerk, sid, now=now, reason=args.reason, **kw)
        elif a == "repeat":
            out = acts.repeat_vote(db, clerk, sid, args.vote, now=now, **kw)
        else:  # pragma: no cover - argparse knows every action
            return fail(f"unbekannte Aktion {a}")
        if not out.ok:
            return fail(out.text)
        print(out.text)
        return 0
    finally:
        db.conn.close()
