from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.checks import store
from app.checks.service import SANDBOX_RESTARTING, CheckService
from app.events import INSTRUCTOR_TOPIC, attendee_topic
from app.lessons.schema import Lesson, Task, Workshop
from tests.support.checks import MAKE_FILE_FIRST_RUN, FakeSandboxes, ShellBackend

pytestmark = pytest.mark.anyio


def task_of(workshop: Workshop, task_id: str) -> tuple[Lesson, Task]:
    found = workshop.task(task_id)
    assert found is not None
    return found


def do_the_task(backend: ShellBackend, attendee_id: int) -> None:
    (backend.home(f"sbx-{attendee_id}") / "made.txt").write_text("hello\n")


async def drain(subscription: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        try:
            events.append(await asyncio.wait_for(subscription.get(), 0.05))
        except TimeoutError:
            return events


async def test_a_failing_then_passing_task_streams_each_check_and_stores_attempts(
    service: CheckService, demo_workshop: Workshop, attendee_id: int, db_engine: Engine
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    async with service.events.subscribe(attendee_topic(attendee_id), INSTRUCTOR_TOPIC) as sub:
        first = await service.check(attendee_id, lesson, task)
        events = await drain(sub)
    assert [c.status for c in first.checks] == ["failed", "failed", "passed"]
    assert first.checks[0].message == "There is no `made.txt` yet."
    checks = [(e["check_index"], e["status"]) for e in events if e["type"] == "check"]
    assert checks == MAKE_FILE_FIRST_RUN
    check_event = next(e for e in events if e["type"] == "check" and e["status"] == "failed")
    assert set(check_event) >= {
        "task_id",
        "check_index",
        "name",
        "status",
        "message",
        "output",
        "duration_ms",
    }
    assert 'id="check-make-file-0"' in check_event["html"]
    [mine] = [
        e for e in events if e["type"] == "task" and e["topic"] == attendee_topic(attendee_id)
    ]
    [dashboard] = [e for e in events if e["type"] == "task" and e["topic"] == INSTRUCTOR_TOPIC]
    assert (
        mine["passed"] is False and mine["attempts"] == 1 and 'id="task-make-file"' in mine["html"]
    )
    assert (
        dashboard["attendee_id"] == attendee_id and dashboard["failed_check"] == "made.txt exists"
    )
    assert "html" not in dashboard and "checks" not in dashboard

    do_the_task(service.sandboxes.backend, attendee_id)  # type: ignore[arg-type]
    second = await service.check(attendee_id, lesson, task)
    assert second.passed and second.as_json()["checks"][1] == {
        "name": "It says hello",
        "passed": True,
        "status": "passed",
        "message": "",
        "output": "hello\n",
        "duration_ms": second.checks[1].duration_ms,
    }
    with Session(db_engine) as session:
        progress = store.progress_of(session, attendee_id, "make-file")
        assert progress is not None and progress.attempts == 2 and progress.first_passed_at
        assert [a.passed for a in store.attempts_of(session, attendee_id, "make-file")] == [
            False,
            True,
        ]


async def test_two_clicks_on_the_same_task_share_one_run(
    service: CheckService,
    shell_backend: ShellBackend,
    demo_workshop: Workshop,
    attendee_id: int,
    db_engine: Engine,
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    shell_backend.delay = 0.1
    one, two = await asyncio.gather(
        service.check(attendee_id, lesson, task), service.check(attendee_id, lesson, task)
    )
    assert one is two
    assert shell_backend.commands[1:] == [
        check.run for check in task.checks
    ]  # setup, then each once
    with Session(db_engine) as session:
        assert len(store.attempts_of(session, attendee_id, "make-file")) == 1
    third = await service.check(attendee_id, lesson, task)
    assert third is not one  # a click after the run finished is a new run


async def test_a_caller_that_gives_up_does_not_stop_the_run(
    service: CheckService,
    shell_backend: ShellBackend,
    demo_workshop: Workshop,
    attendee_id: int,
    db_engine: Engine,
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    shell_backend.delay = 0.1
    caller = asyncio.create_task(service.check(attendee_id, lesson, task))
    await asyncio.sleep(0.05)
    caller.cancel()
    while service.is_running(attendee_id, task.id):
        await asyncio.sleep(0.05)
    with Session(db_engine) as session:
        assert len(store.attempts_of(session, attendee_id, "make-file")) == 1


async def test_a_hanging_check_times_out_and_the_next_one_still_runs(
    service: CheckService, demo_workshop: Workshop, attendee_id: int
) -> None:
    lesson, task = task_of(demo_workshop, "slow-task")
    run = await service.check(attendee_id, lesson, task)
    assert [c.status for c in run.checks] == ["timed_out", "passed"] and not run.passed


async def test_an_unavailable_sandbox_is_a_sentence_not_an_error_and_not_an_attempt(
    service: CheckService,
    sandboxes: FakeSandboxes,
    demo_workshop: Workshop,
    attendee_id: int,
    db_engine: Engine,
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    sandboxes.unavailable = "Your sandbox is starting again; try in a few seconds."
    async with service.events.subscribe(attendee_topic(attendee_id)) as sub:
        run = await service.check(attendee_id, lesson, task)
        [final] = [e for e in await drain(sub) if e["type"] == "task"]
    assert run.as_json() | {"duration_ms": 0} == {
        "task_id": "make-file",
        "passed": False,
        "status": "unavailable",
        "message": "Your sandbox is starting again; try in a few seconds.",
        "duration_ms": 0,
        "checks": [],
    }
    assert final["status"] == "unavailable" and "starting again" in final["html"]
    with Session(db_engine) as session:
        assert store.progress_of(session, attendee_id, "make-file") is None


async def test_a_sandbox_that_dies_mid_run_is_restarted_and_reported(
    service: CheckService,
    sandboxes: FakeSandboxes,
    shell_backend: ShellBackend,
    demo_workshop: Workshop,
    attendee_id: int,
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    await service.prepare_lesson(attendee_id, lesson)
    shell_backend.gone.add(f"sbx-{attendee_id}")
    run = await service.check(attendee_id, lesson, task)
    assert run.status == "unavailable" and run.unavailable == SANDBOX_RESTARTING
    assert sandboxes.restarted == [attendee_id]
    assert (await service.check(attendee_id, lesson, task)).status == "failed"


async def test_the_lesson_setup_runs_once_per_sandbox_before_its_checks(
    service: CheckService,
    shell_backend: ShellBackend,
    demo_workshop: Workshop,
    attendee_id: int,
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    assert await service.prepare_lesson(attendee_id, lesson) == ""
    await service.check(attendee_id, lesson, task)
    await service.check(attendee_id, lesson, task)
    home = shell_backend.home(f"sbx-{attendee_id}")
    assert (home / "setup-count").read_text() == "run\n"


async def test_checks_run_the_setup_when_the_page_did_not(
    service: CheckService,
    demo_workshop: Workshop,
    attendee_id: int,
) -> None:
    lesson, task = task_of(demo_workshop, "make-file")
    run = await service.check(attendee_id, lesson, task)
    assert run.checks[2].passed  # "The lesson setup ran first"


async def test_a_click_touches_the_sandbox(
    service: CheckService,
    sandboxes: FakeSandboxes,
    demo_workshop: Workshop,
    attendee_id: int,
) -> None:
    await service.check(attendee_id, *task_of(demo_workshop, "make-file"))
    assert sandboxes.touched == [attendee_id]
