"""Idle stop, transparent restart, maximum age and prune."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from app.events import attendee_topic
from app.models import utcnow
from app.sandboxes.base import Limits, SandboxSpec
from tests.support.sandboxes import Harness, drain, harness

pytestmark = pytest.mark.anyio
IDLE = 1800.0
MAX_AGE = 8 * 3600.0


async def backdate(h: Harness, name: str, **seconds_ago: float) -> None:
    await h.service.lifecycle.activity.flush(h.service.records)  # what ready_sandbox just recorded
    values = {field: utcnow() - timedelta(seconds=ago) for field, ago in seconds_ago.items()}
    assert await h.service.records.update(name, **values) is not None


async def test_an_idle_sandbox_is_stopped_and_comes_back_transparently(tmp_path: Path) -> None:
    async with harness(tmp_path, idle_stop=IDLE) as h:
        me = h.attendee()
        name = await h.service.ready_sandbox(me)
        original = h.backend.sandboxes[name]
        await backdate(h, name, last_activity_at=IDLE + 1)
        report = await h.service.lifecycle.reap()
        assert report.stopped == [name] and h.row(me).state == "stopped"
        assert h.backend.sandboxes[name].state == "stopped"
        assert await h.service.ready_sandbox(me) == name
        assert h.backend.sandboxes[name] is original and h.creates() == 1


async def test_recent_activity_keeps_a_sandbox_running(tmp_path: Path) -> None:
    async with harness(tmp_path, idle_stop=IDLE) as h:
        me = h.attendee()
        name = await h.service.ready_sandbox(me)
        await backdate(h, name, last_activity_at=IDLE + 1)
        h.service.touch(me)  # terminal input a moment ago, not yet in the database
        assert (await h.service.lifecycle.reap()).stopped == []
        assert h.row(me).state == "ready"
        assert (utcnow() - h.row(me).last_activity_at).total_seconds() < 5  # flushed


async def test_warm_pool_sandboxes_are_never_idle_stopped(tmp_path: Path) -> None:
    async with harness(tmp_path, idle_stop=IDLE, warm_pool_size=1) as h:
        await h.service.pool.refill()
        rows = await h.service.records.unassigned()
        name = rows[0].container_name
        await drain_until_ready(h, name)
        await backdate(h, name, last_activity_at=IDLE * 10)
        assert (await h.service.lifecycle.reap()).stopped == []


async def drain_until_ready(h: Harness, name: str) -> None:
    async with asyncio.timeout(5):
        while (row := await h.service.records.by_name(name)) is None or row.state != "ready":
            await asyncio.sleep(0.01)


async def test_max_age_removes_the_sandbox_and_a_fresh_one_follows(tmp_path: Path) -> None:
    async with harness(tmp_path, max_age=MAX_AGE) as h:
        me = h.attendee()
        old = await h.service.ready_sandbox(me)
        await backdate(h, old, created_at=MAX_AGE + 1)
        async with h.events.subscribe(attendee_topic(me)) as sub:
            assert (await h.service.lifecycle.reap()).removed == [old]
            told = (await drain(sub, "stopped"))[-1]
        assert "maximum age" in told["message"]
        assert old not in h.backend.sandboxes and await h.service.records.for_attendee(me) is None
        fresh = await h.service.ready_sandbox(me)
        assert fresh != old


async def test_a_handed_out_sandbox_ages_from_the_hand_out(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=1, max_age=MAX_AGE) as h:
        await h.service.pool.refill()
        name = (await h.service.records.unassigned())[0].container_name
        await drain_until_ready(h, name)
        await backdate(h, name, created_at=MAX_AGE - 60)  # nearly too old while it waited
        me = h.attendee()
        assert (await h.service.ensure_for(me)).name == name
        assert (await h.service.lifecycle.reap()).removed == []


async def test_prune_removes_the_unusable_and_orphans_and_all_with_everything(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        running, stopped = h.attendee(), h.attendee()
        keep = await h.service.ready_sandbox(running)
        gone = await h.service.ready_sandbox(stopped)
        await h.service.stop(stopped)
        async for _ in h.backend.create(SandboxSpec("test-unit-orphan", "w", "i", Limits())):
            pass
        assert sorted(await h.service.prune()) == sorted([gone, "test-unit-orphan"])
        assert set(h.backend.sandboxes) == {keep}
        assert await h.service.prune(everything=True) == [keep]
        assert h.backend.sandboxes == {} and await h.service.records.all() == []
