"""The bounded buffer between a sandbox's terminal output and the page (flow control)."""

from __future__ import annotations

import asyncio

OUTPUT_BUFFER_BYTES = 256 * 1024  # per terminal, between the sandbox and the websocket
FRAME_BYTES = 64 * 1024  # output is coalesced into frames of at most this size


class OutputBuffer:
    """Bytes on their way to the page, at most ``limit`` of them.

    ``put`` waits while the buffer is full (backpressure on the sandbox); ``take`` hands out
    everything buffered up to ``most`` bytes at once, so a flood travels in few large frames
    and a keystroke's echo in a frame of its own, without waiting. ``pause`` holds ``take``
    back (the page asked for it) until ``resume``."""

    def __init__(self, limit: int = OUTPUT_BUFFER_BYTES) -> None:
        self.limit = limit
        self._data = bytearray()
        self._closed = False
        self._paused = False
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._data)

    async def put(self, chunk: bytes) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._data) < self.limit or self._closed)
            self._data += chunk
            self._changed.notify_all()

    async def take(self, most: int = FRAME_BYTES) -> bytes:
        """At least one byte, waiting for it; ``b""`` once closed and drained."""
        async with self._changed:
            await self._changed.wait_for(self._can_take)
            chunk = bytes(self._data[:most])
            del self._data[:most]
            self._changed.notify_all()
            return chunk

    def _can_take(self) -> bool:
        return (bool(self._data) and not self._paused) or (self._closed and not self._data)

    async def pause(self) -> None:
        await self._set_paused(True)

    async def resume(self) -> None:
        await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> None:
        async with self._changed:
            self._paused = paused
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
