"""An in-memory ``SandboxBackend`` that misbehaves on request, for fast tests of the layers above
(JupyterHub's ``tests/mocking.py`` is the model).

Knobs, all changeable between calls:
  ``create_delay``       seconds ``create`` and ``start`` spend between STARTING and READY;
  ``never_ready``        ``create``/``start`` hang in STARTING until cancelled (and leave nothing);
  ``fail_create_times``  the next N ``create`` calls raise ``SandboxError`` after CREATING;
  ``crash(name)``        the sandbox vanishes: MISSING, ``exec`` and TTY writes raise SandboxGone;
  ``exec_handler``       ``(name, command, user) -> ExecResult | str | (exit_code, output)``,
                         plain or async; the default answers ``ExecResult(0, "")``.
  ``addresses``         ``{name: host}`` that ``address`` answers; default 127.0.0.1, so a test
                         serves a "published port" from a server of its own on loopback.
``calls`` records every call as ``(method, name)`` for assertions.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import typer

from app.config import Settings
from app.lessons.schema import Workshop
from app.sandboxes import naming
from app.sandboxes.base import (
    OUTPUT_LIMIT,
    BackendHealth,
    Connection,
    ExecResult,
    ExecStreamBase,
    Finding,
    SandboxError,
    SandboxGone,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStats,
)

ExecAnswer = ExecResult | str | tuple[int, str]
ExecHandler = Callable[[str, str, str], ExecAnswer | Awaitable[ExecAnswer]]
IDLE_MEMORY_BYTES = 40 * 1024 * 1024


@dataclass
class FakeSandbox:
    spec: SandboxSpec
    state: SandboxState
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def info(self) -> SandboxInfo:
        return SandboxInfo(
            name=self.spec.name,
            state=self.state,
            workshop=self.spec.workshop,
            attendee=self.spec.attendee,
            created_at=self.created_at,
            labels=dict(self.spec.labels),
        )


class FakeTty:
    """Echoes what is written, as a terminal with ``stty echo`` would."""

    def __init__(self, backend: FakeBackend, name: str) -> None:
        self._backend = backend
        self.name = name
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self.size: tuple[int, int] | None = None
        self.closed = False

    async def read(self) -> bytes:
        if self.closed:
            return b""
        return await self._output.get()

    async def write(self, data: bytes) -> None:
        if self.closed or not self._backend.is_running(self.name):
            raise SandboxGone(f"Sandbox {self.name} is gone.")
        await self._output.put(data)

    async def resize(self, cols: int, rows: int) -> None:
        self.size = (cols, rows)

    async def close(self) -> None:
        self.closed = True
        self._output.put_nowait(b"")  # wakes a pending read


class FakeExecStream(ExecStreamBase):
    def __init__(self, run: Callable[[], Awaitable[ExecResult]]) -> None:
        self._run = run

    async def _chunks(self) -> AsyncIterator[bytes]:
        result = await self._run()
        for line in result.output.encode().splitlines(keepends=True):
            yield line
        self._result = result

    async def aclose(self) -> None:
        return None


class FakeBackend:
    def __init__(
        self,
        *,
        create_delay: float = 0.0,
        never_ready: bool = False,
        fail_create_times: int = 0,
        exec_handler: ExecHandler | None = None,
    ) -> None:
        self.create_delay = create_delay
        self.never_ready = never_ready
        self.fail_create_times = fail_create_times
        self.exec_handler = exec_handler
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.ttys: list[FakeTty] = []
        self.calls: list[tuple[str, str]] = []
        self.addresses: dict[str, str] = {}

    # -- knobs -----------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        self.sandboxes.pop(name, None)

    def is_running(self, name: str) -> bool:
        sandbox = self.sandboxes.get(name)
        return sandbox is not None and sandbox.state in (SandboxState.STARTING, SandboxState.READY)

    # -- lifecycle -------------------------------------------------------------------------

    async def create(self, spec: SandboxSpec) -> AsyncGenerator[SandboxState, None]:
        self.calls.append(("create", spec.name))
        naming.check_name(spec.name)
        existing = self.sandboxes.get(spec.name)
        if existing is not None and existing.state is SandboxState.READY:
            yield SandboxState.READY
            return
        yield SandboxState.CREATING
        if self.fail_create_times > 0:
            self.fail_create_times -= 1
            raise SandboxError(f"Sandbox {spec.name} could not be made ready: injected failure.")
        self.sandboxes[spec.name] = FakeSandbox(spec, SandboxState.STARTING)
        try:
            yield SandboxState.STARTING
            await self._get_ready()
        except BaseException:  # like the Docker backend: nothing half-made stays
            self.sandboxes.pop(spec.name, None)
            raise
        self.sandboxes[spec.name].state = SandboxState.READY
        yield SandboxState.READY

    async def start(self, name: str) -> AsyncGenerator[SandboxState, None]:
        self.calls.append(("start", name))
        sandbox = self.sandboxes.get(name)
        if sandbox is None:
            raise SandboxGone(f"Sandbox {name} does not exist.")
        sandbox.state = SandboxState.STARTING
        yield SandboxState.STARTING
        await self._get_ready()
        sandbox.state = SandboxState.READY
        yield SandboxState.READY

    async def _get_ready(self) -> None:
        if self.never_ready:
            await asyncio.Event().wait()
        await asyncio.sleep(self.create_delay)

    async def stop(self, name: str, timeout: float = 10) -> None:
        self.calls.append(("stop", name))
        if name in self.sandboxes:
            self.sandboxes[name].state = SandboxState.STOPPED
        for tty in self.ttys:  # as an engine ends the exec streams of a stopped container
            if tty.name == name:
                await tty.close()

    async def remove(self, name: str) -> None:
        self.calls.append(("remove", name))
        self.sandboxes.pop(name, None)

    # -- commands and terminals ------------------------------------------------------------

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        self.calls.append(("exec", name))
        self._require_running(name)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(self._answer(name, command, user), timeout)
        except TimeoutError:
            return ExecResult(137, "", timed_out=True, seconds=time.monotonic() - started)
        self._require_running(name)  # crashed while the command ran
        return replace(result, output=result.output[-OUTPUT_LIMIT:])

    def exec_stream(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> FakeExecStream:
        return FakeExecStream(lambda: self.exec(name, command, user=user, timeout=timeout))

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> FakeTty:
        self.calls.append(("open_tty", name))
        self._require_running(name)
        if command[:1] == ["python3"]:  # a fake sandbox has no interpreter: checks use exec
            raise SandboxError(f"{command[0]}: executable file not found in $PATH")
        tty = FakeTty(self, name)
        self.ttys.append(tty)
        return tty

    # -- questions -------------------------------------------------------------------------

    async def status(self, name: str) -> SandboxInfo:
        self.calls.append(("status", name))
        sandbox = self.sandboxes.get(name)
        return sandbox.info() if sandbox else SandboxInfo(name, SandboxState.MISSING)

    async def address(self, name: str) -> str:
        self.calls.append(("address", name))
        self._require_running(name)
        return self.addresses.get(name, "127.0.0.1")

    async def list(self) -> list[SandboxInfo]:
        self.calls.append(("list", ""))
        return [sandbox.info() for sandbox in self.sandboxes.values()]

    async def health(self) -> BackendHealth:
        return BackendHealth(engine="ok", isolation="fake backend: no sandboxes run")

    async def stats(self, name: str) -> SandboxStats:
        self.calls.append(("stats", name))
        self._require_running(name)
        return SandboxStats(name, IDLE_MEMORY_BYTES, 1 << 30, 0.5, 20)

    async def _answer(self, name: str, command: str, user: str) -> ExecResult:
        if self.exec_handler is None:
            return ExecResult(0, "")
        answer = self.exec_handler(name, command, user)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, ExecResult):
            return answer
        if isinstance(answer, str):
            return ExecResult(0, answer)
        return ExecResult(answer[0], answer[1])

    def _require_running(self, name: str) -> None:
        if not self.is_running(name):
            raise SandboxGone(f"Sandbox {name} does not run.")


async def connect(settings: Settings, workshop: Callable[[], Workshop | None]) -> Connection:
    """The ``fake`` backend by name (``LABDECK_SANDBOX_BACKEND=fake``): sandboxes that are
    ready at once and answer every command with success. No engine, no isolation: demos only."""
    return Connection(backend=FakeBackend())


async def connect_for_maintenance(settings: Settings) -> Connection:
    return Connection(backend=FakeBackend())


async def connect_throwaway(
    settings: Settings, workshop: Workshop, labels: Mapping[str, str]
) -> Connection:
    """A FakeBackend of its own: nothing to set up, nothing outlives it."""
    return Connection(backend=FakeBackend())


def image_recipes() -> dict[str, str]:
    """Fake sandboxes pull nothing: no image is carried offline."""
    return {}


def doctor_checks(settings: Settings) -> list[Callable[[], Finding]]:
    return [lambda: Finding("backend", True, "fake: in-process stand-ins, no engine to check")]


def add_commands(cli: typer.Typer, wanted: Callable[[str], bool]) -> None:
    """The fake backend has no commands of its own."""


def build_images(settings: Settings) -> None:
    """The fake backend runs no image."""


def teardown(settings: Settings, instance: str, *, dry_run: bool = False) -> list[str]:
    """Fake sandboxes live in the portal's memory: nothing outlives it."""
    return []


def teardown_stale(settings: Settings, *, dry_run: bool = False) -> list[str]:
    return []
