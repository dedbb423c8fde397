"""Reconcile after a portal restart: adopt live sandboxes, mark missing ones, resume cut-short
creations, remove old orphans."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from app.models import utcnow
from app.sandboxes.base import Limits, SandboxSpec
from app.sandboxes.fake import FakeBackend
from tests.support.sandboxes import database, harness

pytestmark = pytest.mark.anyio


async def add_container(backend: FakeBackend, name: str, minutes_old: float) -> None:
    async for _ in backend.create(SandboxSpec(name, "docker-basics", "i", Limits())):
        pass
    backend.sandboxes[name].created_at = utcnow() - timedelta(minutes=minutes_old)


async def test_a_restarted_portal_adopts_live_sandboxes_without_touching_them(
    tmp_path: Path,
) -> None:
    backend, engine = FakeBackend(), database(tmp_path)
    async with harness(tmp_path, backend, engine=engine) as first:
        me = first.attendee()
        name = await first.service.ready_sandbox(me)
    calls_before = len(backend.calls)
    async with harness(tmp_path, backend, engine=engine, start=False) as second:
        report = await second.service.start()
        assert report.adopted == [name] and second.row(me).state == "ready"
        assert await second.service.ready_sandbox(me) == name
    assert [c for c in backend.calls[calls_before:] if c[0] not in ("list", "status")] == []


async def test_a_vanished_sandbox_is_marked_missing_and_made_again_on_demand(
    tmp_path: Path,
) -> None:
    backend, engine = FakeBackend(), database(tmp_path)
    async with harness(tmp_path, backend, engine=engine) as first:
        me = first.attendee()
        name = await first.service.ready_sandbox(me)
    backend.crash(name)
    async with harness(tmp_path, backend, engine=engine, start=False) as second:
        report = await second.service.start()
        assert report.missing == [name] and second.row(me).state == "missing"
        assert await second.service.ready_sandbox(me) == name
        assert backend.is_running(name)


async def test_a_stopped_container_of_a_ready_row_is_marked_stopped(tmp_path: Path) -> None:
    backend, engine = FakeBackend(), database(tmp_path)
    async with harness(tmp_path, backend, engine=engine) as first:
        me = first.attendee()
        name = await first.service.ready_sandbox(me)
    await backend.stop(name)
    async with harness(tmp_path, backend, engine=engine, start=False) as second:
        assert (await second.service.start()).stopped == [name]
        assert second.row(me).state == "stopped"


async def test_creations_cut_short_by_the_restart_are_resumed(tmp_path: Path) -> None:
    backend, engine = FakeBackend(), database(tmp_path)
    async with harness(tmp_path, backend, engine=engine, start=False) as first:
        me = first.attendee()
        name = (await first.service.ensure_for(me)).name  # queued, never created
    async with harness(tmp_path, backend, engine=engine, start=False) as second:
        assert (await second.service.start()).resumed == [name]
        assert await second.service.ready_sandbox(me, timeout=5) == name


async def test_warm_pool_rows_without_a_container_are_dropped(tmp_path: Path) -> None:
    backend, engine = FakeBackend(), database(tmp_path)
    async with harness(tmp_path, backend, engine=engine, warm_pool_size=1) as first:
        await first.service.pool.refill()
        pooled = (await first.service.records.unassigned())[0].container_name
        async with asyncio.timeout(5):
            while (await first.service.pool_counts())["ready"] < 1:
                await asyncio.sleep(0.01)
    backend.crash(pooled)
    async with harness(tmp_path, backend, engine=engine, start=False) as second:
        report = await second.service.start()
        assert report.dropped == [pooled]
        assert await second.service.records.by_name(pooled) is None


async def test_orphans_are_removed_after_the_grace_period_only(tmp_path: Path) -> None:
    backend = FakeBackend()
    await add_container(backend, "test-unit-old-orphan", minutes_old=30)
    await add_container(backend, "test-unit-young-orphan", minutes_old=1)
    async with harness(tmp_path, backend, start=False, orphan_grace=600) as h:
        report = await h.service.start()
    assert report.orphans_removed == ["test-unit-old-orphan"]
    assert report.orphans_kept == ["test-unit-young-orphan"]
    assert set(backend.sandboxes) == {"test-unit-young-orphan"}
