"""The warm pool: ready sandboxes handed out without starting anything, refilled behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.events import attendee_topic
from app.sandboxes.fake import FakeBackend
from tests.support.sandboxes import Harness, drain, harness

pytestmark = pytest.mark.anyio


async def pool_ready(h: Harness, count: int, limit: float = 5) -> None:
    async with asyncio.timeout(limit):
        while (await h.service.pool_counts())["ready"] < count:
            await asyncio.sleep(0.01)


async def test_the_pool_fills_to_its_size(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=3) as h:
        await pool_ready(h, 3)
        rows = await h.service.records.unassigned()
        assert len(rows) == 3 and all(row.attendee_id is None for row in rows)
        assert h.creates() == 3


async def test_hand_out_starts_no_container_and_is_immediate(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=2) as h:
        await pool_ready(h, 2)
        ready_names = {row.container_name for row in await h.service.records.unassigned()}
        me = h.attendee()
        calls_before = len(h.backend.calls)
        started = time.perf_counter()
        view = await h.service.ensure_for(me)
        name = await h.service.ready_sandbox(me)
        elapsed = time.perf_counter() - started
        handed_out_calls = h.backend.calls[calls_before:]
        assert view.state == "ready" and name == view.name and name in ready_names
        # The pool may already be refilling in the background (a create of another name):
        # what matters is that the attendee's own sandbox was neither created nor started.
        assert not [c for c in handed_out_calls if c[0] in ("create", "start") and name in c]
        assert elapsed < 0.2
        assert h.row(me).attendee_id == me


async def test_hand_out_refills_the_pool_in_the_background(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=2) as h:
        await pool_ready(h, 2)
        await h.service.ensure_for(h.attendee())
        await pool_ready(h, 2)
        assert h.creates() == 3 and len(await h.service.records.unassigned()) == 2


async def test_refills_wait_until_a_burst_of_hand_outs_is_over(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=2) as h:
        await pool_ready(h, 2)
        h.service.pool.refill_quiet = 0.3
        creates = h.creates()
        for _ in range(2):
            await h.service.ensure_for(h.attendee())
            await asyncio.sleep(0.2)
        assert h.creates() == creates  # 0.4 s after the first hand-out: still the burst
        await pool_ready(h, 2)
        assert h.creates() == creates + 2


async def test_a_pool_that_runs_dry_refills_without_waiting_for_the_burst_to_end(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, warm_pool_size=1) as h:
        await pool_ready(h, 1)
        h.service.pool.refill_quiet = 30.0  # a burst that would hold the refill back for long
        creates = h.creates()
        await h.service.ensure_for(h.attendee())  # takes the pool's only sandbox
        await asyncio.sleep(0.3)
        assert h.creates() == creates  # still the burst, and the pool had something
        await h.service.ensure_for(h.attendee())  # finds the pool empty: a new one of its own
        await pool_ready(h, 1)  # and the pool refills now, not 30 s later
        assert h.creates() == creates + 2


async def test_an_empty_pool_hands_out_one_being_made(tmp_path: Path) -> None:
    async with harness(tmp_path, FakeBackend(create_delay=0.2), warm_pool_size=1) as h:
        async with asyncio.timeout(2):
            while not any(r.state == "starting" for r in await h.service.records.unassigned()):
                await asyncio.sleep(0.01)
        me = h.attendee()
        async with h.events.subscribe(attendee_topic(me)) as sub:
            view = await h.service.ensure_for(me)
            assert view.state == "starting"  # the pool's sandbox in the making, now theirs
            await drain(sub, "ready")
        assert h.row(me).container_name == view.name


async def test_resizing_grows_and_shrinks_the_pool(tmp_path: Path) -> None:
    async with harness(tmp_path, warm_pool_size=1) as h:
        await pool_ready(h, 1)
        h.service.set_warm_pool_size(3)
        await pool_ready(h, 3)
        h.service.set_warm_pool_size(1)
        async with asyncio.timeout(5):
            while len(await h.service.records.unassigned()) > 1:
                await asyncio.sleep(0.01)
        assert len(h.backend.sandboxes) == 1
        assert (await h.service.pool_counts()) == {"size": 1, "ready": 1, "in_progress": 0}


async def test_a_failing_pool_pauses_instead_of_looping(tmp_path: Path) -> None:
    async with harness(tmp_path, FakeBackend(fail_create_times=100), warm_pool_size=1) as h:
        async with asyncio.timeout(5):
            while not any(r.state == "failed" for r in await h.service.records.unassigned()):
                await asyncio.sleep(0.01)
        assert await h.service.pool.refill() == 0  # the failed one goes, no new one yet
        assert await h.service.records.unassigned() == [] and h.creates() == 2
