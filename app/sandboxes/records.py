"""The ``sandbox`` rows: the truth about who owns which sandbox (container labels are hints).

Every method runs its database work in the database's own threads (``Database.run``), never on
the event loop, and each is one transaction: the checks that must not race (claiming a warm
sandbox, discarding one nobody owns) are conditional writes, so two callers cannot both win.
Rows come back detached: read them, change them only through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.db import Database
from app.models import Sandbox, utcnow


class SandboxRecords:
    def __init__(self, database: Database, workshop: str) -> None:
        self.database = database
        self.workshop = workshop

    async def for_attendee(self, attendee_id: int) -> Sandbox | None:
        return await self.database.run(lambda session: _for_attendee(session, attendee_id))

    def for_attendee_now(self, attendee_id: int) -> Sandbox | None:
        """``for_attendee`` for code already off the event loop (plain ``def`` routes)."""
        return self.database.run_sync(lambda session: _for_attendee(session, attendee_id))

    async def by_name(self, name: str) -> Sandbox | None:
        return await self.database.run(lambda session: _by_name(session, name))

    async def all(self) -> list[Sandbox]:
        """Every row of this instance's database, whichever workshop it was made for."""
        return await self.database.run(_all)

    def all_now(self) -> list[Sandbox]:
        return self.database.run_sync(_all)

    async def unassigned(self) -> list[Sandbox]:
        """This workshop's warm-pool rows, oldest first."""
        return await self.database.run(lambda session: _unassigned(session, self.workshop))

    async def add(self, name: str, attendee_id: int | None) -> Sandbox:
        row = Sandbox(
            workshop=self.workshop, attendee_id=attendee_id, container_name=name, state="queued"
        )
        return await self.database.run(lambda session: _save(session, row))

    async def update(self, name: str, **values: Any) -> Sandbox | None:
        return await self.database.run(lambda session: _update(session, name, values))

    async def delete(self, name: str) -> None:
        await self.database.run(lambda session: _delete(session, name))

    async def delete_unassigned(self, name: str) -> bool:
        """Delete the row unless an attendee owns it; True when it was deleted."""
        return await self.database.run(lambda session: _delete_unassigned(session, name))

    async def claim_unassigned(self, attendee_id: int, states: Iterable[str]) -> Sandbox | None:
        """Give the oldest warm-pool row in one of ``states`` (in that order of preference) to
        the attendee, or None. Its age starts now: ``sandbox_max_age`` counts from hand-out."""
        wanted = [str(state) for state in states]
        return await self.database.run(
            lambda session: _claim(session, self.workshop, attendee_id, wanted)
        )

    async def record_activity(self, seen: dict[int, datetime]) -> None:
        if seen:
            await self.database.run(lambda session: _record_activity(session, seen))

    def record_activity_now(self, seen: dict[int, datetime]) -> None:
        if seen:
            self.database.run_sync(lambda session: _record_activity(session, seen))


def _for_attendee(session: Session, attendee_id: int) -> Sandbox | None:
    query = select(Sandbox).where(Sandbox.attendee_id == attendee_id)
    return session.exec(query.order_by(col(Sandbox.id).desc())).first()


def _by_name(session: Session, name: str) -> Sandbox | None:
    return session.exec(select(Sandbox).where(Sandbox.container_name == name)).first()


def _all(session: Session) -> list[Sandbox]:
    return list(session.exec(select(Sandbox).order_by(col(Sandbox.id))))


def _unassigned(session: Session, workshop: str) -> list[Sandbox]:
    query = select(Sandbox).where(Sandbox.workshop == workshop, col(Sandbox.attendee_id).is_(None))
    return list(session.exec(query.order_by(col(Sandbox.id))))


def _save(session: Session, row: Sandbox) -> Sandbox:
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def _update(session: Session, name: str, values: dict[str, Any]) -> Sandbox | None:
    row = _by_name(session, name)
    if row is None:
        return None
    for key, value in values.items():
        setattr(row, key, value)
    return _save(session, row)


def _delete(session: Session, name: str) -> None:
    session.execute(delete(Sandbox).where(col(Sandbox.container_name) == name))
    session.commit()


def _delete_unassigned(session: Session, name: str) -> bool:
    result = session.execute(
        delete(Sandbox).where(
            col(Sandbox.container_name) == name, col(Sandbox.attendee_id).is_(None)
        )
    )
    session.commit()
    return _changed(result)


def _claim(session: Session, workshop: str, attendee_id: int, wanted: list[str]) -> Sandbox | None:
    candidates = [row for row in _unassigned(session, workshop) if row.state in wanted]
    candidates.sort(key=lambda row: wanted.index(row.state))
    now = utcnow()
    for row in candidates:
        # Only if still nobody's: another thread may have claimed it since the read above.
        result = session.execute(
            update(Sandbox)
            .where(col(Sandbox.id) == row.id, col(Sandbox.attendee_id).is_(None))
            .values(attendee_id=attendee_id, created_at=now, last_activity_at=now)
        )
        session.commit()
        if _changed(result):
            return _by_name(session, row.container_name)
    return None


def _changed(result: Any) -> bool:
    """Whether an UPDATE or DELETE touched a row (a CursorResult; typed as Result)."""
    return bool(result.rowcount)


def _record_activity(session: Session, seen: dict[int, datetime]) -> None:
    query = select(Sandbox).where(col(Sandbox.attendee_id).in_(list(seen)))
    for row in session.exec(query):
        assert row.attendee_id is not None
        row.last_activity_at = max(aware(row.last_activity_at), seen[row.attendee_id])
        session.add(row)
    session.commit()


def aware(moment: datetime) -> datetime:
    # SQLite hands naive datetimes back on some paths; every datetime here is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
