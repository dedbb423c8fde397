"""What happens to sandboxes over time: start, stop and remove them, stop idle ones and remove
old ones on a timer. Rows are app/sandboxes/records.py; state changes app/sandboxes/transitions.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.models import Sandbox, utcnow
from app.sandboxes.base import SandboxBackend, SandboxError, SandboxGone, SandboxState
from app.sandboxes.records import aware
from app.sandboxes.transitions import Activity, Transitions

log = logging.getLogger("labdeck.sandboxes")

# States in which a sandbox is on its way to READY; a worker or a start task owns it.
IN_PROGRESS = (SandboxState.QUEUED, SandboxState.CREATING, SandboxState.STARTING)


class KeyedLocks:
    """One asyncio.Lock per key (a sandbox name or an attendee id)."""

    def __init__(self) -> None:
        self._locks: defaultdict[object, asyncio.Lock] = defaultdict(asyncio.Lock)

    def __call__(self, key: object) -> asyncio.Lock:
        return self._locks[key]


@dataclass
class ReapReport:
    stopped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class Lifecycle:
    """Start, stop and remove sandboxes; stop idle ones and remove old ones on a timer."""

    def __init__(
        self,
        backend: SandboxBackend,
        transitions: Transitions,
        *,
        idle_stop: float,
        max_age: float,
    ) -> None:
        self.backend = backend
        self.transitions = transitions
        self.records = transitions.records
        self.activity = Activity()
        self.locks = KeyedLocks()
        self.idle_stop = timedelta(seconds=idle_stop)
        self.max_age = timedelta(seconds=max_age)
        # Whether a creation of that name is running (admission sets this). Such a sandbox is
        # never removed from here: removing it under a running create races the engine (which
        # then recreates its volume without labels). Its worker removes it once it sees the row
        # gone, in step with the backend.
        self.is_creating: Callable[[str], bool] = lambda _name: False

    async def start(self, name: str) -> None:
        """Start a stopped sandbox, files and images intact; MISSING when its container is gone."""
        async with self.locks(name):
            row = await self.records.by_name(name)
            if row is None or row.state != SandboxState.STOPPED:
                return
            try:
                async for stage in self.backend.start(name):
                    await self.transitions.set_state(name, stage)
            except SandboxGone:
                await self.transitions.set_state(name, SandboxState.MISSING)
            except SandboxError as error:
                # FAILED makes the next ready_sandbox create it again rather than loop on start.
                log.warning("starting sandbox %s failed: %s", name, error)
                await self.transitions.set_state(name, SandboxState.FAILED, _start_failed(error))

    async def stop(self, name: str, message: str = "") -> None:
        async with self.locks(name):
            await self.backend.stop(name)
            await self.transitions.set_state(name, SandboxState.STOPPED, message)

    async def remove(self, name: str, message: str = "Your sandbox was removed.") -> None:
        """Remove the container, its engine volume and its row. Idempotent."""
        async with self.locks(name):
            if not self.is_creating(name):
                await self.backend.remove(name)
            row = await self.records.by_name(name)
            await self.records.delete(name)
            if row is not None:
                self.transitions.removed(row, message)

    async def discard_unassigned(self, name: str) -> bool:
        """Remove a warm-pool sandbox unless an attendee got it meanwhile; True when removed.

        The row goes first, in one conditional delete, so a hand-out cannot pick it while its
        container is being removed (a creation still running sees the row gone and stops)."""
        if not await self.records.delete_unassigned(name):
            return False
        self.transitions.wake(name)
        if not self.is_creating(name):
            await self.backend.remove(name)
        return True

    async def reap(self, now: datetime | None = None) -> ReapReport:
        """Stop assigned sandboxes idle for ``idle_stop``; remove any older than ``max_age``."""
        now = now or utcnow()
        await self.activity.flush(self.records)
        report = ReapReport()
        for row in await self.records.all():
            if aware(row.created_at) <= now - self.max_age:
                if row.attendee_id is None:
                    await self.discard_unassigned(row.container_name)
                else:
                    await self.remove(row.container_name, _too_old(self.max_age))
                report.removed.append(row.container_name)
            elif self._idle(row, now) and await self._stop_if_still_idle(row.container_name, now):
                report.stopped.append(row.container_name)
        if report.stopped or report.removed:
            log.info("reaper stopped %s, removed %s", report.stopped, report.removed)
        return report

    def _idle(self, row: Sandbox, now: datetime) -> bool:
        # Warm-pool sandboxes wait for an owner; stopping them would make hand-out slow.
        if row.attendee_id is None or row.state != SandboxState.READY:
            return False
        last = aware(row.last_activity_at)
        pending = self.activity.last_seen(row.attendee_id)
        if pending is not None and pending > last:
            last = pending
        return last <= now - self.idle_stop

    async def _stop_if_still_idle(self, name: str, now: datetime) -> bool:
        async with self.locks(name):
            row = await self.records.by_name(name)
            if row is None or not self._idle(row, now):
                return False
            await self.backend.stop(name)
            await self.transitions.set_state(name, SandboxState.STOPPED, "")
            return True

    async def notice_stopped(self) -> list[str]:
        """Mark STOPPED the READY sandboxes whose container no longer runs (a `docker stop`
        or a crash behind our back), so pages and /api/me say so; they start again on use.
        Returns their names."""
        listed_at = utcnow()
        running = {
            info.name
            for info in await self.backend.list()
            if info.state in (SandboxState.READY, SandboxState.STARTING)
        }
        noticed = []
        for row in await self.records.all():
            # One that became ready after the list was taken is not in it, and runs.
            fresh = row.ready_at is not None and aware(row.ready_at) >= listed_at
            if row.state == SandboxState.READY and row.container_name not in running and not fresh:
                async with self.locks(row.container_name):
                    current = await self.records.by_name(row.container_name)
                    if current is None or current.state != SandboxState.READY:
                        continue
                    await self.transitions.set_state(row.container_name, SandboxState.STOPPED)
                noticed.append(row.container_name)
        if noticed:
            log.info("sandboxes stopped behind our back: %s", noticed)
        return noticed

    async def watch_running(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.notice_stopped()
            except Exception:  # the engine may be briefly away: the next round looks again
                log.exception("could not look at the running sandboxes")

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:  # one bad round must not end the reaper; the next one retries
                log.exception("the sandbox reaper failed this round")

    async def prune(self, everything: bool = False) -> list[str]:
        """Remove sandboxes nobody can use (stopped, failed, missing, too old), or all with
        ``everything``, plus containers of this instance that have no row. Returns the names."""
        now = utcnow()
        removed = []
        for row in await self.records.all():
            prunable = row.state in ("stopped", "failed", "missing")
            if everything or prunable or aware(row.created_at) <= now - self.max_age:
                await self.remove(row.container_name)
                removed.append(row.container_name)
        known = {row.container_name for row in await self.records.all()}
        for info in await self.backend.list():
            if info.name not in known | set(removed) and not self.is_creating(info.name):
                await self.backend.remove(info.name)
                removed.append(info.name)
        return removed


def _too_old(max_age: timedelta) -> str:
    hours = max_age.total_seconds() / 3600
    return (
        f"Your sandbox reached its maximum age ({hours:g} h) and was removed; "
        "a fresh one is made when you continue."
    )


def _start_failed(error: Exception) -> str:
    return f"Your sandbox did not start again ({error}); a new one is made when you try again."
