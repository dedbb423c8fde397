"""The dashboard model over a real SQLite file: cells, time to pass, figures, hands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlmodel import Session

from app.instructor.dashboard import STUCK_ATTEMPTS, load_dashboard, task_columns
from app.instructor.hands import set_hand
from app.models import Attendee, Sandbox
from tests.support.portal import Person, attendee_named, join, record


def dashboard_of(app: FastAPI):  # type: ignore[no-untyped-def]
    with Session(app.state.services.db.engine) as session:
        return load_dashboard(session, app.state.services.workshop)


def test_columns_follow_lesson_order_with_short_labels(
    tiny_app: FastAPI, instructor: Person
) -> None:
    columns = task_columns(tiny_app.state.services.workshop)
    assert [(c.id, c.label, c.lesson_slug) for c in columns] == [
        ("one", "1.1", "lesson-1"),
        ("two", "1.2", "lesson-1"),
        ("three", "2.1", "lesson-2"),
    ]


def test_cells_show_passed_failed_and_not_tried(tiny_app: FastAPI, instructor: Person) -> None:
    ada = join(instructor, "Ada")
    record(tiny_app, ada, "one", attempts=2, passed_after=timedelta(minutes=4))
    record(tiny_app, ada, "two", attempts=STUCK_ATTEMPTS, failed_check="It is done")
    row = dashboard_of(tiny_app).rows[0]
    assert [(c.task_id, c.status, c.attempts) for c in row.cells] == [
        ("one", "passed", 2),
        ("two", "failed", STUCK_ATTEMPTS),
        ("three", "not_tried", 0),
    ]
    assert row.cells[0].seconds_to_pass == pytest.approx(240, abs=0.01)  # SQLite counts in ms
    assert row.cells[1].stuck and row.stuck
    assert row.passed == 1


def test_time_to_pass_counts_from_the_previous_pass(tiny_app: FastAPI, instructor: Person) -> None:
    ada = join(instructor, "Ada")
    record(tiny_app, ada, "one", attempts=1, passed_after=timedelta(minutes=2))
    record(tiny_app, ada, "three", attempts=1, passed_after=timedelta(minutes=3))
    record(tiny_app, ada, "two", attempts=1, passed_after=timedelta(minutes=10))
    cells = {c.task_id: c.seconds_to_pass for c in dashboard_of(tiny_app).rows[0].cells}
    assert cells == pytest.approx({"one": 120, "three": 60, "two": 420}, abs=0.01)


def test_figures_give_share_done_median_and_the_most_stuck_task(
    tiny_app: FastAPI, instructor: Person
) -> None:
    ids = [join(instructor, name) for name in ("Ada", "Bob", "Cy", "Di")]
    for minutes, attendee in zip((1, 3, 8), ids, strict=False):
        record(tiny_app, attendee, "one", attempts=1, passed_after=timedelta(minutes=minutes))
    record(tiny_app, ids[0], "two", attempts=5, failed_check="It is done")
    record(tiny_app, ids[1], "two", attempts=1, failed_check="It is done")
    figures = {f.task_id: f for f in dashboard_of(tiny_app).figures}
    assert figures["one"].share_done == 0.75
    assert figures["one"].median_seconds == pytest.approx(180, abs=0.01)
    assert figures["two"].failing == 2 and figures["two"].most_stuck
    assert not figures["one"].most_stuck and figures["three"].median_seconds is None


def test_hands_show_current_task_and_last_failed_check(
    tiny_app: FastAPI, instructor: Person
) -> None:
    ada, bob = join(instructor, "Ada"), join(instructor, "Bob")
    record(tiny_app, ada, "one", attempts=1, passed_after=timedelta(minutes=1))
    record(tiny_app, ada, "two", attempts=2, failed_check="The file exists")
    with Session(tiny_app.state.services.db.engine) as session:
        for attendee_id in (bob, ada):  # Bob first: he waited longest
            attendee = session.get(Attendee, attendee_id)
            assert attendee is not None
            attendee.current_lesson = "lesson-1"
            set_hand(session, attendee, raised=True)
    hands = dashboard_of(tiny_app).hands
    assert [row.name for row in hands] == ["Bob", "Ada"]
    assert hands[1].current_task is not None and hands[1].current_task.id == "two"
    assert hands[1].last_failed_check == "The file exists"
    assert hands[0].current_task is not None and hands[0].current_task.id == "one"


def test_rows_carry_sandbox_state_and_other_workshops_stay_out(
    tiny_app: FastAPI, instructor: Person
) -> None:
    ada = join(instructor, "Ada")
    with Session(tiny_app.state.services.db.engine) as session:
        session.add(Sandbox(workshop="tiny", attendee_id=ada, container_name="old", state="failed"))
        session.add(Sandbox(workshop="tiny", attendee_id=ada, container_name="new", state="ready"))
        session.add(Attendee(workshop="other", name="Stranger", resume_key="k" * 20))
        session.commit()
    rows = dashboard_of(tiny_app).rows
    assert [(row.name, row.sandbox_state) for row in rows] == [("Ada", "ready")]
    assert attendee_named(tiny_app, "Stranger").workshop == "other"
