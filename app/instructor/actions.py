"""What the instructor does to sandboxes: reset, stop, size the warm pool, end the workshop.

Talks to ``app.state.sandboxes`` (app/sandboxes/service.py) through the few calls below.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import HTTPException, Request

from app.events import EventHub
from app.instructor.broadcasts import BroadcastBoard

END_MESSAGE = "The workshop has ended: thank you! Your sandbox is removed; your progress is kept."


class SandboxControl(Protocol):
    async def reset(self, attendee_id: int) -> Any: ...

    async def stop(self, attendee_id: int) -> None: ...

    async def prune(self, everything: bool = False) -> list[str]: ...

    def set_warm_pool_size(self, size: int) -> None: ...

    def class_view(self) -> Any: ...


def sandbox_control(request: Request) -> SandboxControl:
    service: SandboxControl | None = getattr(request.app.state, "sandboxes", None)
    if service is None:
        raise HTTPException(503, "Sandboxes are not running on this portal; see ./labdeck doctor.")
    return service


def warm_pool_size(request: Request) -> int:
    """The size the pool keeps now (it may differ from the setting after a change)."""
    service = getattr(request.app.state, "sandboxes", None)
    pool = getattr(service, "pool", None)
    size = getattr(pool, "size", None)
    return int(size) if isinstance(size, int) else int(request.app.state.settings.warm_pool_size)


async def end_workshop(service: SandboxControl, events: EventHub, board: BroadcastBoard) -> int:
    """Tell everyone, stop refilling the pool, remove every sandbox. Progress stays in the
    database (and in the export). Returns how many sandboxes were removed."""
    board.send(events, END_MESSAGE)
    service.set_warm_pool_size(0)
    removed = await service.prune(everything=True)
    return len(removed)
