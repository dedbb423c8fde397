"""Who is on the other end of a websocket, decided one way for every websocket route: the
attendee's cookie (or the instructor's token), and an Origin we serve."""

from __future__ import annotations

import asyncio

from fastapi import WebSocket

from app.csrf import expected_origin, parse_origin
from app.deps import authenticate_attendee, instructor_refusal
from app.models import Attendee
from app.services import Services

# Close codes (RFC 6455 and the 4000-4999 private range).
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
UNAUTHORIZED = 4401
FORBIDDEN = 4403
TOO_MANY_TRIES = 4429
_CLOSE_CODES = {401: UNAUTHORIZED, 403: FORBIDDEN, 429: TOO_MANY_TRIES}
SANDBOX_UNAVAILABLE = 4503


def origin_allowed(websocket: WebSocket, public_url: str | None) -> bool:
    """Browsers send Origin; it must be this portal exactly (scheme, host and port of its Host
    header, or of the public URL): a page on another port of the same host is refused."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser (scripts, tests): the cookie still has to be right
    given = parse_origin(origin)
    ours = {expected_origin(websocket.scope, public_url), expected_origin(websocket.scope, None)}
    return given is not None and given in ours


async def admit_attendee(websocket: WebSocket, services: Services) -> Attendee | None:
    """Every attendee websocket starts here: who it is, decided before the handshake is
    accepted; then accepted, so that a refusal reaches the page as a close code it acts on
    (4401: join again, 4403: a foreign page) instead of an anonymous failed handshake."""
    attendee, refusal = await attendee_or_refusal(websocket, services)
    await websocket.accept()
    if refusal is not None:
        await websocket.close(*refusal)
        return None
    return attendee


async def attendee_or_refusal(
    websocket: WebSocket, services: Services
) -> tuple[Attendee | None, tuple[int, str] | None]:
    """``admit_attendee``'s decision without accepting, for a route that must accept with a
    subprotocol of its own (the port preview): the attendee, or the close code and reason."""
    if not origin_allowed(websocket, services.settings.public_url):
        return None, (FORBIDDEN, "foreign origin")
    attendee = await asyncio.to_thread(authenticate_attendee, websocket, services)
    if attendee is None or attendee.id is None:
        return None, (UNAUTHORIZED, "join the workshop first")
    return attendee, None


async def admit_instructor(websocket: WebSocket, services: Services) -> bool:
    """The same for the instructor's websockets: the token or the signed-in browser; wrong
    tokens count against the address as they do over HTTP."""
    refusal: tuple[int, str] | None = None
    if not origin_allowed(websocket, services.settings.public_url):
        refusal = (FORBIDDEN, "foreign origin")
    else:
        refused = instructor_refusal(websocket, services.settings, services.limiters)
        if refused is not None:
            refusal = (_CLOSE_CODES[refused[0]], refused[1])
    await websocket.accept()
    if refusal is not None:
        await websocket.close(*refusal)
        return False
    return True
