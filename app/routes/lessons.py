"""Lesson pages and the attendee's JSON view of the workshop and of themselves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from app import attendees
from app.checks import store
from app.deps import AttendeeDep, EventsDep, SandboxesDep, SessionDep, WorkshopDep
from app.instructor import live, locks
from app.instructor.sandbox_health import current_health
from app.lessons.assets import ASSET_HEADERS, asset_file, media_type
from app.lessons.render import pygments_css, render_lesson
from app.progress import task_statuses
from app.sandboxes.service import SandboxView
from app.templating import render

router = APIRouter()
NO_SANDBOX = "none"  # /api/me before anything asked for a sandbox


# Plain ``def`` routes: FastAPI runs them in a thread, so their database work never holds up the
# event loop, and their session lives only as long as the route (no await in between).


@router.get("/lessons", response_class=HTMLResponse)
def lesson_list(
    request: Request, workshop: WorkshopDep, attendee: AttendeeDep, session: SessionDep
) -> HTMLResponse:
    statuses = task_statuses(session, workshop, attendee.id or 0)
    passed = {task_id for task_id, status in statuses.items() if status == "passed"}
    return render(request, "lessons.html", {"attendee": attendee, "passed": passed})


@router.get("/lessons/{slug}", response_class=HTMLResponse)
def lesson_page(
    slug: str,
    request: Request,
    workshop: WorkshopDep,
    attendee: AttendeeDep,
    session: SessionDep,
    events: EventsDep,
) -> HTMLResponse:
    lesson = workshop.lesson(slug)  # a slug never reaches the filesystem
    if lesson is None:
        raise HTTPException(404, "There is no lesson by that name. Pick one from the lesson list.")
    if locks.is_locked(session, workshop.slug, lesson.slug):
        return locks.locked_page(request, attendee, workshop, lesson.slug)
    attendee = session.merge(attendee)  # authenticated in another session
    attendees.touch(session, attendee, lesson=lesson.slug)
    live.announce_activity(events, attendee.id or 0, lesson.slug)
    index = workshop.lessons.index(lesson)
    tried = store.last_attempts(session, attendee.id or 0, [task.id for task in lesson.tasks])
    context = {
        "attendee": attendee,
        "lesson": lesson,
        "segments": render_lesson(lesson),
        "statuses": task_statuses(session, workshop, attendee.id or 0),
        "last_results": {task_id: store.results_of(found) for task_id, found in tried.items()},
        "checked_at": {task_id: found.started_at for task_id, found in tried.items()},
        "previous": workshop.lessons[index - 1] if index > 0 else None,
        "next": workshop.lessons[index + 1] if index + 1 < len(workshop.lessons) else None,
    }
    return render(request, "lesson.html", context)


@router.get("/sandbox/health", response_class=HTMLResponse)
async def registry_notice(
    request: Request, attendee: AttendeeDep, sandboxes: SandboxesDep
) -> HTMLResponse:
    """The notice above the terminal while the workshop registry does not answer."""
    health = await current_health(sandboxes)
    return render(request, "_partials/registry_notice.html", {"health": health})


@router.get("/api/workshop")
async def api_workshop(workshop: WorkshopDep, attendee: AttendeeDep) -> dict[str, Any]:
    return {
        "slug": workshop.slug,
        "title": workshop.meta.title,
        "lessons": [
            {
                "slug": lesson.slug,
                "title": lesson.title,
                "minutes": lesson.minutes,
                "tasks": [{"id": task.id, "title": task.title} for task in lesson.tasks],
            }
            for lesson in workshop.lessons
        ],
    }


@router.get("/api/me")
def api_me(
    workshop: WorkshopDep, attendee: AttendeeDep, session: SessionDep, sandboxes: SandboxesDep
) -> dict[str, Any]:
    return {
        "name": attendee.name,
        "workshop": workshop.slug,
        "current_lesson": attendee.current_lesson,
        "resume_url": f"/resume/{attendee.resume_key}",
        "sandbox": sandbox_json(sandboxes.view(attendee.id or 0)),
        "tasks": task_statuses(session, workshop, attendee.id or 0),
    }


def sandbox_json(view: SandboxView | None) -> dict[str, Any]:
    """Only what is true: ``none`` until a sandbox was asked for, a position only when queued."""
    if view is None:
        return {"state": NO_SANDBOX, "message": "No sandbox has been asked for yet."}
    found: dict[str, Any] = {"state": view.state, "name": view.name, "message": view.message}
    if view.position is not None:
        found["position"] = view.position
    return found


@router.get("/assets/pygments.css")
async def highlight_css() -> Response:
    return Response(
        pygments_css(), media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )


@router.get("/workshop/assets/{path:path}")
def workshop_asset(path: str, workshop: WorkshopDep, attendee: AttendeeDep) -> FileResponse:
    """A file of the workshop's assets/ folder (images in lessons); nothing outside it."""
    file = asset_file(workshop.path, path)
    if file is None:
        raise HTTPException(404, "There is no such file in this workshop.")
    return FileResponse(file, media_type=media_type(file), headers=ASSET_HEADERS)
