"""Where each sandbox stands and how it moves: its row, who waits on it, idle stop and max age.

The ``sandbox`` table is the truth about who owns which sandbox; container labels are hints.
Every state change goes through ``Transitions.set_state``: it writes the row, wakes whoever waits
on that sandbox and tells the attendee's page and the instructor's dashboard.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.events import INSTRUCTOR_TOPIC, EventHub, attendee_topic
from app.models import Sandbox, utcnow
from app.sandboxes.base import SandboxBackend, SandboxError, SandboxGone, SandboxState

log = logging.getLogger("labdeck.sandboxes")

# States in which a sandbox is on its way to READY; a worker or a start task owns it.
IN_PROGRESS = (SandboxState.QUEUED, SandboxState.CREATING, SandboxState.STARTING)


class SandboxRecords:
    """The ``sandbox`` rows. Rows come back detached: read them, change them only through here."""

    def __init__(self, engine: Engine, workshop: str) -> None:
        self.engine = engine
        self.workshop = workshop

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def for_attendee(self, attendee_id: int) -> Sandbox | None:
        with self._session() as session:
            query = select(Sandbox).where(Sandbox.attendee_id == attendee_id)
            return session.exec(query.order_by(col(Sandbox.id).desc())).first()

    def by_name(self, name: str) -> Sandbox | None:
        with self._session() as session:
            return session.exec(select(Sandbox).where(Sandbox.container_name == name)).first()

    def all(self) -> list[Sandbox]:
        """Every row of this instance's database, whichever workshop it was made for."""
        with self._session() as session:
            return list(session.exec(select(Sandbox).order_by(col(Sandbox.id))))

    def unassigned(self) -> list[Sandbox]:
        """This workshop's warm-pool rows, oldest first."""
        with self._session() as session:
            query = select(Sandbox).where(
                Sandbox.workshop == self.workshop, col(Sandbox.attendee_id).is_(None)
            )
            return list(session.exec(query.order_by(col(Sandbox.id))))

    def add(self, name: str, attendee_id: int | None) -> Sandbox:
        row = Sandbox(
            workshop=self.workshop, attendee_id=attendee_id, container_name=name, state="queued"
        )
        with self._session() as session:
            session.add(row)
            session.commit()
            session.refresh(row)
        return row

    def update(self, name: str, **values: Any) -> Sandbox | None:
        with self._session() as session:
            row = session.exec(select(Sandbox).where(Sandbox.container_name == name)).first()
            if row is None:
                return None
            for key, value in values.items():
                setattr(row, key, value)
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def delete(self, name: str) -> None:
        with self._session() as session:
            row = session.exec(select(Sandbox).where(Sandbox.container_name == name)).first()
            if row is not None:
                session.delete(row)
                session.commit()

    def claim_unassigned(self, attendee_id: int, states: Iterable[str]) -> Sandbox | None:
        """Give the oldest warm-pool row in one of ``states`` to the attendee, or None.

        No ``await`` happens between the read and the write, so two attendees cannot claim the
        same row in this process. Its age starts now: ``sandbox_max_age`` counts from hand-out."""
        wanted = [str(state) for state in states]
        candidates = [row for row in self.unassigned() if row.state in wanted]
        if not candidates:
            return None
        candidates.sort(key=lambda row: wanted.index(row.state))
        now = utcnow()
        return self.update(
            candidates[0].container_name,
            attendee_id=attendee_id,
            created_at=now,
            last_activity_at=now,
        )

    def record_activity(self, seen: dict[int, datetime]) -> None:
        if not seen:
            return
        with self._session() as session:
            query = select(Sandbox).where(col(Sandbox.attendee_id).in_(list(seen)))
            for row in session.exec(query):
                assert row.attendee_id is not None
                row.last_activity_at = max(_aware(row.last_activity_at), seen[row.attendee_id])
                session.add(row)
            session.commit()


def _aware(moment: datetime) -> datetime:
    # SQLite hands naive datetimes back on some paths; every datetime here is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


class Transitions:
    """State changes: the row, the waiters, and the events for the attendee and the instructor."""

    def __init__(self, records: SandboxRecords, events: EventHub) -> None:
        self.records = records
        self.events = events
        self._waiters: dict[str, asyncio.Event] = {}

    def waiter(self, name: str) -> asyncio.Event:
        """An event set at the next change of ``name``. Take it before awaiting anything."""
        return self._waiters.setdefault(name, asyncio.Event())

    def wake(self, name: str) -> None:
        event = self._waiters.pop(name, None)
        if event is not None:
            event.set()

    def set_state(self, name: str, state: SandboxState, message: str = "") -> Sandbox | None:
        values: dict[str, Any] = {"state": str(state), "message": message or None}
        if state is SandboxState.READY:
            values["ready_at"] = utcnow()
        row = self.records.update(name, **values)
        self.wake(name)
        if row is not None:
            self.publish(row)
        return row

    def publish(self, row: Sandbox, position: int | None = None) -> None:
        if row.attendee_id is not None:
            message = row.message or default_message(row.state, position)
            self._announce(row.attendee_id, row.container_name, row.state, message, position)

    def removed(self, row: Sandbox, message: str) -> None:
        """Tell the owner their sandbox is gone; a fresh one is made when they come back."""
        self.wake(row.container_name)
        if row.attendee_id is not None:
            self._announce(row.attendee_id, row.container_name, SandboxState.STOPPED, message, None)

    def announce_position(self, attendee_id: int, name: str, position: int) -> None:
        """A new place in the queue: for the attendee only, the dashboard needs no such detail."""
        message = default_message(SandboxState.QUEUED, position)
        self._announce(attendee_id, name, SandboxState.QUEUED, message, position, instructor=False)

    def _announce(
        self,
        attendee_id: int,
        name: str,
        state: str,
        message: str,
        position: int | None,
        *,
        instructor: bool = True,
    ) -> None:
        self.events.publish(
            attendee_topic(attendee_id),
            {
                "type": "sandbox",
                "state": str(state),
                "position": position,
                "message": message,
                "name": name,
            },
        )
        if instructor:
            self.events.publish(
                INSTRUCTOR_TOPIC,
                {"type": "sandbox", "attendee_id": attendee_id, "state": str(state)},
            )


def default_message(state: str, position: int | None = None) -> str:
    if state == SandboxState.QUEUED:
        place = f" (number {position} in the queue)" if position else ""
        return f"Your sandbox is waiting for its turn{place}."
    return {
        SandboxState.CREATING: "Creating your sandbox.",
        SandboxState.STARTING: "Starting the Docker engine in your sandbox.",
        SandboxState.READY: "Your sandbox is ready.",
        SandboxState.STOPPED: "Your sandbox is stopped; it starts again when you use it.",
        SandboxState.FAILED: "Your sandbox could not be created.",
        SandboxState.MISSING: "Your sandbox is gone; a new one is made when you use it.",
    }.get(SandboxState(state), "")


class Activity:
    """``touch`` only writes a dict; the reaper flushes it to the database before it decides."""

    def __init__(self) -> None:
        self._seen: dict[int, datetime] = {}

    def touch(self, attendee_id: int) -> None:
        self._seen[attendee_id] = utcnow()

    def last_seen(self, attendee_id: int | None) -> datetime | None:
        return None if attendee_id is None else self._seen.get(attendee_id)

    def flush(self, records: SandboxRecords) -> None:
        seen, self._seen = self._seen, {}
        records.record_activity(seen)


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
            row = self.records.by_name(name)
            if row is None or row.state != SandboxState.STOPPED:
                return
            try:
                async for stage in self.backend.start(name):
                    self.transitions.set_state(name, stage)
            except SandboxGone:
                self.transitions.set_state(name, SandboxState.MISSING)
            except SandboxError as error:
                # FAILED makes the next ready_sandbox create it again rather than loop on start.
                log.warning("starting sandbox %s failed: %s", name, error)
                self.transitions.set_state(name, SandboxState.FAILED, _start_failed(error))

    async def stop(self, name: str, message: str = "") -> None:
        async with self.locks(name):
            await self.backend.stop(name)
            self.transitions.set_state(name, SandboxState.STOPPED, message)

    async def remove(self, name: str, message: str = "Your sandbox was removed.") -> None:
        """Remove the container, its engine volume and its row. Idempotent."""
        async with self.locks(name):
            if not self.is_creating(name):
                await self.backend.remove(name)
            row = self.records.by_name(name)
            self.records.delete(name)
            if row is not None:
                self.transitions.removed(row, message)

    async def discard_unassigned(self, name: str) -> bool:
        """Remove a warm-pool sandbox unless an attendee got it meanwhile; True when removed.

        The row goes first, in the same step as the check, so a hand-out cannot pick it while
        its container is being removed (a creation still running sees the row gone and stops)."""
        row = self.records.by_name(name)
        if row is None or row.attendee_id is not None:
            return False
        self.records.delete(name)
        self.transitions.wake(name)
        if not self.is_creating(name):
            await self.backend.remove(name)
        return True

    async def reap(self, now: datetime | None = None) -> ReapReport:
        """Stop assigned sandboxes idle for ``idle_stop``; remove any older than ``max_age``."""
        now = now or utcnow()
        self.activity.flush(self.records)
        report = ReapReport()
        for row in self.records.all():
            if _aware(row.created_at) <= now - self.max_age:
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
        last = _aware(row.last_activity_at)
        pending = self.activity.last_seen(row.attendee_id)
        if pending is not None and pending > last:
            last = pending
        return last <= now - self.idle_stop

    async def _stop_if_still_idle(self, name: str, now: datetime) -> bool:
        async with self.locks(name):
            row = self.records.by_name(name)
            if row is None or not self._idle(row, now):
                return False
            await self.backend.stop(name)
            self.transitions.set_state(name, SandboxState.STOPPED, "")
            return True

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
        for row in self.records.all():
            prunable = row.state in ("stopped", "failed", "missing")
            if everything or prunable or _aware(row.created_at) <= now - self.max_age:
                await self.remove(row.container_name)
                removed.append(row.container_name)
        known = {row.container_name for row in self.records.all()}
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
