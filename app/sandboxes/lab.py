"""A throw-away LabDeck instance: its own database, sandbox and check services, on the backend
the settings name, and everything it made removed on the way out. `labdeck content verify`, the
benchmarks and the tests that prove tasks on real sandboxes use it (issues 12 and 15)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from app import db
from app.checks.service import CheckService
from app.config import Settings
from app.events import EventHub
from app.lessons.schema import Workshop
from app.models import Attendee
from app.sandboxes import backends
from app.sandboxes.base import Connection, SandboxError
from app.sandboxes.service import SandboxService, ServiceConfig


@dataclass
class Lab:
    """Sandboxes for one throw-away instance: what proofs, benchmarks and verify use."""

    sandboxes: SandboxService
    checks: CheckService
    events: EventHub
    db_engine: Engine
    workshop: str

    def add_attendee(self, name: str) -> int:
        with Session(self.db_engine) as session:
            attendee = Attendee(workshop=self.workshop, name=name, resume_key=secrets.token_hex(8))
            session.add(attendee)
            session.commit()
            assert attendee.id is not None
            return attendee.id

    async def sandbox_for(self, attendee_id: int, timeout: float = 300) -> str:
        return await self.sandboxes.ready_sandbox(attendee_id, timeout=timeout)


@asynccontextmanager
async def throwaway_lab(
    settings: Settings, workshop: Workshop, labels: Mapping[str, str] | None = None
) -> AsyncIterator[Lab]:
    """A sandbox service for ``settings.instance`` (which no portal may be serving) on the
    backend ``settings.sandbox_backend`` names, ready to make sandboxes; every sandbox, and what
    the backend set up for them, is removed on the way out, even after a failure or Ctrl-C."""
    labels = dict(labels or {})
    db.upgrade(settings.database_path)
    database = db.Database(settings.database_path)
    events = EventHub()
    config = ServiceConfig.from_settings(settings, workshop, warm_pool_size=0, labels=labels)
    sandboxes = SandboxService(database, events, config)
    checks = CheckService(
        sandboxes, events, database, ready_timeout=120, workers=settings.check_workers
    )
    connection: Connection | None = None
    try:
        connection = await _connect(settings, workshop, labels)
        await sandboxes.start(connection.backend)
        yield Lab(sandboxes, checks, events, database.engine, workshop.slug)
    finally:
        await checks.close()
        if sandboxes.connected:
            await sandboxes.prune(everything=True)
        await sandboxes.close()
        if connection is not None and connection.close is not None:
            await connection.close()
        database.close()


async def _connect(settings: Settings, workshop: Workshop, labels: Mapping[str, str]) -> Connection:
    """The backend's connection; raises ``SandboxError`` with the backend's sentence."""
    try:
        return await backends.connect_throwaway(settings, workshop, labels)
    except SandboxError:
        raise
    except Exception as error:  # each backend has its own errors; each carries a sentence
        raise SandboxError(str(error) or type(error).__name__) from error
