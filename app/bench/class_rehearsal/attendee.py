"""One scripted attendee, through the public surface only, as the page drives it: join, the lesson
page and its setup call, `/ws/events`, the terminal, each task's steps typed into the shell, then
Check."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from app.cookies import COOKIE_NAME
from app.lessons.proofs import Proof
from app.lessons.schema import Task

PROMPT = re.compile(rb"\$ ")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
HAND_OUT_TIMING = re.compile(r"hand-out;dur=([0-9.]+)")
CSRF_COOKIE = "labdeck_csrf"
TAIL_BYTES = 4096
JOIN_SECONDS = 60.0
PAGE_SECONDS = 60.0
TERMINAL_SECONDS = 300.0  # a queued sandbox may take this long in a cold class
STEP_SECONDS = 600.0  # builds and an engine restart, with the whole class typing
CHECK_SECONDS = 300.0
# A prompt of our own, typed first, so that the shell waiting for a line is unmistakable (the
# echo of this line shows \u, the prompt "learner"). Each step line is typed only when the shell
# waits for it, as a person types: a paste would be typeahead, and `sudo` (use_pty, Debian's
# default) reads and drops typeahead meant for the shell.
OWN_PROMPTS = "PS1='[bench-\\u]\\$ ' PS2='[bench-\\u]> '\r"
SHELL_WAITS = re.compile(rb"\[bench-learner\][$>] ")
# Typed after the steps; the shell's echo of the line shows $((6*7)), its output 42.
MARKER = 'echo "step-{number}-$((6*7)) rc=$?"\r'
MARKER_SEEN = rb"step-{number}-42 rc=(\d+)"
FAILED_STATES = {"unavailable", "failed", "ended"}


class Abandoned(Exception):
    """The attendee stopped: an error or a timeout, already recorded."""


@dataclass
class Timing:
    at: float  # seconds since the class started
    seconds: float
    what: str


@dataclass
class Record:
    """What the whole class saw; every attendee adds to it."""

    started: float = field(default_factory=time.monotonic)
    joins: list[Timing] = field(default_factory=list)
    hand_outs: list[Timing] = field(default_factory=list)  # the portal's own, Server-Timing
    states_after_join: list[str] = field(default_factory=list)
    pages: list[Timing] = field(default_factory=list)
    setups: list[Timing] = field(default_factory=list)
    terminals_ready: list[Timing] = field(default_factory=list)  # from the join to the prompt
    steps: list[Timing] = field(default_factory=list)
    checks: list[Timing] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # "attendee/task"
    not_passed: list[dict[str, Any]] = field(default_factory=list)
    nonzero_steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    sandboxes: dict[int, str] = field(default_factory=dict)  # attendee number -> container

    def now(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Plan:
    """What every attendee does: the lessons in order, each with its tasks' steps."""

    lessons: list[tuple[str, list[tuple[str, Proof]]]]  # slug, then (task id, its steps)
    checked: list[Task] = field(default_factory=list)  # the tasks, for the raw floor

    @property
    def tasks(self) -> int:
        return sum(len(tasks) for _, tasks in self.lessons)


class Attendee:
    def __init__(
        self, number: int, http: httpx.AsyncClient, ws_url: str, record: Record, plan: Plan
    ) -> None:
        self.number = number
        self.http = http
        self.ws_url = ws_url
        self.record = record
        self.plan = plan
        self.cookies: dict[str, str] = {}
        self.tail = b""  # the terminal's last output
        self.searched = 0  # where in it the next wait starts looking
        self.steps_typed = 0
        self.first_page = "/"

    @property
    def address(self) -> str:
        """Each attendee's own machine, behind the venue's proxy."""
        return f"10.60.{self.number // 250}.{self.number % 250 + 1}"

    def headers(self, **extra: str) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {"Cookie": cookie, "X-Forwarded-For": self.address, **extra}

    @asynccontextmanager
    async def guarded(self, what: str, seconds: float) -> AsyncIterator[None]:
        """Record a timeout or an error as this attendee's, and stop the attendee."""
        try:
            async with asyncio.timeout(seconds):
                yield
        except (TimeoutError, httpx.TimeoutException):
            self.record.timeouts.append(
                f"attendee {self.number}: {what} took over {seconds:.0f} s{self.last_output()}"
            )
            raise Abandoned from None
        except (httpx.HTTPError, WebSocketException, OSError, ValueError, KeyError) as error:
            self.record.errors.append(
                f"attendee {self.number}: {what}: {error!r}"[:500] + self.last_output()
            )
            raise Abandoned from None

    def last_output(self) -> str:
        """The terminal's last output, to tell why a step never finished."""
        return f"; the terminal last showed {self.tail[-300:]!r}" if self.tail else ""

    async def attend(self, arrival: float) -> None:
        await asyncio.sleep(arrival)
        try:
            joined = await self.join()
            await self.read_pages()
            events = await self.open_socket("/ws/events", PAGE_SECONDS)
            draining = asyncio.create_task(drain(events))
            try:
                await self.use_terminal(joined)
            finally:
                draining.cancel()
                await events.close()
            await self.read_progress()
        except Abandoned:
            pass

    async def open_socket(self, path: str, seconds: float) -> ClientConnection:
        async with self.guarded(f"opening {path}", seconds):
            return await connect(
                self.ws_url + path, additional_headers=self.headers(), max_size=None
            )

    async def join(self) -> float:
        async with self.guarded("POST /join", JOIN_SECONDS):
            asked = self.record.now()
            response = await self.http.post(
                "/join", data={"name": f"Attendee {self.number}"}, headers=self.headers()
            )
            self.record.joins.append(Timing(asked, self.record.now() - asked, "join"))
            self.expect(response, 303, "POST /join")
            if found := HAND_OUT_TIMING.search(response.headers.get("server-timing", "")):
                self.record.hand_outs.append(Timing(asked, float(found[1]) / 1000, "hand-out"))
            self.cookies[COOKIE_NAME] = response.cookies[COOKIE_NAME]
            self.first_page = response.headers["location"]
            me = await self.get_json("/api/me")
            self.record.states_after_join.append(str(me["sandbox"]["state"]))
        return asked

    async def read_pages(self) -> None:
        """Where the join's redirect leads (the browser follows it), and the workshop's JSON."""
        async with self.guarded(f"GET {self.first_page}", PAGE_SECONDS):
            response = await self.timed_get(self.first_page)
            self.expect(response, 200, f"GET {self.first_page}")
            await self.get_json("/api/workshop")

    async def use_terminal(self, joined: float) -> None:
        terminal = await self.open_socket("/ws/terminal", TERMINAL_SECONDS)
        try:
            async with self.guarded("waiting for the prompt", TERMINAL_SECONDS):
                await terminal.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
                await self.until(terminal, PROMPT)
                ready = self.record.now()
                self.record.terminals_ready.append(Timing(ready, ready - joined, "prompt"))
                await terminal.send(OWN_PROMPTS.encode())
                await self.until(terminal, SHELL_WAITS)
            await self.type_steps(
                terminal, "docker info --format '{{.ServerVersion}}'", "docker info"
            )
            for lesson, tasks in self.plan.lessons:
                await self.open_lesson(lesson)
                for task_id, proof in tasks:
                    await self.type_steps(terminal, proof.do, task_id)
                    await self.check(task_id)
        finally:
            await terminal.close()

    async def until(
        self, terminal: ClientConnection, pattern: re.Pattern[bytes]
    ) -> re.Match[bytes]:
        """Read the shell's output until ``pattern`` shows up; status frames that say the
        sandbox is gone stop the attendee."""
        while (found := pattern.search(self.tail, self.searched)) is None:
            frame = await terminal.recv()
            if isinstance(frame, str):
                state = json.loads(frame).get("state")
                if state in FAILED_STATES:
                    raise ValueError(f"the terminal said {frame}")
                continue
            joined = self.tail + frame
            cut = max(0, len(joined) - TAIL_BYTES)
            self.tail, self.searched = joined[cut:], max(0, self.searched - cut)
        self.searched = found.end()
        return found

    async def type_steps(self, terminal: ClientConnection, steps: str, what: str) -> None:
        """Type ``steps`` line by line, each when the shell waits for it, then a marker line;
        wait for the marker's output and the prompt after it."""
        self.steps_typed += 1
        number = self.steps_typed
        async with self.guarded(f"typing the steps of {what}", STEP_SECONDS):
            started = self.record.now()
            for line in steps.rstrip("\n").split("\n"):
                await terminal.send(line.encode() + b"\r")
                await self.until(terminal, SHELL_WAITS)
            await terminal.send(MARKER.format(number=number).encode())
            seen = re.compile(MARKER_SEEN.replace(b"{number}", str(number).encode()))
            found = await self.until(terminal, seen)
            await self.until(terminal, SHELL_WAITS)
            self.record.steps.append(Timing(started, self.record.now() - started, what))
        if found.group(1) != b"0":
            self.record.nonzero_steps.append(f"attendee {self.number}: {what}")

    async def open_lesson(self, slug: str) -> None:
        """GET the lesson page, then ask for its setup as the page's script does."""
        async with self.guarded(f"GET /lessons/{slug}", PAGE_SECONDS):
            response = await self.timed_get(f"/lessons/{slug}")
            self.expect(response, 200, f"GET /lessons/{slug}")
            self.cookies.update(response.cookies)
            token = CSRF_META.search(response.text)
            if token is None:
                raise ValueError(f"/lessons/{slug} carries no CSRF token")
        async with self.guarded(f"POST /lessons/{slug}/setup", CHECK_SECONDS):
            asked = self.record.now()
            response = await self.http.post(
                f"/lessons/{slug}/setup", headers=self.headers(**{"X-CSRF-Token": token[1]})
            )
            self.record.setups.append(Timing(asked, self.record.now() - asked, slug))
            self.expect(response, 200, f"POST /lessons/{slug}/setup")
            if not response.json().get("ready"):
                raise ValueError(f"the setup of {slug} failed: {response.text[:300]}")

    async def check(self, task_id: str) -> None:
        async with self.guarded(f"checking {task_id}", CHECK_SECONDS):
            asked = self.record.now()
            response = await self.http.post(f"/api/tasks/{task_id}/check", headers=self.headers())
            self.record.checks.append(Timing(asked, self.record.now() - asked, task_id))
            self.expect(response, 200, f"POST /api/tasks/{task_id}/check")
            result = response.json()
        if result["passed"]:
            self.record.passed.append(f"{self.number}/{task_id}")
        else:
            failed = [c["name"] for c in result["checks"] if not c["passed"]]
            self.record.not_passed.append(
                {
                    "attendee": self.number,
                    "task": task_id,
                    "failed": failed,
                    "result": result,
                    "terminal": self.tail[-600:].decode("utf-8", errors="replace"),
                }
            )

    async def read_progress(self) -> None:
        """The attendee's own view at the end, and the sandbox's name (for the floor)."""
        async with self.guarded("GET /api/me", PAGE_SECONDS):
            me = await self.get_json("/api/me")
            self.record.sandboxes[self.number] = str(me["sandbox"].get("name") or "")

    async def get_json(self, path: str) -> Any:
        response = await self.timed_get(path)
        self.expect(response, 200, f"GET {path}")
        return response.json()

    async def timed_get(self, path: str) -> httpx.Response:
        asked = self.record.now()
        response = await self.http.get(path, headers=self.headers())
        route = "/lessons/{slug}" if path.startswith("/lessons/") else path
        self.record.pages.append(Timing(asked, self.record.now() - asked, route))
        return response

    @staticmethod
    def expect(response: httpx.Response, status: int, what: str) -> None:
        if response.status_code != status:
            raise ValueError(f"{what} answered {response.status_code}: {response.text[:300]}")


async def drain(socket: ClientConnection) -> int:
    """Read a websocket the page keeps open; returns how many frames came."""
    frames = 0
    try:
        async for _ in socket:
            frames += 1
    except WebSocketException:
        pass
    return frames
