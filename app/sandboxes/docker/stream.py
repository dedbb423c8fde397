"""The raw socket of a docker exec: its multiplexed frames (commands) or its TTY (terminals).

docker-py hands back an upgraded HTTP connection; ``Hijacked`` reads it the way the engine
writes it. ``DockerTty`` reads and writes a TTY exec's socket on the event loop, so an open
terminal holds no thread.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from typing import Any

from app.sandboxes.base import SandboxGone

_FRAME_HEADER = struct.Struct(">BxxxL")


class Hijacked:
    """An exec's upgraded connection. http.client may have read the stream's first bytes along
    with the response headers into its buffer, so reads go through that buffer first."""

    def __init__(self, socket_io: Any) -> None:
        self._socket_io = socket_io
        self.sock: socket.socket = getattr(socket_io, "_sock", socket_io)
        response = getattr(socket_io, "_response", None)
        self._response = response
        self._reader = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)

    def _read_exactly(self, size: int) -> bytes:
        reader = self._reader or self._socket_io
        data = bytearray()
        while len(data) < size:
            chunk = reader.read(size - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def frames(self) -> Iterator[bytes]:
        """The payloads of a non-TTY exec's multiplexed stdout/stderr frames, in order."""
        while True:
            try:
                header = self._read_exactly(_FRAME_HEADER.size)
                if len(header) < _FRAME_HEADER.size:
                    return
                _stream, size = _FRAME_HEADER.unpack(header)
                payload = self._read_exactly(size)
            except (OSError, ValueError):
                return  # shut down by the watchdog, or the engine went away
            if payload:
                yield payload
            if len(payload) < size:
                return

    def take_buffered(self) -> bytes:
        """Switch to non-blocking and return what http.client had read ahead (for a TTY)."""
        self.sock.setblocking(False)
        if self._reader is None:
            return b""
        try:
            return self._reader.read1(1 << 16) or b""
        except (BlockingIOError, OSError, ValueError):
            return b""

    def shutdown(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        for closable in (self._reader, self._socket_io, self._response, self.sock):
            with suppress(Exception):
                closable.close()  # type: ignore[union-attr]


class DockerTty:
    """A TTY exec's socket, read and written on the event loop (no thread per terminal)."""

    def __init__(self, connection: Hijacked, resize: Callable[[int, int], Awaitable[None]]) -> None:
        self._connection = connection
        self._sock = connection.sock
        self._pending = connection.take_buffered()
        self._resize = resize
        self._closed = False
        self._reading = False

    async def read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._closed:
            return b""
        self._reading = True
        try:
            data = await asyncio.get_running_loop().sock_recv(self._sock, 1 << 16)
        except OSError:
            data = b""
        finally:
            self._reading = False
        if self._closed:
            self._connection.close()
        return data

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise SandboxGone("This terminal is closed.")
        try:
            await asyncio.get_running_loop().sock_sendall(self._sock, data)
        except OSError as error:
            raise SandboxGone("The sandbox behind this terminal is gone.") from error

    async def resize(self, cols: int, rows: int) -> None:
        await self._resize(cols, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connection.shutdown()  # wakes a pending read, which then closes the socket
        if not self._reading:
            self._connection.close()
