"""Waiting on a TestClient websocket with a limit (TestClient only offers a blocking receive)."""

from __future__ import annotations

from typing import Any

import anyio


def receive_within(websocket: Any, seconds: float) -> dict[str, Any] | None:
    """The next message the server sends, or None when it sends nothing for ``seconds``."""

    async def receive() -> dict[str, Any] | None:
        with anyio.move_on_after(seconds):
            return await websocket._send_rx.receive()  # type: ignore[no-any-return]
        return None

    return websocket.portal.call(receive)  # type: ignore[no-any-return]
