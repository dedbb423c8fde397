"""The sandbox service: one sandbox per attendee, made, handed out, woken and reset on demand.

Routes, the terminal and the checks use ``app.state.sandboxes``; the parts live in their own
modules: ``admission`` (the creation queue), ``pool`` (the warm pool), ``lifecycle`` (rows,
states, idle stop and max age) and ``reconcile`` (start-up). The end of this module connects it
to the backend named in the settings (``backends``); nothing here knows Docker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from app.config import Settings
from app.db import Database
from app.events import EventHub
from app.lessons.schema import Workshop
from app.models import Sandbox, utcnow
from app.sandboxes import backends
from app.sandboxes.admission import Admission
from app.sandboxes.base import (
    BackendHealth,
    Connection,
    Limits,
    SandboxBackend,
    SandboxError,
    SandboxSpec,
    SandboxState,
    SandboxUnavailable,
)
from app.sandboxes.disconnected import Disconnected
from app.sandboxes.lifecycle import KeyedLocks, Lifecycle
from app.sandboxes.naming import sandbox_name
from app.sandboxes.pool import WarmPool
from app.sandboxes.reconcile import ORPHAN_GRACE_SECONDS, ReconcileReport, reconcile
from app.sandboxes.records import SandboxRecords
from app.sandboxes.transitions import Transitions, default_message

log = logging.getLogger("labdeck.sandboxes")

ENGINE_WAIT_MESSAGE = (
    "Sandboxes are not available yet: the portal is waiting for its Docker engine. "
    "Try again in a minute."
)
ENGINE_TROUBLE_MESSAGE = (
    "The portal cannot reach the Docker engine that runs the sandboxes right now. "
    "Try again in a minute; if it persists, tell the instructor."
)
ALIVE = (SandboxState.READY, SandboxState.STARTING)
# After a failed connection to the engine, wait this long, then a bit longer each time.
RECONNECT_SECONDS = (2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class ServiceConfig:
    instance: str
    workshop: str
    image: str
    limits: Limits
    warm_pool_size: int = 2
    spawn_workers: int = 4
    idle_stop: float = 1800.0
    max_age: float = 8 * 3600.0
    create_timeout: float = 180.0
    reap_interval: float = 30.0
    watch_interval: float = 5.0  # how soon a sandbox stopped behind our back is noticed
    orphan_grace: float = ORPHAN_GRACE_SECONDS
    labels: Mapping[str, str] = field(default_factory=dict)  # e.g. io.labdeck.test=1

    @classmethod
    def from_settings(
        cls, settings: Settings, workshop: Workshop | None, **overrides: Any
    ) -> ServiceConfig:
        values: dict[str, Any] = {
            "instance": settings.instance,
            "workshop": workshop.slug if workshop else "",
            "image": settings.sandbox_image,
            "limits": limits_for(settings, workshop),
            "warm_pool_size": settings.warm_pool_size,
            "spawn_workers": settings.spawn_workers,
            "idle_stop": settings.sandbox_idle_stop,
            "max_age": settings.sandbox_max_age,
        }
        return cls(**{**values, **overrides})


def limits_for(settings: Settings, workshop: Workshop | None) -> Limits:
    """The settings' limits, with what the workshop's ``sandbox:`` block says on top."""
    wanted = workshop.meta.sandbox if workshop else None
    return Limits(
        memory=(wanted and wanted.memory) or settings.sandbox_memory,
        cpus=(wanted and wanted.cpus) or settings.sandbox_cpus,
        pids=(wanted and wanted.pids) or settings.sandbox_pids,
        log_size=settings.sandbox_log_size,
        disk_quota=settings.sandbox_disk_quota,
    )


@dataclass(frozen=True)
class SandboxView:
    """What an attendee's page (and the dashboard) shows about their sandbox."""

    state: str
    name: str | None = None
    position: int | None = None
    message: str = ""
    attendee_id: int | None = None
    ready_at: datetime | None = None
    last_activity_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClassView:
    """Every sandbox of the class at once, for the instructor's dashboard."""

    connected: bool
    problem: str | None
    sandboxes: dict[int, SandboxView]
    warm_pool: dict[str, int]
    waiting: int
    creating: int


class SandboxService:
    """One sandbox per attendee: ``ensure_for``, ``ready_sandbox``, ``touch`` and ``backend`` are
    what the terminal and the checks use; the rest is for the instructor and the CLI. Built over
    any ``SandboxBackend`` (FakeBackend in unit tests); ``start`` connects it."""

    def __init__(
        self,
        database: Database,
        events: EventHub,
        config: ServiceConfig,
        backend: SandboxBackend | None = None,
    ) -> None:
        self.config = config
        self.records = SandboxRecords(database, config.workshop)
        self.transitions = Transitions(self.records, events)
        placeholder = backend or Disconnected(ENGINE_WAIT_MESSAGE)
        self.lifecycle = Lifecycle(
            placeholder, self.transitions, idle_stop=config.idle_stop, max_age=config.max_age
        )
        self.admission = Admission(
            placeholder,
            self.transitions,
            workers=config.spawn_workers,
            create_timeout=config.create_timeout,
        )
        self.lifecycle.is_creating = self.admission.is_running
        self.pool = WarmPool(self.admission, self.lifecycle, self._new_spec, config.warm_pool_size)
        self.problem: str | None = None  # why sandboxes cannot be made right now, for /healthz
        self._connected = asyncio.Event()
        self._attendee_locks = KeyedLocks()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starting: set[str] = set()
        self._on_close: list[Callable[[], Awaitable[None]]] = []

    # -- the contract --------------------------------------------------------------------

    @property
    def backend(self) -> SandboxBackend:
        """The backend, for exec and open_tty on a name from ``ready_sandbox``."""
        return self.lifecycle.backend

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def ensure_for(self, attendee_id: int) -> SandboxView:
        """Make sure the attendee has, or is queued for, a sandbox; returns at once."""
        async with self._attendee_locks(attendee_id):
            row = await self.records.for_attendee(attendee_id)
            if row is None:
                row = await self._hand_out_or_queue(attendee_id)
            elif self.connected and row.state == SandboxState.STOPPED:
                self._start_in_background(row.container_name)
            elif self.connected and row.state == SandboxState.MISSING:
                row = await self._queue_again(row)
        self.touch(attendee_id)
        return self._view(row)

    async def ready_sandbox(self, attendee_id: int, timeout: float = 60) -> str:
        """The name of the attendee's sandbox once READY, starting or making it as needed.

        Raises ``SandboxUnavailable`` with a sentence for the attendee on timeout or failure."""
        try:
            return await self._ready_sandbox(attendee_id, timeout)
        except SandboxError as error:  # the engine itself failed us, e.g. it went away
            log.warning("ready_sandbox for attendee %s: %s", attendee_id, error)
            raise SandboxUnavailable(ENGINE_TROUBLE_MESSAGE) from error

    async def _ready_sandbox(self, attendee_id: int, timeout: float) -> str:
        deadline = asyncio.get_running_loop().time() + timeout
        retried_failed = False
        while True:
            if not self.connected:
                if not await _wait(self._connected, deadline):
                    raise SandboxUnavailable(self.problem or ENGINE_WAIT_MESSAGE)
                continue
            await self.ensure_for(attendee_id)
            found = await self._row_with_waiter(attendee_id)
            if found is None:
                continue  # reset meanwhile
            row, changed = found
            if row.state == SandboxState.READY:
                if await self.still_running(row.container_name):
                    return row.container_name
                continue
            if row.state == SandboxState.FAILED:
                if retried_failed:
                    raise SandboxUnavailable(row.message or "Your sandbox could not be created.")
                async with self._attendee_locks(attendee_id):
                    await self._queue_again(row)
                retried_failed = True
                continue
            if not await _wait(changed, deadline):
                raise SandboxUnavailable(self._still_waiting(row))

    async def _row_with_waiter(self, attendee_id: int) -> tuple[Sandbox, asyncio.Event] | None:
        """The attendee's row, read after taking the waiter for its next change: a change that
        lands while the row is read (in the database's thread) is never missed."""
        row = await self.records.for_attendee(attendee_id)
        if row is None:
            return None
        changed = self.transitions.waiter(row.container_name)
        fresh = await self.records.by_name(row.container_name)
        return None if fresh is None else (fresh, changed)

    def touch(self, attendee_id: int) -> None:
        """Record activity (terminal input, checks, page views). Never blocks."""
        self.lifecycle.activity.touch(attendee_id)

    # -- for the instructor and the CLI --------------------------------------------------

    def view(self, attendee_id: int) -> SandboxView | None:
        """The attendee's sandbox as their page shows it; None when none was asked for. Blocks:
        for plain ``def`` routes (in a thread)."""
        row = self.records.for_attendee_now(attendee_id)
        return None if row is None else self._view(row)

    async def reset(self, attendee_id: int) -> SandboxView:
        """Remove the attendee's sandbox (files, images and all) and give them a fresh one."""
        async with self._attendee_locks(attendee_id):
            row = await self.records.for_attendee(attendee_id)
            if row is not None:
                self.admission.cancel(row.container_name)
                await self.lifecycle.remove(
                    row.container_name, "Your sandbox was reset; a fresh one is on its way."
                )
            fresh = await self._hand_out_or_queue(attendee_id)
        log.info("reset the sandbox of attendee %s", attendee_id)
        return self._view(fresh)

    async def stop(self, attendee_id: int) -> None:
        """Stop it now, files and images kept; it starts again when the attendee returns."""
        row = await self.records.for_attendee(attendee_id)
        if row is not None and row.state == SandboxState.READY:
            await self.lifecycle.stop(
                row.container_name, "Stopped by the instructor; it starts again when you use it."
            )

    async def release(self, attendee_id: int) -> None:
        """Remove the attendee's sandbox, if any, and forget it (a join that did not finish)."""
        async with self._attendee_locks(attendee_id):
            row = await self.records.for_attendee(attendee_id)
            if row is not None:
                self.admission.cancel(row.container_name)
                await self.lifecycle.remove(row.container_name)

    async def remove(self, name: str) -> None:
        self.admission.cancel(name)
        await self.lifecycle.remove(name)

    async def prune(self, everything: bool = False) -> list[str]:
        return await self.lifecycle.prune(everything)

    async def pool_counts(self) -> dict[str, int]:
        """The warm pool's size, and how many of its sandboxes are ready and on their way."""
        return self.pool.counts_of(await self.records.all())

    def set_warm_pool_size(self, size: int) -> None:
        self.pool.resize(size)

    def class_view(self) -> ClassView:
        """Blocks: for plain ``def`` routes and threads."""
        rows = self.records.all_now()
        return ClassView(
            connected=self.connected,
            problem=self.problem,
            sandboxes={row.attendee_id: self._view(row) for row in rows if row.attendee_id},
            warm_pool=self.pool.counts_of(rows),
            waiting=self.admission.waiting,
            creating=self.admission.running,
        )

    # -- running -------------------------------------------------------------------------

    async def start(self, backend: SandboxBackend | None = None) -> ReconcileReport:
        """Reconcile with the backend, then run the creation workers, the pool and the reaper."""
        if backend is not None:
            self.lifecycle.backend = backend
            self.admission.backend = backend
        report = await reconcile(
            self.lifecycle, self.admission, self._spec_for, grace=self.config.orphan_grace
        )
        self.admission.start()
        self.run_in_background(self.pool.run())
        self.run_in_background(self.lifecycle.run(self.config.reap_interval))
        self.run_in_background(self.lifecycle.watch_running(self.config.watch_interval))
        self.problem = None
        self._connected.set()
        return report

    def connect_in_background(self, connect: Callable[[], Awaitable[Connection]]) -> None:
        """Keep calling ``connect`` until it returns a connection, then ``start`` with it."""
        self.run_in_background(self._connect(connect))

    async def _connect(self, connect: Callable[[], Awaitable[Connection]]) -> None:
        for attempt in range(1_000_000):
            try:
                connection = await connect()
            except Exception as error:  # any failure: say why, wait, try again
                self.problem = str(error) or type(error).__name__
                pause = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
                log.warning(
                    "sandboxes cannot start yet (%s); retrying in %.0f s", self.problem, pause
                )
                await asyncio.sleep(pause)
                continue
            if connection.close is not None:
                self.on_close(connection.close)
            for work in connection.background:
                self.run_in_background(work())
            await self.start(connection.backend)
            return

    async def health(self) -> BackendHealth:
        """The backend's health; while it is not connected yet, why not."""
        if not self.connected:
            return BackendHealth(engine=f"unreachable: {self.problem or 'connecting'}")
        return await self.backend.health()

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_close.append(callback)

    def run_in_background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop the background work. Sandboxes keep running: a portal restart never kills one."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.admission.close()
        self.lifecycle.activity.flush_now(self.records)
        for callback in self._on_close:
            await callback()
        self._connected.clear()

    def use_limits(self, limits: Limits) -> None:
        """Sandboxes made from now on get ``limits`` (a reloaded workshop's ``sandbox:`` block);
        those that exist keep theirs."""
        self.config = replace(self.config, limits=limits)

    # -- helpers -------------------------------------------------------------------------

    def _new_spec(self, attendee_id: int | None = None) -> SandboxSpec:
        return SandboxSpec(
            name=sandbox_name(self.config.instance),
            workshop=self.config.workshop,
            image=self.config.image,
            limits=self.config.limits,
            attendee=str(attendee_id or ""),
            labels=dict(self.config.labels),
        )

    def _spec_for(self, row: Sandbox) -> SandboxSpec:
        spec = self._new_spec(row.attendee_id)
        return replace(spec, name=row.container_name, workshop=row.workshop or spec.workshop)

    async def _hand_out_or_queue(self, attendee_id: int) -> Sandbox:
        asked = time.monotonic()
        handed = await self.pool.hand_out(attendee_id) if self.connected else None
        row = handed or await self._queue_new(attendee_id)
        self.transitions.time_hand_out(row, asked, "warm" if handed else "new")
        return row

    async def _queue_new(self, attendee_id: int) -> Sandbox:
        spec = self._new_spec(attendee_id)
        row = await self.records.add(spec.name, attendee_id)
        self.admission.submit(spec, attendee_id)
        return row

    async def _queue_again(self, row: Sandbox) -> Sandbox:
        """Make a failed or missing sandbox again under the same name (a stopped container
        of that name is started instead, files intact)."""
        now = utcnow()
        updated = await self.records.update(
            row.container_name, state="queued", message=None, created_at=now, ready_at=None
        )
        self.admission.submit(self._spec_for(row), row.attendee_id)
        return updated or row

    def _start_in_background(self, name: str) -> None:
        if name in self._starting:
            return
        self._starting.add(name)
        task = self.run_in_background(self.lifecycle.start(name))
        task.add_done_callback(lambda _: self._starting.discard(name))

    async def still_running(self, name: str) -> bool:
        """Whether a READY row's container still runs; fixes the row when it does not.

        ``list`` answers from the engine's container list in milliseconds, where ``status``
        would also ask the inner engine (~0.1 s): too slow for a warm hand-out."""
        async with self.lifecycle.locks(name):  # waits for a stop in progress
            found = [info for info in await self.backend.list() if info.name == name]
        state = found[0].state if found else SandboxState.MISSING
        if state in ALIVE:
            return True
        row = await self.records.by_name(name)
        if row is not None and row.state == SandboxState.READY:
            message = found[0].message if found else ""
            log.info("sandbox %s turned %s behind our back %s", name, state, message)
            if state != SandboxState.MISSING:
                state = SandboxState.STOPPED  # an exited or dead container: start it again
            await self.transitions.set_state(name, state, message)
        return False

    def _view(self, row: Sandbox) -> SandboxView:
        position = self.admission.position(row.container_name)
        return SandboxView(
            state=row.state,
            name=row.container_name,
            position=position,
            message=row.message or default_message(row.state, position),
            attendee_id=row.attendee_id,
            ready_at=row.ready_at,
            last_activity_at=row.last_activity_at,
        )

    def _still_waiting(self, row: Sandbox) -> str:
        position = self.admission.position(row.container_name)
        if position:
            return (
                f"Your sandbox is waiting for its turn (number {position} in the queue); "
                "try again in a few seconds."
            )
        if row.state == SandboxState.STOPPED:
            return "Your sandbox is starting again; try again in a few seconds."
        return "Your sandbox is starting; try again in a few seconds."


async def _wait(event: asyncio.Event, deadline: float) -> bool:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return False
    try:
        async with asyncio.timeout(remaining):
            await event.wait()
    except TimeoutError:
        return False
    return True


@asynccontextmanager
async def running_sandboxes(
    service: SandboxService,
    settings: Settings,
    workshop: Callable[[], Workshop | None],
    backend: SandboxBackend | None = None,
) -> AsyncIterator[SandboxService]:
    """Start ``service`` on ``backend`` (tests inject a FakeBackend) or, without one, connect the
    backend named in the settings in the background: the portal serves while the engine is down.
    ``workshop`` gives the workshop served at the time of asking (it may be reloaded)."""
    if backend is not None:
        await service.start(backend)
    else:
        service.connect_in_background(lambda: backends.connect(settings, workshop))
    try:
        yield service
    finally:
        await service.close()
