"""What the instructor does to sandboxes: reset, stop, size the warm pool, end the workshop.

Talks to the sandbox service (app/sandboxes/service.py) through the few calls below.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.events import EventHub
from app.instructor.broadcasts import BroadcastBoard

END_MESSAGE = "The workshop has ended: thank you! Your sandbox is removed; your progress is kept."


class SandboxControl(Protocol):
    async def reset(self, attendee_id: int) -> Any: ...

    async def stop(self, attendee_id: int) -> None: ...

    async def prune(self, everything: bool = False) -> list[str]: ...

    def set_warm_pool_size(self, size: int) -> None: ...

    def class_view(self) -> Any: ...


async def end_workshop(service: SandboxControl, events: EventHub, board: BroadcastBoard) -> int:
    """Tell everyone, stop refilling the pool, remove every sandbox. Progress stays in the
    database (and in the export). Returns how many sandboxes were removed."""
    board.send(events, END_MESSAGE)
    service.set_warm_pool_size(0)
    removed = await service.prune(everything=True)
    return len(removed)
