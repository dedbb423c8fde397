from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.checks import store
from app.checks.service import TASK_REMOVED, CheckService
from app.db import Database
from app.events import EventHub, attendee_topic
from app.lessons.schema import Workshop
from tests.support.checks import FakeSandboxes, ShellBackend

pytestmark = pytest.mark.anyio


async def wait_until_stopped(service: CheckService, attendee_id: int, task_id: str) -> None:
    for _ in range(100):
        if not service.watches.is_watching(attendee_id, task_id):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the watch did not stop")


async def test_watch_rechecks_quietly_and_stops_once_the_task_passes(
    service: CheckService,
    shell_backend: ShellBackend,
    demo_workshop: Workshop,
    attendee_id: int,
    db_engine: Engine,
) -> None:
    found = demo_workshop.task("make-file")
    assert found
    lesson, task = found
    service.watches.interval = 0.1
    async with service.events.subscribe(attendee_topic(attendee_id)) as page:
        service.watches.start(attendee_id, lesson, task)
        service.watches.start(attendee_id, lesson, task)  # twice is once
        assert service.watches.is_watching(attendee_id, "make-file")
        await asyncio.sleep(0.5)
        (shell_backend.home(f"sbx-{attendee_id}") / "made.txt").write_text("hello\n")
        await wait_until_stopped(service, attendee_id, "make-file")
        events = []
        while page._queue.qsize():
            events.append(await page.get())
    tasks = [e for e in events if e["type"] == "task"]
    # Shown twice: the first failing tick, then the pass; the same failures are not repeated.
    assert [e["status"] for e in tasks] == ["failed", "passed"]
    assert tasks[0]["watching"] is True and tasks[1]["watching"] is False
    assert not [e for e in events if e["type"] == "check"]  # no flicker of running checks
    with Session(db_engine) as session:
        assert [a.passed for a in store.attempts_of(session, attendee_id, "make-file")] == [True]


async def test_watch_stops_when_no_page_listens(
    service: CheckService, demo_workshop: Workshop, attendee_id: int
) -> None:
    found = demo_workshop.task("make-file")
    assert found
    service.watches.interval = 0.05
    service.watches.start(attendee_id, *found)
    await wait_until_stopped(service, attendee_id, "make-file")


async def test_watch_can_be_switched_off_and_ends_at_its_limit(
    service: CheckService, demo_workshop: Workshop, attendee_id: int
) -> None:
    found = demo_workshop.task("make-file")
    assert found
    service.watches.interval = 0.05
    async with service.events.subscribe(attendee_topic(attendee_id)) as page:
        service.watches.start(attendee_id, *found)
        service.watches.stop(attendee_id, "make-file")
        assert not service.watches.is_watching(attendee_id, "make-file")
        service.watches.limit = 0.3
        service.watches.start(attendee_id, *found)
        await wait_until_stopped(service, attendee_id, "make-file")
        events = []
        while page._queue.qsize():
            events.append(await page.get())
    assert events[-1] == {
        "type": "watch",
        "task_id": "make-file",
        "watching": False,
        "topic": f"attendee:{attendee_id}",
    }


async def test_watch_ends_when_the_sandbox_cannot_be_used(
    service: CheckService, sandboxes: FakeSandboxes, demo_workshop: Workshop, attendee_id: int
) -> None:
    found = demo_workshop.task("make-file")
    assert found
    service.watches.interval = 0.05
    sandboxes.unavailable = "Your sandbox is starting again; try again in a few seconds."
    async with service.events.subscribe(attendee_topic(attendee_id)):
        service.watches.start(attendee_id, *found)
        await wait_until_stopped(service, attendee_id, "make-file")


async def test_watch_ends_when_a_reload_removed_its_task(
    sandboxes: FakeSandboxes,
    database: Database,
    demo_workshop: Workshop,
    attendee_id: int,
    db_engine: Engine,
) -> None:
    """An author's edit took the task out while an attendee watched it: nothing is checked or
    stored, and the page hears that the watch ended."""
    found = demo_workshop.task("make-file")
    assert found
    reloaded = demo_workshop.model_copy(
        update={
            "lessons": [
                lesson.model_copy(
                    update={"tasks": [t for t in lesson.tasks if t.id != "make-file"]}
                )
                for lesson in demo_workshop.lessons
            ]
        }
    )
    service = CheckService(sandboxes, EventHub(), database, workshop=lambda: reloaded)
    service.watches.interval = 0.05
    try:
        async with service.events.subscribe(attendee_topic(attendee_id)) as page:
            service.watches.start(attendee_id, *found)
            await wait_until_stopped(service, attendee_id, "make-file")
            assert (await page.get())["watching"] is False
        run = await service.watch_tick(attendee_id, *found, ())
    finally:
        await service.close()
    assert run.unavailable == TASK_REMOVED and run.checks == []
    with Session(db_engine) as session:
        assert store.progress_of(session, attendee_id, "make-file") is None
