"""`labdeck sandboxes ls|rm|prune|stats`, over the fake backend and once against the engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from app import db
from app.events import EventHub
from app.models import Attendee, utcnow
from app.sandboxes import cli
from app.sandboxes.base import Connection, Limits, SandboxSpec
from app.sandboxes.cli import ago, sandboxes_app
from app.sandboxes.fake import FakeBackend
from app.sandboxes.service import SandboxService
from tests.support.sandboxes import database, unit_config

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def fake_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    """Ada with a running sandbox, Bob with a stopped one, one warm sandbox and one orphan."""
    path, backend = database(tmp_path).path, FakeBackend()

    async def offline_service(_settings: object) -> tuple[SandboxService, Connection]:
        service = SandboxService(db.Database(path), EventHub(), unit_config(), backend)
        return service, Connection(backend=backend)

    monkeypatch.setattr(cli, "offline_service", offline_service)
    asyncio.run(_seat_the_class(path, backend))
    yield backend


async def _seat_the_class(path: Path, backend: FakeBackend) -> None:
    database = db.Database(path)
    engine = database.engine
    service = SandboxService(database, EventHub(), unit_config(), backend)
    for name, person in (("sbx-ada", "Ada"), ("sbx-bob", "Bob"), ("sbx-warm", None)):
        attendee_id = None
        if person:
            with Session(engine) as session:
                row = Attendee(workshop="docker-basics", name=person, resume_key=person)
                session.add(row)
                session.commit()
                attendee_id = row.id
        await service.records.add(name, attendee_id)
        await _create(backend, name)
        await service.records.update(name, state="ready")
    await backend.stop("sbx-bob")
    await service.records.update("sbx-bob", state="stopped")
    await _create(backend, "sbx-orphan")
    database.close()


async def _create(backend: FakeBackend, name: str) -> None:
    async for _ in backend.create(SandboxSpec(name, "docker-basics", "i", Limits())):
        pass


def test_ls_shows_owner_state_age_idle_and_memory(fake_class: FakeBackend) -> None:
    result = runner.invoke(sandboxes_app, ["ls"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "sbx-" in line]
    lines = {line.split("│")[1].strip(): line for line in rows}
    assert all(word in lines["sbx-ada"] for word in ("Ada", "ready", "40 MiB"))
    assert "stopped" in lines["sbx-bob"] and "MiB" not in lines["sbx-bob"]
    assert "(warm pool)" in lines["sbx-warm"]
    assert "orphan" in lines["sbx-orphan"]


def test_rm_removes_one_and_refuses_unknown_names(fake_class: FakeBackend) -> None:
    assert runner.invoke(sandboxes_app, ["rm", "sbx-ada"]).exit_code == 0
    assert "sbx-ada" not in fake_class.sandboxes
    missing = runner.invoke(sandboxes_app, ["rm", "sbx-nobody"])
    assert missing.exit_code == 1 and "There is no sandbox" in missing.output


def test_prune_removes_stopped_and_orphans_and_all_with_the_flag(fake_class: FakeBackend) -> None:
    result = runner.invoke(sandboxes_app, ["prune"])
    assert result.exit_code == 0 and "Removed 2" in result.output
    assert set(fake_class.sandboxes) == {"sbx-ada", "sbx-warm"}
    assert "Removed 2" in runner.invoke(sandboxes_app, ["prune", "--all"]).output
    assert fake_class.sandboxes == {}


def test_stats_lists_running_sandboxes_and_a_total(fake_class: FakeBackend) -> None:
    result = runner.invoke(sandboxes_app, ["stats"])
    assert result.exit_code == 0
    assert "sbx-ada" in result.output and "sbx-bob" not in result.output
    assert "total (3)" in result.output and "120 MiB" in result.output


def test_ages_read_like_a_clock() -> None:
    from datetime import timedelta

    now = utcnow()
    assert [ago(now - timedelta(seconds=s), now) for s in (5, 125, 7300)] == ["5s", "2m", "2h01m"]
    assert ago(None, now) == "-"


@pytest.mark.docker
def test_the_commands_work_against_the_engine(tmp_path: Path) -> None:
    env = {
        "LABDECK_DATA_DIR": str(tmp_path / "data"),
        "LABDECK_INSTANCE": f"test-cli-{os.getpid()}",
        "COLUMNS": "200",
    }
    for command in (["ls"], ["stats"], ["prune"]):
        result = runner.invoke(sandboxes_app, command, env=env)
        assert result.exit_code == 0, result.output
    missing = runner.invoke(sandboxes_app, ["rm", "test-cli-nothing"], env=env)
    assert missing.exit_code == 1
