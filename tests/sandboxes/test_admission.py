"""Admission: a bounded number of creations at once, everyone else queued with their position."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.events import attendee_topic
from app.sandboxes.base import SandboxSpec, SandboxState
from app.sandboxes.fake import FakeBackend
from tests.support.sandboxes import drain, harness, recording

pytestmark = pytest.mark.anyio


class CountingBackend(FakeBackend):
    """Remembers how many creations ran at the same time, and in which order they began."""

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.running = 0
        self.most_at_once = 0
        self.began: list[str] = []

    async def create(self, spec: SandboxSpec) -> AsyncIterator[SandboxState]:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.began.append(spec.name)
        try:
            async for stage in super().create(spec):
                yield stage
        finally:
            self.running -= 1


async def test_fifty_joins_at_once_are_all_queued_and_all_served(tmp_path: Path) -> None:
    backend = CountingBackend(create_delay=0.02)
    async with harness(tmp_path, backend, spawn_workers=4) as h:
        people = [h.attendee() for _ in range(50)]
        topics = [attendee_topic(person) for person in people]
        async with recording(h.events, topics) as events:
            views = await asyncio.gather(*(h.service.ensure_for(p) for p in people))
            assert all(view.state == "queued" for view in views)  # nobody refused
            # Each place is true when the view is made; workers start serving meanwhile.
            assert all(view.position and 1 <= view.position <= 50 for view in views)
            names = await asyncio.gather(*(h.service.ready_sandbox(p, timeout=30) for p in people))
        assert all(h.row(p).state == "ready" for p in people)
    assert len(set(names)) == 50 and backend.most_at_once == 4
    for topic in topics:
        positions = [e["position"] for e in events[topic] if e["position"]]
        assert positions == sorted(positions, reverse=True)  # only ever moving forward
        assert [e["state"] for e in events[topic]][-3:] == ["creating", "starting", "ready"]
    assert max(len(events[topic]) for topic in topics) > 40  # the last one heard every move


async def test_first_come_first_served(tmp_path: Path) -> None:
    backend = CountingBackend(create_delay=0.01)
    async with harness(tmp_path, backend, spawn_workers=1) as h:
        people = [h.attendee() for _ in range(5)]
        views = [await h.service.ensure_for(person) for person in people]
        await asyncio.gather(*(h.service.ready_sandbox(person) for person in people))
    assert backend.began == [view.name for view in views]


async def test_a_failed_creation_is_retried_once_and_then_works(tmp_path: Path) -> None:
    async with harness(tmp_path, FakeBackend(fail_create_times=1)) as h:
        me = h.attendee()
        async with h.events.subscribe(attendee_topic(me)) as sub:
            name = await h.service.ready_sandbox(me)
            events = await drain(sub, "ready")
        assert h.creates() == 2 and h.row(me).message is None
        assert name in h.backend.sandboxes
    assert any("trying once more" in e["message"] for e in events)


async def test_two_failures_end_in_failed_with_the_reason_and_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(tmp_path, FakeBackend(fail_create_times=5)) as h:
        me = h.attendee()
        async with h.events.subscribe(attendee_topic(me)) as sub:
            await h.service.ensure_for(me)
            failed = (await drain(sub, "failed"))[-1]
        assert h.creates() == 2
    assert "could not be created" in failed["message"] and "injected failure" in failed["message"]
    assert [r.levelname for r in caplog.records if "giving up" in r.getMessage()] == ["ERROR"]


async def test_attendees_go_before_warm_pool_refills(tmp_path: Path) -> None:
    backend = CountingBackend(create_delay=0.01)
    async with harness(tmp_path, backend, spawn_workers=1, start=False) as h:
        h.service.set_warm_pool_size(3)
        await h.service.pool.refill()  # three pool creations wait
        me = h.attendee()
        view = await h.service.ensure_for(me)  # queued after them, served before them
        await h.service.start()
        await h.service.ready_sandbox(me)
        assert backend.began[0] == view.name


async def test_a_cancelled_creation_never_reaches_the_backend(tmp_path: Path) -> None:
    async with harness(tmp_path, start=False) as h:
        first, second = h.attendee(), h.attendee()
        a = await h.service.ensure_for(first)
        b = await h.service.ensure_for(second)
        assert h.service.admission.cancel(a.name)
        assert h.service.admission.position(b.name) == 1
        assert not h.service.admission.cancel(a.name)
