"""Check a task (JSON for scripts, the task card for htmx), watch mode, shown solutions, and the
lesson setup the lesson page asks for when it opens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from app.checks import store
from app.checks.lesson_setup import SetupFailed
from app.checks.service import CheckService, TaskRun
from app.db import Database
from app.deps import AttendeeDep, ChecksDep, DatabaseDep, SessionDep, WorkshopDep
from app.instructor import locks
from app.lessons.schema import Lesson, Task, Workshop
from app.models import Attendee
from app.progress import status_of
from app.templating import render

router = APIRouter()


def find_task(workshop: Workshop, task_id: str) -> tuple[Lesson, Task]:
    found = workshop.task(task_id)
    if found is None:
        raise HTTPException(404, f"There is no task '{task_id}' in this workshop.")
    return found


async def open_task(workshop: Workshop, database: Database, task_id: str) -> tuple[Lesson, Task]:
    """The task, if its lesson is open: a locked lesson's checks wait, as its page does."""
    lesson, task = find_task(workshop, task_id)
    await refuse_if_locked(workshop, database, lesson)
    return lesson, task


async def refuse_if_locked(workshop: Workshop, database: Database, lesson: Lesson) -> None:
    if await database.run(lambda session: locks.is_locked(session, workshop.slug, lesson.slug)):
        raise HTTPException(
            403, f"The instructor has not opened the lesson '{lesson.title}' yet. Wait a moment."
        )


@router.post("/api/tasks/{task_id}/check")
async def check_task_json(
    task_id: str,
    workshop: WorkshopDep,
    attendee: AttendeeDep,
    database: DatabaseDep,
    checks: ChecksDep,
) -> dict[str, Any]:
    lesson, task = await open_task(workshop, database, task_id)
    run = await checks.check(_id(attendee), lesson, task)
    return run.as_json()


@router.post("/tasks/{task_id}/check", response_class=HTMLResponse)
async def check_task_card(
    task_id: str,
    request: Request,
    workshop: WorkshopDep,
    attendee: AttendeeDep,
    database: DatabaseDep,
    checks: ChecksDep,
) -> HTMLResponse:
    lesson, task = await open_task(workshop, database, task_id)
    run = await checks.check(_id(attendee), lesson, task)
    return await _card(request, database, checks, attendee, task, run)


@router.post("/tasks/{task_id}/watch", status_code=204)
async def toggle_watch(
    task_id: str,
    workshop: WorkshopDep,
    attendee: AttendeeDep,
    database: DatabaseDep,
    checks: ChecksDep,
    watch: Annotated[str, Form()] = "",
) -> Response:
    """A checked box sends ``watch=on``; an unchecked one sends nothing, which means off."""
    lesson, task = await open_task(workshop, database, task_id)
    if watch == "on":
        checks.sandboxes.touch(_id(attendee))
        checks.watches.start(_id(attendee), lesson, task)
    else:
        checks.watches.stop(_id(attendee), task.id)
    return Response(status_code=204)


@router.post("/tasks/{task_id}/solution-shown", status_code=204)
def solution_shown(
    task_id: str, workshop: WorkshopDep, attendee: AttendeeDep, session: SessionDep
) -> Response:
    find_task(workshop, task_id)
    store.record_solution_shown(session, _id(attendee), task_id)
    return Response(status_code=204)


@router.post("/lessons/{slug}/setup")
async def prepare_lesson(
    slug: str,
    workshop: WorkshopDep,
    attendee: AttendeeDep,
    database: DatabaseDep,
    checks: ChecksDep,
) -> dict[str, Any]:
    lesson = workshop.lesson(slug)
    if lesson is None:
        raise HTTPException(404, "There is no lesson by that name.")
    await refuse_if_locked(workshop, database, lesson)
    try:
        problem = await checks.prepare_lesson(_id(attendee), lesson)
    except SetupFailed as failed:
        return {"lesson": lesson.slug, "ready": False, "failed": True, "message": str(failed)}
    return {"lesson": lesson.slug, "ready": not problem, "failed": False, "message": problem}


async def _card(
    request: Request,
    database: Database,
    checks: CheckService,
    attendee: Attendee,
    task: Task,
    run: TaskRun,
) -> HTMLResponse:
    progress = await database.run(
        lambda session: store.progress_of(session, _id(attendee), task.id)
    )
    context = {
        "task": task,
        "status": status_of(progress),
        "results": run.checks,
        "notice": run.unavailable,
        "watching": checks.watches.is_watching(_id(attendee), task.id),
    }
    return render(request, "_partials/task_card.html", context)


def _id(attendee: Attendee) -> int:
    assert attendee.id is not None  # attendees come from the database
    return attendee.id
