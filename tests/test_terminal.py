"""The terminal's portal side without sockets or Docker: frames (app/terminal/frames.py), the
bounded buffer (app/terminal/buffer.py), and one terminal served over an in-memory websocket
with a scripted TTY (app/terminal/serve.py, app/terminal/connection.py). The sandbox side is in
tests/test_terminal_session.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.websockets import WebSocket

from app.events import EventHub, attendee_topic
from app.sandboxes.base import ExecResult, SandboxGone, SandboxUnavailable
from app.terminal import serve as terminal
from app.terminal.buffer import OutputBuffer
from app.terminal.frames import (
    MAX_CLIENT_FRAME,
    Control,
    FrameRefused,
    Keys,
    Resize,
    TerminalSize,
    parse_client_frame,
)
from app.terminal.serve import serve_terminal

pytestmark = pytest.mark.anyio


# -- frames ------------------------------------------------------------------------------------


def test_binary_frames_are_keys_and_text_frames_are_controls() -> None:
    assert parse_client_frame({"bytes": b"ls\r"}) == Keys(b"ls\r")
    resize = parse_client_frame({"text": '{"type": "resize", "cols": 120, "rows": 40}'})
    assert resize == Resize(TerminalSize(120, 40))
    assert parse_client_frame({"text": '{"type": "pause"}'}) == Control("pause")
    assert parse_client_frame({"text": '{"type": "new-idea"}'}) == Control("new-idea")


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"bytes": b"x" * (MAX_CLIENT_FRAME + 1)}, 1009),
        ({"text": "x" * (MAX_CLIENT_FRAME + 1)}, 1009),
        ({"text": "é" * (MAX_CLIENT_FRAME // 2 + 1)}, 1009),  # counted in bytes, not characters
        ({"text": "{"}, 1008),
        ({"text": '"resize"'}, 1008),
        ({"text": '{"type": 7}'}, 1008),
        ({"text": '{"type": "resize", "cols": 80}'}, 1008),
        ({"text": '{"type": "resize", "cols": 80.0, "rows": 24}'}, 1008),
        ({"text": '{"type": "resize", "cols": false, "rows": 24}'}, 1008),
        ({"text": '{"type": "resize", "cols": 1001, "rows": 24}'}, 1008),
        ({"text": '{"type": "resize", "cols": 80, "rows": -1}'}, 1008),
    ],
)
def test_bad_frames_are_refused_with_their_close_code(message: dict[str, Any], code: int) -> None:
    with pytest.raises(FrameRefused) as refused:
        parse_client_frame(message)
    assert refused.value.code == code


def test_a_frame_of_exactly_the_limit_is_fine() -> None:
    assert parse_client_frame({"bytes": b"x" * MAX_CLIENT_FRAME}) == Keys(b"x" * MAX_CLIENT_FRAME)


# -- the bounded buffer -----------------------------------------------------------------------


async def test_the_buffer_pushes_back_when_full_and_coalesces_what_it_holds() -> None:
    buffer = OutputBuffer(limit=10)
    await buffer.put(b"12345")
    await buffer.put(b"67890")
    blocked = asyncio.create_task(buffer.put(b"abc"))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # full: the sandbox's output waits
    assert await buffer.take(most=4) == b"1234"
    await asyncio.wait_for(blocked, 1)
    assert await buffer.take() == b"567890abc"


async def test_pause_holds_output_back_until_resume() -> None:
    buffer = OutputBuffer()
    await buffer.pause()
    await buffer.put(b"held")
    waiting = asyncio.create_task(buffer.take())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await buffer.resume()
    assert await asyncio.wait_for(waiting, 1) == b"held"


async def test_a_closed_buffer_drains_then_ends() -> None:
    buffer = OutputBuffer()
    await buffer.put(b"last words")
    await buffer.close()
    assert await buffer.take() == b"last words"
    assert await buffer.take() == b""


# -- one terminal over an in-memory websocket --------------------------------------------------


class ScriptedTty:
    """Output the test feeds; records what was written and the sizes asked for."""

    def __init__(self, vanish_on_write: bool = False) -> None:
        self.output: asyncio.Queue[bytes] = asyncio.Queue()
        self.written = bytearray()
        self.sizes: list[tuple[int, int]] = []
        self.closed = False
        self.vanish_on_write = vanish_on_write

    async def read(self) -> bytes:
        return await self.output.get()

    async def write(self, data: bytes) -> None:
        if self.vanish_on_write:
            raise SandboxGone("gone")
        self.written += data

    async def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))

    async def close(self) -> None:
        self.closed = True


@dataclass
class StubBackend:
    tty: ScriptedTty
    commands: list[list[str]] = field(default_factory=list)
    execs: list[str] = field(default_factory=list)
    open_seconds: float = 0.0

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> Any:
        self.commands.append(command)
        await asyncio.sleep(self.open_seconds)
        return self.tty

    async def exec(self, name: str, command: str, *, timeout: float = 15, **_: Any) -> Any:
        self.execs.append(command)
        return ExecResult(0, "")


@dataclass
class StubSandboxes:
    backend: StubBackend
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    refusal: str | None = None
    touched: int = 0
    running: bool = True

    async def ensure_for(self, attendee_id: int) -> Any:
        state = "ready" if self.ready.is_set() else "starting"
        return SimpleNamespace(state=state, message="", position=None)

    async def ready_sandbox(self, attendee_id: int, timeout: float = 60) -> str:
        await self.ready.wait()
        if self.refusal:
            raise SandboxUnavailable(self.refusal)
        return "sbx-1"

    def touch(self, attendee_id: int) -> None:
        self.touched += 1

    async def still_running(self, name: str) -> bool:
        return self.running


class Page:
    """The browser's side of an in-memory websocket."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_server: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.to_server.put_nowait({"type": "websocket.connect"})
        scope = {"type": "websocket", "path": "/ws/terminal", "headers": [], "query_string": b""}
        self.websocket = WebSocket(scope, self.to_server.get, self._sent)

    async def _sent(self, message: MutableMapping[str, Any]) -> None:
        await self.from_server.put(dict(message))

    def send(self, data: bytes | str) -> None:
        key = "bytes" if isinstance(data, bytes) else "text"
        self.to_server.put_nowait({"type": "websocket.receive", key: data})

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.from_server.get(), 5)

    async def status(self) -> dict[str, Any]:
        while True:
            message = await self.next()
            if "text" in message:
                return dict(json.loads(message["text"]))

    async def closed(self) -> int:
        while True:
            message = await self.next()
            if message["type"] == "websocket.close":
                return int(message["code"])


@asynccontextmanager
async def served(
    sandboxes: StubSandboxes, events: EventHub | None = None, writable: bool = True
) -> AsyncIterator[Page]:
    page = Page()
    await page.websocket.accept()
    await page.next()  # the accept
    page.send('{"type": "resize", "cols": 80, "rows": 24}')  # what every page sends first
    hub = events or EventHub()
    task = asyncio.create_task(
        serve_terminal(page.websocket, sandboxes, hub, 1, writable=writable)  # type: ignore[arg-type]
    )
    try:
        yield page
    finally:
        if not task.done():
            page.to_server.put_nowait({"type": "websocket.disconnect", "code": 1001})
        await asyncio.wait_for(task, 5)


async def test_keys_typed_before_the_shell_arrive_first_and_in_order() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty))
    async with served(sandboxes) as page:
        page.send('{"type": "resize", "cols": 90, "rows": 30}')
        page.send(b"echo ")
        page.send(b"early")
        assert (await page.status())["state"] == "starting"
        await asyncio.sleep(0.05)
        sandboxes.ready.set()
        assert (await page.status())["state"] == "connected"
        page.send(b" late")
        await asyncio.sleep(0.05)
        assert tty.written == b""  # the attach has not set its TTY up yet
        tty.output.put_nowait(b"\x1b]6973;/dev/pts/4\x07")
        await page.next()
        page.send(b"\r")
        await asyncio.sleep(0.05)
    assert bytes(tty.written) == b"echo early late\r"
    assert sandboxes.touched == 4
    assert sandboxes.backend.commands[0][-3:] == ["90", "30", "write"]


async def test_sandbox_progress_is_forwarded_while_waiting() -> None:
    events = EventHub()
    sandboxes = StubSandboxes(StubBackend(ScriptedTty()))
    async with served(sandboxes, events) as page:
        assert (await page.status())["state"] == "starting"
        event = {"type": "sandbox", "state": "queued", "position": 3, "message": "Number 3."}
        events.publish(attendee_topic(1), event)
        status = await page.status()
        assert status == {
            "type": "status",
            "state": "queued",
            "message": "Number 3.",
            "position": 3,
        }
        sandboxes.ready.set()
        assert (await page.status())["state"] == "connected"


async def test_when_the_shell_ends_the_page_hears_why_and_the_socket_closes_normally() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await page.status()
        tty.output.put_nowait(b"\x1b]6973;/dev/pts/4\x07logout\r\n")
        tty.output.put_nowait(b"")
        assert (await page.next())["bytes"].endswith(b"logout\r\n")
        assert (await page.status())["state"] == "ended"
        assert await page.closed() == 1000
    assert tty.closed
    assert sandboxes.backend.execs == []  # the attach has ended already


async def test_when_the_sandbox_stopped_under_the_shell_the_page_hears_4503() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty), running=False)
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await page.status()
        tty.output.put_nowait(b"")
        status = await page.status()
        assert status["state"] == "unavailable" and "stopped" in status["message"]
        assert await page.closed() == 4503


async def test_leaving_ends_exactly_this_attach() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await page.status()
        tty.output.put_nowait(b"\x1b]6973;/dev/pts/12\x07$ ")
        await page.next()
    assert tty.closed
    assert sandboxes.backend.execs == ["pkill -HUP -t pts/12"]


async def test_resize_after_attaching_reaches_the_tty() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await page.status()
        page.send('{"type": "resize", "cols": 132, "rows": 43}')
        page.send('{"type": "ping"}')
        assert json.loads((await page.next())["text"]) == {"type": "pong"}
    assert tty.sizes == [(132, 43)]


async def test_a_resize_while_the_exec_starts_reaches_the_tty_too() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty, open_seconds=0.2))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await asyncio.sleep(0.1)  # the attach command is made, the exec is starting
        page.send('{"type": "resize", "cols": 100, "rows": 30}')
        await page.status()
        await asyncio.sleep(0.05)
    assert sandboxes.backend.commands[0][-3:] == ["80", "24", "write"]
    assert tty.sizes == [(100, 30)]


async def test_read_only_drops_keys_and_does_not_count_as_activity() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty))
    sandboxes.ready.set()
    async with served(sandboxes, writable=False) as page:
        await page.status()
        page.send(b"rm -rf /\r")
        await asyncio.sleep(0.05)
    assert tty.written == b"" and sandboxes.touched == 0
    assert sandboxes.backend.commands[0][-1] == "read"


async def test_an_unavailable_sandbox_is_explained_then_closed_with_4503() -> None:
    sandboxes = StubSandboxes(StubBackend(ScriptedTty()), refusal="Try again in a minute.")
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        status = await page.status()
        assert status["state"] == "unavailable" and status["message"] == "Try again in a minute."
        assert await page.closed() == 4503


async def test_a_vanished_sandbox_under_the_keys_closes_with_4503() -> None:
    tty = ScriptedTty(vanish_on_write=True)
    sandboxes = StubSandboxes(StubBackend(tty))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await page.status()
        tty.output.put_nowait(b"$ ")
        await page.next()
        page.send(b"x")
        assert (await page.status())["state"] == "unavailable"
        assert await page.closed() == 4503


async def test_a_malformed_frame_closes_with_1008_and_closes_the_tty() -> None:
    tty = ScriptedTty()
    sandboxes = StubSandboxes(StubBackend(tty))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        await page.status()
        page.send("{not json")
        assert await page.closed() == 1008
    assert tty.closed


async def test_a_bug_closes_with_1011_instead_of_crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise ValueError("a bug")

    monkeypatch.setattr(terminal, "attach_command", broken)
    sandboxes = StubSandboxes(StubBackend(ScriptedTty()))
    sandboxes.ready.set()
    async with served(sandboxes) as page:
        assert (await page.status())["state"] == "unavailable"
        assert await page.closed() == 1011
