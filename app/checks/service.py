"""The check service (``app.state.checks``): one attendee clicks Check, the checks run in their
sandbox, each result streams to their page, the attempt is stored and the dashboards hear of it.

Two clicks on the same task share one run. A sandbox that is stopped is started first; one that
cannot be used gives an "unavailable" result with a sentence for the attendee, never an error.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from typing import Any, Literal, Protocol

from app.checks import publish, store
from app.checks.agent import AgentBackend, CheckAgents
from app.checks.lesson_setup import LessonSetups, SetupFailed
from app.checks.runner import CheckResult, Progress, run_checks
from app.checks.watch import Watches
from app.db import Database
from app.events import EventHub
from app.instruments import CHECK_SECONDS
from app.lessons.schema import Lesson, Task, Workshop
from app.models import TaskProgress, utcnow
from app.progress import status_of
from app.sandboxes.base import SandboxGone, SandboxUnavailable

RunStatus = Literal["passed", "failed", "unavailable"]
SANDBOX_RESTARTING = "Your sandbox is starting again; check again in a few seconds."
TASK_REMOVED = "This task is no longer in the workshop; reload the page."
READY_TIMEOUT_SECONDS = 20.0


class SandboxProvider(Protocol):
    """What checks need from the sandbox service (app/sandboxes/service.py)."""

    @property
    def backend(self) -> AgentBackend: ...

    async def ready_sandbox(self, attendee_id: int, timeout: float = 60) -> str: ...

    async def ensure_for(self, attendee_id: int) -> Any: ...

    def touch(self, attendee_id: int) -> None: ...


@dataclass(frozen=True)
class TaskRun:
    """One run of a task's checks. ``unavailable`` says why the sandbox could not be used."""

    task_id: str
    checks: list[CheckResult]
    started_at: datetime = field(default_factory=utcnow)
    duration_ms: int = 0
    unavailable: str = ""

    @property
    def passed(self) -> bool:
        return not self.unavailable and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def status(self) -> RunStatus:
        if self.unavailable:
            return "unavailable"
        return "passed" if self.passed else "failed"

    def outcome(self) -> tuple[str, ...]:
        """What the attendee would see change; watch mode republishes only when this differs."""
        return (self.unavailable, *(f"{c.status}:{c.message}" for c in self.checks))

    def as_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "passed": self.passed,
            "status": self.status,
            "message": self.unavailable,
            "duration_ms": self.duration_ms,
            "checks": [
                {key: check.as_dict()[key] for key in _CHECK_FIELDS} for check in self.checks
            ],
        }


_CHECK_FIELDS = ("name", "passed", "status", "message", "output", "duration_ms")


class CheckService:
    def __init__(
        self,
        sandboxes: SandboxProvider,
        events: EventHub,
        database: Database,
        *,
        ready_timeout: float = READY_TIMEOUT_SECONDS,
        workers: int = 0,
        workshop: Callable[[], Workshop | None] | None = None,
    ) -> None:
        """``workshop`` gives the workshop served now: a watch that outlives a reload checks
        the task as it is now (or stops when it is gone)."""
        self.sandboxes = sandboxes
        self.events = events
        self.db = database
        self.ready_timeout = ready_timeout
        self._workshop = workshop
        self.setups = LessonSetups(database, events)
        self.watches = Watches(self)
        self._inflight: dict[tuple[int, str], asyncio.Task[TaskRun]] = {}
        # A class clicking at once would otherwise share the cores among all its checks and
        # finish together, late; taking turns finishes most tasks early and wastes less CPU.
        self._turns = asyncio.Semaphore(workers or 2 * (os.cpu_count() or 1))

    @cached_property
    def agents(self) -> CheckAgents:
        """Where checks run: each sandbox's check agent, or a plain exec (app/checks/agent.py)."""
        return CheckAgents(self.sandboxes.backend)

    async def check(self, attendee_id: int, lesson: Lesson, task: Task) -> TaskRun:
        """Run ``task``'s checks for this attendee (or join the run already going) and return
        the result once every check finished. Cancelling the caller does not stop the run."""
        key = (attendee_id, task.id)
        run = self._inflight.get(key)
        if run is None or run.done():
            run = asyncio.create_task(self._checked_by_attendee(attendee_id, lesson, task))
            self._inflight[key] = run
            run.add_done_callback(partial(self._forget, key))
        return await asyncio.shield(run)

    def is_running(self, attendee_id: int, task_id: str) -> bool:
        run = self._inflight.get((attendee_id, task_id))
        return run is not None and not run.done()

    async def prepare_lesson(self, attendee_id: int, lesson: Lesson) -> str:
        """Run the lesson's setups once its sandbox is ready (a failed one again); "" when
        done, else the reason. Raises ``SetupFailed`` when a setup fails."""
        if not lesson.setup and not lesson.workshop_setup:
            return ""
        try:
            sandbox = await self.sandboxes.ready_sandbox(attendee_id, timeout=120)
            await self.setups.ensure(self.sandboxes.backend, sandbox, attendee_id, lesson)
        except SandboxUnavailable as unavailable:
            return str(unavailable)
        except SandboxGone:
            await self.sandboxes.ensure_for(attendee_id)
            return SANDBOX_RESTARTING
        return ""

    async def watch_tick(
        self, attendee_id: int, lesson: Lesson, task: Task, previous: tuple[str, ...]
    ) -> TaskRun:
        """One quiet re-check for watch mode: stored only when it passes (a pass is what the
        attendee waits for; storing every tick would make the attempt count meaningless), and
        shown only when the outcome changed."""
        found = self._current(lesson, task)
        if found is None:  # an edit removed it: the watch ends, nothing is stored
            return TaskRun(task.id, [], unavailable=TASK_REMOVED)
        lesson, task = found
        run = await self._execute(attendee_id, lesson, task, progress=None)
        if run.passed:
            await self._finish(attendee_id, task, run, store_attempt=True, watching=False)
        elif run.outcome() != previous:
            await self._finish(attendee_id, task, run, store_attempt=False, watching=True)
        return run

    def _current(self, lesson: Lesson, task: Task) -> tuple[Lesson, Task] | None:
        """``task`` as the workshop served now has it; None when it is gone."""
        workshop = self._workshop() if self._workshop else None
        return workshop.task(task.id) if workshop else (lesson, task)

    async def close(self) -> None:
        await self.watches.close()
        running = list(self._inflight.values())
        for run in running:
            run.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if "agents" in self.__dict__:
            await self.agents.aclose()

    async def _checked_by_attendee(self, attendee_id: int, lesson: Lesson, task: Task) -> TaskRun:
        self.sandboxes.touch(attendee_id)
        live: Progress = partial(publish.publish_check, self.events, attendee_id, task.id)
        run = await self._execute(attendee_id, lesson, task, progress=live)
        result = "unavailable" if run.unavailable else "passed" if run.passed else "failed"
        CHECK_SECONDS.observe(run.duration_ms / 1000, result=result)
        if run.passed:
            self.watches.stop(attendee_id, task.id)  # nothing left to wait for
        watching = self.watches.is_watching(attendee_id, task.id)
        # A sandbox that could not be used says nothing about the attendee's work: no attempt.
        await self._finish(
            attendee_id, task, run, store_attempt=not run.unavailable, watching=watching
        )
        return run

    async def _execute(
        self, attendee_id: int, lesson: Lesson, task: Task, progress: Progress | None
    ) -> TaskRun:
        started_at, started = utcnow(), time.perf_counter()
        finished: list[CheckResult] = []

        def remember(result: CheckResult) -> None:
            if result.finished:
                finished.append(result)
            if progress:
                progress(result)

        try:
            sandbox = await self.sandboxes.ready_sandbox(attendee_id, timeout=self.ready_timeout)
            backend = self.sandboxes.backend
            await self.setups.ensure(backend, sandbox, attendee_id, lesson, retry=False)
            async with self._turns:
                checks = await run_checks(self.agents, sandbox, task.checks, remember)
            unavailable = ""
        except SetupFailed as failed:  # checks on a half-prepared sandbox would mislead
            checks, unavailable = finished, str(failed)
        except SandboxUnavailable as error:
            checks, unavailable = finished, str(error) or SANDBOX_RESTARTING
        except SandboxGone:
            await self.sandboxes.ensure_for(attendee_id)
            checks, unavailable = finished, SANDBOX_RESTARTING
        duration_ms = round((time.perf_counter() - started) * 1000)
        return TaskRun(task.id, checks, started_at, duration_ms, unavailable)

    async def _finish(
        self, attendee_id: int, task: Task, run: TaskRun, *, store_attempt: bool, watching: bool
    ) -> None:
        save = self._store_attempt if store_attempt else self._read_progress
        progress = await asyncio.to_thread(save, attendee_id, run)
        summary = {
            **run.as_json(),
            "task_status": status_of(progress),
            "attempts": progress.attempts if progress else 0,
            "first_passed_at": _iso(progress.first_passed_at) if progress else None,
            "failed_check": progress.last_failed_check if progress else None,
            "watching": watching,
        }
        card = publish.task_card_html(
            task, status_of(progress), run.checks, notice=run.unavailable, watching=watching
        )
        publish.publish_task(self.events, attendee_id, summary, card)

    def _store_attempt(self, attendee_id: int, run: TaskRun) -> TaskProgress | None:
        return self.db.run_sync(
            lambda session: store.record_attempt(
                session,
                attendee_id,
                run.task_id,
                run.checks,
                started_at=run.started_at,
                duration_ms=run.duration_ms,
            )
        )

    def _read_progress(self, attendee_id: int, run: TaskRun) -> TaskProgress | None:
        return self.db.run_sync(
            lambda session: store.progress_of(session, attendee_id, run.task_id)
        )

    def _forget(self, key: tuple[int, str], run: asyncio.Task[TaskRun]) -> None:
        if self._inflight.get(key) is run:
            del self._inflight[key]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
