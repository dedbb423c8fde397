"""Reading the class for the dashboard: plain column tuples, no ORM objects, timestamps parsed
with ``datetime.fromisoformat``. A class of 200 with 30 tasks is ~6000 progress rows, read on
every page load and every live update, so this path has to take milliseconds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, func, select, type_coerce
from sqlmodel import Session, col

from app.models import Attendee, LessonLock, LessonSetup, Sandbox, TaskProgress


class AttendeeFacts(NamedTuple):
    id: int
    name: str
    joined_at: datetime
    last_seen_at: datetime
    current_lesson: str | None
    hand_raised_at: datetime | None


class ProgressFacts(NamedTuple):
    """One progress row. A NamedTuple because the dashboard reads its fields thousands of times
    per page (several times faster than SQLAlchemy's rows by name). Timestamps stay text
    (ISO 8601, in time order); ``passed_epoch`` is the first pass in seconds since 1970,
    computed by SQLite (millisecond precision), for time-to-pass arithmetic."""

    attendee_id: int
    task_id: str
    attempts: int
    first_passed_at: str | None
    passed_epoch: float | None
    last_failed_check: str | None
    solution_shown: bool
    updated_at: str


class SandboxFacts(NamedTuple):
    state: str
    last_activity_at: datetime
    container_name: str = ""


class SetupFailure(NamedTuple):
    """A setup (a lesson's slug, or "(workshop)") that failed in the attendee's sandbox."""

    lesson: str
    exit_code: int
    output: str


def _text(column: Any) -> Any:
    # Read timestamps as the text SQLite stores; parsing them here is several times faster.
    return type_coerce(column, String)


def _epoch(column: Any) -> Any:
    # julianday() is days since 4714 BC; 2440587.5 of them had passed on 1970-01-01.
    return (func.julianday(column) - 2440587.5) * 86400.0


def _rows(session: Session, query: Any) -> Any:
    return session.connection().execute(query)


def parse_time(text: str | None) -> datetime | None:
    """SQLite keeps UTC without an offset ("2026-11-28 16:41:36.975352")."""
    if text is None:
        return None
    return datetime.fromisoformat(text if "+" in text[10:] else text + "+00:00")


def _time(text: str) -> datetime:
    moment = parse_time(text)
    assert moment is not None
    return moment


def attendees(session: Session, workshop: str, ids: Sequence[int] | None) -> list[AttendeeFacts]:
    """In joining order."""
    query = select(
        col(Attendee.id),
        col(Attendee.name),
        _text(Attendee.joined_at),
        _text(Attendee.last_seen_at),
        col(Attendee.current_lesson),
        _text(Attendee.hand_raised_at),
    ).where(col(Attendee.workshop) == workshop)
    if ids is not None:
        query = query.where(col(Attendee.id).in_(ids))
    return [
        AttendeeFacts(id_, name, _time(joined), _time(seen), lesson, parse_time(hand))
        for id_, name, joined, seen, lesson, hand in _rows(
            session, query.order_by(col(Attendee.id))
        )
    ]


def progress(
    session: Session, workshop: str, ids: Sequence[int] | None
) -> dict[int, list[ProgressFacts]]:
    query = (
        select(
            col(TaskProgress.attendee_id),
            col(TaskProgress.task_id),
            col(TaskProgress.attempts),
            _text(TaskProgress.first_passed_at).label("first_passed_at"),
            _epoch(TaskProgress.first_passed_at).label("passed_epoch"),
            col(TaskProgress.last_failed_check),
            col(TaskProgress.solution_shown),
            _text(TaskProgress.updated_at).label("updated_at"),
        )
        .join(Attendee, col(Attendee.id) == col(TaskProgress.attendee_id))
        .where(col(Attendee.workshop) == workshop)
    )
    if ids is not None:
        query = query.where(col(TaskProgress.attendee_id).in_(ids))
    grouped: dict[int, list[ProgressFacts]] = defaultdict(list)
    for row in _rows(session, query):
        grouped[row[0]].append(ProgressFacts(*row))
    return grouped


def sandboxes(
    session: Session, workshop: str, ids: Sequence[int] | None
) -> dict[int, SandboxFacts]:
    """Each attendee's newest sandbox row (as SandboxRecords.for_attendee picks it)."""
    query = select(
        col(Sandbox.attendee_id),
        col(Sandbox.state),
        _text(Sandbox.last_activity_at),
        col(Sandbox.container_name),
    ).where(col(Sandbox.workshop) == workshop, col(Sandbox.attendee_id).is_not(None))
    if ids is not None:
        query = query.where(col(Sandbox.attendee_id).in_(ids))
    found: dict[int, SandboxFacts] = {}
    for who, state, active, name in _rows(session, query.order_by(col(Sandbox.id))):
        if who is not None:  # a newer row overwrites an older one
            found[who] = SandboxFacts(state, _time(active), name)
    return found


def failed_setups(
    session: Session, workshop: str, ids: Sequence[int] | None
) -> dict[int, list[tuple[str, SetupFailure]]]:
    """Per attendee: (sandbox, failure) of every setup whose last run failed."""
    query = (
        select(
            col(LessonSetup.attendee_id),
            col(LessonSetup.sandbox),
            col(LessonSetup.lesson),
            col(LessonSetup.exit_code),
            col(LessonSetup.output),
        )
        .join(Attendee, col(Attendee.id) == col(LessonSetup.attendee_id))
        .where(col(Attendee.workshop) == workshop, col(LessonSetup.exit_code) != 0)
    )
    if ids is not None:
        query = query.where(col(LessonSetup.attendee_id).in_(ids))
    found: dict[int, list[tuple[str, SetupFailure]]] = defaultdict(list)
    for who, sandbox, lesson, exit_code, output in _rows(session, query):
        found[who].append((sandbox, SetupFailure(lesson, exit_code, output)))
    return found


def locked_lessons(session: Session, workshop: str) -> set[str]:
    query = select(col(LessonLock.lesson)).where(col(LessonLock.workshop) == workshop)
    return {lesson for (lesson,) in _rows(session, query)}
