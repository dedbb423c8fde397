"""Attendees: joining with a unique display name, and the resume key that brings one back."""

from __future__ import annotations

import re
import secrets
import unicodedata

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.models import Attendee, utcnow

NAME_MAX = 40
NAME_ATTEMPTS = 100
# Characters that show nothing: control and format characters (zero-width spaces and joiners,
# bidi overrides, tags), unassigned and private-use ones, plus the letters and symbols that
# render as blanks (Hangul fillers, the braille blank, variation selectors).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_BLANKS = re.compile("[\u115f\u1160\u3164\uffa0\u2800\u180e\ufe00-\ufe0f\U000e0100-\U000e01ef]")
# Letters that look like Latin ones in the dashboard's font (Unicode's confusables, the common
# part): names that differ only by these, or by case, pass for each other.
_LOOKALIKES = str.maketrans(
    {
        source: target
        for target, sources in {
            "a": "\u0430\u03b1",  # Cyrillic A, Greek Alpha
            "b": "\u0432\u03b2",  # Cyrillic Ve, Greek Beta
            "c": "\u0441\u03f2",  # Cyrillic Es, Greek Lunate Sigma Symbol
            "d": "\u0501",  # Cyrillic Komi De
            "e": "\u0435\u03b5",  # Cyrillic Ie, Greek Epsilon
            "h": "\u04bb",  # Cyrillic Shha
            "i": "\u0456\u0131\u03b9",  # Cyrillic Byelorussian-Ukrainian I, Latin Dotless I, Greek Iota
            "j": "\u0458",  # Cyrillic Je
            "k": "\u03ba\u043a",  # Greek Kappa, Cyrillic Ka
            "l": "1|\u04cf",  # Cyrillic Palochka
            "m": "\u043c",  # Cyrillic Em
            "n": "\u03b7\u043f",  # Greek Eta, Cyrillic Pe
            "o": "0\u03bf\u043e\u03c3",  # Greek Omicron, Cyrillic O, Greek Sigma
            "p": "\u0440\u03c1",  # Cyrillic Er, Greek Rho
            "q": "\u051b",  # Cyrillic Qa
            "s": "\u0455",  # Cyrillic Dze
            "t": "\u03c4\u0442",  # Greek Tau, Cyrillic Te
            "u": "\u03c5",  # Greek Upsilon
            "v": "\u03bd\u0475",  # Greek Nu, Cyrillic Izhitsa
            "w": "\u051d\u03c9",  # Cyrillic We, Greek Omega
            "x": "\u0445\u03c7",  # Cyrillic Ha, Greek Chi
            "y": "\u0443\u03b3",  # Cyrillic U, Greek Gamma
        }.items()
        for source in sources
    }
)


class JoinRefused(ValueError):
    """The join cannot go ahead; the message is shown to the person joining."""


def _visible(character: str) -> bool:
    return unicodedata.category(character) not in _INVISIBLE_CATEGORIES


def clean_name(raw: str) -> str:
    """A display name: NFKC-normalized, invisible characters dropped (control characters become
    spaces), whitespace collapsed, trimmed to NAME_MAX. Refused when nothing visible is left."""
    name = unicodedata.normalize("NFKC", raw)
    name = "".join(c if _visible(c) else " " if c < " " or c == "\x7f" else "" for c in name)
    name = " ".join(_BLANKS.sub("", name).split())[:NAME_MAX].strip()
    if not any(unicodedata.category(c)[0] in "LNPS" for c in name):
        raise JoinRefused("Please type a name: the instructor sees it on the dashboard.")
    return name


def lookalike_keys(name: str) -> set[str]:
    """What ``name`` looks like once case and look-alike letters are set aside: two names that
    share a key pass for each other on the dashboard. Two keys, because a capital I passes for
    a small l ("AIice") while its own small letter (i) does not."""
    plain = unicodedata.normalize("NFKC", name)
    return {
        plain.casefold().translate(_LOOKALIKES),
        plain.replace("I", "l").casefold().translate(_LOOKALIKES),
    }


def unique_name(session: Session, workshop: str, name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)`` ... when someone in the workshop already has it.
    Refused when it only looks like someone's (another case, look-alike letters): on the
    dashboard one attendee could pass for another."""
    taken = set(session.exec(select(Attendee.name).where(Attendee.workshop == workshop)).all())
    if name not in taken:
        keys = lookalike_keys(name)
        for other in sorted(taken):
            if keys & lookalike_keys(other):
                raise JoinRefused(
                    f"Someone here already goes by a name that looks like “{name}”. "
                    "Please add something that tells you apart, such as your surname's initial."
                )
        return name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: NAME_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def check_join_code(expected: str | None, given: str | None) -> None:
    if expected and not secrets.compare_digest(
        expected.strip().lower(), (given or "").strip().lower()
    ):
        raise JoinRefused(
            "That join code is not right. Ask the instructor for the code on the screen."
        )


def create_attendee(session: Session, workshop: str, raw_name: str) -> Attendee:
    """A new attendee under ``raw_name`` made unique. Joins of the same name in the same second
    race for "Ada (2)": the database's unique index decides, and the loser takes the next one."""
    name = clean_name(raw_name)
    for _ in range(NAME_ATTEMPTS):
        attendee = Attendee(
            workshop=workshop,
            name=unique_name(session, workshop, name),
            resume_key=secrets.token_urlsafe(24),
        )
        session.add(attendee)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        session.refresh(attendee)
        return attendee
    raise JoinRefused("Too many people are joining under that name right now; try again.")


def attendee_by_resume_key(session: Session, workshop: str, key: str) -> Attendee | None:
    attendee = session.exec(select(Attendee).where(Attendee.resume_key == key)).first()
    return attendee if attendee is not None and attendee.workshop == workshop else None


def by_cookie(session: Session, workshop: str, attendee_id: int, key: str) -> Attendee | None:
    """The attendee a session cookie names, if its resume key still matches. The row comes back
    detached (loaded, no lazy attributes), safe to use after the session closed."""
    if not -(2**63) <= attendee_id < 2**63:  # SQLite's integers; a forged cookie may say more
        return None
    attendee = session.get(Attendee, attendee_id)
    if attendee is None or attendee.workshop != workshop:
        return None
    if not secrets.compare_digest(attendee.resume_key, key):
        return None
    session.expunge(attendee)
    return attendee


def touch(session: Session, attendee: Attendee, lesson: str | None = None) -> None:
    attendee.last_seen_at = utcnow()
    if lesson is not None:
        attendee.current_lesson = lesson
    session.add(attendee)
    session.commit()


def delete_attendee(session: Session, attendee_id: int) -> None:
    """Remove an attendee whose join did not finish (their rows go with them)."""
    attendee = session.get(Attendee, attendee_id)
    if attendee is not None:
        session.delete(attendee)
        session.commit()


def find_attendee(session: Session, attendee_id: int) -> Attendee | None:
    """The attendee by id (detached), or None; ids beyond SQLite's integers find nobody."""
    if not -(2**63) <= attendee_id < 2**63:
        return None
    attendee = session.get(Attendee, attendee_id)
    if attendee is not None:
        session.expunge(attendee)
    return attendee
