"""Absolute paths that escape the preview. An app at ``/preview/8080/`` that links
``/static/app.css`` makes the browser ask the portal for ``/static/app.css``. When the portal has
nothing there (404) and the request's ``Referer`` is a page of the attendee's preview on this
portal, the answer becomes a 307 to ``/preview/8080/static/app.css`` instead: an ordinary
request, authorized again on arrival, so a made-up Referer gains nothing.

Not rescued (documented in the README): paths the portal itself serves (``/``, ``/static/...``
files it has, ``/lessons``, ``/api/...``), websockets, and requests without a Referer (the
instructor's sandboxed view sends none). Apps that honour ``X-Forwarded-Prefix``, or use
relative links, need no rescue.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREVIEW_PAGE = re.compile(r"^(?P<prefix>/preview/[1-9][0-9]{0,4})(?:/|$)")


def rescued_location(scope: Scope) -> str | None:
    """Where a 404 for this request should go instead, or None."""
    path: str = scope["path"]
    if path.startswith("/preview/"):
        return None
    headers = Headers(scope=scope)
    referer = urlsplit(headers.get("referer", ""))
    found = PREVIEW_PAGE.match(referer.path)
    if found is None or referer.netloc != headers.get("host"):
        return None
    raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return found["prefix"] + raw_path + (f"?{query}" if query else "")


class RescuePreviewPaths:
    """Pure ASGI: turns the portal's own 404 into the 307 above (its body is dropped)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        location = rescued_location(scope) if scope["type"] == "http" else None
        if location is None:
            await self.app(scope, receive, send)
            return
        rescuing = False

        async def send_or_rescue(message: Message) -> None:
            nonlocal rescuing
            if message["type"] == "http.response.start" and message["status"] == 404:
                rescuing = True
                await send(_redirect(location))
            elif not rescuing:
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})

        await self.app(scope, receive, send_or_rescue)


def _redirect(location: str) -> Message:
    headers = [
        (b"location", location.encode("latin-1", "replace")),
        (b"content-length", b"0"),
        (b"cache-control", b"no-store"),
        (b"vary", b"Referer"),
    ]
    return {"type": "http.response.start", "status": 307, "headers": headers}
