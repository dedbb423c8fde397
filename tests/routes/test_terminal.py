"""`WS /ws/terminal` and the instructor's shadow over real sockets: a real uvicorn on 127.0.0.1
and the ``websockets`` client. FakeBackend for the protocol, a real sandbox for the shell."""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.attendees import create_attendee
from app.cookies import COOKIE_NAME
from app.sandboxes.docker.engine import docker_client
from app.sandboxes.fake import FakeBackend
from app.terminal import serve as terminal
from tests.support.live_portal import Portal, portal_settings
from tests.support.live_portal import docker_portal as open_docker_portal
from tests.support.settings import INSTRUCTOR_TOKEN

pytestmark = pytest.mark.anyio

ECHO_P50_TARGET = 0.010
ECHO_P99_TARGET = 0.050


async def read_until(ws: ClientConnection, pattern: bytes | str, timeout: float = 30) -> bytes:
    """Terminal output up to ``pattern`` (a regex); status frames are skipped."""
    wanted = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
    seen = b""
    async with asyncio.timeout(timeout):
        while not wanted.search(seen):
            frame = await ws.recv()
            if isinstance(frame, bytes):
                seen += frame
    return seen


async def statuses_until_connected(
    ws: ClientConnection, timeout: float = 120
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not seen or seen[-1].get("state") != "connected":
            frame = await ws.recv()
            if isinstance(frame, str):
                seen.append(json.loads(frame))
    return seen


async def close_code(ws: ClientConnection, timeout: float = 10) -> int:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


async def silent_for(ws: ClientConnection, seconds: float) -> bool:
    """Whether no terminal bytes arrive for ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if isinstance(await ws.recv(), bytes):
                    return False
    except TimeoutError:
        return True


# -- the protocol, over FakeBackend (its TTY echoes what it is sent) ---------------------------


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def portal(tmp_path: Path, fake_backend: FakeBackend) -> Iterator[Portal]:
    settings = portal_settings(tmp_path / "data", f"test-{os.getpid()}-fake")
    with Portal(settings, fake_backend) as served:
        yield served


async def test_without_a_cookie_the_terminal_closes_with_4401(portal: Portal) -> None:
    async with portal.socket() as ws:
        assert await close_code(ws) == 4401
    async with portal.socket(cookie="forged.cookie") as ws:
        assert await close_code(ws) == 4401


async def test_a_foreign_origin_is_refused_with_4403(portal: Portal) -> None:
    cookie = portal.join("Ada")
    async with portal.socket(cookie=cookie, origin="http://evil.example") as ws:
        assert await close_code(ws) == 4403


async def test_same_origin_page_gets_status_then_its_echo(portal: Portal) -> None:
    cookie = portal.join("Ada")
    async with portal.socket(cookie=cookie, origin=portal.url) as ws:
        statuses = await statuses_until_connected(ws)
        assert statuses[-1]["sandbox"]
        await ws.send(b"hello")
        assert await read_until(ws, b"hello") == b"hello"


async def test_sandbox_progress_reaches_the_page_as_status(
    portal: Portal, fake_backend: FakeBackend
) -> None:
    fake_backend.create_delay = 0.3
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        states = [status["state"] for status in await statuses_until_connected(ws)]
    # The join set the sandbox going: the page sees it from wherever it had got to.
    assert states[0] in ("queued", "creating", "starting") and "starting" in states
    assert states[-1] == "connected"


async def api_me_state(portal: Portal, cookie: str) -> str:
    async with httpx.AsyncClient(base_url=portal.url) as client:
        me = await client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    return str(me.json()["sandbox"]["state"])


async def test_a_sandbox_stopped_behind_the_portals_back_says_so_and_comes_back(
    portal: Portal, fake_backend: FakeBackend
) -> None:
    cookie = portal.join("Ada")
    async with portal.socket(cookie=cookie) as ws:
        name = (await statuses_until_connected(ws))[-1]["sandbox"]
        await fake_backend.stop(name)  # not through the portal: as `docker stop` would
        assert await close_code(ws) == 4503  # not 1000: the page reconnects
    assert await api_me_state(portal, cookie) == "stopped"
    async with portal.socket(cookie=cookie) as ws:
        assert (await statuses_until_connected(ws))[-1]["sandbox"] == name  # started again
        await ws.send(b"back")
        assert await read_until(ws, b"back") == b"back"
    assert await api_me_state(portal, cookie) == "ready"


async def test_a_stop_behind_the_portals_back_is_noticed_without_a_terminal(
    portal: Portal, fake_backend: FakeBackend
) -> None:
    cookie = portal.join("Ada")
    name = portal.call(
        portal.app.state.services.sandboxes.ready_sandbox, portal.attendee_id(cookie)
    )
    await fake_backend.stop(name)
    state = await api_me_state(portal, cookie)
    async with asyncio.timeout(15):  # the service looks every 5 s
        while state == "ready":
            await asyncio.sleep(0.2)
            state = await api_me_state(portal, cookie)
    assert state == "stopped"


async def test_keys_typed_while_the_sandbox_starts_arrive_once_it_is_there(
    portal: Portal, fake_backend: FakeBackend
) -> None:
    fake_backend.create_delay = 0.3
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        await ws.send(b"early ")
        await statuses_until_connected(ws)
        await ws.send(b"late")
        assert b"early late" in await read_until(ws, b"late")


async def test_resize_reaches_the_tty(portal: Portal, fake_backend: FakeBackend) -> None:
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        await statuses_until_connected(ws)
        await ws.send('{"type": "resize", "cols": 132, "rows": 43}')
        await ws.send(b"x")
        await read_until(ws, b"x")
    assert fake_backend.ttys[-1].size == (132, 43)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"x" * (64 * 1024 + 1), 1009),
        ('{"type": "resize", "cols": 80, "rows": 24, "pad": "' + "x" * 65536 + '"}', 1009),
        ("not json", 1008),
        ("[1, 2]", 1008),
        ('{"cols": 80}', 1008),
        ('{"type": "resize", "cols": true, "rows": 24}', 1008),
        ('{"type": "resize", "cols": 0, "rows": 24}', 1008),
        ('{"type": "resize", "cols": 80, "rows": 100000}', 1008),
    ],
)
async def test_oversized_and_malformed_frames_close_with_their_code(
    portal: Portal, frame: bytes | str, code: int
) -> None:
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        await statuses_until_connected(ws)
        await ws.send(frame)
        assert await close_code(ws) == code
    # ... and the portal carries on
    async with portal.socket(cookie=portal.join("Bob")) as ws:
        await statuses_until_connected(ws)
        await ws.send(b"still here")
        await read_until(ws, b"still here")


async def test_unknown_control_types_are_ignored_and_ping_gets_pong(portal: Portal) -> None:
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        await statuses_until_connected(ws)
        await ws.send('{"type": "from-the-future"}')
        await ws.send('{"type": "ping"}')
        async with asyncio.timeout(5):
            assert await ws.recv() == '{"type": "pong"}'


async def test_pause_holds_output_until_resume(portal: Portal) -> None:
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        await statuses_until_connected(ws)
        await ws.send('{"type": "pause"}')
        await ws.send(b"held")
        assert await silent_for(ws, 0.3)
        await ws.send('{"type": "resume"}')
        assert await read_until(ws, b"held", timeout=5) == b"held"


async def test_a_vanished_sandbox_closes_with_4503_and_says_so(
    portal: Portal, fake_backend: FakeBackend
) -> None:
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        ready = (await statuses_until_connected(ws))[-1]
        fake_backend.crash(ready["sandbox"])
        await ws.send(b"x")
        last: list[str | bytes] = []
        try:
            async with asyncio.timeout(10):
                while True:
                    last.append(await ws.recv())
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4503
        assert any(isinstance(f, str) and '"unavailable"' in f for f in last)


async def test_a_sandbox_that_never_gets_ready_closes_with_4503(
    portal: Portal, fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_backend.never_ready = True
    monkeypatch.setattr(terminal, "READY_TIMEOUT", 0.5)
    async with portal.socket(cookie=portal.join("Ada")) as ws:
        assert await close_code(ws) == 4503


# -- the instructor's shadow -------------------------------------------------------------------


BEARER = {"Authorization": f"Bearer {INSTRUCTOR_TOKEN}"}


def shadow_path(attendee_id: int, mode: str = "read") -> str:
    return f"/ws/instructor/terminal/{attendee_id}?mode={mode}"


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 4401), ({"Authorization": "Bearer wrong-token"}, 4403)],
)
async def test_the_shadow_needs_the_instructor(
    portal: Portal, headers: dict[str, str], code: int
) -> None:
    cookie = portal.join("Ada")
    async with portal.socket(shadow_path(portal.attendee_id(cookie)), headers=headers) as ws:
        assert await close_code(ws) == code
    # an attendee's own cookie is no instructor sign-in
    async with portal.socket(shadow_path(portal.attendee_id(cookie)), cookie=cookie) as ws:
        assert await close_code(ws) == 4401


async def test_the_shadow_refuses_unknown_attendees_bad_modes_and_foreign_origins(
    portal: Portal,
) -> None:
    cookie = portal.join("Ada")
    attendee = portal.attendee_id(cookie)
    async with portal.socket(shadow_path(9999), headers=BEARER) as ws:
        assert await close_code(ws) == 4404
    without_sandbox = portal.app.state.services.db.run_sync(
        lambda session: create_attendee(session, portal.app.state.services.workshop.slug, "Bea").id
    )
    async with portal.socket(shadow_path(without_sandbox), headers=BEARER) as ws:
        assert await close_code(ws) == 4404  # no sandbox: watching never makes one
    async with portal.socket(cookie=cookie) as own:
        await statuses_until_connected(own)
        async with portal.socket(shadow_path(attendee, "root"), headers=BEARER) as ws:
            assert await close_code(ws) == 1008
        origin = "http://evil.example"
        async with portal.socket(shadow_path(attendee), headers=BEARER, origin=origin) as ws:
            assert await close_code(ws) == 4403


async def test_read_mode_drops_the_instructors_keys_and_write_mode_types(
    portal: Portal, fake_backend: FakeBackend
) -> None:
    cookie = portal.join("Ada")
    attendee = portal.attendee_id(cookie)
    async with portal.socket(cookie=cookie) as own:
        await statuses_until_connected(own)
        async with portal.socket(shadow_path(attendee), headers=BEARER) as watching:
            await statuses_until_connected(watching)
            await watching.send(b"from-instructor")
            assert await silent_for(watching, 0.3)
        async with portal.socket(shadow_path(attendee, "write"), headers=BEARER) as typing:
            await statuses_until_connected(typing)
            await typing.send(b"helping")
            await read_until(typing, b"helping")
        await own.send(b"mine")  # the attendee's own socket kept working throughout
        await read_until(own, b"mine")


# -- a real sandbox ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with open_docker_portal(tmp_path_factory.mktemp("terminal") / "data") as served:
        yield served


@pytest.fixture(scope="module")
def ada(docker_portal: Portal) -> str:
    return docker_portal.join("Ada")


@pytest.fixture(scope="module")
def bob(docker_portal: Portal) -> str:
    return docker_portal.join("Bob")


PROMPT = rb"\$ "


@asynccontextmanager
async def shell(
    portal: Portal, cookie: str, size: tuple[int, int] = (80, 24)
) -> AsyncIterator[ClientConnection]:
    """A terminal socket whose shell is attached and showing its prompt."""
    async with portal.socket(cookie=cookie, size=size) as ws:
        await statuses_until_connected(ws)
        await read_until(ws, PROMPT, timeout=30)
        yield ws


async def run(ws: ClientConnection, command: str, answer: str, timeout: float = 30) -> bytes:
    await ws.send(command.encode() + b"\r")
    return await read_until(ws, answer, timeout=timeout)


@pytest.mark.docker
async def test_a_typed_command_prints_its_output_in_the_attendees_sandbox(
    docker_portal: Portal, ada: str
) -> None:
    async with shell(docker_portal, ada) as ws:
        await run(ws, "echo hello-$((6*7))", r"hello-42")
        output = await run(ws, "echo user=$(id -un)-home=$PWD-end", r"user=\w+-home=\S+-end")
        assert b"user=learner-home=/home/learner-end" in output
        output = await run(ws, "echo name=$LABDECK_SANDBOX_NAME-end", r"name=[\w-]+-end")
        assert f"name={docker_portal.app.state.settings.instance}-sbx-".encode() in output


@pytest.mark.docker
async def test_resize_changes_stty_size(docker_portal: Portal, ada: str) -> None:
    async with shell(docker_portal, ada) as ws:
        await ws.send('{"type": "resize", "cols": 101, "rows": 37}')
        assert b"37 101" in await run(ws, "stty size", r"37 101")


@pytest.mark.docker
async def test_a_reconnect_resumes_the_same_shell_with_its_scrollback(
    docker_portal: Portal, ada: str
) -> None:
    async with shell(docker_portal, ada) as ws:
        await run(ws, "LD_MARK=kept-$((40+2)); echo scroll-$((1+1))", r"scroll-2")
    async with shell(docker_portal, ada) as ws:
        # the history replay brings the earlier lines back before the prompt
        assert b"mark=kept-42" in await run(ws, 'echo "mark=$LD_MARK"', r"mark=kept-42")


@pytest.mark.docker
async def test_two_tabs_share_one_shell_and_disconnects_leave_no_attaches_behind(
    docker_portal: Portal, ada: str
) -> None:
    async with shell(docker_portal, ada) as first, shell(docker_portal, ada) as second:
        await run(first, "echo shared-$((3*3))", r"shared-9")
        await read_until(second, r"shared-9")
    for _ in range(3):
        async with shell(docker_portal, ada):
            pass
    await asyncio.sleep(1)  # the detach runs after the socket closed
    async with shell(docker_portal, ada) as ws:
        command = "echo clients=$(pgrep -cf 'labdeck-session attac[h]')"
        output = await run(ws, command, r"clients=\d+")
    assert b"clients=1" in output


@pytest.mark.docker
async def test_another_attendee_gets_their_own_shell_and_no_cookie_gets_none(
    docker_portal: Portal, ada: str, bob: str
) -> None:
    async with shell(docker_portal, ada) as ws:
        await run(ws, "export LD_SECRET=ada-only; echo done-$((1+1))", r"done-2")
    async with shell(docker_portal, bob) as ws:
        output = await run(ws, 'echo "secret=[$LD_SECRET]-$((2*3))"', r"\]-6")
    assert b"secret=[]-6" in output
    async with docker_portal.socket() as ws:
        assert await close_code(ws) == 4401
    async with docker_portal.socket(cookie=ada, origin="http://evil.example") as ws:
        assert await close_code(ws) == 4403


@pytest.mark.docker
async def test_oversized_and_malformed_frames_close_a_real_terminal(
    docker_portal: Portal, ada: str
) -> None:
    async with shell(docker_portal, ada) as ws:
        await ws.send(b"x" * (64 * 1024 + 1))
        assert await close_code(ws) == 1009
    async with shell(docker_portal, ada) as ws:
        await ws.send("{oops")
        assert await close_code(ws) == 1008


@pytest.mark.docker
async def test_the_instructor_watches_read_only_then_types_along(
    docker_portal: Portal, ada: str
) -> None:
    attendee = docker_portal.attendee_id(ada)
    async with shell(docker_portal, ada) as own:
        async with docker_portal.socket(shadow_path(attendee), headers=BEARER) as watching:
            await statuses_until_connected(watching)
            await watching.send(b"echo instructor-$((2+2))\r")
            await run(own, "echo attendee-$((5+5))", r"attendee-10")
            seen = await read_until(watching, r"attendee-10")
            assert b"instructor-4" not in seen
        path = shadow_path(attendee, "write")
        async with docker_portal.socket(path, headers=BEARER) as helping:
            await statuses_until_connected(helping)
            await run(helping, "echo helped-$((3+4))", r"helped-7")
            await read_until(own, r"helped-7")


async def echo_round_trips(ws: ClientConnection, count: int) -> list[float]:
    """Seconds from sending a key to seeing it echoed, ``count`` times (keys erased after)."""
    times = []
    for index in range(count):
        key = b"abcdefghijklmnopqrstuvwxyz"[index % 26 : index % 26 + 1]
        started = time.perf_counter()
        await ws.send(key)
        await read_until(ws, re.escape(key), timeout=10)
        times.append(time.perf_counter() - started)
    await ws.send(b"\x15")  # Ctrl-U: clear the typed line
    return times


async def read_bytes(ws: ClientConnection, count: int, timeout: float = 30) -> int:
    seen = 0
    async with asyncio.timeout(timeout):
        while seen < count:
            frame = await ws.recv()
            seen += len(frame) if isinstance(frame, bytes) else 0
    return seen


@pytest.mark.docker
async def test_a_flood_in_one_terminal_does_not_slow_anothers_echo(
    docker_portal: Portal, ada: str, bob: str
) -> None:
    async with shell(docker_portal, ada) as flooding, shell(docker_portal, bob) as typing:
        await echo_round_trips(typing, 10)  # warm up
        await flooding.send(b"yes | head -c 2000000000\r")
        await read_bytes(flooding, 200_000)  # the flood is on
        reading = asyncio.create_task(read_bytes(flooding, 1 << 40, timeout=120))
        times = await echo_round_trips(typing, 100)
        assert not reading.done(), "the flood ended before the measurement did"
        reading.cancel()
        with suppress(asyncio.CancelledError):
            await reading
        await flooding.send(b"\x03")
        await run(flooding, "echo flood-$((8*8))", r"flood-64")
    p50, p99 = statistics.median(times), sorted(times)[98]
    assert p50 <= ECHO_P50_TARGET, f"echo p50 {p50 * 1000:.1f} ms during a flood"
    assert p99 <= ECHO_P99_TARGET, f"echo p99 {p99 * 1000:.1f} ms during a flood"


@pytest.mark.docker
async def test_docker_stop_behind_the_portals_back_closes_4503_and_the_sandbox_comes_back(
    docker_portal: Portal,
) -> None:
    cookie = docker_portal.join("Stopped")
    async with shell(docker_portal, cookie) as ws:
        await run(ws, "echo BEFORE_STOP > ~/kept.txt && echo written", "written")
        name = docker_portal.call(
            docker_portal.app.state.services.sandboxes.ready_sandbox,
            docker_portal.attendee_id(cookie),
        )
        with closing(docker_client()) as client:  # the engine the sandboxes run on
            client.containers.get(name).stop(timeout=1)
        assert await close_code(ws, timeout=30) == 4503
    assert await api_me_state(docker_portal, cookie) == "stopped"
    async with shell(docker_portal, cookie) as ws:  # reconnecting starts it again
        assert b"BEFORE_STOP" in await run(ws, "cat ~/kept.txt", "BEFORE_STOP")
    assert await api_me_state(docker_portal, cookie) == "ready"
