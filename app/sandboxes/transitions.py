"""How a sandbox's state moves: every change goes through ``Transitions.set_state``, which writes
the row, wakes whoever waits on that sandbox and tells the attendee's page and the instructor's
dashboard. ``Activity`` remembers who used their sandbox, cheaply, until the reaper asks."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from app.events import INSTRUCTOR_TOPIC, EventHub, attendee_topic
from app.instruments import SANDBOX_HAND_OUT_SECONDS, since
from app.models import Sandbox, utcnow
from app.sandboxes.base import SandboxState
from app.sandboxes.records import SandboxRecords


class Transitions:
    """State changes: the row, the waiters, and the events for the attendee and the instructor."""

    def __init__(self, records: SandboxRecords, events: EventHub) -> None:
        self.records = records
        self.events = events
        self._waiters: dict[str, asyncio.Event] = {}
        self._handing_out: dict[str, tuple[float, str]] = {}

    def waiter(self, name: str) -> asyncio.Event:
        """An event set at the next change of ``name``. Take it before awaiting anything."""
        return self._waiters.setdefault(name, asyncio.Event())

    def wake(self, name: str) -> None:
        event = self._waiters.pop(name, None)
        if event is not None:
            event.set()

    async def set_state(self, name: str, state: SandboxState, message: str = "") -> Sandbox | None:
        values: dict[str, Any] = {"state": str(state), "message": message or None}
        if state is SandboxState.READY:
            values["ready_at"] = utcnow()
        row = await self.records.update(name, **values)
        if state is SandboxState.READY and name in self._handing_out:
            asked, source = self._handing_out.pop(name)
            SANDBOX_HAND_OUT_SECONDS.observe(since(asked), source=source)
        self.wake(name)
        if row is not None:
            self.publish(row)
        return row

    def time_hand_out(self, row: Sandbox, asked: float, source: str) -> None:
        """Measure from ``asked`` (``time.monotonic()``) to the sandbox being ready: now when
        it is, else at its READY transition."""
        if row.state == SandboxState.READY:
            SANDBOX_HAND_OUT_SECONDS.observe(since(asked), source=source)
        else:
            self._handing_out[row.container_name] = (asked, source)

    def publish(self, row: Sandbox, position: int | None = None) -> None:
        if row.attendee_id is not None:
            message = row.message or default_message(row.state, position)
            self._announce(row.attendee_id, row.container_name, row.state, message, position)

    def removed(self, row: Sandbox, message: str) -> None:
        """Tell the owner their sandbox is gone; a fresh one is made when they come back."""
        self.wake(row.container_name)
        self._handing_out.pop(row.container_name, None)
        if row.attendee_id is not None:
            self._announce(row.attendee_id, row.container_name, SandboxState.STOPPED, message, None)

    def announce_position(self, attendee_id: int, name: str, position: int) -> None:
        """A new place in the queue: for the attendee only, the dashboard needs no such detail."""
        message = default_message(SandboxState.QUEUED, position)
        self._announce(attendee_id, name, SandboxState.QUEUED, message, position, instructor=False)

    def _announce(
        self,
        attendee_id: int,
        name: str,
        state: str,
        message: str,
        position: int | None,
        *,
        instructor: bool = True,
    ) -> None:
        self.events.publish(
            attendee_topic(attendee_id),
            {
                "type": "sandbox",
                "state": str(state),
                "position": position,
                "message": message,
                "name": name,
            },
        )
        if instructor:
            self.events.publish(
                INSTRUCTOR_TOPIC,
                {"type": "sandbox", "attendee_id": attendee_id, "state": str(state)},
            )


def default_message(state: str, position: int | None = None) -> str:
    if state == SandboxState.QUEUED:
        place = f" (number {position} in the queue)" if position else ""
        return f"Your sandbox is waiting for its turn{place}."
    return {
        SandboxState.CREATING: "Creating your sandbox.",
        SandboxState.STARTING: "Starting the Docker engine in your sandbox.",
        SandboxState.READY: "Your sandbox is ready.",
        SandboxState.STOPPED: "Your sandbox is stopped; it starts again when you use it.",
        SandboxState.FAILED: "Your sandbox could not be created.",
        SandboxState.MISSING: "Your sandbox is gone; a new one is made when you use it.",
    }.get(SandboxState(state), "")


class Activity:
    """``touch`` only writes a dict; the reaper flushes it to the database before it decides."""

    def __init__(self) -> None:
        self._seen: dict[int, datetime] = {}

    def touch(self, attendee_id: int) -> None:
        self._seen[attendee_id] = utcnow()

    def last_seen(self, attendee_id: int | None) -> datetime | None:
        return None if attendee_id is None else self._seen.get(attendee_id)

    async def flush(self, records: SandboxRecords) -> None:
        seen, self._seen = self._seen, {}
        await records.record_activity(seen)

    def flush_now(self, records: SandboxRecords) -> None:
        """``flush`` at shutdown, when the event loop has nothing else to do."""
        seen, self._seen = self._seen, {}
        records.record_activity_now(seen)
