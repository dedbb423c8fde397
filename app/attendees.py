"""Attendees: joining with a unique display name, and the resume key that brings one back."""

from __future__ import annotations

import re
import secrets
import unicodedata

from sqlmodel import Session, select

from app.models import Attendee, utcnow

NAME_MAX = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class JoinRefused(ValueError):
    """The join cannot go ahead; the message is shown to the person joining."""


def clean_name(raw: str) -> str:
    """A display name: normalized, no control characters, trimmed to NAME_MAX."""
    name = unicodedata.normalize("NFKC", raw)
    name = " ".join(_CONTROL.sub(" ", name).split())[:NAME_MAX].strip()
    if not name:
        raise JoinRefused("Please type a name: the instructor sees it on the dashboard.")
    return name


def unique_name(session: Session, workshop: str, name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)`` ... when someone in the workshop already has it."""
    taken = set(session.exec(select(Attendee.name).where(Attendee.workshop == workshop)).all())
    if name not in taken:
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
    attendee = Attendee(
        workshop=workshop,
        name=unique_name(session, workshop, clean_name(raw_name)),
        resume_key=secrets.token_urlsafe(24),
    )
    session.add(attendee)
    session.commit()
    session.refresh(attendee)
    return attendee


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
