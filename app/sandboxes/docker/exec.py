"""Commands inside a sandbox: each a docker exec run in a worker thread under a time guard.

``ExecJob`` runs one command (``GUARD`` kills it, and whatever it left running, at its
deadline); ``DockerExecStream`` hands its output to the event loop as it comes. ``READY_PROBE``
is the command that waits for a sandbox's inner engine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

import docker
from docker.errors import APIError, NotFound

from app.sandboxes.base import (
    OUTPUT_LIMIT,
    ExecResult,
    ExecStreamBase,
    SandboxError,
    SandboxGone,
)
from app.sandboxes.docker.stream import Hijacked

# Waits inside the sandbox until its engine answers `GET /info` (the request `docker info`
# makes), without taking the CPU the engine needs to start: on a small host a class's sandboxes
# start at once. Until dockerd has made its socket only shell builtins run (`read -t` on a pipe
# nobody writes to is the sleep); then one request, which the engine answers as soon as its API
# serves (it listens before it is ready). curl rather than the docker CLI: a third of the CPU.
# Fails fast (status 3, with the engine's log) when dockerd has not been running for 5 s
# after the init got its cgroups.
READY_PROBE = r"""
sock=/var/run/docker.sock
exec 9<> <(:)
dockerd_runs() {
    local path name
    for path in /proc/[0-9]*/comm; do
        read -r name 2>/dev/null <"$path" && [ "$name" = dockerd ] && return 0
    done
    return 1
}
step=0 absent=0
until [ -S $sock ] && curl -sf --max-time 60 --unix-socket $sock -o /dev/null http://engine/info
do
    step=$((step + 1))
    if [ $((step % 10)) -eq 0 ]; then
        # Before the init has its cgroups (userns: the portal delegates them) no dockerd is due.
        if [ ! -e /run/labdeck-delegated ] || dockerd_runs; then absent=0; else absent=$((absent + 1)); fi
        if [ "$absent" -gt 10 ]; then
            echo "dockerd is not running; the end of /var/log/docker.log:"
            tail -n 15 /var/log/docker.log 2>/dev/null
            exit 3
        fi
    fi
    read -t 0.05 -u 9 || :
done
"""
# After GUARD should have killed a command, how long the worker thread still waits for it.
_KILL_GRACE_SECONDS = 2.0


def home_of(user: str) -> str:
    return "/root" if user in ("root", "0") else f"/home/{user}"


# Runs "$2" with `bash -lc` in a session of its own and SIGKILLs that whole session at the
# deadline ("$1" seconds) and again when the command returns: background jobs it left (a fork
# bomb, a forgotten `sleep &`) die with it. coreutils `timeout` would not do the latter.
# Exits with the command's status; 137 when killed. (dash's kill takes no "--".)
# The check agent (app/checks/agent_program.py) keeps the same rule in Python, for the images
# that have python3; tests/checks/test_kill_rule.py runs both on the same cases.
GUARD = """
setsid bash -lc "$2" & command=$!
setsid sh -c 'sleep "$1"; kill -KILL "-$2"' watchdog "$1" "$command" >/dev/null 2>&1 &
watchdog=$!
wait "$command"; status=$?
kill -KILL "-$command" 2>/dev/null
kill -KILL "-$watchdog" 2>/dev/null
exit "$status"
"""


def guarded(seconds: float, command: str) -> list[str]:
    """The exec argv that runs ``command`` under ``GUARD`` for at most ``seconds``."""
    return ["sh", "-c", GUARD, "labdeck-exec", f"{max(seconds, 0.1):g}", command]


class OutputTail:
    """The last ``limit`` bytes of a command's output."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self._limit = limit
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > self._limit:
            del self._data[: len(self._data) - self._limit]

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    timed_out: bool
    seconds: float


class ExecJob:
    """One command inside a sandbox, run in a worker thread, with a watchdog past its timeout."""

    def __init__(
        self,
        api: Callable[[], docker.APIClient],  # called in the thread: connecting may block
        name: str,
        command: str,
        user: str,
        timeout: float,
    ) -> None:
        self._get_api = api
        self._name = name
        self._argv = guarded(timeout, command)
        self._user = user
        self._timeout = timeout
        self._connection: Hijacked | None = None
        self._cancelled = threading.Event()
        self._deadline_hit = threading.Event()

    def run(self, on_output: Callable[[bytes], None]) -> Outcome:
        started = time.monotonic()
        api = self._get_api()
        exec_id = exec_create(
            api, self._name, self._argv, user=self._user, workdir=home_of(self._user)
        )
        try:
            connection = Hijacked(api.exec_start(exec_id, socket=True))
        except APIError as error:
            raise SandboxGone(f"Sandbox {self._name} stopped: {error.explanation}") from error
        self._connection = connection
        # The client's read timeout (120 s) would end a quiet command's stream early, as if it
        # had exited (a setup waiting on a loop; issue 15): the watchdog below owns the deadline.
        with suppress(AttributeError, OSError):
            connection.sock.settimeout(None)
        if self._cancelled.is_set():
            connection.shutdown()
        watchdog = threading.Timer(self._timeout + _KILL_GRACE_SECONDS, self._deadline_passed)
        watchdog.daemon = True
        watchdog.start()
        try:
            for chunk in connection.frames():
                on_output(chunk)
        finally:
            watchdog.cancel()
            connection.close()
        seconds = time.monotonic() - started
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        # GUARD's watchdog kills the command's session: 137, right at the deadline.
        killed = exit_code == 137 and seconds >= self._timeout * 0.98
        watchdog_fired = self._deadline_hit.is_set()
        if exit_code is None:
            exit_code = 137 if watchdog_fired else -1
        return Outcome(exit_code, killed or watchdog_fired, round(seconds, 3))

    def _deadline_passed(self) -> None:
        self._deadline_hit.set()
        if self._connection is not None:
            self._connection.shutdown()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._connection is not None:
            self._connection.shutdown()


InThread = Callable[[Callable[[], Outcome]], Awaitable[Outcome]]


async def run_job(job: ExecJob, in_thread: InThread) -> tuple[Outcome, str]:
    """Run ``job`` in a worker thread; its outcome and the end of its output. Cancelling this
    cuts the command's connection, so the thread ends too."""
    tail = OutputTail()
    try:
        outcome = await in_thread(partial(job.run, tail.add))
    except asyncio.CancelledError:
        job.cancel()
        raise
    return outcome, tail.text()


def exec_create(
    api: docker.APIClient, name: str, argv: list[str], *, user: str, workdir: str, **options: Any
) -> str:
    """Create an exec; ``SandboxGone`` when the container is missing or not running."""
    try:
        created = api.exec_create(name, argv, user=user, workdir=workdir, **options)
    except NotFound as error:
        raise SandboxGone(f"Sandbox {name} does not exist.") from error
    except APIError as error:
        if error.status_code == 409:
            raise SandboxGone(f"Sandbox {name} is not running.") from error
        raise SandboxError(
            f"Could not run a command in sandbox {name}: {error.explanation}"
        ) from error
    return str(created["Id"])


class DockerExecStream(ExecStreamBase):
    """``DockerBackend.exec_stream``: output chunks through a bounded queue (the reading thread
    waits when the consumer is slow), then ``result``."""

    _QUEUE_SIZE = 64
    # A consumer that stopped reading without aclose() must not hold a worker thread forever.
    _HAND_OVER_TIMEOUT = 60.0

    def __init__(self, job: ExecJob, in_thread: InThread) -> None:
        self._in_thread = in_thread
        self._job = job
        self._tail = OutputTail()
        self._abandoned = threading.Event()

    async def _chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._QUEUE_SIZE)

        async def put(chunk: bytes | None) -> None:
            if not self._abandoned.is_set():
                await queue.put(chunk)

        def hand_over(chunk: bytes | None) -> None:  # in the worker thread; waits while full
            if not self._abandoned.is_set() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(put(chunk), loop).result(self._HAND_OVER_TIMEOUT)

        def produce() -> Outcome:
            try:
                return self._job.run(hand_over)
            finally:
                hand_over(None)

        work = asyncio.ensure_future(self._in_thread(produce))
        try:
            while (chunk := await queue.get()) is not None:
                self._tail.add(chunk)
                yield chunk
            outcome = await work
            self._result = ExecResult(
                outcome.exit_code, self._tail.text(), outcome.timed_out, outcome.seconds
            )
        finally:
            if not work.done():
                self._abandon(queue)

    def _abandon(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._abandoned.set()
        self._job.cancel()
        while not queue.empty():  # wakes a hand-over waiting for room
            queue.get_nowait()

    async def aclose(self) -> None:
        self._abandoned.set()
        self._job.cancel()
