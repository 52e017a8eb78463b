"""`sitzungsbox speakers …`: running the session from the box's console (the clerk's command line).

Every command is the same act as on the chair's console (appliance.usecases.speakers), done as the clerk
(`Viewer("clerk", N)`, audit actor `cli`): same rows, same audit entry, same push event, so open consoles, member
pages and the room screen follow. A refusal is one German line `Fehler: …` on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from appliance.config import Config

KINDS = {"wortmeldung": "contribution", "go": "point_of_order", "fuer": "pro", "gegen": "contra",
         "zwischenfrage": "intervention"}
clock = time.time  # the acts' `now` (tests put a fixed clock here)
RULE_OPTIONS = (("erste", "first_seconds", "Redezeit des ersten Beitrags (Sekunden, 0: keine Grenze)"),
                ("weitere", "later_seconds", "Redezeit jedes weiteren Beitrags zum selben Punkt (Sekunden)"),
                ("go", "order_seconds", "Redezeit zur Geschäftsordnung, Für- und Gegenrede (Sekunden)"),
                ("zwischenfrage", "intervention_seconds", "Redezeit einer Zwischenfrage/Kurzintervention (Sekunden)"),
                ("warnung", "warn_seconds", "Vorwarnung vor dem Ende der Redezeit (Sekunden)"),
                ("hoechstens", "max_speeches", "Beiträge je Person und Punkt (0: beliebig viele)"))


def _id(text: str) -> int:
    """A number of a member, item or request as typed; refused in German when it can name nothing."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"keine ganze Zahl: {text!r}") from None
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"keine gültige Nummer: {text[:30]}")
    return value


def add_parsers(sub: Any) -> None:
    sp = sub.add_parser("speakers", help="Sitzungsleitung: aktueller Punkt, Rednerliste, Redezeit, Protokoll")
    acts = sp.add_subparsers(dest="action", required=True, metavar="AKTION")
    ms = acts.add_parser("members", help="die Personen der Sitzung mit ihren Nummern (IDs)")
    ms.add_argument("session", type=int)
    ch = acts.add_parser("chair", help="die Sitzungsleitung benennen (ihr eigenes Gerät zeigt dann die Leitung)")
    cha = ch.add_subparsers(dest="chair_action", required=True, metavar="AKTION")
    cs = cha.add_parser("set", help="ein Mitglied als Sitzungsleitung benennen")
    cs.add_argument("session", type=int)
    cs.add_argument("member", type=_id, metavar="MITGLIED-ID")
    cc = cha.add_parser("clear", help="keine Sitzungsleitung (der Sitzungsdienst leitet)")
    cc.add_argument("session", type=int)
    cu = acts.add_parser("current", help="den aktuellen Tagesordnungspunkt setzen (0: keiner)")
    cu.add_argument("session", type=int)
    cu.add_argument("item", type=_id, metavar="PUNKT-ID")
    ls = acts.add_parser("list", help="die Rednerliste anzeigen (Standard: des aktuellen Punkts)")
    ls.add_argument("session", type=int)
    ls.add_argument("item", type=_id, nargs="?", metavar="PUNKT-ID")
    ad = acts.add_parser("add", help="eine Person auf die Rednerliste setzen (Handzeichen)")
    ad.add_argument("session", type=int)
    ad.add_argument("member", type=_id, metavar="MITGLIED-ID")
    ad.add_argument("--art", choices=tuple(KINDS), default="wortmeldung", help="Art der Wortmeldung")
    rm = acts.add_parser("remove", help="eine Wortmeldung von der Liste nehmen")
    rm.add_argument("session", type=int)
    rm.add_argument("request", type=_id, metavar="WORTMELDUNG-ID")
    mv = acts.add_parser("move", help="eine Wortmeldung an einen anderen Platz ihrer Gruppe setzen")
    mv.add_argument("session", type=int)
    mv.add_argument("request", type=_id, metavar="WORTMELDUNG-ID")
    mv.add_argument("place", type=int, metavar="PLATZ", help="1: an den Anfang")
    nx = acts.add_parser("next", help="der nächsten Person das Wort erteilen (beendet den laufenden Beitrag)")
    nx.add_argument("session", type=int)
    nx.add_argument("--wortmeldung", dest="request", type=_id, metavar="ID", help="diese statt der nächsten")
    en = acts.add_parser("end", help="den laufenden Beitrag beenden")
    en.add_argument("session", type=int)
    ex = acts.add_parser("extend", help="die Redezeit des laufenden Beitrags verlängern")
    ex.add_argument("session", type=int)
    ex.add_argument("seconds", type=int, metavar="SEKUNDEN")
    for name, text in (("admit", "eine Zwischenfrage zulassen"), ("refuse", "eine Zwischenfrage ablehnen")):
        p = acts.add_parser(name, help=text)
        p.add_argument("session", type=int)
        p.add_argument("request", type=_id, metavar="WORTMELDUNG-ID")
    for name, text in (("close", "die Rednerliste schließen (Schluss der Rednerliste)"),
                       ("reopen", "die Rednerliste wieder öffnen")):
        p = acts.add_parser(name, help=text)
        p.add_argument("session", type=int)
        p.add_argument("item", type=_id, nargs="?", metavar="PUNKT-ID")
    an = acts.add_parser("announce", help="Ansage auf der Saalanzeige („“: keine)")
    an.add_argument("session", type=int)
    an.add_argument("text")
    ru = acts.add_parser("rules", help="Geschäftsordnung: Redezeiten und Höchstzahl (Sitzung, Punkt oder Gremium)")
    ru.add_argument("session", type=int)
    where = ru.add_mutually_exclusive_group()
    where.add_argument("--punkt", dest="item", type=_id, metavar="ID", help="nur für diesen Tagesordnungspunkt")
    where.add_argument("--gremium", dest="body", action="store_true", help="für jede Sitzung dieses Gremiums")
    for option, _field, text in RULE_OPTIONS:
        ru.add_argument(f"--{option}", type=int, metavar="N", help=text)
    ru.add_argument("--fuer-gegen", dest="pro_contra", choices=("ja", "nein"),
                    help="je eine Für- und Gegenrede zu Anträgen zur Geschäftsordnung")
    xp = acts.add_parser("export", help="die Redebeiträge für das Protokoll (je Punkt mit Beginn und Dauer)")
    xp.add_argument("session", type=int)
    xp.add_argument("--csv", action="store_true", help="als CSV für eine Tabellenkalkulation")
    wp = acts.add_parser("wipe", help="Rednerlisten, Wortmeldungen, Leitung, Ansage und Abstimmungen (mit "
                                      "namentlichen Listen und Abstimmungsprotokoll) der Sitzung löschen")
    wp.add_argument("session", type=int)
    wp.add_argument("--ja", dest="yes", action="store_true", help="ohne Rückfrage")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    sign = "-" if whole < 0 else ""
    return f"{sign}{abs(whole) // 60}:{abs(whole) % 60:02d}"


def show(st: Any) -> list[str]:
    """The list as lines for the terminal: what the chair's console shows."""
    from appliance.rules import speakers as rules

    item = st.item
    head = f"TOP {item.number} {item.title}".strip() if item else "ohne Tagesordnungspunkt"
    out = [f"{head} · Rednerliste {'geschlossen' if st.closed else 'offen'}",
           f"Sitzungsleitung: {st.chair_name or 'Sitzungsdienst'}"]
    r = st.rules
    out.append(f"Redezeit {_clock(r.first_seconds)}, weitere {_clock(r.later_seconds)}, GO {_clock(r.order_seconds)}, "
               f"Zwischenfrage {_clock(r.intervention_seconds)}, Warnung {r.warn_seconds} s, "
               f"höchstens {r.max_speeches or 'beliebig viele'} Beiträge, "
               f"Für-/Gegenrede {'ja' if r.pro_contra else 'nein'}")
    if st.announcement:
        out.append(f"Ansage: {st.announcement}")
    if st.speaking is not None:
        t = st.timer
        left = "" if t is None or t.remaining is None else (
            f", überzogen um {_clock(-t.remaining)}" if t.overrun else f", noch {_clock(t.remaining)}")
        out.append(f"Es spricht: {st.speaking.name} ({st.speaking.faction or '–'}), {st.speaking.kind_name}, "
                   f"seit {_clock(t.elapsed if t else None)}{left}")
    for x in st.queue:
        out.append(f"{x.place:3d}. [{x.request_id}] {x.name} ({x.faction or '–'}) – {x.kind_name}"
                   + (f" – bisher {x.spoke}×" if x.kind == rules.CONTRIBUTION else ""))
    for x in st.pending:
        out.append(f"  ?  [{x.request_id}] {x.name} ({x.faction or '–'}) – {x.kind_name}: wartet auf Zulassung")
    if not st.queue and not st.pending:
        out.append("Niemand wartet.")
    return out


def main(cfg: Config, args: argparse.Namespace) -> int:
    from appliance.cli import fail
    from appliance.rules.viewer import Viewer
    from appliance.sessions import service
    from appliance.store import open_db
    from appliance.usecases import speakers as acts

    db = open_db(cfg.db_path)
    try:
        sid = args.session
        try:
            service.get_session(db, sid)
        except service.SessionError as exc:
            return fail(str(exc))
        clerk, now, a = Viewer("clerk", sid), clock(), args.action
        kw = {"actor": "cli"}
        if a == "members":
            for m in service.members(db, sid):
                print(f"{m.id}\t{m.name}\t{m.faction}\t{m.role}")
            return 0
        if a == "list":
            st = acts.state(db, sid, args.item, now=now)
            assert st is not None
            if args.item and st.item is None:
                return fail("Diesen Tagesordnungspunkt gibt es in dieser Sitzung nicht.")
            print("\n".join(show(st)))
            return 0
        if a == "export":
            rows = acts.minutes(db, sid)
            if args.csv:
                sys.stdout.write(acts.minutes_csv(rows, cfg.timezone))
            else:
                for r in rows:
                    print(f"TOP {r.item_number}\t{r.order}\t{r.name}\t{r.faction}\t{r.kind_name}\t"
                          f"{time.strftime('%H:%M:%S', time.localtime(r.started_at))}\t{_clock(r.duration)}")
            return 0
        if a == "wipe":
            if not args.yes:
                answer = input(f"Alle Wortmeldungen und Abstimmungen von Sitzung {sid} löschen? [ja/nein] ")
                if answer.strip().lower() != "ja":
                    return fail("nicht bestätigt, nichts geändert (ohne Rückfrage: --ja).")
            print(f"{acts.wipe(db, sid, 'cli')} Wortmeldungen gelöscht.")
            return 0
        if a == "chair":
            out = acts.set_chair(db, clerk, sid, args.member if args.chair_action == "set" else None, **kw)
        elif a == "current":
            out = acts.set_current_item(db, clerk, sid, args.item or None, **kw)
        elif a == "add":
            out = acts.add_by_hand(db, clerk, sid, args.member, KINDS[args.art], now=now, **kw)
        elif a == "remove":
            out = acts.remove(db, clerk, sid, args.request, **kw)
        elif a == "move":
            out = acts.move(db, clerk, sid, args.request, to=args.place, **kw)
        elif a == "next":
            out = acts.call_next(db, clerk, sid, request_id=args.request, now=now, **kw)
        elif a == "end":
            out = acts.end_speech(db, clerk, sid, now=now, **kw)
        elif a == "extend":
            out = acts.extend(db, clerk, sid, args.seconds, **kw)
        elif a in ("admit", "refuse"):
            out = acts.decide_intervention(db, clerk, sid, args.request, a == "admit", **kw)
        elif a in ("close", "reopen"):
            out = acts.set_closed(db, clerk, sid, a == "close", item_id=args.item, **kw)
        elif a == "announce":
            out = acts.set_announcement(db, clerk, sid, args.text, **kw)
        elif a == "rules":
            values: dict[str, int | None] = {f: getattr(args, o) for o, f, _t in RULE_OPTIONS
                                             if getattr(args, o) is not None}
            if args.pro_contra is not None:
                values["pro_contra"] = int(args.pro_contra == "ja")
            out = acts.set_procedure(db, clerk, sid, values, item_id=args.item, for_body=args.body, **kw)
        else:  # pragma: no cover - argparse knows every action
            return fail(f"unbekannte Aktion {a}")
        if not out.ok:
            return fail(out.text)
        print(out.text)
        return 0
    finally:
        db.conn.close()
