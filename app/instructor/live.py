"""Live dashboard updates: one listener on the instructor topic renders each change once and
fans the result out to every open dashboard (``WS /ws/instructor``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from sqlmodel import Session
from starlette.websockets import WebSocket

from app.db import Database
from app.events import INSTRUCTOR_TOPIC, Event, EventHub
from app.instructor.dashboard import LiveDashboard
from app.instructor.fragments import update_messages
from app.lessons.schema import Workshop

log = logging.getLogger("labdeck.instructor")
DASHBOARD_QUEUE = 64
RESYNC = json.dumps({"type": "resync"})
CONTENT_EVENT = "content"  # the workshop was reloaded, or its problems changed


class DashboardFeed:
    """Runs while at least one dashboard is open; rendering happens off the event loop."""

    def __init__(
        self, events: EventHub, database: Database, workshop: Callable[[], Workshop | None]
    ) -> None:
        """``workshop`` gives the workshop served now; a reload makes every dashboard redraw."""
        self._events = events
        self._db = database
        self._workshop = workshop
        self._dashboards: set[asyncio.Queue[str]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._live: LiveDashboard | None = None

    @property
    def dashboards(self) -> int:
        return len(self._dashboards)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of JSON messages for one dashboard, from the moment this returns."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=DASHBOARD_QUEUE)
        self._dashboards.add(queue)
        if self._pump is None or self._pump.done():
            self._subscribed = asyncio.Event()
            self._live = self._new_live()  # read afresh on the first event
            self._pump = asyncio.create_task(self._run(self._subscribed))
        await self._subscribed.wait()
        try:
            yield queue
        finally:
            self._dashboards.discard(queue)
            if not self._dashboards and self._pump is not None:
                self._pump.cancel()
                self._pump = None

    async def serve(self, websocket: WebSocket) -> None:
        """Send every update to an accepted, signed-in dashboard socket until it disconnects."""
        async with self.listen() as updates:
            sender = asyncio.create_task(_forward(websocket, updates))
            try:
                # The dashboard sends nothing we need; reading notices the disconnect. Any
                # frame, text or binary, is read and dropped (receive_text() broke on binary).
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            finally:
                sender.cancel()

    async def _run(self, subscribed: asyncio.Event) -> None:
        async with self._events.subscribe(INSTRUCTOR_TOPIC) as events:
            subscribed.set()
            while True:
                # What queued up while the last batch was rendered is rendered together.
                batch = [await events.get(), *events.take_ready()]
                try:
                    messages = await self._db.run(partial(self._render, batch))
                except Exception:  # a broken render must not end live updates for everyone
                    log.exception("could not render a dashboard update for %r", batch)
                    continue
                for message in messages:
                    self._fan_out(message)

    def _render(self, batch: list[Event], session: Session) -> list[str]:
        assert self._live is not None
        reloaded = any(event.get("type") == CONTENT_EVENT for event in batch)
        if reloaded or self._live.workshop is not self._workshop():
            # Reloaded (other columns, maybe fewer tasks), or its problems changed: rows are
            # read again on the next event, and the dashboards fetch their whole grid now.
            self._live = self._new_live()
            return [RESYNC]
        return [json.dumps(m, default=str) for m in update_messages(session, self._live, batch)]

    def _new_live(self) -> LiveDashboard:
        workshop = self._workshop()
        assert workshop is not None, "a dashboard needs a workshop"
        return LiveDashboard(workshop)

    def _fan_out(self, message: str) -> None:
        for queue in list(self._dashboards):
            if queue.full():
                # This dashboard fell behind: it reloads its grid instead of replaying old news.
                while not queue.empty():
                    queue.get_nowait()
                message_for_it = RESYNC
            else:
                message_for_it = message
            queue.put_nowait(message_for_it)


async def _forward(websocket: WebSocket, updates: asyncio.Queue[str]) -> None:
    while True:
        await websocket.send_text(await updates.get())


def announce_content(events: EventHub) -> None:
    """The workshop was reloaded or its problems changed: every dashboard redraws."""
    events.publish(INSTRUCTOR_TOPIC, {"type": CONTENT_EVENT})


def announce_join(events: EventHub, attendee_id: int) -> None:
    """A new row on every dashboard."""
    events.publish(INSTRUCTOR_TOPIC, {"type": "attendee", "attendee_id": attendee_id})


def announce_activity(events: EventHub, attendee_id: int, lesson: str) -> None:
    """An attendee opened a lesson: their current lesson and last activity change."""
    events.publish(
        INSTRUCTOR_TOPIC, {"type": "activity", "attendee_id": attendee_id, "lesson": lesson}
    )
