"""Fixtures for check tests without Docker, over the fakes of tests/support/checks.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app import db
from app.checks.service import CheckService
from app.events import EventHub
from app.lessons.loader import load_workshop
from app.lessons.schema import Workshop
from tests.support.checks import DEMO_CONTENT, FakeSandboxes, ShellBackend, add_attendee
from tests.support.database import open_database


@pytest.fixture
def demo_workshop() -> Workshop:
    return load_workshop(DEMO_CONTENT / "check-demo")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[db.Database]:
    found = open_database(tmp_path / "checks.db")
    yield found
    found.close()


@pytest.fixture
def db_engine(database: db.Database) -> Engine:
    return database.engine


@pytest.fixture
def attendee_id(db_engine: Engine) -> int:
    return add_attendee(db_engine)


@pytest.fixture
def shell_backend(tmp_path: Path) -> ShellBackend:
    return ShellBackend(tmp_path / "sandboxes")


@pytest.fixture
def sandboxes(shell_backend: ShellBackend) -> FakeSandboxes:
    return FakeSandboxes(shell_backend)


@pytest.fixture
async def service(sandboxes: FakeSandboxes, database: db.Database) -> AsyncIterator[CheckService]:
    checks = CheckService(sandboxes, EventHub(), database, ready_timeout=2)
    yield checks
    await checks.close()
