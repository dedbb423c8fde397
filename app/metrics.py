"""Prometheus text for `GET /metrics`: what an operator graphs during a class (all names `labdeck_`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, select

from app.events import INSTRUCTOR_TOPIC
from app.models import Attempt, Attendee, Sandbox, TaskProgress
from app.services import Services


def _metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> str:
    lines = [f"# HELP labdeck_{name} {help_text}", f"# TYPE labdeck_{name} {kind}"]
    lines += [f"labdeck_{name}{labels} {value:g}" for labels, value in samples]
    return "\n".join(lines)


def collect(services: Services) -> str:
    """Read the counts from SQLite and the in-process hub; cheap enough to scrape every 15 s.
    Blocks: call it from a thread."""
    workshop = services.workshop.slug if services.workshop else ""
    with Session(services.db.engine) as session:
        attendees = session.exec(
            select(func.count()).select_from(Attendee).where(Attendee.workshop == workshop)
        ).one()
        states = Counter(
            session.exec(select(Sandbox.state).where(Sandbox.workshop == workshop)).all()
        )
        attempts = Counter(session.exec(select(Attempt.passed)).all())
        passed = session.exec(
            select(func.count())
            .select_from(TaskProgress)
            .where(TaskProgress.first_passed_at.is_not(None))  # type: ignore[union-attr]
        ).one()
        hands = session.exec(
            select(func.count()).select_from(Attendee).where(Attendee.hand_raised_at.is_not(None))  # type: ignore[union-attr]
        ).one()
    parts = [
        _metric("attendees", "gauge", "Attendees who joined this workshop.", [("", attendees)]),
        _metric(
            "sandboxes",
            "gauge",
            "Sandboxes by state (warm-pool ones included).",
            [(f'{{state="{state}"}}', count) for state, count in sorted(states.items())],
        ),
        _metric(
            "check_attempts_total",
            "counter",
            "Task check runs, by result.",
            [('{result="passed"}', attempts[True]), ('{result="failed"}', attempts[False])],
        ),
        _metric("tasks_passed", "gauge", "Attendee-task pairs passed.", [("", passed)]),
        _metric("hands_raised", "gauge", "Attendees waiting for help.", [("", hands)]),
        _metric(
            "dashboards_open",
            "gauge",
            "Instructor dashboards listening live.",
            [("", services.events.subscriber_count(INSTRUCTOR_TOPIC))],
        ),
    ]
    return "\n".join(parts) + "\n"
