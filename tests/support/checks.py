"""Fakes for check tests without Docker: a backend whose "sandboxes" are local bash processes in
a temporary home folder (real exit codes, output and timeouts), and a sandbox service that can be
told to be unavailable or to lose its sandbox. The fixtures over them are in
tests/checks/conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.checks import agent as agent_module
from app.models import Attendee
from app.sandboxes.base import ExecResult, SandboxError, SandboxGone, SandboxUnavailable

FIXTURES = Path(__file__).resolve().parents[1] / "checks" / "fixtures"
DEMO_CONTENT = FIXTURES / "content"
# The check events of the demo task "make-file" checked before anything was done: (check index,
# status), each check announced as it starts and as it ends.
MAKE_FILE_FIRST_RUN = [
    (0, "running"),
    (0, "failed"),
    (1, "running"),
    (1, "failed"),
    (2, "running"),
    (2, "passed"),
]


AGENT_PROGRAM = Path(agent_module.__file__).with_name("agent_program.py")


def converse(*requests: object, home: Path | None = None) -> list[dict[str, object]]:
    """Run the check agent's program locally on these request lines (end of input after them),
    in ``home`` (its HOME and working directory; a fresh one when not given); its replies."""
    lines = "".join(
        (request if isinstance(request, str) else json.dumps(request)) + "\n"
        for request in requests
    )
    with tempfile.TemporaryDirectory() as fresh:  # bash -l reads the profile of this HOME
        where = home or Path(fresh)
        done = subprocess.run(
            [sys.executable, str(AGENT_PROGRAM)],
            input=lines,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=where,
            env={**os.environ, "HOME": str(where)},
        )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


class LocalTty:
    """A ``Tty`` over a local process's pipes (no terminal: the agent skips raw mode)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def read(self) -> bytes:
        assert self.process.stdout is not None
        return await self.process.stdout.read(1 << 16)

    async def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as error:
            raise SandboxGone("the local agent is gone") from error

    async def resize(self, cols: int, rows: int) -> None:
        pass

    async def close(self) -> None:
        if self.process.stdin and not self.process.stdin.is_closing():
            self.process.stdin.close()
        await self.process.wait()


class ShellBackend:
    """``exec`` runs local bash; ``open_tty`` runs the check agent locally when ``agent`` is on
    (off by default, so that tests can read ``commands``: checks then fall back to exec)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gone: set[str] = set()
        self.commands: list[str] = []
        self.delay = 0.0  # seconds added before each exec, to overlap concurrent runs
        self.agent = False
        self.agents_opened = 0

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> LocalTty:
        if name in self.gone:
            raise SandboxGone(f"{name} is not running")
        if not self.agent:
            raise SandboxError("python3: executable file not found in $PATH")
        self.agents_opened += 1
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *command[1:],
            cwd=self.home(name),
            env={**os.environ, "HOME": str(self.home(name))},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return LocalTty(process)

    def home(self, name: str) -> Path:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        return home

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        if name in self.gone:
            raise SandboxGone(f"{name} is not running")
        self.commands.append(command)
        await asyncio.sleep(self.delay)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=self.home(name),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            return ExecResult(-1, "", timed_out=True, seconds=timeout)
        assert process.returncode is not None
        seconds = time.perf_counter() - started
        return ExecResult(process.returncode, output.decode(errors="replace"), seconds=seconds)


class FakeSandboxes:
    """The part of SandboxService that checks use."""

    def __init__(self, backend: ShellBackend) -> None:
        self.backend = backend
        self.unavailable = ""
        self.touched: list[int] = []
        self.restarted: list[int] = []

    def name_for(self, attendee_id: int) -> str:
        return f"sbx-{attendee_id}"

    async def ready_sandbox(self, attendee_id: int, timeout: float = 60) -> str:
        if self.unavailable:
            raise SandboxUnavailable(self.unavailable)
        return self.name_for(attendee_id)

    async def ensure_for(self, attendee_id: int) -> Any:
        self.restarted.append(attendee_id)
        self.backend.gone.discard(self.name_for(attendee_id))
        return None

    def touch(self, attendee_id: int) -> None:
        self.touched.append(attendee_id)


def add_attendee(engine: Engine, name: str = "Ada") -> int:
    with Session(engine) as session:
        attendee = Attendee(workshop="check-demo", name=name, resume_key=f"key-{name}")
        session.add(attendee)
        session.commit()
        assert attendee.id is not None
        return attendee.id
