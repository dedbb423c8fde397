"""`WS /ws/events`: sandbox progress, check progress and results, and broadcasts, as JSON."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket

from app.deps import ServicesDep
from app.events import BROADCAST_TOPIC, Subscription, attendee_topic
from app.routes.ws_auth import admit_attendee

router = APIRouter()


@router.websocket("/ws/events")
async def attendee_events(websocket: WebSocket, services: ServicesDep) -> None:
    attendee = await admit_attendee(websocket, services)
    if attendee is None or attendee.id is None:
        return
    topics = (attendee_topic(attendee.id), BROADCAST_TOPIC)
    async with services.events.subscribe(*topics) as events:
        sender = asyncio.create_task(_forward(websocket, events))
        try:
            # The client sends nothing we need; reading notices the disconnect. Any frame,
            # text or binary, is read and dropped (receive_text() broke on a binary one).
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sender.cancel()


async def _forward(websocket: WebSocket, events: Subscription) -> None:
    async for event in events:
        await websocket.send_json(event)
