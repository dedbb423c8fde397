"""One websocket's terminal: the page's frames in, the sandbox's bytes out, until either side
ends. ``app.terminal.serve.serve_terminal`` makes one per connection; the protocol is in
docs/terminal-protocol.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from app.sandboxes.base import SandboxBackend, SandboxError, Tty
from app.terminal.buffer import OutputBuffer
from app.terminal.frames import ClientMessage, Keys, Resize, TerminalSize, parse_client_frame
from app.terminal.session import ClientTtyFinder, detach_command

PENDING_INPUT_BYTES = 16 * 1024  # keys typed while the sandbox starts, sent once it is there
KEYS_WAIT = 0.5  # at most, for the attach to put its TTY in raw mode
DETACH_TIMEOUT = 5.0
NORMAL_CLOSURE = 1000


class ShellEnded(Exception):
    """The shell ended (e.g. after ``exit``), and with it this connection's attach."""


class TerminalConnection:
    """One websocket's terminal: reads the page's frames, keeps the keys typed before the
    attach, then moves bytes both ways until either side ends. ``writable=False`` drops keys."""

    def __init__(
        self, websocket: WebSocket, *, writable: bool, on_input: Callable[[], None]
    ) -> None:
        self.websocket = websocket
        self.writable = writable
        self.on_input = on_input
        self.size = TerminalSize()
        self.size_known = asyncio.Event()
        self.output = OutputBuffer()
        self._tty: Tty | None = None
        self.sandbox: str | None = None
        self.client_tty = ClientTtyFinder()  # this connection's attach, inside the sandbox
        self._stream_ended = False
        self._pending_input = bytearray()
        self._keys_flow = False  # once the attach has its TTY in raw mode (see below)
        self._send_lock = asyncio.Lock()
        # The attendee's own page sets the shell's size and says so (``on_resize``); a watcher
        # (``follows_attendee``) takes the attendee's size instead (app/terminal/sizes.py).
        self.on_resize: Callable[[TerminalSize], None] | None = None
        self.follows_attendee = False

    # -- page -> sandbox

    async def receive_forever(self) -> None:
        """Until the page disconnects (``WebSocketDisconnect``) or breaks the protocol
        (``FrameRefused``); ``SandboxGone`` when the sandbox vanished under the keys."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", NORMAL_CLOSURE))
            await self.handle(parse_client_frame(message))

    async def handle(self, message: ClientMessage) -> None:
        if isinstance(message, Keys):
            await self._type(message.data)
        elif isinstance(message, Resize):
            await self._page_resized(message.size)
        elif message.kind == "pause":
            await self.output.pause()
        elif message.kind == "resume":
            await self.output.resume()
        elif message.kind == "ping":
            await self.send_json({"type": "pong"})

    async def _page_resized(self, size: TerminalSize) -> None:
        if self.follows_attendee and self.size_known.is_set():
            return  # the attendee's size rules; the page scales to it
        self.size = size
        self.size_known.set()
        if self.on_resize is not None:
            self.on_resize(size)
        if self._tty is not None:
            await self._tty.resize(size.cols, size.rows)

    async def follow_size(self, size: TerminalSize) -> None:
        """A watcher takes the attendee's size: its attach, and its page (told to draw it)."""
        self.size = size
        self.size_known.set()
        if self._tty is not None:
            await self._tty.resize(size.cols, size.rows)
        await self.send_json({"type": "size", "cols": size.cols, "rows": size.rows})

    async def _type(self, data: bytes) -> None:
        if not self.writable or not data:
            return  # watching only: the instructor's keys never reach the shell
        self.on_input()
        if self._tty is None or not self._keys_flow:
            room = PENDING_INPUT_BYTES - len(self._pending_input)
            self._pending_input += data[: max(room, 0)]
            return
        await self._tty.write(data)

    # -- sandbox -> page

    def attach(self, tty: Tty, sandbox: str) -> None:
        """Start using ``tty``; keys typed so far wait for its first output (``pump_output``)."""
        self.sandbox = sandbox
        self._tty = tty

    async def _release_keys(self, tty: Tty) -> None:
        """Keys typed so far, in order, then the rest as they come."""
        while self._pending_input:  # more may arrive while the first keys are written
            pending, self._pending_input = bytes(self._pending_input), bytearray()
            await tty.write(pending)
        self._keys_flow = True

    async def pump_output(self, tty: Tty) -> None:
        """Sandbox -> buffer -> page until the shell's stream ends; then ``ShellEnded``."""
        reading = asyncio.create_task(self._read_into_buffer(tty))
        try:
            while chunk := await self.output.take():
                await self.send_bytes(chunk)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        raise ShellEnded

    async def _read_into_buffer(self, tty: Tty) -> None:
        # Keys wait for the attach's first output (or KEYS_WAIT): until then its TTY may still
        # be in cooked mode (a docker exec's TTY starts so), and would echo them a second time.
        first = asyncio.ensure_future(tty.read())
        try:
            await asyncio.wait({first}, timeout=KEYS_WAIT)
            await self._release_keys(tty)
            chunk = await first
            while chunk:
                self.client_tty.notice(chunk)
                await self.output.put(chunk)
                chunk = await tty.read()
            self._stream_ended = True
        finally:
            first.cancel()
            await self.output.close()

    async def detach(self, backend: SandboxBackend) -> None:
        """End this connection's attach; the shell lives on."""
        tty, self._tty = self._tty, None
        if tty is None:
            return
        await tty.close()
        client_tty = self.client_tty.tty
        if self.sandbox and client_tty and not self._stream_ended:
            command = detach_command(client_tty)
            with contextlib.suppress(SandboxError):
                await backend.exec(self.sandbox, command, timeout=DETACH_TIMEOUT)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self.websocket.send_bytes(data)

    async def send_json(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def send_status(self, state: str, message: str = "", **extra: Any) -> None:
        await self.send_json({"type": "status", "state": state, "message": message, **extra})
