"""`WS /ws/terminal`: the attendee's shell; `WS /ws/instructor/terminal/{id}`: the instructor
watching it (``mode=read``, the default) or typing along (``mode=write``).

Both accept the handshake before checking anything, so that a refusal reaches the page as a
close code it can act on (4401: join again, 4403: wrong origin or token) rather than as an
anonymous failed handshake; nothing is read or run before the checks pass. The protocol is in
docs/terminal-protocol.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket
from sqlmodel import Session

from app.instructor import auth as instructor_auth
from app.models import Attendee
from app.terminal import serve_terminal
from app.websockets import (
    FORBIDDEN,
    POLICY_VIOLATION,
    SANDBOX_UNAVAILABLE,
    UNAUTHORIZED,
    origin_allowed,
    websocket_attendee,
)

router = APIRouter()

NOT_FOUND = 4404
SHADOW_MODES = ("read", "write")


@router.websocket("/ws/terminal")
async def attendee_terminal(websocket: WebSocket) -> None:
    state = websocket.app.state
    await websocket.accept()
    if not origin_allowed(websocket, state.settings.public_url):
        await websocket.close(FORBIDDEN, "foreign origin")
        return
    if state.workshop is None:
        await websocket.close(SANDBOX_UNAVAILABLE, "no workshop is loaded")
        return
    with Session(state.db_engine) as session:
        attendee = websocket_attendee(websocket, session, state.workshop.slug)
    if attendee is None or attendee.id is None:
        await websocket.close(UNAUTHORIZED, "join the workshop first")
        return
    await serve_terminal(websocket, state.sandboxes, state.events, attendee.id)


@router.websocket("/ws/instructor/terminal/{attendee_id}")
async def instructor_terminal(websocket: WebSocket, attendee_id: int, mode: str = "read") -> None:
    state = websocket.app.state
    await websocket.accept()
    refusal = _instructor_refusal(websocket, state, attendee_id, mode)
    if refusal is not None:
        await websocket.close(*refusal)
        return
    writable = mode == "write"
    await serve_terminal(websocket, state.sandboxes, state.events, attendee_id, writable=writable)


def _instructor_refusal(
    websocket: WebSocket, state: Any, attendee_id: int, mode: str
) -> tuple[int, str] | None:
    """Why the instructor may not open this terminal (close code and reason), or None."""
    if not origin_allowed(websocket, state.settings.public_url):
        return FORBIDDEN, "foreign origin"
    verdict = instructor_auth.verdict(state.settings, websocket.headers, websocket.cookies)
    if verdict is instructor_auth.Verdict.MISSING:
        return UNAUTHORIZED, "instructor sign-in needed"
    if verdict is not instructor_auth.Verdict.SIGNED_IN:
        return FORBIDDEN, "that instructor token is not right"
    if mode not in SHADOW_MODES:
        return POLICY_VIOLATION, "mode is read or write"
    with Session(state.db_engine) as session:
        attendee = session.get(Attendee, attendee_id)
    if attendee is None or state.workshop is None or attendee.workshop != state.workshop.slug:
        return NOT_FOUND, "no such attendee"
    if state.sandboxes.view(attendee_id) is None:
        return NOT_FOUND, "this attendee has no sandbox yet"  # watching never makes one
    return None
