"""The attendee's terminal size rules their shell (issue 14, item 7): the attendee's own page
sets it; an instructor watching or typing along is told it (``{"type": "size", ...}``) and shows
the same grid, scaled, instead of resizing the shell to their screen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from weakref import WeakKeyDictionary

from app.events import EventHub
from app.terminal.frames import TerminalSize

_known: WeakKeyDictionary[EventHub, dict[int, TerminalSize]] = WeakKeyDictionary()


def size_topic(attendee_id: int) -> str:
    return f"terminal-size:{attendee_id}"


def attendee_resized(events: EventHub, attendee_id: int, size: TerminalSize) -> None:
    """The attendee's own page has this size now: remember it and tell the watchers."""
    _known.setdefault(events, {})[attendee_id] = size
    events.publish(size_topic(attendee_id), {"type": "size", "cols": size.cols, "rows": size.rows})


def attendee_size(events: EventHub, attendee_id: int) -> TerminalSize | None:
    """The attendee's last size since the portal started, if their terminal was open."""
    return _known.get(events, {}).get(attendee_id)


@contextlib.asynccontextmanager
async def following_attendee(
    events: EventHub, attendee_id: int, follow: Callable[[TerminalSize], Awaitable[None]]
) -> AsyncIterator[None]:
    """While inside, ``follow`` gets every size the attendee's page takes."""

    async def forward() -> None:
        async for event in changes:
            await follow(TerminalSize(int(event["cols"]), int(event["rows"])))

    async with events.subscribe(size_topic(attendee_id)) as changes:
        task = asyncio.create_task(forward())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
