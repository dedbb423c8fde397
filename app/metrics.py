"""Prometheus text for `GET /metrics`: what an operator graphs during a class (all names `labdeck_`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, select

from app.events import INSTRUCTOR_TOPIC
from app.instruments import render_instruments
from app.models import Attempt, Attendee, Sandbox, TaskProgress
from app.sandboxes.base import BackendHealth
from app.services import Services


def _metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> str:
    lines = [f"# HELP labdeck_{name} {help_text}", f"# TYPE labdeck_{name} {kind}"]
    lines += [f"labdeck_{name}{labels} {value:g}" for labels, value in samples]
    return "\n".join(lines)


def collect(services: Services, health: BackendHealth | None = None) -> str:
    """Read the counts from SQLite, the in-process hub, the creation queue and the instruments
    (app/instruments.py); cheap enough to scrape every 15 s. Blocks: call it from a thread."""
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
        *_sandbox_service_metrics(services, health),
        render_instruments(),
    ]
    return "\n".join(parts) + "\n"


def _sandbox_service_metrics(services: Services, health: BackendHealth | None) -> list[str]:
    admission = services.sandboxes.admission
    registry = health.registry if health else "none"
    return [
        _metric(
            "sandbox_creation_queue",
            "gauge",
            "Sandbox creations waiting for a worker (attendees and warm-pool refills).",
            [("", admission.waiting)],
        ),
        _metric(
            "sandbox_creations_running",
            "gauge",
            "Sandbox creations in progress.",
            [("", admission.running)],
        ),
        _metric(
            "registry_up",
            "gauge",
            "1 when the workshop registry answers, 0 when not (no sample: the backend has none).",
            [] if registry == "none" else [("", 1 if registry == "ok" else 0)],
        ),
    ]
