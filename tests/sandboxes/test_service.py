"""The sandbox service over the fake backend: the contract terminal and checks rely on.

``harness`` (tests/support/sandboxes.py) builds a service on a real SQLite file made by the
migrations, with FakeBackend underneath and no Docker at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from app.config import Settings
from app.events import INSTRUCTOR_TOPIC, EventHub, attendee_topic
from app.lessons.schema import SandboxResources, Workshop, WorkshopMeta
from app.models import Attendee
from app.sandboxes.base import SandboxError
from app.sandboxes.fake import FakeBackend
from app.sandboxes.service import (
    ENGINE_WAIT_MESSAGE,
    SandboxService,
    SandboxUnavailable,
    ServiceConfig,
    limits_for,
    running_sandboxes,
)
from tests.support.sandboxes import database, drain, harness

pytestmark = pytest.mark.anyio


async def test_a_new_attendee_is_queued_then_streams_real_stages_to_ready(tmp_path: Path) -> None:
    async with harness(tmp_path, FakeBackend(create_delay=0.05)) as h:
        me = h.attendee()
        async with h.events.subscribe(attendee_topic(me), INSTRUCTOR_TOPIC) as sub:
            view = await h.service.ensure_for(me)
            assert view.state == "queued" and view.name
            name = await h.service.ready_sandbox(me, timeout=5)
            events = await drain(sub, "ready")
    assert name == view.name
    mine = [e for e in events if e["topic"] == attendee_topic(me)]
    assert [e["state"] for e in mine] == ["queued", "creating", "starting", "ready"]
    assert mine[0]["position"] == 1 and all(e["type"] == "sandbox" for e in mine)
    assert all(e["message"] for e in mine)
    instructor = [e for e in events if e["topic"] == INSTRUCTOR_TOPIC]
    assert {"type": "sandbox", "attendee_id": me, "state": "creating"} in [
        {k: v for k, v in e.items() if k != "topic"} for e in instructor
    ]


async def test_one_sandbox_per_attendee_even_when_asked_at_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        me = h.attendee()
        views = await asyncio.gather(*(h.service.ensure_for(me) for _ in range(5)))
        names = await asyncio.gather(*(h.service.ready_sandbox(me) for _ in range(5)))
        assert len({v.name for v in views} | set(names)) == 1
        assert h.creates() == 1
        assert h.row(me).state == "ready" and h.row(me).ready_at is not None


async def test_a_crashed_sandbox_is_made_again_on_the_next_ready_sandbox(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        me = h.attendee()
        name = await h.service.ready_sandbox(me)
        h.backend.crash(name)
        assert await h.service.ready_sandbox(me) == name
        assert h.creates() == 2 and h.backend.is_running(name)


async def test_a_sandbox_stopped_behind_our_back_is_started_again(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        me = h.attendee()
        name = await h.service.ready_sandbox(me)
        original = h.backend.sandboxes[name]
        await h.backend.stop(name)
        assert await h.service.ready_sandbox(me) == name
        assert h.backend.sandboxes[name] is original  # same sandbox: files intact
        assert ("start", name) in h.backend.calls and h.creates() == 1


async def test_never_ready_times_out_with_a_sentence_then_fails_after_one_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(tmp_path, FakeBackend(never_ready=True), create_timeout=0.2) as h:
        me = h.attendee()
        with pytest.raises(SandboxUnavailable, match="starting; try again in a few seconds"):
            await h.service.ready_sandbox(me, timeout=0.1)
        async with h.events.subscribe(attendee_topic(me)) as sub:
            await drain(sub, "failed")
        assert h.creates() == 2
        row = h.row(me)
        assert row.state == "failed"
        assert "did not answer within 0.2 s" in (row.message or "")
        assert not h.backend.sandboxes  # nothing half-made stays
    assert any(
        r.levelname == "ERROR" and row.container_name in r.getMessage() for r in caplog.records
    )


async def test_ready_sandbox_tries_a_failed_sandbox_once_more(tmp_path: Path) -> None:
    async with harness(tmp_path, FakeBackend(fail_create_times=2)) as h:
        me = h.attendee()
        await h.service.ensure_for(me)
        async with h.events.subscribe(attendee_topic(me)) as sub:
            await drain(sub, "failed")
        name = await h.service.ready_sandbox(me, timeout=5)
        assert h.row(me).state == "ready" and h.creates() == 3
        assert name == h.row(me).container_name


async def test_an_engine_failure_reaches_the_attendee_as_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with harness(tmp_path) as h:
        me = h.attendee()
        await h.service.ready_sandbox(me)

        async def engine_gone() -> list[Any]:
            raise SandboxError("Connection refused")

        monkeypatch.setattr(h.backend, "list", engine_gone)
        with pytest.raises(SandboxUnavailable, match="cannot reach the Docker engine"):
            await h.service.ready_sandbox(me)


async def test_stop_then_ready_sandbox_starts_it_transparently(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        me = h.attendee()
        name = await h.service.ready_sandbox(me)
        await h.service.stop(me)
        assert h.row(me).state == "stopped"
        view = await h.service.ensure_for(me)  # a page view starts it in the background
        assert view.state == "stopped"
        assert await h.service.ready_sandbox(me) == name
        assert h.creates() == 1


async def test_reset_removes_the_sandbox_and_makes_a_fresh_one(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        me = h.attendee()
        old = await h.service.ready_sandbox(me)
        view = await h.service.reset(me)
        assert view.name != old and old not in h.backend.sandboxes
        assert await h.service.ready_sandbox(me) == view.name


async def test_reset_while_creating_leaves_nothing_of_the_old_one(tmp_path: Path) -> None:
    async with harness(tmp_path, FakeBackend(create_delay=0.2)) as h:
        me = h.attendee()
        async with h.events.subscribe(attendee_topic(me)) as sub:
            old = (await h.service.ensure_for(me)).name
            await drain(sub, "starting")
        fresh = (await h.service.reset(me)).name
        assert await h.service.ready_sandbox(me) == fresh
        async with asyncio.timeout(2):
            while old in h.backend.sandboxes:  # its worker removes it at its next stage
                await asyncio.sleep(0.01)
        assert ("remove", old) in h.backend.calls


async def test_reset_while_queued_drops_the_queued_creation(tmp_path: Path) -> None:
    slow = FakeBackend(create_delay=0.3)
    async with harness(tmp_path, slow, spawn_workers=1) as h:
        first, second = h.attendee(), h.attendee()
        async with h.events.subscribe(attendee_topic(first)) as sub:
            await h.service.ensure_for(first)
            await drain(sub, "creating")
        queued = await h.service.ensure_for(second)
        assert queued.position == 1
        fresh = await h.service.reset(second)
        await h.service.ready_sandbox(second)
        assert queued.name not in {name for _, name in slow.calls if _ == "create"}
        assert fresh.name in slow.sandboxes


async def test_without_engine_pages_still_get_a_view_and_checks_a_sentence(tmp_path: Path) -> None:
    engine = database(tmp_path)
    async with harness(tmp_path, engine=engine, start=False) as h:
        h.service.lifecycle.backend = h.service.admission.backend = _disconnected(h.service)
        me = h.attendee()
        assert (await h.service.ensure_for(me)).state == "queued"
        with pytest.raises(SandboxUnavailable) as raised:
            await h.service.ready_sandbox(me, timeout=0.05)
        assert str(raised.value) == ENGINE_WAIT_MESSAGE
        # The engine comes back: the queued attendee is served without asking again.
        await h.service.start(h.backend)
        assert await h.service.ready_sandbox(me, timeout=5) == h.row(me).container_name


def _disconnected(service: SandboxService) -> Any:
    from app.sandboxes.disconnected import Disconnected

    return Disconnected(ENGINE_WAIT_MESSAGE)


async def test_class_view_lists_each_attendee_and_the_pool(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=1) as h:
        me = h.attendee()
        await h.service.ready_sandbox(me)
        view = h.service.class_view()
        assert view.connected and view.sandboxes[me].state == "ready"
        assert view.warm_pool["size"] == 1
        assert view.sandboxes[me].as_dict()["name"] == h.row(me).container_name


def test_workshop_limits_override_the_settings(settings: Settings) -> None:
    meta = WorkshopMeta(title="t", description="d", sandbox=SandboxResources(memory="2g", pids=300))
    workshop = Workshop(slug="w", path=Path("."), meta=meta, lessons=[])
    limits = limits_for(settings, workshop)
    assert (limits.memory, limits.pids, limits.cpus) == ("2g", 300, settings.sandbox_cpus)
    assert limits_for(settings, None).memory == settings.sandbox_memory


def new_service(settings: Settings, tmp_path: Path) -> SandboxService:
    config = ServiceConfig.from_settings(settings, None)
    return SandboxService(database(tmp_path), EventHub(), config)


async def test_running_sandboxes_uses_an_injected_backend_and_leaves_sandboxes_running(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"warm_pool_size": 0})
    backend = FakeBackend()
    service = new_service(settings, tmp_path)
    async with running_sandboxes(service, settings, lambda: None, backend):
        assert service.connected
        person_id = service.records.database.run_sync(_add_person)
        name = await service.ready_sandbox(person_id)
    assert backend.is_running(name)  # a portal restart never kills a sandbox
    assert ("stop", name) not in backend.calls and ("remove", name) not in backend.calls


def _add_person(session: Session) -> int:
    person = Attendee(workshop="", name="x", resume_key="k")
    session.add(person)
    session.commit()
    assert person.id is not None
    return person.id


async def test_running_sandboxes_serves_while_the_engine_is_down(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    service = new_service(settings, tmp_path)
    async with running_sandboxes(service, settings, lambda: None):
        async with asyncio.timeout(5):
            while service.problem is None:
                await asyncio.sleep(0.02)
        assert not service.connected
        assert "Docker engine is not answering" in service.problem
        health = await service.health()
        assert not health.ok and "unreachable" in health.engine
        with pytest.raises(SandboxUnavailable):
            await service.ready_sandbox(1, timeout=0.05)
