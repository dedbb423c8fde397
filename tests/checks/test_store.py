from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from app.checks import store
from app.checks.runner import CheckResult
from app.models import TaskProgress
from app.progress import status_of

PASS = CheckResult(0, "first", "passed", duration_ms=12)
FAIL = CheckResult(1, "second", "failed", "hint", "out", 34)


def attempt(engine: Engine, attendee_id: int, *results: CheckResult) -> TaskProgress:
    with Session(engine) as session:
        return store.record_attempt(
            session, attendee_id, "t", list(results), started_at=datetime.now(UTC), duration_ms=50
        )


def test_every_attempt_is_stored_with_its_per_check_results(
    db_engine: Engine, attendee_id: int
) -> None:
    attempt(db_engine, attendee_id, PASS, FAIL)
    with Session(db_engine) as session:
        [row] = store.attempts_of(session, attendee_id, "t")
    assert row.passed is False and row.duration_ms == 50
    assert json.loads(row.results)[1] == {
        "index": 1,
        "name": "second",
        "status": "failed",
        "message": "hint",
        "output": "out",
        "duration_ms": 34,
        "passed": False,
    }


def test_progress_counts_attempts_and_keeps_the_first_pass(
    db_engine: Engine, attendee_id: int
) -> None:
    first = attempt(db_engine, attendee_id, PASS, FAIL)
    assert (first.attempts, first.last_failed_check, status_of(first)) == (1, "second", "failed")
    passed = attempt(db_engine, attendee_id, PASS)
    assert (
        passed.attempts == 2
        and passed.first_passed_at is not None
        and passed.last_failed_check is None
    )
    again = attempt(db_engine, attendee_id, PASS, FAIL)
    assert again.attempts == 3 and again.first_passed_at == passed.first_passed_at
    assert status_of(again) == "passed"  # passed once is passed
    with Session(db_engine) as session:
        assert len(store.attempts_of(session, attendee_id, "t")) == 3


def test_an_attempt_without_checks_never_passes(db_engine: Engine, attendee_id: int) -> None:
    assert attempt(db_engine, attendee_id).first_passed_at is None


def test_showing_a_solution_is_recorded_without_counting_an_attempt(
    db_engine: Engine, attendee_id: int
) -> None:
    with Session(db_engine) as session:
        progress = store.record_solution_shown(session, attendee_id, "t")
        assert progress.solution_shown and progress.attempts == 0
        assert store.record_solution_shown(session, attendee_id, "t").solution_shown
    assert attempt(db_engine, attendee_id, FAIL).solution_shown


def test_setups_count_per_sandbox_and_only_when_they_succeeded(
    db_engine: Engine, attendee_id: int
) -> None:
    with Session(db_engine) as session:
        assert not store.setup_done(session, attendee_id, "lesson", "sbx-1")
        store.record_setup(session, attendee_id, "lesson", "sbx-1", 1, "boom")
        assert not store.setup_done(session, attendee_id, "lesson", "sbx-1")
        store.record_setup(session, attendee_id, "lesson", "sbx-1", 0, "")
        assert store.setup_done(session, attendee_id, "lesson", "sbx-1")
        assert not store.setup_done(session, attendee_id, "lesson", "sbx-2")
