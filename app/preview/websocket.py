"""Websockets through the preview: the app's socket is opened first (so the browser gets the
subprotocol the app chose), then messages are relayed both ways until either side closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from app.preview import CONNECT_TIMEOUT, MAX_WEBSOCKET_MESSAGE
from app.preview.headers import without_portal_cookies
from app.preview.target import Target

log = logging.getLogger("labdeck.preview")

MESSAGE_TOO_BIG = 1009
NOTHING_LISTENS = 4502  # a private close code: the app could not be reached
NORMAL = 1000


def app_ws_url(websocket: WebSocket, target: Target) -> str:
    raw_path: bytes = websocket.scope.get("raw_path") or websocket.url.path.encode()
    prefix = target.prefix.encode()
    rest = raw_path[len(prefix) :] if raw_path.startswith(prefix) else b"/"
    query = websocket.scope.get("query_string", b"")
    host = f"[{target.host}]" if ":" in target.host else target.host
    path = (rest or b"/").decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return f"ws://{host}:{target.port}{path}"


async def relay(websocket: WebSocket, target: Target) -> None:
    """Accept ``websocket`` (already authorized) and relay it to the app's socket."""
    extra: dict[str, str] = {"X-Forwarded-Prefix": target.prefix}
    cookie = without_portal_cookies(websocket.headers.get("cookie", ""))
    if cookie:
        extra["Cookie"] = cookie
    wanted = [
        Subprotocol(part.strip())
        for part in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if part.strip()
    ]
    try:
        upstream = await connect(
            app_ws_url(websocket, target),
            additional_headers=extra,
            subprotocols=wanted or None,
            max_size=MAX_WEBSOCKET_MESSAGE,
            open_timeout=CONNECT_TIMEOUT,
            proxy=None,
        )
    except (OSError, TimeoutError, WebSocketException) as error:
        log.info("preview websocket to port %s: %s", target.port, error)
        await websocket.accept()
        await websocket.close(NOTHING_LISTENS, f"nothing answers on port {target.port}")
        return
    async with upstream:
        await websocket.accept(subprotocol=upstream.subprotocol)
        await _both_ways(websocket, upstream)


async def _both_ways(websocket: WebSocket, upstream: ClientConnection) -> None:
    to_app = asyncio.create_task(_browser_to_app(websocket, upstream))
    to_browser = asyncio.create_task(_app_to_browser(websocket, upstream))
    done, pending = await asyncio.wait({to_app, to_browser}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending | done:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _browser_to_app(websocket: WebSocket, upstream: ClientConnection) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(message.get("code", NORMAL))
                return
            data: str | bytes = message.get("bytes") or message.get("text") or ""
            if len(data) > MAX_WEBSOCKET_MESSAGE:
                await websocket.close(MESSAGE_TOO_BIG, "message too big for the preview")
                return
            await upstream.send(data)
    except (ConnectionClosed, WebSocketDisconnect):
        return


async def _app_to_browser(websocket: WebSocket, upstream: ClientConnection) -> None:
    try:
        async for data in upstream:
            if isinstance(data, bytes):
                await websocket.send_bytes(data)
            else:
                await websocket.send_text(data)
    except ConnectionClosed:
        pass
    code = upstream.close_code or NORMAL
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(MESSAGE_TOO_BIG if code == MESSAGE_TOO_BIG else _closing(code))


def _closing(code: int) -> int:
    """A code the browser may receive: 1005/1006/1015 are never sent on the wire."""
    return NORMAL if code in (1005, 1006, 1015) else code
