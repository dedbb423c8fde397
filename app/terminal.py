"""The attendee's shell in the page: a tmux session inside the sandbox, bridged to a websocket.

Why tmux: the shell must outlive the connection. Each websocket runs its own ``tmux attach``
(a docker exec with a TTY) to one session named ``labdeck`` in the sandbox, so closing the tab,
a network drop or a portal restart only ends that tmux client; the next connection attaches to
the same shell, and two tabs are two clients of one session. Before attaching, the session's
history is printed so the browser's scrollback comes back too (see ``ATTACH_SCRIPT``).

Flow control: output goes sandbox -> ``OutputBuffer`` (bounded) -> websocket. When the browser
falls behind it sends ``pause``; when the buffer is full the pump stops reading the exec's
socket, the kernel buffers fill, and tmux (which never blocks on a slow client) drops output for
this client and redraws the screen later. So a flood costs the portal at most one buffer per
terminal, and another terminal's echo never waits behind it. The protocol is in
docs/terminal-protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from app.events import EventHub, attendee_topic
from app.sandboxes.base import SandboxBackend, SandboxError, SandboxGone, Tty
from app.sandboxes.service import SandboxUnavailable
from app.websockets import MESSAGE_TOO_BIG, POLICY_VIOLATION, SANDBOX_UNAVAILABLE

log = logging.getLogger("labdeck.terminal")

SESSION = "labdeck"
MAX_CLIENT_FRAME = 64 * 1024
MAX_COLS = 1000
MAX_ROWS = 500
OUTPUT_BUFFER_BYTES = 256 * 1024  # per terminal, between the sandbox and the websocket
FRAME_BYTES = 64 * 1024  # output is coalesced into frames of at most this size
PENDING_INPUT_BYTES = 16 * 1024  # keys typed while the sandbox starts, sent once it is there
READY_TIMEOUT = 300.0  # a class of 30 may queue for sandboxes at the start of a workshop
SIZE_WAIT = 2.0  # the page sends its size right after connecting
DETACH_TIMEOUT = 5.0
# The attach script's first output names its TTY (an OSC sequence xterm.js ignores), so that
# the portal can detach exactly that tmux client: docker never ends an exec whose connection
# closed, and a client left behind would linger in the sandbox.
CLIENT_TTY = re.compile(rb"\x1b\]6973;(/dev/pts/[0-9]{1,6})\x07")
HEAD_BYTES = 512
NORMAL_CLOSURE = 1000
INTERNAL_ERROR = 1011

# Runs inside the sandbox as the attendee: bash -c ATTACH_SCRIPT labdeck-terminal COLS ROWS MODE.
# - `stty` first: the exec's TTY starts at 0x0, and tmux should start at the page's size.
# - The options make tmux invisible: no status line, no prefix key (Ctrl-B stays bash's),
#   no mouse capture (the browser selects text), no Esc delay, and no alternate screen in
#   the browser (smcup@/rmcup@) so lines that scroll off reach xterm.js's own scrollback.
# - The history replay, then ROWS-1 newlines, puts the session's scrollback above the screen
#   tmux is about to draw; without it a reconnect would show only the last screenful.
# - Read mode (the instructor watching) attaches read-only and ignores that client's size.
ATTACH_SCRIPT = r"""
cols=$1 rows=$2 mode=$3 session=labdeck
printf '\033]6973;%s\007' "$(tty)"
stty cols "$cols" rows "$rows" 2>/dev/null
cd ~ 2>/dev/null
if ! tmux has-session -t "=$session" 2>/dev/null; then
    tmux -u start-server \; \
        set -g default-terminal tmux-256color \; \
        set -g status off \; set -g prefix None \; set -g mouse off \; \
        set -g escape-time 0 \; set -g history-limit 10000 \; set -g window-size latest \; \
        set -ga terminal-overrides ',*:smcup@:rmcup@' \; \
        new-session -d -s "$session" -x "$cols" -y "$rows" 2>/dev/null
fi
history=$(tmux display-message -p -t "=$session:" '#{history_size}' 2>/dev/null)
if [ "${history:-0}" -gt 0 ]; then
    tmux capture-pane -p -e -J -S - -E -1 -t "=$session:"
    printf '%*s' "$((rows - 1))" '' | tr ' ' '\n'
fi
if [ "$mode" = read ]; then
    exec tmux -u attach-session -f read-only,ignore-size -t "=$session"
fi
exec tmux -u attach-session -t "=$session"
"""


@dataclass(frozen=True)
class TerminalSize:
    cols: int = 80
    rows: int = 24


def attach_command(size: TerminalSize, *, read_only: bool) -> list[str]:
    """The argv that attaches to (or starts) the attendee's tmux session in the sandbox."""
    mode = "read" if read_only else "write"
    return ["bash", "-c", ATTACH_SCRIPT, "labdeck-terminal", str(size.cols), str(size.rows), mode]


# -- what the page sends ---------------------------------------------------------------------


class FrameRefused(Exception):
    """A client frame the protocol does not allow; the socket closes with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Keys:
    data: bytes


@dataclass(frozen=True)
class Resize:
    size: TerminalSize


@dataclass(frozen=True)
class Control:
    """``pause``, ``resume`` or ``ping``; unknown types are ignored (forward compatibility)."""

    kind: str


ClientMessage = Keys | Resize | Control


def parse_client_frame(message: Mapping[str, Any]) -> ClientMessage:
    """One ASGI ``websocket.receive`` message as a protocol message, or ``FrameRefused``."""
    data = message.get("bytes")
    if data is not None:
        if len(data) > MAX_CLIENT_FRAME:
            raise FrameRefused(MESSAGE_TOO_BIG, "frame larger than 64 KiB")
        return Keys(data)
    text = message.get("text") or ""
    if len(text) > MAX_CLIENT_FRAME or len(text.encode()) > MAX_CLIENT_FRAME:
        raise FrameRefused(MESSAGE_TOO_BIG, "frame larger than 64 KiB")
    try:
        control = json.loads(text)
    except ValueError:
        raise FrameRefused(POLICY_VIOLATION, "text frames must be JSON") from None
    if not isinstance(control, dict) or not isinstance(control.get("type"), str):
        raise FrameRefused(POLICY_VIOLATION, 'control messages are objects with a "type"')
    if control["type"] == "resize":
        return Resize(_size_of(control))
    return Control(control["type"])


def _size_of(control: Mapping[str, Any]) -> TerminalSize:
    cols = _dimension(control, "cols", MAX_COLS)
    return TerminalSize(cols, _dimension(control, "rows", MAX_ROWS))


def _dimension(control: Mapping[str, Any], key: str, limit: int) -> int:
    value = control.get(key)
    if type(value) is not int or not 1 <= value <= limit:  # bool is an int: not allowed
        raise FrameRefused(POLICY_VIOLATION, f"resize needs an integer {key} from 1 to {limit}")
    return value


# -- the bounded buffer ----------------------------------------------------------------------


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


# -- one websocket's terminal ----------------------------------------------------------------


class Sandboxes(Protocol):
    """What the terminal needs of ``app.state.sandboxes`` (``SandboxService``)."""

    @property
    def backend(self) -> SandboxBackend: ...

    async def ensure_for(self, attendee_id: int) -> Any: ...

    async def ready_sandbox(self, attendee_id: int, timeout: float = 60) -> str: ...

    def touch(self, attendee_id: int) -> None: ...


class SandboxUnready(Exception):
    """The sandbox did not become ready; the message is for the person at the terminal."""


class ShellEnded(Exception):
    """The shell (the tmux session) ended, e.g. after ``exit``."""


class TerminalConnection:
    """One websocket's terminal: reads the page's frames, waits for the sandbox, attaches,
    and moves bytes both ways until either side ends. ``writable=False`` drops keystrokes."""

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
        self.client_tty: str | None = None  # this connection's tmux client, inside the sandbox
        self._head = b""
        self._stream_ended = False
        self._pending_input = bytearray()
        self._send_lock = asyncio.Lock()

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
            self.size = message.size
            self.size_known.set()
            if self._tty is not None:
                await self._tty.resize(message.size.cols, message.size.rows)
        elif message.kind == "pause":
            await self.output.pause()
        elif message.kind == "resume":
            await self.output.resume()
        elif message.kind == "ping":
            await self.send_json({"type": "pong"})

    async def _type(self, data: bytes) -> None:
        if not self.writable or not data:
            return  # watching only: the instructor's keys never reach the shell
        self.on_input()
        if self._tty is None:
            room = PENDING_INPUT_BYTES - len(self._pending_input)
            self._pending_input += data[: max(room, 0)]
            return
        await self._tty.write(data)

    # -- sandbox -> page

    async def attach(self, tty: Tty, sandbox: str) -> None:
        """Start using ``tty``: keys typed meanwhile go first, output starts to flow."""
        self.sandbox = sandbox
        while self._pending_input:  # more may arrive while the first keys are written
            pending, self._pending_input = bytes(self._pending_input), bytearray()
            await tty.write(pending)
        self._tty = tty

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
        try:
            while chunk := await tty.read():
                self._notice_client_tty(chunk)
                await self.output.put(chunk)
            self._stream_ended = True
        finally:
            await self.output.close()

    def _notice_client_tty(self, chunk: bytes) -> None:
        if self.client_tty is not None or len(self._head) > HEAD_BYTES:
            return
        self._head += chunk
        found = CLIENT_TTY.search(self._head)
        if found:
            self.client_tty = found.group(1).decode()

    async def detach(self, backend: SandboxBackend) -> None:
        """End this connection's tmux client; the session and its shell live on."""
        tty, self._tty = self._tty, None
        if tty is None:
            return
        await tty.close()
        if self.sandbox and self.client_tty and not self._stream_ended:
            command = f"tmux detach-client -t {self.client_tty}"
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


# -- serving a websocket ---------------------------------------------------------------------


async def serve_terminal(
    websocket: WebSocket,
    sandboxes: Sandboxes,
    events: EventHub,
    attendee_id: int,
    *,
    writable: bool = True,
) -> None:
    """Serve an accepted websocket as ``attendee_id``'s terminal until either side ends, then
    close it with the code that says why (see docs/terminal-protocol.md). Never raises."""
    connection = TerminalConnection(
        websocket, writable=writable, on_input=lambda: sandboxes.touch(attendee_id)
    )
    receiving = asyncio.create_task(connection.receive_forever())
    serving = asyncio.create_task(_attach_and_pump(connection, sandboxes, events, attendee_id))
    done, _ = await asyncio.wait({receiving, serving}, return_when=asyncio.FIRST_COMPLETED)
    for task in (receiving, serving):
        task.cancel()
    results = await asyncio.gather(receiving, serving, return_exceptions=True)
    await connection.detach(sandboxes.backend)
    outcome = results[0] if receiving in done else results[1]
    await _close_for(connection, outcome)


async def _attach_and_pump(
    connection: TerminalConnection, sandboxes: Sandboxes, events: EventHub, attendee_id: int
) -> None:
    name = await _wait_for_sandbox(connection, sandboxes, events, attendee_id)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(connection.size_known.wait(), SIZE_WAIT)
    command = attach_command(connection.size, read_only=not connection.writable)
    tty = await sandboxes.backend.open_tty(name, command)
    try:
        await connection.attach(tty, name)
    except BaseException:
        await tty.close()
        raise
    await connection.send_status("connected", f"Connected to {name}.", sandbox=name)
    await connection.pump_output(tty)


async def _wait_for_sandbox(
    connection: TerminalConnection, sandboxes: Sandboxes, events: EventHub, attendee_id: int
) -> str:
    """The sandbox's name once ready; its progress reaches the page as ``status`` meanwhile."""
    async with events.subscribe(attendee_topic(attendee_id)) as progress:
        forwarding = asyncio.create_task(_forward_progress(connection, progress))
        try:
            view = await sandboxes.ensure_for(attendee_id)  # where it stands right now
            if view.state != "ready":
                await connection.send_status(view.state, view.message, position=view.position)
            return await sandboxes.ready_sandbox(attendee_id, timeout=READY_TIMEOUT)
        except (SandboxUnavailable, SandboxError) as error:
            raise SandboxUnready(str(error)) from error
        finally:
            forwarding.cancel()


async def _forward_progress(connection: TerminalConnection, progress: Any) -> None:
    async for event in progress:
        if event.get("type") == "sandbox":
            await connection.send_status(
                str(event.get("state", "")),
                str(event.get("message") or ""),
                position=event.get("position"),
            )


async def _close_for(connection: TerminalConnection, outcome: object) -> None:
    websocket = connection.websocket
    if isinstance(outcome, WebSocketDisconnect | OSError):
        return  # the page left: nothing to tell it
    code, reason, status = _close_reason(outcome)
    if websocket.client_state is not WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):  # the page may have gone meanwhile
        if status is not None:
            await connection.send_status(*status)
        await websocket.close(code=code, reason=reason)


def _close_reason(outcome: object) -> tuple[int, str, tuple[str, str] | None]:
    """Close code, close reason and a last status message for how the terminal ended."""
    if isinstance(outcome, FrameRefused):
        return outcome.code, outcome.reason, None
    if isinstance(outcome, ShellEnded):
        message = "The shell ended. Reconnecting opens a new one."
        return NORMAL_CLOSURE, "shell ended", ("ended", message)
    if isinstance(outcome, SandboxUnready):
        return SANDBOX_UNAVAILABLE, "sandbox unavailable", ("unavailable", str(outcome))
    if isinstance(outcome, SandboxGone):
        message = "Your sandbox stopped. Reconnecting starts it again."
        return SANDBOX_UNAVAILABLE, "sandbox gone", ("unavailable", message)
    if isinstance(outcome, SandboxError):
        return SANDBOX_UNAVAILABLE, "sandbox error", ("unavailable", str(outcome))
    log.error("terminal failed", exc_info=outcome if isinstance(outcome, BaseException) else None)
    message = "The terminal hit an error on the portal. Reconnecting…"
    return INTERNAL_ERROR, "internal error", ("unavailable", message)
