"""Who is on the other end of a websocket: the attendee's cookie, and an Origin we serve."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import WebSocket
from sqlmodel import Session

from app.attendees import COOKIE_NAME, SessionCookies
from app.models import Attendee

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


def websocket_attendee(
    websocket: WebSocket, session: Session, workshop_slug: str
) -> Attendee | None:
    cookies: SessionCookies = websocket.app.state.cookies
    found = cookies.load(websocket.cookies.get(COOKIE_NAME))
    if found is None:
        return None
    attendee = session.get(Attendee, found[0])
    if attendee is None or attendee.workshop != workshop_slug:
        return None
    return attendee if secrets.compare_digest(attendee.resume_key, found[1]) else None
