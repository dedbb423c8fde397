"""The attendee's shell in the page: ``serve_terminal`` bridges a websocket to a session in the
attendee's sandbox, from the sandbox's progress to the close code that says how it ended.

The parts: what the page sends (app/terminal/frames.py); one connection moving bytes both
ways (app/terminal/connection.py) through a bounded buffer (app/terminal/buffer.py); the
session in the sandbox that outlives connections, and how to attach to it
(app/terminal/session.py).

Flow control: output goes sandbox -> ``OutputBuffer`` -> websocket. When the browser falls
behind it sends ``pause``; when the buffer is full the connection stops reading the exec's
socket, the kernel buffers fill, and the session holder in the sandbox (which never makes the
shell wait for a slow connection) lets that connection skip to the newest output. So a flood
costs the portal at most one buffer per terminal, and another terminal's echo never waits
behind it. The protocol is in docs/terminal-protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from app.events import EventHub, attendee_topic
from app.routes.ws_auth import SANDBOX_UNAVAILABLE
from app.sandboxes.base import SandboxBackend, SandboxError, SandboxGone, SandboxUnavailable
from app.terminal import sizes
from app.terminal.connection import NORMAL_CLOSURE, ShellEnded, TerminalConnection
from app.terminal.frames import FrameRefused
from app.terminal.session import attach_command

log = logging.getLogger("labdeck.terminal")

READY_TIMEOUT = 300.0  # a class of 30 may queue for sandboxes at the start of a workshop
SIZE_WAIT = 2.0  # the page sends its size right after connecting
STOP_NOTICE_GRACE = 0.5  # seconds between the two looks at a container whose shell stream ended
INTERNAL_ERROR = 1011


class Sandboxes(Protocol):
    """What the terminal needs of ``app.state.sandboxes`` (``SandboxService``)."""

    @property
    def backend(self) -> SandboxBackend: ...

    async def ensure_for(self, attendee_id: int) -> Any: ...

    async def ready_sandbox(self, attendee_id: int, timeout: float = 60) -> str: ...

    def touch(self, attendee_id: int) -> None: ...

    async def still_running(self, name: str) -> bool: ...


class SandboxUnready(Exception):
    """The sandbox did not become ready; the message is for the person at the terminal."""


# -- serving a websocket ---------------------------------------------------------------------


async def serve_terminal(
    websocket: WebSocket,
    sandboxes: Sandboxes,
    events: EventHub,
    attendee_id: int,
    *,
    writable: bool = True,
    watching: bool = False,
) -> None:
    """Serve an accepted websocket as ``attendee_id``'s terminal until either side ends, then
    close it with the code that says why (see docs/terminal-protocol.md). Never raises.
    ``watching``: the instructor's view, which takes the attendee's size (app/terminal/sizes.py)."""
    connection = TerminalConnection(
        websocket, writable=writable, on_input=lambda: sandboxes.touch(attendee_id)
    )
    connection.follows_attendee = watching
    if not watching:
        connection.on_resize = lambda size: sizes.attendee_resized(events, attendee_id, size)
    receiving = asyncio.create_task(connection.receive_forever())
    serving = asyncio.create_task(
        _following(connection, sandboxes, events, attendee_id)
        if watching
        else _attach_and_pump(connection, sandboxes, events, attendee_id)
    )
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
    size = connection.size
    command = attach_command(size, read_only=not connection.writable)
    tty = await sandboxes.backend.open_tty(name, command)
    connection.attach(tty, name)  # from here on, ``detach`` closes it and resizes reach it
    if connection.size != size:  # the page resized while the exec started
        await tty.resize(connection.size.cols, connection.size.rows)
    await connection.send_status("connected", f"Connected to {name}.", sandbox=name)
    try:
        await connection.pump_output(tty)
    except ShellEnded:
        # The stream also ends when the container stops (a `docker stop` behind our back):
        # that is no shell's exit, and the page should come back to a started sandbox.
        if await _stopped_meanwhile(sandboxes, name):
            raise SandboxGone(f"Sandbox {name} stopped.") from None
        raise


async def _stopped_meanwhile(sandboxes: Sandboxes, name: str) -> bool:
    """Whether the container stopped under the shell. Asked twice: the exec's stream ends as its
    processes are killed, a moment before the engine marks the container exited."""
    for pause in (0.0, STOP_NOTICE_GRACE):
        await asyncio.sleep(pause)
        if not await sandboxes.still_running(name):
            return True
    return False


async def _following(
    connection: TerminalConnection, sandboxes: Sandboxes, events: EventHub, attendee_id: int
) -> None:
    """The instructor's view: the attendee's size first (when known), then every change."""
    known = sizes.attendee_size(events, attendee_id)
    if known is not None:
        await connection.follow_size(known)
    async with sizes.following_attendee(events, attendee_id, connection.follow_size):
        await _attach_and_pump(connection, sandboxes, events, attendee_id)


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
