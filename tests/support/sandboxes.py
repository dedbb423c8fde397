"""The sandbox service over the fake backend, for the tests of tests/sandboxes/: ``harness``
builds a service on a real SQLite file (the session's migrated template, copied), with
FakeBackend underneath and no Docker at all."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app import db
from app.events import EventHub, Subscription
from app.models import Attendee, Sandbox
from app.sandboxes.base import Limits
from app.sandboxes.fake import FakeBackend
from app.sandboxes.service import SandboxService, ServiceConfig
from tests.support.database import open_database


@dataclass
class Harness:
    service: SandboxService
    backend: FakeBackend
    events: EventHub
    engine: Engine
    _names: list[str] = field(default_factory=list)

    def attendee(self) -> int:
        with Session(self.engine) as session:
            person = Attendee(
                workshop="docker-basics",
                name=f"a{len(self._names)}-{secrets.token_hex(2)}",
                resume_key=secrets.token_hex(8),
            )
            session.add(person)
            session.commit()
            assert person.id is not None
            self._names.append(person.name)
            return person.id

    def row(self, attendee_id: int) -> Sandbox:
        row = self.service.records.for_attendee_now(attendee_id)
        assert row is not None
        return row

    def creates(self) -> int:
        return sum(call == "create" for call, _ in self.backend.calls)


def unit_config(**overrides: Any) -> ServiceConfig:
    values: dict[str, Any] = {
        "instance": "test-unit",
        "workshop": "docker-basics",
        "image": "labdeck/sandbox:latest",
        "limits": Limits(),
        "warm_pool_size": 0,
        "spawn_workers": 2,
        "create_timeout": 5.0,
        "reap_interval": 3600.0,
    }
    return ServiceConfig(**{**values, **overrides})


def database(tmp_path: Path) -> db.Database:
    return open_database(tmp_path / "labdeck.db")


@asynccontextmanager
async def harness(
    tmp_path: Path,
    backend: FakeBackend | None = None,
    *,
    start: bool = True,
    engine: db.Database | None = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    backend = backend or FakeBackend()
    database_ = engine or database(tmp_path)
    events = EventHub()
    service = SandboxService(database_, events, unit_config(**overrides), backend)
    service.pool.refill_quiet = 0.0
    if start:
        await service.start()
    try:
        yield Harness(service, backend, events, database_.engine)
    finally:
        await service.close()


async def drain(
    subscription: Subscription, until_state: str, limit: float = 5
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(limit):
        while not seen or seen[-1]["state"] != until_state:
            seen.append(await subscription.get())
    return seen


@asynccontextmanager
async def recording(events: EventHub, topics: list[str]) -> AsyncIterator[dict[str, list[Any]]]:
    """Every event of each topic, one subscription per topic (each has its own queue limit)."""
    seen: dict[str, list[Any]] = {topic: [] for topic in topics}

    async def pump(topic: str) -> None:
        async with events.subscribe(topic) as subscription:
            async for event in subscription:
                seen[topic].append(event)

    tasks = [asyncio.create_task(pump(topic)) for topic in topics]
    await asyncio.sleep(0)  # let them subscribe
    try:
        yield seen
    finally:
        await asyncio.sleep(0.05)  # let them take what was published last
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
