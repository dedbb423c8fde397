"""Attempts, per-task progress, shown solutions and lesson set-ups, in the database.

Progress rows are updated with single SQL statements (insert-if-missing, then increment), so a
watch-mode pass and a click finishing at the same moment cannot lose an attempt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Update, func, update
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col, select

from app.checks.runner import CheckResult
from app.models import Attempt, LessonSetup, TaskProgress, utcnow


def record_attempt(
    session: Session,
    attendee_id: int,
    task_id: str,
    results: Sequence[CheckResult],
    *,
    started_at: datetime,
    duration_ms: int,
) -> TaskProgress:
    """Store one run of a task's checks and fold it into the attendee's progress on that task."""
    passed = bool(results) and all(result.passed for result in results)
    failed = next((result.name for result in results if not result.passed), None)
    session.add(
        Attempt(
            attendee_id=attendee_id,
            task_id=task_id,
            passed=passed,
            started_at=started_at,
            duration_ms=duration_ms,
            results=json.dumps([result.as_dict() for result in results]),
        )
    )
    _ensure_progress_row(session, attendee_id, task_id)
    now = utcnow()
    values: dict[str, object] = {
        "attempts": TaskProgress.attempts + 1,
        "last_failed_check": failed,
        "updated_at": now,
    }
    if passed:
        # The first pass time is kept: later passes (or failures) never move it.
        values["first_passed_at"] = func.coalesce(TaskProgress.first_passed_at, now)
    session.exec(_progress_update(attendee_id, task_id).values(**values))
    session.commit()
    return _progress(session, attendee_id, task_id)


def record_solution_shown(session: Session, attendee_id: int, task_id: str) -> TaskProgress:
    _ensure_progress_row(session, attendee_id, task_id)
    session.exec(
        _progress_update(attendee_id, task_id).values(solution_shown=True, updated_at=utcnow())
    )
    session.commit()
    return _progress(session, attendee_id, task_id)


def progress_of(session: Session, attendee_id: int, task_id: str) -> TaskProgress | None:
    return session.get(TaskProgress, (attendee_id, task_id))


def attempts_of(session: Session, attendee_id: int, task_id: str) -> list[Attempt]:
    query = (
        select(Attempt)
        .where(Attempt.attendee_id == attendee_id, Attempt.task_id == task_id)
        .order_by(col(Attempt.id))
    )
    return list(session.exec(query).all())


def last_attempts(
    session: Session, attendee_id: int, task_ids: Sequence[str]
) -> dict[str, Attempt]:
    """Each task's newest attempt: what the lesson page shows again after a reload."""
    newest = (
        select(func.max(Attempt.id))
        .where(Attempt.attendee_id == attendee_id, col(Attempt.task_id).in_(task_ids))
        .group_by(col(Attempt.task_id))
    )
    rows = session.exec(select(Attempt).where(col(Attempt.id).in_(newest))).all()
    return {row.task_id: row for row in rows}


def results_of(attempt: Attempt) -> list[dict[str, object]]:
    """The attempt's per-check results, as the task card renders them."""
    found = json.loads(attempt.results or "[]")
    return found if isinstance(found, list) else []


def setup_done(session: Session, attendee_id: int, lesson: str, sandbox: str) -> bool:
    """True when ``lesson``'s setup script already ran, successfully, in this very sandbox."""
    return setup_exit_code(session, attendee_id, lesson, sandbox) == 0


def setup_exit_code(session: Session, attendee_id: int, lesson: str, sandbox: str) -> int | None:
    """How ``lesson``'s setup ended in this very sandbox (-1: killed at its timeout); None when
    it has not run there."""
    row = session.get(LessonSetup, (attendee_id, lesson))
    return row.exit_code if row is not None and row.sandbox == sandbox else None


def record_setup(
    session: Session, attendee_id: int, lesson: str, sandbox: str, exit_code: int, output: str
) -> None:
    row = session.get(LessonSetup, (attendee_id, lesson)) or LessonSetup(
        attendee_id=attendee_id, lesson=lesson, sandbox=sandbox
    )
    row.sandbox = sandbox
    row.exit_code = exit_code
    row.output = output
    row.ran_at = utcnow()
    session.add(row)
    session.commit()


def _ensure_progress_row(session: Session, attendee_id: int, task_id: str) -> None:
    statement = insert(TaskProgress).values(
        attendee_id=attendee_id,
        task_id=task_id,
        attempts=0,
        solution_shown=False,
        updated_at=utcnow(),
    )
    session.exec(statement.on_conflict_do_nothing())


def _progress_update(attendee_id: int, task_id: str) -> Update:
    return update(TaskProgress).where(
        col(TaskProgress.attendee_id) == attendee_id, col(TaskProgress.task_id) == task_id
    )


def _progress(session: Session, attendee_id: int, task_id: str) -> TaskProgress:
    progress = session.get(TaskProgress, (attendee_id, task_id), populate_existing=True)
    assert progress is not None  # _ensure_progress_row just made sure
    return progress
