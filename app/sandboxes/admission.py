"""Admission: every sandbox creation waits its turn for one of a few workers.

A class of fifty joining at once is queued, never refused. Only ``spawn_workers`` creations run
at a time, because on a small host more at once makes every one of them slower; attendees go
before warm-pool refills. Each waiting attendee hears their place in the queue whenever it
changes, then the real stages. A failed creation is tried once more, then its row says FAILED
with the reason, and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from app.instruments import SANDBOX_CREATION_SECONDS, since
from app.sandboxes.base import SandboxBackend, SandboxError, SandboxSpec, SandboxState
from app.sandboxes.transitions import Transitions

log = logging.getLogger("labdeck.sandboxes")

ATTEMPTS = 2


@dataclass(frozen=True)
class CreationJob:
    spec: SandboxSpec
    attendee_id: int | None = None  # None for a warm-pool sandbox

    @property
    def name(self) -> str:
        return self.spec.name


class Admission:
    """A FIFO of creations served by ``workers`` tasks once ``start`` has been called."""

    def __init__(
        self,
        backend: SandboxBackend,
        transitions: Transitions,
        *,
        workers: int,
        create_timeout: float,
    ) -> None:
        self.backend = backend
        self.transitions = transitions
        self.records = transitions.records
        self.workers = workers
        self.create_timeout = create_timeout
        self._attendees: deque[CreationJob] = deque()
        self._pool: deque[CreationJob] = deque()
        self._running: set[str] = set()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def waiting(self) -> int:
        return len(self._attendees) + len(self._pool)

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._closing = False
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"sandbox-worker-{number}")
                for number in range(self.workers)
            ]

    async def close(self) -> None:
        """Stop the workers. A creation cut short stays in progress; reconcile resumes it."""
        self._closing = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def submit(self, spec: SandboxSpec, attendee_id: int | None = None) -> None:
        """Queue a creation; a name already waiting is not queued twice. (One still running is:
        its worker may be past READY already, and creating a running sandbox is a no-op.)"""
        job = CreationJob(spec, attendee_id)
        if self.is_waiting(job.name):
            return
        if attendee_id is None:
            self._pool.append(job)
        else:
            self._attendees.append(job)
            self.transitions.announce_position(attendee_id, job.name, len(self._attendees))
        self._wakeup.set()

    def is_running(self, name: str) -> bool:
        return name in self._running

    def is_waiting(self, name: str) -> bool:
        return any(job.name == name for job in (*self._attendees, *self._pool))

    def cancel(self, name: str) -> bool:
        """Drop a creation that has not begun; True when one was dropped."""
        for queue in (self._attendees, self._pool):
            for job in queue:
                if job.name == name:
                    queue.remove(job)
                    self._announce_positions()
                    return True
        return False

    def position(self, name: str) -> int | None:
        """1 for the next attendee to be served; None when not waiting in the attendee queue."""
        for index, job in enumerate(self._attendees):
            if job.name == name:
                return index + 1
        return None

    def _announce_positions(self) -> None:
        for index, job in enumerate(self._attendees):
            assert job.attendee_id is not None
            self.transitions.announce_position(job.attendee_id, job.name, index + 1)

    async def _next_job(self) -> CreationJob:
        while not (self._attendees or self._pool) or self._closing:
            if self._closing:
                raise asyncio.CancelledError
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._attendees:
            job = self._attendees.popleft()
            self._announce_positions()
        else:
            job = self._pool.popleft()
        self._running.add(job.name)
        return job

    async def _work(self) -> None:
        while True:
            job = await self._next_job()
            try:
                await self._create(job)
            finally:
                self._running.discard(job.name)

    async def _create(self, job: CreationJob) -> None:
        error, note, started = "", "", time.monotonic()
        for attempt in range(1, ATTEMPTS + 1):
            if await self.records.by_name(job.name) is None:
                return  # reset or removed while it waited
            try:
                # asyncio.timeout, not wait_for: wait_for in 3.11 can swallow a cancellation.
                async with asyncio.timeout(self.create_timeout):
                    still_wanted = await self._follow(job.spec, note)
                if not still_wanted:
                    await self._discard(job.name)  # its row went away meanwhile
                else:
                    SANDBOX_CREATION_SECONDS.observe(since(started), outcome="ready")
                return
            except TimeoutError:
                error = f"its Docker engine did not answer within {self.create_timeout:g} s"
            except SandboxError as failure:
                error = str(failure)
            except Exception as failure:  # a bug or an unexpected client error; keep the worker
                log.exception("creating sandbox %s raised", job.name)
                error = f"an unexpected {type(failure).__name__} (logged)"
            if await self.records.by_name(job.name) is None:
                await self._discard(job.name)  # removed on purpose (reset, pool shrink) meanwhile
                return
            log.warning(
                "creating sandbox %s failed (try %d of %d): %s", job.name, attempt, ATTEMPTS, error
            )
            await self._discard(job.name)
            note = "The first try failed; trying once more."
            if attempt < ATTEMPTS:
                await self.transitions.set_state(job.name, SandboxState.CREATING, note)
        log.error("sandbox %s could not be created, giving up: %s", job.name, error)
        SANDBOX_CREATION_SECONDS.observe(since(started), outcome="failed")
        await self.transitions.set_state(job.name, SandboxState.FAILED, failed_message(error))

    async def _follow(self, spec: SandboxSpec, note: str = "") -> bool:
        """Run the backend's creation, each stage mirrored in the row (with ``note`` until it is
        ready). False when the row vanished meanwhile."""
        stages = self.backend.create(spec)
        last: SandboxState | None = None
        try:
            async for stage in stages:
                if await self.records.by_name(spec.name) is None:
                    return False
                if stage is not last:
                    ready = stage is SandboxState.READY
                    await self.transitions.set_state(spec.name, stage, "" if ready else note)
                last = stage
        finally:
            close = getattr(stages, "aclose", None)
            if close is not None:
                await close()
        if last is not SandboxState.READY:
            raise SandboxError(f"the backend stopped at stage {last}, before the sandbox was ready")
        return True

    async def _discard(self, name: str) -> None:
        try:
            await self.backend.remove(name)
        except SandboxError as error:
            log.warning("could not remove the leftovers of sandbox %s: %s", name, error)


def failed_message(error: str) -> str:
    return (
        f"Your sandbox could not be created: {error}. It is tried again when you open the "
        "terminal; if it keeps failing, ask the instructor."
    )
