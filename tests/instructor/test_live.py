"""Live updates: a check result reaches open dashboards over WS /ws/instructor as rendered rows."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi import FastAPI

from app.events import INSTRUCTOR_TOPIC
from app.instructor import live
from app.instructor.dashboard import LiveDashboard
from app.sandboxes.base import ExecResult
from tests.support.portal import Person, join, run_check, sandboxes


def receive_update(ws: Any, attendee_id: int, kind: str) -> dict[str, Any]:
    """The next update about ``attendee_id`` caused by a ``kind`` event (others are skipped)."""
    while True:
        message = json.loads(ws.receive_text())
        cause = message.get("cause", {})
        if message.get("attendee_id") == attendee_id and cause.get("type") == kind:
            return message


def test_a_passed_check_updates_every_open_dashboard_within_a_second(
    tiny_app: FastAPI, instructor: Person
) -> None:
    ada = join(instructor, "Ada")
    with (
        instructor.websocket_connect("/ws/instructor") as first,
        instructor.websocket_connect("/ws/instructor") as second,
    ):
        started = time.perf_counter()
        assert run_check(instructor, ada, "two")
        for ws in (first, second):
            update = receive_update(ws, ada, "task")
            assert '<td class="cell passed" data-task="two"' in update["row"]
            assert update["cause"]["passed"] is True and update["cause"]["task_id"] == "two"
            assert "50%" not in update["figures"] and 'data-share="100%"' in update["figures"]
        assert time.perf_counter() - started < 1.0


def test_a_failed_check_shows_attempts_and_the_failing_check(
    tiny_app: FastAPI, instructor: Person
) -> None:
    ada = join(instructor, "Ada")
    service = sandboxes(instructor)
    service.backend.exec_handler = lambda name, command, user: ExecResult(1, "no")  # type: ignore[attr-defined]
    with instructor.websocket_connect("/ws/instructor") as ws:
        assert not run_check(instructor, ada, "one")
        update = receive_update(ws, ada, "task")
    assert '<td class="cell failed" data-task="one"' in update["row"] and "✗ 1" in update["row"]
    assert "Last failed: It is done" in update["row"]


def test_new_attendees_and_lesson_views_reach_the_dashboard(
    tiny_app: FastAPI, instructor: Person
) -> None:
    attendee = Person(instructor.client)
    with instructor.websocket_connect("/ws/instructor") as ws:
        ada = join(attendee, "Ada")
        assert "Ada" in receive_update(ws, ada, "attendee")["row"]
        attendee.get("/lessons/lesson-2")
        assert "More" in receive_update(ws, ada, "activity")["row"]


def test_a_burst_of_events_gets_a_message_each_and_each_row_rendered_once(
    tiny_app: FastAPI, instructor: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, bob = join(Person(instructor.client), "Ada"), join(Person(instructor.client), "Bob")
    renders: list[tuple[list[int], list[int]]] = []  # (attendees of a batch, rows read for it)
    original_refresh, original_messages = LiveDashboard.refresh, live.update_messages

    def counting_refresh(self: LiveDashboard, session: Any, attendee_id: int) -> Any:
        renders[-1][1].append(attendee_id)
        return original_refresh(self, session, attendee_id)

    def recording_messages(session: Any, dashboard: Any, events: list[Any]) -> Any:
        renders.append(([e["attendee_id"] for e in events if "attendee_id" in e], []))
        return original_messages(session, dashboard, events)

    monkeypatch.setattr(LiveDashboard, "refresh", counting_refresh)
    monkeypatch.setattr(live, "update_messages", recording_messages)
    burst = [ada, bob, ada, ada, bob, ada]
    with instructor.websocket_connect("/ws/instructor") as ws:
        assert instructor.portal is not None

        def publish_all() -> None:  # on the loop, before the feed runs again: one batch
            for attendee_id in burst:
                tiny_app.state.services.events.publish(
                    INSTRUCTOR_TOPIC, {"type": "activity", "attendee_id": attendee_id}
                )

        instructor.portal.call(publish_all)
        messages: list[dict[str, Any]] = []
        while len(messages) < len(burst):  # the sandboxes' own events may come in between
            message = json.loads(ws.receive_text())
            if message.get("cause", {}).get("type") == "activity":
                messages.append(message)
    assert [m["attendee_id"] for m in messages] == burst
    assert all("Ada" in m["row"] for m in messages if m["attendee_id"] == ada)
    assert all(m["figures"] and m["summary"] for m in messages)
    # Every batch reads each of its attendees' rows once; the burst went as one batch.
    assert all(sorted(set(events)) == sorted(rows) for events, rows in renders), renders
    assert any(len(events) >= len(burst) for events, _rows in renders), renders


def test_dropped_events_make_the_dashboard_resync(tiny_app: FastAPI, instructor: Person) -> None:
    with instructor.websocket_connect("/ws/instructor") as ws:
        assert instructor.portal is not None
        instructor.portal.call(
            tiny_app.state.services.events.publish,
            INSTRUCTOR_TOPIC,
            {"type": "task", "lagged": True},
        )
        assert json.loads(ws.receive_text()) == {"type": "resync"}


def test_the_feed_runs_only_while_a_dashboard_is_open(
    tiny_app: FastAPI, instructor: Person
) -> None:
    events = tiny_app.state.services.events
    assert events.subscriber_count(INSTRUCTOR_TOPIC) == 0
    with (
        instructor.websocket_connect("/ws/instructor"),
        instructor.websocket_connect("/ws/instructor"),
    ):
        assert events.subscriber_count(INSTRUCTOR_TOPIC) == 1  # one renderer for all dashboards
        assert tiny_app.state.services.dashboard_feed.dashboards == 2
    deadline = time.monotonic() + 2
    while events.subscriber_count(INSTRUCTOR_TOPIC) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events.subscriber_count(INSTRUCTOR_TOPIC) == 0
