"""Watch mode: re-check one task every few seconds while its lesson is open. Off by default; the
task card's "Watch" switch turns it on and off.

A watch ends when the task passes, when the attendee switches it off, when no page of theirs is
listening on ``/ws/events`` any more (the lesson was closed), when the sandbox cannot be used,
or after ``limit`` seconds, so a forgotten tab cannot keep a sandbox busy (or awake) all day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from app.events import EventHub, attendee_topic
from app.lessons.schema import Lesson, Task

log = logging.getLogger("labdeck.checks")
WATCH_INTERVAL_SECONDS = 5.0
WATCH_LIMIT_SECONDS = 20 * 60.0


class Tick(Protocol):
    """One quiet re-check, as watch mode reads it (``checks.service.TaskRun``)."""

    @property
    def unavailable(self) -> str: ...

    @property
    def passed(self) -> bool: ...

    def outcome(self) -> tuple[str, ...]: ...


class Checker(Protocol):
    """What watch mode asks of the check service; a Protocol, so this module does not import
    the service that owns it (they imported each other, issue 12)."""

    events: EventHub

    def is_running(self, attendee_id: int, task_id: str) -> bool: ...

    async def watch_tick(
        self, attendee_id: int, lesson: Lesson, task: Task, previous: tuple[str, ...]
    ) -> Tick: ...


class Watches:
    def __init__(
        self,
        service: Checker,
        *,
        interval: float = WATCH_INTERVAL_SECONDS,
        limit: float = WATCH_LIMIT_SECONDS,
    ) -> None:
        self._service = service
        self.interval = interval
        self.limit = limit
        self._loops: dict[tuple[int, str], asyncio.Task[None]] = {}

    def is_watching(self, attendee_id: int, task_id: str) -> bool:
        loop = self._loops.get((attendee_id, task_id))
        return loop is not None and not loop.done()

    def start(self, attendee_id: int, lesson: Lesson, task: Task) -> None:
        """Start watching; starting a watch that runs already changes nothing."""
        key = (attendee_id, task.id)
        if self.is_watching(*key):
            return
        loop = asyncio.create_task(self._watch(attendee_id, lesson, task))
        self._loops[key] = loop
        loop.add_done_callback(lambda done: self._forget(key, done))

    def stop(self, attendee_id: int, task_id: str) -> None:
        loop = self._loops.pop((attendee_id, task_id), None)
        if loop is not None:
            loop.cancel()

    async def close(self) -> None:
        loops = list(self._loops.values())
        self._loops.clear()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    async def _watch(self, attendee_id: int, lesson: Lesson, task: Task) -> None:
        deadline = time.monotonic() + self.limit
        previous: tuple[str, ...] = ()
        while time.monotonic() < deadline:
            await asyncio.sleep(self.interval)
            if not self._page_open(attendee_id):
                return
            if self._service.is_running(attendee_id, task.id):
                continue  # the attendee clicked Check; that run reports for both
            run = await self._tick(attendee_id, lesson, task, previous)
            if run is None or run.passed:
                return
            if run.unavailable:
                break  # a stopped sandbox is not woken again and again by a forgotten tab
            previous = run.outcome()
        self._announce_end(attendee_id, task.id)

    async def _tick(
        self, attendee_id: int, lesson: Lesson, task: Task, previous: tuple[str, ...]
    ) -> Tick | None:
        try:
            return await self._service.watch_tick(attendee_id, lesson, task, previous)
        except Exception:
            # A watch is a convenience: log, tell the page it stopped, never crash the portal.
            log.exception("watch of task %s for attendee %s failed", task.id, attendee_id)
            self._announce_end(attendee_id, task.id)
            return None

    def _page_open(self, attendee_id: int) -> bool:
        return self._service.events.subscriber_count(attendee_topic(attendee_id)) > 0

    def _announce_end(self, attendee_id: int, task_id: str) -> None:
        event = {"type": "watch", "task_id": task_id, "watching": False}
        self._service.events.publish(attendee_topic(attendee_id), event)

    def _forget(self, key: tuple[int, str], loop: asyncio.Task[None]) -> None:
        if self._loops.get(key) is loop:
            del self._loops[key]
        with contextlib.suppress(asyncio.CancelledError):
            loop.exception()  # retrieved, so asyncio does not log it as never retrieved
