"""`WS /ws/events`: sandbox progress, check progress and results, and broadcasts, as JSON."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlmodel import Session

from app.events import BROADCAST_TOPIC, attendee_topic
from app.websockets import FORBIDDEN, UNAUTHORIZED, origin_allowed, websocket_attendee

router = APIRouter()


@router.websocket("/ws/events")
async def attendee_events(websocket: WebSocket) -> None:
    app = websocket.app
    if not origin_allowed(websocket, app.state.settings.public_url):
        await websocket.close(code=FORBIDDEN, reason="foreign origin")
        return
    with Session(app.state.db_engine) as session:
        attendee = websocket_attendee(websocket, session, app.state.workshop.slug)
    if attendee is None or attendee.id is None:
        await websocket.close(code=UNAUTHORIZED, reason="join the workshop first")
        return
    await websocket.accept()
    async with app.state.events.subscribe(attendee_topic(attendee.id), BROADCAST_TOPIC) as events:
        sender = asyncio.create_task(_forward(websocket, events))
        try:
            # The client sends nothing we need; reading notices the disconnect.
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()


async def _forward(websocket: WebSocket, events: object) -> None:
    async for event in events:  # type: ignore[attr-defined]
        await websocket.send_json(event)
