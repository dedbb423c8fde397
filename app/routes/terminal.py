"""`WS /ws/terminal`: the attendee's shell; `WS /ws/instructor/terminal/{id}`: the instructor
watching it (``mode=read``, the default) or typing along (``mode=write``).

Both are admitted as every websocket is (app/routes/ws_auth.py): decided before the handshake
is accepted, refused with a close code the page acts on; nothing is read or run before that.
The protocol is in docs/terminal-protocol.md.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket

from app.attendees import find_attendee
from app.deps import ServicesDep
from app.routes.ws_auth import POLICY_VIOLATION, admit_attendee, admit_instructor
from app.services import Services
from app.terminal.serve import serve_terminal

router = APIRouter()

NOT_FOUND = 4404
SHADOW_MODES = ("read", "write")


@router.websocket("/ws/terminal")
async def attendee_terminal(websocket: WebSocket, services: ServicesDep) -> None:
    attendee = await admit_attendee(websocket, services)
    if attendee is None or attendee.id is None:
        return
    await serve_terminal(websocket, services.sandboxes, services.events, attendee.id)


@router.websocket("/ws/instructor/terminal/{attendee_id}")
async def instructor_terminal(
    websocket: WebSocket, attendee_id: int, services: ServicesDep, mode: str = "read"
) -> None:
    if not await admit_instructor(websocket, services):
        return
    refusal = await asyncio.to_thread(_cannot_watch, services, attendee_id, mode)
    if refusal is not None:
        await websocket.close(*refusal)
        return
    writable = mode == "write"
    await serve_terminal(
        websocket,
        services.sandboxes,
        services.events,
        attendee_id,
        writable=writable,
        watching=True,
    )


def _cannot_watch(services: Services, attendee_id: int, mode: str) -> tuple[int, str] | None:
    """Why the instructor may not open this terminal (close code and reason), or None. Blocks."""
    if mode not in SHADOW_MODES:
        return POLICY_VIOLATION, "mode is read or write"
    workshop = services.workshop
    attendee = services.db.run_sync(lambda session: find_attendee(session, attendee_id))
    if attendee is None or workshop is None or attendee.workshop != workshop.slug:
        return NOT_FOUND, "no such attendee"
    if services.sandboxes.view(attendee_id) is None:
        return NOT_FOUND, "this attendee has no sandbox yet"  # watching never makes one
    return None
