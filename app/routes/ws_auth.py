"""Who is on the other end of a websocket, decided one way for every websocket route: the
attendee's cookie (or the instructor's token), and an Origin we serve."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import WebSocket

from app.config import Settings
from app.deps import authenticate_attendee
from app.instructor import auth as instructor_auth
from app.models import Attendee
from app.services import Services

# Close codes (RFC 6455 and the 4000-4999 private range).
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
UNAUTHORIZED = 4401
FORBIDDEN = 4403
SANDBOX_UNAVAILABLE = 4503


def origin_allowed(websocket: WebSocket, public_url: str | None) -> bool:
    """Browsers send Origin; it must be this portal (its Host header, or the public URL)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser (scripts, tests): the cookie still has to be right
    origin_host = urlsplit(origin).netloc.lower()
    allowed = {websocket.headers.get("host", "").lower()}
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return origin_host in allowed


async def admit_attendee(websocket: WebSocket, services: Services) -> Attendee | None:
    """Every attendee websocket starts here: who it is, decided before the handshake is
    accepted; then accepted, so that a refusal reaches the page as a close code it acts on
    (4401: join again, 4403: a foreign page) instead of an anonymous failed handshake."""
    refusal: tuple[int, str] | None = None
    attendee = None
    if not origin_allowed(websocket, services.settings.public_url):
        refusal = (FORBIDDEN, "foreign origin")
    else:
        attendee = await asyncio.to_thread(authenticate_attendee, websocket, services)
        if attendee is None or attendee.id is None:
            refusal = (UNAUTHORIZED, "join the workshop first")
    await websocket.accept()
    if refusal is not None:
        await websocket.close(*refusal)
        return None
    return attendee


async def admit_instructor(websocket: WebSocket, settings: Settings) -> bool:
    """The same for the instructor's websockets: the token or the signed-in browser."""
    refusal: tuple[int, str] | None = None
    if not origin_allowed(websocket, settings.public_url):
        refusal = (FORBIDDEN, "foreign origin")
    else:
        found = instructor_auth.verdict(settings, websocket.headers, websocket.cookies)
        if found is instructor_auth.Verdict.MISSING:
            refusal = (UNAUTHORIZED, "instructor sign-in needed")
        elif found is not instructor_auth.Verdict.SIGNED_IN:
            refusal = (FORBIDDEN, "that instructor token is not right")
    await websocket.accept()
    if refusal is not None:
        await websocket.close(*refusal)
        return False
    return True
